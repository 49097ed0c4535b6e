//! One attempt at sending one notification: render its template, hand it to its service.

use std::sync::Arc;

use super::settings::{NotifySettings, ServiceSettings};
use super::{Notification, SendError, email, slack, teams, templates, webhook};

/// Sends notifications with the configured services; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    settings: Arc<NotifySettings>,
    http: reqwest::Client,
    /// The Git hosts' APIs, for commit statuses.
    forges: Option<crate::forge::Forges>,
}

impl Sender {
    /// A sender whose every attempt ends after `settings.timeout_ms`.
    pub fn new(settings: Arc<NotifySettings>) -> Result<Sender, SendError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .build()
            .map_err(|e| SendError::Permanent(format!("HTTP client: {e}")))?;
        Ok(Sender {
            settings,
            http,
            forges: None,
        })
    }

    /// Also sets commit statuses through these Git host APIs.
    pub fn with_forges(mut self, forges: crate::forge::Forges) -> Sender {
        self.forges = Some(forges);
        self
    }

    /// The settings it sends with.
    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// One attempt.
    pub async fn send(&self, n: &Notification) -> Result<(), SendError> {
        if n.service == super::commit_status::SERVICE {
            let forges = self.forges.as_ref().ok_or_else(|| {
                SendError::Permanent("commit statuses need a Git host in [forge.hosts]".into())
            })?;
            return super::commit_status::send(forges, n, &self.settings.url).await;
        }
        let Some(service) = self.settings.services.get(&n.service) else {
            return Err(SendError::Permanent(format!(
                "no service {:?} in [notify.services]",
                n.service
            )));
        };
        let rendered = templates::render_for(&self.settings, n, service.kind())?;
        let url = self.settings.url.as_str();
        match service {
            ServiceSettings::Webhook(s) => webhook::send(&self.http, s, n, &rendered, url).await,
            ServiceSettings::Slack(s) => slack::send(&self.http, s, n, &rendered).await,
            ServiceSettings::Teams(s) => teams::send(&self.http, s, n, &rendered, url).await,
            ServiceSettings::Email(s) => {
                email::send(s, n, &rendered, self.settings.timeout()).await
            }
        }
    }
}
