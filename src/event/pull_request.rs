//! `PullRequestEvent`: what a Git host's pull/merge-request webhook becomes. It asks for a
//! preview (render head and base, compare, report back on the PR); it never asks for a sync.

use serde::{Deserialize, Serialize};

use super::EventSource;

/// Schema version of [`PullRequestEvent`] documents.
pub const PULL_REQUEST_EVENT_VERSION: u32 = 1;

/// A normalised "this pull request was opened, updated, reopened or closed" signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequestEvent {
    pub v: u32,
    pub id: String,
    /// The Git host that sent it.
    pub source: EventSource,
    /// The Git host's delivery id, if it sent one.
    #[serde(default)]
    pub delivery: Option<String>,
    pub received_at: String,
    pub action: PullRequestAction,
    /// The PR's number as people see it (GitLab's `iid`, not its global id).
    pub number: u64,
    #[serde(default)]
    pub title: String,
    /// Who opened it (login or display name), if the host says.
    #[serde(default)]
    pub author: Option<String>,
    /// The PR's page on the host, for links.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Every URL the host gave for the base repository: the one Applications track.
    pub repo_urls: Vec<String>,
    /// The branch the PR merges into, without `refs/heads/`.
    pub base_ref: String,
    /// The base branch's commit, when the host says (otherwise the preview resolves `base_ref`).
    #[serde(default)]
    pub base_sha: Option<String>,
    /// The PR's head commit: what the preview renders. Full SHA where the host gives one;
    /// Bitbucket Cloud gives 12 hex digits, which the preview resolves in the fetched head.
    pub head_sha: String,
    /// The head branch's name, without `refs/heads/`.
    #[serde(default)]
    pub head_ref: Option<String>,
    /// Clone URLs of the head repository when it is not the base repository (a fork); empty when
    /// the head branch lives in the base repository.
    #[serde(default)]
    pub head_repo_urls: Vec<String>,
    /// The changed paths when the host says; `None` means unknown (every path counts).
    #[serde(default)]
    pub changed_files: Option<Vec<String>>,
    /// Where the host's API serves this repository: comments and statuses go there.
    pub api: ForgeRepo,
}

/// What happened to the pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullRequestAction {
    Opened,
    /// New commits on the head branch (GitHub `synchronize`, GitLab `update` with new commits,
    /// Bitbucket `pullrequest:updated` / `pr:from_ref_updated`, Azure `git.pullrequest.updated`).
    Updated,
    Reopened,
    /// Closed or merged: no preview.
    Closed,
}

impl PullRequestAction {
    /// Whether this action asks for a preview.
    pub fn wants_preview(self) -> bool {
        !matches!(self, PullRequestAction::Closed)
    }
}

/// One repository as a Git host's REST API names it. What `owner` and `name` hold depends on
/// the host:
/// - GitHub, Gitea/Forgejo: `api_url` `https://api.github.com` / `https://gitea.example.com/api/v1`,
///   `owner` the owner, `name` the repository;
/// - GitLab: `api_url` `https://gitlab.example.com/api/v4`, `owner` empty, `name` the numeric
///   project id;
/// - Bitbucket Cloud: `api_url` `https://api.bitbucket.org/2.0`, `owner` the workspace, `name` the
///   repository slug;
/// - Bitbucket Data Center: `api_url` the server's base URL (`https://bitbucket.example.com`),
///   `owner` the project key, `name` the repository slug;
/// - Azure DevOps: `api_url` the organisation URL (`https://dev.azure.com/org`), `owner` the
///   project (name or id), `name` the repository id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ForgeRepo {
    /// Which host's API this is.
    pub kind: EventSource,
    pub api_url: String,
    pub owner: String,
    pub name: String,
}
