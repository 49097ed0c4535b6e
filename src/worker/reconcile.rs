//! One Job, start to end: resolve → fetch → render → compare → (sync) → health → status.
//! Problems with the app itself become conditions; only failing to write status is an error,
//! so the job is redelivered (docs/architecture.md, invariant 2).

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::status::{
    self, COMPARISON_ERROR, EXCLUDED_RESOURCE_WARNING, INVALID_SPEC_ERROR,
    REPEATED_RESOURCE_WARNING, SYNC_ERROR,
};
use crate::cluster::{Cluster, ResourceKey};
use crate::event::now_rfc3339;
use crate::health::HealthStatus;
use crate::job::{Job, JobKind};
use crate::manifests::{AppManifests, ManifestError, Manifests};
use crate::store::application::{
    Application, ApplicationSource, ApplicationStatus, InitiatedBy, OperationPhase, OperationState,
    RenderInputs, SyncOperationResult, SyncStatus, SyncStatusCode,
};
use crate::store::{AppStore, StoreError};
use crate::sync::{self, Compared, SyncOptions};
use crate::tenancy::{ProjectRules, Target, Tenancy};

/// The destination server that means "the management cluster".
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The name of the management cluster as a destination.
pub const IN_CLUSTER_NAME: &str = "in-cluster";

/// Everything a reconcile needs; cheap to share.
pub struct Context {
    pub store: AppStore,
    pub tenancy: Tenancy,
    pub cluster: Arc<Cluster>,
    /// Git, render cache and tools: the desired state of every source.
    pub manifests: Arc<Manifests>,
    /// A whole reconcile is abandoned after this long, so one app can never hold a worker slot.
    pub reconcile_timeout: std::time::Duration,
}

/// What a reconcile found, for the caller's follow-up decisions.
#[derive(Debug, Default)]
pub struct Report {
    /// The Application no longer exists, or lives where Capstan does not act; nothing was written.
    pub gone: bool,
    /// Resources are still progressing; a re-check soon will update health.
    pub progressing: bool,
    pub revision: Option<String>,
    pub synced: bool,
}

/// Reconciles one Application for `job` and writes its status.
pub async fn reconcile(ctx: &Context, job: &Job) -> Result<Report, StoreError> {
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
    let report = match tokio::time::timeout(
        ctx.reconcile_timeout,
        evaluate_and_sync(ctx, &app, job, &mut status),
    )
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
            let revision = status.sync.as_ref().and_then(|s| s.revision.clone());
            status.sync = Some(SyncStatus {
                status: SyncStatusCode::Unknown,
                revision,
                ..Default::default()
            });
            Report::default()
        }
    };
    status.reconciled_at = Some(now_rfc3339());
    status::bound(
        &mut status,
        status::history_limit(app.spec.revision_history_limit),
    );
    ctx.store.write_status(ns, name, &status).await?;
    Ok(report)
}

/// The failure of one stage, as the condition it becomes.
struct Failed {
    condition: &'static str,
    message: String,
}

fn failed(condition: &'static str, message: impl Into<String>) -> Failed {
    Failed {
        condition,
        message: message.into(),
    }
}

