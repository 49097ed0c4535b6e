//! Settings: `config/default.toml`, then an optional `--config FILE`, then `CAPSTAN__SECTION__KEY`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::queue::QueueSettings;
use crate::secret::SecretString;

/// The default configuration, compiled in so the binary works from any directory.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every setting Capstan reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub server: ServerSettings,
    pub applications: ApplicationsSettings,
    pub api: ApiSettings,
    pub webhook: WebhookSettings,
    pub queue: QueueSettings,
    pub cluster: ClusterSettings,
    pub reconcile: ReconcileSettings,
    pub git: GitSettings,
    pub render: RenderSettings,
    pub sandbox: SandboxSettings,
    #[serde(default)]
    pub health: HealthSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub rbac: RbacSettings,
    /// Notifications: services, templates, delivery limits.
    #[serde(default)]
    pub notify: crate::notify::NotifySettings,
    /// Pull-request previews.
    #[serde(default)]
    pub previews: crate::preview::PreviewSettings,
    /// The Git hosts' APIs: credentials, retries and pacing of status and comment calls.
    #[serde(default)]
    pub forge: crate::forge::ForgeSettings,
}

/// Who may sign in, and how: local accounts, sessions, login backoff and single sign-on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Whether the built-in `admin` account may log in with its password.
    pub admin_enabled: bool,
    /// Local accounts besides `admin`, as Argo CD's `accounts.<name>` (`login`, `apiKey`).
    #[serde(default)]
    pub accounts: std::collections::BTreeMap<String, LocalAccountSettings>,
    /// How long a login session lasts.
    pub session_ttl_secs: u64,
    /// Failed logins of one user within the window before further attempts are refused.
    pub max_login_failures: u32,
    /// Failed logins from one source address within the window before it is refused.
    pub max_login_failures_per_address: u32,
    /// The window failed logins are counted in.
    pub login_failure_window_secs: u64,
    /// Single sign-on with an OpenID Connect provider.
    #[serde(default)]
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
    /// GitHub (or GitHub Enterprise Server) login through an OAuth App.
    #[serde(default)]
    pub github: Option<crate::auth::github::GithubSettings>,
    /// An LDAP directory password logins fall back to (`[auth.ldap]`).
    #[serde(default)]
    pub ldap: Option<crate::auth::ldap::LdapSettings>,
    /// SAML 2.0 single sign-on, when configured.
    #[serde(default)]
    pub saml: Option<crate::auth::saml::SamlSettings>,
}

/// A local account from configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalAccountSettings {
    /// `login` (password, web UI and CLI) and/or `apiKey` (API tokens).
    pub capabilities: Vec<crate::auth::accounts::Capability>,
    /// A disabled account can neither log in nor use its tokens.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// Who may do what: Argo CD's `argocd-rbac-cm`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacSettings {
    /// Policy lines in Argo CD's CSV form (`p, …` and `g, …`).
    pub policy_csv: String,
    /// The role everyone signed in holds (`role:readonly`), empty for none.
    pub policy_default: String,
}

/// Where traces go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`); unset, no
    /// span is exported and no exporter runs.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

/// Operator-defined health checks (Argo CD's `resource.customizations.health.*`, in Lua).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Checks from this file; a list because kind names are case-sensitive keys.
    #[serde(default)]
    pub checks: Vec<HealthCheckSetting>,
    /// A ConfigMap in the control namespace whose `resource.customizations.health.*` keys add
    /// checks (as Argo CD's `argocd-cm`); re-read every `configmap_reload_secs`.
    #[serde(default)]
    pub configmap: Option<String>,
    #[serde(default = "default_health_reload_secs")]
    pub configmap_reload_secs: u64,
}

fn default_health_reload_secs() -> u64 {
    30
}

/// One Lua health check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSetting {
    /// `resource.customizations.health.<group>_<Kind>`, the same without the prefix, or a glob.
    pub key: String,
    /// The script: reads `obj`, returns `hs` with `status` and `message`.
    pub lua: String,
}

