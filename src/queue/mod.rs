//! The queue that carries signals and jobs: RabbitMQ or embedded.
//!
//! The queue moves opaque bytes; PushEvent and Job encoding belongs to the caller.
//! Three topics exist: `Events` (one queue, competing consumers), `Jobs` (N shard queues,
//! one active consumer per shard so one Application is never handled by two processes at once)
//! and `Notifications` (one queue, competing consumers: a slow receiver must hold up no sync).
//! Nothing is acknowledged automatically: every [`Delivery`] must be acked, retried or rejected,
//! and a Delivery dropped unsettled is redelivered.

pub mod embedded;
pub mod rabbitmq;
mod rabbitmq_claim;
mod rabbitmq_consumer;
mod rabbitmq_generation;
mod rabbitmq_migrate;
mod rabbitmq_shards;
mod settings;
mod supervisor;
mod topology;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

pub use embedded::{DeadLetter, DeadReason, EmbeddedQueue};
pub use rabbitmq::RabbitQueue;
pub use rabbitmq_consumer::{ATTEMPTS_HEADER, KEY_HEADER, ORIGINAL_ID_HEADER, REASON_HEADER};
pub use rabbitmq_migrate::{Generation, Migration, migrate};
pub use settings::{QueueKind, QueueSettings, redact_url};

/// The two kinds of traffic the queue carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// PushEvents, consumed by the router.
    Events,
    /// Jobs, sharded by application key and consumed by workers.
    Jobs,
    /// Notifications to send (`crate::notify`), consumed by workers beside the jobs.
    Notifications,
    /// Pull-request previews to compute and report (`crate::preview`), consumed by workers
    /// beside the jobs, so a slow preview or Git host holds up no sync.
    Previews,
}

impl Topic {
    /// The topics with one queue and competing consumers beside the jobs.
    pub const SIDE: [Topic; 2] = [Topic::Notifications, Topic::Previews];
}

/// The queue as the rest of Capstan sees it.
pub type SharedQueue = Arc<dyn Queue>;

