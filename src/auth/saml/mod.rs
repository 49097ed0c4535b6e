//! SAML 2.0 single sign-on, Capstan as the service provider: the browser is sent to the
//! identity provider with an AuthnRequest (HTTP-Redirect binding) and comes back with a signed
//! Response (HTTP-POST binding) that [`response`] checks before anyone is signed in.

pub mod idp;
pub mod metadata;
pub mod request;
pub mod response;
pub mod settings;

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

pub use idp::IdentityProvider;
pub use response::Refusal;
pub use settings::SamlSettings;

use super::{Identity, Source};

/// How long an AuthnRequest we issued may be answered: a person types a password in between.
const REQUEST_TTL: SignedDuration = SignedDuration::from_secs(600);
/// Anyone may start a login, so pending requests are capped; past this the oldest is forgotten.
const MAX_OUTSTANDING: usize = 10_000;
/// A longer page to return to is not one of ours; the login returns to `/` instead.
const MAX_RETURN_TO: usize = 2048;

/// Why the SAML settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Neither metadata nor an SSO URL and a certificate were configured.
    #[error("auth.saml needs idp_metadata_file, or idp_sso_url together with idp_cert_file")]
    NoIdentityProvider,
    /// A configured file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The IdP metadata or certificate is not usable.
    #[error("{0}")]
    Invalid(String),
}

/// An AuthnRequest we sent and have not seen answered yet.
struct Outstanding {
    expires: Timestamp,
    return_to: String,
}

/// The service provider: its settings, the identity provider it trusts, the requests it is
/// waiting for and the assertions it has already accepted. The last two live in this process's
/// memory, so every login of one browser must reach the same api replica.
pub struct ServiceProvider {
    settings: SamlSettings,
    idp: IdentityProvider,
    outstanding: Mutex<HashMap<String, Outstanding>>,
    // Assertion ID → when it stops mattering (its own expiry plus the skew).
    accepted: Mutex<HashMap<String, Timestamp>>,
}

