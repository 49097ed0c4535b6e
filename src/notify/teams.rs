//! The Microsoft Teams service: an incoming webhook receiving a MessageCard.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::templates::Rendered;
use super::{Notification, SendError, http_failure, http_outcome};
use crate::secret::{ExposeSecret, SecretString};

/// A `type = "teams"` service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSettings {
    /// The incoming webhook URL (a credential: it is never logged).
    #[serde(default)]
    pub webhook_url: Option<SecretString>,
    #[serde(default)]
    pub webhook_url_file: Option<PathBuf>,
}

/// The MessageCard: title, text, and a button to the application.
pub fn card(n: &Notification, rendered: &Rendered, url: &str) -> Value {
    let link = format!(
        "{}/applications/{}/{}",
        url.trim_end_matches('/'),
        n.app.namespace(),
        n.app.name()
    );
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": n.trigger.colour().trim_start_matches('#'),
        "summary": rendered.subject,
        "title": rendered.subject,
        "text": rendered.message.replace('\n', "\n\n"),
        "potentialAction": [{
            "@type": "OpenUri",
            "name": "Open application",
            "targets": [{ "os": "default", "uri": link }],
        }],
    })
}

/// Sends `n` to Teams.
pub async fn send(
    http: &reqwest::Client,
    settings: &TeamsSettings,
    n: &Notification,
    rendered: &Rendered,
    url: &str,
) -> Result<(), SendError> {
    let Some(webhook) = crate::secret::resolve(
        settings.webhook_url.as_ref(),
        settings.webhook_url_file.as_deref(),
        None,
    )
    .map_err(|e| SendError::Transient(format!("teams webhook: {e}")))?
    else {
        return Err(SendError::Permanent(
            "teams service needs webhook_url".to_owned(),
        ));
    };
    let response = http
        .post(webhook.expose_secret())
        .json(&card(n, rendered, url))
        .send()
        .await
        .map_err(|e| http_failure("teams", e))?;
    http_outcome("teams", response.status())
}
