//! Git credentials, and the rule deciding which repository URLs may receive them.
//!
//! A configured `url_prefix` is a scope, not a string prefix: scheme, host and port must be
//! equal, and the path must start with the prefix's path on segment boundaries. A string
//! prefix would hand `https://git.example.com` credentials to `https://git.example.com.evil.test`
//! or to `https://git.example.com@attacker/`.

use sha2::{Digest, Sha256};

use super::ssh::SshKey;
use crate::domain::RepoUrl;
use crate::domain::repo_url::{Origin, RepoUrlError};

/// Credentials for a repository reached over HTTP(S) or SSH.
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
    /// An SSH private key and the host keys to trust, for `ssh://` and scp-style URLs.
    Ssh(SshKey),
}

impl Credentials {
    /// A SHA-256 over the credentials (never the secret itself), so cache entries fetched with
    /// different credentials stay apart without writing secrets to disk.
    pub(crate) fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        match self {
            Credentials::Basic { username, password } => {
                field(b"basic");
                field(username.as_bytes());
                field(password.as_bytes());
            }
            Credentials::Token(token) => {
                field(b"token");
                field(token.as_bytes());
            }
            Credentials::Ssh(key) => {
                field(b"ssh");
                field(key.private_key.as_bytes());
                field(key.known_hosts.as_bytes());
                field(&[u8::from(key.insecure_ignore_host_key)]);
            }
        }
        hex::encode(hash.finalize())
    }
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
            Credentials::Ssh(key) => f.debug_tuple("Ssh").field(key).finish(),
        }
    }
}

/// Why a configured credential scope was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The prefix is not a URL at all.
    #[error("git credentials url_prefix {prefix:?}: {source}")]
    InvalidPrefix {
        /// The prefix, without userinfo.
        prefix: String,
        /// Why it did not parse.
        source: RepoUrlError,
    },
    /// Local repositories need no credentials; a local prefix is a configuration mistake.
    #[error(
        "git credentials url_prefix {prefix:?} names a local path; credentials are only for network URLs"
    )]
    LocalPrefix {
        /// The prefix as configured.
        prefix: String,
    },
    /// A password inside the prefix would be a secret in a configuration value.
    #[error(
        "git credentials url_prefix {prefix:?} carries a password; put it in password_file instead"
    )]
    PasswordInPrefix {
        /// The prefix, without userinfo.
        prefix: String,
    },
}

/// Where one configured credential may go.
#[derive(Debug, Clone)]
struct Scope {
    origin: Origin,
    segments: Vec<String>,
}

impl Scope {
    fn covers(&self, origin: &Origin, segments: &[&str]) -> bool {
        self.origin == *origin
            && segments.len() >= self.segments.len()
            && self.segments.iter().zip(segments).all(|(a, b)| a == b)
    }
}

/// Configured Git credentials; for a URL, the longest covering scope wins.
#[derive(Debug, Clone, Default)]
pub struct GitCredentials {
    entries: Vec<(Scope, Credentials)>,
}

impl GitCredentials {
    /// No credentials at all.
    pub fn new() -> GitCredentials {
        GitCredentials::default()
    }

    /// Adds `creds` for repositories under `url_prefix` (e.g. `https://git.example.com/org`).
    pub fn add(&mut self, url_prefix: &str, creds: Credentials) -> Result<(), CredentialsError> {
        let url = RepoUrl::parse_prefix(url_prefix).map_err(|source| {
            CredentialsError::InvalidPrefix {
                prefix: super::redact_url(url_prefix),
                source,
            }
        })?;
        if url.has_password() {
            return Err(CredentialsError::PasswordInPrefix {
                prefix: url.redacted(),
            });
        }
        let origin = url.origin().ok_or_else(|| CredentialsError::LocalPrefix {
            prefix: url_prefix.to_string(),
        })?;
        let segments = url.path_segments().into_iter().map(String::from).collect();
        self.entries.push((Scope { origin, segments }, creds));
        Ok(())
    }

    /// Credentials for `url`, if a configured scope covers it; None for unparsable URLs.
    pub fn for_url(&self, url: &str) -> Option<&Credentials> {
        self.for_repo(&RepoUrl::parse(url).ok()?)
    }

    /// Credentials for `url`, if a configured scope covers it.
    pub fn for_repo(&self, url: &RepoUrl) -> Option<&Credentials> {
        self.scoped(url).map(|(_, creds)| creds)
    }

