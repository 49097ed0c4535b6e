//! The sandbox cluster: an in-process, Kubernetes-API-compatible server for tests and demos.
//! It runs no containers; simulated controllers make workloads look ready.
//!
//! INTERFACE STUB — the sandbox helper replaces the bodies; keep these public signatures.

pub mod controllers;
pub mod patch;
pub mod ssa;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running sandbox; dropping it does not stop the server, `shutdown` does.
pub struct Sandbox {}

impl Sandbox {
    /// Starts a sandbox on the current tokio runtime and waits until it answers.
    pub async fn start(_opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        unimplemented!("sandbox")
    }
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        unimplemented!("sandbox")
    }
    /// A ready `kube::Client` for this sandbox (carrying the token if one is set).
    pub fn client(&self) -> kube::Client {
        unimplemented!("sandbox")
    }
    /// A kubeconfig document (YAML) that points kubectl at this sandbox.
    pub fn kubeconfig_yaml(&self) -> String {
        unimplemented!("sandbox")
    }
    /// Stops serving and flushes the state file.
    pub async fn shutdown(self) {}
}
