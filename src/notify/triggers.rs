//! Triggers: which Application status transitions are worth telling someone about, with Argo CD
//! Notifications' names. Detected from the status before and after one reconcile's write.

use serde::{Deserialize, Serialize};

use crate::health::HealthStatus;
use crate::store::application::{ApplicationStatus, OperationPhase, OperationState};

/// A trigger, by its Argo CD name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Trigger {
    /// A sync operation started.
    #[serde(rename = "on-sync-running")]
    SyncRunning,
    /// A sync operation finished and succeeded.
    #[serde(rename = "on-sync-succeeded")]
    SyncSucceeded,
    /// A sync operation failed or errored.
    #[serde(rename = "on-sync-failed")]
    SyncFailed,
    /// The app's health turned Degraded.
    #[serde(rename = "on-health-degraded")]
    HealthDegraded,
    /// A sync succeeded and the app is Healthy: once per revision.
    #[serde(rename = "on-deployed")]
    Deployed,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 5] = [
        Trigger::SyncRunning,
        Trigger::SyncSucceeded,
        Trigger::SyncFailed,
        Trigger::HealthDegraded,
        Trigger::Deployed,
    ];

    /// The name subscriptions and templates use (`on-sync-succeeded`, …).
    pub fn name(self) -> &'static str {
        match self {
            Trigger::SyncRunning => "on-sync-running",
            Trigger::SyncSucceeded => "on-sync-succeeded",
            Trigger::SyncFailed => "on-sync-failed",
            Trigger::HealthDegraded => "on-health-degraded",
            Trigger::Deployed => "on-deployed",
        }
    }

    /// The colour of its Slack attachment or Teams card: green, red, blue, as Argo CD's catalog.
    pub fn colour(self) -> &'static str {
        match self {
            Trigger::SyncSucceeded | Trigger::Deployed => "#18be52",
            Trigger::SyncFailed | Trigger::HealthDegraded => "#E96D76",
            Trigger::SyncRunning => "#0DADEA",
        }
    }

    /// The trigger named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A trigger that fired, and what makes this firing unique (the deduplication key's part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub trigger: Trigger,
    /// The revision the notification is about.
    pub revision: String,
    /// The revision for on-deployed (once per revision); the revision and the operation (its
    /// start and retry) for sync triggers; the revision and the time of the transition for health.
    pub occurrence: String,
}

/// The triggers fired by writing `after` over `before` (None: the first status ever written).
pub fn fired(before: Option<&ApplicationStatus>, after: &ApplicationStatus) -> Vec<Fired> {
    let mut fired = Vec::new();
    let old_op = before.and_then(|s| s.operation_state.as_ref());
    if let Some(op) = after.operation_state.as_ref() {
        let revision = operation_revision(op, after);
        let new_op = old_op.is_none_or(|o| o.started_at != op.started_at);
        let changed =
            new_op || old_op.map(|o| (o.phase, o.retry_count)) != Some((op.phase, op.retry_count));
        let occurrence = format!("{revision}@{}#{}", op.started_at, op.retry_count);
        // A sync may start and finish within one status write: a new operation is one that ran.
        if new_op {
            fired.push(Fired {
                trigger: Trigger::SyncRunning,
                revision: revision.clone(),
                occurrence: occurrence.clone(),
            });
        }
        if changed {
            let trigger = match op.phase {
                OperationPhase::Succeeded => Some(Trigger::SyncSucceeded),
                OperationPhase::Failed | OperationPhase::Error => Some(Trigger::SyncFailed),
                OperationPhase::Running | OperationPhase::Terminating => None,
            };
            if let Some(trigger) = trigger {
                fired.push(Fired {
                    trigger,
                    revision: revision.clone(),
                    occurrence,
                });
            }
        }
    }
    let health = |s: &ApplicationStatus| s.health.as_ref().map(|h| h.status);
    if health(after) == Some(HealthStatus::Degraded)
        && before.and_then(health) != Some(HealthStatus::Degraded)
    {
        let revision = sync_revision(after);
        fired.push(Fired {
            trigger: Trigger::HealthDegraded,
            occurrence: format!(
                "{revision}@{}",
                after.reconciled_at.as_deref().unwrap_or_default()
            ),
            revision,
        });
    }
    if let Some(revision) = deployed(after)
        && before.and_then(deployed).as_deref() != Some(revision.as_str())
    {
        fired.push(Fired {
            trigger: Trigger::Deployed,
            occurrence: revision.clone(),
            revision,
        });
    }
    fired
}

