//! Single sign-on with an OpenID Connect provider: authorization code with PKCE (S256), the
//! provider found by discovery, ID tokens checked against its rotating keys, user and groups
//! from configurable claims (and the userinfo endpoint when asked), and the provider's logout.

pub mod flow;
pub mod id_token;
pub mod jwks;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::auth::{Identity, Source};
use crate::secret::{ExposeSecret, SecretString};
pub use flow::Flow;

/// `[auth.oidc]`: one OpenID Connect provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The login button's label ("Log in via NAME").
    #[serde(default = "default_name")]
    pub name: String,
    /// The issuer URL; `<issuer>/.well-known/openid-configuration` must describe it.
    pub issuer: String,
    /// Capstan's client id at the provider.
    pub client_id: String,
    /// The client secret, normally from `CAPSTAN__AUTH__OIDC__CLIENT_SECRET`; none for a public
    /// client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim holding the user's groups (a list or one string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The claim naming the user; `sub` when it is missing.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Also read the claims from the userinfo endpoint (providers that keep groups out of the
    /// ID token).
    #[serde(default)]
    pub userinfo: bool,
    /// Capstan's callback as the browser reaches it: `https://cd.example.com/auth/oidc/callback`.
    pub redirect_url: String,
    /// A PEM file of root certificates trusted for the provider (a private CA).
    #[serde(default)]
    pub root_ca_file: Option<PathBuf>,
    /// An unknown key id makes Capstan re-fetch the provider's keys at most once per this many seconds.
    #[serde(default = "default_jwks_refetch_secs")]
    pub jwks_refetch_secs: u64,
}

fn default_name() -> String {
    "OIDC".into()
}
fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "groups"]
        .map(String::from)
        .to_vec()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_username_claim() -> String {
    "email".into()
}
fn default_jwks_refetch_secs() -> u64 {
    10
}

/// Why an OIDC login failed. The messages name no secret, code or token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("OIDC configuration: {0}")]
    Config(String),
    #[error("identity provider: {0}")]
    Provider(String),
    #[error("the provider refused the login: {0}")]
    Refused(String),
    #[error(transparent)]
    IdToken(#[from] id_token::IdTokenError),
}

/// What discovery says about the provider (OpenID Connect Discovery 1.0).
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

struct Discovered {
    metadata: Metadata,
    keys: jwks::KeyCache,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
}

/// An OpenID Connect provider as Capstan's api uses it.
pub struct Oidc {
    settings: OidcSettings,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    /// Discovered on first use, so Capstan starts while the provider is down.
    discovered: OnceCell<Discovered>,
}