/// Which parts of Capstan this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// HTTP: webhooks, REST API, health.
    Api,
    /// Router, syncer and poller.
    Worker,
    /// Both, in one process.
    All,
}

/// The process as a whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub role: Role,
    /// Where generated secrets, the Git cache and sandbox state live.
    pub data_dir: PathBuf,
    /// The control namespace: Applications and AppProjects live here (created at start when missing).
    pub namespace: String,
    /// A client must send a complete request head within this time (408 otherwise).
    pub request_head_timeout_ms: u64,
    /// After a response is sent, the connection is closed if the client has not closed it by then.
    pub disconnect_timeout_ms: u64,
    /// Idle keep-alive connections are closed after this time.
    pub keep_alive_secs: u64,
    /// `/readyz` answers from a result at most this old, so it cannot be used to load the cluster.
    pub readiness_cache_ms: u64,
}

/// Where Applications outside the control namespace are honoured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationsSettings {
    /// Namespace globs besides `server.namespace`; an app there also needs its project's `sourceNamespaces`.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// The REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Bearer token, normally from `CAPSTAN__API__TOKEN`; never put it in a committed file.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// File holding the bearer token; when neither is set one is generated into `<data_dir>/api-token`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Incoming webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Bodies larger than this are refused with 413 while they are read.
    pub max_body_bytes: usize,
    /// The whole body must arrive within this time (408 otherwise): slow senders cannot hold
    /// connections open.
    pub body_timeout_ms: u64,
    /// Providers accepted without a signature; an explicit operator choice, empty by default.
    #[serde(default)]
    pub allow_unsigned: Vec<String>,
    /// GitHub secret, normally from `CAPSTAN__WEBHOOK__GITHUB_SECRET`.
    #[serde(default)]
    pub github_secret: Option<SecretString>,
    /// File holding the GitHub secret; when neither is set one is generated into
    /// `<data_dir>/github-webhook-secret`.
    #[serde(default)]
    pub github_secret_file: Option<PathBuf>,
    /// Secrets per provider (`[webhook.providers.gitlab]` …); keys may use `_` for `-`.
    #[serde(default)]
    pub providers: std::collections::BTreeMap<String, ProviderSecretSettings>,
    /// A delivery id seen again within this many seconds queues nothing (0: no de-duplication).
    #[serde(default = "default_dedup_window_secs")]
    pub dedup_window_secs: u64,
}

fn default_dedup_window_secs() -> u64 {
    600
}

impl WebhookSettings {
    /// The redelivery de-duplication window; zero when disabled.
    pub fn dedup_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dedup_window_secs)
    }
}

/// Where one provider's secrets come from; several may be given at once, so a secret can be
/// rotated by adding the new one before the host switches and removing the old one after.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSecretSettings {
    /// A secret given directly, normally from `CAPSTAN__WEBHOOK__PROVIDERS__<NAME>__SECRET`.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Files each holding one secret (a trailing newline is ignored).
    #[serde(default)]
    pub secret_files: Vec<PathBuf>,
    /// Names of environment variables each holding one secret.
    #[serde(default)]
    pub secret_env: Vec<String>,
}

/// Where the management cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManagementCluster {
    /// An in-process sandbox (no real cluster needed).
    Sandbox,
    /// A kubeconfig file and context.
    Kubeconfig,
    /// The service account of the pod Capstan runs in.
    InCluster,
}

/// The management cluster, which holds Applications and is the default target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    pub management: ManagementCluster,
    /// Kubeconfig path; empty means `$KUBECONFIG` or `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub context: Option<String>,
    /// Address of the in-process sandbox (port 0 picks one).
    pub sandbox_listen: SocketAddr,
    /// Persist the in-process sandbox's objects here.
    #[serde(default)]
    pub sandbox_state: Option<PathBuf>,
}

