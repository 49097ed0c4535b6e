//! Commit statuses after sync (Flux's notification-controller, Argo CD's GitHub service): an app
//! or project annotated `capstan.dev/commit-status: "true"` gets `capstan/<app>` on the revision
//! it syncs — pending while syncing, success once Synced and Healthy, failure when the sync fails
//! or the app turns Degraded — through the same durable, retried, de-duplicated path as every
//! notification, using the `[forge.hosts]` credentials.

use super::{Notification, SendError, Trigger};
use crate::forge::{CommitStatus, ForgeError, Forges, StatusState};

/// The annotation that turns statuses on (on the Application, or on its AppProject for all its
/// apps; an app's own `"false"` wins over its project's `"true"`).
pub const ANNOTATION: &str = "capstan.dev/commit-status";
/// The built-in service name its subscriptions use.
pub const SERVICE: &str = "commit-status";
/// The triggers a status follows.
pub const TRIGGERS: [Trigger; 4] = [
    Trigger::SyncRunning,
    Trigger::Deployed,
    Trigger::SyncFailed,
    Trigger::HealthDegraded,
];

/// The status a trigger sets.
pub fn status_for(n: &Notification, base_url: &str) -> CommitStatus {
    let (state, description) = match n.trigger {
        Trigger::SyncRunning => (StatusState::Pending, "syncing"),
        Trigger::Deployed => (StatusState::Success, "Synced and Healthy"),
        Trigger::SyncFailed => (StatusState::Failure, "the sync failed"),
        Trigger::HealthDegraded => (StatusState::Failure, "the app is Degraded"),
        _ => (StatusState::Success, "synced"),
    };
    CommitStatus {
        context: format!("capstan/{}", n.app.name()),
        state,
        description: description.into(),
        target_url: Some(format!(
            "{}/applications/{}/{}",
            base_url.trim_end_matches('/'),
            n.app.namespace(),
            n.app.name()
        )),
    }
}

/// Sets the status of one notification on the app's first source repository.
pub async fn send(forges: &Forges, n: &Notification, base_url: &str) -> Result<(), SendError> {
    let repo_url = n
        .app_snapshot
        .pointer("/spec/source/repoURL")
        .or_else(|| n.app_snapshot.pointer("/spec/sources/0/repoURL"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| SendError::Permanent("the app names no source repository".into()))?;
    let repo = forges.repo_for(repo_url).ok_or_else(|| {
        SendError::Permanent(format!(
            "{} is on no Git host Capstan knows: add its API to [forge.hosts]",
            crate::git::redact_url(repo_url)
        ))
    })?;
    forges
        .set_status(&repo, &n.revision, &status_for(n, base_url))
        .await
        .map_err(|e| match e {
            e if e.is_transient() => SendError::Transient(e.to_string()),
            ForgeError::NotConfigured(m) => SendError::Permanent(m),
            e => SendError::Permanent(e.to_string()),
        })
}
