//! The syncer: consumes Jobs, runs at most one reconcile per app at a time, and collapses a
//! burst of jobs for one app into at most one extra run.
//!
//! Unacked deliveries per app are bounded so one slow app cannot use up the prefetch window other
//! apps need: the running delivery stays unacked until its outcome is in the Application's status
//! (invariant 2), and of the deliveries that arrive meanwhile only one is kept unacked. The others
//! are merged into the pending run ("run again after this one") and acked at once. The kept one is
//! the strongest request (sync over refresh, then prune, then hard; the newer on a tie), so a
//! crash before the pending run redelivers that request; only the weaker flags merged in from the
//! acked ones (e.g. `hard` on a refresh next to a sync) can be lost then, and the next poll covers
//! a refresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::reconcile::{self, Context};
use crate::domain::AppKey;
use crate::job::{CauseSource, Job, JobKind};
use crate::queue::{Delivery, QueueError, SharedQueue, Topic};

/// How the syncer paces itself.
#[derive(Debug, Clone)]
pub struct SyncerSettings {
    pub concurrency: usize,
    pub progress_recheck: Duration,
    pub max_recheck: Duration,
    /// The queue's `max_attempts`: a job failing on this delivery is dead-lettered.
    pub max_attempts: u32,
}

/// The run an app owes after the current one: every job that arrived meanwhile, merged, and the
/// one delivery kept unacked for them.
struct Pending {
    job: Job,
    /// The job `delivery` carries (the strongest single request so far).
    kept: Job,
    delivery: Delivery,
    coalesced: usize,
}

impl Pending {
    fn new(job: Job, delivery: Delivery) -> Pending {
        Pending {
            kept: job.clone(),
            job,
            delivery,
            coalesced: 1,
        }
    }

    /// Merges a newer job in; returns the delivery that is no longer needed (to ack now).
    fn absorb(self, job: Job, delivery: Delivery) -> (Pending, Delivery) {
        let merged = merge([&self.job, &job].into_iter());
        let (kept, kept_delivery, superseded) = if keeps_newer(&self.kept, &job) {
            (job, delivery, self.delivery)
        } else {
            (self.kept, self.delivery, delivery)
        };
        let pending = Pending {
            job: merged,
            kept,
            delivery: kept_delivery,
            coalesced: self.coalesced + 1,
        };
        (pending, superseded)
    }
}

/// Whether the delivery of `newer` should be kept unacked instead of that of `kept`: it asks
/// for at least as much, compared lexicographically (sync, then prune, then hard, then a cause
/// other than drift, which would compare with the last synced revision only).
fn keeps_newer(kept: &Job, newer: &Job) -> bool {
    let strength = |j: &Job| {
        (
            j.kind == JobKind::Sync,
            j.prune,
            j.hard,
            j.cause.source != CauseSource::Drift,
        )
    };
    strength(newer) >= strength(kept)
}

