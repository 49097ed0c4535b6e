//! Building and running a Capstan process from its settings (the `serve` command).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::info;
use tracing_actix_web::TracingLogger;

use crate::api::{self, ApiState, Readiness, WebhookLimits};
use crate::cluster::Cluster;
use crate::cluster::registry::Registry;
use crate::config::{GitSettings, ManagementCluster, Role, Settings};
use crate::git::{Credentials, GitCredentials, GitLimits, GitPolicy, RepoCache};
use crate::manifests::Manifests;
use crate::metrics::Metrics;
use crate::private_fs;
use crate::queue::{self, SharedQueue};
use crate::render::{ChartCache, Limits, RenderCache, ToolSettings};
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::secret::{self, ExposeSecret, SecretString};
use crate::store::{self, AppStore, ProjectStore};
use crate::tenancy::Tenancy;
use crate::webhook::WebhookSecrets;
use crate::worker::reconcile::Context;
use crate::worker::{drift, poller, route_events, syncer};

/// A built Capstan process: HTTP bound, queue connected, workers ready to run.
pub struct Service {
    port: u16,
    server: actix_web::dev::Server,
    sandbox: Option<Sandbox>,
    sandbox_kubeconfig: Option<PathBuf>,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// How long each worker task gets to finish at shutdown.
    drain_timeout: Duration,
    queue: SharedQueue,
    api_token: SecretString,
    github_secret: Option<SecretString>,
    management: kube::Client,
}

