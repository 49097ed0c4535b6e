//! One call to a host's API: its URL built under the repository's API, the host's credential
//! header, pacing, retries on 429, 5xx and lost connections, and a log line per attempt. The
//! token goes only in a sensitive header and only to the entry's API; no redirect is followed.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::ForgeError;
use super::hosts::Host;
use super::settings::ForgeSettings;
use crate::event::{EventSource, ForgeRepo};
use crate::secret::{ExposeSecret, SecretString};

/// GitHub's REST API version Capstan was written against.
const GITHUB_API_VERSION: &str = "2022-11-28";
/// Answers longer than this are not read (no comment list page comes near it).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Characters of a host's error message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// A 2xx answer.
#[derive(Debug)]
pub struct Answer {
    pub headers: HeaderMap,
    /// The JSON body; `Null` when empty or not JSON.
    pub body: Value,
}

/// Calls for one repository with one host entry's credentials.
pub struct Call<'a> {
    pub http: &'a reqwest::Client,
    pub settings: &'a ForgeSettings,
    pub host: &'a Host,
    pub repo: &'a ForgeRepo,
    /// The repository's API base (normalised).
    pub base: Url,
}

impl Call<'_> {
    /// `base/seg/seg…?query`, each segment percent-encoded (a `/` in a name stays inside it).
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, ForgeError> {
        let mut url = self.base.clone();
        for s in segments {
            if s.is_empty() || *s == "." || *s == ".." {
                return Err(ForgeError::Invalid(format!(
                    "{s:?} cannot be part of an API path"
                )));
            }
        }
        url.path_segments_mut()
            .map_err(|()| ForgeError::Invalid(format!("{} cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// A next-page URL the host sent, refused unless it lies under the repository's API.
    pub fn follow(&self, next: &str) -> Result<Url, ForgeError> {
        follow_link(&self.base, next)
    }

    /// Sends one request, retrying what is worth retrying; `Ok` only for a 2xx answer.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, ForgeError> {
        let token = match &self.host.app {
            Some(app) => app.token(self.http, &self.base).await?,
            None => self.host.token()?,
        };
        let attempts = self.settings.max_attempts.max(1);
        let kind = self.repo.kind.as_str();
        let path = url.path().to_owned();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.host.bucket.acquire().await;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(self.headers(&token)?);
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => self.answer(response, &token).await,
                Err(e) => Err(Failure::Retry {
                    status: None,
                    wait: None,
                    message: e.without_url().to_string(),
                }),
            };
            let failure = match outcome {
                Ok((status, answer)) => {
                    tracing::debug!(host = kind, %method, path, status = status.as_u16(), attempt, "forge call");
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            match failure {
                Failure::Final(e) => {
                    tracing::warn!(host = kind, %method, path, attempt, error = %e, "forge call refused");
                    return Err(e);
                }
                Failure::Retry {
                    status,
                    wait,
                    message,
                } => {
                    let shown = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
                    tracing::warn!(host = kind, %method, path, status = shown, attempt, error = %message, "forge call failed");
                    if attempt >= attempts {
                        return Err(ForgeError::Unavailable(format!(
                            "{kind} {method} {path}: {shown} after {attempt} attempts: {message}"
                        )));
                    }
                    let wait = wait
                        .map(|w| w.min(self.settings.retry_max()))
                        .unwrap_or_else(|| jittered(self.settings.backoff(attempt)));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The host's credential header and the headers every call carries.
    fn headers(&self, token: &SecretString) -> Result<HeaderMap, ForgeError> {
        let t = token.expose_secret();
        let basic = |user: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{t}"))
            )
        };
        let (name, value) = match (&self.host.kind, self.host.username.as_deref()) {
            (EventSource::Gitlab, _) => (HeaderName::from_static("private-token"), t.to_owned()),
            (EventSource::Gitea, _) => (header::AUTHORIZATION, format!("token {t}")),
            (EventSource::AzureDevops, user) => (header::AUTHORIZATION, basic(user.unwrap_or(""))),
            (EventSource::BitbucketCloud | EventSource::BitbucketServer, Some(user)) => {
                (header::AUTHORIZATION, basic(user))
            }
            _ => (header::AUTHORIZATION, format!("Bearer {t}")),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ForgeError::Config(format!(
                "forge.hosts.{}: the token cannot be sent in an HTTP header",
                self.host.name
            ))
        })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(name, value);
        if self.host.kind == EventSource::Github {
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            );
            headers.insert(
                HeaderName::from_static("x-github-api-version"),
                HeaderValue::from_static(GITHUB_API_VERSION),
            );
        } else {
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        }
        Ok(headers)
    }

    /// Reads an answer: a 2xx is the result, the rest a failure, retried or final.
    async fn answer(
        &self,
        mut response: reqwest::Response,
        token: &SecretString,
    ) -> Result<(StatusCode, Answer), Failure> {
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                    bytes.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return Err(Failure::Final(ForgeError::Malformed(format!(
                        "answer larger than {MAX_ANSWER_BYTES} bytes"
                    ))));
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Retry {
                        status: Some(status),
                        wait: None,
                        message: e.without_url().to_string(),
                    });
                }
            }
        }
        if status.is_success() {
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Ok((status, Answer { headers, body }));
        }
        let message = host_message(&bytes, token);
        let wait = rate_limit_wait(&headers);
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && wait.is_some());
        if rate_limited || status.is_server_error() {
            return Err(Failure::Retry {
                status: Some(status),
                wait,
                message,
            });
        }
        Err(Failure::Final(ForgeError::Refused {
            status: status.as_u16(),
            message,
        }))
    }
}