struct Shared {
    ctx: Arc<Context>,
    queue: SharedQueue,
    settings: SyncerSettings,
    permits: Semaphore,
    /// Apps being reconciled now, with the run each owes afterwards, if any.
    running: Mutex<HashMap<AppKey, Option<Pending>>>,
    /// Set at shutdown: runs in progress finish, owed runs go back to the queue.
    stopping: AtomicBool,
    /// Consecutive progress re-checks per app, for backoff.
    rechecks: Mutex<HashMap<AppKey, u32>>,
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
        stopping: AtomicBool::new(false),
        rechecks: Mutex::new(HashMap::new()),
    });
    loop {
        let delivery = tokio::select! {
            d = subscription.next() => d,
            _ = shutdown.cancelled() => break,
        };
        let Some(delivery) = delivery else { break };
        if delivery.attempt > 1 {
            shared.ctx.metrics.job_redeliveries.inc();
        }
        let job = match Job::parse(&delivery.body) {
            Ok(job) => job,
            Err(e) => {
                warn!(message_id = %delivery.id, error = %e, "rejecting an unparseable job");
                shared.ctx.metrics.reconcile_outcome("dead_lettered");
                let _ = delivery.reject().await;
                continue;
            }
        };
        let superseded = {
            let mut running = lock(&shared.running);
            match running.get_mut(&job.app) {
                Some(slot) => match slot.take() {
                    None => {
                        *slot = Some(Pending::new(job, delivery));
                        None
                    }
                    Some(pending) => {
                        let (pending, superseded) = pending.absorb(job, delivery);
                        *slot = Some(pending);
                        Some(superseded)
                    }
                },
                None => {
                    running.insert(job.app.clone(), None);
                    tokio::spawn(run_app(shared.clone(), Pending::new(job, delivery)));
                    None
                }
            }
        };
        if let Some(d) = superseded {
            let id = d.id.clone();
            if let Err(e) = d.ack().await {
                warn!(message_id = %id, error = %e, "ack of a merged job failed; it will be redelivered and merged again");
            }
        }
    }
    drain(&shared, &subscription).await;
    Ok(())
}

