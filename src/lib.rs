//! Capstan: GitOps continuous delivery for Kubernetes.

pub mod api;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod diff;
pub mod domain;
pub mod event;
pub mod forge;
pub mod git;
pub mod health;
pub mod job;
pub mod manifests;
pub mod metrics;
pub mod notify;
pub mod preview;
pub mod private_fs;
pub mod queue;
pub mod rbac;
pub mod render;
pub mod router;
pub mod sandbox;
pub mod secret;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tenancy;
pub mod ui;
pub mod webhook;
pub mod worker;

/// Installs the process-wide rustls crypto provider; kube, gix and lapin all use rustls.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
