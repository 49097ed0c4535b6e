//! The RabbitMQ queue (lapin): confirmed persistent publishes, manual acks, and subscriptions
//! that survive reconnects. The connection is kept by `supervisor.rs`; deliveries are
//! forwarded and settled by `rabbitmq_consumer.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::rabbitmq_claim;
use super::rabbitmq_consumer::{Forwarder, KEY_HEADER, RabbitSubscription};
use super::rabbitmq_generation::{self, Found};
use super::rabbitmq_shards;
use super::settings::redact_url;
use super::supervisor;
use super::topology::Topology;
use super::{
    Claim, Delivery, Queue, QueueError, QueueSettings, SharedQueue, Subscription,
    SubscriptionInner, Topic,
};

/// The RabbitMQ queue.
pub struct RabbitQueue {
    shared: Arc<Shared>,
}

/// State shared between the queue handle, the supervisor task and the consumer tasks.
pub(crate) struct Shared {
    pub(crate) settings: QueueSettings,
    /// The names no generation changes (dead letters, claims, heartbeats); a connection's
    /// generation-specific names are [`Live::topology`].
    pub(crate) topology: Topology,
    pub(crate) connection_name: String,
    /// The current connection, `None` while (re)connecting.
    pub(crate) live: watch::Sender<Option<Arc<Live>>>,
    /// Subscriptions to re-establish on every new connection. Held while installing a
    /// connection so a concurrent subscribe is neither missed nor doubled.
    pub(crate) subscriptions: tokio::sync::Mutex<Vec<Arc<SubState>>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) supervisor_done: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where shard ownership is reported, once the process has set it.
    pub(crate) metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

/// One established connection with its confirm-mode publishing channel.
pub(crate) struct Live {
    pub(crate) conn: Connection,
    /// The generation the broker holds, checked against the settings when connecting.
    pub(crate) topology: Topology,
    /// Cancelled once the connection is known dead: its deliveries are back in the queue and
    /// may be with another process already.
    pub(crate) lost: CancellationToken,
    publisher: tokio::sync::Mutex<Channel>,
    /// Idle confirm-mode channels for claims, reused to save two round trips per claim.
    pub(crate) claim_channels: rabbitmq_claim::ChannelPool,
}

/// One subscription, independent of the connection it currently consumes on.
pub(crate) struct SubState {
    topic: Topic,
    /// Taken away at shutdown so the subscriber sees the end of the stream.
    pub(crate) tx: Mutex<Option<mpsc::Sender<Delivery>>>,
    pub(crate) channel: Mutex<Option<Channel>>,
    pub(crate) closed: AtomicBool,
    /// The job shards this subscription consumes (jobs only).
    pub(crate) shards: Mutex<rabbitmq_shards::Shards>,
    /// Set when the subscriber stops taking work (shutdown): no shard is taken any more.
    leaving: AtomicBool,
    /// Wakes the balancer when `leaving` is set.
    pub(crate) leaving_now: tokio::sync::Notify,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SubState {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn end(&self) {
        lock(&self.tx).take();
    }

    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    /// Stops taking work: the other processes are told, and shards' new deliveries are held.
    pub(crate) fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        self.leaving_now.notify_one();
    }
}

/// Maps lapin errors: broker answers are protocol errors, everything else means "not reachable".
pub(crate) fn classify(context: &str, e: &lapin::Error) -> QueueError {
    if e.is_amqp_error() {
        QueueError::Protocol(format!("{context}: {e}"))
    } else {
        QueueError::Unavailable(format!("{context}: {e}"))
    }
}

impl RabbitQueue {
    /// Starts the connection supervisor and waits for its first attempt (at most the publish
    /// timeout). A broker that refuses the topology or the credentials, or an unreadable
    /// `password_file`, is an error; an unreachable broker is not: the supervisor keeps
    /// retrying and `is_ready` stays false meanwhile.
    pub async fn connect(settings: &QueueSettings) -> Result<SharedQueue, QueueError> {
        Ok(Self::connect_concrete(settings).await?)
    }

