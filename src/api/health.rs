//! Liveness and readiness.

use actix_web::{HttpResponse, web};

use super::ApiState;

/// The process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the queue can take messages and the management cluster answers.
pub async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    let (queue, cluster) = tokio::join!(state.queue.is_ready(), state.cluster.is_reachable());
    let body = serde_json::json!({ "queue": queue, "cluster": cluster });
    if queue && cluster {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