impl ServiceProvider {
    /// Reads the identity provider's metadata or certificate named by `settings`.
    pub fn from_settings(settings: SamlSettings) -> Result<ServiceProvider, SetupError> {
        let idp = IdentityProvider::from_settings(&settings)?;
        Ok(ServiceProvider {
            settings,
            idp,
            outstanding: Mutex::new(HashMap::new()),
            accepted: Mutex::new(HashMap::new()),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &SamlSettings {
        &self.settings
    }

    /// The URL that sends the browser to the identity provider with a fresh AuthnRequest, which
    /// is remembered (with `return_to`, the local page to land on) until it is answered or expires.
    pub fn login_redirect(&self, return_to: &str) -> Result<String, request::RequestError> {
        let now = Timestamp::now();
        let return_to = if return_to.len() > MAX_RETURN_TO {
            "/"
        } else {
            return_to
        };
        let built = request::AuthnRequest::new(&self.settings, &self.idp.sso_url, now);
        let url = built.redirect_url(&self.idp.sso_url, return_to)?;
        let mut outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        outstanding.retain(|_, o| o.expires > now);
        if outstanding.len() >= MAX_OUTSTANDING {
            let oldest = outstanding
                .iter()
                .min_by_key(|(_, o)| o.expires)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                outstanding.remove(&id);
            }
        }
        outstanding.insert(
            built.id,
            Outstanding {
                expires: now + REQUEST_TTL,
                return_to: return_to.to_owned(),
            },
        );
        Ok(url)
    }

    /// Checks a base64 `SAMLResponse` from the ACS form; on success the identity it proves and
    /// the local page the login started from.
    pub fn accept(&self, saml_response: &str) -> Result<(Identity, String), Refusal> {
        self.accept_at(saml_response, Timestamp::now())
    }

    fn accept_at(
        &self,
        saml_response: &str,
        now: Timestamp,
    ) -> Result<(Identity, String), Refusal> {
        let checked = response::check(&self.settings, &self.idp, saml_response, now)?;
        self.remember_assertion(&checked.assertion_id, checked.valid_until, now)?;
        let return_to = self.answer(&checked.in_response_to, now)?;
        let identity = Identity {
            user: checked.user,
            groups: checked.groups,
            source: Source::Saml,
        };
        Ok((identity, return_to))
    }

    /// Records an assertion as used; a second use is a replay.
    fn remember_assertion(
        &self,
        id: &str,
        valid_until: Timestamp,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let mut accepted = self
            .accepted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        accepted.retain(|_, until| *until > now);
        if accepted.contains_key(id) {
            return Err(Refusal::Replayed);
        }
        let skew = SignedDuration::from_secs(self.settings.skew_secs());
        accepted.insert(id.to_owned(), valid_until + skew);
        Ok(())
    }

    /// Takes the outstanding request `id` answers: each request is answered once.
    fn answer(&self, id: &str, now: Timestamp) -> Result<String, Refusal> {
        let mut outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match outstanding.remove(id) {
            Some(o) if o.expires > now => Ok(o.return_to),
            _ => Err(Refusal::UnknownRequest),
        }
    }

    /// This service provider's metadata XML, for the identity provider's administrator.
    pub fn metadata_xml(&self) -> String {
        metadata::sp_metadata(&self.settings)
    }
}

/// `text` with the five XML special characters escaped, for attribute values and text we write.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const RESPONSE: &str = include_str!("../../../tests/fixtures/saml/simplesamlphp-response.xml");
    const METADATA: &str =
        include_str!("../../../tests/fixtures/saml/simplesamlphp-idp-metadata.xml");

    /// The service provider the fixture was issued to, waiting for `pending` requests.
    fn sp(pending: &[&str], issued: Timestamp) -> ServiceProvider {
        let settings: SamlSettings = serde_json::from_value(serde_json::json!({
            "sp_entity_id": "urn:capstan:test",
            "acs_url": "http://127.0.0.1:18998/auth/saml/acs",
            "username_attribute": "uid",
        }))
        .expect("settings");
        let outstanding = pending
            .iter()
            .map(|id| {
                let o = Outstanding {
                    expires: issued + REQUEST_TTL,
                    return_to: "/projects".to_owned(),
                };
                ((*id).to_owned(), o)
            })
            .collect();
        ServiceProvider {
            settings,
            idp: IdentityProvider::from_metadata(METADATA).expect("metadata"),
            outstanding: Mutex::new(outstanding),
            accepted: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn an_assertion_answers_its_request_once() {
        let issued: Timestamp = "2026-12-02T13:52:30Z".parse().expect("time");
        let sp = sp(&["_abc123"], issued);
        let encoded = STANDARD.encode(RESPONSE);
        let (identity, to) = sp.accept_at(&encoded, issued).expect("accepted");
        assert_eq!(identity.user, "alice");
        assert_eq!(identity.source, Source::Saml);
        assert_eq!(to, "/projects");
        assert!(matches!(
            sp.accept_at(&encoded, issued),
            Err(Refusal::Replayed)
        ));
    }

    #[test]
    fn a_response_to_a_request_we_did_not_send_or_no_longer_wait_for_is_refused() {
        let issued: Timestamp = "2026-12-02T13:52:30Z".parse().expect("time");
        let encoded = STANDARD.encode(RESPONSE);
        assert!(matches!(
            sp(&["_other"], issued).accept_at(&encoded, issued),
            Err(Refusal::UnknownRequest)
        ));
        // Requested long ago: the pending request expired before the (still valid) answer came.
        let long_ago = issued - SignedDuration::from_secs(3600);
        assert!(matches!(
            sp(&["_abc123"], long_ago).accept_at(&encoded, issued),
            Err(Refusal::UnknownRequest)
        ));
    }

    #[test]
    fn pending_requests_are_capped_and_long_return_paths_dropped() {
        let now = Timestamp::now();
        let ids: Vec<String> = (0..MAX_OUTSTANDING).map(|i| format!("_{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let sp = sp(&ids, now);
        sp.login_redirect("/").expect("redirect");
        assert_eq!(sp.outstanding.lock().expect("lock").len(), MAX_OUTSTANDING);
        let url = sp
            .login_redirect(&"/x".repeat(MAX_RETURN_TO))
            .expect("redirect");
        assert!(url.ends_with("RelayState=%2F"), "{url}");
    }
}
