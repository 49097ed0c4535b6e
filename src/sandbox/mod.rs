//! The sandbox cluster: an in-process, Kubernetes-API-compatible server for tests and demos.
//! It runs no containers; simulated controllers make workloads look ready.

pub mod controllers;
pub mod delete;
pub mod discovery;
pub mod faults;
pub mod http;
pub mod list_keys;
pub mod ops;
pub mod patch;
#[cfg(test)]
mod patch_tests;
pub mod persist;
pub mod resources;
pub mod scale;
pub mod selector;
pub mod sim;
pub mod ssa;
pub mod ssa_fieldset;
pub mod ssa_merge;
#[cfg(test)]
mod ssa_tests;
pub mod status;
pub mod store;
pub mod validate;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use faults::{FaultAction, Faults};
pub use persist::PersistError;

use http::Shared;
use store::{Store, TypeKey};

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// When set, objects persist in this file across restarts.
    pub state_file: Option<PathBuf>,
    /// How long simulated controllers take to make a workload ready.
    pub ready_delay: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            state_file: None,
            ready_delay: Duration::from_millis(300),
        }
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The state file cannot be loaded.
    #[error(transparent)]
    State(#[from] PersistError),
    /// The in-process kube client could not be built or could not reach the server.
    #[error("sandbox client: {0}")]
    Client(String),
}

/// The namespaces every cluster has.
const DEFAULT_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A running sandbox; dropping it does not stop the server, `shutdown` does.
pub struct Sandbox {
    url: String,
    kubeconfig: String,
    client: kube::Client,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
    state_file: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn ensure_default_namespaces(store: &mut Store) {
    let key = TypeKey::new("", "namespaces");
    for name in DEFAULT_NAMESPACES {
        if store.get(&key, "", name).is_none() {
            store.put(
                &key,
                json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "uid": uuid::Uuid::new_v4().to_string(),
                        "creationTimestamp": ops::now(),
                        "generation": 1,
                        "labels": {"kubernetes.io/metadata.name": name},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }),
            );
        }
    }
}

/// A kubeconfig document for this server (JSON strings are valid YAML scalars).
fn kubeconfig_for(url: &str, token: Option<&str>) -> String {
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    let user = match token {
        Some(t) => format!("\n    token: {}", quote(t)),
        None => " {}".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: capstan-sandbox\n  cluster:\n    server: {}\nusers:\n- name: capstan-sandbox\n  user:{user}\ncontexts:\n- name: capstan-sandbox\n  context:\n    cluster: capstan-sandbox\n    user: capstan-sandbox\n    namespace: default\ncurrent-context: capstan-sandbox\npreferences: {{}}\n",
        quote(url)
    )
}

impl Sandbox {
    /// Starts a sandbox on the current tokio runtime and waits until it answers.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let mut store = match &opts.state_file {
            Some(path) => persist::load(path)?.unwrap_or_default(),
            None => Store::new(),
        };
        ensure_default_namespaces(&mut store);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: Arc::new(Faults::default()),
            token: opts.token.clone(),
            cancel: CancellationToken::new(),
        });
        let bind = |source| SandboxError::Bind {
            addr: opts.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(opts.listen).map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(http::dispatch))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .map_err(bind)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);

        let mut tasks = vec![sim::spawn(
            shared.clone(),
            controllers::SimSettings {
                ready_delay: opts.ready_delay,
            },
        )];
        if let Some(path) = &opts.state_file {
            persist::flush(&shared, path)?;
            tasks.push(persist::spawn(shared.clone(), path.clone()));
        }

        let url = format!("http://{addr}");
        let kubeconfig = kubeconfig_for(&url, opts.token.as_deref());
        let client = client_for(&kubeconfig).await?;
        let sandbox = Sandbox {
            url,
            kubeconfig,
            client,
            shared,
            server: handle,
            state_file: opts.state_file,
            tasks,
        };
        sandbox.wait_ready().await?;
        tracing::info!(url = %sandbox.url, "Capstan sandbox listening");
        Ok(sandbox)
    }

    async fn wait_ready(&self) -> Result<(), SandboxError> {
        let mut last = String::new();
        for _ in 0..100 {
            match self.client.apiserver_version().await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(SandboxError::Client(format!(
            "sandbox did not answer: {last}"
        )))
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A ready `kube::Client` for this sandbox (carrying the token if one is set).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kubeconfig document (YAML) that points kubectl at this sandbox.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig.clone()
    }

    /// Programmatic fault injection.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The current resourceVersion counter.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv()
    }

    /// How many objects the sandbox holds, over all kinds.
    pub fn object_count(&self) -> usize {
        self.shared.lock().snapshot().len()
    }

    /// Stops serving and flushes the state file.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.server.stop(true).await;
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(path) = &self.state_file
            && let Err(e) = persist::flush(&self.shared, path)
        {
            tracing::error!(error = %e, "cannot flush sandbox state at shutdown");
        }
    }
}

async fn client_for(kubeconfig: &str) -> Result<kube::Client, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Client(e.to_string());
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).map_err(|e| err(&e))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(&e))?;
    kube::Client::try_from(config).map_err(|e| err(&e))
}
