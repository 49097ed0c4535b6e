//! Capstan: GitOps continuous delivery for Kubernetes.

pub mod config;
pub mod git;
pub mod health;
pub mod queue;
pub mod render;
pub mod sandbox;
pub mod telemetry;

/// Installs the process-wide rustls crypto provider; kube, gix and lapin all use rustls.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