    /// Like [`RabbitQueue::connect`], keeping the concrete type (tests use `connection_name`).
    pub async fn connect_concrete(settings: &QueueSettings) -> Result<Arc<Self>, QueueError> {
        settings.validate()?;
        if settings.url.parse::<lapin::uri::AMQPUri>().is_err() {
            return Err(QueueError::Settings(format!(
                "url {} is not a valid amqp:// URL",
                redact_url(&settings.url)
            )));
        }
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            topology: Topology::new(settings, 0),
            connection_name: format!(
                "capstan:{}:{}",
                settings.prefix,
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            live: watch::Sender::new(None),
            subscriptions: tokio::sync::Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
            supervisor_done: tokio::sync::Mutex::new(None),
            metrics: std::sync::OnceLock::new(),
        });
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(supervisor::run(shared.clone(), first_tx));
        *shared.supervisor_done.lock().await = Some(handle);
        let queue = Arc::new(Self { shared });
        match tokio::time::timeout(queue.shared.settings.publish_timeout(), first_rx).await {
            Ok(Ok(Err(
                e @ (QueueError::Protocol(_) | QueueError::Settings(_) | QueueError::Topology(_)),
            ))) => {
                queue.close().await;
                Err(e)
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(url = %redact_url(&settings.url), error = %e, "RabbitMQ not reachable yet; retrying in the background");
                Ok(queue)
            }
            Ok(Ok(Ok(()))) => Ok(queue),
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(url = %redact_url(&settings.url), "RabbitMQ did not answer in time; retrying in the background");
                Ok(queue)
            }
        }
    }

    /// The name this process's connection carries in `rabbitmqctl list_connections`.
    pub fn connection_name(&self) -> &str {
        &self.shared.connection_name
    }

    /// The live connection, waiting (within the caller's timeout) through a reconnect.
    async fn current(&self) -> Result<Arc<Live>, QueueError> {
        let mut rx = self.shared.live.subscribe();
        let usable = |l: &Option<Arc<Live>>| l.as_ref().is_some_and(|l| l.is_usable());
        tokio::select! {
            _ = self.shared.shutdown.cancelled() => Err(QueueError::Closed),
            live = rx.wait_for(usable) => match live {
                Ok(live) => live.clone().ok_or(QueueError::Closed),
                Err(_) => Err(QueueError::Closed),
            },
        }
    }

    async fn publish_confirmed(
        &self,
        topic: Topic,
        key: &str,
        id: &str,
        body: Vec<u8>,
        traceparent: Option<String>,
    ) -> Result<(), QueueError> {
        let message_id = ShortString::try_new(id)
            .map_err(|_| QueueError::Invalid("message id longer than 255 bytes".to_owned()))?;
        let live = self.current().await?;
        let (exchange, routing_key) = live.topology.route(topic, key);
        let channel = live.publishing_channel().await?;
        let mut headers = FieldTable::default();
        if let Some(traceparent) = traceparent {
            headers.insert(
                crate::telemetry::TRACEPARENT.into(),
                AMQPValue::LongString(traceparent.into()),
            );
        }
        if topic == Topic::Jobs {
            headers.insert(KEY_HEADER.into(), AMQPValue::LongString(key.into()));
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(message_id)
            .with_content_type("application/json".into())
            .with_headers(headers);
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                routing_key.as_str().into(),
                options,
                &body,
                properties,
            )
            .await
            .map_err(|e| QueueError::Unavailable(format!("publish: {e}")))?;
        confirmed(
            confirm
                .await
                .map_err(|e| QueueError::Unavailable(format!("publish confirm: {e}")))?,
        )
    }
}

/// A published message is safe only when the broker took it and routed it to a queue.
pub(crate) fn confirmed(confirmation: Confirmation) -> Result<(), QueueError> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable),
        Confirmation::Nack(_) => Err(QueueError::Nacked),
        Confirmation::NotRequested => Err(QueueError::Protocol(
            "publisher confirms are not enabled on the channel".to_owned(),
        )),
    }
}