impl Service {
    /// Connects everything the settings ask for and binds the HTTP port (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let data_dir = settings.server.data_dir.clone();
        private_fs::create_dir(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let metrics = Arc::new(Metrics::new());
        let (sandbox, client) = management_client(&settings).await?;
        // Every request to the management cluster (watches, status writes, applies) is counted.
        let client = crate::cluster::observe::observe(
            client,
            metrics.clone(),
            crate::cluster::registry::IN_CLUSTER_NAME,
        );
        if sandbox.is_some() {
            store::install_crds(&client)
                .await
                .context("installing the Application CRD in the sandbox")?;
        } else if let Err(e) = store::install_crds(&client).await {
            // Real clusters usually get CRDs from deploy/crds with cluster-admin rights; Capstan may lack them.
            tracing::warn!(error = %e, "could not install the Application CRD; expecting it to be installed");
        }
        let control = settings.server.namespace.as_str();
        ensure_namespace(&client, control)
            .await
            .with_context(|| format!("creating the control namespace {control}"))?;
        let store = AppStore::start(client.clone())
            .await
            .context("watching Applications")?;
        let projects = ProjectStore::start(client.clone(), control)
            .await
            .context("watching AppProjects")?;
        projects
            .ensure_default()
            .await
            .context("creating the default AppProject")?;
        let tenancy = Tenancy::new(projects, &settings.applications.namespaces);
        let cluster = Arc::new(
            Cluster::connect(client.clone())
                .await
                .context("discovering the cluster API")?,
        );
        let queue: SharedQueue = queue::connect(&settings.queue)
            .await
            .context("connecting to the queue")?;

        let api_token = secret::resolve(
            settings.api.token.as_ref(),
            settings.api.token_file.as_deref(),
            Some(&data_dir.join("api-token")),
        )?
        .context("no API token")?;
        let github_secret = secret::resolve(
            settings.webhook.github_secret.as_ref(),
            settings.webhook.github_secret_file.as_deref(),
            Some(&data_dir.join("github-webhook-secret")),
        )?;
        let webhook_secrets =
            WebhookSecrets::from_settings(&settings.webhook, github_secret.clone(), |var| {
                std::env::var(var).ok()
            })?;
        for name in webhook_secrets.unsigned_providers() {
            tracing::warn!(provider = %name, "webhooks from this provider are accepted WITHOUT a signature");
        }

        queue.report_to(metrics.clone());
        let shutdown = CancellationToken::new();
        let mut workers = Vec::new();
        // The api role renders too: `GET …/manifests` shows what a sync would apply.
        let mut manifests = build_manifests(&settings, &data_dir)?;
        manifests.git.report_to(metrics.clone());
        manifests.secret_credentials = crate::git::secrets::watch(
            client.clone(),
            &settings.server.namespace,
            shutdown.child_token(),
        )
        .await;
        let manifests = Arc::new(manifests);
        let (clusters, drifted) = Registry::new(
            cluster.clone(),
            client.clone(),
            &settings.server.namespace,
            shutdown.child_token(),
            metrics.clone(),
        );
        if matches!(settings.server.role, Role::Worker | Role::All) {
            let health = crate::worker::health_checks::start(
                client.clone(),
                &settings.server.namespace,
                &settings.health,
                shutdown.child_token(),
            )
            .await;
            workers.push(tokio::spawn(drift::run(
                drifted,
                queue.clone(),
                store.clone(),
            )));
            let ctx = Arc::new(Context {
                store: store.clone(),
                tenancy: tenancy.clone(),
                clusters: clusters.clone(),
                manifests: manifests.clone(),
                reconcile_timeout: Duration::from_secs(settings.reconcile.timeout_secs.max(1)),
                health,
                metrics: metrics.clone(),
                notify: crate::notify::Notifier::new(
                    &settings.notify,
                    !settings.forge.hosts.is_empty(),
                    queue.clone(),
                    tenancy.projects().clone(),
                    metrics.clone(),
                ),
            });
            let forges = crate::forge::Forges::new(&settings.forge)
                .map_err(|e| anyhow::anyhow!("[forge]: {e}"))?;
            if !settings.notify.services.is_empty() || !forges.is_empty() {
                crate::notify::templates::check(&settings.notify)
                    .map_err(|e| anyhow::anyhow!("invalid notification template: {e}"))?;
                let sender = crate::notify::Sender::new(Arc::new(settings.notify.clone()))
                    .map_err(|e| anyhow::anyhow!("notifications: {e}"))?
                    .with_forges(forges.clone());
                let (q, m, s) = (queue.clone(), metrics.clone(), shutdown.clone());
                workers.push(tokio::spawn(async move {
                    if let Err(e) = crate::notify::run(sender, q, m, s).await {
                        tracing::error!(error = %e, "notification delivery stopped");
                    }
                }));
            }
            if settings.previews.enabled {
                let previewer = crate::preview::Previewer {
                    ctx: ctx.clone(),
                    records: crate::preview::Records::new(
                        client.clone(),
                        &settings.server.namespace,
                    ),
                    forges: forges.clone(),
                    base_url: settings.notify.url.clone(),
                };
                let (q, s, n) = (
                    queue.clone(),
                    shutdown.clone(),
                    settings.previews.concurrency,
                );
                workers.push(tokio::spawn(async move {
                    if let Err(e) = crate::preview::run(previewer, q, n, s).await {
                        tracing::error!(error = %e, "pull-request previews stopped");
                    }
                }));
            }
            workers.push(tokio::spawn(crate::worker::queue_depth::run(
                queue.clone(),
                metrics.clone(),
                crate::worker::queue_depth::SAMPLE_EVERY,
                shutdown.child_token(),
            )));
            let reconcile = &settings.reconcile;
            let syncer_settings = syncer::SyncerSettings {
                concurrency: reconcile.concurrency,
                progress_recheck: Duration::from_millis(reconcile.progress_recheck_ms),
                max_recheck: Duration::from_secs(reconcile.interval_secs.max(1)),
                max_attempts: settings.queue.max_attempts,
            };
            let (q, s) = (queue.clone(), shutdown.clone());
            workers.push(tokio::spawn(async move {
                if let Err(e) = syncer::run(ctx, q, syncer_settings, s).await {
                    tracing::error!(error = %e, "syncer stopped");
                }
            }));
            let (st, t, q, m, s) = (
                store.clone(),
                tenancy.clone(),
                queue.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            workers.push(tokio::spawn(async move {
                if let Err(e) = route_events::run(st, t, q, m, s).await {
                    tracing::error!(error = %e, "router stopped");
                }
            }));
            let (st, t, q, s) = (
                store.clone(),
                tenancy.clone(),
                queue.clone(),
                shutdown.clone(),
            );
            let interval = Duration::from_secs(reconcile.interval_secs.max(1));
            let jitter = Duration::from_secs(reconcile.jitter_secs);
            // Unique per process: the Lease names who polls (`kubectl get lease capstan-poller`).
            let identity = format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "capstan".to_owned()),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            workers.push(tokio::spawn(poller::run_elected(
                client.clone(),
                settings.server.namespace.clone(),
                identity,
                Duration::from_secs(reconcile.poller_lease_secs),
                st,
                t,
                q,
                interval,
                jitter,
                reconcile.poll_on_start,
                s,
            )));
        }

        let accounts = crate::auth::Accounts::start(
            client.clone(),
            &settings.server.namespace,
            &settings.auth,
            &data_dir,
            shutdown.child_token(),
        )
        .await
        .context("reading the accounts Secret")?;
        let oidc = match &settings.auth.oidc {
            Some(o) => Some(Arc::new(
                crate::auth::oidc::Oidc::new(o).context("[auth.oidc]")?,
            )),
            None => None,
        };
        let auth = Arc::new(crate::auth::Auth {
            handoff: crate::auth::handoff::HandoffSigner::new(&accounts.server_key())?,
            oidc,
            sessions: crate::auth::SessionSigner::new(
                &accounts.server_key(),
                Duration::from_secs(settings.auth.session_ttl_secs.max(1)),
            )?,
            accounts,
            backoff: crate::auth::LoginBackoff::new(
                settings.auth.max_login_failures,
                settings.auth.max_login_failures_per_address,
                Duration::from_secs(settings.auth.login_failure_window_secs),
            ),
            github: settings
                .auth
                .github
                .as_ref()
                .map(crate::auth::github::GitHub::new)
                .transpose()?,
            ldap: settings
                .auth
                .ldap
                .as_ref()
                .map(crate::auth::ldap::Directory::new)
                .transpose()
                .context("auth.ldap")?,
            saml: settings
                .auth
                .saml
                .clone()
                .map(crate::auth::saml::ServiceProvider::from_settings)
                .transpose()
                .context("reading the SAML identity provider (auth.saml)")?,
        });
        let rbac = crate::rbac::LivePolicy::start(
            settings.rbac.clone(),
            tenancy.projects().clone(),
            shutdown.child_token(),
        )
        .await
        .context("loading the RBAC policy (rbac.policy_csv)")?;
        let state = web::Data::new(ApiState {
            queue: queue.clone(),
            store,
            tenancy,
            cluster,
            clusters,
            api_token: api_token.clone(),
            webhook_secrets,
            dedup: api::webhook::Dedup::new(settings.webhook.dedup_window()),
            readiness: Readiness::new(Duration::from_millis(settings.server.readiness_cache_ms)),
            metrics,
            manifests,
            auth,
            rbac,
            previews_enabled: settings.previews.enabled,
        });
        let listener = TcpListener::bind(settings.server.listen)
            .with_context(|| format!("binding {}", settings.server.listen))?;
        let port = listener.local_addr()?.port();
        let with_api = matches!(settings.server.role, Role::Api | Role::All);
        let webhook_limits = WebhookLimits {
            max_body_bytes: settings.webhook.max_body_bytes,
            body_timeout: Duration::from_millis(settings.webhook.body_timeout_ms),
        };
        let server_settings = &settings.server;
        // actix-http itself refuses request heads over 128 KiB or with over 96 headers (431).
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<crate::telemetry::HttpRootSpan>::new())
                .app_data(state.clone())
                .configure(|cfg| {
                    if with_api {
                        crate::ui::configure(cfg);
                    }
                    api::configure(cfg, webhook_limits, with_api)
                })
        })
        .client_request_timeout(Duration::from_millis(
            server_settings.request_head_timeout_ms,
        ))
        .client_disconnect_timeout(Duration::from_millis(server_settings.disconnect_timeout_ms))
        .keep_alive(Duration::from_secs(server_settings.keep_alive_secs))
        .workers(2)
        .shutdown_timeout(30)
        .listen(listener)?
        .run();
        info!(port, role = ?settings.server.role, "capstan is listening");
        Ok(Service {
            port,
            server,
            sandbox_kubeconfig: sandbox.as_ref().map(|_| sandbox_kubeconfig_path(&data_dir)),
            sandbox,
            shutdown,
            workers,
            drain_timeout: Duration::from_secs(settings.reconcile.timeout_secs.max(1) + 10),
            queue,
            api_token,
            github_secret,
            management: client,
        })
    }

    /// A handle that stops this service from elsewhere (tests, embedders).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// The bound HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The in-process sandbox's URL, when the management cluster is one.
    pub fn sandbox_url(&self) -> Option<&str> {
        self.sandbox.as_ref().map(Sandbox::url)
    }

    /// The kubeconfig (CA and token) written for the in-process sandbox, when there is one.
    pub fn sandbox_kubeconfig(&self) -> Option<&Path> {
        self.sandbox_kubeconfig.as_deref()
    }

    /// The REST API's bearer token.
    pub fn api_token(&self) -> &SecretString {
        &self.api_token
    }

    /// The GitHub webhook secret, if one is configured.
    pub fn github_secret(&self) -> Option<&SecretString> {
        self.github_secret.as_ref()
    }

    /// A client of the management cluster.
    pub fn management_client(&self) -> kube::Client {
        self.management.clone()
    }

    /// Serves until SIGINT/SIGTERM, then stops workers and flushes the sandbox.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        // The syncer lets the reconciles in progress finish (up to the reconcile timeout).
        for w in self.workers {
            let _ = tokio::time::timeout(self.drain_timeout, w).await;
        }
        // Unsettled deliveries go back to the queue for another worker.
        self.queue.close().await;
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
        Ok(result?)
    }
}

