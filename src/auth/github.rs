//! GitHub login: the OAuth2 web application flow GitHub documents (not OIDC). The browser is sent
//! to `{github_url}/login/oauth/authorize` with a one-use `state`; the code that comes back is
//! traded for an access token, which reads the user, their organisations and their teams from the
//! REST API (`{api_url}`) and is then dropped. The identity is the GitHub login; its groups are the
//! organisation logins and `org:team-slug`, as Dex names them, so Argo CD policies carry over.
//! GitHub Enterprise Server: point `github_url` and `api_url` at it (and `ca_file` at its CA).

mod membership;
mod oauth_state;
mod rest;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::auth::{Identity, Source};
use crate::secret::{self, SecretString};

pub use membership::{Membership, NotAllowed};
pub use oauth_state::{STATE_TTL, StateRefused};
pub use rest::RestError;

/// The scopes Capstan asks for: the profile, the e-mail addresses and organisation and team
/// membership (without `read:org`, private memberships stay hidden).
pub const SCOPES: &str = "read:user user:email read:org";

/// `[auth.github]`: a GitHub (or GitHub Enterprise Server) OAuth App.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// The OAuth App's client id.
    pub client_id: String,
    /// The OAuth App's client secret, normally from `CAPSTAN__AUTH__GITHUB__CLIENT_SECRET`.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret (used when `client_secret` is unset).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The OAuth App's callback URL: `https://<capstan>/auth/github/callback`.
    pub redirect_url: String,
    /// Where people sign in: `https://github.com`, or a GitHub Enterprise Server.
    #[serde(default = "default_github_url")]
    pub github_url: String,
    /// The REST API: `https://api.github.com`, or `https://<ghes>/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Only members of these organisations (and, where listed, teams) may sign in; empty lets
    /// every GitHub user in.
    #[serde(default)]
    pub orgs: Vec<OrgSettings>,
    /// A PEM CA bundle trusted besides the system's, for a GitHub Enterprise Server with a
    /// private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Each request to GitHub must finish within this time.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// One organisation of the allowlist, as Dex's `orgs` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSettings {
    /// The organisation's login.
    pub name: String,
    /// Team slugs of the organisation whose members may sign in; empty admits every member.
    #[serde(default)]
    pub teams: Vec<String>,
}

