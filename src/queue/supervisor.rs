//! Keeps one RabbitMQ connection alive: connects with capped exponential backoff, declares the
//! topology, re-establishes every subscription, and starts over when the connection dies.
//! lapin's own auto-recovery is not used: acks on pre-recovery channels fail and recovery bugs
//! were still being fixed in 4.12, while a fresh connection is simple and always correct.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::Event;
use tokio::sync::oneshot;

use super::QueueError;
use super::rabbitmq::{Live, Shared};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How often the connection status is polled, in case no error event arrives.
const HEALTH_POLL: Duration = Duration::from_millis(500);

/// Runs until `shared.shutdown` is cancelled; `first` learns how the first attempt went.
pub(crate) async fn run(shared: Arc<Shared>, first: oneshot::Sender<Result<(), QueueError>>) {
    let mut first = Some(first);
    let mut backoff = BACKOFF_START;
    while !shared.shutdown.is_cancelled() {
        let attempt = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = tokio::time::timeout(shared.settings.publish_timeout(), connect(&shared)) => r,
        };
        let outcome = match attempt {
            Ok(Ok(live)) => Ok(live),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(QueueError::Unavailable("connect timed out".to_owned())),
        };
        match outcome {
            Ok(live) => {
                backoff = BACKOFF_START;
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                tracing::info!(connection = %shared.connection_name, "connected to RabbitMQ");
                watch_until_dead(&shared, &live).await;
                live.lost.cancel();
                shared.live.send_replace(None);
                let _ = live.conn.close(200, "reconnecting".into()).await;
                if shared.shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(connection = %shared.connection_name, "RabbitMQ connection lost; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "RabbitMQ connection failed");
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                }
            }
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
    shared.live.send_replace(None);
    for sub in shared.subscriptions.lock().await.drain(..) {
        sub.end();
    }
}

/// Connects, declares, and re-establishes subscriptions; any failure discards the connection.
async fn connect(shared: &Shared) -> Result<Arc<Live>, QueueError> {
    let live = Arc::new(Live::establish(shared).await?);
    let mut subs = shared.subscriptions.lock().await;
    subs.retain(|s| !s.is_closed());
    for sub in subs.iter() {
        if let Err(e) = live.start_consumers(shared, sub).await {
            let _ = live.conn.close(200, "subscription failed".into()).await;
            return Err(e);
        }
    }
    // Published while still holding the lock, so a concurrent subscribe sees either the old
    // state (and is resubscribed above next time) or this connection.
    shared.live.send_replace(Some(live.clone()));
    Ok(live)
}

async fn watch_until_dead(shared: &Shared, live: &Live) {
    let mut events = live.conn.events_listener();
    let mut poll = tokio::time::interval(HEALTH_POLL);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            event = events.next() => match event {
                // A channel-level error (e.g. a claim's passive declare of a queue that just
                // expired) closes only that channel; lapin reports it here all the same.
                Some(Event::Error(e)) if e.is_amqp_soft_error() => {
                    tracing::debug!(error = %e, "RabbitMQ channel error");
                }
                Some(Event::Error(e)) => {
                    tracing::warn!(error = %e, "RabbitMQ connection error");
                    return;
                }
                None => return,
                Some(_) => {}
            },
            _ = poll.tick() => {
                if !live.is_usable() {
                    return;
                }
            }
        }
    }
}
