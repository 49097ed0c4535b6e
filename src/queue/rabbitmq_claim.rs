//! Claims on RabbitMQ: an atomic test-and-set across processes, with no plugin.
//!
//! A claim declares a transient classic queue for the key that holds at most one message and
//! refuses publishes beyond that (`x-max-length` 1, `x-overflow` reject-publish), then publishes
//! one marker to it with a publisher confirm. The broker serialises publishes to one queue, so
//! exactly one claimant gets the Ack (First) and every other a Nack (Duplicate). The marker
//! expires `window` after the first claim (`x-message-ttl`), after which the key can be claimed
//! again; the queue itself goes away once unused for `window` (`x-expires`). A claim has a
//! channel to itself (taken from a small pool of idle ones): a channel error (e.g. a queue
//! declared by a process configured with another window) fails only that claim, and a channel is
//! retired after `USES_PER_CHANNEL` claims because lapin remembers every queue declared on it.

use std::sync::Mutex;
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ErrorKind};

use super::rabbitmq::{classify, lock};
use super::{Claim, MAX_CLAIM_WINDOW, QueueError};

/// Idle claim channels kept at most; more concurrent claims open (and then close) their own.
const IDLE_CHANNELS: usize = 16;
/// Claims one channel serves before it is closed (lapin keeps a record per declared queue).
const USES_PER_CHANNEL: u32 = 1000;

/// Idle confirm-mode channels of one connection, ready for the next claim.
#[derive(Default)]
pub(crate) struct ChannelPool {
    idle: Mutex<Vec<(Channel, u32)>>,
}

/// Claims `queue` for `window` (non-zero) on `conn`.
pub(super) async fn claim(
    conn: &Connection,
    pool: &ChannelPool,
    queue: &str,
    window: Duration,
) -> Result<Claim, QueueError> {
    let ms = window.min(MAX_CLAIM_WINDOW).as_millis().max(1);
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    // One retry: the queue may expire between our declare and our publish.
    match claim_once(conn, pool, queue, ms).await {
        Err(QueueError::Unroutable) => claim_once(conn, pool, queue, ms).await,
        other => other,
    }
}

async fn claim_once(
    conn: &Connection,
    pool: &ChannelPool,
    queue: &str,
    ms: i64,
) -> Result<Claim, QueueError> {
    let mut ch = pooled_channel(conn, pool).await?;
    let declared = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            claim_arguments(ms),
        )
        .await;
    if let Err(e) = declared {
        if !is_precondition_failed(&e) {
            return Err(classify("declare claim queue", &e));
        }
        // Declared by a process with another window: that queue's own limits still make the
        // publish below an atomic test-and-set, so use it as it is (on a fresh channel: the
        // error closed this one).
        ch = pooled_channel(conn, pool).await?;
    }
    let confirmation = publish_marker(&ch, queue).await?;
    // The channel answered everything asked on it: the next claim may use it.
    ch.reusable = true;
    match confirmation {
        Confirmation::Ack(None) => Ok(Claim::First),
        // A nack can also mean a broker-side failure; only a queue that holds the marker
        // proves an earlier claim.
        Confirmation::Nack(_) => match marker_count(conn, queue).await? {
            0 => Err(QueueError::Nacked),
            _ => Ok(Claim::Duplicate),
        },
        Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable),
        Confirmation::NotRequested => Err(QueueError::Protocol(
            "publisher confirms are not enabled on the claim channel".to_owned(),
        )),
    }
}

/// Deletes the claim queue, so the next claim of its key is First.
pub(super) async fn release(conn: &Connection, queue: &str) -> Result<(), QueueError> {
    let ch = open_channel(conn, None).await?;
    ch.queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| classify("delete claim queue", &e))
}

fn claim_arguments(ms: i64) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms));
    args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
    args
}

/// A claim's channel. Dropped, it goes back to the pool if the claim finished its exchange
/// with the broker on it, and is closed otherwise, also when the claim future is cancelled (a
/// timeout, a client gone): an abandoned channel would stay open on the broker until the
/// connection closes, and a connection holds a limited number.
struct ClaimChannel<'p> {
    ch: Channel,
    uses: u32,
    pool: Option<&'p ChannelPool>,
    reusable: bool,
}

impl std::ops::Deref for ClaimChannel<'_> {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        &self.ch
    }
}

impl Drop for ClaimChannel<'_> {
    fn drop(&mut self) {
        let ch = self.ch.clone();
        if let Some(pool) = self.pool
            && self.reusable
            && self.uses < USES_PER_CHANNEL
            && ch.status().connected()
        {
            let mut idle = lock(&pool.idle);
            if idle.len() < IDLE_CHANNELS {
                idle.push((ch, self.uses));
                return;
            }
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = ch.close(200, "claim done".into()).await;
            });
        }
    }
}

/// A new channel; with a pool, one that may return to it.
async fn open_channel<'p>(
    conn: &Connection,
    pool: Option<&'p ChannelPool>,
) -> Result<ClaimChannel<'p>, QueueError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| classify("open channel", &e))?;
    Ok(ClaimChannel {
        ch,
        uses: 1,
        pool,
        reusable: false,
    })
}

/// An idle confirm-mode channel from the pool, or a new one.
async fn pooled_channel<'p>(
    conn: &Connection,
    pool: &'p ChannelPool,
) -> Result<ClaimChannel<'p>, QueueError> {
    loop {
        let Some((ch, uses)) = lock(&pool.idle).pop() else {
            break;
        };
        if ch.status().connected() {
            return Ok(ClaimChannel {
                ch,
                uses: uses + 1,
                pool: Some(pool),
                reusable: false,
            });
        }
    }
    let ch = open_channel(conn, Some(pool)).await?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| classify("confirm.select", &e))?;
    Ok(ch)
}

async fn publish_marker(ch: &Channel, queue: &str) -> Result<Confirmation, QueueError> {
    let options = BasicPublishOptions {
        mandatory: true,
        immediate: false,
    };
    // Transient: the marker only has to live as long as the (non-durable) queue.
    let properties = BasicProperties::default().with_delivery_mode(1);
    let confirm = ch
        .basic_publish("".into(), queue.into(), options, b"", properties)
        .await
        .map_err(|e| classify("publish claim marker", &e))?;
    confirm
        .await
        .map_err(|e| classify("claim marker confirm", &e))
}

/// Messages in the claim queue, 0 when it is gone.
async fn marker_count(conn: &Connection, queue: &str) -> Result<u32, QueueError> {
    let ch = open_channel(conn, None).await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(q) => Ok(q.message_count()),
        Err(e) if is_not_found(&e) => Ok(0),
        Err(e) => Err(classify("inspect claim queue", &e)),
    }
}

/// The AMQP reply code of a broker error (404 NOT_FOUND, 405 RESOURCE_LOCKED, 406 …).
pub(super) fn amqp_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

fn is_precondition_failed(e: &lapin::Error) -> bool {
    amqp_code(e) == Some(406)
}

fn is_not_found(e: &lapin::Error) -> bool {
    amqp_code(e) == Some(404)
}
