//! The in-process queue: the same semantics as the RabbitMQ topology, within one process.
//!
//! Events form one queue with competing consumers. Jobs go to shard queues, each owned by one
//! subscription at a time (the first to subscribe; the next takes over when it goes away), like
//! RabbitMQ's single active consumer. Each subscription holds at most `prefetch` unsettled
//! deliveries. A delivery dropped unsettled goes back to the queue, as on a closed AMQP channel.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{
    Claim, Delivery, MAX_CLAIM_WINDOW, Queue, QueueError, QueueSettings, Settler, SharedQueue,
    Subscription, SubscriptionInner, Topic, shard_for,
};

/// Claims remembered at most; beyond it the claim closest to expiry is forgotten first, so a
/// flood of distinct keys costs bounded memory and at worst lets one old duplicate through.
const MAX_CLAIMS: usize = 100_000;

/// The in-process queue; clones share the same queues.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

/// A message that exhausted its attempts or was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The topic it was published to.
    pub topic: Topic,
    /// The shard queue it left (Jobs only).
    pub shard: Option<u16>,
    /// The message id.
    pub id: String,
    /// The message body.
    pub body: Vec<u8>,
    /// How many times it was delivered.
    pub attempts: u32,
    /// Why it was dead-lettered.
    pub reason: DeadReason,
}

/// Why a message was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadReason {
    /// A consumer rejected it as poison.
    Rejected,
    /// It was delivered `max_attempts` times without being acked.
    DeliveryLimit,
    /// A consumer dead-lettered it as invalid, saying why.
    Invalid(String),
}

struct Inner {
    settings: QueueSettings,
    state: Mutex<State>,
    /// Woken on every publish, requeue, ownership change and close.
    changed: Notify,
    /// Where shard ownership is reported, once the process has set it.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

#[derive(Default)]
struct State {
    closed: bool,
    events: VecDeque<Message>,
    notifications: VecDeque<Message>,
    previews: VecDeque<Message>,
    shards: Vec<VecDeque<Message>>,
    /// Which job subscription owns each shard.
    owners: Vec<Option<u64>>,
    /// Live job subscriptions, oldest first: the next owner when one goes away.
    job_subscribers: Vec<u64>,
    dead: Vec<DeadLetter>,
    next_subscription: u64,
    /// Claimed keys (SHA-256) and when their window ends.
    claims: HashMap<[u8; 32], Instant>,
}

struct Message {
    id: String,
    body: Vec<u8>,
    /// Deliveries so far.
    deliveries: u32,
    /// The publisher's trace context.
    traceparent: Option<String>,
}

impl EmbeddedQueue {
    /// Creates an empty queue with the shard count and limits from `settings`.
    pub fn new(settings: &QueueSettings) -> Result<Arc<Self>, QueueError> {
        settings.validate()?;
        let shards = usize::from(settings.shards);
        let state = State {
            shards: (0..shards).map(|_| VecDeque::new()).collect(),
            owners: vec![None; shards],
            ..State::default()
        };
        Ok(Arc::new(Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                state: Mutex::new(state),
                changed: Notify::new(),
                metrics: std::sync::OnceLock::new(),
            }),
        }))
    }

    /// The same queue as a [`SharedQueue`].
    pub fn shared(self: &Arc<Self>) -> SharedQueue {
        self.clone()
    }

    /// Messages dead-lettered so far, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner.lock().dead.clone()
    }

    /// Messages waiting for delivery (not counting unsettled ones) on a topic.
    pub fn pending(&self, topic: Topic) -> usize {
        let state = self.inner.lock();
        match topic {
            Topic::Events => state.events.len(),
            Topic::Jobs => state.shards.iter().map(VecDeque::len).sum(),
            Topic::Notifications => state.notifications.len(),
            Topic::Previews => state.previews.len(),
        }
    }
}

impl Inner {
    /// A poisoned lock only means another thread panicked mid-update of plain queues;
    /// the data is still consistent enough to keep serving.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports how many shards have a consumer in this process (all of them, or none).
    fn report_owned(&self, state: &State) {
        if let Some(metrics) = self.metrics.get() {
            metrics.set_shards_owned(state.owners.iter().filter(|o| o.is_some()).count());
        }
    }

