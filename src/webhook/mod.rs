//! Webhooks from Git hosts: recognise the sender, authenticate it, parse its body into a
//! [`PushEvent`] or a [`PullRequestEvent`]. Order matters: the body is capped by the caller, then authenticated over its
//! exact bytes, then parsed.
//!
//! Each host is one file implementing [`Provider`]; adding a host is that file plus one line in
//! [`PROVIDERS`].

pub mod azure_devops;
pub mod bitbucket_cloud;
pub mod bitbucket_server;
pub mod generic;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod gogs;
mod secrets;
pub mod signature;

use actix_web::http::header::HeaderMap;

use crate::event::{
    EventSource, ForgeRepo, PULL_REQUEST_EVENT_VERSION, PUSH_EVENT_VERSION, PullRequestAction,
    PullRequestEvent, PushEvent, RefUpdate, is_null_sha,
};
use crate::secret::SecretString;
pub use secrets::{ProviderSecrets, WebhookSecrets};
pub use signature::{Signature, SignatureError};

/// Every provider, in the order they are recognised: Gitea, Forgejo and Gogs also send
/// GitHub-style headers and Bitbucket Cloud sends Bitbucket Data Center's `X-Event-Key`, so the
/// more specific senders are asked first.
pub static PROVIDERS: &[&dyn Provider] = &[
    &generic::Generic,
    &azure_devops::AzureDevOps,
    &gitea::Gitea,
    &gogs::Gogs,
    &github::GitHub,
    &gitlab::GitLab,
    &bitbucket_cloud::BitbucketCloud,
    &bitbucket_server::BitbucketServer,
];

/// One Git host's webhook scheme.
pub trait Provider: Sync {
    /// Lower-case name used in configuration (`[webhook.providers.<name>]`) and `PushEvent.source`.
    fn name(&self) -> &'static str;

    /// Whether this host sent the request (headers only; the body is not trusted yet).
    fn recognises(&self, headers: &HeaderMap) -> bool;

    /// Checks the request's credential against the configured secrets (any one may match, so
    /// secrets can be rotated). Never says which secret matched or what was expected.
    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential;

    /// The host's delivery id, stable across the host's retries and redeliveries.
    fn delivery(&self, request: &Request<'_>) -> Option<String>;

    /// Turns an authenticated body into what it asks of Capstan.
    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError>;

    /// Refuses a configured secret this host's scheme cannot use (checked at start, so a typo is
    /// an error then rather than every request refused later). The message never repeats it.
    fn check_secret(&self, _secret: &str) -> Result<(), String> {
        Ok(())
    }

    /// A push of this host's shape for `push`, signed with `secret` when one is given: what
    /// `capstan webhook --provider` sends, and what tests and benchmarks replay.
    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest;

    /// A pull-request event of this host's shape for `pr`, signed as [`Provider::sample`] signs;
    /// its API-derived fields point at `pr.api_url`, so tests can aim the host API at a fake.
    /// A sender without pull requests (the generic webhook) sends the push of the head branch.
    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        let git_ref = format!("refs/heads/{}", pr.head_ref);
        let delivery = uuid::Uuid::new_v4().to_string();
        self.sample(
            &SamplePush {
                repo: pr.repo_url,
                git_ref: &git_ref,
                before: None,
                after: Some(pr.head_sha),
                files: None,
                default_branch: pr.base_ref,
                delivery: &delivery,
            },
            secret,
        )
    }
}

/// An incoming request as providers see it.
pub struct Request<'a> {
    pub headers: &'a HeaderMap,
    /// The exact bytes received, already capped.
    pub body: &'a [u8],
    /// The time to judge timestamped signatures against.
    pub now: jiff::Timestamp,
}

impl<'a> Request<'a> {
    /// A request received now.
    pub fn new(headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Request {
            headers,
            body,
            now: jiff::Timestamp::now(),
        }
    }

    /// A header's value as text; absent or not text is None.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a request's credential amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    /// The request carries no credential of this host's kind.
    Absent,
    /// A configured secret verifies it.
    Valid,
    /// A credential is present and does not verify (reason safe to show the sender).
    Invalid(String),
}

