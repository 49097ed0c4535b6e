//! The operation an Application's status carries: when automation starts one, how failed ones
//! are retried, and how the engine's task records map onto `status.operationState`. Pure
//! functions over the status, so each decision is unit-tested.

use std::time::Duration;

use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::store::application::{
    Application, ApplicationSource, ApplicationStatus, InitiatedBy, OperationCause, OperationPhase,
    OperationState, ResourceResult, ResultCode, RetryStrategy, SyncOperation,
    SyncOperationResource, SyncOperationResult,
};
use crate::sync::Compared;
use crate::sync::execute::{TaskRecord, TaskStatus};
use crate::sync::hooks::Phase;

/// What automation decides for one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoSync {
    No,
    /// Start a sync now; the count is the self-heal attempt it is (0 for a new revision).
    Now {
        auto_heal_attempts: i64,
    },
    /// Self-heal is due, but not before this backoff has passed.
    Later(Duration),
}

/// Whether automation syncs: only when OutOfSync; once per (revision, sources) — a failed
/// one is left to `retry` —; after a success on the same revision only with selfHeal, backing
/// off 2 s × 3ⁿ up to 5 min over consecutive heals; never just to prune with prune off; never
/// to delete everything without allowEmpty.
pub fn auto_sync(
    app: &Application,
    status: &ApplicationStatus,
    compared: &[Compared],
    revision: &str,
    now: jiff::Timestamp,
) -> AutoSync {
    let Some(auto) = app.automated() else {
        return AutoSync::No;
    };
    let apply_needed = compared.iter().any(|c| c.desired.is_some() && !c.in_sync());
    let prune_needed = compared.iter().any(|c| c.requires_pruning);
    if !(apply_needed || prune_needed && auto.prune) {
        return AutoSync::No;
    }
    if compared.iter().all(|c| c.desired.is_none()) && !auto.allow_empty {
        return AutoSync::No;
    }
    let Some(last) = status.operation_state.as_ref() else {
        return AutoSync::Now {
            auto_heal_attempts: 0,
        };
    };
    let same_target = last
        .sync_result
        .as_ref()
        .is_some_and(|r| r.revision == revision && r.sources == spec_sources(app));
    if !same_target {
        return AutoSync::Now {
            auto_heal_attempts: 0,
        };
    }
    if last.phase != OperationPhase::Succeeded || !auto.self_heal {
        return AutoSync::No;
    }
    let attempts = last
        .operation
        .as_ref()
        .map_or(0, |o| o.auto_heal_attempts_count);
    let wait = self_heal_delay(attempts);
    let since = last
        .finished_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| now.duration_since(t).unsigned_abs())
        .unwrap_or(wait);
    if since < wait {
        return AutoSync::Later(wait - since);
    }
    AutoSync::Now {
        auto_heal_attempts: attempts + 1,
    }
}

/// Argo CD's self-heal backoff: 2 s, 6 s, 18 s … at most 5 min; the first heal waits nothing.
pub fn self_heal_delay(attempts: i64) -> Duration {
    if attempts <= 0 {
        return Duration::ZERO;
    }
    let secs = 2u64.saturating_mul(3u64.saturating_pow((attempts - 1).min(10) as u32));
    Duration::from_secs(secs.min(300))
}

/// Argo CD's retry backoff: `duration` × `factor`ⁿ, at most `maxDuration` (5 s, ×2, 3 min).
pub fn retry_delay(retry: &RetryStrategy, attempt: i64) -> Duration {
    let backoff = retry.backoff.clone().unwrap_or_default();
    let base = parse_duration(backoff.duration.as_deref()).unwrap_or(Duration::from_secs(5));
    let max = parse_duration(backoff.max_duration.as_deref()).unwrap_or(Duration::from_secs(180));
    let factor = backoff.factor.unwrap_or(2).max(1) as u32;
    let n = attempt.clamp(0, 30) as u32;
    base.saturating_mul(factor.saturating_pow(n)).min(max)
}

/// Whether another retry is allowed after `retry_count` retries (limit 0: none; negative: no end).
pub fn may_retry(retry: Option<&RetryStrategy>, retry_count: i64) -> bool {
    retry.is_some_and(|r| r.limit < 0 || retry_count < r.limit)
}

