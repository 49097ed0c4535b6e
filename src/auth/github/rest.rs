//! What Capstan asks GitHub: the code → access token exchange (`POST /login/oauth/access_token`)
//! and, with the token, `GET /user`, `/user/orgs` and `/user/teams`, following `Link: rel="next"`
//! pages. The token travels only in the `Authorization` header, to the configured API's origin.

use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::GithubError;
use super::membership::Team;
use crate::secret::{ExposeSecret, SecretString};

/// At most this many pages of one list (100 entries each) are read.
const MAX_PAGES: usize = 50;
/// The REST API version Capstan was written against.
const API_VERSION: &str = "2022-11-28";

/// Why GitHub did not give a user.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// No answer (connection, TLS, timeout).
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    /// The token endpoint refused the code (GitHub's error JSON).
    #[error("GitHub refused the login: {description} ({code})")]
    Refused { code: String, description: String },
    /// An unexpected HTTP status.
    #[error("GitHub answered {status} to {what}")]
    Status { what: &'static str, status: u16 },
    /// An answer that is not what GitHub documents.
    #[error("GitHub's answer to {what} could not be read: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A `Link` header pointing away from the API, where the token must not go.
    #[error("GitHub's next page of {what} is outside its API: {url}")]
    ForeignLink { what: &'static str, url: String },
    /// More pages than any real account has.
    #[error("GitHub sent more than {MAX_PAGES} pages of {0}")]
    TooManyPages(&'static str),
}

/// The OAuth App and the endpoints it talks to.
pub struct Endpoints {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_url: Url,
    pub token_url: Url,
    /// The REST API's base, ending in `/`.
    pub api_url: Url,
    /// Extra CA certificates (PEM) to trust.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// A client for GitHub's OAuth and REST endpoints.
pub struct Rest {
    endpoints: Endpoints,
    http: reqwest::Client,
}

/// The token endpoint's answer: a token, or GitHub's error JSON (sent with status 200).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<SecretString>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct ApiTeam {
    slug: String,
    organization: Org,
}

impl Rest {
    /// A client with the endpoints' timeout and CA; it follows no redirect, so the token
    /// cannot be sent anywhere but where it was configured.
    pub fn new(endpoints: Endpoints) -> Result<Rest, GithubError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("capstan/", env!("CARGO_PKG_VERSION")))
            .timeout(endpoints.timeout)
            .connect_timeout(endpoints.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &endpoints.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| GithubError::Config(format!("ca_file: {e}")))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| GithubError::Config(format!("HTTP client: {e}")))?;
        Ok(Rest { endpoints, http })
    }

    /// Trades the callback's code for an access token.
    pub async fn exchange(&self, code: &str) -> Result<SecretString, RestError> {
        let e = &self.endpoints;
        let form = [
            ("client_id", e.client_id.as_str()),
            ("client_secret", e.client_secret.expose_secret()),
            ("code", code),
            ("redirect_uri", e.redirect_url.as_str()),
        ];
        let response = self
            .http
            .post(e.token_url.clone())
            .header(header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        let what = "the access token request";
        if !response.status().is_success() {
            return Err(RestError::Status {
                what,
                status: response.status().as_u16(),
            });
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| malformed(what, e))?;
        match (answer.access_token, answer.error) {
            (_, Some(code)) => Err(RestError::Refused {
                description: answer
                    .error_description
                    .unwrap_or_else(|| "no description".into()),
                code,
            }),
            (Some(token), None) if !token.expose_secret().is_empty() => Ok(token),
            _ => Err(RestError::Malformed {
                what,
                reason: "neither access_token nor error".into(),
            }),
        }
    }

    /// The user's login (`GET /user`).
    pub async fn user(&self, token: &SecretString) -> Result<String, RestError> {
        let url = self.api("user")?;
        let response = self.get(token, url, "the user").await?;
        let user: User = response
            .json()
            .await
            .map_err(|e| malformed("the user", e))?;
        Ok(user.login)
    }

    /// The user's organisations (`GET /user/orgs`, every page).
    pub async fn orgs(&self, token: &SecretString) -> Result<Vec<String>, RestError> {
        let orgs: Vec<Org> = self.all(token, "user/orgs", "the organisations").await?;
        Ok(orgs.into_iter().map(|o| o.login).collect())
    }

    /// The user's teams (`GET /user/teams`, every page).
    pub async fn teams(&self, token: &SecretString) -> Result<Vec<Team>, RestError> {
        let teams: Vec<ApiTeam> = self.all(token, "user/teams", "the teams").await?;
        Ok(teams
            .into_iter()
            .map(|t| Team {
                org: t.organization.login,
                slug: t.slug,
            })
            .collect())
    }

    fn api(&self, path: &str) -> Result<Url, RestError> {
        self.endpoints
            .api_url
            .join(path)
            .map_err(|e| RestError::Malformed {
                what: "the API URL",
                reason: e.to_string(),
            })
    }

    /// Every page of a list, 100 entries a page.
    async fn all<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        path: &str,
        what: &'static str,
    ) -> Result<Vec<T>, RestError> {
        let mut url = self.api(path)?;
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.get(token, url, what).await?;
            let next = response
                .headers()
                .get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link)
                .map(str::to_owned);
            let page: Vec<T> = response.json().await.map_err(|e| malformed(what, e))?;
            items.extend(page);
            let Some(next) = next else {
                return Ok(items);
            };
            url = Url::parse(&next).map_err(|e| RestError::Malformed {
                what,
                reason: format!("next page link: {e}"),
            })?;
            if url.origin() != self.endpoints.api_url.origin() {
                return Err(RestError::ForeignLink { what, url: next });
            }
        }
        Err(RestError::TooManyPages(what))
    }

    async fn get(
        &self,
        token: &SecretString,
        url: Url,
        what: &'static str,
    ) -> Result<reqwest::Response, RestError> {
        let response = self
            .http
            .get(url)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(unreachable)?;
        match response.status() {
            StatusCode::OK => Ok(response),
            status => Err(RestError::Status {
                what,
                status: status.as_u16(),
            }),
        }
    }
}

fn unreachable(e: reqwest::Error) -> RestError {
    // The URL is one of ours, never a token or code (those travel in headers and bodies).
    RestError::Unreachable(e.to_string())
}

fn malformed(what: &'static str, e: reqwest::Error) -> RestError {
    RestError::Malformed {
        what,
        reason: e.to_string(),
    }
}

/// The `rel="next"` target of one `Link` header value (RFC 8288), as GitHub sends it:
/// `<https://…?page=2>; rel="next", <https://…?page=5>; rel="last"`.
fn next_link(value: &str) -> Option<&str> {
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("rel="))
            .any(|rel| {
                rel.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r == "next")
            })
            .then_some(target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_the_others() {
        let header = r#"<https://api.github.com/user/teams?per_page=100&page=2>; rel="next", <https://api.github.com/user/teams?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(header),
            Some("https://api.github.com/user/teams?per_page=100&page=2")
        );
        let last_page = r#"<https://api.github.com/user/teams?page=1>; rel="prev", <https://api.github.com/user/teams?page=1>; rel="first""#;
        assert_eq!(next_link(last_page), None);
        assert_eq!(
            next_link("<https://x/y?page=2>; rel=next"),
            Some("https://x/y?page=2")
        );
        assert_eq!(next_link("garbage"), None);
    }
}