/// What a valid webhook asks of us.
// One per request, moved straight to its handler: the pull request's size costs nothing, and
// boxing it would change the contract the API layer matches on.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// A push to enqueue.
    Event(PushEvent),
    /// A pull request opened, updated, reopened or closed: a preview to enqueue (or nothing, when
    /// closed).
    PullRequest(PullRequestEvent),
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
    #[error("content type must be application/json")]
    UnsupportedContentType,
    #[error("bad payload: {0}")]
    BadPayload(String),
    #[error("unknown Git host {0}")]
    UnknownProviderName(String),
    #[error("unusable secret: {0}")]
    BadSecret(String),
}

impl WebhookError {
    /// The HTTP status code for this refusal.
    pub fn status_code(&self) -> u16 {
        match self {
            WebhookError::Unauthorized(_) => 401,
            WebhookError::UnsupportedContentType => 415,
            WebhookError::UnknownProvider
            | WebhookError::BadPayload(_)
            | WebhookError::UnknownProviderName(_)
            | WebhookError::BadSecret(_) => 400,
        }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            WebhookError::Unauthorized(_) => "unauthorized",
            WebhookError::UnsupportedContentType => "unsupported_content_type",
            WebhookError::UnknownProvider | WebhookError::UnknownProviderName(_) => {
                "unknown_provider"
            }
            WebhookError::BadPayload(_) => "bad_payload",
            WebhookError::BadSecret(_) => "bad_secret",
        }
    }
}

/// The provider configured under `name`.
pub fn provider_named(name: &str) -> Result<&'static dyn Provider, WebhookError> {
    PROVIDERS
        .iter()
        .copied()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = PROVIDERS.iter().map(|p| p.name()).collect();
            WebhookError::UnknownProviderName(format!("{name:?} (known: {})", known.join(", ")))
        })
}

/// The provider that sent a request, by its headers.
pub fn detect(headers: &HeaderMap) -> Option<&'static dyn Provider> {
    PROVIDERS.iter().copied().find(|p| p.recognises(headers))
}

/// One authenticated, parsed delivery.
#[derive(Debug)]
pub struct Received {
    pub provider: &'static dyn Provider,
    pub delivery: Option<String>,
    pub outcome: Outcome,
}

impl std::fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Recognises, authenticates and parses one delivery. `request.body` must already be capped.
/// The provider is returned with the error too, so refusals can be counted per host.
pub fn receive(
    request: &Request<'_>,
    secrets: &WebhookSecrets,
) -> Result<Received, (Option<&'static dyn Provider>, WebhookError)> {
    let provider = detect(request.headers).ok_or((None, WebhookError::UnknownProvider))?;
    let fail = |e| (Some(provider), e);
    authorise(provider, request, secrets).map_err(fail)?;
    // Every host can send JSON; a form body's MAC covers the form, not the JSON inside it.
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(fail(WebhookError::UnsupportedContentType));
    }
    let outcome = provider.parse(request).map_err(fail)?;
    // An event already carries its delivery id; asking again would re-read the body (Azure).
    let delivery = match &outcome {
        Outcome::Event(event) => event.delivery.clone(),
        Outcome::PullRequest(pr) => pr.delivery.clone(),
        Outcome::Ignored(_) => provider.delivery(request).and_then(usable_delivery),
    };
    Ok(Received {
        provider,
        delivery,
        outcome,
    })
}

/// Applies the operator's policy to the provider's verdict on the credential. A credential that
/// is present is always checked, even when unsigned requests are allowed: allowing unsigned
/// requests must not turn a forged signature into an accepted one.
fn authorise(
    provider: &dyn Provider,
    request: &Request<'_>,
    secrets: &WebhookSecrets,
) -> Result<(), WebhookError> {
    let name = provider.name();
    let configured = secrets.for_provider(name);
    match provider.authenticate(request, configured) {
        Credential::Valid => Ok(()),
        Credential::Invalid(reason) => Err(WebhookError::Unauthorized(reason)),
        Credential::Absent if secrets.allows_unsigned(name) => Ok(()),
        Credential::Absent if configured.is_empty() => Err(WebhookError::Unauthorized(format!(
            "no {name} webhook secret is configured and unsigned {name} webhooks are not allowed"
        ))),
        Credential::Absent => Err(WebhookError::Unauthorized(format!(
            "the request carries no {name} signature or token"
        ))),
    }
}