    fn requeue(&self, topic: Topic, shard: Option<u16>, message: Message) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if message.deliveries >= self.settings.max_attempts {
            dead_letter(&mut state, topic, shard, message, DeadReason::DeliveryLimit);
            return;
        }
        match (topic, shard) {
            (Topic::Jobs, Some(s)) => {
                if let Some(q) = state.shards.get_mut(usize::from(s)) {
                    q.push_back(message);
                }
            }
            (Topic::Notifications, _) => state.notifications.push_back(message),
            (Topic::Previews, _) => state.previews.push_back(message),
            _ => state.events.push_back(message),
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

fn dead_letter(
    state: &mut State,
    topic: Topic,
    shard: Option<u16>,
    message: Message,
    reason: DeadReason,
) {
    state.dead.push(DeadLetter {
        topic,
        shard,
        id: message.id,
        body: message.body,
        attempts: message.deliveries,
        reason,
    });
}

impl Queue for EmbeddedQueue {
    fn publish<'a>(
        &'a self,
        topic: Topic,
        key: &'a str,
        id: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        let traceparent = crate::telemetry::current_traceparent();
        Box::pin(async move {
            let message = Message {
                id: id.to_owned(),
                body,
                deliveries: 0,
                traceparent,
            };
            let mut state = self.inner.lock();
            if state.closed {
                return Err(QueueError::Closed);
            }
            match topic {
                Topic::Events => state.events.push_back(message),
                Topic::Notifications => state.notifications.push_back(message),
                Topic::Previews => state.previews.push_back(message),
                Topic::Jobs => {
                    let shard = shard_for(key, self.inner.settings.shards);
                    match state.shards.get_mut(usize::from(shard)) {
                        Some(q) => q.push_back(message),
                        None => return Err(QueueError::Unroutable),
                    }
                }
            }
            drop(state);
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<Subscription, QueueError>> {
        Box::pin(async move {
            let mut state = self.inner.lock();
            if state.closed {
                return Err(QueueError::Closed);
            }
            let id = state.next_subscription;
            state.next_subscription += 1;
            if topic == Topic::Jobs {
                state.job_subscribers.push(id);
                for owner in state.owners.iter_mut().filter(|o| o.is_none()) {
                    *owner = Some(id);
                }
                self.inner.report_owned(&state);
            }
            drop(state);
            let sub = EmbeddedSubscription {
                inner: self.inner.clone(),
                topic,
                id,
                permits: Arc::new(Semaphore::new(usize::from(self.inner.settings.prefetch))),
                cursor: 0,
            };
            Ok(Subscription {
                inner: SubscriptionInner::Embedded(sub),
            })
        })
    }

    fn is_ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { !self.inner.lock().closed })
    }

    fn depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, QueueError>> {
        Box::pin(async move {
            // Named as on RabbitMQ, so dashboards read the same either way.
            let prefix = &self.inner.settings.prefix;
            let state = self.inner.lock();
            let mut depths = vec![(format!("{prefix}.events.router"), state.events.len() as u64)];
            for (i, shard) in state.shards.iter().enumerate() {
                depths.push((format!("{prefix}.jobs.{i}"), shard.len() as u64));
            }
            depths.push((format!("{prefix}.notify"), state.notifications.len() as u64));
            depths.push((format!("{prefix}.previews"), state.previews.len() as u64));
            depths.push((format!("{prefix}.dead"), state.dead.len() as u64));
            Ok(depths)
        })
    }

    fn report_to(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.inner.metrics.set(metrics);
        self.inner.report_owned(&self.inner.lock());
    }

    fn claim<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<Claim, QueueError>> {
        Box::pin(async move {
            if window.is_zero() {
                return Ok(Claim::First);
            }
            let digest = claim_digest(key);
            let now = Instant::now();
            let mut state = self.inner.lock();
            if state.closed {
                return Err(QueueError::Closed);
            }
            if state.claims.get(&digest).is_some_and(|&end| end > now) {
                return Ok(Claim::Duplicate);
            }
            if state.claims.len() >= MAX_CLAIMS {
                state.claims.retain(|_, end| *end > now);
            }
            if state.claims.len() >= MAX_CLAIMS {
                let soonest = state
                    .claims
                    .iter()
                    .min_by_key(|(_, end)| **end)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    state.claims.remove(&k);
                }
            }
            state
                .claims
                .insert(digest, now + window.min(MAX_CLAIM_WINDOW));
            Ok(Claim::First)
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.inner.lock().claims.remove(&claim_digest(key));
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.lock().closed = true;
            self.inner.changed.notify_waiters();
        })
    }
}

/// Keys are kept as hashes: a sender's delivery id can be long, the hash is 32 bytes.
fn claim_digest(key: &str) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&Sha256::digest(key.as_bytes()));
    digest
}