/// Stops a running [`Service`]: workers first, then the HTTP server.
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    shutdown: CancellationToken,
}

impl StopHandle {
    /// Stops the service gracefully; `run_until_stopped` then closes the queue and returns.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.server.stop(true).await;
    }
}

async fn management_client(settings: &Settings) -> anyhow::Result<(Option<Sandbox>, kube::Client)> {
    let c = &settings.cluster;
    match c.management {
        ManagementCluster::Sandbox => {
            // TLS and a token: plain HTTP on loopback would let anyone on the machine change it.
            let sandbox = Sandbox::start(SandboxOptions {
                listen: c.sandbox_listen,
                token: None,
                tls: true,
                state_file: c.sandbox_state.clone(),
                ready_delay: Duration::from_millis(settings.sandbox.ready_delay_ms),
            })
            .await?;
            // `Service::build` has created the data directory (0700) already.
            let kubeconfig = sandbox_kubeconfig_path(&settings.server.data_dir);
            sandbox.write_kubeconfig(&kubeconfig)?;
            info!(
                url = sandbox.url(),
                kubeconfig = %kubeconfig.display(),
                "in-process Capstan sandbox started (simulated cluster, runs no containers)"
            );
            let client = sandbox.client();
            Ok((Some(sandbox), client))
        }
        ManagementCluster::Kubeconfig => {
            let options = kube::config::KubeConfigOptions {
                context: c.context.clone(),
                ..Default::default()
            };
            let config = match &c.kubeconfig {
                Some(path) => {
                    let kubeconfig = kube::config::Kubeconfig::read_from(path)
                        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
                }
                None => kube::Config::from_kubeconfig(&options).await?,
            };
            Ok((None, kube::Client::try_from(config)?))
        }
        ManagementCluster::InCluster => {
            Ok((None, kube::Client::try_from(kube::Config::incluster()?)?))
        }
    }
}

