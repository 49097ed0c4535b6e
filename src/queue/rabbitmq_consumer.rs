//! RabbitMQ consumers: moving lapin deliveries into a subscription, reading the attempt
//! number, and settling them (ack, delayed retry, reject, requeue on drop).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use tokio::sync::mpsc;

use super::rabbitmq::{Live, SubState, classify, lock};
use super::rabbitmq_shards::ShardGate;
use super::{Delivery, QueueError, Settler};
use tokio_util::sync::CancellationToken;

/// Header of a dead-lettered copy: why the consumer refused the message.
pub const REASON_HEADER: &str = "x-capstan-reason";
/// Header of a dead-lettered copy: the original message id.
pub const ORIGINAL_ID_HEADER: &str = "x-capstan-original-id";
/// Header of a job: the key it was routed by (the app), so a migration can route it again.
pub const KEY_HEADER: &str = "x-capstan-key";
/// Header of a dead-lettered copy: which delivery of the message was refused.
pub const ATTEMPTS_HEADER: &str = "x-capstan-attempts";

/// Moves deliveries from one lapin consumer into a subscription.
pub(super) struct Forwarder {
    pub(super) tx: mpsc::Sender<Delivery>,
    pub(super) shard: Option<u16>,
    pub(super) max_attempts: u32,
    pub(super) retry_delay: std::time::Duration,
    /// Where `dead_letter` publishes its copy.
    pub(super) dead_exchange: Arc<str>,
    pub(super) publish_timeout: std::time::Duration,
    pub(super) sub: Weak<SubState>,
    pub(super) live: Weak<Live>,
    /// A job shard's gate: counts what is out, holds new deliveries during a hand-over.
    pub(super) gate: Option<Arc<ShardGate>>,
    /// Set for a job shard's consumer: shard ownership is reported there.
    pub(super) metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Forwarder {
    pub(super) async fn run(self, mut consumer: lapin::Consumer) {
        // Deliveries held back while the shard is handed over; dropping them (when the
        // consumer ends) returns them to the queue for the next owner.
        let mut held = Vec::new();
        while let Some(item) = consumer.next().await {
            match item {
                Ok(d) => {
                    let admitted = self.gate.as_ref().is_none_or(|g| g.admit());
                    let delivery = self.convert(d, admitted);
                    if !admitted {
                        held.push(delivery);
                        continue;
                    }
                    if self.tx.send(delivery).await.is_err() {
                        // The subscriber is gone; the dropped delivery requeues itself.
                        if let Some(metrics) = &self.metrics {
                            metrics.shards_owned.dec();
                        }
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "consumer stopped");
                    break;
                }
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.shards_owned.dec();
        }
        if self.gate.as_ref().is_some_and(|g| g.is_released()) {
            // This process handed the shard over on purpose.
            return;
        }
        let wanted = self.sub.upgrade().is_some_and(|s| !s.is_closed());
        if let (true, Some(live)) = (wanted, self.live.upgrade())
            && live.is_usable()
        {
            // The broker cancelled a consumer the subscriber still wants while the connection
            // stays up: drop the connection so the supervisor rebuilds everything.
            tracing::warn!("consumer cancelled by the broker; reconnecting");
            let _ = live.conn.close(320, "consumer lost".into()).await;
        }
    }

    /// The delivery for the subscriber; `counted` when the shard's gate counted it in.
    fn convert(&self, d: lapin::message::Delivery, counted: bool) -> Delivery {
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let count = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count"))
            .and_then(as_u32);
        let attempt = match count {
            Some(n) => n.saturating_add(1),
            None if d.redelivered => 2,
            None => 1,
        };
        let lost = self
            .live
            .upgrade()
            .map(|l| l.lost.clone())
            .unwrap_or_else(|| {
                let gone = CancellationToken::new();
                gone.cancel();
                gone
            });
        let traceparent = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(crate::telemetry::TRACEPARENT))
            .and_then(|v| match v {
                AMQPValue::LongString(s) => Some(s.to_string()),
                _ => None,
            });
        Delivery {
            id,
            body: d.data,
            attempt,
            shard: self.shard,
            lost,
            traceparent,
            settler: Settler::Rabbit(RabbitSettler {
                acker: d.acker,
                max_attempts: self.max_attempts,
                retry_delay: self.retry_delay,
                dead_exchange: self.dead_exchange.clone(),
                publish_timeout: self.publish_timeout,
                live: self.live.clone(),
                settled: false,
                gate: self.gate.clone().filter(|_| counted),
            }),
        }
    }
}

/// Reads an integer header whatever width the broker chose.
fn as_u32(v: &AMQPValue) -> Option<u32> {
    let n: i64 = match v {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => return None,
    };
    Some(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

/// Settles one RabbitMQ delivery; dropping it unsettled requeues the message.
pub(crate) struct RabbitSettler {
    acker: lapin::Acker,
    max_attempts: u32,
    retry_delay: std::time::Duration,
    dead_exchange: Arc<str>,
    publish_timeout: std::time::Duration,
    live: Weak<Live>,
    settled: bool,
    /// The shard gate that counted this delivery in, told when it is settled.
    gate: Option<Arc<ShardGate>>,
}

impl RabbitSettler {
    /// The deliveries after which a retry dead-letters.
    pub(super) fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
}

/// The acker refuses when its channel closed; the broker then redelivers the message anyway.
fn settled(what: &str, r: lapin::Result<bool>) -> Result<(), QueueError> {
    match r {
        Ok(true) => Ok(()),
        Ok(false) => Err(QueueError::Unavailable(format!(
            "{what}: channel closed; the message will be redelivered"
        ))),
        Err(e) => Err(classify(what, &e)),
    }
}

impl RabbitSettler {
    /// Marks the delivery settled and tells its shard gate.
    fn done(&mut self) {
        self.settled = true;
        if let Some(gate) = self.gate.take() {
            gate.leave();
        }
    }

    pub(crate) async fn ack(mut self) -> Result<(), QueueError> {
        self.done();
        settled("ack", self.acker.ack(BasicAckOptions::default()).await)
    }

    pub(crate) async fn retry(mut self, attempt: u32) -> Result<(), QueueError> {
        self.done();
        if attempt >= self.max_attempts {
            let r = self
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await;
            return settled("reject", r);
        }
        let requeue = BasicNackOptions {
            requeue: true,
            multiple: false,
        };
        if self.retry_delay.is_zero() {
            return settled("nack", self.acker.nack(requeue).await);
        }
        // Hold the message for the delay, then hand it back; if the process dies meanwhile the
        // broker redelivers it anyway.
        let (acker, delay) = (self.acker.clone(), self.retry_delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = settled("nack", acker.nack(requeue).await) {
                tracing::debug!(error = %e, "delayed retry");
            }
        });
        Ok(())
    }

    pub(crate) async fn reject(mut self) -> Result<(), QueueError> {
        self.done();
        let r = self
            .acker
            .reject(BasicRejectOptions { requeue: false })
            .await;
        settled("reject", r)
    }
}

impl RabbitSettler {
    /// Publishes a copy carrying the reason to the dead-letter exchange, confirmed, then acks
    /// the original; if the copy cannot be published, rejects (the queue's own dead-lettering).
    pub(crate) async fn dead_letter(
        self,
        id: &str,
        body: &[u8],
        attempt: u32,
        reason: &str,
    ) -> Result<(), QueueError> {
        let copy = self.publish_dead_copy(id, body, attempt, reason);
        match tokio::time::timeout(self.publish_timeout, copy).await {
            Ok(Ok(())) => self.ack().await,
            Ok(Err(e)) => {
                tracing::warn!(message_id = %id, error = %e, "dead-lettering without the reason");
                self.reject().await
            }
            Err(_) => {
                tracing::warn!(message_id = %id, "dead-letter copy not confirmed in time; rejecting");
                self.reject().await
            }
        }
    }

    async fn publish_dead_copy(
        &self,
        id: &str,
        body: &[u8],
        attempt: u32,
        reason: &str,
    ) -> Result<(), QueueError> {
        let live = self
            .live
            .upgrade()
            .ok_or_else(|| QueueError::Unavailable("the connection is gone".to_owned()))?;
        let channel = live.publishing_channel().await?;
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(ORIGINAL_ID_HEADER.into(), AMQPValue::LongString(id.into()));
        headers.insert(
            ATTEMPTS_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers);
        // The id came from a message id, so it fits; an empty one is left out.
        if let Ok(message_id) = ShortString::try_new(id)
            && !id.is_empty()
        {
            properties = properties.with_message_id(message_id);
        }
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirm = channel
            .basic_publish(
                self.dead_exchange.as_ref().into(),
                "".into(),
                options,
                body,
                properties,
            )
            .await
            .map_err(|e| classify("publish dead letter", &e))?;
        super::rabbitmq::confirmed(
            confirm
                .await
                .map_err(|e| classify("dead letter confirm", &e))?,
        )
    }
}

impl Drop for RabbitSettler {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if let Some(gate) = self.gate.take() {
            gate.leave();
        }
        tracing::warn!("delivery dropped unsettled; requeueing it");
        let acker = self.acker.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await;
            });
        }
    }
}

