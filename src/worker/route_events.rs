//! The router loop: consumes PushEvents, publishes one Job per affected Application, then acks.
//! It keeps a [`RouteIndex`] of the Applications, re-synced only when their routing fields changed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::event::{EventSource, PushEvent};
use crate::metrics::Metrics;
use crate::queue::{QueueError, SharedQueue, Topic};
use crate::router::{self, RouteIndex};
use crate::store::AppStore;
use crate::tenancy::Tenancy;

/// Runs until `shutdown` fires or the subscription ends.
pub async fn run(
    store: AppStore,
    tenancy: Tenancy,
    queue: SharedQueue,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let mut subscription = queue.subscribe(Topic::Events).await?;
    // Re-synced from the store only when its routing epoch moved since the last event.
    let mut index = RouteIndex::default();
    let mut indexed_epoch: Option<u64> = None;
    loop {
        let delivery = tokio::select! {
            d = subscription.next() => d,
            _ = shutdown.cancelled() => break,
        };
        let Some(delivery) = delivery else { break };
        let mut event = match PushEvent::from_message(&delivery.body) {
            Ok(e) => e,
            Err(e) => {
                warn!(message_id = %delivery.id, error = %e, "dead-lettering an invalid event");
                metrics.triggers_dead_lettered.inc();
                let _ = delivery.dead_letter(&e.to_string()).await;
                continue;
            }
        };
        // A published event has no host delivery id; its message id is what its publisher
        // can look up, so the history names that instead.
        if event.delivery.is_none() && published_by_a_system(&event.source) {
            event.delivery = crate::webhook::usable_delivery(delivery.id.clone());
        }
        let epoch = store.routing_epoch();
        if indexed_epoch != Some(epoch) {
            let apps = store.list();
            index.sync(apps.iter().map(|a| a.as_ref()));
            indexed_epoch = Some(epoch);
        }
        // Tenancy is checked on the matched apps only, against the cache's current copy.
        let jobs: Vec<_> = index
            .route(&event)
            .iter()
            .filter(|m| {
                store
                    .cached(m.app.namespace(), m.app.name())
                    .is_some_and(|app| tenancy.honours(&app).is_ok())
            })
            .map(|m| router::job_for(&event, m))
            .collect();
        // The event's trace goes on here, and on into each job published under this span.
        let span = info_span!("route", event_id = %event.id, jobs = jobs.len());
        crate::telemetry::continue_trace(&span, delivery.traceparent.as_deref());
        let all_published = async {
            for job in &jobs {
                if let Err(e) = crate::job::publish(&queue, job).await {
                    warn!(event_id = %event.id, app = %job.app, error = %e, "could not enqueue job");
                    return false;
                }
                metrics.job_published(job.cause.source.as_str());
            }
            true
        }
        .instrument(span)
        .await;
        info!(event_id = %event.id, source = %event.source, delivery = event.delivery.as_deref().unwrap_or(""),
            jobs = jobs.len(), "routed event");
        // Only a fully routed event is acked; a retry may enqueue some jobs twice, which coalescing absorbs.
        let _ = if all_published {
            metrics.events_routed.inc();
            delivery.ack().await
        } else {
            delivery.retry().await
        };
    }
    Ok(())
}

/// Whether `source` is another system publishing to the queue, not a Git host's webhook.
fn published_by_a_system(source: &EventSource) -> bool {
    matches!(source, EventSource::Mq | EventSource::Other(_))
}
