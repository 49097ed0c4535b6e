//! `spawn_app()` and friends: a real Capstan wired to a sandbox cluster, RabbitMQ and Git over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use capstan::config::{ManagementCluster, Role, Settings};
use capstan::queue::QueueKind;
use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::webhook::Signature;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::common::child::ChildGuard;
use crate::common::git::TestRepo;
use crate::common::git_http::GitHttpServer;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const GIT_USER: &str = "capstan";
/// The control namespace, where the tests' Applications live (the default `server.namespace`).
pub const APP_NAMESPACE: &str = "capstan";
pub const GIT_PASSWORD: &str = "s3cret-git";

/// Fails loudly when RabbitMQ is down: these tests need the real broker.
pub async fn require_rabbitmq() {
    if tokio::net::TcpStream::connect("127.0.0.1:5672")
        .await
        .is_err()
    {
        panic!(
            "RabbitMQ is not reachable at 127.0.0.1:5672; start it with `rabbitmq-server -detached`"
        );
    }
}

/// How a test wants its Capstan.
pub struct Options {
    pub role: Role,
    pub amqp_url: String,
    pub poll_interval_secs: u64,
    /// More `CAPSTAN__…` settings, layered last.
    pub extra_env: Vec<(String, String)>,
    /// More configuration file lines (TOML), for settings env variables cannot spell (maps).
    pub extra_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            role: Role::All,
            amqp_url: AMQP.into(),
            poll_interval_secs: 180,
            extra_env: Vec::new(),
            extra_toml: String::new(),
        }
    }
}

/// A Capstan under test with its sandbox cluster, Git server and repository.
pub struct TestApp {
    pub address: String,
    pub api_token: String,
    pub webhook_secret: String,
    pub prefix: String,
    pub kube: kube::Client,
    pub http: reqwest::Client,
    pub repo: TestRepo,
    pub repo_url: String,
    pub sandbox: Sandbox,
    pub kubeconfig: PathBuf,
    pub data_dir: tempfile::TempDir,
    stop: capstan::startup::StopHandle,
    queue_settings: capstan::queue::QueueSettings,
    _git: GitHttpServer,
}

impl Drop for TestApp {
    /// Stops Capstan and removes this test's exchanges and queues from the shared broker.
    fn drop(&mut self) {
        let stop = self.stop.clone();
        let settings = self.queue_settings.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), stop.stop()).await;
                let _ = capstan::queue::rabbitmq::delete_topology(&settings).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A sandbox, a Git repository served over smart HTTP with Basic auth, and Capstan on RabbitMQ.
