//! INTERFACE STUB (integrator's copy of the git API; replaced by the git helper's module at merge).
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub enum Credentials {
    Basic { username: String, password: String },
    Token(String),
}

#[derive(Clone)]
pub struct RepoCache {}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("revision {revision} not found")]
    RevisionNotFound { revision: String },
}

impl RepoCache {
    pub fn new(_root: PathBuf) -> RepoCache {
        unimplemented!()
    }
    pub async fn resolve(
        &self,
        _url: &str,
        _revision: &str,
        _creds: Option<&Credentials>,
    ) -> Result<String, GitError> {
        unimplemented!()
    }
    pub async fn checkout(
        &self,
        _url: &str,
        _commit: &str,
        _creds: Option<&Credentials>,
    ) -> Result<PathBuf, GitError> {
        unimplemented!()
    }
}
#[allow(dead_code)]
fn _unused(_: &Path) {}
