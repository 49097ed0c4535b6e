//! The `[notify]` configuration section: delivery limits, services and templates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{email, slack, teams, webhook};

/// Settings of the `[notify]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Capstan's external URL, for links in messages (`{{.context.argocdUrl}}`).
    pub url: String,
    /// Sending attempts of one notification before it is dead-lettered.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles with every attempt after.
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts.
    pub retry_max_ms: u64,
    /// One attempt (connect, send, answer) is abandoned after this long.
    pub timeout_ms: u64,
    /// Notifications being sent at once by one process.
    pub concurrency: usize,
    /// How long a sent notification is remembered, so a redelivered one is not sent again.
    pub dedup_window_secs: u64,
    /// Services by name, as subscriptions name them (`subscribe.<trigger>.<service>`).
    pub services: BTreeMap<String, ServiceSettings>,
    /// Templates by trigger name (`on-sync-succeeded`, …), replacing the built-in ones.
    pub templates: BTreeMap<String, TemplateSettings>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            url: "http://localhost:8080".to_owned(),
            max_attempts: 20,
            retry_initial_ms: 1000,
            retry_max_ms: 60_000,
            timeout_ms: 10_000,
            concurrency: 16,
            dedup_window_secs: 7 * 24 * 3600,
            services: BTreeMap::new(),
            templates: BTreeMap::new(),
        }
    }
}

impl NotifySettings {
    /// The wait after failed attempt `attempt` (1-based): exponential, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(
            self.retry_initial_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms.max(self.retry_initial_ms)),
        )
    }

    /// One attempt's time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// How long a sent notification is remembered.
    pub fn dedup_window(&self) -> Duration {
        Duration::from_secs(self.dedup_window_secs).min(crate::queue::MAX_CLAIM_WINDOW)
    }
}

/// One service, by its `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServiceSettings {
    /// A generic webhook, signed with HMAC-SHA256 when a secret is set.
    Webhook(webhook::WebhookSettings),
    /// Slack: an incoming webhook, or chat.postMessage with a bot token.
    Slack(slack::SlackSettings),
    /// Microsoft Teams: an incoming webhook (MessageCard).
    Teams(teams::TeamsSettings),
    /// Email over SMTP with STARTTLS.
    Email(email::EmailSettings),
}

impl ServiceSettings {
    /// The type's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceSettings::Webhook(_) => "webhook",
            ServiceSettings::Slack(_) => "slack",
            ServiceSettings::Teams(_) => "teams",
            ServiceSettings::Email(_) => "email",
        }
    }
}

/// A trigger's template; each part left out keeps the built-in one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateSettings {
    /// The text (Slack and Teams message, email body, `message` of the webhook's default body).
    pub message: Option<String>,
    /// The title (email subject, Teams title).
    pub subject: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_the_cap() {
        let s = NotifySettings::default();
        let waits: Vec<u64> = (1..=8).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(s.backoff(u32::MAX).as_secs(), 60);
    }
}