/// The verdict on an HMAC-SHA256 signature header shared by most hosts: `parse` reads the
/// header's format, and any configured secret may verify it.
pub fn hmac_credential(
    request: &Request<'_>,
    header: &str,
    parse: fn(&str) -> Result<Signature, SignatureError>,
    secrets: &[SecretString],
) -> Credential {
    let Some(value) = request.header(header).or_else(|| {
        // A header that is present but not text is a credential that cannot verify.
        request.headers.get(header).map(|_| "")
    }) else {
        return Credential::Absent;
    };
    if secrets.is_empty() {
        return Credential::Invalid(format!(
            "the request is signed ({header}) but no secret is configured to verify it"
        ));
    }
    let signature = match parse(value) {
        Ok(s) => s,
        Err(e) => return Credential::Invalid(format!("{header}: {e}")),
    };
    if secrets.iter().any(|s| {
        signature
            .verify(
                secrecy::ExposeSecret::expose_secret(s).as_bytes(),
                request.body,
            )
            .is_ok()
    }) {
        Credential::Valid
    } else {
        Credential::Invalid(format!("{header}: {}", SignatureError::Mismatch))
    }
}

/// A push as `capstan webhook` describes it, to be dressed in a host's payload shape.
#[derive(Debug, Clone)]
pub struct SamplePush<'a> {
    /// Repository URL as an Application names it.
    pub repo: &'a str,
    /// Full ref name (`refs/heads/main`, `refs/tags/v1`).
    pub git_ref: &'a str,
    /// The commit before the push; None for a created ref.
    pub before: Option<&'a str>,
    /// The commit after the push; None for a deleted ref.
    pub after: Option<&'a str>,
    /// Changed files; None when unknown.
    pub files: Option<&'a [String]>,
    /// The repository's default branch (short name).
    pub default_branch: &'a str,
    /// The delivery id to send.
    pub delivery: &'a str,
}

/// A pull request as tests and `capstan webhook` describe it, to be dressed in a host's payload.
#[derive(Debug, Clone)]
pub struct SamplePullRequest<'a> {
    /// The base repository's URL as an Application names it.
    pub repo_url: &'a str,
    /// Where the host's API serves (see [`ForgeRepo`]): `https://api.github.com`,
    /// `https://gitlab.example.com/api/v4`, a local fake server…
    pub api_url: &'a str,
    /// The number people see.
    pub number: u64,
    /// What happened, in the host's nearest vocabulary.
    pub action: PullRequestAction,
    /// The branch merged into (short name).
    pub base_ref: &'a str,
    /// The base branch's commit.
    pub base_sha: &'a str,
    /// The head commit (Bitbucket Cloud's sample sends its first 12 digits, as the host does).
    pub head_sha: &'a str,
    /// The head branch (short name).
    pub head_ref: &'a str,
    /// The head repository's URL when the PR comes from a fork.
    pub fork_url: Option<&'a str>,
    /// The pull request's title.
    pub title: &'a str,
    /// The author's login.
    pub author: &'a str,
}

/// The user every sample push names as its pusher.
pub const SAMPLE_PUSHER: &str = "capstan";

/// A request ready to send: headers (content type included) and body.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SignedRequest {
    /// A JSON body with the given headers and `Content-Type: application/json`.
    pub fn json(body: &serde_json::Value, headers: Vec<(&str, String)>) -> Self {
        let mut all = vec![("content-type".to_owned(), "application/json".to_owned())];
        all.extend(headers.into_iter().map(|(k, v)| (k.to_owned(), v)));
        SignedRequest {
            headers: all,
            body: body.to_string().into_bytes(),
        }
    }

    /// Adds a header (e.g. a signature computed over the body).
    pub fn add_header(&mut self, name: &str, value: String) {
        self.headers.push((name.to_owned(), value));
    }

    /// The headers as an actix map (for tests and benchmarks that call [`receive`] directly).
    pub fn header_map(&self) -> HeaderMap {
        use actix_web::http::header::{HeaderName, HeaderValue};
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }
}

/// The all-zero object id Git hosts send for the missing side of a created or deleted ref.
pub const NULL_SHA: &str = "0000000000000000000000000000000000000000";