/// A Go-style duration ("5s", "3m", "1m30s"), as Argo CD writes them.
fn parse_duration(text: Option<&str>) -> Option<Duration> {
    let d: jiff::SignedDuration = text?.trim().parse().ok()?;
    Duration::try_from(d).ok()
}

/// The app's sources as written in its spec.
pub fn spec_sources(app: &Application) -> Vec<ApplicationSource> {
    app.all_sources().into_iter().cloned().collect()
}

/// The sync a job or automation asks for.
pub fn requested(app: &Application, job: &Job, auto_heal_attempts: Option<i64>) -> SyncOperation {
    let request = job.sync.clone().unwrap_or_default();
    let automated = auto_heal_attempts.is_some();
    SyncOperation {
        revision: request.revision.clone().unwrap_or_default(),
        sources: spec_sources(app),
        prune: if automated {
            app.automated().is_some_and(|a| a.prune)
        } else {
            job.prune
        },
        dry_run: !automated && request.dry_run,
        resources: request
            .resources
            .iter()
            .map(|r| SyncOperationResource {
                group: r.group.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
            })
            .collect(),
        auto_heal_attempts_count: auto_heal_attempts.unwrap_or(0),
        rollback_id: if automated { None } else { request.rollback_id },
    }
}

/// A new running operation.
pub fn start(operation: SyncOperation, job: &Job, automated: bool, now: String) -> OperationState {
    OperationState {
        phase: OperationPhase::Running,
        message: "sync started".into(),
        sync_result: None,
        started_at: now,
        finished_at: None,
        initiated_by: Some(InitiatedBy {
            username: if automated {
                None
            } else {
                job.cause.by.clone()
            },
            automated: automated || job.kind != JobKind::Sync,
            cause: Some(cause_of(&job.cause)),
        }),
        operation: Some(operation),
        retry_count: 0,
        next_retry_at: None,
    }
}

/// The record of what caused an operation: the job's cause, with its `by` named for what it is.
pub fn cause_of(cause: &Cause) -> OperationCause {
    let person = cause.source == CauseSource::Manual;
    OperationCause {
        source: cause.source.as_str().to_owned(),
        provider: cause.provider.clone(),
        delivery_id: cause.delivery.clone(),
        event_id: cause.event_id.clone(),
        pusher: cause.by.clone().filter(|_| !person),
        user: cause.by.clone().filter(|_| person),
    }
}

/// The engine's records as `operationState.syncResult.resources`.
pub fn results_from(records: &[TaskRecord]) -> Vec<ResourceResult> {
    records
        .iter()
        .map(|r| {
            let status = match r.status {
                TaskStatus::SyncFailed | TaskStatus::Failed => ResultCode::SyncFailed,
                TaskStatus::Pruned => ResultCode::Pruned,
                TaskStatus::PruneSkipped => ResultCode::PruneSkipped,
                TaskStatus::Pending => ResultCode::Pending,
                TaskStatus::Synced | TaskStatus::Running | TaskStatus::Succeeded => {
                    ResultCode::Synced
                }
            };
            ResourceResult {
                group: r.key.group.clone(),
                version: r.key.version.clone(),
                kind: r.key.kind.clone(),
                namespace: r.key.namespace.clone(),
                name: r.key.name.clone(),
                status,
                message: r.message.clone(),
                action: r.action.clone(),
                sync_phase: Some(r.phase.as_str().to_owned()),
                sync_wave: r.wave,
                hook_type: r.hook.then(|| r.phase.as_str().to_owned()),
                hook_phase: r.hook.then(|| {
                    match r.status {
                        TaskStatus::Pending => "Pending",
                        TaskStatus::Running => "Running",
                        TaskStatus::Failed | TaskStatus::SyncFailed => "Failed",
                        _ => "Succeeded",
                    }
                    .to_owned()
                }),
                generate_name: r.generate_name.clone(),
            }
        })
        .collect()
}

