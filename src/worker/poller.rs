//! The poller: the safety net that refreshes every Application at least every interval,
//! even when no signal arrives.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::queue::SharedQueue;
use crate::store::AppStore;

/// Runs until `shutdown` fires.
pub async fn run(
    store: AppStore,
    queue: SharedQueue,
    interval: Duration,
    jitter: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        for app in store.list() {
            let key = app.key();
            // Spread the refreshes so a thousand apps do not hit Git and the API in one instant.
            let delay = if jitter.is_zero() {
                Duration::ZERO
            } else {
                rand::rng().random_range(Duration::ZERO..jitter)
            };
            let queue = queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let job = Job::new(
                    &key,
                    JobKind::Refresh,
                    Cause {
                        source: CauseSource::Poll,
                        event_id: None,
                        by: None,
                    },
                );
                match super::publish_job(&queue, &job).await {
                    Ok(()) => debug!(app = %key, "poll refresh enqueued"),
                    Err(e) => warn!(app = %key, error = %e, "poll refresh not enqueued"),
                }
            });
        }
    }
}
