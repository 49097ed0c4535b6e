//! The syncer: consumes Jobs, runs at most one reconcile per app at a time, and collapses a
//! burst of jobs for one app into at most one extra run. Deliveries are acked only after the
//! outcome is in the Application's status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::reconcile::{self, Context};
use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::queue::{Delivery, QueueError, SharedQueue, Topic};

/// How the syncer paces itself.
#[derive(Debug, Clone)]
pub struct SyncerSettings {
    pub concurrency: usize,
    pub progress_recheck: Duration,
    pub max_recheck: Duration,
}

type Batch = Vec<(Job, Delivery)>;

struct Shared {
    ctx: Arc<Context>,
    queue: SharedQueue,
    settings: SyncerSettings,
    permits: Semaphore,
    /// Apps being reconciled now, with the deliveries that arrived meanwhile.
    running: Mutex<HashMap<String, Batch>>,
    /// Consecutive progress re-checks per app, for backoff.
    rechecks: Mutex<HashMap<String, u32>>,
}

/// Runs until `shutdown` fires or the subscription ends.
pub async fn run(
    ctx: Arc<Context>,
    queue: SharedQueue,
    settings: SyncerSettings,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let mut subscription = queue.subscribe(Topic::Jobs).await?;
    let shared = Arc::new(Shared {
        ctx,
        queue,
        permits: Semaphore::new(settings.concurrency.max(1)),
        settings,
        running: Mutex::new(HashMap::new()),
        rechecks: Mutex::new(HashMap::new()),
    });
    loop {
        let delivery = tokio::select! {
            d = subscription.next() => d,
            _ = shutdown.cancelled() => break,
        };
        let Some(delivery) = delivery else { break };
        let job = match Job::parse(&delivery.body) {
            Ok(job) => job,
            Err(e) => {
                warn!(message_id = %delivery.id, error = %e, "rejecting an unparseable job");
                let _ = delivery.reject().await;
                continue;
            }
        };
        {
            let mut running = lock(&shared.running);
            if let Some(waiting) = running.get_mut(&job.app) {
                waiting.push((job, delivery));
                continue;
            }
            running.insert(job.app.clone(), Vec::new());
        }
        tokio::spawn(run_app(shared.clone(), vec![(job, delivery)]));
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned map only means another task panicked mid-update; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reconciles one app for `batch`, then once more for whatever arrived meanwhile.
async fn run_app(shared: Arc<Shared>, mut batch: Batch) {
    let app = batch[0].0.app.clone();
    loop {
        let job = merge(batch.iter().map(|(j, _)| j));
        let span = info_span!("job", job_id = %job.id, app = %job.app, kind = ?job.kind, cause = ?job.cause.source,
            revision = job.revision.as_deref().unwrap_or(""), attempt = batch[0].1.attempt);
        let outcome = async {
            let _permit = shared.permits.acquire().await;
            reconcile::reconcile(&shared.ctx, &job).await
        }
        .instrument(span.clone())
        .await;
        match outcome {
            Ok(report) => {
                let _enter = span.enter();
                info!(
                    revision = report.revision.as_deref().unwrap_or(""),
                    synced = report.synced,
                    progressing = report.progressing,
                    coalesced = batch.len(),
                    "job done"
                );
                drop(_enter);
                for (_, d) in batch {
                    if let Err(e) = d.ack().await {
                        warn!(app = %app, error = %e, "ack failed; the job will be redelivered");
                    }
                }
                schedule_recheck(&shared, &app, report.progressing);
            }
            Err(e) => {
                // The queue waits `retry_delay_ms` before redelivering, and dead-letters after max_attempts.
                warn!(parent: &span, error = %e, "job failed; it will be retried");
                for (_, d) in batch {
                    let _ = d.retry().await;
                }
            }
        }
        let next = {
            let mut running = lock(&shared.running);
            match running.get_mut(&app) {
                Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
                _ => {
                    running.remove(&app);
                    return;
                }
            }
        };
        batch = next;
    }
}

/// One job standing for several: a sync if any asked to sync, hard if any was hard.
fn merge<'a>(jobs: impl Iterator<Item = &'a Job>) -> Job {
    let jobs: Vec<&Job> = jobs.collect();
    let mut merged = jobs[jobs.len() - 1].clone();
    if let Some(sync) = jobs.iter().rev().find(|j| j.kind == JobKind::Sync) {
        merged.kind = JobKind::Sync;
        merged.cause = sync.cause.clone();
    }
    merged.hard = jobs.iter().any(|j| j.hard);
    merged.prune = jobs.iter().any(|j| j.prune);
    merged
}

/// While an app is progressing, refresh it again soon (backing off), so health catches up.
fn schedule_recheck(shared: &Arc<Shared>, app: &str, progressing: bool) {
    let count = {
        let mut rechecks = lock(&shared.rechecks);
        if !progressing {
            rechecks.remove(app);
            return;
        }
        let c = rechecks.entry(app.to_owned()).or_insert(0);
        *c += 1;
        *c
    };
    let delay = shared
        .settings
        .progress_recheck
        .saturating_mul(1 << (count - 1).min(6))
        .min(shared.settings.max_recheck);
    let queue = shared.queue.clone();
    let app = app.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let job = Job::new(
            &app,
            JobKind::Refresh,
            Cause {
                source: CauseSource::Poll,
                event_id: None,
                by: None,
            },
        );
        if let Err(e) = super::publish_job(&queue, &job).await {
            warn!(app = %app, error = %e, "could not enqueue a progress re-check; the poller will cover it");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: JobKind, hard: bool) -> Job {
        let mut j = Job::new(
            "a/b",
            kind,
            Cause {
                source: CauseSource::Webhook,
                event_id: None,
                by: None,
            },
        );
        j.hard = hard;
        j
    }

    #[test]
    fn a_burst_merges_into_one_job_that_keeps_the_strongest_request() {
        let jobs = [
            job(JobKind::Refresh, false),
            job(JobKind::Sync, false),
            job(JobKind::Refresh, true),
        ];
        let merged = merge(jobs.iter());
        assert_eq!(merged.kind, JobKind::Sync);
        assert!(merged.hard);
        let refreshes = [job(JobKind::Refresh, false), job(JobKind::Refresh, false)];
        assert_eq!(merge(refreshes.iter()).kind, JobKind::Refresh);
    }
}