/// `operationState.syncResult.resources` back into the engine's records.
pub fn records_from(results: &[ResourceResult]) -> Vec<TaskRecord> {
    results
        .iter()
        .map(|r| {
            let hook = r.hook_type.is_some();
            let status = if hook {
                match r.hook_phase.as_deref() {
                    Some("Pending") => TaskStatus::Pending,
                    Some("Running") => TaskStatus::Running,
                    Some("Failed") => TaskStatus::Failed,
                    _ => TaskStatus::Succeeded,
                }
            } else {
                match r.status {
                    ResultCode::Synced => TaskStatus::Synced,
                    ResultCode::SyncFailed => TaskStatus::SyncFailed,
                    ResultCode::Pruned => TaskStatus::Pruned,
                    ResultCode::PruneSkipped => TaskStatus::PruneSkipped,
                    ResultCode::Pending => TaskStatus::Pending,
                }
            };
            TaskRecord {
                phase: r
                    .sync_phase
                    .as_deref()
                    .and_then(Phase::parse)
                    .unwrap_or(Phase::Sync),
                wave: r.sync_wave,
                hook,
                key: crate::cluster::ResourceKey {
                    group: r.group.clone(),
                    version: r.version.clone(),
                    kind: r.kind.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                },
                generate_name: r.generate_name.clone(),
                status,
                message: r.message.clone(),
                action: r.action.clone(),
            }
        })
        .collect()
}

