//! Pure status bookkeeping: conditions, history, resource lists, health roll-up.

use crate::event::now_rfc3339;
use crate::health::{self, HealthStatus};
use crate::store::application::{
    ApplicationCondition, ApplicationStatus, HealthStatusBlock, ResourceStatus, RevisionHistory,
    SyncStatusCode,
};
use crate::sync::Compared;

/// Condition types Capstan sets (Argo CD's names).
pub const COMPARISON_ERROR: &str = "ComparisonError";
pub const SYNC_ERROR: &str = "SyncError";
pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
pub const EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";

/// Sets a condition, keeping its transition time when the message did not change.
pub fn set_condition(status: &mut ApplicationStatus, type_: &str, message: &str) {
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.message != message {
            c.message = message.to_owned();
            c.last_transition_time = Some(now_rfc3339());
        }
        return;
    }
    status.conditions.push(ApplicationCondition {
        type_: type_.to_owned(),
        message: message.to_owned(),
        last_transition_time: Some(now_rfc3339()),
    });
}

/// Removes a condition type.
pub fn clear_condition(status: &mut ApplicationStatus, type_: &str) {
    status.conditions.retain(|c| c.type_ != type_);
}

/// Per-resource sync and health, in apply order, and the app's overall sync and health.
pub fn summarise(status: &mut ApplicationStatus, compared: &[Compared], revision: &str) {
    let mut resources: Vec<ResourceStatus> = compared
        .iter()
        .map(|c| ResourceStatus {
            group: c.key.group.clone(),
            version: c.key.version.clone(),
            kind: c.key.kind.clone(),
            namespace: c.key.namespace.clone(),
            name: c.key.name.clone(),
            status: c.status,
            health: resource_health(c).map(|h| HealthStatusBlock {
                status: h.status.to_string(),
                message: (!h.message.is_empty()).then(|| h.message.clone()),
            }),
            requires_pruning: c.requires_pruning,
        })
        .collect();
    resources.sort_by_key(|r| {
        (
            crate::sync::order::kind_rank(&r.kind),
            r.kind.clone(),
            r.namespace.clone(),
            r.name.clone(),
        )
    });
    let all_synced = compared
        .iter()
        .all(|c| c.status == SyncStatusCode::Synced && !c.requires_pruning);
    status.sync = Some(crate::store::application::SyncStatus {
        status: if all_synced {
            SyncStatusCode::Synced
        } else {
            SyncStatusCode::OutOfSync
        },
        revision: Some(revision.to_owned()),
    });
    status.health = Some(app_health(compared));
    status.resources = resources;
}

/// Health of one compared resource: Missing when Git wants it and it does not exist.
fn resource_health(c: &Compared) -> Option<health::Health> {
    if c.requires_pruning {
        return None;
    }
    match &c.live {
        None => Some(health::Health {
            status: HealthStatus::Missing,
            message: String::new(),
        }),
        Some(live) => health::assess(live),
    }
}

/// Argo CD's roll-up: worst of the resources that have health; Missing only when none exists.
fn app_health(compared: &[Compared]) -> HealthStatusBlock {
    let managed: Vec<&Compared> = compared.iter().filter(|c| !c.requires_pruning).collect();
    let any_live = managed.iter().any(|c| c.live.is_some());
    let statuses: Vec<HealthStatus> = managed
        .iter()
        .filter(|c| c.live.is_some())
        .filter_map(|c| resource_health(c).map(|h| h.status))
        .collect();
    let status = if !managed.is_empty() && !any_live {
        HealthStatus::Missing
    } else {
        health::aggregate(statuses.iter())
    };
    let message = managed
        .iter()
        .filter_map(|c| resource_health(c).filter(|h| h.status == status && !h.message.is_empty()))
        .map(|h| h.message)
        .next();
    HealthStatusBlock {
        status: status.to_string(),
        message,
    }
}

/// Appends a successful deployment, keeping at most `limit` entries.
pub fn record_history(
    status: &mut ApplicationStatus,
    revision: &str,
    started_at: &str,
    limit: usize,
) {
    let id = status.history.iter().map(|h| h.id).max().unwrap_or(-1) + 1;
    status.history.push(RevisionHistory {
        id,
        revision: revision.to_owned(),
        deployed_at: now_rfc3339(),
        deploy_started_at: Some(started_at.to_owned()),
        initiated_by: None,
    });
    let excess = status.history.len().saturating_sub(limit.max(1));
    status.history.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_time_until_the_message_changes() {
        let mut s = ApplicationStatus::default();
        set_condition(&mut s, COMPARISON_ERROR, "boom");
        let t = s.conditions[0].last_transition_time.clone();
        set_condition(&mut s, COMPARISON_ERROR, "boom");
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].last_transition_time, t);
        clear_condition(&mut s, COMPARISON_ERROR);
        assert!(s.conditions.is_empty());
    }

    #[test]
    fn history_is_bounded_and_ids_increase() {
        let mut s = ApplicationStatus::default();
        for i in 0..5 {
            record_history(&mut s, &format!("rev{i}"), "t", 3);
        }
        assert_eq!(
            s.history.iter().map(|h| h.id).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(s.history.last().map(|h| h.revision.as_str()), Some("rev4"));
    }
}