/// A durable queue with publisher confirms and manual acknowledgement.
pub trait Queue: Send + Sync + 'static {
    /// Publishes persistently; resolves Ok only after the broker confirmed it (publisher confirm).
    /// The calling span's trace context travels with the message (`traceparent`).
    /// `key`: for Jobs the app key "ns/name" (routed to `shard_for(key)`); ignored otherwise.
    /// `id` becomes the message id.
    fn publish<'a>(
        &'a self,
        topic: Topic,
        key: &'a str,
        id: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), QueueError>>;

    /// Starts consuming a topic (all shards for Jobs); deliveries arrive through the Subscription.
    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<Subscription, QueueError>>;

    /// Whether publishing can succeed now (for /readyz).
    fn is_ready(&self) -> BoxFuture<'_, bool>;

    /// Claims `key` (e.g. a webhook delivery id) for `window`: `First` for the first claim of the
    /// key within the window across every process sharing the queue, `Duplicate` afterwards.
    /// A zero window claims nothing and is always `First`. The default, for queues without a
    /// shared window, never deduplicates.
    fn claim<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<Claim, QueueError>> {
        let _ = (key, window);
        Box::pin(async { Ok(Claim::First) })
    }

    /// Forgets a claim, best effort: called when the work a `First` claim guarded could not be
    /// queued, so the sender's redelivery is not taken for a duplicate.
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(async {})
    }

    /// Messages waiting in each of this topology's queues, by queue name (for
    /// `capstan_queue_depth`). The default, for queues that cannot tell, reports none.
    fn depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, QueueError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Reports this process's shard ownership to `metrics` from now on (`capstan_shards_owned`).
    fn report_to(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = metrics;
    }

    /// Stops consuming and closes the connection; unsettled deliveries go back to the queue.
    /// Later publishes fail with [`QueueError::Closed`].
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The outcome of [`Queue::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody claimed the key within the window: go ahead.
    First,
    /// The key was already claimed within the window: do nothing.
    Duplicate,
}

/// Claim windows are capped here (RabbitMQ's message TTL tops out near 49 days).
pub const MAX_CLAIM_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// Dead-letter reasons are cut here: a header, not a document.
pub const MAX_REASON_BYTES: usize = 1024;

/// `reason` cut to [`MAX_REASON_BYTES`] on a character boundary.
pub(crate) fn bounded_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker is down, unreachable, or did not confirm in time: the caller should answer 503.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The broker refused to take the message.
    #[error("the broker refused the message (nack)")]
    Nacked,
    /// No queue is bound for the message, so it would have been lost.
    #[error("the message could not be routed to any queue")]
    Unroutable,
    /// The broker answered with an error, e.g. topology that disagrees with an existing declaration.
    #[error("queue protocol error: {0}")]
    Protocol(String),
    /// The message cannot be sent as given (e.g. an id longer than 255 bytes).
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The broker holds another queue topology than the settings ask for (another shard count
    /// or delivery limit), or a migration between them was refused: the message says what to do.
    #[error("queue topology: {0}")]
    Topology(String),
    /// The settings cannot work (bad URL, zero shards …).
    #[error("invalid queue settings: {0}")]
    Settings(String),
    /// The queue was closed by this process.
    #[error("the queue is closed")]
    Closed,
}

/// A stream of deliveries from one topic; it keeps yielding across broker reconnects.
pub struct Subscription {
    inner: SubscriptionInner,
}

enum SubscriptionInner {
    Rabbit(rabbitmq_consumer::RabbitSubscription),
    Embedded(embedded::EmbeddedSubscription),
}

impl Subscription {
    /// Stops taking work before a shutdown: other processes take the shards over while the
    /// jobs already handed out finish; nothing new is delivered.
    pub fn stop_taking(&self) {
        if let SubscriptionInner::Rabbit(s) = &self.inner {
            s.stop_taking();
        }
    }

    /// The next delivery; `None` once the queue has been closed. Cancel-safe: dropping the
    /// future (e.g. in `tokio::select!`) loses no message.
    pub async fn next(&mut self) -> Option<Delivery> {
        match &mut self.inner {
            SubscriptionInner::Rabbit(s) => s.next().await,
            SubscriptionInner::Embedded(s) => s.next().await,
        }
    }
}

/// One message handed to a consumer; settle it with ack, retry or reject.
pub struct Delivery {
    /// The message id given at publish.
    pub id: String,
    /// The opaque message body.
    pub body: Vec<u8>,
    /// Which delivery this is: 1 for the first, 2 after one redelivery, …
    pub attempt: u32,
    /// The shard queue it came from (Jobs only).
    pub shard: Option<u16>,
    /// Cancelled when the connection it came on is lost: the queue has taken the message back
    /// and another process may be working on it already, so whoever holds it must stop acting.
    lost: tokio_util::sync::CancellationToken,
    /// The W3C trace context of the span that published it, when one was being traced.
    pub traceparent: Option<String>,
    settler: Settler,
}

enum Settler {
    Rabbit(rabbitmq_consumer::RabbitSettler),
    Embedded(embedded::EmbeddedSettler),
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("body_len", &self.body.len())
            .field("attempt", &self.attempt)
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Cancelled once this delivery can no longer be settled because its connection is gone.
    pub fn lost(&self) -> tokio_util::sync::CancellationToken {
        self.lost.clone()
    }

    /// Done: the outcome is written, the message leaves the queue.
    pub async fn ack(self) -> Result<(), QueueError> {
        match self.settler {
            Settler::Rabbit(s) => s.ack().await,
            Settler::Embedded(s) => s.ack(),
        }
    }

    /// Whether [`Delivery::retry`] would dead-letter this delivery: it is the last attempt.
    pub fn is_last_attempt(&self) -> bool {
        let max_attempts = match &self.settler {
            Settler::Rabbit(s) => s.max_attempts(),
            Settler::Embedded(s) => s.max_attempts(),
        };
        self.attempt >= max_attempts
    }

    /// Failed: redeliver later; dead-letter once attempts reach `max_attempts`.
    pub async fn retry(self) -> Result<(), QueueError> {
        match self.settler {
            Settler::Rabbit(s) => s.retry(self.attempt).await,
            Settler::Embedded(s) => s.retry(),
        }
    }

    /// Poison (unparseable): dead-letter now.
    pub async fn reject(self) -> Result<(), QueueError> {
        match self.settler {
            Settler::Rabbit(s) => s.reject().await,
            Settler::Embedded(s) => s.reject(),
        }
    }

    /// Invalid: dead-letter now, saying why. On RabbitMQ the dead-letter queue gets a copy with
    /// headers `x-capstan-reason` and `x-capstan-original-id` (the reason cut to
    /// [`MAX_REASON_BYTES`]); if that copy cannot be published the message is rejected instead,
    /// so it still reaches the dead-letter queue, without the reason.
    pub async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        let reason = bounded_reason(reason);
        match self.settler {
            Settler::Rabbit(s) => {
                s.dead_letter(&self.id, &self.body, self.attempt, reason)
                    .await
            }
            Settler::Embedded(s) => s.dead_letter(reason),
        }
    }
}

/// The shard queue for an application key: a stable hash (first 8 bytes of SHA-256), so every
/// process and every release agrees, unlike `DefaultHasher`.
pub fn shard_for(key: &str, shards: u16) -> u16 {
    if shards == 0 {
        return 0;
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(shards)) as u16
}

/// Opens the queue the settings name. For RabbitMQ an unreachable broker is not an error here:
/// the queue keeps reconnecting in the background and reports not ready until it succeeds.
pub async fn connect(settings: &QueueSettings) -> Result<SharedQueue, QueueError> {
    settings.validate()?;
    match settings.kind {
        QueueKind::Embedded => Ok(EmbeddedQueue::new(settings)?),
        QueueKind::Rabbitmq => Ok(RabbitQueue::connect(settings).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_for_is_stable_across_releases() {
        // Pinned values (computed independently from SHA-256): changing the hash would move
        // apps between shards on upgrade, and api and worker processes must agree.
        assert_eq!(shard_for("default/guestbook", 4), 1);
        assert_eq!(shard_for("argocd/app-1", 4), 0);
        assert_eq!(shard_for("argocd/app-1", 16), 12);
        assert_eq!(shard_for("team-a/payments", 4), 3);
    }

    #[test]
    fn deliveries_and_subscriptions_can_move_into_spawned_tasks() {
        fn send<T: Send>(_: &T) {}
        fn send_static<T: Send + Sync + 'static>() {}
        send_static::<Delivery>();
        send_static::<Subscription>();
        send_static::<SharedQueue>();
        // Only type-checked: the futures must be Send to be awaited inside tokio::spawn.
        #[allow(dead_code)]
        fn futures_are_send(
            mut s: Subscription,
            d: Delivery,
            e: Delivery,
            f: Delivery,
            g: Delivery,
            q: SharedQueue,
        ) {
            send(&s.next());
            send(&d.ack());
            send(&e.retry());
            send(&f.reject());
            send(&g.dead_letter("why"));
            send(&q.claim("k", Duration::from_secs(1)));
            send(&q.release("k"));
        }
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = bounded_reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES && cut.len() >= MAX_REASON_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded_reason("short"), "short");
    }

    #[test]
    fn shard_for_spreads_keys_and_stays_in_range() {
        let mut seen = [0u32; 8];
        for i in 0..800 {
            let s = shard_for(&format!("ns/app-{i}"), 8);
            seen[usize::from(s)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "uneven spread: {seen:?}");
        assert_eq!(shard_for("anything", 1), 0);
        assert_eq!(shard_for("anything", 0), 0);
    }
}
