//! The poller: the safety net that refreshes every Application at least every interval, even
//! when no signal arrives; and the watch trigger that refreshes new and changed apps at once.

use std::time::Duration;

use rand::Rng;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::domain::AppKey;
use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::queue::SharedQueue;
use crate::store::AppStore;
use crate::tenancy::Tenancy;

/// Runs until `shutdown` fires; the first poll is at once when `poll_on_start`, else after
/// `interval`.
pub async fn run(
    store: AppStore,
    tenancy: Tenancy,
    queue: SharedQueue,
    interval: Duration,
    jitter: Duration,
    poll_on_start: bool,
    shutdown: CancellationToken,
) {
    // Subscribe first, then poll at once: apps created before this worker started are covered
    // by the first poll, apps created after it by the change stream.
    let mut changes = store.spec_changes();
    let mut next_poll = tokio::time::Instant::now();
    if !poll_on_start {
        next_poll += interval;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_poll) => {}
            changed = changes.recv() => {
                match changed {
                    Ok(key) => enqueue(&queue, key, Duration::ZERO),
                    // Missed some changes: the next poll covers every app anyway.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
                continue;
            }
            _ = shutdown.cancelled() => return,
        }
        next_poll = tokio::time::Instant::now() + interval;
        // Applications in namespaces Capstan does not honour are left alone, not even refreshed.
        for app in store.list().iter().filter(|a| tenancy.honours(a).is_ok()) {
            // Spread the refreshes so a thousand apps do not hit Git and the API in one instant.
            let delay = if jitter.is_zero() {
                Duration::ZERO
            } else {
                rand::rng().random_range(Duration::ZERO..jitter)
            };
            enqueue(&queue, app.key(), delay);
        }
    }
}

/// Publishes a refresh for `key` after `delay`, in the background.
fn enqueue(queue: &SharedQueue, key: AppKey, delay: Duration) {
    let queue = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let cause = Cause {
            source: CauseSource::Poll,
            event_id: None,
            by: None,
        };
        let job = Job::new(&key, JobKind::Refresh, cause);
        match crate::job::publish(&queue, &job).await {
            Ok(()) => debug!(app = %key, "refresh enqueued"),
            Err(e) => warn!(app = %key, error = %e, "refresh not enqueued"),
        }
    });
}
