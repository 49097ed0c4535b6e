//! Pure status bookkeeping: conditions, history, resource lists, health roll-up, and the bounds
//! that keep a status writable however large the app (Kubernetes objects are capped at about
//! 1.5 MiB by etcd).

use crate::event::now_rfc3339;
use crate::git::CommitInfo;
use crate::health::{self, HealthStatus};
use crate::store::application::{
    ApplicationCondition, ApplicationStatus, HealthStatusBlock, ResourceStatus, ResultCode,
    RevisionHistory, SyncStatusCode,
};
use crate::store::application::{ApplicationSource, InitiatedBy, OperationState, RecentOperation};
use crate::sync::{Compared, SyncState};

/// Condition types Capstan sets (Argo CD's names).
pub const COMPARISON_ERROR: &str = "ComparisonError";
pub const SYNC_ERROR: &str = "SyncError";
pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
pub const EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";
pub const SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
/// A job failed on every attempt and was dead-lettered; cleared by the next reconcile that
/// writes its status.
pub const RECONCILE_FAILED: &str = "ReconcileFailed";
pub const REPEATED_RESOURCE_WARNING: &str = crate::render::REPEATED_RESOURCE_WARNING;

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

/// Per-resource sync and health, in apply order, and the app's overall sync and health (Argo CD's
/// roll-up, with the operator's custom checks).
pub fn summarise(
    status: &mut ApplicationStatus,
    compared: &[Compared],
    revision: &str,
    custom: &health::CustomHealth,
) {
    let mut resources: Vec<ResourceStatus> = compared
        .iter()
        .map(|c| ResourceStatus {
            group: c.key.group.clone(),
            version: c.key.version.clone(),
            kind: c.key.kind.clone(),
            namespace: c.key.namespace.clone(),
            name: c.key.name.clone(),
            status: match c.state {
                SyncState::Synced => SyncStatusCode::Synced,
                SyncState::OutOfSync => SyncStatusCode::OutOfSync,
            },
            health: resource_health(c, custom).map(|h| HealthStatusBlock {
                status: h.status,
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
    let all_synced = compared.iter().all(|c| c.in_sync() && !c.requires_pruning);
    status.sync = Some(crate::store::application::SyncStatus {
        status: if all_synced {
            SyncStatusCode::Synced
        } else {
            SyncStatusCode::OutOfSync
        },
        revision: Some(revision.to_owned()),
        revisions: Vec::new(),
    });
    let app = health::app_health(
        compared
            .iter()
            .filter(|c| !c.requires_pruning)
            .map(|c| health::AppResource {
                live: c.live.as_ref(),
                excluded: c.desired.as_ref().is_some_and(health::excluded_from_health),
            }),
        custom,
    );
    status.health = Some(HealthStatusBlock {
        status: app.status,
        message: (!app.message.is_empty()).then_some(app.message),
    });
    status.resources = resources;
}

/// Health of one compared resource: Missing when Git wants it and it does not exist.
fn resource_health(c: &Compared, custom: &health::CustomHealth) -> Option<health::Health> {
    if c.requires_pruning {
        return None;
    }
    match &c.live {
        None => Some(health::Health {
            status: HealthStatus::Missing,
            message: String::new(),
        }),
        Some(live) => health::assess_with(live, custom),
    }
}

/// Appends a successful deployment of `commit` (its message and author, when read), keeping at
/// most `limit` entries.
pub fn record_history(
    status: &mut ApplicationStatus,
    revision: &str,
    sources: &[ApplicationSource],
    started_at: &str,
    initiated_by: Option<InitiatedBy>,
    commit: Option<CommitInfo>,
    limit: usize,
) {
    let id = status.history.iter().map(|h| h.id).max().unwrap_or(-1) + 1;
    let (message, author) = commit.map(|c| (c.message, c.author)).unzip();
    status.history.push(RevisionHistory {
        id,
        revision: revision.to_owned(),
        deployed_at: now_rfc3339(),
        deploy_started_at: Some(started_at.to_owned()),
        initiated_by,
        sources: sources.to_vec(),
        message,
        author,
    });
    let excess = status.history.len().saturating_sub(limit.max(1));
    status.history.drain(..excess);
}

/// Finished operations kept in `status.recentOperations`.
pub const MAX_RECENT_OPERATIONS: usize = 10;

/// Appends the finished operation `op` (of `revision`) to the recent operations, keeping the
/// last [`MAX_RECENT_OPERATIONS`].
pub fn record_operation(status: &mut ApplicationStatus, op: &OperationState, revision: &str) {
    let mut message = op.message.clone();
    truncate_message(&mut message, MAX_MESSAGE_BYTES);
    status.recent_operations.push(RecentOperation {
        phase: op.phase,
        message,
        revision: revision.to_owned(),
        started_at: op.started_at.clone(),
        finished_at: op.finished_at.clone(),
        initiated_by: op.initiated_by.clone(),
        dry_run: op.operation.as_ref().is_some_and(|o| o.dry_run),
    });
    let excess = status
        .recent_operations
        .len()
        .saturating_sub(MAX_RECENT_OPERATIONS);
    status.recent_operations.drain(..excess);
}

/// Set when a resource list in the status had to leave entries out.
pub const STATUS_TRUNCATED: &str = "StatusTruncatedWarning";

/// Revisions kept in `status.history` when the app does not say (Argo CD's default).
pub const DEFAULT_HISTORY_LIMIT: usize = 10;
/// The most `spec.revisionHistoryLimit` may keep: 100 entries of ~250 bytes.
pub const MAX_HISTORY_LIMIT: usize = 100;
/// Most entries in each per-resource list (`status.resources`,
/// `operationState.syncResult.resources`).
pub const MAX_RESOURCE_ENTRIES: usize = 5_000;
/// Most serialised bytes of each per-resource list: two such lists stay at 1 MiB, leaving
/// room below etcd's 1.5 MiB for the spec, conditions and history.
pub const MAX_RESOURCE_LIST_BYTES: usize = 512 * 1024;
/// Longest app-level message (conditions, the operation's message, the app's health).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;
/// Longest per-resource message (health, sync result), kept short as there may be thousands.
pub const MAX_RESOURCE_MESSAGE_BYTES: usize = 512;

/// The number of history entries an app keeps: its `revisionHistoryLimit`, default 10, at
/// least 1 and at most `MAX_HISTORY_LIMIT`.
pub fn history_limit(revision_history_limit: Option<i64>) -> usize {
    revision_history_limit.map_or(DEFAULT_HISTORY_LIMIT, |limit| {
        limit.clamp(1, MAX_HISTORY_LIMIT as i64) as usize
    })
}

/// Bounds everything in `status` that grows with the app or with hostile input, so the status
/// can always be written: history to `history_limit` entries, each per-resource list to
/// `MAX_RESOURCE_ENTRIES` and `MAX_RESOURCE_LIST_BYTES` (never silently: a
/// `StatusTruncatedWarning` condition says how many were left out), and long messages cut at
/// a character boundary.
pub fn bound(status: &mut ApplicationStatus, history_limit: usize) {
    let excess = status.history.len().saturating_sub(history_limit.max(1));
    status.history.drain(..excess);
    let excess = status
        .recent_operations
        .len()
        .saturating_sub(MAX_RECENT_OPERATIONS);
    status.recent_operations.drain(..excess);

    for r in &mut status.resources {
        if let Some(message) = r.health.as_mut().and_then(|h| h.message.as_mut()) {
            truncate_message(message, MAX_RESOURCE_MESSAGE_BYTES);
        }
    }
    let total_resources = status.resources.len();
    // One entry of every kind is kept first: the next compare scans the kinds listed here for
    // objects to prune.
    let mut kinds = std::collections::HashSet::new();
    let first_of_kind: Vec<bool> = status
        .resources
        .iter()
        .map(|r| kinds.insert((r.group.clone(), r.version.clone(), r.kind.clone())))
        .collect();
    let dropped_resources = bound_list(&mut status.resources, &first_of_kind);

    let mut results_note = None;
    if let Some(op) = status.operation_state.as_mut() {
        truncate_message(&mut op.message, MAX_MESSAGE_BYTES);
        if let Some(result) = op.sync_result.as_mut() {
            for r in &mut result.resources {
                truncate_message(&mut r.message, MAX_RESOURCE_MESSAGE_BYTES);
            }
            let total = result.resources.len();
            // Failures are kept first: they are what a user looks for.
            let failed: Vec<bool> = result
                .resources
                .iter()
                .map(|r| r.status != ResultCode::Synced)
                .collect();
            let dropped = bound_list(&mut result.resources, &failed);
            if dropped > 0 {
                results_note = Some(format!(
                    "operationState.syncResult.resources lists {} of {total} results",
                    total - dropped
                ));
            }
        }
    }
    if let Some(message) = status.health.as_mut().and_then(|h| h.message.as_mut()) {
        truncate_message(message, MAX_MESSAGE_BYTES);
    }

    let mut notes = Vec::new();
    if dropped_resources > 0 {
        notes.push(format!(
            "status.resources lists {} of {total_resources} resources",
            total_resources - dropped_resources
        ));
    }
    notes.extend(results_note);
    if notes.is_empty() {
        clear_condition(status, STATUS_TRUNCATED);
    } else {
        let message = format!(
            "{} (each list is limited to {MAX_RESOURCE_ENTRIES} entries and {} KiB)",
            notes.join("; "),
            MAX_RESOURCE_LIST_BYTES / 1024
        );
        set_condition(status, STATUS_TRUNCATED, &message);
    }
    for c in &mut status.conditions {
        truncate_message(&mut c.message, MAX_MESSAGE_BYTES);
    }
}

/// Keeps at most `MAX_RESOURCE_ENTRIES` entries and `MAX_RESOURCE_LIST_BYTES` serialised bytes
/// of `items`, choosing those flagged in `first` before the others, each group in list order,
/// and keeping the list's order. Returns how many were left out.
fn bound_list<T: serde::Serialize>(items: &mut Vec<T>, first: &[bool]) -> usize {
    // A separator (",") per entry; an entry that cannot be serialised counts as too large.
    let sizes: Vec<usize> = items
        .iter()
        .map(|item| serde_json::to_vec(item).map_or(usize::MAX, |v| v.len().saturating_add(1)))
        .collect();
    let total = sizes.iter().fold(0usize, |sum, s| sum.saturating_add(*s));
    if items.len() <= MAX_RESOURCE_ENTRIES && total <= MAX_RESOURCE_LIST_BYTES {
        return 0;
    }
    let flagged = |i: &usize| first.get(*i).copied().unwrap_or(false);
    let order = (0..items.len())
        .filter(flagged)
        .chain((0..items.len()).filter(|i| !flagged(i)));
    let mut keep = vec![false; items.len()];
    let (mut count, mut bytes) = (0usize, 0usize);
    for i in order {
        let after = bytes.saturating_add(sizes[i]);
        if count == MAX_RESOURCE_ENTRIES || after > MAX_RESOURCE_LIST_BYTES {
            break;
        }
        keep[i] = true;
        count += 1;
        bytes = after;
    }
    let before = items.len();
    let mut index = 0;
    items.retain(|_| {
        index += 1;
        keep[index - 1]
    });
    before - items.len()
}

/// Cuts `message` to at most `max` bytes at a character boundary, saying that it was cut.
pub fn truncate_message(message: &mut String, max: usize) {
    const MARK: &str = " … (truncated)";
    if message.len() <= max {
        return;
    }
    let room = max.saturating_sub(MARK.len());
    let cut = (0..=room)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    message.truncate(cut);
    message.push_str(MARK);
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
            record_history(&mut s, &format!("rev{i}"), &[], "t", None, None, 3);
        }
        assert_eq!(
            s.history.iter().map(|h| h.id).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(s.history.last().map(|h| h.revision.as_str()), Some("rev4"));
    }

    #[test]
    fn failed_operations_are_kept_beside_the_history_and_only_the_last_ten() {
        use crate::store::application::OperationPhase;
        let mut s = ApplicationStatus::default();
        for i in 0..12 {
            let op = OperationState {
                phase: if i % 2 == 0 {
                    OperationPhase::Failed
                } else {
                    OperationPhase::Succeeded
                },
                message: format!("attempt {i}"),
                started_at: format!("t{i}"),
                finished_at: Some(format!("f{i}")),
                initiated_by: Some(InitiatedBy {
                    automated: true,
                    ..Default::default()
                }),
                ..Default::default()
            };
            record_operation(&mut s, &op, &format!("rev{i}"));
        }
        assert!(
            s.history.is_empty(),
            "failures never enter the Argo CD history"
        );
        assert_eq!(s.recent_operations.len(), MAX_RECENT_OPERATIONS);
        let first = &s.recent_operations[0];
        assert_eq!(
            (first.phase, first.message.as_str(), first.revision.as_str()),
            (OperationPhase::Failed, "attempt 2", "rev2")
        );
        assert_eq!(first.finished_at.as_deref(), Some("f2"));
        assert_eq!(s.recent_operations[9].message, "attempt 11");
    }

    #[test]
    fn a_history_entry_keeps_who_caused_it_and_the_commits_message_and_author() {
        let mut s = ApplicationStatus::default();
        let by = InitiatedBy {
            username: None,
            automated: true,
            cause: Some(crate::store::application::OperationCause {
                source: "webhook".into(),
                provider: Some("github".into()),
                delivery_id: Some("d-1".into()),
                pusher: Some("octocat".into()),
                ..Default::default()
            }),
        };
        let commit = CommitInfo {
            message: "Roll out 1.27".into(),
            author: "Alice <a@example.com>".into(),
        };
        record_history(&mut s, "abc", &[], "t", Some(by.clone()), Some(commit), 10);
        record_history(&mut s, "def", &[], "t", None, None, 10);
        let doc = serde_json::to_value(&s.history).expect("json");
        assert_eq!(doc[0]["message"], "Roll out 1.27");
        assert_eq!(doc[0]["author"], "Alice <a@example.com>");
        assert_eq!(doc[0]["initiatedBy"]["automated"], true);
        assert_eq!(doc[0]["initiatedBy"]["cause"]["provider"], "github");
        assert_eq!(doc[0]["initiatedBy"]["cause"]["deliveryId"], "d-1");
        assert_eq!(doc[0]["initiatedBy"]["cause"]["pusher"], "octocat");
        // Unknown fields are left out, not written as null (Argo CD readers see its shape).
        assert!(doc[1].get("message").is_none() && doc[1].get("initiatedBy").is_none());
    }

    fn resource(kind: &str, name: &str) -> ResourceStatus {
        ResourceStatus {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            status: SyncStatusCode::Synced,
            health: Some(HealthStatusBlock {
                status: HealthStatus::Healthy,
                message: Some("x".repeat(1_000)),
            }),
            requires_pruning: false,
        }
    }

    fn result(status: ResultCode, name: &str) -> crate::store::application::ResourceResult {
        crate::store::application::ResourceResult {
            version: "v1".into(),
            kind: "ConfigMap".into(),
            name: name.into(),
            status,
            message: "y".repeat(1_000),
            ..Default::default()
        }
    }

    fn large_status(resources: usize) -> ApplicationStatus {
        let long = |i: usize| format!("{i}-{}", "n".repeat(240));
        let mut s = ApplicationStatus {
            resources: (0..resources)
                .map(|i| resource("ConfigMap", &long(i)))
                .collect(),
            operation_state: Some(crate::store::application::OperationState {
                phase: crate::store::application::OperationPhase::Failed,
                message: "m".repeat(1_000_000),
                sync_result: Some(crate::store::application::SyncOperationResult {
                    revision: "r".into(),
                    sources: vec![],
                    resources: (0..resources)
                        .map(|i| result(ResultCode::Synced, &long(i)))
                        .collect(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Rendered last in apply order, and the only object of its kind.
        s.resources.push(resource("Secret", "only-secret"));
        if let Some(r) = s
            .operation_state
            .as_mut()
            .and_then(|o| o.sync_result.as_mut())
        {
            r.resources
                .push(result(ResultCode::SyncFailed, "the-failure"));
        }
        set_condition(&mut s, SYNC_ERROR, &"e".repeat(1_000_000));
        s
    }

    #[test]
    fn history_keeps_ten_by_default_and_at_most_the_apps_limit() {
        assert_eq!(history_limit(None), 10);
        assert_eq!(history_limit(Some(3)), 3);
        assert_eq!(history_limit(Some(0)), 1);
        assert_eq!(history_limit(Some(1_000_000)), MAX_HISTORY_LIMIT);
        let mut s = ApplicationStatus::default();
        for i in 0..15 {
            record_history(&mut s, &format!("rev{i}"), &[], "t", None, None, 1000);
        }
        bound(&mut s, history_limit(None));
        assert_eq!(
            s.history.iter().map(|h| h.id).collect::<Vec<_>>(),
            (5..15).collect::<Vec<_>>(),
            "a lowered limit applies on the next write, not only on the next sync"
        );
    }

    #[test]
    fn a_status_with_thousands_of_resources_stays_under_the_object_size_limit() {
        let mut s = large_status(20_000);
        assert!(serde_json::to_vec(&s).unwrap().len() > 10 * 1024 * 1024);
        bound(&mut s, 10);
        let size = serde_json::to_vec(&s).unwrap().len();
        assert!(size < 1_400_000, "status is {size} bytes");
        assert!(!s.resources.is_empty() && s.resources.len() <= MAX_RESOURCE_ENTRIES);
    }

    #[test]
    fn truncated_lists_say_how_many_were_left_out_and_keep_what_matters() {
        let mut s = large_status(6_000);
        bound(&mut s, 10);
        let warning = s
            .conditions
            .iter()
            .find(|c| c.type_ == STATUS_TRUNCATED)
            .expect("a warning condition");
        let kept = s.resources.len();
        assert!(
            warning
                .message
                .contains(&format!("status.resources lists {kept} of 6001 resources")),
            "{}",
            warning.message
        );
        assert!(warning.message.contains("syncResult.resources lists"));
        assert!(
            s.resources.iter().any(|r| r.kind == "Secret"),
            "every kind stays listed so its objects can still be pruned"
        );
        let results = &s
            .operation_state
            .as_ref()
            .unwrap()
            .sync_result
            .as_ref()
            .unwrap()
            .resources;
        assert!(
            results.iter().any(|r| r.name == "the-failure"),
            "failures are kept first"
        );
        // Order is kept: the Secret is still last.
        assert_eq!(s.resources.last().map(|r| r.kind.as_str()), Some("Secret"));

        // Once the app is small again the warning goes away.
        s.resources.truncate(3);
        s.operation_state = None;
        bound(&mut s, 10);
        assert!(s.conditions.iter().all(|c| c.type_ != STATUS_TRUNCATED));
    }

    #[test]
    fn small_statuses_are_left_alone() {
        let mut s = ApplicationStatus {
            resources: vec![resource("ConfigMap", "a")],
            ..Default::default()
        };
        if let Some(h) = s.resources[0].health.as_mut() {
            h.message = Some("fine".into());
        }
        let before = s.clone();
        bound(&mut s, 10);
        assert_eq!(s, before);
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let mut message = "é".repeat(10_000);
        truncate_message(&mut message, 101);
        assert!(message.len() <= 101, "{}", message.len());
        assert!(message.ends_with("(truncated)"));
        assert!(message.starts_with("éé"));
        let mut short = "fine".to_string();
        truncate_message(&mut short, 101);
        assert_eq!(short, "fine");

        let mut s = large_status(1);
        bound(&mut s, 10);
        let sync_error = s.conditions.iter().find(|c| c.type_ == SYNC_ERROR).unwrap();
        assert!(sync_error.message.len() <= MAX_MESSAGE_BYTES);
        let op = s.operation_state.as_ref().unwrap();
        assert!(op.message.len() <= MAX_MESSAGE_BYTES);
        assert!(
            s.resources
                .iter()
                .filter_map(|r| r.health.as_ref()?.message.as_ref())
                .all(|m| m.len() <= MAX_RESOURCE_MESSAGE_BYTES)
        );
    }
}