pub async fn spawn_app(opts: Options) -> TestApp {
    capstan::install_crypto_provider();
    require_rabbitmq().await;
    let sandbox = Sandbox::start(SandboxOptions {
        ready_delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("sandbox starts");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = data_dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).expect("write kubeconfig");
    let password_file = data_dir.path().join("git-password");
    std::fs::write(&password_file, GIT_PASSWORD).expect("write git password");

    let repo = TestRepo::new();
    let git = GitHttpServer::start(repo.root(), Some((GIT_USER, GIT_PASSWORD)));
    let repo_url = git.url_for(&repo.name());

    let prefix = format!("capstan-test-{}", uuid::Uuid::new_v4());
    let api_token = uuid::Uuid::new_v4().to_string();
    let webhook_secret = uuid::Uuid::new_v4().to_string();
    let config_file = data_dir.path().join("capstan-test.toml");
    let repo_prefix = repo_url
        .rsplit_once('/')
        .map(|(p, _)| format!("{p}/"))
        .unwrap_or_default();
    std::fs::write(
        &config_file,
        format!(
            "{}\n[[git.credentials]]\nurl_prefix = {repo_prefix:?}\nusername = {GIT_USER:?}\npassword_file = {:?}\n",
            opts.extra_toml,
            password_file.display().to_string()
        ),
    )
    .expect("write test config");
    let mut env = test_env(
        &kubeconfig,
        data_dir.path(),
        &prefix,
        &opts.amqp_url,
        opts.role,
        &api_token,
        &webhook_secret,
        opts.poll_interval_secs,
    );
    env.extend(opts.extra_env);
    let settings = Settings::load_from(Some(&config_file), env).expect("test settings load");
    assert_eq!(settings.cluster.management, ManagementCluster::Kubeconfig);
    assert_eq!(settings.queue.kind, QueueKind::Rabbitmq);
    // Cleanup talks to the broker directly, even when the test routes Capstan through a proxy.
    let mut queue_settings = settings.queue.clone();
    queue_settings.url = AMQP.into();
    let service = capstan::startup::Service::build(settings)
        .await
        .expect("capstan builds");
    let stop = service.stop_handle();
    let address = format!("http://127.0.0.1:{}", service.port());
    let kube = service.management_client();
    tokio::spawn(service.run_until_stopped());
    TestApp {
        address,
        api_token,
        webhook_secret,
        prefix,
        kube,
        http: reqwest::Client::new(),
        repo,
        repo_url,
        sandbox,
        kubeconfig,
        data_dir,
        stop,
        queue_settings,
        _git: git,
    }
}

/// Configuration as environment variables, usable in-process and for child processes alike.
#[allow(clippy::too_many_arguments)]
pub fn test_env(
    kubeconfig: &Path,
    data_dir: &Path,
    prefix: &str,
    amqp_url: &str,
    role: Role,
    api_token: &str,
    webhook_secret: &str,
    poll_interval_secs: u64,
) -> Vec<(String, String)> {
    let role = match role {
        Role::Api => "api",
        Role::Worker => "worker",
        Role::All => "all",
    };
    [
        ("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0".to_string()),
        ("CAPSTAN__SERVER__ROLE", role.to_string()),
        ("CAPSTAN__SERVER__DATA_DIR", data_dir.display().to_string()),
        ("CAPSTAN__API__TOKEN", api_token.to_string()),
        (
            "CAPSTAN__WEBHOOK__GITHUB_SECRET",
            webhook_secret.to_string(),
        ),
        (
            "CAPSTAN__WEBHOOK__MAX_BODY_BYTES",
            (1024 * 1024).to_string(),
        ),
        ("CAPSTAN__QUEUE__KIND", "rabbitmq".to_string()),
        ("CAPSTAN__QUEUE__URL", amqp_url.to_string()),
        ("CAPSTAN__QUEUE__PREFIX", prefix.to_string()),
        ("CAPSTAN__QUEUE__PUBLISH_TIMEOUT_MS", "2000".to_string()),
        ("CAPSTAN__QUEUE__RETRY_DELAY_MS", "200".to_string()),
        ("CAPSTAN__CLUSTER__MANAGEMENT", "kubeconfig".to_string()),
        (
            "CAPSTAN__CLUSTER__KUBECONFIG",
            kubeconfig.display().to_string(),
        ),
        (
            "CAPSTAN__RECONCILE__INTERVAL_SECS",
            poll_interval_secs.to_string(),
        ),
        ("CAPSTAN__RECONCILE__JITTER_SECS", "0".to_string()),
        ("CAPSTAN__RECONCILE__PROGRESS_RECHECK_MS", "200".to_string()),
        ("CAPSTAN__LOG__LEVEL", "info,capstan=debug".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The configuration of another process beside `app`: same broker prefix, cluster and secrets,
/// its own data directory.
fn sibling_env(app: &TestApp, role: Role) -> Vec<(String, String)> {
    let data_dir = app
        .data_dir
        .path()
        .join(format!("proc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).expect("process data dir");
    test_env(
        &app.kubeconfig,
        &data_dir,
        &app.prefix,
        AMQP,
        role,
        &app.api_token,
        &app.webhook_secret,
        180,
    )
}

/// A `capstan serve` child process with the same configuration as `app` (another machine, in
/// effect), logging JSON lines to `log`; killed when the guard is dropped.
pub fn spawn_process(app: &TestApp, role: Role, log: &Path) -> ChildGuard {
    spawn_process_with(app, role, log, Vec::new())
}

/// [`spawn_process`] with more `CAPSTAN__…` settings layered last.
pub fn spawn_process_with(
    app: &TestApp,
    role: Role,
    log: &Path,
    extra_env: Vec<(String, String)>,
) -> ChildGuard {
    let mut env = sibling_env(app, role);
    env.extend(extra_env);
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .arg("serve")
        .arg("--config")
        .arg(app.data_dir.path().join("capstan-test.toml"))
        .envs(env)
        .env("CAPSTAN__LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn capstan");
    ChildGuard::new(child)
}

impl TestApp {
    /// Creates an Application through the REST API.
    pub async fn create_app(
        &self,
        name: &str,
        path: &str,
        automated: Option<bool>,
    ) -> reqwest::Response {
        let mut spec = json!({
            "project": "default",
            "source": { "repoURL": self.repo_url, "path": path, "targetRevision": "main" },
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        });
        if let Some(prune) = automated {
            spec["syncPolicy"] = json!({ "automated": { "prune": prune, "selfHeal": false } });
        }
        self.create_app_with(name, spec).await
    }

    /// Creates an Application with exactly this spec.
    pub async fn create_app_with(&self, name: &str, spec: Value) -> reqwest::Response {
        self.create_app_in(APP_NAMESPACE, name, spec).await
    }

    /// Creates an Application in `namespace` through the REST API.
    pub async fn create_app_in(
        &self,
        namespace: &str,
        name: &str,
        spec: Value,
    ) -> reqwest::Response {
        let doc = json!({ "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": { "name": name, "namespace": namespace }, "spec": spec });
        self.post("/api/v1/applications", &doc).await
    }

    /// Creates an Application straight in the cluster, as `kubectl apply` would: no API admission.
    pub async fn apply_app(&self, namespace: &str, name: &str, spec: Value) {
        let doc = json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec});
        let obj: capstan::store::Application = serde_json::from_value(doc).expect("application");
        Api::<capstan::store::Application>::namespaced(self.kube.clone(), namespace)
            .create(&kube::api::PostParams::default(), &obj)
            .await
            .expect("application created in the cluster");
    }

    /// POSTs `body` to the REST API with the token.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.address))
            .bearer_auth(&self.api_token)
            .json(body)
            .send()
            .await
            .expect("API request")
    }

    /// GETs a REST API path with the token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.api_token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("API request")
    }

    /// The Application as the REST API returns it.
    pub async fn get_app(&self, name: &str) -> Value {
        let resp = self
            .get(&format!("/api/v1/applications/{APP_NAMESPACE}/{name}"))
            .await;
        assert!(
            resp.status().is_success(),
            "GET app {name}: {}",
            resp.status()
        );
        resp.json().await.expect("app json")
    }

    /// An automated app `name` on `app/` (a Deployment) synced at a first commit, then a second
    /// commit pushed with a signed webhook and synced; returns the second commit.
    pub async fn synced_then_pushed(&self, name: &str) -> String {
        self.repo
            .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
        let first = self.repo.commit("web at 1.25");
        assert_eq!(self.create_app(name, "app", Some(true)).await.status(), 201);
        self.wait_app(name, 30, "Synced at the first commit", |a| {
            sync_of(a) == ("Synced".into(), first.clone())
        })
        .await;
        self.repo
            .write("app/deploy.yaml", &deployment("web", "nginx:1.27"));
        let second = self.repo.commit("web at 1.27");
        assert_eq!(
            self.push_webhook(&second, Some(""), None).await.status(),
            202
        );
        self.wait_app(name, 30, "Synced and Healthy at the pushed commit", |a| {
            sync_of(a) == ("Synced".into(), second.clone())
                && a.pointer("/status/health/status") == Some(&"Healthy".into())
        })
        .await;
        second
    }

    /// Sends a GitHub push webhook; `signature` None means no header, Some("") means sign correctly.
    pub async fn push_webhook(
        &self,
        after: &str,
        signature: Option<&str>,
        body_override: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let body = body_override.unwrap_or_else(|| {
            serde_json::to_vec(&json!({
                "ref": "refs/heads/main",
                "before": "1".repeat(40),
                "after": after,
                // No commit list: the changed files are unknown, so every app on main is affected
                // whatever paths the test's commits touched.
                "repository": { "clone_url": self.repo_url, "html_url": self.repo_url, "default_branch": "main" }
            }))
            .expect("json")
        });
        let mut req = self
            .http
            .post(format!("{}/api/webhook", self.address))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
            .timeout(Duration::from_secs(30));
        match signature {
            Some("") => {
                req = req.header(
                    "x-hub-signature-256",
                    Signature::sign(self.webhook_secret.as_bytes(), &body),
                )
            }
            Some(sig) => req = req.header("x-hub-signature-256", sig),
            None => {}
        }
        req.body(body).send().await.expect("webhook request")
    }

    /// Sends a signed GitHub push of `after` to main whose commit list names `modified`, so only
    /// the apps on those paths are affected.
    pub async fn push_webhook_paths(&self, after: &str, modified: &[&str]) -> reqwest::Response {
        let body = serde_json::to_vec(&json!({
            "ref": "refs/heads/main",
            "before": "1".repeat(40),
            "after": after,
            "commits": [{ "id": after, "added": [], "removed": [], "modified": modified }],
            "repository": { "clone_url": self.repo_url, "html_url": self.repo_url, "default_branch": "main" }
        }))
        .expect("json");
        self.push_webhook(after, Some(""), Some(body)).await
    }

    /// A live object from the sandbox, or None.
    pub async fn live(
        &self,
        api_version: &str,
        kind: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(self.kube.clone(), &ar)
        } else {
            Api::namespaced_with(self.kube.clone(), namespace, &ar)
        };
        api.get_opt(name)
            .await
            .expect("sandbox answers")
            .map(|o| serde_json::to_value(o).expect("json"))
    }

    /// The live Deployment `default/name`, if any.
    pub async fn deployment(&self, name: &str) -> Option<Value> {
        self.live("apps/v1", "Deployment", "deployments", "default", name)
            .await
    }

    /// The live ConfigMap `default/name`, if any.
    pub async fn config_map(&self, name: &str) -> Option<Value> {
        self.live("v1", "ConfigMap", "configmaps", "default", name)
            .await
    }

    /// Polls the app until `check` holds, or fails with the last state seen after `secs`.
    pub async fn wait_app(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            // A 5xx while the cluster is busy is not the answer: ask again until the deadline.
            let resp = self
                .get(&format!("/api/v1/applications/{APP_NAMESPACE}/{name}"))
                .await;
            let status = resp.status();
            let app: Value = if status.is_success() {
                resp.json().await.expect("app json")
            } else {
                assert!(status.is_server_error(), "GET app {name}: {status}");
                json!({ "status": format!("GET answered {status}") })
            };
            if status.is_success() && check(&app) {
                return app;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "app {name} never reached: {what}\nlast state: {}",
                    serde_json::to_string_pretty(&app["status"]).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Polls `check` until it holds or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        if tokio::time::Instant::now() > deadline {
            panic!("never happened: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Deployment manifest with `image`.
pub fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n"
    )
}

/// A ConfigMap manifest.
pub fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value:?}\n")
}

/// `status.sync.status` and `status.sync.revision`.
pub fn sync_of(app: &Value) -> (String, String) {
    (
        app.pointer("/status/sync/status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        app.pointer("/status/sync/revision")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

/// Messages waiting in a queue, read with a passive declare.
pub async fn queue_depth(queue: &str) -> u32 {
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("amqp connect");
    let channel = conn.create_channel().await.expect("channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("queue exists");
    let _ = conn.close(0, "".into()).await;
    declared.message_count()
}

impl TestApp {
    /// The namespace the Application `name` lives in, as the REST API reports it.
    pub async fn app_namespace(&self, name: &str) -> String {
        self.get_app(name)
            .await
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .expect("the app has a namespace")
            .to_string()
    }

    /// Asks for a refresh of the Application `name` through the REST API.
    pub async fn refresh_app(&self, name: &str) -> reqwest::Response {
        let namespace = self.app_namespace(name).await;
        self.http
            .post(format!(
                "{}/api/v1/applications/{namespace}/{name}/refresh",
                self.address
            ))
            .bearer_auth(&self.api_token)
            .send()
            .await
            .expect("refresh request")
    }
}

/// Ready and unacknowledged messages of a RabbitMQ queue, as `rabbitmqctl list_queues` reports them.
pub async fn queue_ready_and_unacked(queue: &str) -> (u64, u64) {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "--no-table-headers"])
        .args(["name", "messages_ready", "messages_unacknowledged"])
        .output()
        .await
        .expect("rabbitmqctl runs (it ships with RabbitMQ)");
    assert!(
        out.status.success(),
        "rabbitmqctl list_queues: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    listing
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            if fields.next()? != queue {
                return None;
            }
            let ready = fields.next()?.parse().ok()?;
            let unacked = fields.next()?.parse().ok()?;
            Some((ready, unacked))
        })
        .unwrap_or_else(|| panic!("queue {queue} not listed by rabbitmqctl:\n{listing}"))
}

/// A name starting with `prefix` whose app lands on the same job shard as `namespace/app`, and
/// that shard; such an app is served by the same consumer (and prefetch window) as `app`.
pub fn name_on_shard_of(namespace: &str, app: &str, prefix: &str) -> (String, u16) {
    use capstan::queue::{QueueSettings, shard_for};
    let shards = QueueSettings::default().shards;
    let shard = shard_for(&format!("{namespace}/{app}"), shards);
    let name = (0..1000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|n| shard_for(&format!("{namespace}/{n}"), shards) == shard)
        .expect("a name on the same shard");
    (name, shard)
}

/// Another Capstan process in effect (its own broker connection, HTTP server and caches) on the
/// same broker prefix and cluster as `app`, with more `CAPSTAN__…` settings layered last.
pub struct Twin {
    pub address: String,
    stop: capstan::startup::StopHandle,
}

impl Drop for Twin {
    fn drop(&mut self) {
        let stop = self.stop.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(10), stop.stop()).await;
                });
            }
        })
        .join();
    }
}