/// The safety-net poller and the syncer's parallelism.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Every Application is refreshed at least this often, even without a signal.
    pub interval_secs: u64,
    /// Whether a worker refreshes every Application as soon as it starts, or first after one
    /// interval.
    pub poll_on_start: bool,
    /// Up to this much random delay is added to each poll, so apps do not refresh in lockstep.
    pub jitter_secs: u64,
    /// Applications synced at once by one worker process.
    pub concurrency: usize,
    /// While an app is Progressing, re-check its health this often.
    pub progress_recheck_ms: u64,
    /// One reconcile (fetch, render, compare, sync) is abandoned after this many seconds.
    pub timeout_secs: u64,
    /// The poller Lease's duration: a dead poller's worker is replaced within this long.
    #[serde(default = "default_poller_lease_secs")]
    pub poller_lease_secs: u64,
}

fn default_poller_lease_secs() -> u64 {
    15
}

/// Git access.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSettings {
    /// Mirrors and checkouts; empty means `<data_dir>/git`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Credentials per URL prefix, longest prefix wins.
    #[serde(default)]
    pub credentials: Vec<GitCredentialSettings>,
    /// Tree entries one checkout may hold; bigger commits are refused before anything is written.
    pub max_checkout_entries: u64,
    /// Bytes of file content one checkout may hold.
    pub max_checkout_bytes: u64,
    /// Each fetch (ref listing and pack transfer) is abandoned after this many seconds.
    pub fetch_timeout_secs: u64,
    /// Checkouts kept on disk per repository; the least recently used beyond this are removed.
    pub checkouts_per_repo: usize,
    /// Roots under which `file://` and local-path repositories may be read; empty means any
    /// path with the sandbox cluster and none otherwise.
    #[serde(default)]
    pub allowed_local_roots: Vec<PathBuf>,
}

/// Manifest rendering: the external tools and the render cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSettings {
    /// The `helm` program.
    pub helm: String,
    /// The `kustomize` program; `kubectl kustomize` when it is not found.
    pub kustomize: String,
    /// The `kubectl` program.
    pub kubectl: String,
    /// An external tool is killed after this many seconds.
    pub tool_timeout_secs: u64,
    /// An external tool printing more than this many bytes is stopped.
    pub max_output_bytes: u64,
    /// Renders kept for reuse.
    pub cache_entries: usize,
    /// Charts fetched from Helm repositories; empty means `<data_dir>/charts`.
    #[serde(default)]
    pub charts_dir: Option<PathBuf>,
}

/// Credentials for repositories under `url_prefix` (same scheme, host and port, path on segment
/// boundaries); secrets come from files or environment variables, never the file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitCredentialSettings {
    pub url_prefix: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// File holding an unencrypted SSH private key, for `ssh://` and `user@host:path` URLs.
    #[serde(default)]
    pub ssh_private_key_file: Option<PathBuf>,
    /// Name of an environment variable holding the SSH private key (instead of the file).
    #[serde(default)]
    pub ssh_private_key_env: Option<String>,
    /// `known_hosts` lines of the servers to trust (`[host]:port type key` off port 22).
    #[serde(default)]
    pub ssh_known_hosts: Vec<String>,
    /// A `known_hosts` file of the servers to trust, added to `ssh_known_hosts`.
    #[serde(default)]
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// Accept any SSH host key (a man in the middle could then serve anything); off by default.
    #[serde(default)]
    pub insecure_ignore_host_key: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Human,
    Json,
}

/// Defaults for `capstan sandbox`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub listen: SocketAddr,
    pub ready_delay_ms: u64,
}

/// A configuration that could not be loaded; the message names the offending key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

