//! The HTTP surface: webhooks, the REST API and health endpoints (actix-web).

pub mod applications;
pub mod auth;
pub mod diff;
pub mod error;
pub mod health;
pub mod history;
pub mod manifests;
pub mod metrics;
pub mod operation;
pub mod projects;
pub mod tree;
pub mod webhook;

use std::sync::Arc;

use actix_web::web;

use crate::cluster::Cluster;
use crate::queue::SharedQueue;
use crate::secret::SecretString;
use crate::store::AppStore;
use crate::tenancy::Tenancy;
use crate::webhook::WebhookSecrets;
pub use error::ApiError;
pub use health::Readiness;
pub use webhook::WebhookLimits;

/// Shared state of the HTTP handlers.
pub struct ApiState {
    pub queue: SharedQueue,
    pub store: AppStore,
    pub tenancy: Tenancy,
    pub cluster: Arc<Cluster>,
    /// Every target cluster, for what reads an app's destination (manifests, diff, tree).
    pub clusters: crate::cluster::registry::Registry,
    pub api_token: SecretString,
    pub webhook_secrets: WebhookSecrets,
    /// Redelivery de-duplication (claims in the broker).
    pub dedup: webhook::Dedup,
    /// The cached answer of `/readyz`.
    pub readiness: Readiness,
    /// The process's metrics, served at `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Git, render cache and tools, for `…/manifests`.
    pub manifests: Arc<crate::manifests::Manifests>,
}

/// Mounts every route; `with_api` is false for a worker-only process (health endpoints only).
pub fn configure(cfg: &mut web::ServiceConfig, webhook_limits: WebhookLimits, with_api: bool) {
    cfg.app_data(web::JsonConfig::default().error_handler(error::json_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .default_service(web::to(error::not_found))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::scrape));
    if !with_api {
        return;
    }
    cfg.service(
        web::resource("/api/webhook")
            .app_data(web::PayloadConfig::new(webhook_limits.max_body_bytes))
            .app_data(webhook_limits)
            .route(web::post().to(webhook::receive)),
    )
    .service(
        web::scope("/api/v1/applications")
            .app_data(
                web::JsonConfig::default()
                    .limit(4 * 1024 * 1024)
                    .error_handler(error::json_error),
            )
            .route("", web::get().to(applications::list))
            .route("", web::post().to(applications::create))
            .route("/{namespace}/{name}", web::get().to(applications::get))
            .route(
                "/{namespace}/{name}",
                web::delete().to(applications::delete),
            )
            .route(
                "/{namespace}/{name}/refresh",
                web::post().to(applications::refresh),
            )
            .route(
                "/{namespace}/{name}/sync",
                web::post().to(applications::sync),
            )
            .route(
                "/{namespace}/{name}/manifests",
                web::get().to(manifests::get),
            )
            .route("/{namespace}/{name}/diff", web::get().to(diff::get))
            .route("/{namespace}/{name}/history", web::get().to(history::list))
            .route(
                "/{namespace}/{name}/rollback",
                web::post().to(history::rollback),
            )
            .route(
                "/{namespace}/{name}/operation",
                web::delete().to(operation::terminate),
            )
            .route(
                "/{namespace}/{name}/resource-tree",
                web::get().to(tree::get),
            ),
    )
    .service(
        web::scope("/api/v1/projects")
            .app_data(
                web::JsonConfig::default()
                    .limit(1024 * 1024)
                    .error_handler(error::json_error),
            )
            .route("", web::get().to(projects::list))
            .route("", web::post().to(projects::create))
            .route("/{name}", web::get().to(projects::get))
            .route("/{name}", web::delete().to(projects::delete)),
    );
}
