//! The operation stage of a reconcile: continue the running sync, start a requested or an
//! automated one, or terminate one — one step of the engine at a time — and record it in
//! `status.operationState` (and the history, once it succeeds).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use tracing::{debug, info, warn};

use super::desired::{self, Desired, Failed, desired_state, keep_prunes_in_reach};
use super::operation::{self, AutoSync};
use super::reconcile::{Context, ignore_rules};
use super::status::{self, COMPARISON_ERROR, SYNC_ERROR};
use crate::cluster::cache::LiveCache;
use crate::cluster::registry::Connected;
use crate::cluster::resource::ObjectId;
use crate::cluster::{Cluster, ClusterError, ResourceKey};
use crate::event::now_rfc3339;
use crate::job::{Job, JobKind};
use crate::store::application::{
    Application, ApplicationSource, ApplicationStatus, OperationPhase, OperationState,
};
use crate::sync::execute::{self, Progress};
use crate::sync::options::{self, Propagation};
use crate::sync::plan::{self, PlanInput};
use crate::sync::target::{ApplyMode, Target};
use crate::sync::{self, Compared, Verdicts};

/// What the operation stage did.
#[derive(Default)]
pub(super) struct Operated {
    /// Something was applied or deleted.
    pub applied: bool,
    /// The operation completed successfully in this reconcile.
    pub succeeded: bool,
    pub recheck_after: Option<Duration>,
}

/// The operation stage: continue a running sync, start a requested or automated one, or
/// terminate one.
pub(super) async fn operate(
    ctx: &Context,
    target: &Connected,
    app: &Application,
    job: &Job,
    status: &mut ApplicationStatus,
    desired: &Desired,
    compared: &[Compared],
) -> Operated {
    let now = jiff::Timestamp::now();
    let running = status
        .operation_state
        .as_ref()
        .is_some_and(|o| o.phase == OperationPhase::Running);
    if job.kind == JobKind::Terminate {
        if !running {
            debug!(app = %app.key(), "terminate: no operation is running");
            return Operated::default();
        }
        return step(ctx, target, app, status, desired, compared, true).await;
    }
    if running {
        if job.kind == JobKind::Sync {
            warn!(app = %app.key(), "a sync was requested while another is running; it is ignored");
        }
        return step(ctx, target, app, status, desired, compared, false).await;
    }
    let (operation, automated) = if job.kind == JobKind::Sync {
        (operation::requested(app, job, None), false)
    } else {
        match operation::auto_sync(app, status, compared, &desired.revision, now) {
            AutoSync::No => return Operated::default(),
            AutoSync::Later(wait) => {
                return Operated {
                    recheck_after: Some(wait),
                    ..Default::default()
                };
            }
            AutoSync::Now { auto_heal_attempts } => (
                operation::requested(app, job, Some(auto_heal_attempts)),
                true,
            ),
        }
    };
    info!(app = %app.key(), revision = %desired.revision, automated, prune = operation.prune,
        dry_run = operation.dry_run, "sync started");
    status.operation_state = Some(operation::start(operation, job, automated, now_rfc3339()));
    step(ctx, target, app, status, desired, compared, false).await
}