/// Where `serve` writes the in-process sandbox's kubeconfig.
fn sandbox_kubeconfig_path(data_dir: &Path) -> PathBuf {
    data_dir.join("sandbox.kubeconfig")
}

/// The Git cache, credentials, render cache and tools every render goes through.
pub fn build_manifests(settings: &Settings, data_dir: &Path) -> anyhow::Result<Manifests> {
    let git_root = settings
        .git
        .cache_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("git"));
    private_fs::create_dir(&git_root)
        .with_context(|| format!("creating Git cache {}", git_root.display()))?;
    let render = &settings.render;
    Ok(Manifests {
        git: RepoCache::with_limits(git_root, git_limits(&settings.git))
            .with_policy(GitPolicy::from_settings(settings)),
        credentials: git_credentials(settings)?,
        secret_credentials: Default::default(),
        charts: ChartCache::new(
            render
                .charts_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("charts")),
        ),
        renders: Arc::new(RenderCache::new(render.cache_entries)),
        tools: ToolSettings {
            helm: render.helm.clone(),
            kustomize: render.kustomize.clone(),
            kubectl: render.kubectl.clone(),
            timeout: Duration::from_secs(render.tool_timeout_secs.max(1)),
            max_output_bytes: render.max_output_bytes,
            temp_dir: None,
        },
        limits: Limits::default(),
    })
}

