//! `capstan queue migrate`: moves the configured RabbitMQ to the topology the configuration asks
//! for (another `queue.shards` or `queue.max_attempts`), see `queue::migrate`.

use anyhow::Context;

use crate::job::Job;
use crate::queue::{self, Migration, QueueSettings};

/// Runs the migration; jobs published before the key header existed are routed by their `app`.
pub async fn migrate(settings: &QueueSettings) -> anyhow::Result<Migration> {
    let key_of = |body: &[u8]| Job::parse(body).ok().map(|job| job.app.to_string());
    queue::migrate(settings, &key_of)
        .await
        .context("migrating the queue topology")
}
