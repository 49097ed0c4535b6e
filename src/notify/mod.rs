//! Notifications as Argo CD Notifications users know them: triggers fired by Application status
//! transitions, Go templates, subscriptions by annotation, and services (webhook, Slack,
//! Microsoft Teams, email). The worker's hook only enqueues; delivery runs beside the jobs on its
//! own queue, retried with backoff and deduplicated (docs/architecture.md, Notifications).

pub mod commit_status;
mod deliver;
pub mod email;
mod enqueue;
pub mod notification;
pub mod send;
pub mod settings;
pub mod slack;
pub mod subscriptions;
pub mod teams;
pub mod templates;
pub mod triggers;
pub mod webhook;

pub use deliver::run;
pub use enqueue::{Notifier, notifications};
pub use notification::Notification;
pub use send::Sender;
pub use settings::{NotifySettings, ServiceSettings, TemplateSettings};
pub use triggers::Trigger;

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the receiver is down, slow, or asked to come back later.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: a bad template, an unknown service, a refused request.
    #[error("{0}")]
    Permanent(String),
}

/// What an HTTP receiver's answer means for a delivery: 2xx is done; 408, 429 and 5xx are worth
/// another try; any other refusal will not change by retrying.
pub(crate) fn http_outcome(service: &str, status: reqwest::StatusCode) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let message = format!("{service} answered {status}");
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(SendError::Transient(message))
    } else {
        Err(SendError::Permanent(message))
    }
}

/// A request that never got an answer: always worth retrying. The URL is dropped from the
/// message because Slack and Teams webhook URLs are credentials.
pub(crate) fn http_failure(service: &str, e: reqwest::Error) -> SendError {
    SendError::Transient(format!("{service}: {}", e.without_url()))
}