/// Records the operation's progress in the status.
pub fn record_result(op: &mut OperationState, revision: &str, records: &[TaskRecord]) {
    let sources = op
        .operation
        .as_ref()
        .map(|o| o.sources.clone())
        .unwrap_or_default();
    op.sync_result = Some(SyncOperationResult {
        revision: revision.to_owned(),
        sources,
        resources: results_from(records),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ResourceKey;
    use crate::store::application::{ApplicationSpec, AutomatedSync, Backoff, SyncPolicy};
    use crate::sync::SyncState;
    use serde_json::json;

    fn app(self_heal: bool) -> Application {
        let spec = ApplicationSpec {
            source: Some(ApplicationSource {
                repo_url: "https://git.example/r.git".into(),
                ..Default::default()
            }),
            sync_policy: Some(SyncPolicy {
                automated: Some(AutomatedSync {
                    self_heal,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Application::new("a", spec)
    }

    fn out_of_sync() -> Vec<Compared> {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}});
        vec![Compared {
            key: ResourceKey::of(&obj).expect("key"),
            desired: Some(obj.clone()),
            live: Some(obj),
            state: SyncState::OutOfSync,
            requires_pruning: false,
            message: None,
            dry_run_ok: true,
        }]
    }

    fn last(
        app: &Application,
        revision: &str,
        phase: OperationPhase,
        heals: i64,
        finished: &str,
    ) -> ApplicationStatus {
        ApplicationStatus {
            operation_state: Some(OperationState {
                phase,
                finished_at: Some(finished.into()),
                sync_result: Some(SyncOperationResult {
                    revision: revision.into(),
                    sources: spec_sources(app),
                    resources: vec![],
                }),
                operation: Some(SyncOperation {
                    auto_heal_attempts_count: heals,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn automation_syncs_a_revision_once_and_heals_with_backoff() {
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let a = app(true);
        let c = out_of_sync();
        assert_eq!(
            auto_sync(&a, &ApplicationStatus::default(), &c, "r1", now),
            AutoSync::Now {
                auto_heal_attempts: 0
            }
        );
        let failed = last(&a, "r1", OperationPhase::Failed, 0, "2026-01-01T00:00:00Z");
        assert_eq!(
            auto_sync(&a, &failed, &c, "r1", now),
            AutoSync::No,
            "a failed revision is left to retry"
        );
        assert_eq!(
            auto_sync(&a, &failed, &c, "r2", now),
            AutoSync::Now {
                auto_heal_attempts: 0
            },
            "a new revision is synced"
        );
        let ok = last(
            &a,
            "r1",
            OperationPhase::Succeeded,
            0,
            "2026-01-01T00:00:59Z",
        );
        assert_eq!(
            auto_sync(&a, &ok, &c, "r1", now),
            AutoSync::Now {
                auto_heal_attempts: 1
            }
        );
        let healed = last(
            &a,
            "r1",
            OperationPhase::Succeeded,
            2,
            "2026-01-01T00:00:58Z",
        );
        assert_eq!(
            auto_sync(&a, &healed, &c, "r1", now),
            AutoSync::Later(Duration::from_secs(4)),
            "the third heal waits 6 s after the second"
        );
        assert_eq!(
            auto_sync(&app(false), &ok, &c, "r1", now),
            AutoSync::No,
            "drift without selfHeal stays"
        );
        let mut changed = a.clone();
        if let Some(s) = changed.spec.source.as_mut() {
            s.path = Some("other".into());
        }
        assert_eq!(
            auto_sync(&changed, &failed, &c, "r1", now),
            AutoSync::Now {
                auto_heal_attempts: 0
            },
            "a changed source is a new target"
        );
    }

    #[test]
    fn retry_backoff_follows_argo_cd_defaults_and_limits() {
        let default = RetryStrategy {
            limit: 3,
            backoff: None,
        };
        let secs: Vec<u64> = (0..8).map(|n| retry_delay(&default, n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 180, 180]);
        let custom = RetryStrategy {
            limit: -1,
            backoff: Some(Backoff {
                duration: Some("1s".into()),
                factor: Some(3),
                max_duration: Some("1m".into()),
            }),
        };
        assert_eq!(retry_delay(&custom, 2), Duration::from_secs(9));
        assert!(may_retry(Some(&default), 2) && !may_retry(Some(&default), 3));
        assert!(may_retry(Some(&custom), 1000));
        assert!(!may_retry(None, 0));
        assert!(!may_retry(
            Some(&RetryStrategy {
                limit: 0,
                backoff: None
            }),
            0
        ));
        let heals: Vec<u64> = (0..8).map(|n| self_heal_delay(n).as_secs()).collect();
        assert_eq!(heals, [0, 2, 6, 18, 54, 162, 300, 300]);
    }

    #[test]
    fn an_operation_names_its_cause_and_a_persons_sync_its_user() {
        let key = crate::domain::AppKey::parse("capstan/a").expect("key");
        let mut push = Job::new(&key, JobKind::Refresh, CauseSource::Webhook.into());
        push.cause.provider = Some("gitlab".into());
        push.cause.delivery = Some("d-7".into());
        push.cause.event_id = Some("e-7".into());
        push.cause.by = Some("jdoe".into());
        let op = start(SyncOperation::default(), &push, true, "t".into());
        let by = op.initiated_by.expect("initiated by");
        assert!(by.automated);
        assert_eq!(by.username, None, "automation is nobody's username");
        assert_eq!(
            by.cause,
            Some(OperationCause {
                source: "webhook".into(),
                provider: Some("gitlab".into()),
                delivery_id: Some("d-7".into()),
                event_id: Some("e-7".into()),
                pusher: Some("jdoe".into()),
                user: None,
            })
        );

        let manual = Job::new(&key, JobKind::Sync, Cause::by_person("admin".into()));
        let by = start(SyncOperation::default(), &manual, false, "t".into())
            .initiated_by
            .expect("initiated by");
        assert_eq!(
            (by.username.as_deref(), by.automated),
            (Some("admin"), false)
        );
        let cause = by.cause.expect("cause");
        assert_eq!(
            (cause.source.as_str(), cause.user.as_deref()),
            ("manual", Some("admin"))
        );
        assert_eq!(cause.pusher, None);

        let polled = Job::new(&key, JobKind::Refresh, CauseSource::Poll.into());
        let cause = start(SyncOperation::default(), &polled, true, "t".into())
            .initiated_by
            .and_then(|b| b.cause)
            .expect("cause");
        assert_eq!(
            cause,
            OperationCause {
                source: "poll".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn records_round_trip_through_the_status() {
        let records = vec![
            TaskRecord {
                phase: Phase::PreSync,
                wave: -1,
                hook: true,
                key: ResourceKey {
                    group: "batch".into(),
                    version: "v1".into(),
                    kind: "Job".into(),
                    namespace: "d".into(),
                    name: "seed-x7k2q".into(),
                },
                generate_name: Some("seed-".into()),
                status: TaskStatus::Running,
                message: "hook created".into(),
                action: Some("created".into()),
            },
            TaskRecord {
                phase: Phase::Sync,
                wave: 2,
                hook: false,
                key: ResourceKey {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: "d".into(),
                    name: "c".into(),
                },
                generate_name: None,
                status: TaskStatus::Pending,
                message: String::new(),
                action: None,
            },
        ];
        assert_eq!(records_from(&results_from(&records)), records);
    }
}
