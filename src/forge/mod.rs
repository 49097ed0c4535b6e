//! The Git hosts' write APIs: commit statuses and the one PR comment Capstan keeps per marker,
//! on GitHub, GitLab, Bitbucket Cloud, Bitbucket Data Center, Gitea/Forgejo and Azure DevOps,
//! with the credentials of `[forge.hosts]` (personal or project tokens; GitHub App
//! installation tokens are not supported). Gogs has no status API.

mod azure_devops;
mod bitbucket_cloud;
mod bitbucket_server;
mod call;
mod clone_url;
mod comment;
mod github;
mod github_app;
mod gitlab;
mod hosts;
mod rate;
mod settings;
mod status;

use std::sync::Arc;

pub use comment::{CommentRef, body_limit, cap_body};
pub use settings::{ForgeSettings, HostSettings};
pub use status::{CommitStatus, StatusState};

use crate::event::{EventSource, ForgeRepo};
use call::Call;
use hosts::Host;

/// Pages of one list read at most (a PR with more comments than this is not real).
const MAX_PAGES: usize = 50;

/// Why a host call did not happen or did not succeed; messages never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// No `[forge.hosts]` entry serves this repository: nothing was sent.
    #[error("no forge credentials: {0}")]
    NotConfigured(String),
    /// The host has no such API (Gogs has no commit statuses).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The host refused (a 4xx other than 429): not retried.
    #[error("the host refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The host could not be reached or kept failing (5xx, 429) through every attempt.
    #[error("the host is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what the host documents.
    #[error("unexpected answer from the host: {0}")]
    Malformed(String),
    /// A request Capstan will not send (a path segment, a missing target URL).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// `[forge]` settings that cannot work.
    #[error("invalid [forge] settings: {0}")]
    Config(String),
}

impl ForgeError {
    fn unsupported(kind: &EventSource) -> ForgeError {
        match kind {
            EventSource::Gogs => ForgeError::Unsupported(
                "Gogs has no commit status or pull request API Capstan can use".into(),
            ),
            other => ForgeError::Unsupported(format!("{other} has no API Capstan reports to")),
        }
    }

    /// Whether trying again later may succeed (the host was unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(self, ForgeError::Unavailable(_))
    }
}

/// The Git hosts' clients with their credentials; cheap to clone.
#[derive(Clone)]
pub struct Forges {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ForgeSettings,
    http: reqwest::Client,
    hosts: Vec<Host>,
}

impl Forges {
    /// Checks the settings (kinds, URLs, readable token files) and builds the HTTP client.
    pub fn new(settings: &ForgeSettings) -> Result<Forges, ForgeError> {
        let hosts = settings
            .hosts
            .iter()
            .map(|(name, host)| Host::from_settings(name, host, settings.requests_per_second))
            .collect::<Result<Vec<_>, _>>()?;
        hosts::check_unambiguous(&hosts)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("capstan/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout())
            // A redirect could carry the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ForgeError::Config(format!("HTTP client: {e}")))?;
        Ok(Forges {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                http,
                hosts,
            }),
        })
    }

    /// Sets a status on a commit.
    pub async fn set_status(
        &self,
        repo: &ForgeRepo,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), ForgeError> {
        if !(7..=64).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ForgeError::Invalid(format!("{sha:?} is not a commit id")));
        }
        let call = self.call(repo)?;
        match repo.kind {
            EventSource::Github | EventSource::Gitea => {
                github::set_status(&call, sha, status).await
            }
            EventSource::Gitlab => gitlab::set_status(&call, sha, status).await,
            EventSource::BitbucketCloud => bitbucket_cloud::set_status(&call, sha, status).await,
            EventSource::BitbucketServer => bitbucket_server::set_status(&call, sha, status).await,
            EventSource::AzureDevops => azure_devops::set_status(&call, sha, status).await,
            _ => Err(ForgeError::unsupported(&repo.kind)),
        }
    }

    /// Creates or updates the one comment carrying `marker` (an HTML comment such as
    /// `<!-- capstan-preview -->` put at the top of `body`): edits `known` when given and
    /// still there; otherwise finds an existing comment containing the marker (so a restart or
    /// a lost record never leads to a second comment); otherwise creates one. The body is cut
    /// to the host's limit ([`body_limit`]).
    pub async fn upsert_comment(
        &self,
        repo: &ForgeRepo,
        pr: u64,
        marker: &str,
        body: &str,
        known: Option<&CommentRef>,
    ) -> Result<CommentRef, ForgeError> {
        let call = self.call(repo)?;
        comment::upsert(&call, pr, marker, body, known).await
    }

    /// The repository of a clone URL on its host's API: public hosts by name, self-hosted ones
    /// by the configured entry whose `api_url` is on the same host.
    pub fn repo_for(&self, clone_url: &str) -> Option<ForgeRepo> {
        clone_url::repo_of(clone_url, &self.inner.hosts)
    }

    /// Whether any host is configured.
    pub fn is_empty(&self) -> bool {
        self.inner.hosts.is_empty()
    }

    /// Whether credentials are configured for this repository (nothing is called otherwise).
    pub fn configured_for(&self, repo: &ForgeRepo) -> bool {
        hosts::supported(&repo.kind) && hosts::pick(&self.inner.hosts, repo).is_some()
    }

    /// The calls for `repo`, with the entry that serves it.
    fn call<'a>(&'a self, repo: &'a ForgeRepo) -> Result<Call<'a>, ForgeError> {
        if !hosts::supported(&repo.kind) {
            return Err(ForgeError::unsupported(&repo.kind));
        }
        let base = hosts::normalise(&repo.api_url)
            .and_then(|u| reqwest::Url::parse(&u).ok())
            .ok_or_else(|| ForgeError::Invalid(format!("{:?} is not an API URL", repo.api_url)))?;
        let host = hosts::pick(&self.inner.hosts, repo).ok_or_else(|| {
            ForgeError::NotConfigured(format!(
                "no [forge.hosts] entry of kind {} serves {}",
                repo.kind, base
            ))
        })?;
        Ok(Call {
            http: &self.inner.http,
            settings: &self.inner.settings,
            host,
            repo,
            base,
        })
    }
}