/// The embedded side of a [`Subscription`].
pub(crate) struct EmbeddedSubscription {
    inner: Arc<Inner>,
    topic: Topic,
    id: u64,
    /// One permit per unsettled delivery: the prefetch limit.
    permits: Arc<Semaphore>,
    /// Where the next scan of owned shards starts, so one busy shard cannot starve the others.
    cursor: usize,
}

impl EmbeddedSubscription {
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        let inner = self.inner.clone();
        loop {
            let notified = inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = inner.lock();
                if state.closed {
                    return None;
                }
                if let Some((shard, message)) = self.take(&mut state) {
                    return Some(self.deliver(shard, message, permit));
                }
            }
            notified.await;
        }
    }

    fn take(&mut self, state: &mut State) -> Option<(Option<u16>, Message)> {
        match self.topic {
            Topic::Events => state.events.pop_front().map(|m| (None, m)),
            Topic::Notifications => state.notifications.pop_front().map(|m| (None, m)),
            Topic::Previews => state.previews.pop_front().map(|m| (None, m)),
            Topic::Jobs => {
                let n = state.shards.len();
                for step in 0..n {
                    let i = (self.cursor + step) % n;
                    if state.owners[i] != Some(self.id) {
                        continue;
                    }
                    if let Some(m) = state.shards[i].pop_front() {
                        self.cursor = (i + 1) % n;
                        return Some((u16::try_from(i).ok(), m));
                    }
                }
                None
            }
        }
    }

    fn deliver(
        &self,
        shard: Option<u16>,
        mut message: Message,
        permit: OwnedSemaphorePermit,
    ) -> Delivery {
        message.deliveries = message.deliveries.saturating_add(1);
        Delivery {
            id: message.id.clone(),
            body: message.body.clone(),
            attempt: message.deliveries,
            shard,
            // In process: a delivery is never lost while its holder lives.
            lost: tokio_util::sync::CancellationToken::new(),
            traceparent: message.traceparent.clone(),
            settler: Settler::Embedded(EmbeddedSettler {
                inner: self.inner.clone(),
                topic: self.topic,
                shard,
                message: Some(message),
                _permit: permit,
            }),
        }
    }
}

impl Drop for EmbeddedSubscription {
    fn drop(&mut self) {
        if self.topic != Topic::Jobs {
            return;
        }
        let mut state = self.inner.lock();
        state.job_subscribers.retain(|&s| s != self.id);
        let successor = state.job_subscribers.first().copied();
        for owner in state.owners.iter_mut() {
            if *owner == Some(self.id) {
                *owner = successor;
            }
        }
        self.inner.report_owned(&state);
        drop(state);
        self.inner.changed.notify_waiters();
    }
}

/// Settles one embedded delivery; dropping it unsettled puts the message back.
pub(crate) struct EmbeddedSettler {
    inner: Arc<Inner>,
    topic: Topic,
    shard: Option<u16>,
    message: Option<Message>,
    /// Released when the delivery is settled, freeing a prefetch slot.
    _permit: OwnedSemaphorePermit,
}

impl EmbeddedSettler {
    pub(crate) fn ack(mut self) -> Result<(), QueueError> {
        self.message.take();
        Ok(())
    }

    /// The deliveries after which a retry dead-letters.
    pub(crate) fn max_attempts(&self) -> u32 {
        self.inner.settings.max_attempts
    }

    pub(crate) fn retry(mut self) -> Result<(), QueueError> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        let delay = self.inner.settings.retry_delay();
        let (inner, topic, shard) = (self.inner.clone(), self.topic, self.shard);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !delay.is_zero() && message.deliveries < inner.settings.max_attempts => {
                rt.spawn(async move {
                    tokio::time::sleep(delay).await;
                    inner.requeue(topic, shard, message);
                });
            }
            _ => inner.requeue(topic, shard, message),
        }
        Ok(())
    }

    pub(crate) fn reject(self) -> Result<(), QueueError> {
        self.dead(DeadReason::Rejected)
    }

    pub(crate) fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        self.dead(DeadReason::Invalid(reason.to_owned()))
    }

    fn dead(mut self, reason: DeadReason) -> Result<(), QueueError> {
        if let Some(message) = self.message.take() {
            let mut state = self.inner.lock();
            dead_letter(&mut state, self.topic, self.shard, message, reason);
        }
        Ok(())
    }
}

impl Drop for EmbeddedSettler {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            tracing::warn!(id = %message.id, "delivery dropped unsettled; requeueing it");
            self.inner.requeue(self.topic, self.shard, message);
        }
    }
}
