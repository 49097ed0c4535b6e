//! `POST /api/webhook`: verify, normalise, and durably enqueue before answering 2xx.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use tracing::{info, warn};

use super::{ApiState, error};
use crate::queue::Topic;
use crate::webhook::{self, Outcome};

/// Receives one delivery from any Git host. 202 means the event is in the queue (confirmed).
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let delivery = req
        .headers()
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!("webhook", delivery = %delivery, bytes = body.len());
    let _enter = span.enter();
    match webhook::receive(req.headers(), &body, &state.webhook_secrets) {
        Err(e) => {
            warn!(error = %e, "webhook refused");
            let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
            error(status, e)
        }
        Ok(Outcome::Ignored(reason)) => {
            info!(reason = %reason, "webhook ignored");
            HttpResponse::Ok().json(serde_json::json!({ "status": "ignored", "reason": reason }))
        }
        Ok(Outcome::Event(event)) => {
            let body = match serde_json::to_vec(&event) {
                Ok(b) => b,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
            };
            drop(_enter);
            match state
                .queue
                .publish(Topic::Events, "", &event.id, body)
                .await
            {
                Ok(()) => {
                    info!(parent: &span, event_id = %event.id, "event queued");
                    HttpResponse::Accepted()
                        .json(serde_json::json!({ "status": "queued", "id": event.id }))
                }
                Err(e) => {
                    warn!(parent: &span, error = %e, "event not queued");
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("event not queued, retry later: {e}"),
                    )
                }
            }
        }
    }
}
