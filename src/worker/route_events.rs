//! The router loop: consumes PushEvents, publishes one Job per affected Application, then acks.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::event::PushEvent;
use crate::queue::{QueueError, SharedQueue, Topic};
use crate::router;
use crate::store::AppStore;
use crate::tenancy::Tenancy;

/// Runs until `shutdown` fires or the subscription ends.
pub async fn run(
    store: AppStore,
    tenancy: Tenancy,
    queue: SharedQueue,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let mut subscription = queue.subscribe(Topic::Events).await?;
    loop {
        let delivery = tokio::select! {
            d = subscription.next() => d,
            _ = shutdown.cancelled() => break,
        };
        let Some(delivery) = delivery else { break };
        let event = match PushEvent::from_message(&delivery.body) {
            Ok(e) => e,
            Err(e) => {
                warn!(message_id = %delivery.id, error = %e, "dead-lettering an invalid event");
                let _ = delivery.dead_letter(&e.to_string()).await;
                continue;
            }
        };
        let apps = store.list();
        let honoured = apps.iter().filter(|a| tenancy.honours(a).is_ok());
        let jobs = router::route(&event, honoured.map(|a| a.as_ref()));
        let mut all_published = true;
        for job in &jobs {
            if let Err(e) = crate::job::publish(&queue, job).await {
                warn!(event_id = %event.id, app = %job.app, error = %e, "could not enqueue job");
                all_published = false;
                break;
            }
        }
        info!(event_id = %event.id, source = %event.source, delivery = event.delivery.as_deref().unwrap_or(""),
            jobs = jobs.len(), "routed event");
        // Only a fully routed event is acked; a retry may enqueue some jobs twice, which coalescing absorbs.
        let _ = if all_published {
            delivery.ack().await
        } else {
            delivery.retry().await
        };
    }
    Ok(())
}