impl Live {
    /// Connects, checks the broker's topology generation against the settings, declares it and
    /// opens the confirm-mode publishing channel.
    pub(crate) async fn establish(shared: &Shared) -> Result<Self, QueueError> {
        let url = shared.settings.connection_url()?;
        let props = ConnectionProperties::default()
            .with_connection_name(shared.connection_name.as_str().into());
        let conn = Connection::connect(&url, props)
            .await
            .map_err(|e| classify("connect", &e))?;
        // Half the connect budget, so a lock held by a migration is reported as such.
        let wait = shared.settings.publish_timeout() / 2;
        let topology = match rabbitmq_generation::establish(&conn, &shared.settings, wait).await {
            Ok(t) => t,
            Err(e) => {
                let _ = conn.close(200, "topology refused".into()).await;
                return Err(e);
            }
        };
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| classify("open channel", &e))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| classify("confirm.select", &e))?;
        Ok(Self {
            conn,
            topology,
            lost: CancellationToken::new(),
            publisher: tokio::sync::Mutex::new(ch),
            claim_channels: rabbitmq_claim::ChannelPool::default(),
        })
    }

    /// The publishing channel, reopened if the broker closed it (a channel error closes only it).
    pub(crate) async fn publishing_channel(&self) -> Result<Channel, QueueError> {
        let mut ch = self.publisher.lock().await;
        if !ch.status().connected() {
            let fresh = self
                .conn
                .create_channel()
                .await
                .map_err(|e| classify("open channel", &e))?;
            fresh
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| classify("confirm.select", &e))?;
            *ch = fresh;
        }
        Ok(ch.clone())
    }

    pub(crate) fn is_usable(&self) -> bool {
        self.conn.status().connected()
    }

    /// Opens a channel for `sub` and starts one consumer per queue of its topic.
    pub(crate) async fn start_consumers(
        self: &Arc<Self>,
        shared: &Shared,
        sub: &Arc<SubState>,
    ) -> Result<(), QueueError> {
        let Some(tx) = lock(&sub.tx).clone() else {
            return Ok(());
        };
        let ch = self
            .conn
            .create_channel()
            .await
            .map_err(|e| classify("open channel", &e))?;
        ch.basic_qos(shared.settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| classify("basic.qos", &e))?;
        if sub.topic == Topic::Jobs {
            // Jobs: only the shards this process owns (see rabbitmq_shards.rs).
            let old = lock(&sub.channel).replace(ch);
            if let Some(old) = old {
                tokio::spawn(async move { old.close(200, "replaced".into()).await });
            }
            return rabbitmq_shards::resume(self, shared, sub).await;
        }
        let dead_exchange: Arc<str> = shared.topology.dead_queue().into();
        for (queue, shard) in self.topology.queues(sub.topic) {
            let consumer = ch
                .basic_consume(
                    queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| classify("basic.consume", &e))?;
            let forward = Forwarder {
                tx: tx.clone(),
                shard,
                max_attempts: shared.settings.max_attempts,
                retry_delay: shared.settings.retry_delay(),
                dead_exchange: dead_exchange.clone(),
                publish_timeout: shared.settings.publish_timeout(),
                sub: Arc::downgrade(sub),
                live: Arc::downgrade(self),
                gate: None,
                metrics: shard.and(shared.metrics.get().cloned()),
            };
            if let Some(metrics) = &forward.metrics {
                metrics.shards_owned.inc();
            }
            tokio::spawn(forward.run(consumer));
        }
        let old = lock(&sub.channel).replace(ch);
        if let Some(old) = old {
            tokio::spawn(async move { old.close(200, "replaced".into()).await });
        }
        Ok(())
    }
}

