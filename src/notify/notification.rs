//! `Notification`: one message to one recipient through one service, as it waits on the queue.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Trigger;
use crate::domain::AppKey;
use crate::queue::{QueueError, SharedQueue, Topic};
use crate::store::application::{Application, ApplicationStatus};

/// Schema version of [`Notification`] documents.
pub const NOTIFICATION_VERSION: u32 = 1;

/// One notification to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub v: u32,
    /// The message id on the queue (a redelivery keeps it).
    pub id: String,
    pub app: AppKey,
    pub trigger: Trigger,
    /// The revision it is about.
    pub revision: String,
    /// What makes this firing of the trigger unique (see `triggers::Fired`).
    pub occurrence: String,
    /// The service's name in `[notify.services]`.
    pub service: String,
    pub recipient: String,
    /// The Application as it was when the trigger fired: templates see it as `.app`.
    pub app_snapshot: Value,
    pub fired_at: String,
}

/// A queue message that is not a valid Notification.
#[derive(Debug, thiserror::Error)]
pub enum NotificationParseError {
    #[error("not a Notification document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported Notification version {0}")]
    Version(u32),
}

impl Notification {
    /// Parses a Notification from a queue message.
    pub fn parse(body: &[u8]) -> Result<Self, NotificationParseError> {
        let n: Notification = serde_json::from_slice(body)?;
        if n.v != NOTIFICATION_VERSION {
            return Err(NotificationParseError::Version(n.v));
        }
        Ok(n)
    }

    /// What is sent at most once: (app, trigger, occurrence, service, recipient). Newlines
    /// separate the parts, so no two different tuples join to the same key.
    pub fn dedup_key(&self) -> String {
        format!(
            "notify\n{}\n{}\n{}\n{}\n{}",
            self.app,
            self.trigger.name(),
            self.occurrence,
            self.service,
            self.recipient
        )
    }
}

/// Publishes a notification on its own queue, confirmed.
pub async fn publish(queue: &SharedQueue, n: &Notification) -> Result<(), QueueError> {
    let body = serde_json::to_vec(n)
        .map_err(|e| QueueError::Unavailable(format!("serialising notification: {e}")))?;
    queue
        .publish(Topic::Notifications, &n.app.to_string(), &n.id, body)
        .await
}

/// What templates see as `.app`: Argo CD's field names (`metadata`, `spec`, `status.sync`,
/// `status.health`, `status.operationState`, …) without the per-resource lists, which can run to
/// megabytes and have no place in a chat message.
pub fn snapshot(app: &Application, status: &ApplicationStatus) -> Value {
    let mut status = serde_json::to_value(status).unwrap_or(Value::Null);
    if let Some(s) = status.as_object_mut() {
        for bulky in ["resources", "history", "recentOperations", "renderInputs"] {
            s.remove(bulky);
        }
        if let Some(result) = s
            .get_mut("operationState")
            .and_then(|o| o.get_mut("syncResult"))
            .and_then(Value::as_object_mut)
        {
            result.remove("resources");
        }
    }
    json!({
        "metadata": {
            "name": app.metadata.name,
            "namespace": app.metadata.namespace,
            "labels": app.metadata.labels,
            "annotations": app.metadata.annotations,
        },
        "spec": serde_json::to_value(&app.spec).unwrap_or(Value::Null),
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_apart_what_differs_and_documents_round_trip() {
        let n = Notification {
            v: NOTIFICATION_VERSION,
            id: "m-1".into(),
            app: AppKey::parse("apps/web").expect("key"),
            trigger: Trigger::Deployed,
            revision: "abc".into(),
            occurrence: "abc".into(),
            service: "slack".into(),
            recipient: "dev".into(),
            app_snapshot: json!({"metadata": {"name": "web"}}),
            fired_at: "2026-01-01T00:00:00Z".into(),
        };
        let body = serde_json::to_vec(&n).expect("json");
        assert_eq!(Notification::parse(&body).expect("parse"), n);
        let mut other = n.clone();
        other.id = "m-2".into();
        assert_eq!(
            other.dedup_key(),
            n.dedup_key(),
            "a redelivery is the same notification"
        );
        other.recipient = "ops".into();
        assert_ne!(other.dedup_key(), n.dedup_key());
        let mut doc = serde_json::to_value(&n).expect("json");
        doc["v"] = 9.into();
        assert!(matches!(
            Notification::parse(&serde_json::to_vec(&doc).expect("json")),
            Err(NotificationParseError::Version(9))
        ));
    }
}
