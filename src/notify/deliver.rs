//! Delivery: consumes the notification queue, sends each notification at most once per
//! deduplication key, retrying with exponential backoff while the receiver is down. A delivery
//! holds its queue message unacknowledged until it is sent, so a crash hands it to another
//! process; it holds no worker slot, so a down receiver slows no sync.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Notification, SendError, Sender};
use crate::metrics::Metrics;
use crate::queue::{Claim, Delivery, QueueError, SharedQueue, Topic};

/// Consumes notifications until `shutdown`; at most `concurrency` are being sent at once.
pub async fn run(
    sender: Sender,
    queue: SharedQueue,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let mut subscription = queue.subscribe(Topic::Notifications).await?;
    let permits = Arc::new(Semaphore::new(sender.settings().concurrency.max(1)));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let delivery = tokio::select! {
            d = subscription.next() => d,
            _ = shutdown.cancelled() => break,
        };
        let Some(delivery) = delivery else { break };
        let (sender, queue, shutdown) = (sender.clone(), queue.clone(), shutdown.clone());
        let metrics = metrics.clone();
        tokio::spawn(async move {
            deliver(&sender, &queue, &metrics, delivery, &shutdown).await;
            drop(permit);
        });
    }
    subscription.stop_taking();
    Ok(())
}

/// Sends one delivery's notification, then settles the delivery.
async fn deliver(
    sender: &Sender,
    queue: &SharedQueue,
    metrics: &Metrics,
    delivery: Delivery,
    shutdown: &CancellationToken,
) {
    let n = match Notification::parse(&delivery.body) {
        Ok(n) => n,
        Err(e) => {
            warn!(message_id = %delivery.id, error = %e, "dead-lettering an invalid notification");
            metrics.notification("unknown", "dead_lettered");
            let _ = delivery.dead_letter(&e.to_string()).await;
            return;
        }
    };
    let settings = sender.settings();
    let kind = match settings.services.get(&n.service) {
        Some(s) => s.kind(),
        None if n.service == super::commit_status::SERVICE => super::commit_status::SERVICE,
        None => "unknown",
    };
    let key = n.dedup_key();
    match queue.claim(&key, settings.dedup_window()).await {
        Ok(Claim::First) => {}
        Ok(Claim::Duplicate) => {
            debug!(app = %n.app, trigger = n.trigger.name(), service = %n.service, "already sent; dropping the repeat");
            metrics.notification(kind, "duplicate");
            let _ = delivery.ack().await;
            return;
        }
        Err(e) => {
            warn!(app = %n.app, error = %e, "cannot check for repeats; retrying later");
            let _ = delivery.retry().await;
            return;
        }
    }
    let lost = delivery.lost();
    let mut attempt = 1;
    loop {
        let result = tokio::select! {
            r = sender.send(&n) => r,
            // Another process has the message now, or this one stops: let it go unsent.
            _ = lost.cancelled() => return queue.release(&key).await,
            _ = shutdown.cancelled() => return queue.release(&key).await,
        };
        let error = match result {
            Ok(()) => {
                info!(app = %n.app, trigger = n.trigger.name(), service = %n.service, revision = %n.revision, attempt, "notification sent");
                metrics.notification(kind, "sent");
                if let Err(e) = delivery.ack().await {
                    // Already sent and claimed: a redelivery will be recognised as a repeat.
                    warn!(app = %n.app, error = %e, "ack of a sent notification failed");
                }
                return;
            }
            Err(e) => e,
        };
        let give_up = match &error {
            SendError::Permanent(_) => true,
            SendError::Transient(_) => attempt >= settings.max_attempts,
        };
        if give_up {
            warn!(app = %n.app, trigger = n.trigger.name(), service = %n.service, attempt, error = %error, "notification dead-lettered");
            metrics.notification(kind, "dead_lettered");
            queue.release(&key).await;
            let _ = delivery.dead_letter(&error.to_string()).await;
            return;
        }
        let wait = settings.backoff(attempt);
        warn!(app = %n.app, trigger = n.trigger.name(), service = %n.service, attempt, error = %error,
            retry_in_ms = wait.as_millis() as u64, "notification not sent; retrying");
        metrics.notification(kind, "retried");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = lost.cancelled() => return queue.release(&key).await,
            _ = shutdown.cancelled() => return queue.release(&key).await,
        }
        attempt += 1;
    }
}