impl Settings {
    /// Loads the layered configuration; `file` is the optional `--config FILE`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.to_owned(),
                });
            }
            builder = builder.add_source(config::File::from(path));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CAPSTAN__"))
            .collect();

        builder = builder.add_source(
            config::Environment::with_prefix("CAPSTAN")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("webhook.allow_unsigned")
                .with_list_parse_key("applications.namespaces")
                .with_list_parse_key("git.allowed_local_roots")
                .source(Some(env)),
        );
        Ok(builder.build()?.try_deserialize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn committed_defaults_load() {
        let s = Settings::load_from(None, env(&[])).expect("defaults load");
        assert_eq!(s.log.format, LogFormat::Auto);
        assert_eq!(s.sandbox.ready_delay_ms, 300);
    }

    #[test]
    fn environment_overrides_file_values() {
        let s = Settings::load_from(
            None,
            env(&[
                ("CAPSTAN__LOG__FORMAT", "json"),
                ("CAPSTAN__SANDBOX__READY_DELAY_MS", "5"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.sandbox.ready_delay_ms, 5);
    }

    #[test]
    fn a_config_file_layers_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[log]\nlevel = \"debug\"\n").expect("write");
        let s = Settings::load_from(Some(&path), env(&[])).expect("loads");
        assert_eq!(s.log.level, "debug");
        assert_eq!(
            s.log.format,
            LogFormat::Auto,
            "untouched keys keep their default"
        );
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        let err = Settings::load_from(None, env(&[("CAPSTAN__LOG__FORMAT", "xml")]))
            .expect_err("xml is not a format");
        assert!(err.to_string().contains("format"), "{err}");
        let err = Settings::load_from(None, env(&[("CAPSTAN__SANDBOX__READY_DELAY_MS", "soon")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("ready_delay_ms"), "{err}");
    }

    #[test]
    fn applications_live_in_the_control_namespace_by_default() {
        let s = Settings::load_from(None, env(&[])).expect("defaults load");
        assert_eq!(s.server.namespace, "capstan");
        assert!(s.applications.namespaces.is_empty());
        let s = Settings::load_from(
            None,
            env(&[("CAPSTAN__APPLICATIONS__NAMESPACES", "team-*,apps")]),
        )
        .expect("loads");
        assert_eq!(s.applications.namespaces, ["team-*", "apps"]);
    }

    #[test]
    fn debug_output_of_the_settings_shows_no_secret() {
        let s = Settings::load_from(
            None,
            env(&[
                ("CAPSTAN__API__TOKEN", "api-token-value-1"),
                ("CAPSTAN__WEBHOOK__GITHUB_SECRET", "github-secret-value-2"),
                (
                    "CAPSTAN__QUEUE__URL",
                    "amqp://capstan:amqp-password-3@rabbit:5672/%2f",
                ),
            ]),
        )
        .expect("loads");
        assert_eq!(
            s.api.token.as_ref().map(ExposeSecret::expose_secret),
            Some("api-token-value-1"),
            "the value is loaded, only hidden"
        );
        let shown = format!("{s:?} {s:#?}");
        for secret in [
            "api-token-value-1",
            "github-secret-value-2",
            "amqp-password-3",
        ] {
            assert!(!shown.contains(secret), "{secret} leaks in {shown}");
        }
        assert!(shown.contains("rabbit:5672"), "the rest stays readable");
    }

    #[test]
    fn redelivery_dedup_is_on_for_ten_minutes_unless_set_to_zero() {
        let s = Settings::load_from(None, env(&[])).expect("defaults load");
        assert_eq!(
            s.webhook.dedup_window(),
            std::time::Duration::from_secs(600)
        );
        let s = Settings::load_from(None, env(&[("CAPSTAN__WEBHOOK__DEDUP_WINDOW_SECS", "0")]))
            .expect("loads");
        assert!(s.webhook.dedup_window().is_zero());
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = Settings::load_from(Some(Path::new("/nonexistent/capstan.toml")), env(&[]))
            .expect_err("missing file");
        assert!(
            err.to_string().contains("/nonexistent/capstan.toml"),
            "{err}"
        );
    }
}
