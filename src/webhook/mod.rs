//! Webhooks from Git hosts: recognise the provider, verify the signature, parse into a [`PushEvent`].
//! Order matters: the body is capped by the caller, then verified over its exact bytes, then parsed.

pub mod github;
pub mod signature;

use std::collections::BTreeSet;

use actix_web::http::header::HeaderMap;

use crate::event::PushEvent;
use crate::secret::{ExposeSecret, SecretString};
pub use signature::{Signature, SignatureError};

/// What a valid webhook asks of us.
#[derive(Debug)]
pub enum Outcome {
    /// A push to enqueue.
    Event(PushEvent),
    /// Valid but uninteresting (ping, other events); answered 2xx, nothing enqueued.
    Ignored(String),
}

/// Why a webhook was refused; each maps to the status code a Git host expects.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("no known Git host sent this request (no provider event header)")]
    UnknownProvider,
    #[error("{0} webhooks are not supported yet")]
    UnsupportedProvider(&'static str),
    #[error("content type must be application/json")]
    UnsupportedContentType,
    #[error("bad payload: {0}")]
    BadPayload(String),
    #[error("unknown Git host {0}")]
    UnknownProviderName(String),
}

impl WebhookError {
    /// The HTTP status code for this refusal.
    pub fn status_code(&self) -> u16 {
        match self {
            WebhookError::Unauthorized(_) => 401,
            WebhookError::UnsupportedContentType => 415,
            WebhookError::UnknownProvider
            | WebhookError::UnsupportedProvider(_)
            | WebhookError::BadPayload(_)
            | WebhookError::UnknownProviderName(_) => 400,
        }
    }
}

/// A Git host Capstan recognises from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Provider {
    AzureDevOps,
    Gitea,
    Gogs,
    GitHub,
    GitLab,
    BitbucketCloud,
    BitbucketServer,
}

impl Provider {
    /// Every provider Capstan recognises.
    pub const ALL: [Provider; 7] = [
        Provider::AzureDevOps,
        Provider::Gitea,
        Provider::Gogs,
        Provider::GitHub,
        Provider::GitLab,
        Provider::BitbucketCloud,
        Provider::BitbucketServer,
    ];

    /// The provider configured under `name` (as in `webhook.allow_unsigned`).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Lower-case name as used in configuration and PushEvent.source.
    pub fn name(self) -> &'static str {
        match self {
            Provider::AzureDevOps => "azure-devops",
            Provider::Gitea => "gitea",
            Provider::Gogs => "gogs",
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::BitbucketCloud => "bitbucket-cloud",
            Provider::BitbucketServer => "bitbucket-server",
        }
    }

    /// Recognises the sender; Gitea and Bitbucket Cloud also send other hosts' headers, hence the order.
    pub fn detect(headers: &HeaderMap) -> Option<Provider> {
        let has = |h: &str| headers.contains_key(h);
        if has("x-vss-activityid") {
            Some(Provider::AzureDevOps)
        } else if has("x-forgejo-event") || has("x-gitea-event") {
            Some(Provider::Gitea)
        } else if has("x-gogs-event") {
            Some(Provider::Gogs)
        } else if has("x-github-event") {
            Some(Provider::GitHub)
        } else if has("x-gitlab-event") {
            Some(Provider::GitLab)
        } else if has("x-hook-uuid") {
            Some(Provider::BitbucketCloud)
        } else if has("x-event-key") {
            Some(Provider::BitbucketServer)
        } else {
            None
        }
    }
}

/// Per-provider secrets and the operator's explicit opt-outs.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    pub github: Option<SecretString>,
    /// Providers whose requests are accepted without a signature (explicit operator choice).
    pub allow_unsigned: BTreeSet<String>,
}

/// The providers named in `webhook.allow_unsigned`, refusing a name Capstan does not know: a
/// typo must not silently leave a provider's webhooks refused, nor pass unnoticed.
pub fn allowed_unsigned(names: &[String]) -> Result<BTreeSet<String>, WebhookError> {
    names
        .iter()
        .map(|name| match Provider::from_name(name) {
            Some(p) => Ok(p.name().to_owned()),
            None => {
                let known: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
                Err(WebhookError::UnknownProviderName(format!(
                    "{name:?} (known: {})",
                    known.join(", ")
                )))
            }
        })
        .collect()
}