/// The RabbitMQ side of a [`Subscription`].
pub(crate) struct RabbitSubscription {
    pub(super) rx: mpsc::Receiver<Delivery>,
    pub(super) state: Arc<SubState>,
}

impl RabbitSubscription {
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// Stops taking work: the others take the shards over, new deliveries are held.
    pub(crate) fn stop_taking(&self) {
        self.state.leave();
    }
}

impl Drop for RabbitSubscription {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::Release);
        self.state.end();
        // Closing the channel hands a single-active-consumer shard to the next consumer and
        // returns unsettled messages.
        if let Some(ch) = lock(&self.state.channel).take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move { ch.close(200, "unsubscribed".into()).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_count_headers_of_any_width_or_sign_are_read_safely() {
        assert_eq!(as_u32(&AMQPValue::LongLongInt(3)), Some(3));
        assert_eq!(as_u32(&AMQPValue::LongInt(2)), Some(2));
        assert_eq!(as_u32(&AMQPValue::ShortShortUInt(1)), Some(1));
        assert_eq!(as_u32(&AMQPValue::LongLongInt(-5)), Some(0));
        assert_eq!(as_u32(&AMQPValue::LongLongInt(i64::MAX)), Some(u32::MAX));
        assert_eq!(as_u32(&AMQPValue::LongString("7".into())), None);
        assert_eq!(as_u32(&AMQPValue::Void), None);
    }
}
