//! `POST /api/webhook`: verify, normalise, and durably enqueue before answering 2xx.

use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures::future::LocalBoxFuture;
use tracing::{Instrument, info, warn};

use super::ApiState;
use super::error::ApiError;
use crate::event::PushEvent;
use crate::queue::{Claim, Topic};
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
#[utoipa::path(
    post,
    path = "/api/webhook",
    tag = "webhooks",
    request_body(content = Object, description = "A push event of GitHub, GitLab, Gitea, Bitbucket or Azure DevOps; the event header names the host", content_type = "application/json"),
    responses((status = 200, description = "Understood but ignored (or a redelivery)", body = WebhookAnswer), (status = 202, description = "Queued for the applications it concerns", body = WebhookAnswer), (status = 400, description = "Unknown Git host or bad payload", body = crate::api::error::ErrorBody), (status = 401, description = "Bad signature or token (reason `webhook_unauthorized`)", body = crate::api::error::ErrorBody), (status = 408, description = "Body not sent in time", body = crate::api::error::ErrorBody), (status = 413, description = "Body too large", body = crate::api::error::ErrorBody), (status = 415, description = "Not JSON", body = crate::api::error::ErrorBody), (status = 503, description = "Nothing was queued; retry", body = crate::api::error::ErrorBody))
)]
pub async fn receive(
    req: HttpRequest,
    body: WebhookBody,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let body = body.0;
    let span = tracing::info_span!(
        "webhook",
        provider = tracing::field::Empty,
        delivery = tracing::field::Empty,
        bytes = body.len()
    );
    let (provider, result) = handle(&req, &body, &state).instrument(span).await;
    let outcome = match &result {
        Ok((outcome, _)) => *outcome,
        Err(e) => refusal_label(e),
    };
    state
        .metrics
        .webhook(provider, outcome, started.elapsed().as_secs_f64());
    result.map(|(_, response)| response)
}

/// Verifies, parses and queues one delivery; returns the provider's name (or `unknown`) and the
/// outcome's label with the response.
async fn handle(
    req: &HttpRequest,
    body: &[u8],
    state: &ApiState,
) -> (&'static str, Result<(&'static str, HttpResponse), ApiError>) {
    let span = tracing::Span::current();
    let request = webhook::Request::new(req.headers(), body);
    let received = match webhook::receive(&request, &state.webhook_secrets) {
        Ok(r) => r,
        Err((provider, e)) => {
            let name = provider.map_or("unknown", |p| p.name());
            span.record("provider", name);
            warn!(error = %e, "webhook refused");
            return (name, Err(e.into()));
        }
    };
    let name = received.provider.name();
    span.record("provider", name);
    if let Some(d) = &received.delivery {
        span.record("delivery", d.as_str());
    }
    let work = match received.outcome {
        Outcome::Ignored(reason) => {
            info!(reason = %reason, "webhook ignored");
            let response = HttpResponse::Ok().json(WebhookAnswer {
                status: "ignored",
                reason: Some(reason.to_string()),
                ..Default::default()
            });
            return (name, Ok(("ignored", response)));
        }
        Outcome::PullRequest(pr) if !pr.action.wants_preview() || !state.previews_enabled => {
            let reason = if state.previews_enabled {
                format!("pull request #{} closed: nothing to preview", pr.number)
            } else {
                "pull request previews are turned off ([previews] enabled = false)".into()
            };
            info!(pr = pr.number, reason = %reason, "webhook ignored");
            let response = HttpResponse::Ok().json(WebhookAnswer {
                status: "ignored",
                reason: Some(reason),
                ..Default::default()
            });
            return (name, Ok(("ignored", response)));
        }
        Outcome::PullRequest(pr) => Work::Preview(pr),
        Outcome::Event(event) => Work::Push(event),
    };
    let claim = match &received.delivery {
        Some(delivery) if !state.dedup.window.is_zero() => {
            let key = format!("webhook/{name}/{delivery}");
            match state.dedup.claim(state.queue.as_ref(), &key).await {
                Ok(Some(Claim::First)) => Some(key),
                Ok(Some(Claim::Duplicate)) => {
                    info!("redelivery within the de-duplication window: nothing queued");
                    state.metrics.duplicate_dropped(name);
                    let response = HttpResponse::Ok().json(WebhookAnswer {
                        status: "duplicate",
                        delivery: Some(delivery.to_string()),
                        reason: Some(
                            "this delivery was already received; nothing was queued".into(),
                        ),
                        ..Default::default()
                    });
                    return (name, Ok(("duplicate", response)));
                }
                // The broker could not claim in time: queue it anyway, counted (see Dedup).
                Ok(None) => {
                    state.metrics.dedup_skipped(name);
                    None
                }
                // A broker that cannot answer a claim could not take the event either.
                Err(e) => {
                    warn!(error = %e, "delivery claim failed");
                    return (name, Err(e.into()));
                }
            }
        }
        _ => None,
    };
    let published = match work {
        Work::Push(event) => publish(state, event).await,
        Work::Preview(pr) => publish_preview(state, pr).await,
    };
    if let (Err(_), Some(key)) = (&published, &claim) {
        // Not queued: the host's redelivery must not be dropped as a duplicate.
        state.queue.release(key).await;
    }
    (name, published.map(|r| ("queued", r)))
}

/// What a delivery asks to queue.
// One lives briefly per request; boxing either variant buys nothing.
#[allow(clippy::large_enum_variant)]
enum Work {
    Push(PushEvent),
    Preview(crate::event::PullRequestEvent),
}

