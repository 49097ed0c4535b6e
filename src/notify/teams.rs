//! The Microsoft Teams service: an incoming webhook receiving a MessageCard (Office 365
//! connectors), or an Adaptive Card (Teams Workflows webhooks, which replace the connectors).

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
    /// `messagecard` (default) or `adaptive`.
    #[serde(default)]
    pub card: CardFormat,
}

/// What the webhook expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardFormat {
    /// The legacy connector card.
    #[default]
    MessageCard,
    /// A message with one Adaptive Card attachment, as Workflows webhooks take it.
    Adaptive,
}

/// The card: title, text, and a button to the application.
pub fn card(format: CardFormat, n: &Notification, rendered: &Rendered, url: &str) -> Value {
    let link = format!(
        "{}/applications/{}/{}",
        url.trim_end_matches('/'),
        n.app.namespace(),
        n.app.name()
    );
    if format == CardFormat::Adaptive {
        return json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": rendered.subject, "weight": "Bolder",
                          "size": "Medium", "wrap": true },
                        { "type": "TextBlock", "text": rendered.message, "wrap": true },
                    ],
                    "actions": [{ "type": "Action.OpenUrl", "title": "Open application", "url": link }],
                },
            }],
        });
    }
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
        .json(&card(settings.card, n, rendered, url))
        .send()
        .await
        .map_err(|e| http_failure("teams", e))?;
    http_outcome("teams", response.status())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Trigger;
    use crate::notify::notification::NOTIFICATION_VERSION;

    #[test]
    fn both_card_formats_carry_the_subject_text_and_link() {
        let n = Notification {
            v: NOTIFICATION_VERSION,
            id: "m".into(),
            app: crate::domain::AppKey::parse("shop/web").expect("key"),
            trigger: Trigger::SyncFailed,
            revision: "abc".into(),
            occurrence: "abc".into(),
            service: "teams".into(),
            recipient: String::new(),
            app_snapshot: json!({}),
            fired_at: "t".into(),
        };
        let rendered = Rendered {
            subject: "Failed".into(),
            message: "line 1\nline 2".into(),
        };
        let legacy = card(
            CardFormat::MessageCard,
            &n,
            &rendered,
            "https://cd.example/",
        );
        assert_eq!(legacy["@type"], "MessageCard");
        assert_eq!(legacy["themeColor"], "E96D76");
        assert_eq!(
            legacy["text"], "line 1\n\nline 2",
            "Teams markdown needs blank lines"
        );
        let adaptive = card(CardFormat::Adaptive, &n, &rendered, "https://cd.example/");
        let content = &adaptive["attachments"][0]["content"];
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(content["body"][0]["text"], "Failed");
        assert_eq!(
            content["actions"][0]["url"],
            "https://cd.example/applications/shop/web"
        );
        let settings: TeamsSettings =
            serde_json::from_value(json!({"webhook_url": "x", "card": "adaptive"}))
                .expect("parses");
        assert_eq!(settings.card, CardFormat::Adaptive);
    }
}