impl Oidc {
    /// A provider from its settings; reads the client secret and the CA file now.
    pub fn new(settings: &OidcSettings) -> Result<Oidc, OidcError> {
        let client_secret = crate::secret::resolve(
            settings.client_secret.as_ref(),
            settings.client_secret_file.as_deref(),
            None,
        )
        .map_err(|e| OidcError::Config(e.to_string()))?;
        reqwest::Url::parse(&settings.redirect_url)
            .map_err(|e| OidcError::Config(format!("redirect_url: {e}")))?;
        let mut http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            // A provider answers; it does not send us elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.root_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| OidcError::Config(format!("root_ca_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| OidcError::Config(format!("root_ca_file {}: {e}", path.display())))?;
            http = http.tls_certs_merge(certs);
        }
        Ok(Oidc {
            settings: settings.clone(),
            client_secret,
            http: http.build().map_err(|e| OidcError::Config(e.to_string()))?,
            discovered: OnceCell::new(),
        })
    }

    /// The login button's label.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    async fn discovered(&self) -> Result<&Discovered, OidcError> {
        self.discovered
            .get_or_try_init(|| async {
                let issuer = self.settings.issuer.trim_end_matches('/');
                let url = format!("{issuer}/.well-known/openid-configuration");
                let metadata: Metadata = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| OidcError::Provider(format!("discovery {url}: {e}")))?
                    .json()
                    .await
                    .map_err(|e| OidcError::Provider(format!("discovery {url}: {e}")))?;
                // Discovery §4.3: the document must be the configured issuer's own.
                if metadata.issuer.trim_end_matches('/') != issuer {
                    return Err(OidcError::Provider(format!(
                        "discovery at {url} names issuer {}",
                        metadata.issuer
                    )));
                }
                tracing::info!(issuer = %metadata.issuer, "OIDC provider discovered");
                let keys = jwks::KeyCache::new(
                    &metadata.jwks_uri,
                    self.http.clone(),
                    Duration::from_secs(self.settings.jwks_refetch_secs),
                );
                Ok(Discovered { metadata, keys })
            })
            .await
    }

    /// Starts a login: the provider's authorization URL and the flow to keep until the callback.
    pub async fn start(&self, return_to: &str) -> Result<(String, Flow), OidcError> {
        let d = self.discovered().await?;
        let flow = Flow::new(return_to);
        let mut url = reqwest::Url::parse(&d.metadata.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), flow))
    }

    /// Finishes a login: redeems `code` with the flow's verifier, checks the ID token and reads
    /// who the user is.
    pub async fn finish(&self, code: &str, flow: &Flow) -> Result<Identity, OidcError> {
        let d = self.discovered().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", flow.verifier.as_str()),
            ("client_id", self.settings.client_id.as_str()),
        ];
        let mut req = self.http.post(&d.metadata.token_endpoint).form(&form);
        if let Some(secret) = &self.client_secret {
            // client_secret_basic: RFC 6749 §2.3.1 form-encodes both parts first.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(
                enc(&self.settings.client_id),
                Some(enc(secret.expose_secret())),
            );
        }
        let resp = req
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let error = body.get("error").and_then(Value::as_str).unwrap_or("");
            return Err(OidcError::Refused(format!(
                "token endpoint answered {status} {error}"
            )));
        }
        let tokens: TokenResponse = resp
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::Refused("no ID token in the token response".into()))?;
        let mut claims = self.verify(d, &id_token, &flow.nonce).await?;
        if self.settings.userinfo
            && let (Some(endpoint), Some(access)) =
                (&d.metadata.userinfo_endpoint, &tokens.access_token)
        {
            let info = self.userinfo(endpoint, access).await?;
            // Core §5.3.2: userinfo must be about the ID token's subject.
            if info.get("sub") != claims.get("sub") {
                return Err(OidcError::Refused(
                    "userinfo is about another subject".into(),
                ));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
        Ok(self.identity(&claims))
    }

    /// The ID token's claims, re-fetching the provider's keys once when it names a new key.
    async fn verify(
        &self,
        d: &Discovered,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let expected = id_token::Expected {
            issuer: &d.metadata.issuer,
            client_id: &self.settings.client_id,
            nonce,
        };
        let keys = d.keys.keys().await?;
        match id_token::verify(token, &keys, &expected) {
            Err(id_token::IdTokenError::UnknownKey(kid)) => match d.keys.refetch().await? {
                Some(fresh) => Ok(id_token::verify(token, &fresh, &expected)?),
                None => Err(id_token::IdTokenError::UnknownKey(kid).into()),
            },
            other => Ok(other?),
        }
    }

    async fn userinfo(
        &self,
        endpoint: &str,
        access: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        self.http
            .get(endpoint)
            .bearer_auth(access)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| OidcError::Provider(format!("userinfo: {e}")))?
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("userinfo: {e}")))
    }

    /// The identity the claims describe.
    pub fn identity(&self, claims: &Map<String, Value>) -> Identity {
        let user = claims
            .get(&self.settings.username_claim)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .or_else(|| claims.get("sub").and_then(Value::as_str))
            .unwrap_or_default();
        let groups = match claims.get(&self.settings.groups_claim) {
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Identity {
            user: user.to_owned(),
            groups,
            source: Source::Oidc,
        }
    }

    /// Where to send the browser to end the provider's session too, when the provider has an
    /// `end_session_endpoint`; it comes back to `after` (Capstan's login page).
    pub async fn end_session_url(&self, after: &str) -> Option<String> {
        let d = self.discovered().await.ok()?;
        let mut url = reqwest::Url::parse(d.metadata.end_session_endpoint.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("post_logout_redirect_uri", after);
        Some(url.into())
    }

    /// The login page's URL at the external address `redirect_url` names.
    pub fn login_page_url(&self) -> String {
        reqwest::Url::parse(&self.settings.redirect_url)
            .and_then(|u| u.join("/login"))
            .map(String::from)
            .unwrap_or_else(|_| "/login".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oidc(extra: &str) -> Oidc {
        let toml = format!(
            "issuer = \"https://idp.example\"\nclient_id = \"capstan\"\nredirect_url = \"https://cd.example/auth/oidc/callback\"\n{extra}"
        );
        let settings: OidcSettings = toml_from(&toml);
        Oidc::new(&settings).expect("valid settings")
    }

    fn toml_from(text: &str) -> OidcSettings {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("settings")
    }

    #[test]
    fn user_and_groups_come_from_the_configured_claims_with_sub_as_fallback() {
        let default = oidc("");
        let claims =
            json!({"sub": "u1", "email": "a@x", "groups": ["dev", "ops"], "roles": "admins"});
        let id = default.identity(claims.as_object().expect("object"));
        assert_eq!(id.user, "a@x");
        assert_eq!(id.groups, vec!["dev", "ops"]);
        assert_eq!(id.source, Source::Oidc);
        let custom = oidc("username_claim = \"preferred_username\"\ngroups_claim = \"roles\"");
        let id = custom.identity(claims.as_object().expect("object"));
        assert_eq!(id.user, "u1", "no preferred_username: sub");
        assert_eq!(id.groups, vec!["admins"]);
        assert_eq!(default.login_page_url(), "https://cd.example/login");
        assert_eq!(
            default.settings.scopes,
            ["openid", "profile", "email", "groups"]
        );
    }
}