/// A ref update from a host's before/after ids: an all-zero or absent side means the ref was
/// created or deleted.
pub fn ref_update(name: String, before: Option<String>, after: Option<String>) -> RefUpdate {
    let created = is_null_sha(before.as_deref());
    let deleted = is_null_sha(after.as_deref());
    RefUpdate {
        name,
        created,
        deleted,
        forced: false,
        before: before.filter(|s| !is_null_sha(Some(s))),
        after: after.filter(|s| !is_null_sha(Some(s))),
    }
}

/// A new PushEvent received now from `source`, checked against the PushEvent contract so that
/// what a provider accepts is always something the router accepts. A file list too long or with
/// paths too long for the contract becomes unknown (every path affected), never a refusal.
pub fn push_event(
    source: EventSource,
    delivery: Option<String>,
    repo_urls: Vec<String>,
    refs: Vec<RefUpdate>,
    changed_files: Option<Vec<String>>,
    default_branch: Option<String>,
    pusher: Option<String>,
) -> Result<PushEvent, WebhookError> {
    use crate::event::{MAX_CHANGED_FILES, MAX_PATH_CHARS};
    let changed_files = changed_files.filter(|files| {
        files.len() <= MAX_CHANGED_FILES
            && files
                .iter()
                .all(|f| !f.is_empty() && f.chars().count() <= MAX_PATH_CHARS)
    });
    let event = PushEvent {
        v: PUSH_EVENT_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        source,
        delivery: delivery.and_then(usable_delivery),
        received_at: crate::event::now_rfc3339(),
        repo_urls,
        refs,
        changed_files,
        default_branch: default_branch.filter(|b| !b.is_empty()),
        pusher,
    };
    event
        .validate()
        .map_err(|e| WebhookError::BadPayload(format!("{} push: {e}", event.source)))?;
    Ok(event)
}

/// The pusher a host names: the first of `candidates` that is a non-blank string (JSON values
/// of any other type are skipped, so an odd payload never fails the push), trimmed, without
/// control characters and cut to the contract's length.
pub fn pusher<'a>(
    candidates: impl IntoIterator<Item = Option<&'a serde_json::Value>>,
) -> Option<String> {
    candidates
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .map(|name| {
            name.chars()
                .filter(|c| !c.is_control())
                .take(crate::event::MAX_PUSHER_CHARS)
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .find(|name| !name.is_empty())
}

/// A delivery id as the event contract allows it; an id that is blank, too long or not plain
/// text is dropped (the delivery is then handled without redelivery de-duplication).
pub fn usable_delivery(id: String) -> Option<String> {
    let id = id.trim();
    let fits = !id.is_empty()
        && id.chars().count() <= crate::event::MAX_DELIVERY_CHARS
        && !id.chars().any(char::is_control);
    fits.then(|| id.to_owned())
}

/// The non-empty URLs among `urls`, without repeats; Ignored when none is left (a push names
/// the repository it changed, or it cannot be matched to anything).
// The error is always `Outcome::Ignored`, a short string: the large variant is never built here.
#[allow(clippy::result_large_err)]
pub fn repo_urls(urls: impl IntoIterator<Item = Option<String>>) -> Result<Vec<String>, Outcome> {
    let mut out: Vec<String> = Vec::new();
    for url in urls.into_iter().flatten() {
        let url = url.trim();
        if !url.is_empty() && !out.iter().any(|u| u == url) {
            out.push(url.to_owned());
        }
    }
    if out.is_empty() {
        Err(Outcome::Ignored(
            "the push names no repository URL, so no Application can match it".into(),
        ))
    } else {
        Ok(out)
    }
}

/// The sorted union of per-commit file lists (`added`, `modified`, `removed`).
pub fn union_files<'a>(lists: impl IntoIterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut files: Vec<String> = lists.into_iter().flatten().cloned().collect();
    files.sort();
    files.dedup();
    files
}

/// Parses a JSON body into `T`, naming the host in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    host: &str,
    body: &[u8],
) -> Result<T, WebhookError> {
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::BadPayload(format!("{host} payload: {e}")))
}

/// Longest pull request title kept, in characters; a longer one is cut, never refused.
pub const MAX_TITLE_CHARS: usize = 1024;