fn git_limits(git: &GitSettings) -> GitLimits {
    GitLimits {
        max_checkout_entries: git.max_checkout_entries,
        max_checkout_bytes: git.max_checkout_bytes,
        fetch_timeout: Duration::from_secs(git.fetch_timeout_secs.max(1)),
        checkouts_per_repo: git.checkouts_per_repo,
    }
}

fn git_credentials(settings: &Settings) -> anyhow::Result<GitCredentials> {
    git_credentials_with(settings, |name| std::env::var(name).ok())
}

/// The configured Git credentials, environment variables read through `env`.
fn git_credentials_with(
    settings: &Settings,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<GitCredentials> {
    let mut out = GitCredentials::new();
    for c in &settings.git.credentials {
        let shown = crate::git::redact_url(&c.url_prefix);
        let ssh = c.ssh_private_key_file.is_some() || c.ssh_private_key_env.is_some();
        let creds = match (&c.token_file, &c.password_file) {
            _ if ssh => {
                if c.token_file.is_some() || c.password_file.is_some() {
                    anyhow::bail!(
                        "git credentials for {shown}: an SSH key excludes password_file and token_file"
                    );
                }
                Credentials::Ssh(ssh_key(c, &shown, &env)?)
            }
            (Some(token), _) => {
                Credentials::Token(secret::read_file(token)?.expose_secret().to_owned())
            }
            (None, Some(password)) => Credentials::Basic {
                username: c.username.clone().unwrap_or_else(|| "git".into()),
                password: secret::read_file(password)?.expose_secret().to_owned(),
            },
            (None, None) => anyhow::bail!(
                "git credentials for {shown} need password_file, token_file or ssh_private_key_file"
            ),
        };
        out.add(&c.url_prefix, creds)?;
    }
    Ok(out)
}

/// The SSH key of one credentials entry; without host keys it is refused unless the operator
/// explicitly gave up host key checking.
fn ssh_key(
    c: &crate::config::GitCredentialSettings,
    shown: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<crate::git::SshKey> {
    let private_key = match (&c.ssh_private_key_file, &c.ssh_private_key_env) {
        (Some(_), Some(_)) => anyhow::bail!(
            "git credentials for {shown}: give ssh_private_key_file or ssh_private_key_env, not both"
        ),
        (Some(path), None) => secret::read_file(path)?.expose_secret().to_owned(),
        (None, Some(name)) => env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            anyhow::anyhow!(
                "git credentials for {shown}: environment variable {name} (ssh_private_key_env) is unset or empty"
            )
        })?,
        (None, None) => anyhow::bail!("git credentials for {shown}: no SSH key given"),
    };
    let mut known_hosts = c.ssh_known_hosts.join("\n");
    if let Some(path) = &c.ssh_known_hosts_file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            anyhow::anyhow!(
                "git credentials for {shown}: ssh_known_hosts_file {}: {err}",
                path.display()
            )
        })?;
        known_hosts.push('\n');
        known_hosts.push_str(&text);
    }
    let known_hosts = known_hosts.trim().to_string();
    if known_hosts.is_empty() && !c.insecure_ignore_host_key {
        anyhow::bail!(
            "git credentials for {shown}: an SSH key needs ssh_known_hosts or ssh_known_hosts_file \
             (or insecure_ignore_host_key = true, which trusts any server)"
        );
    }
    Ok(crate::git::SshKey {
        private_key,
        known_hosts,
        insecure_ignore_host_key: c.insecure_ignore_host_key,
    })
}

