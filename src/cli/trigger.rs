//! `capstan trigger`: publishes the short trigger form to the events exchange of the configured
//! queue, as any other system may (`schemas/trigger.v1.schema.json`).

use anyhow::{Context, bail};

use crate::event::TriggerMessage;
use crate::queue::{QueueKind, QueueSettings, RabbitQueue, Topic};

/// Validates `message`, publishes it with a publisher confirm, and returns its message id.
pub async fn publish(settings: &QueueSettings, message: &TriggerMessage) -> anyhow::Result<String> {
    if settings.kind == QueueKind::Embedded {
        bail!(
            "queue.kind is \"embedded\": that queue lives inside a running `capstan serve`, so nothing \
             would read a trigger published from here; set queue.kind = \"rabbitmq\" \
             (CAPSTAN__QUEUE__KIND=rabbitmq) to reach the workers"
        );
    }
    // Refused here rather than dead-lettered by the router, where nobody would see why.
    message.validate().context("invalid trigger")?;
    let body = serde_json::to_vec(message).context("encoding the trigger")?;
    let id = uuid::Uuid::new_v4().to_string();
    let queue = RabbitQueue::connect(settings)
        .await
        .context("connecting to RabbitMQ")?;
    let published = queue.publish(Topic::Events, "", &id, body).await;
    queue.close().await;
    published.context("publishing the trigger")?;
    Ok(id)
}