/// A pull request as a provider read it from its host's payload, before the contract checks in
/// [`pull_request_event`]. Required fields are already present (see [`required`]).
#[derive(Debug, Clone)]
pub struct PullRequestDraft {
    /// What happened.
    pub action: PullRequestAction,
    /// The number people see (0 is refused).
    pub number: u64,
    /// The title; cut to [`MAX_TITLE_CHARS`].
    pub title: Option<String>,
    /// Who opened it (or, on GitLab, who acted).
    pub author: Option<String>,
    /// The pull request's web page; dropped unless http(s).
    pub html_url: Option<String>,
    /// Every URL the host gave for the base repository (blanks and repeats are dropped).
    pub repo_urls: Vec<Option<String>>,
    /// The base branch, with or without `refs/heads/`.
    pub base_ref: String,
    /// The base branch's commit, when the host says.
    pub base_sha: Option<String>,
    /// The head commit.
    pub head_sha: String,
    /// The head branch, with or without `refs/heads/`.
    pub head_ref: Option<String>,
    /// The fork's URLs; empty when the head branch lives in the base repository.
    pub head_repo_urls: Vec<Option<String>>,
    /// Where the host's API serves the base repository.
    pub api: ForgeRepo,
}

/// A new PullRequestEvent received now from `source`, checked so that what a provider accepts
/// is something a preview can act on: a positive number, Git ref names, commit ids (full SHAs;
/// 12 or more hex digits from Bitbucket Cloud, which sends no more), at least one repository URL
/// Capstan can parse and an HTTP(S) API. Free text (title, author, link) is cut or dropped, never
/// a refusal.
pub fn pull_request_event(
    source: EventSource,
    delivery: Option<String>,
    draft: PullRequestDraft,
) -> Result<PullRequestEvent, WebhookError> {
    let host = source.as_str().to_owned();
    let bad = |field: &str, problem: &str| {
        WebhookError::BadPayload(format!("{host} pull request: {field} {problem}"))
    };
    if draft.number == 0 {
        return Err(bad("number", "is 0; pull requests are numbered from 1"));
    }
    let short_shas = source == EventSource::BitbucketCloud;
    let commit = |field: &str, sha: String| -> Result<String, WebhookError> {
        let sha = sha.trim().to_owned();
        let hex = sha.bytes().all(|b| b.is_ascii_hexdigit());
        let long_enough = if short_shas {
            (12..=64).contains(&sha.len())
        } else {
            matches!(sha.len(), 40 | 64)
        };
        if hex && long_enough {
            Ok(sha)
        } else if short_shas {
            Err(bad(field, "is not a commit id (12 to 64 hex digits)"))
        } else {
            Err(bad(field, "is not a full commit SHA (40 or 64 hex digits)"))
        }
    };
    let head_sha = commit("head_sha", draft.head_sha)?;
    let base_sha = draft
        .base_sha
        .filter(|s| !is_null_sha(Some(s.trim())))
        .map(|s| commit("base_sha", s))
        .transpose()?;
    let base_ref = branch_name(&draft.base_ref).ok_or_else(|| bad("base_ref", BRANCH_PROBLEM))?;
    let head_ref = match draft.head_ref.filter(|r| !r.trim().is_empty()) {
        Some(r) => Some(branch_name(&r).ok_or_else(|| bad("head_ref", BRANCH_PROBLEM))?),
        None => None,
    };
    let repo_urls = pull_request_urls(draft.repo_urls).map_err(|p| bad("repo_urls", &p))?;
    if repo_urls.is_empty() {
        return Err(bad(
            "repo_urls",
            "is empty: the payload names no base repository URL",
        ));
    }
    let head_repo_urls =
        pull_request_urls(draft.head_repo_urls).map_err(|p| bad("head_repo_urls", &p))?;
    let api = draft.api;
    let api_ok = api.api_url.chars().count() <= crate::event::MAX_PATH_CHARS
        && crate::domain::repo_url::RepoUrl::parse_prefix(&api.api_url).is_ok_and(|u| {
            matches!(
                u.scheme(),
                crate::domain::repo_url::Scheme::Http | crate::domain::repo_url::Scheme::Https
            )
        });
    if !api_ok {
        return Err(bad("api.api_url", "is not an http(s) URL"));
    }
    // GitLab names a project by its id alone; every other host needs an owner too.
    let owner_needed = source != EventSource::Gitlab;
    for (field, value, needed) in [
        ("api.owner", &api.owner, owner_needed),
        ("api.name", &api.name, true),
    ] {
        let fits = value.chars().count() <= crate::event::MAX_ID_CHARS
            && !value
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
            && (!needed || !value.trim().is_empty());
        if !fits {
            return Err(bad(
                field,
                "must be 1-255 characters without slashes or control characters",
            ));
        }
    }
    let event = PullRequestEvent {
        v: PULL_REQUEST_EVENT_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        source,
        delivery: delivery.and_then(usable_delivery),
        received_at: crate::event::now_rfc3339(),
        action: draft.action,
        number: draft.number,
        title: draft
            .title
            .map(|t| clean_text(&t, MAX_TITLE_CHARS))
            .unwrap_or_default(),
        author: draft
            .author
            .map(|a| clean_text(&a, crate::event::MAX_PUSHER_CHARS)),
        html_url: draft.html_url.and_then(|u| {
            let u = u.trim();
            let fits = !u.is_empty()
                && u.chars().count() <= crate::event::MAX_PATH_CHARS
                && !u.chars().any(char::is_control)
                && (u.starts_with("https://") || u.starts_with("http://"));
            fits.then(|| u.to_owned())
        }),
        repo_urls,
        base_ref,
        base_sha,
        head_sha,
        head_ref,
        head_repo_urls,
        changed_files: None,
        api,
    };
    Ok(event)
}

