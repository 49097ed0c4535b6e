//! One Job, start to end, as a short pipeline of stages: resolve and render
//! ([`super::desired`]) → compare ([`crate::sync::compare`]) → decide and run the operation
//! (plan and execute, [`crate::sync`]) → assess and record ([`super::status`]). Problems with the
//! app itself become conditions; only failing to write status is an error, so the job is
//! redelivered (docs/architecture.md, invariant 2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, debug, warn};

use super::desired::{self, Desired, desired_state, keep_prunes_in_reach};
use super::operate;
use super::status::{
    self, COMPARISON_ERROR, INVALID_SPEC_ERROR, REPEATED_RESOURCE_WARNING, SHARED_RESOURCE_WARNING,
};
use crate::cluster::registry::{Connected, Registry, ResolveError};
use crate::cluster::{ClusterError, ResourceKey};
use crate::event::now_rfc3339;
use crate::health::HealthStatus;
use crate::job::{Job, JobKind};
use crate::manifests::Manifests;
use crate::metrics::{Metrics, Stage};
use crate::store::application::{
    Application, ApplicationSource, ApplicationStatus, OperationPhase, SyncStatus, SyncStatusCode,
};
use crate::store::{AppStore, StoreError};
use crate::sync::{self, Compared, Verdicts};
use crate::tenancy::Tenancy;

/// Everything a reconcile needs; cheap to share.
pub struct Context {
    pub store: AppStore,
    pub tenancy: Tenancy,
    /// Every target cluster: clients, live caches, dry-run verdicts, connection state.
    pub clusters: Registry,
    /// Git, render cache and tools: the desired state of every source.
    pub manifests: Arc<Manifests>,
    /// A whole reconcile is abandoned after this long, so one app can never hold a worker slot.
    pub reconcile_timeout: Duration,
    /// The operator's Lua health checks.
    pub health: super::health_checks::HealthChecks,
    /// Where stage durations and outcomes are recorded.
    pub metrics: Arc<Metrics>,
    /// Queues the notifications a status write triggers (never waits for them).
    pub notify: crate::notify::Notifier,
}

/// What a reconcile found, for the caller's follow-up decisions.
#[derive(Debug, Default)]
pub struct Report {
    /// The Application no longer exists, or lives where Capstan does not act; nothing was written.
    pub gone: bool,
    /// Resources are still progressing, or an operation is running; a re-check soon will go on.
    pub progressing: bool,
    pub revision: Option<String>,
    pub synced: bool,
    /// Come back after this long (a retry or a self-heal backoff is due then).
    pub recheck_after: Option<Duration>,
    /// The sync status written.
    pub sync_status: Option<SyncStatusCode>,
}

/// How often a reconcile starts over when its status write finds the Application changed.
const CONFLICT_RETRIES: usize = 3;

impl Report {
    /// The `outcome` label of `capstan_reconciles_total` for this report.
    fn outcome(&self) -> &'static str {
        match (self.gone, self.sync_status) {
            (true, _) => "gone",
            (false, Some(SyncStatusCode::Synced)) => "synced",
            (false, Some(SyncStatusCode::OutOfSync)) => "out_of_sync",
            // Unknown: a condition says why it could not be compared.
            (false, _) => "error",
        }
    }
}

/// Reconciles one Application for `job` and writes its status; counts the time, and the outcome
/// of a reconcile that wrote its status.
pub async fn reconcile(ctx: &Context, job: &Job) -> Result<Report, StoreError> {
    let started = Instant::now();
    let span = tracing::info_span!("reconcile", app = %job.app);
    let result = reconcile_fenced(ctx, job).instrument(span).await;
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(report) => ctx.metrics.reconciled(report.outcome(), seconds),
        // The caller counts it as requeued or dead-lettered, as it settles the job.
        Err(_) => ctx.metrics.reconcile_duration.observe(seconds),
    }
    result
}