async fn evaluate_and_sync(
    ctx: &Context,
    app: &Application,
    job: &Job,
    status: &mut ApplicationStatus,
) -> Report {
    let key = app.key();
    let desired = match desired_state(ctx, app, job).await {
        Ok(d) => d,
        Err(f) => {
            warn!(app = %key, condition = f.condition, message = %f.message, "cannot compare");
            status::set_condition(status, f.condition, &f.message);
            for other in [COMPARISON_ERROR, INVALID_SPEC_ERROR] {
                if other != f.condition {
                    status::clear_condition(status, other);
                }
            }
            let revision = status.sync.as_ref().and_then(|s| s.revision.clone());
            status.sync = Some(SyncStatus {
                status: SyncStatusCode::Unknown,
                revision,
                ..Default::default()
            });
            return Report::default();
        }
    };
    status::clear_condition(status, COMPARISON_ERROR);
    status::clear_condition(status, INVALID_SPEC_ERROR);
    let Desired {
        revision,
        revisions,
        objects,
        source_types,
        warnings,
        render_inputs,
        rules,
        target,
    } = desired;
    status.source_type = source_types.first().cloned();
    status.source_types = if source_types.len() > 1 {
        source_types
    } else {
        Vec::new()
    };
    status.render_inputs = render_inputs;
    match warnings
        .iter()
        .find(|w| w.condition == REPEATED_RESOURCE_WARNING)
    {
        Some(w) => status::set_condition(status, REPEATED_RESOURCE_WARNING, &w.message),
        None => status::clear_condition(status, REPEATED_RESOURCE_WARNING),
    }
    let inventory: Vec<ResourceKey> = status.resources.iter().map(resource_key).collect();
    let in_reach = |mut compared: Vec<Compared>, status: &mut ApplicationStatus| {
        keep_prunes_in_reach(&mut compared, &rules, target.as_target(), status);
        compared
    };

    let tracking_app = key.to_string();
    let mut compared = match sync::compare(&ctx.cluster, &tracking_app, &objects, &inventory).await
    {
        Ok(c) => in_reach(c, status),
        Err(e) => {
            status::set_condition(
                status,
                COMPARISON_ERROR,
                &format!("cannot compare with the cluster: {e}"),
            );
            status.sync = Some(SyncStatus {
                status: SyncStatusCode::Unknown,
                revision: Some(revision.clone()),
                ..Default::default()
            });
            return Report {
                revision: Some(revision),
                ..Default::default()
            };
        }
    };

    let mut synced = false;
    if should_sync(app, job, &compared, &revision, status) {
        synced = run_sync(ctx, app, job, &compared, &revision, status).await;
        // Status reflects the cluster after the sync, not before.
        match sync::compare(&ctx.cluster, &tracking_app, &objects, &inventory).await {
            Ok(after) => compared = in_reach(after, status),
            Err(e) => status::set_condition(
                status,
                COMPARISON_ERROR,
                &format!("cannot compare after sync: {e}"),
            ),
        }
    }
    status::summarise(status, &compared, &revision);
    if revisions.len() > 1
        && let Some(sync) = status.sync.as_mut()
    {
        sync.revisions = revisions;
    }
    let progressing = status.health.as_ref().is_some_and(|h| {
        h.status == HealthStatus::Progressing || h.status == HealthStatus::Missing && synced
    });
    Report {
        gone: false,
        progressing,
        revision: Some(revision),
        synced,
    }
}

/// Runs one sync operation and records it in `status` (operation state, history, SyncError).
async fn run_sync(
    ctx: &Context,
    app: &Application,
    job: &Job,
    compared: &[Compared],
    revision: &str,
    status: &mut ApplicationStatus,
) -> bool {
    let started_at = now_rfc3339();
    let opts = SyncOptions {
        prune: job.prune || app.automated().is_some_and(|a| a.prune),
        create_namespace: app
            .sync_option("CreateNamespace")
            .then(|| app.spec.destination.namespace.clone())
            .flatten()
            .filter(|n| !n.is_empty()),
    };
    info!(app = %app.key(), revision = %revision, prune = opts.prune, "syncing");
    let outcome = sync::sync(&ctx.cluster, compared, &opts).await;
    let phase = if outcome.succeeded {
        OperationPhase::Succeeded
    } else {
        OperationPhase::Failed
    };
    status.operation_state = Some(OperationState {
        phase,
        message: outcome.message.clone(),
        sync_result: Some(SyncOperationResult {
            revision: revision.to_owned(),
            resources: outcome.resources,
        }),
        started_at: started_at.clone(),
        finished_at: Some(now_rfc3339()),
        initiated_by: Some(InitiatedBy {
            username: job.cause.by.clone(),
            automated: job.kind != JobKind::Sync,
        }),
    });
    if outcome.succeeded {
        status::clear_condition(status, SYNC_ERROR);
        let limit = status::history_limit(app.spec.revision_history_limit);
        status::record_history(status, revision, &started_at, limit);
    } else {
        warn!(app = %app.key(), message = %outcome.message, "sync failed");
        status::set_condition(status, SYNC_ERROR, &outcome.message);
    }
    outcome.succeeded
}