    /// The covering credentials with the most path segments in their scope, and that number.
    pub fn scoped(&self, url: &RepoUrl) -> Option<(usize, &Credentials)> {
        let origin = url.origin()?;
        let segments = url.path_segments();
        self.entries
            .iter()
            .filter(|(scope, _)| scope.covers(&origin, &segments))
            .max_by_key(|(scope, _)| scope.segments.len())
            .map(|(scope, creds)| (scope.segments.len(), creds))
    }

    /// Whether no credentials are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether `asked` (a URL a transport wants credentials for) has the same scheme, host and port
/// as `configured`; false when either does not parse.
pub(crate) fn same_origin(configured: &str, asked: &str) -> bool {
    let origin = |url: &str| RepoUrl::parse_prefix(url).ok().and_then(|u| u.origin());
    matches!((origin(configured), origin(asked)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str) -> Credentials {
        Credentials::Token(name.into())
    }

    fn configured(entries: &[(&str, &str)]) -> GitCredentials {
        let mut creds = GitCredentials::new();
        for (prefix, name) in entries {
            creds.add(prefix, token(name)).unwrap();
        }
        creds
    }

    fn which(creds: &GitCredentials, url: &str) -> Option<String> {
        match creds.for_url(url) {
            Some(Credentials::Token(name)) => Some(name.clone()),
            _ => None,
        }
    }

    #[test]
    fn scopes_match_scheme_host_and_port_exactly() {
        let creds = configured(&[("https://git.example.com/", "a")]);
        for url in [
            "https://git.example.com/org/repo",
            "https://GIT.example.com:443/org/repo.git",
            "https://user@git.example.com/org/repo",
        ] {
            assert_eq!(which(&creds, url).as_deref(), Some("a"), "{url}");
        }
        for url in [
            "https://git.example.com.evil.test/org/repo",
            "https://git.example.com@evil.test/org/repo",
            "https://git.example.com:8443/org/repo",
            "http://git.example.com/org/repo",
            "ssh://git@git.example.com/org/repo",
            "git@git.example.com:org/repo",
            "https://evil.test/git.example.com/org/repo",
            "file:///git.example.com/org/repo",
            "",
        ] {
            assert_eq!(which(&creds, url), None, "{url}");
        }
    }

    #[test]
    fn paths_match_on_segment_boundaries_and_the_longest_scope_wins() {
        let creds = configured(&[
            ("https://h/org", "org"),
            ("https://h/org/team/", "team"),
            ("https://h/", "host"),
        ]);
        assert_eq!(which(&creds, "https://h/org/x").as_deref(), Some("org"));
        assert_eq!(
            which(&creds, "https://h/org/team/x.git").as_deref(),
            Some("team")
        );
        assert_eq!(
            which(&creds, "https://h/organisation/x").as_deref(),
            Some("host")
        );
        assert_eq!(
            which(&creds, "https://h/org/teamwork/x").as_deref(),
            Some("org")
        );
        let only_org = configured(&[("https://h/org", "org")]);
        assert_eq!(which(&only_org, "https://h/organisation/x"), None);
        assert_eq!(which(&only_org, "https://h/Org/x"), None);
    }

    #[test]
    fn bad_prefixes_are_refused_without_echoing_secrets() {
        let mut creds = GitCredentials::new();
        assert!(creds.add("not a url", token("x")).is_err());
        assert!(creds.add("/srv/git", token("x")).is_err());
        let err = creds
            .add("https://bob:hunter2@h/org", token("x"))
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(creds.for_url("https://h/org/x").is_none());
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let basic = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let token = token("tok3n");
        assert!(!format!("{basic:?}").contains("hunter2"));
        assert!(!format!("{token:?}").contains("tok3n"));
    }

    #[test]
    fn fingerprints_differ_per_secret_and_do_not_contain_it() {
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: p.into(),
        };
        let a = basic("ab", "c").fingerprint();
        assert_ne!(a, basic("a", "bc").fingerprint());
        assert_ne!(a, basic("ab", "d").fingerprint());
        assert_ne!(token("x").fingerprint(), basic("", "x").fingerprint());
        assert_eq!(a, basic("ab", "c").fingerprint());
        assert!(!token("s3cret-token").fingerprint().contains("s3cret"));
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        assert!(same_origin("http://127.0.0.1:80/a", "http://127.0.0.1/b"));
        assert!(!same_origin(
            "http://127.0.0.1:8080/a",
            "http://127.0.0.1:8081/a"
        ));
        assert!(!same_origin("http://h/a", "https://h/a"));
        assert!(!same_origin("http://h/a", "not a url"));
    }
}