fn default_github_url() -> String {
    "https://github.com".into()
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

fn default_timeout_secs() -> u64 {
    10
}

/// Why GitHub login could not be set up or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// `[auth.github]` is incomplete or wrong.
    #[error("auth.github: {0}")]
    Config(String),
    /// The client secret could not be read.
    #[error("auth.github client secret: {0}")]
    Secret(#[from] secret::SecretError),
    /// The `state` parameter does not belong to this browser.
    #[error(transparent)]
    State(#[from] StateRefused),
    /// GitHub refused the login or answered something unexpected.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// GitHub sent the browser back with neither a code nor an error.
    #[error("GitHub sent the browser back without a code")]
    NoCode,
    /// The user is outside the allowed organisations and teams.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// The GitHub login is also the name of a local account, whose policies it would inherit.
    #[error("the GitHub user {0:?} has the name of a local account and cannot sign in here")]
    LocalName(String),
}

/// What GitHub appends to the callback URL: `code` and `state`, or `error` when the user (or
/// GitHub) declined.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub state: String,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A configured GitHub login: the OAuth App, the endpoints and the states handed out.
pub struct GitHub {
    client_id: String,
    redirect_url: Url,
    authorize_url: Url,
    rest: rest::Rest,
    allowed: Vec<OrgSettings>,
    states: oauth_state::States,
}

impl GitHub {
    /// Checks the settings, reads the client secret and builds the HTTP client.
    pub fn new(settings: &GithubSettings) -> Result<GitHub, GithubError> {
        if settings.client_id.trim().is_empty() {
            return Err(GithubError::Config("client_id is empty".into()));
        }
        let client_secret = secret::resolve(
            settings.client_secret.as_ref(),
            settings.client_secret_file.as_deref(),
            None,
        )?
        .ok_or_else(|| {
            GithubError::Config(
                "no client secret: set client_secret (CAPSTAN__AUTH__GITHUB__CLIENT_SECRET) \
                 or client_secret_file"
                    .into(),
            )
        })?;
        let parse = |what: &str, url: &str| {
            Url::parse(url).map_err(|e| GithubError::Config(format!("{what} {url:?}: {e}")))
        };
        let redirect_url = parse("redirect_url", &settings.redirect_url)?;
        let github_url = with_trailing_slash(parse("github_url", &settings.github_url)?);
        let api_url = with_trailing_slash(parse("api_url", &settings.api_url)?);
        let endpoint = |path: &str| {
            github_url
                .join(path)
                .map_err(|e| GithubError::Config(format!("github_url: {e}")))
        };
        let authorize_url = endpoint("login/oauth/authorize")?;
        let token_url = endpoint("login/oauth/access_token")?;
        let ca = match &settings.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| GithubError::Config(format!("ca_file {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let rest = rest::Rest::new(rest::Endpoints {
            client_id: settings.client_id.clone(),
            client_secret,
            redirect_url: redirect_url.clone(),
            token_url,
            api_url,
            ca_pem: ca,
            timeout: Duration::from_secs(settings.timeout_secs.max(1)),
        })?;
        Ok(GitHub {
            client_id: settings.client_id.clone(),
            redirect_url,
            authorize_url,
            rest,
            allowed: settings.orgs.clone(),
            states: oauth_state::States::default(),
        })
    }

    /// Starts a login: a fresh `state` (for the browser's cookie) and the GitHub page to send
    /// the browser to.
    pub fn begin(&self) -> (String, Url) {
        let state = self.states.issue();
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.redirect_url.as_str())
            .append_pair("scope", SCOPES)
            .append_pair("state", &state)
            .append_pair("allow_signup", "false");
        (state, url)
    }

    /// Ends a login: checks that the callback's `state` is the one this browser's cookie holds
    /// (and unused) before believing anything else in it, trades the code for an access token,
    /// and reads who the user is. The token is dropped on return. `is_local_account` names the
    /// local accounts a GitHub user or group may not pass for.
    pub async fn finish(
        &self,
        cookie_state: Option<&str>,
        callback: &Callback,
        is_local_account: impl Fn(&str) -> bool,
    ) -> Result<Identity, GithubError> {
        self.states.redeem(cookie_state, &callback.state)?;
        if let Some(code) = &callback.error {
            return Err(RestError::Refused {
                code: code.clone(),
                description: callback
                    .error_description
                    .clone()
                    .unwrap_or_else(|| "no description".into()),
            }
            .into());
        }
        let code = callback.code.as_str();
        if code.is_empty() {
            return Err(GithubError::NoCode);
        }
        let token = self.rest.exchange(code).await?;
        let user = self.rest.user(&token).await?;
        let membership = Membership {
            orgs: self.rest.orgs(&token).await?,
            teams: self.rest.teams(&token).await?,
        };
        drop(token);
        let groups = membership.groups(&user, &self.allowed)?;
        if is_local_account(&user) {
            return Err(GithubError::LocalName(user));
        }
        let groups: Vec<String> = groups
            .into_iter()
            .filter(|group| {
                // A group named like a local account would match that account's `g, …` lines.
                let clash = is_local_account(group);
                if clash {
                    tracing::warn!(%user, %group, "GitHub group ignored: it has a local account's name");
                }
                !clash
            })
            .collect();
        Ok(Identity {
            user,
            groups,
            source: Source::Github,
        })
    }
}

/// `url` ending in `/`, so joining a relative path keeps its last segment (`…/api/v3/user`).
fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GithubSettings {
        GithubSettings {
            client_id: "Iv1.abc".into(),
            client_secret: Some(SecretString::from("shh")),
            client_secret_file: None,
            redirect_url: "https://capstan.example/auth/github/callback".into(),
            github_url: "https://ghe.example".into(),
            api_url: "https://ghe.example/api/v3".into(),
            orgs: Vec::new(),
            ca_file: None,
            timeout_secs: 5,
        }
    }

    #[test]
    fn the_authorize_url_carries_what_github_documents() {
        crate::install_crypto_provider();
        let github = GitHub::new(&settings()).expect("configured");
        let (state, url) = github.begin();
        assert_eq!(url.origin().ascii_serialization(), "https://ghe.example");
        assert_eq!(url.path(), "/login/oauth/authorize");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "Iv1.abc");
        assert_eq!(
            query["redirect_uri"],
            "https://capstan.example/auth/github/callback"
        );
        assert_eq!(query["scope"], "read:user user:email read:org");
        assert_eq!(query["state"], state);
        assert!(!url.as_str().contains("shh"), "the secret is in the URL");
        let (again, _) = github.begin();
        assert_ne!(state, again, "every login gets its own state");
    }

    #[test]
    fn a_missing_secret_or_a_bad_url_is_a_configuration_error() {
        crate::install_crypto_provider();
        let mut no_secret = settings();
        no_secret.client_secret = None;
        assert!(matches!(
            GitHub::new(&no_secret),
            Err(GithubError::Config(m)) if m.contains("client secret")
        ));
        let mut bad = settings();
        bad.api_url = "not a url".into();
        assert!(matches!(
            GitHub::new(&bad),
            Err(GithubError::Config(m)) if m.contains("api_url")
        ));
    }

    #[test]
    fn a_base_path_is_kept_when_endpoints_are_joined() {
        let base = with_trailing_slash(Url::parse("https://ghe.example/api/v3").expect("url"));
        assert_eq!(
            base.join("user/teams").expect("join").as_str(),
            "https://ghe.example/api/v3/user/teams"
        );
    }
}