/// Whether this job syncs: always when asked; automatically when OutOfSync, once per revision
/// unless self-heal is on, and never just to prune when prune is off.
fn should_sync(
    app: &Application,
    job: &Job,
    compared: &[Compared],
    revision: &str,
    status: &ApplicationStatus,
) -> bool {
    if job.kind == JobKind::Sync {
        return true;
    }
    let Some(auto) = app.automated() else {
        return false;
    };
    let apply_needed = compared
        .iter()
        .any(|c| c.desired.is_some() && c.status != SyncStatusCode::Synced);
    let prune_needed = compared.iter().any(|c| c.requires_pruning);
    if !(apply_needed || prune_needed && auto.prune) {
        return false;
    }
    if compared.iter().all(|c| c.desired.is_none()) && !auto.allow_empty {
        return false;
    }
    let last = status.operation_state.as_ref();
    let last_revision = last
        .and_then(|o| o.sync_result.as_ref())
        .map(|r| r.revision.as_str());
    if last_revision == Some(revision) {
        return match last.map(|o| o.phase) {
            Some(OperationPhase::Failed) => false,
            _ => auto.self_heal,
        };
    }
    true
}

struct Desired {
    revision: String,
    revisions: Vec<String>,
    objects: Vec<serde_json::Value>,
    source_types: Vec<String>,
    warnings: Vec<crate::render::RenderWarning>,
    render_inputs: Vec<RenderInputs>,
    rules: ProjectRules,
    target: Destination,
}

async fn desired_state(ctx: &Context, app: &Application, job: &Job) -> Result<Desired, Failed> {
    let sources = app.all_sources();
    let rules = ctx
        .tenancy
        .rules_for(app)
        .map_err(|e| failed(INVALID_SPEC_ERROR, e.to_string()))?;
    let destination = resolve_destination(app)?;
    for s in &sources {
        rules
            .check_repo(&s.repo_url)
            .map_err(|e| failed(INVALID_SPEC_ERROR, e.to_string()))?;
    }
    rules
        .check_destination(destination.as_target())
        .map_err(|e| failed(INVALID_SPEC_ERROR, e.to_string()))?;
    let namespace = app.destination_namespace();
    let mut rendered = ctx
        .manifests
        .desired_for_app(app, &ctx.cluster, job.hard)
        .await
        .map_err(|e| match e {
            ManifestError::InvalidSpec(m) => failed(INVALID_SPEC_ERROR, m),
            ManifestError::Comparison(m) => failed(COMPARISON_ERROR, m),
        })?;
    let allow_empty = app.automated().is_some_and(|a| a.allow_empty);
    if rendered.objects.is_empty() && !allow_empty {
        return Err(failed(COMPARISON_ERROR, nothing_rendered(&rendered)));
    }
    let objects = sync::prepare::prepare(
        &ctx.cluster,
        std::mem::take(&mut rendered.objects),
        &app.key().to_string(),
        &namespace,
    )
    .await
    .map_err(|e| failed(COMPARISON_ERROR, e.to_string()))?;
    check_objects(&rules, destination.as_target(), &objects)?;
    Ok(Desired {
        revision: rendered.revisions.first().cloned().unwrap_or_default(),
        render_inputs: render_inputs(&sources, &rendered),
        revisions: rendered.revisions,
        objects,
        source_types: rendered
            .tools
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        warnings: rendered.warnings,
        rules,
        target: destination,
    })
}

/// Files listed in a "rendered nothing" message before the rest are only counted.
const MAX_LISTED_SKIPPED: usize = 10;

/// The condition message for a source that rendered no object: never Synced on nothing.
fn nothing_rendered(rendered: &AppManifests) -> String {
    let mut message = String::from("the source rendered no Kubernetes objects");
    if !rendered.skipped.is_empty() {
        message.push_str(&format!(
            " (skipped, holding no Kubernetes object: {})",
            listed(&rendered.skipped, MAX_LISTED_SKIPPED)
        ));
    }
    message.push_str(
        "; nothing is applied or pruned. Check spec.source.path and directory.include, or set \
         syncPolicy.automated.allowEmpty: true if the app is meant to be empty",
    );
    message
}

/// Most render inputs recorded per repository; beyond it the whole repository is watched,
/// which costs extra refreshes but never misses one.
const MAX_RENDER_INPUTS: usize = 500;

