//! Git repository cache and fetch (gix).
//!
//! One bare mirror per (repository, credentials) lives under the cache root; commits are
//! materialised as plain directories (one per commit) that the renderers read from.
//! Everything goes through gix (file:// and local paths spawn `git-upload-pack`, HTTP(S)
//! uses reqwest, SSH spawns a pinned `ssh`); there is no fallback to the `git` CLI.

mod cache;
mod checkout;
mod commit_info;
mod credentials;
mod fetch;
mod gc;
mod limits;
mod policy;
pub mod secrets;
mod ssh;
mod stats;
mod url;

pub use cache::RepoCache;
pub use commit_info::CommitInfo;
pub use credentials::{Credentials, CredentialsError, GitCredentials};
pub use gc::Checkout;
pub use limits::GitLimits;
pub use policy::GitPolicy;
pub use ssh::SshKey;
pub use stats::FetchStats;
pub use url::redact_url;

/// Why a Git operation failed; messages are meant for users and never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The revision is neither a branch, a tag, a ref nor a commit of the repository.
    #[error("revision {revision:?} not found in the repository")]
    RevisionNotFound {
        /// The revision asked for.
        revision: String,
    },
    /// The server refused the credentials (or asked for some and none were given).
    #[error(
        "authentication failed: the repository server refused the credentials, or requires some"
    )]
    Auth,
    /// The SSH server's host key is not one the configured `known_hosts` trusts.
    #[error("host key check failed for {url}: {reason}")]
    HostKey {
        /// The repository URL, without credentials.
        url: String,
        /// Unknown or changed, and where to configure it.
        reason: String,
    },
    /// The repository could not be reached or the fetch failed; the message names the URL
    /// without credentials.
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// The URL is not one Capstan can fetch from.
    #[error("invalid repository URL {url}: {message}")]
    InvalidUrl {
        /// The repository URL, without credentials.
        url: String,
        /// Why it is refused.
        message: String,
    },
    /// Reading objects from the local mirror failed (a corrupt cache or a missing object).
    #[error("reading {what} from the cache of {url} failed: {message}")]
    Read {
        /// The repository URL, without credentials.
        url: String,
        /// What was being read (a commit id, a tree entry …).
        what: String,
        /// The underlying error.
        message: String,
    },
    /// Local file system trouble in the cache directory.
    #[error("git cache I/O error at {path}: {source}")]
    Io {
        /// The path being worked on.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("git task failed: {0}")]
    Task(String),
    /// The commit's tree is bigger than a configured limit; nothing of it was written.
    #[error(
        "{url} at {commit} is too large to check out: more than {limit} {what} (limit git.{key})"
    )]
    CheckoutTooLarge {
        /// The repository URL, without credentials.
        url: String,
        /// The commit id.
        commit: String,
        /// "entries" or "bytes".
        what: &'static str,
        /// The configured limit.
        limit: u64,
        /// The configuration key that sets the limit.
        key: &'static str,
    },
    /// A fetch did not finish before its deadline and was abandoned.
    #[error("fetching {url} took longer than {secs} s (limit git.fetch_timeout_secs); abandoned")]
    Timeout {
        /// The repository URL, without credentials.
        url: String,
        /// The deadline in seconds.
        secs: u64,
    },
    /// The repository URL is forbidden by policy (a password in it, or a local path outside
    /// `git.allowed_local_roots`); refused before any network or repository access.
    #[error("repository URL {url} refused: {reason}")]
    Refused {
        /// The repository URL, without credentials.
        url: String,
        /// Why, and what to do instead.
        reason: String,
    },
}