/// Runs one step of the running operation and records it.
async fn step(
    ctx: &Context,
    target: &Connected,
    app: &Application,
    status: &mut ApplicationStatus,
    spec_desired: &Desired,
    spec_compared: &[Compared],
    terminate: bool,
) -> Operated {
    let Some(mut op) = status.operation_state.take() else {
        return Operated::default();
    };
    let now = jiff::Timestamp::now();
    let mut fresh_attempt = op.sync_result.is_none();
    if let Some(next) = op
        .next_retry_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        if !terminate && next > now {
            let wait = next.duration_since(now).unsigned_abs();
            status.operation_state = Some(op);
            return Operated {
                recheck_after: Some(wait),
                ..Default::default()
            };
        }
        op.next_retry_at = None;
        fresh_attempt = true;
    }
    let mut request = op.operation.clone().unwrap_or_default();
    let outcome = match operation_target(ctx, target, app, status, &mut request, spec_desired).await
    {
        Ok(t) => t,
        Err(f) => {
            finish(status, app, op, request, Err(f.message), &[], None);
            return Operated::default();
        }
    };
    let (desired, compared): (&Desired, &[Compared]) = match &outcome {
        OpTarget::Spec => (spec_desired, spec_compared),
        OpTarget::Pinned(d, c) => (d.as_ref(), c.as_slice()),
    };
    let app_options = options::app_options(
        app.spec
            .sync_policy
            .iter()
            .flat_map(|p| p.sync_options.iter().map(String::as_str)),
    );
    let shared = shared_resources(&app.key().to_string(), compared);
    if app_options.fail_on_shared_resource && !shared.is_empty() && !terminate {
        let message = format!("FailOnSharedResource: {}", shared.join("; "));
        finish(status, app, op, request, Err(message), &[], None);
        return Operated::default();
    }
    let selected: Option<HashSet<ObjectId>> = (!request.resources.is_empty()).then(|| {
        request
            .resources
            .iter()
            .map(|r| {
                (
                    r.group.clone(),
                    r.kind.clone(),
                    r.namespace.clone(),
                    r.name.clone(),
                )
            })
            .collect()
    });
    let rules = match ignore_rules(app) {
        Ok(r) => r,
        Err(message) => {
            finish(status, app, op, request, Err(message), &[], None);
            return Operated::default();
        }
    };
    let respected: Vec<Compared>;
    let compared = if app_options.respect_ignore_differences {
        // Ignored fields keep their live values (an HPA's replicas stay the HPA's).
        respected = compared
            .iter()
            .cloned()
            .map(|mut c| {
                if let (Some(desired), Some(live)) = (c.desired.as_mut(), c.live.as_ref()) {
                    let before = desired.clone();
                    crate::diff::respect_ignored(desired, live, &rules.normalizer);
                    if *desired != before {
                        c.dry_run_ok = false;
                    }
                }
                c
            })
            .collect();
        respected.as_slice()
    } else {
        compared
    };
    let tasks = plan::plan(&PlanInput {
        compared,
        hooks: &desired.hooks,
        options: &app_options,
        namespace: managed_namespace(app, &app_options),
        selected: selected.as_ref(),
    });
    let mut records = if fresh_attempt {
        Vec::new()
    } else {
        op.sync_result
            .as_ref()
            .map(|r| operation::records_from(&r.resources))
            .unwrap_or_default()
    };
    let app_key = app.key().to_string();
    let custom = super::health_checks::current(&ctx.health);
    let health = |obj: &Value| crate::health::assess_with(obj, &custom);
    let settings = execute::Settings {
        app: &app_key,
        prune: request.prune,
        dry_run: request.dry_run,
        propagation: app_options.propagation,
        health: &health,
        terminate,
    };
    let recording = Recording {
        cluster: &target.cluster,
        verdicts: &target.verdicts,
        salt: rules.salt,
        cache: &target.cache,
    };
    let before = records.clone();
    let progress = execute::step(&recording, &tasks, &mut records, &settings).await;
    let applied = records != before && !request.dry_run;
    op.operation = Some(request.clone());
    match progress {
        Progress::Running(message) => {
            debug!(app = %app_key, %message, "sync running");
            op.message = message;
            operation::record_result(&mut op, &desired.revision, &records);
            status.operation_state = Some(op);
            Operated {
                applied,
                ..Default::default()
            }
        }
        Progress::Succeeded(message) => {
            // Read only for a history entry: a dry run writes none.
            let commit = match request.sources.first() {
                Some(source) if !request.dry_run => {
                    ctx.manifests.commit_info(source, &request.revision).await
                }
                _ => None,
            };
            let succeeded = finish(status, app, op, request, Ok(message), &records, commit);
            Operated {
                applied,
                succeeded,
                ..Default::default()
            }
        }
        Progress::Failed(message) => {
            let retry = app.spec.sync_policy.as_ref().and_then(|p| p.retry.as_ref());
            if !terminate && operation::may_retry(retry, op.retry_count) {
                let delay = retry.map_or(Duration::from_secs(5), |r| {
                    operation::retry_delay(r, op.retry_count)
                });
                op.retry_count += 1;
                let at = now + jiff::SignedDuration::try_from(delay).unwrap_or_default();
                op.next_retry_at = Some(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                op.message = format!(
                    "retrying attempt #{} in {} s: {message}",
                    op.retry_count,
                    delay.as_secs()
                );
                warn!(app = %app_key, message = %op.message, "sync failed; will retry");
                operation::record_result(&mut op, &desired.revision, &records);
                status::set_condition(status, SYNC_ERROR, &message);
                status.operation_state = Some(op);
                return Operated {
                    applied,
                    recheck_after: Some(delay),
                    ..Default::default()
                };
            }
            finish(status, app, op, request, Err(message), &records, None);
            Operated {
                applied,
                ..Default::default()
            }
        }
    }
}