/// Starts a [`Twin`] of `app` with `role`.
pub async fn spawn_twin(app: &TestApp, role: Role, extra_env: Vec<(String, String)>) -> Twin {
    let mut env = sibling_env(app, role);
    env.extend(extra_env);
    let settings = Settings::load_from(Some(&app.data_dir.path().join("capstan-test.toml")), env)
        .expect("twin settings load");
    let service = capstan::startup::Service::build(settings)
        .await
        .expect("twin builds");
    let stop = service.stop_handle();
    let address = format!("http://127.0.0.1:{}", service.port());
    tokio::spawn(service.run_until_stopped());
    Twin { address, stop }
}

/// The port from a JSON log's "capstan is listening" line, once the process wrote it.
pub fn listening_port(log: &Path) -> Option<u16> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "capstan is listening")
        .and_then(|l| l["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

/// Whether the process logging to `log` has written `what` so far.
pub fn log_says(log: &Path, what: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(what)
}

/// Sends SIGTERM to `child` and waits up to `secs` for it to exit; returns its exit code (None
/// when a signal ended it).
pub async fn terminate(child: &mut ChildGuard, secs: u64) -> Option<i32> {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGTERM to {pid}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} never exited after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the process logging JSON to `log` is listening (its workers have started).
pub async fn wait_listening(log: &Path) {
    eventually(60, "the process is listening", || {
        let listening = listening_port(log).is_some();
        async move { listening }
    })
    .await;
}
