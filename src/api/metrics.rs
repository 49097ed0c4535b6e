//! `GET /metrics`: the process's metrics for Prometheus.

use actix_web::{HttpResponse, web};

use super::ApiState;

/// The OpenMetrics text exposition (Prometheus scrapes it as is).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text", body = String))
)]
pub async fn scrape(state: web::Data<ApiState>) -> HttpResponse {
    // Counted from the watch cache now, so the gauge is never older than the cache.
    state.metrics.set_apps(state.store.status_counts());
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
