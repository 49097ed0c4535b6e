//! Git repository cache and fetch (gix).
//!
//! One bare mirror per normalised repository URL lives under the cache root; commits are
//! materialised as plain directories (one per commit) that the renderers read from.
//! Everything goes through gix (file:// and local paths spawn `git-upload-pack`, HTTP(S)
//! uses reqwest); there is no fallback to the `git` CLI.

mod cache;
mod checkout;
mod fetch;
mod gc;
mod limits;
mod url;

pub use cache::RepoCache;
pub use gc::Checkout;
pub use limits::GitLimits;
pub use url::{cache_key, redact_url};

/// Credentials for a repository reached over HTTP(S).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password (or a token used as password, e.g. GitHub's `x-access-token`).
        password: String,
    },
    /// A bearer token, sent as `Authorization: Bearer <token>`.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    // Secrets must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Token(_) => f.debug_tuple("Token").field(&"<redacted>").finish(),
        }
    }
}

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
}