/// Why an attempt did not succeed.
enum Failure {
    /// Worth another attempt, after `wait` when the host said how long.
    Retry {
        status: Option<StatusCode>,
        wait: Option<Duration>,
        message: String,
    },
    Final(ForgeError),
}

/// How long the host asks to wait: `Retry-After` seconds, or until GitHub's
/// `x-ratelimit-reset` when `x-ratelimit-remaining` is 0.
pub fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(secs) = get("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if get("x-ratelimit-remaining") == Some(0) {
        let reset = get("x-ratelimit-reset")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    None
}

/// A backoff with jitter (between half and all of it), so callers do not retry in lockstep.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::random_range(0.5..=1.0))
}

/// The host's own error message from its JSON (GitHub, GitLab, Gitea and Azure `message`,
/// Bitbucket Cloud `error.message`, Bitbucket Data Center `errors[].message`), else the text;
/// cut short, and never containing the token.
fn host_message(body: &[u8], token: &SecretString) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(json) => {
            let found = [
                &json["message"],
                &json["error"]["message"],
                &json["errors"][0]["message"],
                &json["error_description"],
                &json["error"],
            ]
            .into_iter()
            .find(|v| !v.is_null())
            .cloned();
            match found {
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => json.to_string(),
            }
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    let text = if text.is_empty() {
        "no message".to_owned()
    } else {
        super::status::cut(text, MAX_MESSAGE_CHARS)
    };
    let t = token.expose_secret();
    if t.is_empty() {
        text
    } else {
        text.replace(t, "[token]")
    }
}

/// `next` resolved against `base`, refused unless it lies under `base` (same origin, path
/// below): the token must not follow a link elsewhere.
pub fn follow_link(base: &Url, next: &str) -> Result<Url, ForgeError> {
    let url = base
        .join(next)
        .map_err(|e| ForgeError::Malformed(format!("next page link {next:?}: {e}")))?;
    let base_path = base.path().trim_end_matches('/');
    let under = url.path() == base_path
        || url
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.starts_with('/'));
    if url.origin() == base.origin() && under {
        Ok(url)
    } else {
        Err(ForgeError::Malformed(format!(
            "next page link points outside {base}: {}",
            without_query(&url)
        )))
    }
}

/// The URL without its query, for messages.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_message_is_found_cut_and_cleaned_of_the_token() {
        let token = SecretString::from("s3cret-token");
        let cases: [(&[u8], &str); 5] = [
            (br#"{"message":"Bad credentials","documentation_url":"x"}"#, "Bad credentials"),
            (br#"{"type":"error","error":{"message":"Repository not found"}}"#, "Repository not found"),
            (br#"{"errors":[{"context":null,"message":"Comment out of date","exceptionName":"x"}]}"#, "Comment out of date"),
            (br#"{"message":{"base":["bad"]}}"#, r#"{"base":["bad"]}"#),
            (b"token s3cret-token is invalid", "token [token] is invalid"),
        ];
        for (body, want) in cases {
            assert_eq!(host_message(body, &token), want);
        }
        let long = "x".repeat(5000);
        assert_eq!(
            host_message(long.as_bytes(), &token).chars().count(),
            MAX_MESSAGE_CHARS
        );
    }

    #[test]
    fn retry_after_and_githubs_reset_say_how_long_to_wait() {
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(7)));
        let mut h = HeaderMap::new();
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            + 30;
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from(reset));
        let wait = rate_limit_wait(&h).expect("a wait").as_secs();
        assert!((29..=30).contains(&wait), "{wait}");
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
        assert_eq!(rate_limit_wait(&h), None, "not exhausted: no wait");
    }

    #[test]
    fn next_page_links_must_stay_under_the_api() {
        let base = Url::parse("https://ghe.example.com/api/v3").expect("url");
        let ok = follow_link(
            &base,
            "https://ghe.example.com/api/v3/repositories/1/issues/2/comments?page=2",
        )
        .expect("under the API");
        assert_eq!(ok.query(), Some("page=2"));
        for foreign in [
            "https://evil.example.com/api/v3/repositories/1/issues/2/comments?page=2",
            "http://ghe.example.com/api/v3/x",
            "https://ghe.example.com:8443/api/v3/x",
            "https://ghe.example.com/api/v30/x",
            "https://ghe.example.com/other",
        ] {
            assert!(
                follow_link(&base, foreign).is_err(),
                "{foreign} was followed"
            );
        }
    }

    #[test]
    fn jitter_stays_within_half_and_all_of_the_backoff() {
        for _ in 0..100 {
            let w = jittered(Duration::from_millis(1000)).as_millis();
            assert!((500..=1000).contains(&w), "{w}");
        }
    }
}