/// The revision a Succeeded, non-dry-run operation deployed, while the app is Healthy.
fn deployed(status: &ApplicationStatus) -> Option<String> {
    let op = status.operation_state.as_ref()?;
    let dry_run = op.operation.as_ref().is_some_and(|o| o.dry_run);
    let healthy = status
        .health
        .as_ref()
        .is_some_and(|h| h.status == HealthStatus::Healthy);
    (op.phase == OperationPhase::Succeeded && healthy && !dry_run)
        .then(|| operation_revision(op, status))
}

/// What the operation synced: its result's revision, else the one it asked for, else the app's.
fn operation_revision(op: &OperationState, status: &ApplicationStatus) -> String {
    op.sync_result
        .as_ref()
        .map(|r| r.revision.clone())
        .or_else(|| op.operation.as_ref().map(|o| o.revision.clone()))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| sync_revision(status))
}

fn sync_revision(status: &ApplicationStatus) -> String {
    status
        .sync
        .as_ref()
        .and_then(|s| s.revision.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::application::{HealthStatusBlock, SyncOperationResult};

    fn status(
        phase: Option<OperationPhase>,
        started: &str,
        rev: &str,
        health: HealthStatus,
    ) -> ApplicationStatus {
        ApplicationStatus {
            operation_state: phase.map(|phase| OperationState {
                phase,
                started_at: started.to_owned(),
                sync_result: Some(SyncOperationResult {
                    revision: rev.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            health: Some(HealthStatusBlock {
                status: health,
                message: None,
            }),
            reconciled_at: Some("t".to_owned()),
            ..Default::default()
        }
    }

    fn names(fired: &[Fired]) -> Vec<&'static str> {
        fired.iter().map(|f| f.trigger.name()).collect()
    }

    #[test]
    fn a_sync_that_finished_in_one_write_ran_succeeded_and_deployed() {
        let before = status(None, "", "", HealthStatus::Missing);
        let after = status(
            Some(OperationPhase::Succeeded),
            "t1",
            "abc",
            HealthStatus::Healthy,
        );
        let fired = fired(Some(&before), &after);
        assert_eq!(
            names(&fired),
            ["on-sync-running", "on-sync-succeeded", "on-deployed"]
        );
        assert!(fired.iter().all(|f| f.revision == "abc"));
        assert_eq!(fired[2].occurrence, "abc");
    }

    #[test]
    fn writing_the_same_status_again_fires_nothing() {
        let s = status(
            Some(OperationPhase::Succeeded),
            "t1",
            "abc",
            HealthStatus::Healthy,
        );
        assert!(fired(Some(&s), &s).is_empty());
    }

    #[test]
    fn deployed_waits_for_health_and_fires_once_per_revision() {
        let progressing = status(
            Some(OperationPhase::Succeeded),
            "t1",
            "abc",
            HealthStatus::Progressing,
        );
        let healthy = status(
            Some(OperationPhase::Succeeded),
            "t1",
            "abc",
            HealthStatus::Healthy,
        );
        assert_eq!(names(&fired(Some(&progressing), &healthy)), ["on-deployed"]);
        // A re-sync of the same revision succeeds again but deploys nothing new.
        let again = status(
            Some(OperationPhase::Succeeded),
            "t2",
            "abc",
            HealthStatus::Healthy,
        );
        assert_eq!(
            names(&fired(Some(&healthy), &again)),
            ["on-sync-running", "on-sync-succeeded"]
        );
    }

    #[test]
    fn failures_and_degradation_fire_on_the_transition_only() {
        let running = status(
            Some(OperationPhase::Running),
            "t1",
            "abc",
            HealthStatus::Healthy,
        );
        let failed = status(
            Some(OperationPhase::Failed),
            "t1",
            "abc",
            HealthStatus::Degraded,
        );
        assert_eq!(
            names(&fired(Some(&running), &failed)),
            ["on-sync-failed", "on-health-degraded"]
        );
        assert!(fired(Some(&failed), &failed).is_empty());
        let mut retried = failed.clone();
        if let Some(op) = retried.operation_state.as_mut() {
            op.retry_count = 1;
        }
        assert_eq!(names(&fired(Some(&failed), &retried)), ["on-sync-failed"]);
    }

    #[test]
    fn names_round_trip() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::parse(t.name()), Some(t));
            assert_eq!(serde_json::to_value(t).expect("json"), t.name());
        }
        assert_eq!(Trigger::parse("on-created"), None);
    }
}
