//! The email service: SMTP with STARTTLS required (lettre over tokio and rustls). The recipient
//! is the address; the subject and text come from the trigger's template.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::templates::Rendered;
use super::{Notification, SendError};
use crate::secret::{ExposeSecret, SecretString};

/// A `type = "email"` service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server; its certificate must name this host.
    pub host: String,
    /// 587 (submission) unless set.
    #[serde(default = "submission_port")]
    pub port: u16,
    /// The sender, `Capstan <cd@example.com>` or a bare address.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// A file holding the password (a mounted Secret), re-read on every send.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A PEM file of extra CA certificates to trust for the server (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn submission_port() -> u16 {
    587
}

/// Sends `n` as one email to its recipient.
pub async fn send(
    settings: &EmailSettings,
    n: &Notification,
    rendered: &Rendered,
    timeout: Duration,
) -> Result<(), SendError> {
    let permanent =
        |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("email {what}: {e}"));
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| permanent("from address", &e))?;
    let to: Mailbox = n
        .recipient
        .parse()
        .map_err(|e| permanent("recipient address", &e))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .body(rendered.message.clone())
        .map_err(|e| permanent("message", &e))?;

    let mut tls = TlsParameters::builder(settings.host.clone());
    if let Some(path) = &settings.ca_file {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| SendError::Transient(format!("email ca_file {}: {e}", path.display())))?;
        let ca = Certificate::from_pem(&pem).map_err(|e| permanent("ca_file", &e))?;
        tls = tls.add_root_certificate(ca);
    }
    let tls = tls.build_rustls().map_err(|e| permanent("TLS", &e))?;
    // STARTTLS is required: a server that does not offer it gets no mail, and no password.
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .tls(Tls::Required(tls))
        .timeout(Some(timeout));
    let password = crate::secret::resolve(
        settings.password.as_ref(),
        settings.password_file.as_deref(),
        None,
    )
    .map_err(|e| SendError::Transient(format!("email password: {e}")))?;
    if let (Some(user), Some(password)) = (&settings.username, password) {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    match transport.build().send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(permanent("refused", &e)),
        Err(e) => Err(SendError::Transient(format!("email: {e}"))),
    }
}