/// SIGTERM: takes no more work (other workers take the shards over), lets the reconciles in
/// progress finish and be acknowledged, and returns what was owed to the queue.
async fn drain(shared: &Shared, subscription: &crate::queue::Subscription) {
    subscription.stop_taking();
    shared.stopping.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + shared.ctx.reconcile_timeout;
    loop {
        let running = lock(&shared.running).len();
        if running == 0 {
            info!("drained: no job in progress");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(
                running,
                "jobs still running at the drain deadline; the queue redelivers them"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned map only means another task panicked mid-update; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reconciles one app for `run`, then once more for whatever arrived meanwhile.
async fn run_app(shared: Arc<Shared>, mut run: Pending) {
    let app = run.job.app.clone();
    loop {
        let Pending {
            job,
            delivery,
            coalesced,
            ..
        } = run;
        let span = info_span!("job", job_id = %job.id, app = %job.app, kind = ?job.kind, cause = ?job.cause.source,
            event_id = job.cause.event_id.as_deref().unwrap_or(""),
            delivery = job.cause.delivery.as_deref().unwrap_or(""),
            revision = job.revision.as_deref().unwrap_or(""), attempt = delivery.attempt);
        // The trace of whatever published the job (a webhook, a refresh) continues here.
        crate::telemetry::continue_trace(&span, delivery.traceparent.as_deref());
        let lost = delivery.lost();
        let work = async {
            let _permit = shared.permits.acquire().await;
            debug!(coalesced, "job started");
            guarded(reconcile::reconcile(&shared.ctx, &job)).await
        }
        .instrument(span.clone());
        // Fencing: once the queue took the job back (connection lost), another worker may run
        // it; this one stops at once instead of racing it.
        let outcome = tokio::select! {
            outcome = work => Some(outcome),
            _ = lost.cancelled() => None,
        };
        match outcome {
            None => {
                warn!(parent: &span, "the queue connection was lost mid-job; another worker has it now, stopping here");
                drop(delivery);
            }
            Some(Ok(report)) => {
                let _enter = span.enter();
                info!(
                    revision = report.revision.as_deref().unwrap_or(""),
                    synced = report.synced,
                    progressing = report.progressing,
                    coalesced,
                    "job done"
                );
                drop(_enter);
                if let Err(e) = delivery.ack().await {
                    warn!(app = %app, error = %e, "ack failed; the job will be redelivered");
                }
                schedule_recheck(&shared, &app, report.progressing, report.recheck_after);
            }
            Some(Err(e)) if delivery.attempt >= shared.settings.max_attempts => {
                let reason = format!("failed {} times: {e}", delivery.attempt);
                warn!(parent: &span, error = %e, "job failed on its last attempt; dead-lettering it");
                // Said on the app before the message leaves the queue, so the failure is visible
                // where users look, not only in the dead-letter queue.
                record_dead_letter(&shared.ctx, &job, &reason)
                    .instrument(span.clone())
                    .await;
                shared.ctx.metrics.reconcile_outcome("dead_lettered");
                if let Err(e) = delivery.dead_letter(&reason).await {
                    warn!(parent: &span, error = %e, "dead-lettering failed; the broker redelivers the job");
                }
            }
            Some(Err(e)) => {
                // The queue waits `retry_delay_ms` before redelivering.
                warn!(parent: &span, error = %e, "job failed; it will be retried");
                let outcome = if delivery.is_last_attempt() {
                    "dead_lettered"
                } else {
                    "requeued"
                };
                shared.ctx.metrics.reconcile_outcome(outcome);
                let _ = delivery.retry().await;
            }
        }
        let next = {
            let mut running = lock(&shared.running);
            let next = running.get_mut(&app).and_then(Option::take);
            // Stopping, or owed on a connection that is gone: the queue has (or gets) it back.
            match next.filter(|p| {
                !shared.stopping.load(Ordering::SeqCst) && !p.delivery.lost().is_cancelled()
            }) {
                Some(pending) => pending,
                None => {
                    running.remove(&app);
                    return;
                }
            }
        };
        run = next;
    }
}

/// Runs a reconcile so that a panic in it (a bug on some input) fails this job like an error,
/// retried and finally dead-lettered with a condition, instead of leaving the app held by this
/// worker for good.
async fn guarded<E: std::fmt::Display>(
    reconcile: impl std::future::Future<Output = Result<reconcile::Report, E>>,
) -> Result<reconcile::Report, String> {
    match std::panic::AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic".into());
            Err(format!(
                "the reconcile panicked (a bug; please report it): {what}"
            ))
        }
    }
}

/// Writes a `ReconcileFailed` condition naming `reason` on the app of a job about to be
/// dead-lettered; a failure to write it is logged (the job is dead-lettered anyway).
async fn record_dead_letter(ctx: &Context, job: &Job, reason: &str) {
    let (ns, name) = (job.app.namespace(), job.app.name());
    let written = async {
        let app = ctx.store.get(ns, name).await?;
        let mut status = app.status.unwrap_or_default();
        let message = format!("job {} was dead-lettered: {reason}", job.id);
        super::status::set_condition(&mut status, super::status::RECONCILE_FAILED, &message);
        ctx.store
            .write_status(ns, name, app.metadata.resource_version.as_deref(), &status)
            .await
    };
    if let Err(e) = written.await {
        warn!(error = %e, "could not record the dead-lettered job on the app");
    }
}

/// One job standing for several: a sync if any asked to sync, hard if any was hard.
fn merge<'a>(jobs: impl Iterator<Item = &'a Job>) -> Job {
    let jobs: Vec<&Job> = jobs.collect();
    let mut merged = jobs[jobs.len() - 1].clone();
    // A progress re-check or a drift refresh compares with the revision last synced; merged
    // after a push or a refresh, it must not hide their request for the current revision.
    if merged.cause.source == CauseSource::Drift
        && let Some(wanted) = jobs
            .iter()
            .rev()
            .find(|j| j.cause.source != CauseSource::Drift)
    {
        merged.cause = wanted.cause.clone();
        merged.revision = wanted.revision.clone();
    }
    if let Some(sync) = jobs.iter().rev().find(|j| j.kind == JobKind::Sync) {
        merged.kind = JobKind::Sync;
        merged.cause = sync.cause.clone();
    }
    merged.hard = jobs.iter().any(|j| j.hard);
    merged.prune = jobs.iter().any(|j| j.prune);
    merged
}

/// While an app is progressing, refresh it again soon (backing off), so health catches up; when
/// the reconcile named a time (a retry or self-heal backoff), come back then.
fn schedule_recheck(
    shared: &Arc<Shared>,
    app: &AppKey,
    progressing: bool,
    after: Option<Duration>,
) {
    let count = {
        let mut rechecks = lock(&shared.rechecks);
        if !progressing {
            rechecks.remove(app);
            if after.is_none() {
                return;
            }
            0
        } else {
            let c = rechecks.entry(app.clone()).or_insert(0);
            *c += 1;
            *c
        }
    };
    let backoff = shared
        .settings
        .progress_recheck
        .saturating_mul(1 << count.saturating_sub(1).min(6))
        .min(shared.settings.max_recheck);
    let delay = match after {
        Some(at) if !progressing => at,
        Some(at) => at.min(backoff),
        None => backoff,
    };
    let queue = shared.queue.clone();
    let app = app.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        // Health catching up on live changes, as a watch event would: compared with the
        // revision last compared, never picking up a new commit on the side.
        let job = Job::new(&app, JobKind::Refresh, CauseSource::Drift.into());
        if let Err(e) = crate::job::publish(&queue, &job).await {
            warn!(app = %app, error = %e, "could not enqueue a progress re-check; the poller will cover it");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: JobKind, hard: bool) -> Job {
        let mut j = Job::new(
            &AppKey::parse("a/b").expect("key"),
            kind,
            CauseSource::Webhook.into(),
        );
        j.hard = hard;
        j
    }

    #[tokio::test]
    async fn a_panicking_reconcile_is_a_failed_job_not_a_lost_worker_task() {
        let failed = guarded(async {
            if std::hint::black_box(true) {
                panic!("index out of bounds");
            }
            Ok::<_, String>(reconcile::Report::default())
        })
        .await;
        let message = failed.expect_err("a panic is a failure");
        assert!(message.contains("panicked"), "{message}");
        assert!(message.contains("index out of bounds"), "{message}");
        let ok = guarded(async { Ok::<_, String>(reconcile::Report::default()) }).await;
        assert!(ok.is_ok());
        let err = guarded(async { Err::<reconcile::Report, _>("no cluster") }).await;
        assert_eq!(err.expect_err("an error stays one"), "no cluster");
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

    #[test]
    fn a_drift_recheck_merged_after_a_push_keeps_the_push_cause() {
        let mut push = job(JobKind::Refresh, false);
        push.cause.event_id = Some("event-1".into());
        push.revision = Some("b".repeat(40));
        let mut recheck = job(JobKind::Refresh, false);
        recheck.cause = CauseSource::Drift.into();
        let merged = merge([&push, &recheck].into_iter());
        // A drift cause would compare with the last synced revision and skip the pushed one.
        assert_eq!(merged.cause, push.cause);
        assert_eq!(merged.revision, push.revision);
        let rechecks = [recheck.clone(), recheck.clone()];
        assert_eq!(merge(rechecks.iter()).cause.source, CauseSource::Drift);
        // A crash before the merged run must redeliver the push, not the re-check.
        assert!(!keeps_newer(&push, &recheck));
        assert!(keeps_newer(&recheck, &push));
    }

    #[test]
    fn the_delivery_kept_unacked_is_the_strongest_request() {
        let sync = job(JobKind::Sync, false);
        let hard_refresh = job(JobKind::Refresh, true);
        let refresh = job(JobKind::Refresh, false);
        // A crash must redeliver the sync, not a refresh that came after it.
        assert!(!keeps_newer(&sync, &refresh));
        assert!(!keeps_newer(&sync, &hard_refresh));
        assert!(keeps_newer(&refresh, &sync));
        assert!(keeps_newer(&refresh, &hard_refresh));
        // On a tie the newer is kept: it carries the latest revision hint.
        assert!(keeps_newer(&refresh, &job(JobKind::Refresh, false)));
        let mut pruning = job(JobKind::Sync, false);
        pruning.prune = true;
        assert!(!keeps_newer(&pruning, &job(JobKind::Sync, true)));
    }
}