/// Publishes a preview request and waits for the broker's confirm.
async fn publish_preview(
    state: &ApiState,
    pr: crate::event::PullRequestEvent,
) -> Result<HttpResponse, ApiError> {
    let message = serde_json::to_vec(&pr)
        .map_err(|e| ApiError::Internal(format!("serialising the pull request event: {e}")))?;
    state
        .queue
        .publish(Topic::Previews, "", &pr.id, message)
        .await
        .inspect_err(|e| warn!(error = %e, "preview not queued"))?;
    info!(event_id = %pr.id, pr = pr.number, head = %pr.head_sha, "preview queued");
    Ok(HttpResponse::Accepted().json(WebhookAnswer {
        status: "queued",
        id: Some(pr.id),
        ..Default::default()
    }))
}

/// Publishes the event and waits for the broker's confirm.
async fn publish(state: &ApiState, event: PushEvent) -> Result<HttpResponse, ApiError> {
    let message = serde_json::to_vec(&event)
        .map_err(|e| ApiError::Internal(format!("serialising the event: {e}")))?;
    state
        .queue
        .publish(Topic::Events, "", &event.id, message)
        .await
        .inspect_err(|e| warn!(error = %e, "event not queued"))?;
    state.metrics.event_published(event.source.as_str());
    info!(event_id = %event.id, refs = event.refs.len(), "event queued");
    Ok(HttpResponse::Accepted().json(WebhookAnswer {
        status: "queued",
        id: Some(event.id),
        ..Default::default()
    }))
}

/// What a webhook that was not refused answers.
#[derive(Default, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookAnswer {
    /// `queued` (202), `ignored` or `duplicate` (200).
    pub status: &'static str,
    /// The queued event's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why nothing was queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The host's delivery id of a redelivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

/// The metrics label of a refused or failed webhook.
fn refusal_label(e: &ApiError) -> &'static str {
    match e {
        ApiError::Webhook(e) => e.kind(),
        ApiError::Queue(_) => "not_queued",
        _ => "error",
    }
}

/// Redelivery de-duplication as the webhook handler uses it: claims in the broker, bounded so
/// that a burst beyond what the broker can claim (each claim creates a queue; a few hundred per
/// second) never slows or refuses webhooks. A delivery that cannot be claimed at once is queued
/// unclaimed and counted; were it redelivered, the second copy would be queued too, which costs
/// one more refresh (jobs for one app coalesce) and nothing else.
pub struct Dedup {
    /// A delivery id seen again within this window queues nothing (zero: off).
    pub window: Duration,
    in_flight: tokio::sync::Semaphore,
    claim_timeout: Duration,
}

impl Dedup {
    /// Claims in flight at once; more concurrent deliveries go unclaimed.
    pub const MAX_IN_FLIGHT: usize = 32;
    /// A claim not answered within this time is abandoned and the delivery queued unclaimed.
    pub const CLAIM_TIMEOUT: Duration = Duration::from_millis(250);

    /// De-duplication over `window` (zero turns it off).
    pub fn new(window: Duration) -> Self {
        Dedup {
            window,
            in_flight: tokio::sync::Semaphore::new(Self::MAX_IN_FLIGHT),
            claim_timeout: Self::CLAIM_TIMEOUT,
        }
    }

    /// The broker's verdict on `key`, or None when no claim could be made at once.
    async fn claim(
        &self,
        queue: &dyn crate::queue::Queue,
        key: &str,
    ) -> Result<Option<Claim>, crate::queue::QueueError> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Ok(None);
        };
        match tokio::time::timeout(self.claim_timeout, queue.claim(key, self.window)).await {
            Ok(verdict) => verdict.map(Some),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::*;
    use crate::queue::{Queue, QueueError, Subscription};

    /// A broker whose claims never answer (overloaded), counting the claims it was asked for.
    #[derive(Default)]
    struct StalledClaims(std::sync::atomic::AtomicUsize);

    impl Queue for StalledClaims {
        fn publish<'a>(
            &'a self,
            _: Topic,
            _: &'a str,
            _: &'a str,
            _: Vec<u8>,
        ) -> BoxFuture<'a, Result<(), QueueError>> {
            Box::pin(async { Ok(()) })
        }
        fn subscribe(&self, _: Topic) -> BoxFuture<'_, Result<Subscription, QueueError>> {
            Box::pin(async { Err(QueueError::Closed) })
        }
        fn is_ready(&self) -> BoxFuture<'_, bool> {
            Box::pin(async { true })
        }
        fn claim<'a>(
            &'a self,
            _: &'a str,
            _: Duration,
        ) -> BoxFuture<'a, Result<Claim, QueueError>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(futures::future::pending())
        }
    }

    #[tokio::test]
    async fn a_claim_the_broker_cannot_answer_in_time_or_at_all_lets_the_delivery_through() {
        let queue = StalledClaims::default();
        let dedup = std::sync::Arc::new(Dedup::new(Duration::from_secs(600)));
        // Fill every permit with a stalled claim; one more is refused at once, not queued behind.
        let stalled: Vec<_> = (0..Dedup::MAX_IN_FLIGHT)
            .map(|i| {
                let dedup = dedup.clone();
                let queue = std::sync::Arc::new(StalledClaims::default());
                tokio::spawn(async move { dedup.claim(queue.as_ref(), &format!("k{i}")).await })
            })
            .collect();
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        let over = dedup.claim(&queue, "one-too-many").await.expect("no error");
        assert_eq!(over, None);
        assert_eq!(
            queue.0.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "no claim was even tried"
        );
        // The stalled ones give up after the claim timeout.
        for handle in stalled {
            assert_eq!(handle.await.expect("joined").expect("no error"), None);
        }
        let after = dedup.claim(&queue, "later").await.expect("no error");
        assert_eq!(after, None, "a claim that never answers is abandoned");
        assert_eq!(queue.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