const BRANCH_PROBLEM: &str = "is not a Git branch name (blank, too long, or a space, control character, ~ ^ : ? * [ or backslash)";

/// A branch's short name (`refs/heads/` dropped) when its characters are ones Git allows.
fn branch_name(name: &str) -> Option<String> {
    let name = name.trim();
    let name = name.strip_prefix("refs/heads/").unwrap_or(name);
    let fits = !name.is_empty()
        && name.chars().count() <= crate::event::MAX_REF_CHARS
        && !name
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c));
    fits.then(|| name.to_owned())
}

/// The non-blank URLs without repeats, bounded as PushEvent URLs are; when any is given, one at
/// least must be a URL Capstan can parse. Empty input gives an empty list.
fn pull_request_urls(urls: Vec<Option<String>>) -> Result<Vec<String>, String> {
    let urls = repo_urls(urls).unwrap_or_default();
    if urls.len() > crate::event::MAX_REPO_URLS {
        return Err(format!(
            "has {} entries; at most {} are allowed",
            urls.len(),
            crate::event::MAX_REPO_URLS
        ));
    }
    if urls.iter().any(|u| {
        u.chars().count() > crate::event::MAX_PATH_CHARS || u.chars().any(char::is_control)
    }) {
        return Err("has an entry too long or with control characters".into());
    }
    if !urls.is_empty()
        && !urls
            .iter()
            .any(|u| crate::domain::repo_url::RepoUrl::parse(u).is_ok())
    {
        return Err("has no URL Capstan can parse".into());
    }
    Ok(urls)
}

/// Whether the head repository is another one than the base (a fork); names compare without
/// case, as GitHub and Gitea treat them.
pub fn is_fork(head: Option<&str>, base: Option<&str>) -> bool {
    match (head, base) {
        (Some(head), Some(base)) => !head.trim().eq_ignore_ascii_case(base.trim()),
        _ => false,
    }
}

/// `text` without control characters, trimmed and cut to `max` characters.
fn clean_text(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `value`, or BadPayload saying the `host`'s pull request payload lacks `field`.
pub fn required<T>(host: &str, field: &str, value: Option<T>) -> Result<T, WebhookError> {
    value.ok_or_else(|| {
        WebhookError::BadPayload(format!("{host} pull request payload has no {field}"))
    })
}

/// Like [`required`] for text, where blank counts as missing.
pub fn required_text(
    host: &str,
    field: &str,
    value: Option<String>,
) -> Result<String, WebhookError> {
    required(host, field, value.filter(|v| !v.trim().is_empty()))
}

/// The part of `url` before `marker` (`https://h/api/v3` of `https://h/api/v3/repos/o/r` with
/// `/repos/`), when `url` is an http(s) URL containing it; the first occurrence counts, so an
/// owner or repository named like the marker stays out of the base.
pub fn url_before(url: &str, marker: &str) -> Option<String> {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return None;
    }
    let (base, _) = url.split_once(marker)?;
    let base = base.trim_end_matches('/');
    (base.contains("://") && !base.ends_with(':') && !base.ends_with("//")).then(|| base.to_owned())
}

