//! The sandbox cluster: an in-process, Kubernetes-API-compatible server for tests and demos.
//! It runs no containers; simulated controllers make workloads look ready.

pub mod controllers;
pub mod defaults;
pub mod delete;
pub mod discovery;
pub mod faults;
pub mod http;
pub mod kubeconfig;
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
pub mod tls;
pub mod validate;
pub mod watch;
pub mod workloads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use faults::{FaultAction, FaultMatch, Faults};
pub use persist::PersistError;

use http::Shared;
use store::{Store, TypeKey};

/// How to start a sandbox.
#[derive(Clone)]
pub struct SandboxOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Serve HTTPS only, with a CA generated at start; a token is generated when none is given.
    pub tls: bool,
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
            tls: false,
            state_file: None,
            ready_delay: Duration::from_millis(300),
        }
    }
}

impl std::fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("state_file", &self.state_file)
            .field("ready_delay", &self.ready_delay)
            .finish()
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
    /// The TLS identity could not be generated.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The kubeconfig file could not be written.
    #[error("cannot write the kubeconfig to {path}: {source}")]
    Kubeconfig {
        /// Where it was to go.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// The namespaces every cluster has.
const DEFAULT_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A running sandbox; dropping it does not stop the server, `shutdown` does.
pub struct Sandbox {
    url: String,
    ca_pem: Option<String>,
    token: Option<String>,
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

impl Sandbox {
    /// Starts a sandbox on the current tokio runtime and waits until it answers.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let mut store = match &opts.state_file {
            Some(path) => persist::load(path)?.unwrap_or_default(),
            None => Store::new(),
        };
        ensure_default_namespaces(&mut store);
        let identity = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        // kubectl sends a token only over TLS, so a TLS sandbox always has one.
        let token = match (&opts.token, opts.tls) {
            (Some(t), _) => Some(t.clone()),
            (None, true) => Some(crate::secret::random_token()),
            (None, false) => None,
        };
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: Arc::new(Faults::default()),
            token: token.clone(),
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
        .shutdown_timeout(1);
        let (server, scheme) = match &identity {
            Some(id) => (
                server.listen_rustls_0_23(listener, id.server.clone()),
                "https",
            ),
            None => (server.listen(listener), "http"),
        };
        let server = server.map_err(bind)?.run();
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

        let url = format!("{scheme}://{addr}");
        let ca_pem = identity.map(|id| id.ca_pem);
        let kubeconfig = kubeconfig::document(&url, token.as_deref(), ca_pem.as_deref());
        let client = kubeconfig::client(&kubeconfig).await?;
        let sandbox = Sandbox {
            url,
            ca_pem,
            token,
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

    /// Base URL, e.g. `http://127.0.0.1:41234` or `https://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The generated CA certificate (PEM) clients must trust; `None` for plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The bearer token every request must carry, if any (generated in TLS mode when not given).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A ready `kube::Client` for this sandbox (carrying the token if one is set).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kubeconfig document (YAML) that points kubectl at this sandbox, with its CA and token.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig.clone()
    }

    /// Writes the kubeconfig to `path` as a new 0600 file, replacing (never following) what is there.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SandboxError> {
        crate::private_fs::write_replacing(path, self.kubeconfig.as_bytes()).map_err(|source| {
            SandboxError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            }
        })
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
