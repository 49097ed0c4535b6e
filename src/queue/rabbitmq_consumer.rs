//! RabbitMQ consumers: moving lapin deliveries into a subscription, reading the attempt
//! number, and settling them (ack, delayed retry, reject, requeue on drop).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::AMQPValue;
use tokio::sync::mpsc;

use super::rabbitmq::{Live, SubState, classify, lock};
use super::{Delivery, QueueError, Settler};

/// Moves deliveries from one lapin consumer into a subscription.
pub(super) struct Forwarder {
    pub(super) tx: mpsc::Sender<Delivery>,
    pub(super) shard: Option<u16>,
    pub(super) max_attempts: u32,
    pub(super) retry_delay: std::time::Duration,
    pub(super) sub: Weak<SubState>,
    pub(super) live: Weak<Live>,
}

impl Forwarder {
    pub(super) async fn run(self, mut consumer: lapin::Consumer) {
        while let Some(item) = consumer.next().await {
            match item {
                Ok(d) => {
                    let delivery = self.convert(d);
                    if self.tx.send(delivery).await.is_err() {
                        // The subscriber is gone; the dropped delivery requeues itself.
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "consumer stopped");
                    break;
                }
            }
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

    fn convert(&self, d: lapin::message::Delivery) -> Delivery {
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
        Delivery {
            id,
            body: d.data,
            attempt,
            shard: self.shard,
            settler: Settler::Rabbit(RabbitSettler {
                acker: d.acker,
                max_attempts: self.max_attempts,
                retry_delay: self.retry_delay,
                settled: false,
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
    settled: bool,
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
    pub(crate) async fn ack(mut self) -> Result<(), QueueError> {
        self.settled = true;
        settled("ack", self.acker.ack(BasicAckOptions::default()).await)
    }

    pub(crate) async fn retry(mut self, attempt: u32) -> Result<(), QueueError> {
        self.settled = true;
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
        self.settled = true;
        let r = self
            .acker
            .reject(BasicRejectOptions { requeue: false })
            .await;
        settled("reject", r)
    }
}

impl Drop for RabbitSettler {
    fn drop(&mut self) {
        if self.settled {
            return;
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