/// Creates `namespace` when it is missing; a cluster where Capstan may not create namespaces must
/// have it already.
async fn ensure_namespace(client: &kube::Client, namespace: &str) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    if api.get_opt(namespace).await?.is_some() {
        return Ok(());
    }
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.to_owned());
    match api.create(&Default::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load_from(Some(&file), Vec::new()).unwrap()
    }

    #[test]
    fn ssh_keys_come_from_a_file_or_a_variable_and_need_host_keys() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, "KEY-FROM-FILE\n").unwrap();
        let file_toml = format!(
            "[[git.credentials]]\nurl_prefix = \"ssh://git@h:2222/org\"\nssh_private_key_file = {:?}\nssh_known_hosts = [\"[h]:2222 ssh-ed25519 AAAA\"]\n",
            key.display().to_string()
        );
        let creds = git_credentials_with(&settings(&file_toml), |_| None).unwrap();
        match creds.for_url("ssh://git@h:2222/org/repo") {
            Some(Credentials::Ssh(k)) => {
                assert_eq!(k.private_key, "KEY-FROM-FILE");
                assert_eq!(k.known_hosts, "[h]:2222 ssh-ed25519 AAAA");
                assert!(!k.insecure_ignore_host_key);
            }
            other => panic!("{other:?}"),
        }
        assert!(creds.for_url("https://h/org/repo").is_none());

        let env_toml = "[[git.credentials]]\nurl_prefix = \"git@h:org\"\nssh_private_key_env = \"GIT_KEY\"\ninsecure_ignore_host_key = true\n";
        let creds = git_credentials_with(&settings(env_toml), |n| {
            (n == "GIT_KEY").then(|| "K".into())
        })
        .unwrap();
        assert!(matches!(
            creds.for_url("git@h:org/repo"),
            Some(Credentials::Ssh(k)) if k.private_key == "K" && k.insecure_ignore_host_key
        ));
        let unset = git_credentials_with(&settings(env_toml), |_| None).unwrap_err();
        assert!(unset.to_string().contains("GIT_KEY"), "{unset}");

        let no_hosts = format!(
            "[[git.credentials]]\nurl_prefix = \"ssh://h/\"\nssh_private_key_file = {:?}\n",
            key.display().to_string()
        );
        let err = git_credentials_with(&settings(&no_hosts), |_| None).unwrap_err();
        assert!(err.to_string().contains("ssh_known_hosts"), "{err}");
        assert!(!err.to_string().contains("KEY-FROM-FILE"), "{err}");
    }
}
