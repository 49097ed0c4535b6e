//! GitHub App authentication: a JWT signed with the App's private key (RS256, ten minutes at
//! most, as GitHub requires) buys an installation token, which is cached until shortly before
//! it expires and then bought again. Organisations prefer an App to a person's token: its rights
//! are per repository and it is no one's account.

use std::path::Path;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use serde::Deserialize;

use super::ForgeError;
use crate::secret::SecretString;

/// An installation token is used until this long before GitHub's expiry (an hour after issue).
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Used when GitHub's answer has no readable expiry.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// One App installation's credentials.
pub struct GithubApp {
    app_id: String,
    installation_id: u64,
    key: EncodingKey,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GithubApp({}, installation {})",
            self.app_id, self.installation_id
        )
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

#[derive(Deserialize)]
struct Minted {
    token: SecretString,
    #[serde(default)]
    expires_at: Option<String>,
}

impl GithubApp {
    /// Reads the App's PEM private key (PKCS#1 or PKCS#8, as GitHub hands it out).
    pub fn new(app_id: &str, installation_id: u64, key_file: &Path) -> Result<GithubApp, String> {
        let pem = std::fs::read(key_file)
            .map_err(|e| format!("private_key_file {}: {e}", key_file.display()))?;
        let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
            format!(
                "private_key_file {} is not an RSA private key in PEM: {e}",
                key_file.display()
            )
        })?;
        Ok(GithubApp {
            app_id: app_id.to_owned(),
            installation_id,
            key,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid installation token for the API at `base` (`https://api.github.com`, or
    /// `https://HOST/api/v3` for GitHub Enterprise Server).
    pub async fn token(
        &self,
        http: &reqwest::Client,
        base: &Url,
    ) -> Result<SecretString, ForgeError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = jiff::Timestamp::now().as_second();
        // Backdated a minute against clock drift, as GitHub recommends.
        let claims = Claims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: &self.app_id,
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| ForgeError::Config(format!("signing the GitHub App JWT: {e}")))?;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| ForgeError::Invalid(format!("{base} cannot be a base URL")))?
            .pop_if_empty()
            .extend([
                "app",
                "installations",
                &self.installation_id.to_string(),
                "access_tokens",
            ]);
        let response = http
            .post(url)
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| {
                ForgeError::Unavailable(format!("GitHub App token: {}", e.without_url()))
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message: String = text.chars().take(300).collect();
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                ForgeError::Unavailable(format!("GitHub App token: {status} {message}"))
            } else {
                ForgeError::Refused {
                    status: status.as_u16(),
                    message: format!(
                        "GitHub App {} installation {}: {message}",
                        self.app_id, self.installation_id
                    ),
                }
            });
        }
        let minted: Minted = response
            .json()
            .await
            .map_err(|e| ForgeError::Malformed(format!("GitHub App token answer: {e}")))?;
        let lifetime = minted
            .expires_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| Duration::from_secs(t.as_second().saturating_sub(now).max(0) as u64))
            .unwrap_or(ASSUMED_LIFETIME);
        let until = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        *cached = Some((minted.token.clone(), until));
        Ok(minted.token)
    }
}
