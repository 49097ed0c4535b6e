//! Samples the broker's queue depths into `capstan_queue_depth` every few seconds.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::queue::SharedQueue;

/// How often the depths are sampled: a passive declare per queue, cheap for the broker.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples until `shutdown`; a failed sample keeps the last values and is retried next time.
pub async fn run(
    queue: SharedQueue,
    metrics: Arc<Metrics>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        sample(&queue, &metrics).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One sample of every queue's depth.
pub async fn sample(queue: &SharedQueue, metrics: &Metrics) {
    match queue.depths().await {
        Ok(depths) => {
            for (name, messages) in depths {
                metrics.set_queue_depth(&name, messages);
            }
        }
        Err(e) => tracing::debug!(error = %e, "could not sample queue depths"),
    }
}