/// A status write is fenced by the resourceVersion the reconcile read: when the Application
/// changed meanwhile (a spec edit, another writer), the reconcile starts over from a fresh read
/// instead of overwriting.
async fn reconcile_fenced(ctx: &Context, job: &Job) -> Result<Report, StoreError> {
    let mut attempt = 1;
    loop {
        match reconcile_once(ctx, job).await {
            Err(StoreError::Conflict(reason)) if attempt < CONFLICT_RETRIES => {
                debug!(app = %job.app, %reason, attempt, "status write conflicted; starting over");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn reconcile_once(ctx: &Context, job: &Job) -> Result<Report, StoreError> {
    let (ns, name) = (job.app.namespace(), job.app.name());
    let app = match ctx.store.get(ns, name).await {
        Ok(app) => app,
        Err(StoreError::NotFound(_)) => {
            return Ok(Report {
                gone: true,
                ..Default::default()
            });
        }
        Err(e) => return Err(e),
    };
    if let Err(reason) = ctx.tenancy.honours(&app) {
        debug!(app = %app.key(), %reason, "ignored");
        return Ok(Report {
            gone: true,
            ..Default::default()
        });
    }
    let mut status = app.status.clone().unwrap_or_default();
    let report =
        match tokio::time::timeout(ctx.reconcile_timeout, evaluate(ctx, &app, job, &mut status))
            .await
        {
            Ok(report) => report,
            // Abandoned like a crashed worker: whatever was applied stays, nothing reports success.
            Err(_) => {
                let message = format!(
                    "reconcile took longer than {} s (limit reconcile.timeout_secs); abandoned",
                    ctx.reconcile_timeout.as_secs()
                );
                warn!(app = %app.key(), "{message}");
                status::set_condition(&mut status, COMPARISON_ERROR, &message);
                unknown(&mut status, None);
                Report::default()
            }
        };
    status::clear_condition(&mut status, status::RECONCILE_FAILED);
    status.reconciled_at = Some(now_rfc3339());
    status::bound(
        &mut status,
        status::history_limit(app.spec.revision_history_limit),
    );
    ctx.store
        .write_status(ns, name, app.metadata.resource_version.as_deref(), &status)
        .await?;
    ctx.notify
        .status_written(&app, app.status.as_ref(), &status);
    Ok(Report {
        sync_status: status.sync.as_ref().map(|s| s.status),
        ..report
    })
}

/// Sync status Unknown, keeping the last known revision unless a newer one is given.
fn unknown(status: &mut ApplicationStatus, revision: Option<String>) {
    let revision = revision.or_else(|| status.sync.as_ref().and_then(|s| s.revision.clone()));
    status.sync = Some(SyncStatus {
        status: SyncStatusCode::Unknown,
        revision,
        ..Default::default()
    });
}

/// The pipeline: render, compare, operate, assess.
async fn evaluate(
    ctx: &Context,
    app: &Application,
    job: &Job,
    status: &mut ApplicationStatus,
) -> Report {
    let key = app.key();
    let dest = &app.spec.destination;
    let target = match ctx
        .clusters
        .resolve(dest.server.as_deref(), dest.name.as_deref())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            let condition = match e {
                ResolveError::NotRegistered(_) => INVALID_SPEC_ERROR,
                ResolveError::Unreachable { .. } | ResolveError::Unusable { .. } => {
                    COMPARISON_ERROR
                }
            };
            warn!(app = %key, error = %e, "destination not usable");
            status::set_condition(status, condition, &e.to_string());
            unknown(status, None);
            return Report::default();
        }
    };
    // A cluster whose last probe failed is not asked: its apps are Unknown with the reason at
    // once, and never hold a worker slot waiting for it.
    if let Some(reason) = ctx.clusters.is_down(&target.name) {
        let message = format!(
            "cluster {} ({}) cannot be reached: {reason}",
            target.name, target.server
        );
        status::set_condition(status, COMPARISON_ERROR, &message);
        unknown(status, None);
        return Report::default();
    }
    let sources = compared_sources(app, job, status);
    let sources: Vec<&ApplicationSource> = sources.iter().collect();
    let desired = match desired_state(ctx, &target, app, &sources, job.hard)
        .instrument(tracing::info_span!("fetch_and_render"))
        .await
    {
        Ok(d) => d,
        Err(f) => {
            warn!(app = %key, condition = f.condition, message = %f.message, "cannot compare");
            status::set_condition(status, f.condition, &f.message);
            for other in [COMPARISON_ERROR, INVALID_SPEC_ERROR] {
                if other != f.condition {
                    status::clear_condition(status, other);
                }
            }
            unknown(status, None);
            return Report::default();
        }
    };
    status::clear_condition(status, COMPARISON_ERROR);
    status::clear_condition(status, INVALID_SPEC_ERROR);
    record_render(status, &desired);
    let revision = desired.revision.clone();

    let compare_started = Instant::now();
    let compared = compare_retrying(&target, app, &desired, status, job.hard)
        .instrument(tracing::info_span!("compare"))
        .await;
    ctx.metrics
        .stage(Stage::Compare, compare_started.elapsed().as_secs_f64());
    let compared = match compared {
        Ok(c) => c,
        Err(e) => {
            status::set_condition(
                status,
                COMPARISON_ERROR,
                &format!("cannot compare with the cluster: {e}"),
            );
            unknown(status, Some(revision.clone()));
            return Report {
                revision: Some(revision),
                ..Default::default()
            };
        }
    };

    let shared = operate::shared_resources(&app.key().to_string(), &compared);
    if shared.is_empty() {
        status::clear_condition(status, SHARED_RESOURCE_WARNING);
    } else {
        status::set_condition(status, SHARED_RESOURCE_WARNING, &shared.join("; "));
    }
    let sync_started = Instant::now();
    let operation_before = status.operation_state.clone();
    let op = operate::operate(ctx, &target, app, job, status, &desired, &compared)
        .instrument(tracing::info_span!("sync"))
        .await;
    // Only reconciles that ran (a step of) an operation have a sync stage.
    if op.applied || status.operation_state != operation_before {
        ctx.metrics
            .stage(Stage::Sync, sync_started.elapsed().as_secs_f64());
    }
    let compared = if op.applied {
        // Status reflects the cluster after the sync; applied objects' verdicts are remembered,
        // so this costs no dry-run.
        match compare_retrying(&target, app, &desired, status, false).await {
            Ok(after) => after,
            Err(e) => {
                status::set_condition(
                    status,
                    COMPARISON_ERROR,
                    &format!("cannot compare after sync: {e}"),
                );
                compared
            }
        }
    } else {
        compared
    };
    let custom = super::health_checks::current(&ctx.health);
    status::summarise(status, &compared, &revision, &custom);
    if desired.revisions.len() > 1
        && let Some(sync) = status.sync.as_mut()
    {
        sync.revisions = desired.revisions.clone();
    }
    let running = status
        .operation_state
        .as_ref()
        .is_some_and(|o| o.phase == OperationPhase::Running);
    let progressing = running
        || status.health.as_ref().is_some_and(|h| {
            h.status == HealthStatus::Progressing || h.status == HealthStatus::Missing && op.applied
        });
    Report {
        gone: false,
        progressing,
        revision: Some(revision),
        synced: op.succeeded,
        recheck_after: op.recheck_after,
        sync_status: None,
    }
}

/// The sources to compare with: the spec's, except that a refresh caused by a live change
/// compares with the revisions last compared, as Argo CD does, so drift is judged (and healed)
/// against what was synced and a new commit still waits for its webhook or poll.
fn compared_sources(
    app: &Application,
    job: &Job,
    status: &ApplicationStatus,
) -> Vec<ApplicationSource> {
    let mut sources: Vec<ApplicationSource> = app.all_sources().into_iter().cloned().collect();
    if job.cause.source != crate::job::CauseSource::Drift || job.kind != JobKind::Refresh {
        return sources;
    }
    let Some(sync) = status.sync.as_ref() else {
        return sources;
    };
    let revisions: Vec<&str> = if sync.revisions.len() == sources.len() {
        sync.revisions.iter().map(String::as_str).collect()
    } else {
        sync.revision.as_deref().into_iter().collect()
    };
    if revisions.len() != sources.len() {
        return sources;
    }
    for (source, revision) in sources.iter_mut().zip(revisions) {
        if !revision.is_empty() {
            source.target_revision = Some(revision.to_owned());
        }
    }
    sources
}

/// What the render stage learned, into the status.
fn record_render(status: &mut ApplicationStatus, desired: &Desired) {
    status.source_type = desired.source_types.first().cloned();
    status.source_types = if desired.source_types.len() > 1 {
        desired.source_types.clone()
    } else {
        Vec::new()
    };
    status.render_inputs = desired.render_inputs.clone();
    match desired
        .warnings
        .iter()
        .find(|w| w.condition == REPEATED_RESOURCE_WARNING)
    {
        Some(w) => status::set_condition(status, REPEATED_RESOURCE_WARNING, &w.message),
        None => status::clear_condition(status, REPEATED_RESOURCE_WARNING),
    }
}

/// The compare stage: desired resources against the cluster, prunes kept within the project.
/// Pauses before each new try of a compare that failed transiently.
const TRANSIENT_RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(1)];

/// [`compare`], tried again after a transient failure: it only reads and dry-runs, and a closed
/// keep-alive connection or a restarting API server would otherwise leave the app in
/// `ComparisonError` until the next poll.
async fn compare_retrying(
    target: &Connected,
    app: &Application,
    desired: &Desired,
    status: &mut ApplicationStatus,
    hard: bool,
) -> Result<Vec<Compared>, ClusterError> {
    let mut delays = TRANSIENT_RETRY_DELAYS.iter();
    loop {
        match compare(target, app, desired, status, hard).await {
            Err(e) if e.is_transient() => match delays.next() {
                Some(delay) => {
                    debug!(app = %app.key(), error = %e, "transient cluster error; comparing again");
                    tokio::time::sleep(*delay).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

async fn compare(
    target: &Connected,
    app: &Application,
    desired: &Desired,
    status: &mut ApplicationStatus,
    hard: bool,
) -> Result<Vec<Compared>, ClusterError> {
    let inventory: Vec<ResourceKey> = status.resources.iter().map(desired::resource_key).collect();
    let fresh;
    let verdicts = if hard {
        // A hard refresh asks the server again for every object.
        fresh = Verdicts::default();
        &fresh
    } else {
        target.verdicts.as_ref()
    };
    let rules = ignore_rules(app).map_err(ClusterError::Api)?;
    let mut compared = sync::compare(
        &target.cluster,
        &target.cache,
        &app.key().to_string(),
        &desired.resources,
        &inventory,
        verdicts,
        &rules,
    )
    .await?;
    keep_prunes_in_reach(
        &mut compared,
        &desired.rules,
        desired.target.as_target(),
        status,
    );
    Ok(compared)
}

/// The app's `ignoreDifferences`, compiled; an invalid rule is a message naming it.
pub fn ignore_rules(app: &Application) -> Result<sync::Rules, String> {
    let rules: Vec<crate::diff::IgnoreRule> = serde_json::to_value(&app.spec.ignore_differences)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("invalid ignoreDifferences: {e}"))?;
    sync::Rules::new(&rules).map_err(|e| format!("invalid ignoreDifferences: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_status_written() {
        let report = |gone, sync_status| Report {
            gone,
            sync_status,
            ..Default::default()
        };
        assert_eq!(report(true, None).outcome(), "gone");
        assert_eq!(
            report(false, Some(SyncStatusCode::Synced)).outcome(),
            "synced"
        );
        assert_eq!(
            report(false, Some(SyncStatusCode::OutOfSync)).outcome(),
            "out_of_sync"
        );
        assert_eq!(
            report(false, Some(SyncStatusCode::Unknown)).outcome(),
            "error"
        );
    }
}
