//! The generic webhook service: a JSON document (or a configured body template) sent to a URL,
//! signed with HMAC-SHA256 over the exact body when a secret is set, as GitHub signs its hooks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::templates::{self, Rendered};
use super::{Notification, SendError, http_failure, http_outcome};
use crate::secret::{ExposeSecret, SecretString};

/// The header the signature goes in unless `signature_header` says otherwise.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Capstan-Signature-256";

/// A `type = "webhook"` service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    /// POST unless set (PUT, PATCH …).
    #[serde(default)]
    pub method: Option<String>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A Go template for the body; the default is a JSON document (see [`default_body`]).
    #[serde(default)]
    pub body: Option<String>,
    /// The HMAC-SHA256 key; the signature is `sha256=<hex>` in `signature_header`.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// A file holding the key (a mounted Secret), re-read on every send so rotation needs no restart.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub signature_header: Option<String>,
}

/// The default body: what a receiver needs to act without parsing prose.
pub fn default_body(n: &Notification, rendered: &Rendered) -> Value {
    let status = &n.app_snapshot["status"];
    json!({
        "app": n.app.name(),
        "namespace": n.app.namespace(),
        "trigger": n.trigger.name(),
        "revision": n.revision,
        "syncStatus": status["sync"]["status"],
        "healthStatus": status["health"]["status"],
        "operationPhase": status["operationState"]["phase"],
        "recipient": n.recipient,
        "subject": rendered.subject,
        "message": rendered.message,
    })
}

/// Sends `n` to the webhook.
pub async fn send(
    http: &reqwest::Client,
    settings: &WebhookSettings,
    n: &Notification,
    rendered: &Rendered,
    url: &str,
) -> Result<(), SendError> {
    let body = match &settings.body {
        Some(template) => templates::render(template, &templates::context(n, url, "webhook"))
            .map_err(SendError::Permanent)?
            .into_bytes(),
        None => serde_json::to_vec(&default_body(n, rendered))
            .map_err(|e| SendError::Permanent(format!("webhook body: {e}")))?,
    };
    let method = settings.method.as_deref().unwrap_or("POST");
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| SendError::Permanent(format!("webhook method {method:?} is not a method")))?;
    let mut request = http
        .request(method, &settings.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in &settings.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let secret = crate::secret::resolve(
        settings.secret.as_ref(),
        settings.secret_file.as_deref(),
        None,
    )
    .map_err(|e| SendError::Transient(format!("webhook secret: {e}")))?;
    if let Some(secret) = secret {
        let header = settings
            .signature_header
            .as_deref()
            .unwrap_or(DEFAULT_SIGNATURE_HEADER);
        request = request.header(
            header,
            crate::webhook::Signature::sign(secret.expose_secret().as_bytes(), &body),
        );
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| http_failure("webhook", e))?;
    http_outcome("webhook", response.status())
}
