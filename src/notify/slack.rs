//! The Slack service: an incoming webhook, or `chat.postMessage` with a bot token and the
//! recipient as the channel.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::templates::Rendered;
use super::{Notification, SendError, http_failure, http_outcome};
use crate::secret::{ExposeSecret, SecretString};

/// Slack's Web API, unless `api_url` points elsewhere (a proxy, a test server).
pub const SLACK_API: &str = "https://slack.com/api";

/// A `type = "slack"` service: `token` (chat.postMessage) or `webhook_url` (incoming webhook).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// A bot token (`xoxb-…`): messages go to the subscription's recipient as the channel.
    #[serde(default)]
    pub token: Option<SecretString>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An incoming webhook URL (a credential: it is never logged); the channel is the webhook's.
    #[serde(default)]
    pub webhook_url: Option<SecretString>,
    #[serde(default)]
    pub webhook_url_file: Option<PathBuf>,
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub icon_emoji: Option<String>,
}

/// The message: the text, and the subject as an attachment title coloured by the trigger.
fn payload(settings: &SlackSettings, n: &Notification, rendered: &Rendered) -> Value {
    let mut body = json!({
        "text": rendered.message,
        "attachments": [{
            "title": rendered.subject,
            "color": n.trigger.colour(),
            "fallback": rendered.subject,
        }],
    });
    if !n.recipient.is_empty() {
        body["channel"] = n.recipient.clone().into();
    }
    if let Some(u) = &settings.username {
        body["username"] = u.clone().into();
    }
    if let Some(i) = &settings.icon_emoji {
        body["icon_emoji"] = i.clone().into();
    }
    body
}

/// Sends `n` to Slack.
pub async fn send(
    http: &reqwest::Client,
    settings: &SlackSettings,
    n: &Notification,
    rendered: &Rendered,
) -> Result<(), SendError> {
    let secret = |value, file| {
        crate::secret::resolve(value, file, None)
            .map_err(|e| SendError::Transient(format!("slack credential: {e}")))
    };
    let body = payload(settings, n, rendered);
    if let Some(token) = secret(settings.token.as_ref(), settings.token_file.as_deref())? {
        if n.recipient.is_empty() {
            return Err(SendError::Permanent(
                "slack with a token needs a channel as the recipient".to_owned(),
            ));
        }
        let api = settings.api_url.as_deref().unwrap_or(SLACK_API);
        let response = http
            .post(format!("{}/chat.postMessage", api.trim_end_matches('/')))
            .bearer_auth(token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| http_failure("slack", e))?;
        http_outcome("slack", response.status())?;
        // The Web API answers 200 with `ok: false` for refusals (channel_not_found, …).
        let answer: Value = response
            .json()
            .await
            .map_err(|e| SendError::Transient(format!("slack answer: {}", e.without_url())))?;
        if answer["ok"] == true {
            return Ok(());
        }
        let error = answer["error"].as_str().unwrap_or("unknown error");
        return Err(match error {
            "ratelimited" | "service_unavailable" | "request_timeout" | "fatal_error" => {
                SendError::Transient(format!("slack: {error}"))
            }
            _ => SendError::Permanent(format!("slack: {error}")),
        });
    }
    let Some(url) = secret(
        settings.webhook_url.as_ref(),
        settings.webhook_url_file.as_deref(),
    )?
    else {
        return Err(SendError::Permanent(
            "slack service needs token or webhook_url".to_owned(),
        ));
    };
    let response = http
        .post(url.expose_secret())
        .json(&body)
        .send()
        .await
        .map_err(|e| http_failure("slack", e))?;
    http_outcome("slack", response.status())
}