/// What each repository's renders read outside the app's own source paths, for the router.
fn render_inputs(sources: &[&ApplicationSource], rendered: &AppManifests) -> Vec<RenderInputs> {
    rendered
        .files_read
        .iter()
        .filter_map(|(repo, files)| {
            let own: Vec<String> = sources
                .iter()
                .filter(|s| &s.repo_url == repo)
                .filter_map(|s| s.path.as_deref())
                .map(|p| p.trim_matches('/').trim_start_matches("./").to_string())
                .collect();
            let outside: Vec<String> = files
                .iter()
                .filter(|f| {
                    !own.iter().any(|base| {
                        base.is_empty()
                            || base == "."
                            || *f == base
                            || f.starts_with(&format!("{base}/"))
                    })
                })
                .cloned()
                .collect();
            if outside.is_empty() {
                return None;
            }
            let paths = if outside.len() > MAX_RENDER_INPUTS {
                vec![String::new()]
            } else {
                outside
            };
            Some(RenderInputs {
                repo_url: repo.clone(),
                paths,
            })
        })
        .collect()
}

/// Violations listed in one condition message before the rest are only counted.
const MAX_LISTED_VIOLATIONS: usize = 10;

/// Every desired object must be of a kind, and in a namespace, the project allows; otherwise
/// nothing at all is applied.
fn check_objects(
    rules: &ProjectRules,
    target: Target<'_>,
    objects: &[serde_json::Value],
) -> Result<(), Failed> {
    let violations: Vec<String> = objects
        .iter()
        .filter_map(|obj| {
            let key = ResourceKey::of(obj)?;
            rules
                .check_object(
                    &key.group,
                    &key.kind,
                    &key.namespace,
                    target,
                    &key.to_string(),
                )
                .err()
                .map(|v| v.to_string())
        })
        .collect();
    if violations.is_empty() {
        return Ok(());
    }
    Err(failed(
        SYNC_ERROR,
        format!(
            "nothing applied: {}",
            listed(&violations, MAX_LISTED_VIOLATIONS)
        ),
    ))
}

/// Tracked objects the project no longer lets this app reach are never pruned: they are taken out
/// of the comparison and named in a warning condition instead.
fn keep_prunes_in_reach(
    compared: &mut Vec<Compared>,
    rules: &ProjectRules,
    target: Target<'_>,
    status: &mut ApplicationStatus,
) {
    let mut excluded = Vec::new();
    compared.retain(|c| {
        if !c.requires_pruning {
            return true;
        }
        let k = &c.key;
        match rules.check_object(&k.group, &k.kind, &k.namespace, target, &k.to_string()) {
            Ok(()) => true,
            Err(_) => {
                excluded.push(k.to_string());
                false
            }
        }
    });
    if excluded.is_empty() {
        status::clear_condition(status, EXCLUDED_RESOURCE_WARNING);
    } else {
        status::set_condition(
            status,
            EXCLUDED_RESOURCE_WARNING,
            &format!(
                "left in place, outside what project '{}' allows (never pruned): {}",
                rules.name(),
                listed(&excluded, MAX_LISTED_VIOLATIONS)
            ),
        );
    }
}

/// `a; b; c and 4 more`.
fn listed(items: &[String], max: usize) -> String {
    let mut text = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > max {
        text.push_str(&format!(" and {} more", items.len() - max));
    }
    text
}

/// An app's destination resolved to a cluster name and server URL.
struct Destination {
    server: String,
    name: String,
    namespace: String,
}

impl Destination {
    fn as_target(&self) -> Target<'_> {
        Target {
            server: &self.server,
            name: &self.name,
            namespace: &self.namespace,
        }
    }
}

/// Only the management cluster is a target until Cluster objects exist.
fn resolve_destination(app: &Application) -> Result<Destination, Failed> {
    let dest = &app.spec.destination;
    let server_ok = dest
        .server
        .as_deref()
        .is_none_or(|s| s.is_empty() || s.trim_end_matches('/') == IN_CLUSTER_SERVER);
    let name_ok = dest
        .name
        .as_deref()
        .is_none_or(|n| n.is_empty() || n == IN_CLUSTER_NAME);
    if server_ok && name_ok {
        Ok(Destination {
            server: IN_CLUSTER_SERVER.to_owned(),
            name: IN_CLUSTER_NAME.to_owned(),
            namespace: dest.namespace.clone().unwrap_or_default(),
        })
    } else {
        Err(failed(
            INVALID_SPEC_ERROR,
            format!(
                "destination {} is not a registered cluster (only in-cluster / {IN_CLUSTER_SERVER} is available)",
                dest.server
                    .clone()
                    .or_else(|| dest.name.clone())
                    .unwrap_or_default()
            ),
        ))
    }
}