/// A web URL with its repository path `path` (`owner/name`) dropped from the end: the host's
/// base URL, any path prefix kept (`https://h/gitlab` of `https://h/gitlab/group/project`).
pub fn url_without_path(web_url: &str, path: &str) -> Option<String> {
    let web = web_url.trim().trim_end_matches('/');
    let web = web.strip_suffix(".git").unwrap_or(web);
    let path = path.trim().trim_matches('/');
    if path.is_empty() {
        return None;
    }
    let base = web.strip_suffix(path)?.strip_suffix('/')?;
    (base.starts_with("https://") || base.starts_with("http://"))
        .then(|| base.to_owned())
        .filter(|b| b.len() > "https://".len() && !b.ends_with('/'))
}

/// The action word a sample uses for `action`, per host vocabulary, in the order
/// opened, updated, reopened, closed.
pub fn sample_action(action: PullRequestAction, words: [&'static str; 4]) -> &'static str {
    match action {
        PullRequestAction::Opened => words[0],
        PullRequestAction::Updated => words[1],
        PullRequestAction::Reopened => words[2],
        PullRequestAction::Closed => words[3],
    }
}

/// `owner` and `name` of a sample's repository URL: its last two path segments (a local path
/// works as well as a web URL).
pub fn sample_owner_name(repo_url: &str) -> (String, String) {
    let segments: Vec<String> = crate::domain::repo_url::RepoUrl::parse(repo_url)
        .map(|u| u.path_segments().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut rev = segments.into_iter().rev();
    let name = rev.next().unwrap_or_else(|| "repo".to_owned());
    let owner = rev.next().unwrap_or_else(|| "owner".to_owned());
    (owner, name)
}

#[cfg(test)]
mod tests;

/// Helpers the providers' own tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Outcome, WebhookError};
    use crate::event::{PullRequestEvent, PushEvent, RefUpdate};

    /// The pull request an outcome carries; panics with the outcome otherwise.
    pub fn expect_pull_request(outcome: Result<Outcome, WebhookError>) -> PullRequestEvent {
        match outcome {
            Ok(Outcome::PullRequest(pr)) => pr,
            other => panic!("expected a pull request, got {other:?}"),
        }
    }

    /// The reason an outcome was ignored; panics with the outcome otherwise.
    pub fn expect_ignored(outcome: Result<Outcome, WebhookError>) -> String {
        match outcome {
            Ok(Outcome::Ignored(reason)) => reason,
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    /// The message of a BadPayload refusal; panics with the outcome otherwise.
    pub fn expect_bad_payload(outcome: Result<Outcome, WebhookError>) -> String {
        match outcome {
            Ok(o) => panic!("expected BadPayload, got {o:?}"),
            Err(WebhookError::BadPayload(message)) => message,
            Err(e) => panic!("expected BadPayload, got {e:?}"),
        }
    }

    /// `body` with the JSON value at `pointer` replaced by `value` (removed when None).
    pub fn edited(body: &[u8], pointer: &str, value: Option<serde_json::Value>) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(body).expect("fixture is JSON");
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        let target = v.pointer_mut(parent).expect("the parent exists");
        match (target, value) {
            (serde_json::Value::Object(map), Some(value)) => {
                map.insert(key.to_owned(), value);
            }
            (serde_json::Value::Object(map), None) => {
                map.remove(key);
            }
            (other, _) => panic!("{parent} is not an object: {other}"),
        }
        v.to_string().into_bytes()
    }

    /// The event an outcome carries; panics with the outcome otherwise.
    pub fn expect_event(outcome: Result<Outcome, WebhookError>) -> PushEvent {
        match outcome {
            Ok(Outcome::Event(ev)) => ev,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// A ref that moved from `before` to `after` (None: created or deleted).
    pub fn moved(name: &str, before: Option<&str>, after: Option<&str>) -> RefUpdate {
        RefUpdate {
            name: name.into(),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
            created: before.is_none(),
            deleted: after.is_none(),
            forced: false,
        }
    }
}