/// Verifies and parses one delivery. `body` must already be capped by the caller.
pub fn receive(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<Outcome, WebhookError> {
    let provider = Provider::detect(headers).ok_or(WebhookError::UnknownProvider)?;
    match provider {
        Provider::GitHub => receive_github(headers, body, secrets),
        other => Err(WebhookError::UnsupportedProvider(other.name())),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn receive_github(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<Outcome, WebhookError> {
    let unsigned_ok = secrets.allow_unsigned.contains(Provider::GitHub.name());
    // A signature that is present is always checked, even when unsigned requests are allowed:
    // allowing unsigned requests must not turn a forged signature into an accepted one.
    match (&secrets.github, header(headers, "x-hub-signature-256")) {
        (Some(secret), Some(sig)) => {
            let sig =
                Signature::parse(sig).map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
            sig.verify(secret.expose_secret().as_bytes(), body)
                .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
        }
        (None, Some(_)) => {
            return Err(WebhookError::Unauthorized(
                "the request is signed but no GitHub webhook secret is configured to verify it"
                    .into(),
            ));
        }
        (_, None) if unsigned_ok => {}
        (Some(_), None) => {
            return Err(WebhookError::Unauthorized(
                SignatureError::Missing.to_string(),
            ));
        }
        (None, None) => {
            return Err(WebhookError::Unauthorized(
                "no GitHub webhook secret is configured and unsigned GitHub webhooks are not allowed".into(),
            ));
        }
    }
    // The MAC of a form-encoded body covers the form, not the JSON; only JSON is accepted.
    let content_type = header(headers, "content-type").unwrap_or("");
    if !content_type.trim_start().starts_with("application/json") {
        return Err(WebhookError::UnsupportedContentType);
    }
    let event = header(headers, "x-github-event").unwrap_or_default();
    github::parse(event, header(headers, "x-github-delivery"), body)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    const BODY: &[u8] = br#"{"ref":"refs/heads/main","after":"abc","repository":{"clone_url":"https://git.example.com/a.git"}}"#;

    fn push(signature: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let mut set = |k: &'static str, v: &str| {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).expect("header value"),
            )
        };
        set("x-github-event", "push");
        set("content-type", "application/json");
        if let Some(sig) = signature {
            set("x-hub-signature-256", sig);
        }
        h
    }

    fn secrets(secret: Option<&str>, allow_unsigned: &[&str]) -> WebhookSecrets {
        WebhookSecrets {
            github: secret.map(SecretString::from),
            allow_unsigned: allow_unsigned.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn accepted(r: Result<Outcome, WebhookError>) -> bool {
        matches!(r, Ok(Outcome::Event(_)))
    }

    #[test]
    fn a_listed_provider_is_accepted_unsigned_even_with_a_secret_configured() {
        // The generated secret always exists in a running server; the opt-out must still work.
        assert!(accepted(receive(
            &push(None),
            BODY,
            &secrets(Some("s"), &["github"])
        )));
        assert!(accepted(receive(
            &push(None),
            BODY,
            &secrets(None, &["github"])
        )));
    }

    #[test]
    fn unsigned_is_refused_unless_the_provider_is_listed() {
        for s in [
            secrets(Some("s"), &[]),
            secrets(None, &[]),
            secrets(Some("s"), &["gitlab"]),
        ] {
            let r = receive(&push(None), BODY, &s);
            assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{r:?}");
        }
    }

    #[test]
    fn allow_unsigned_names_must_be_known_providers() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = allowed_unsigned(&names(&["github", "gitlab"])).expect("known");
        assert!(ok.contains("github") && ok.contains("gitlab"));
        let err = allowed_unsigned(&names(&["githib"])).expect_err("typo");
        assert!(err.to_string().contains("githib"), "{err}");
    }

    #[test]
    fn a_wrong_signature_is_refused_even_when_unsigned_is_allowed() {
        let forged = Signature::sign(b"not-the-secret", BODY);
        for s in [secrets(Some("s"), &["github"]), secrets(None, &["github"])] {
            let r = receive(&push(Some(&forged)), BODY, &s);
            assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{r:?}");
        }
        let good = Signature::sign(b"s", BODY);
        assert!(accepted(receive(
            &push(Some(&good)),
            BODY,
            &secrets(Some("s"), &["github"])
        )));
    }
}
