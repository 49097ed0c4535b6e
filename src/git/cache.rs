//! The repository cache: per-URL bare mirrors and per-commit checkouts.

use std::path::PathBuf;

use super::{Credentials, GitError};

/// A cache of bare mirrors (one per normalised URL) and commit checkouts under one root.
#[derive(Clone)]
pub struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    /// Creates a cache rooted at `root` (created on first use).
    pub fn new(root: PathBuf) -> RepoCache {
        RepoCache { root }
    }

    /// Fetches as needed and resolves `revision` to a 40-hex commit id.
    ///
    /// `revision`: "" or "HEAD" (the remote's default branch), a branch name, a tag name,
    /// "refs/heads/x", "refs/tags/x", or a full commit SHA.
    pub async fn resolve(
        &self,
        url: &str,
        revision: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, GitError> {
        let _ = (url, revision, creds, &self.root);
        Err(GitError::Task("not implemented".into()))
    }

    /// The tree of `commit` as a directory on disk (cached per commit, created atomically),
    /// fetching the commit first if the mirror lacks it.
    pub async fn checkout(
        &self,
        url: &str,
        commit: &str,
        creds: Option<&Credentials>,
    ) -> Result<PathBuf, GitError> {
        let _ = (url, commit, creds);
        Err(GitError::Task("not implemented".into()))
    }
}
