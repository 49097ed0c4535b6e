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
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