/// Ends the operation: Succeeded (with a history entry unless a dry run) or Failed (SyncError).
/// Returns whether it succeeded.
fn finish(
    status: &mut ApplicationStatus,
    app: &Application,
    mut op: OperationState,
    request: crate::store::application::SyncOperation,
    result: Result<String, String>,
    records: &[execute::TaskRecord],
    commit: Option<crate::git::CommitInfo>,
) -> bool {
    op.finished_at = Some(now_rfc3339());
    op.next_retry_at = None;
    let revision = request.revision.clone();
    op.operation = Some(request.clone());
    operation::record_result(&mut op, &revision, records);
    let ok = result.is_ok();
    match result {
        Ok(message) => {
            op.phase = OperationPhase::Succeeded;
            op.message = message;
            status::clear_condition(status, SYNC_ERROR);
            if !request.dry_run {
                let limit = status::history_limit(app.spec.revision_history_limit);
                status::record_history(
                    status,
                    &revision,
                    &request.sources,
                    &op.started_at,
                    op.initiated_by.clone(),
                    commit,
                    limit,
                );
            }
        }
        Err(message) => {
            warn!(app = %app.key(), %message, "sync failed");
            op.phase = OperationPhase::Failed;
            op.message = message.clone();
            status::set_condition(status, SYNC_ERROR, &message);
        }
    }
    status::record_operation(status, &op, &revision);
    status.operation_state = Some(op);
    ok
}

/// Where the operation's desired state comes from.
enum OpTarget {
    /// The spec's sources at the revision just rendered.
    Spec,
    /// Other sources or another revision (a pinned sync, a rollback), rendered and compared.
    Pinned(Box<Desired>, Vec<Compared>),
}

/// Pins the operation to a revision on its first step, and renders it when that is not what
/// the spec renders now (a rollback, `--revision`, or a sync that began on an older commit).
async fn operation_target(
    ctx: &Context,
    target: &Connected,
    app: &Application,
    status: &mut ApplicationStatus,
    request: &mut crate::store::application::SyncOperation,
    spec_desired: &Desired,
) -> Result<OpTarget, Failed> {
    if let Some(id) = request.rollback_id {
        if app.automated().is_some() {
            return Err(desired::failed(
                SYNC_ERROR,
                "rollback is not allowed while automated sync is enabled",
            ));
        }
        let entry =
            status.history.iter().find(|h| h.id == id).ok_or_else(|| {
                desired::failed(SYNC_ERROR, format!("no history entry with id {id}"))
            })?;
        if request.revision.is_empty() {
            request.revision = entry.revision.clone();
        }
        if !entry.sources.is_empty() && request.sources != entry.sources {
            request.sources = entry.sources.clone();
        }
    }
    let spec = operation::spec_sources(app);
    if request.sources.is_empty() {
        request.sources = spec.clone();
    }
    if request.revision.is_empty() {
        request.revision = spec_desired.revision.clone();
    }
    if request.sources == spec && request.revision == spec_desired.revision {
        return Ok(OpTarget::Spec);
    }
    let mut pinned: Vec<ApplicationSource> = request.sources.clone();
    if let Some(first) = pinned.first_mut() {
        first.target_revision = Some(request.revision.clone());
    }
    let refs: Vec<&ApplicationSource> = pinned.iter().collect();
    let d = desired_state(ctx, target, app, &refs, false).await?;
    // The operation records the commit it synced, not the name it asked for.
    request.revision = d.revision.clone();
    let inventory: Vec<ResourceKey> = status.resources.iter().map(desired::resource_key).collect();
    let rules = ignore_rules(app).map_err(|e| desired::failed(COMPARISON_ERROR, e))?;
    let mut compared = sync::compare(
        &target.cluster,
        &target.cache,
        &app.key().to_string(),
        &d.resources,
        &inventory,
        &target.verdicts,
        &rules,
    )
    .await
    .map_err(|e| {
        desired::failed(
            COMPARISON_ERROR,
            format!("cannot compare with the cluster: {e}"),
        )
    })?;
    keep_prunes_in_reach(&mut compared, &d.rules, d.target.as_target(), status);
    Ok(OpTarget::Pinned(Box::new(d), compared))
}

