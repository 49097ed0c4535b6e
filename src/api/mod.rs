//! The HTTP surface: webhooks, the REST API and health endpoints (actix-web).

pub mod applications;
pub mod auth;
pub mod health;
pub mod projects;
pub mod webhook;

use std::sync::Arc;

use actix_web::{HttpResponse, http::StatusCode, web};

use crate::cluster::Cluster;
use crate::queue::SharedQueue;
use crate::secret::SecretString;
use crate::store::AppStore;
use crate::tenancy::Tenancy;
use crate::webhook::WebhookSecrets;

/// Shared state of the HTTP handlers.
pub struct ApiState {
    pub queue: SharedQueue,
    pub store: AppStore,
    pub tenancy: Tenancy,
    pub cluster: Arc<Cluster>,
    pub api_token: SecretString,
    pub webhook_secrets: WebhookSecrets,
}

/// Mounts every route; `with_api` is false for a worker-only process (health endpoints only).
pub fn configure(cfg: &mut web::ServiceConfig, max_webhook_bytes: usize, with_api: bool) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
    if !with_api {
        return;
    }
    cfg.service(
        web::resource("/api/webhook")
            .app_data(web::PayloadConfig::new(max_webhook_bytes))
            .route(web::post().to(webhook::receive)),
    )
    .service(
        web::scope("/api/v1/applications")
            .app_data(web::JsonConfig::default().limit(4 * 1024 * 1024))
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
            ),
    )
    .service(
        web::scope("/api/v1/projects")
            .app_data(web::JsonConfig::default().limit(1024 * 1024))
            .route("", web::get().to(projects::list))
            .route("", web::post().to(projects::create))
            .route("/{name}", web::get().to(projects::get))
            .route("/{name}", web::delete().to(projects::delete)),
    );
}

/// A JSON error body `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.to_string() }))
}
