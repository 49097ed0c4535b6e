//! `POST /api/webhook`: verify, normalise, and durably enqueue before answering 2xx.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures::future::LocalBoxFuture;
use tracing::{info, warn};

use super::ApiState;
use super::error::ApiError;
use crate::queue::Topic;
use crate::webhook::{self, Outcome};

/// How much and how long a webhook body may take to arrive; registered on the webhook route.
#[derive(Debug, Clone, Copy)]
pub struct WebhookLimits {
    /// Larger bodies are refused with 413 while they are read.
    pub max_body_bytes: usize,
    /// A body not complete within this time is refused with 408.
    pub body_timeout: Duration,
}

/// The raw body of a webhook. Encoded bodies (`Content-Encoding` other than `identity`) are refused
/// with 415 before a byte is read: a small compressed body can expand a thousandfold, and the
/// signature must cover the bytes as sent.
pub struct WebhookBody(pub web::Bytes);

impl FromRequest for WebhookBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if let Some(encoding) = content_encoding(req) {
            return Box::pin(std::future::ready(Err(ApiError::UnsupportedMediaType(
                format!(
                    "Content-Encoding {encoding:?} is not accepted; send the body uncompressed"
                ),
            ))));
        }
        let body_timeout = req
            .app_data::<WebhookLimits>()
            .map_or(Duration::from_secs(30), |l| l.body_timeout);
        let read = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            match tokio::time::timeout(body_timeout, read).await {
                Err(_) => Err(ApiError::Timeout(format!(
                    "request body not received within {} ms",
                    body_timeout.as_millis()
                ))),
                Ok(Ok(bytes)) => Ok(WebhookBody(bytes)),
                Ok(Err(e)) => Err(match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => {
                        ApiError::PayloadTooLarge("request body is too large".into())
                    }
                    _ => ApiError::BadRequest(format!("cannot read request body: {e}")),
                }),
            }
        })
    }
}

/// The request's content coding, unless it is absent or `identity`; a header that is not text
/// counts as an encoding (it is certainly not `identity`).
fn content_encoding(req: &HttpRequest) -> Option<String> {
    let mut found = None;
    for value in req.headers().get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().unwrap_or("(not text)");
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("identity") {
                found = Some(coding.chars().take(40).collect());
            }
        }
    }
    found
}

/// Receives one delivery from any Git host. 202 means the event is in the queue (confirmed).
pub async fn receive(
    req: HttpRequest,
    body: WebhookBody,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let delivery = req
        .headers()
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!("webhook", delivery = %delivery, bytes = body.len());
    let outcome = {
        let _enter = span.enter();
        webhook::receive(req.headers(), &body, &state.webhook_secrets).inspect_err(|e| {
            warn!(error = %e, "webhook refused");
        })?
    };
    let event = match outcome {
        Outcome::Ignored(reason) => {
            info!(parent: &span, reason = %reason, "webhook ignored");
            return Ok(HttpResponse::Ok()
                .json(serde_json::json!({ "status": "ignored", "reason": reason })));
        }
        Outcome::Event(event) => event,
    };
    let message = serde_json::to_vec(&event)
        .map_err(|e| ApiError::Internal(format!("serialising the event: {e}")))?;
    state
        .queue
        .publish(Topic::Events, "", &event.id, message)
        .await
        .inspect_err(|e| warn!(parent: &span, error = %e, "event not queued"))?;
    info!(parent: &span, event_id = %event.id, "event queued");
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "status": "queued", "id": event.id })))
}