/// Desired objects whose live copy another Application tracks, as messages.
pub(super) fn shared_resources(app: &str, compared: &[Compared]) -> Vec<String> {
    compared
        .iter()
        .filter(|c| c.desired.is_some())
        .filter_map(|c| {
            let id = crate::cluster::resource::tracking_id_of(c.live.as_ref()?)?;
            let owner = id.split_once(':')?.0;
            (owner != app).then(|| format!("{} is part of application {owner}", c.key))
        })
        .collect()
}

/// The destination namespace as `CreateNamespace=true` creates it.
fn managed_namespace(app: &Application, options: &options::AppOptions) -> Option<Value> {
    if !options.create_namespace {
        return None;
    }
    let ns = app
        .spec
        .destination
        .namespace
        .clone()
        .filter(|n| !n.is_empty())?;
    let mut obj =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    if let Some(meta) = app
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.managed_namespace_metadata.as_ref())
    {
        if !meta.labels.is_empty() {
            obj["metadata"]["labels"] = serde_json::json!(meta.labels);
        }
        if !meta.annotations.is_empty() {
            obj["metadata"]["annotations"] = serde_json::json!(meta.annotations);
        }
    }
    Some(obj)
}

/// The cluster as the sync engine's target. Each write goes through the live cache (so the
/// watch event it causes is not taken for drift, and the next compare reads it at once), and an
/// applied object is remembered as in sync with what was applied, so the compare after the sync
/// asks the server nothing.
struct Recording<'a> {
    cluster: &'a Cluster,
    verdicts: &'a Verdicts,
    /// The app's ignore rules' fingerprint.
    salt: u64,
    cache: &'a LiveCache,
}

impl Recording<'_> {
    async fn write(
        &self,
        obj: &Value,
        call: impl std::future::Future<Output = Result<Value, ClusterError>>,
    ) -> Result<Value, ClusterError> {
        let guard = ResourceKey::of(obj).map(|k| self.cache.begin_write(&k.object_id()));
        let result = call.await;
        if let (Ok(applied), Some(guard)) = (&result, guard) {
            guard.written(applied);
        }
        result
    }
}

impl Target for Recording<'_> {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Value>, ClusterError> {
        Target::get(self.cluster, key).await
    }

    async fn apply(&self, obj: &Value, mode: ApplyMode) -> Result<Value, ClusterError> {
        if mode.dry_run {
            return Target::apply(self.cluster, obj, mode).await;
        }
        let applied = self
            .write(obj, Target::apply(self.cluster, obj, mode))
            .await?;
        self.verdicts.put(obj, &applied, self.salt, true);
        Ok(applied)
    }

    async fn create(&self, obj: &Value) -> Result<Value, ClusterError> {
        self.write(obj, Target::create(self.cluster, obj)).await
    }

    async fn replace(&self, obj: &Value) -> Result<Value, ClusterError> {
        self.write(obj, Target::replace(self.cluster, obj)).await
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        propagation: Propagation,
    ) -> Result<(), ClusterError> {
        let guard = self.cache.begin_write(&key.object_id());
        let result = Target::delete(self.cluster, key, propagation).await;
        if result.is_ok() {
            guard.deleted();
        }
        result
    }
}
