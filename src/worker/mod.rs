//! The worker role: router, syncer and poller.

pub mod poller;
pub mod reconcile;
pub mod route_events;
pub mod status;
pub mod syncer;

use crate::job::Job;
use crate::queue::{QueueError, SharedQueue, Topic};

/// Publishes a Job to its app's shard, confirmed.
pub async fn publish_job(queue: &SharedQueue, job: &Job) -> Result<(), QueueError> {
    let body = serde_json::to_vec(job)
        .map_err(|e| QueueError::Unavailable(format!("serialising job: {e}")))?;
    queue
        .publish(Topic::Jobs, &job.app.to_string(), &job.id, body)
        .await
}