fn resource_key(r: &crate::store::application::ResourceStatus) -> ResourceKey {
    ResourceKey {
        group: r.group.clone(),
        version: r.version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Cause, CauseSource};
    use crate::store::application::{ApplicationSpec, AutomatedSync, SyncPolicy};
    use serde_json::json;

    fn app(automated: Option<AutomatedSync>) -> Application {
        let spec = ApplicationSpec {
            sync_policy: Some(SyncPolicy {
                automated,
                ..Default::default()
            }),
            ..Default::default()
        };
        Application::new("a", spec)
    }

    fn auto(prune: bool, self_heal: bool) -> Option<AutomatedSync> {
        Some(AutomatedSync {
            prune,
            self_heal,
            ..Default::default()
        })
    }

    fn job(kind: JobKind) -> Job {
        Job::new(
            &crate::domain::AppKey::parse("ns/a").expect("key"),
            kind,
            Cause {
                source: CauseSource::Webhook,
                event_id: None,
                by: None,
            },
        )
    }

    fn compared(status: SyncStatusCode, requires_pruning: bool) -> Compared {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}});
        Compared {
            key: ResourceKey::of(&obj).expect("key"),
            desired: (!requires_pruning).then(|| obj.clone()),
            live: Some(obj),
            status,
            requires_pruning,
            message: None,
        }
    }

    fn last_op(revision: &str, phase: OperationPhase) -> ApplicationStatus {
        ApplicationStatus {
            operation_state: Some(OperationState {
                phase,
                sync_result: Some(SyncOperationResult {
                    revision: revision.into(),
                    resources: vec![],
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_refresh_never_syncs_a_manual_app_but_a_sync_job_always_does() {
        let out = [compared(SyncStatusCode::OutOfSync, false)];
        let none = ApplicationStatus::default();
        assert!(!should_sync(
            &app(None),
            &job(JobKind::Refresh),
            &out,
            "r1",
            &none
        ));
        assert!(should_sync(
            &app(None),
            &job(JobKind::Sync),
            &out,
            "r1",
            &none
        ));
    }

    #[test]
    fn automation_syncs_each_new_revision_once() {
        let out = [compared(SyncStatusCode::OutOfSync, false)];
        let refresh = job(JobKind::Refresh);
        assert!(should_sync(
            &app(auto(false, false)),
            &refresh,
            &out,
            "r2",
            &last_op("r1", OperationPhase::Succeeded)
        ));
        assert!(
            !should_sync(
                &app(auto(false, false)),
                &refresh,
                &out,
                "r1",
                &last_op("r1", OperationPhase::Succeeded)
            ),
            "drift on the synced revision is corrected only with selfHeal"
        );
        assert!(should_sync(
            &app(auto(false, true)),
            &refresh,
            &out,
            "r1",
            &last_op("r1", OperationPhase::Succeeded)
        ));
        assert!(
            !should_sync(
                &app(auto(false, true)),
                &refresh,
                &out,
                "r1",
                &last_op("r1", OperationPhase::Failed)
            ),
            "a failed revision is not retried automatically"
        );
        let synced = [compared(SyncStatusCode::Synced, false)];
        assert!(!should_sync(
            &app(auto(true, true)),
            &refresh,
            &synced,
            "r2",
            &ApplicationStatus::default()
        ));
    }

    #[test]
    fn prune_only_differences_sync_only_when_prune_is_on() {
        let out = [
            compared(SyncStatusCode::Synced, false),
            compared(SyncStatusCode::OutOfSync, true),
        ];
        let refresh = job(JobKind::Refresh);
        let none = ApplicationStatus::default();
        assert!(!should_sync(
            &app(auto(false, true)),
            &refresh,
            &out,
            "r1",
            &none
        ));
        assert!(should_sync(
            &app(auto(true, false)),
            &refresh,
            &out,
            "r1",
            &none
        ));
        let only_prunes = [compared(SyncStatusCode::OutOfSync, true)];
        assert!(
            !should_sync(&app(auto(true, false)), &refresh, &only_prunes, "r1", &none),
            "pruning everything needs allowEmpty"
        );
    }
}