impl Queue for RabbitQueue {
    fn publish<'a>(
        &'a self,
        topic: Topic,
        key: &'a str,
        id: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        // Read now, in the caller's span: the future may first be polled elsewhere.
        let traceparent = crate::telemetry::current_traceparent();
        Box::pin(async move {
            if self.shared.shutdown.is_cancelled() {
                return Err(QueueError::Closed);
            }
            let timeout = self.shared.settings.publish_timeout();
            let publish = self.publish_confirmed(topic, key, id, body, traceparent);
            match tokio::time::timeout(timeout, publish).await {
                Ok(r) => r,
                Err(_) => Err(QueueError::Unavailable(format!(
                    "not confirmed within {} ms",
                    timeout.as_millis()
                ))),
            }
        })
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<Subscription, QueueError>> {
        Box::pin(async move {
            if self.shared.shutdown.is_cancelled() {
                return Err(QueueError::Closed);
            }
            let (tx, rx) = mpsc::channel(usize::from(self.shared.settings.prefetch));
            let state = Arc::new(SubState {
                topic,
                tx: Mutex::new(Some(tx)),
                channel: Mutex::new(None),
                closed: AtomicBool::new(false),
                shards: Mutex::default(),
                leaving: AtomicBool::new(false),
                leaving_now: tokio::sync::Notify::new(),
            });
            let mut subs = self.shared.subscriptions.lock().await;
            subs.retain(|s| !s.is_closed());
            let live = self.shared.live.borrow().clone();
            if let Some(live) = live {
                let timeout = self.shared.settings.publish_timeout();
                let started =
                    tokio::time::timeout(timeout, live.start_consumers(&self.shared, &state))
                        .await
                        .unwrap_or_else(|_| {
                            Err(QueueError::Unavailable(
                                "consumer start timed out".to_owned(),
                            ))
                        });
                match started {
                    // The connection is going away; the supervisor resubscribes on the next one.
                    Err(QueueError::Unavailable(e)) => {
                        tracing::debug!(error = %e, "subscribe deferred to the next connection")
                    }
                    other => other?,
                }
            }
            subs.push(state.clone());
            if topic == Topic::Jobs {
                tokio::spawn(rabbitmq_shards::balance(self.shared.clone(), state.clone()));
            }
            Ok(Subscription {
                inner: SubscriptionInner::Rabbit(RabbitSubscription { rx, state }),
            })
        })
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
            if self.shared.shutdown.is_cancelled() {
                return Err(QueueError::Closed);
            }
            let queue = self.shared.topology.seen_queue(key);
            let timeout = self.shared.settings.publish_timeout();
            let claimed = tokio::time::timeout(timeout, async {
                let live = self.current().await?;
                rabbitmq_claim::claim(&live.conn, &live.claim_channels, &queue, window).await
            });
            match claimed.await {
                Ok(r) => r,
                Err(_) => Err(QueueError::Unavailable(format!(
                    "claim not answered within {} ms",
                    timeout.as_millis()
                ))),
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let queue = self.shared.topology.seen_queue(key);
            let timeout = self.shared.settings.publish_timeout();
            let released = tokio::time::timeout(timeout, async {
                let live = self.current().await?;
                rabbitmq_claim::release(&live.conn, &queue).await
            });
            match released.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not release a claim"),
                Err(_) => tracing::warn!("releasing a claim timed out"),
            }
        })
    }

    fn is_ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let live = self.shared.live.borrow().clone();
            let Some(live) = live else { return false };
            let timeout = self.shared.settings.publish_timeout();
            live.is_usable()
                && matches!(
                    tokio::time::timeout(timeout, live.publishing_channel()).await,
                    Ok(Ok(_))
                )
        })
    }

    fn depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, QueueError>> {
        Box::pin(async move {
            let timeout = self.shared.settings.publish_timeout();
            let sampled = tokio::time::timeout(timeout, async {
                let live = self.current().await?;
                let ch = live
                    .conn
                    .create_channel()
                    .await
                    .map_err(|e| classify("open channel", &e))?;
                let topology = &live.topology;
                let mut names: Vec<String> = topology
                    .queues(Topic::Events)
                    .into_iter()
                    .chain(topology.queues(Topic::Jobs))
                    .chain(Topic::SIDE.iter().flat_map(|t| topology.queues(*t)))
                    .map(|(name, _)| name)
                    .collect();
                names.push(topology.dead_queue());
                let mut depths = Vec::with_capacity(names.len());
                // A passive declare changes nothing and answers with the queue's message count.
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                for name in names {
                    let queue = ch
                        .queue_declare(name.as_str().into(), passive, FieldTable::default())
                        .await
                        .map_err(|e| classify("queue.declare (passive)", &e))?;
                    depths.push((name, u64::from(queue.message_count())));
                }
                let _ = ch.close(200, "sampled".into()).await;
                Ok(depths)
            });
            match sampled.await {
                Ok(r) => r,
                Err(_) => Err(QueueError::Unavailable(format!(
                    "queue depths not answered within {} ms",
                    timeout.as_millis()
                ))),
            }
        })
    }

    fn report_to(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.shared.metrics.set(metrics);
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.shutdown.cancel();
            let handle = self.shared.supervisor_done.lock().await.take();
            if let Some(handle) = handle {
                let _ = handle.await;
            }
        })
    }
}

impl Drop for RabbitQueue {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Deletes the queues and exchanges for `settings.prefix` (the recorded generation's),
/// messages included (tests, teardown).
pub async fn delete_topology(settings: &QueueSettings) -> Result<(), QueueError> {
    let conn = Connection::connect(&settings.connection_url()?, ConnectionProperties::default())
        .await
        .map_err(|e| classify("connect", &e))?;
    let names = Topology::new(settings, 0);
    let topology = match rabbitmq_generation::inspect(&conn, &names).await? {
        Found::Marked(m) => Topology::found(&settings.prefix, m.shards, m.generation),
        Found::Unmarked { shards } => Topology::found(&settings.prefix, shards, 0),
        Found::Nothing => names,
    };
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| classify("open channel", &e))?;
    let result = topology
        .delete(&ch)
        .await
        .map_err(|e| classify("delete", &e));
    let _ = conn.close(200, "done".into()).await;
    result
}
