//! A parsed Git repository URL with one canonical form for routing, caching and credentials.
//!
//! Every spelling Git accepts (https/http, `ssh://`, scp-style `git@host:org/repo`, `git://`,
//! `file://` and absolute local paths) is parsed by gix's URL parser, so Capstan agrees with
//! its fetcher about what a URL means; the canonical keys are derived from that parse.

use std::path::Path;

use gix::bstr::ByteSlice;
use sha2::{Digest, Sha256};

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
    /// `ssh://` or scp-style `user@host:path`.
    Ssh,
    /// `git://` (the unauthenticated git daemon).
    Git,
    /// `file://` or a local path.
    File,
}

impl Scheme {
    /// The scheme's name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
            Scheme::File => "file",
        }
    }

    /// The port used when a URL names none; None for local repositories.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Ssh => Some(22),
            Scheme::Git => Some(9418),
            Scheme::File => None,
        }
    }
}

/// Where a network repository lives: the unit credentials are scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The scheme, with scp-style URLs counted as `ssh`.
    pub scheme: Scheme,
    /// The host name, lower-cased.
    pub host: String,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
}

/// Why a string is not a usable repository URL; messages never repeat the URL itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoUrlError {
    /// Nothing but white space.
    #[error("the repository URL is empty")]
    Empty,
    /// gix could not parse it as any Git URL form.
    #[error(
        "not a Git URL (expected https://, ssh://, git@host:path, git://, file:// or an absolute path)"
    )]
    Unparsable,
    /// A transport Capstan does not fetch from (remote helpers such as `ext::` run commands).
    #[error("unsupported URL scheme {0:?}")]
    UnsupportedScheme(String),
    /// A network URL without a host.
    #[error("the URL names no host")]
    MissingHost,
    /// A URL without a repository path.
    #[error("the URL names no repository path")]
    MissingPath,
    /// A local path that is not absolute, which would depend on the worker's directory.
    #[error("a local repository path must be absolute")]
    RelativePath,
    /// Host or path bytes that are not UTF-8.
    #[error("the URL is not valid UTF-8")]
    NotUtf8,
}

/// A repository URL, parsed once; never holds a password.
#[derive(Clone)]
pub struct RepoUrl {
    /// What gix fetches: no password, and no user for HTTP(S) (credentials come from config).
    url: gix::Url,
    scheme: Scheme,
    has_password: bool,
    match_key: String,
    /// What the cache key is derived from; hashed only when asked, as routing never needs it.
    cache_identity: String,
}

impl RepoUrl {
    /// Parses any Git URL form; empty, hostless, pathless, relative or helper URLs are errors.
    pub fn parse(input: &str) -> Result<RepoUrl, RepoUrlError> {
        RepoUrl::parse_with(input, true)
    }

    /// Like `parse`, but the path may be empty: for configured prefixes such as `https://host/`.
    pub fn parse_prefix(input: &str) -> Result<RepoUrl, RepoUrlError> {
        RepoUrl::parse_with(input, false)
    }

    fn parse_with(input: &str, need_path: bool) -> Result<RepoUrl, RepoUrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RepoUrlError::Empty);
        }
        // URL schemes are case-insensitive; gix would take `HTTPS://` for a remote helper.
        let input = match input.split_once("://") {
            Some((scheme, rest))
                if scheme.bytes().all(|b| b.is_ascii_alphabetic() || b == b'+') =>
            {
                format!("{}://{rest}", scheme.to_ascii_lowercase())
            }
            _ => input.to_string(),
        };
        let mut url = gix::url::parse(input.as_bytes()).map_err(|_| RepoUrlError::Unparsable)?;
        let scheme = match &url.scheme {
            gix::url::Scheme::Http => Scheme::Http,
            gix::url::Scheme::Https => Scheme::Https,
            gix::url::Scheme::Ssh => Scheme::Ssh,
            gix::url::Scheme::Git => Scheme::Git,
            gix::url::Scheme::File => Scheme::File,
            other => return Err(RepoUrlError::UnsupportedScheme(other.as_str().to_string())),
        };
        // The secret is dropped here so no later display, key or error can carry it.
        let has_password = url.password.take().is_some();
        if matches!(scheme, Scheme::Http | Scheme::Https) {
            // A bare HTTP user may itself be a token (`https://<token>@host/…`).
            url.user = None;
        }
        let path = url
            .original_path()
            .to_str()
            .map_err(|_| RepoUrlError::NotUtf8)?
            .to_string();
        let (match_key, identity) = if scheme == Scheme::File {
            if url.host.as_deref().is_some_and(|h| !h.is_empty()) {
                return Err(RepoUrlError::UnsupportedScheme("file with a host".into()));
            }
            if !Path::new(&path).is_absolute() {
                return Err(RepoUrlError::RelativePath);
            }
            let trimmed = trim_repo_path(path.trim_end_matches('/'));
            if need_path && trimmed.is_empty() {
                return Err(RepoUrlError::MissingPath);
            }
            // Lower-cased before trimming, so `REPO.GIT` loses its suffix as `repo.git` does.
            let match_path = trim_repo_path(path.trim_end_matches('/').to_lowercase().as_str());
            let match_path = format!("/{}", match_path.trim_start_matches('/'));
            let path = format!("/{}", trimmed.trim_start_matches('/'));
            (format!("file://{match_path}"), format!("file://{path}"))
        } else {
            let host = url
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .ok_or(RepoUrlError::MissingHost)?
                .to_ascii_lowercase();
            let trimmed = trim_repo_path(path.trim_matches('/'));
            if need_path && trimmed.is_empty() {
                return Err(RepoUrlError::MissingPath);
            }
            let user = match (scheme, url.user.as_deref()) {
                (Scheme::Ssh, Some(user)) => format!("{user}@"),
                _ => String::new(),
            };
            let port = match url.port {
                Some(port) if Some(port) != scheme.default_port() => format!(":{port}"),
                _ => String::new(),
            };
            let match_path = trim_repo_path(path.trim_matches('/').to_lowercase().as_str());
            (
                network_match_key(&host, &match_path),
                format!("{}://{user}{host}{port}/{trimmed}", scheme.as_str()),
            )
        };
        Ok(RepoUrl {
            url,
            scheme,
            has_password,
            match_key,
            cache_identity: identity,
        })
    }

    /// The key two URLs share when a push to one must refresh apps that use the other.
    ///
    /// Case-insensitive; scheme, user and port dropped; scp ≡ ssh; a leading `ssh.`/`altssh.`
    /// dropped from the host; trailing `.git` and `/` dropped; Azure DevOps ssh ≡ https.
    ///
    /// The path is compared case-insensitively too, as Argo CD does: GitHub, GitLab, Gitea,
    /// Bitbucket and Azure DevOps all treat owner and repository names so, and hooks often spell
    /// them differently from the app's repoURL. On a host with case-sensitive paths two
    /// repositories differing only in case would share a key; that costs a needless refresh,
    /// never a wrong deployment, since the worker fetches each app's own URL.
    pub fn match_key(&self) -> &str {
        &self.match_key
    }

    /// Whether two URLs name the same repository by `match_key`.
    pub fn same_repo(&self, other: &RepoUrl) -> bool {
        self.match_key == other.match_key
    }

    /// A file-system-safe directory name for this repository's mirror and checkouts.
    ///
    /// Host case, HTTP userinfo, a default port, a trailing `/` or `.git`, and `file://` versus
    /// a plain path do not change it; path case and the ssh user do.
    pub fn cache_key(&self) -> String {
        file_system_key(&self.cache_identity)
    }

    /// Scheme, host and port (the scheme's default when none is written); None when local.
    pub fn origin(&self) -> Option<Origin> {
        let port = self.url.port.or(self.scheme.default_port())?;
        Some(Origin {
            scheme: self.scheme,
            host: self.url.host.as_deref()?.to_ascii_lowercase(),
            port,
        })
    }

    /// The path's segments as written (case kept), with a trailing `.git` dropped from the last.
    pub fn path_segments(&self) -> Vec<&str> {
        let path = match self.url.original_path().to_str() {
            Ok(path) => path,
            Err(_) => return Vec::new(),
        };
        let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(last) = segments.last_mut() {
            *last = last.strip_suffix(".git").unwrap_or(last);
        }
        segments.retain(|s| !s.is_empty());
        segments
    }

    /// The scheme; scp-style URLs are `ssh`, local paths `file`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The URL without any userinfo, safe for messages and logs.
    pub fn redacted(&self) -> String {
        let mut url = self.url.clone();
        url.user = None;
        url.to_bstring().to_str_lossy().into_owned()
    }

    /// The URL to hand to the fetcher: no password, the ssh user kept.
    pub fn fetch_url(&self) -> String {
        self.url.to_bstring().to_str_lossy().into_owned()
    }

    /// Whether this is a `file://` URL or a local path.
    pub fn is_local(&self) -> bool {
        self.scheme == Scheme::File
    }

    /// The local repository's path, for `file://` URLs and plain paths.
    pub fn local_path(&self) -> Option<&Path> {
        if !self.is_local() {
            return None;
        }
        self.url.path.to_path().ok()
    }

    /// Whether the URL as written carried a password (`user:password@`).
    pub fn has_password(&self) -> bool {
        self.has_password
    }
}

impl std::fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for RepoUrl {
    // A bare HTTP user can be a token, so even Debug shows only the redacted form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RepoUrl").field(&self.redacted()).finish()
    }
}

/// Drops a trailing `.git` (and the `/` before or after it) from a repository path.
fn trim_repo_path(path: &str) -> String {
    path.strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/')
        .to_string()
}

/// `host/path` with Argo CD's host rules, and Azure DevOps' spellings folded into one.
fn network_match_key(host: &str, path: &str) -> String {
    let host = host
        .strip_prefix("altssh.")
        .or_else(|| host.strip_prefix("ssh."))
        .unwrap_or(host);
    // ssh: `ssh.dev.azure.com:v3/org/project/repo`; https: `dev.azure.com/org/project/_git/repo`;
    // the older `org.visualstudio.com/project/_git/repo` and `vs-ssh.visualstudio.com:v3/…`.
    if host == "dev.azure.com" || host == "vs-ssh.visualstudio.com" {
        if let Some(rest) = path.strip_prefix("v3/")
            && let [org, project, repo] = rest.split('/').collect::<Vec<_>>()[..]
        {
            return format!("dev.azure.com/{org}/{project}/_git/{repo}");
        }
    } else if let Some(org) = host.strip_suffix(".visualstudio.com")
        && !org.contains('.')
    {
        // Old URLs may name the collection, which dev.azure.com leaves out.
        let path = path.strip_prefix("defaultcollection/").unwrap_or(path);
        return format!("dev.azure.com/{org}/{path}");
    }
    format!("{host}/{path}")
}

/// A readable tail of `identity` plus a hash of all of it, with only `[A-Za-z0-9._-]`.
fn file_system_key(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let readable: String = identity
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}-{}",
        readable.trim_start_matches('.'),
        &hex::encode(digest)[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        matches!((RepoUrl::parse(a), RepoUrl::parse(b)), (Ok(a), Ok(b)) if a.same_repo(&b))
    }

    /// Argo CD's `Test_GetWebURLRegex` cases, as far as Argo CD's documented normalisation rules describe them:
    /// (webhook URL, app repoURL, should match).
    #[test]
    fn argo_cd_web_url_golden_cases() {
        let cases = [
            (
                "https://example.com/org/repo",
                "https://example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com/org/repo.git",
                true,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com/org/repo/",
                true,
            ),
            (
                "https://example.com/org/repo",
                "HTTPS://EXAMPLE.COM/ORG/REPO",
                true,
            ),
            (
                "https://example.com/org/repo",
                "http://example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "ssh://example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "git@example.com:org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "ssh://git@example.com/org/repo.git",
                true,
            ),
            (
                "https://example.com/org/repo",
                "https://user@example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "https://user.name@example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com:443/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "ssh://git@example.com:22/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "ssh://git@ssh.example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "ssh://git@altssh.example.com:443/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "git://example.com/org/repo",
                true,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com/org/repo2",
                false,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com/org/rep",
                false,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com/other/repo",
                false,
            ),
            (
                "https://example.com/org/repo",
                "https://example.org/org/repo",
                false,
            ),
            (
                "https://example.com/org/repo",
                "https://sub.example.com/org/repo",
                false,
            ),
            (
                "https://example.com/org/repo",
                "https://example.com/org/repo/sub",
                false,
            ),
            (
                "https://example.com/a..d/repo",
                "https://example.com/abcd/repo",
                false,
            ),
            (
                "https://example.com/a.d/repo",
                "https://example.com/abd/repo",
                false,
            ),
            (
                "https://example.com/org/my%20repo",
                "https://example.com/org/my%20repo",
                true,
            ),
            (
                "https://example.com/org/my%20repo",
                "https://example.com/org/my-repo",
                false,
            ),
            (
                "https://dev.azure.com/org/proj/_git/repo",
                "git@ssh.dev.azure.com:v3/org/proj/repo",
                true,
            ),
            (
                "https://org@dev.azure.com/org/proj/_git/repo",
                "https://dev.azure.com/org/proj/_git/repo",
                true,
            ),
            (
                "https://org.visualstudio.com/proj/_git/repo",
                "https://dev.azure.com/org/proj/_git/repo",
                true,
            ),
            (
                "https://dev.azure.com/org/proj/_git/repo",
                "git@ssh.dev.azure.com:v3/org/proj/other",
                false,
            ),
        ];
        for (hook, app, want) in cases {
            assert_eq!(same(hook, app), want, "{hook} vs {app}");
        }
    }

    #[test]
    fn scp_style_is_ssh_and_its_colon_is_not_a_port() {
        let url = RepoUrl::parse("git@GitHub.com:Org/Repo.git").unwrap();
        assert_eq!(url.match_key(), "github.com/org/repo");
        assert_eq!(url.scheme(), Scheme::Ssh);
        let origin = url.origin().unwrap();
        assert_eq!((origin.host.as_str(), origin.port), ("github.com", 22));
        assert_eq!(url.path_segments(), vec!["Org", "Repo"]);
        assert_eq!(
            url.cache_key(),
            RepoUrl::parse("ssh://git@github.com/Org/Repo")
                .unwrap()
                .cache_key()
        );
    }

    #[test]
    fn empty_and_garbage_are_errors_not_panics() {
        for bad in [
            "",
            "   ",
            "https://",
            "https:///org/repo",
            "git@host:",
            "not a url",
            "relative/path",
            "ext::sh -c touch% /tmp/pwned",
            "https://example.com/",
            "\u{0}",
        ] {
            assert!(RepoUrl::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(RepoUrl::parse("").err(), Some(RepoUrlError::Empty));
    }

    #[test]
    fn origin_uses_the_scheme_default_port() {
        let url = RepoUrl::parse("https://Git.Example.com/org/repo").unwrap();
        assert_eq!(
            url.origin(),
            Some(Origin {
                scheme: Scheme::Https,
                host: "git.example.com".into(),
                port: 443
            })
        );
        let url = RepoUrl::parse("http://127.0.0.1:8080/org/repo").unwrap();
        assert_eq!(url.origin().map(|o| o.port), Some(8080));
        assert_eq!(RepoUrl::parse("/srv/git/repo").unwrap().origin(), None);
    }

    #[test]
    fn a_user_before_the_host_is_not_the_host() {
        let url = RepoUrl::parse("https://git.example.com@127.0.0.1:9/org/repo").unwrap();
        assert_eq!(url.origin().map(|o| o.host), Some("127.0.0.1".to_string()));
        assert_eq!(url.match_key(), "127.0.0.1/org/repo");
    }

    #[test]
    fn passwords_are_detected_and_never_shown() {
        let url = RepoUrl::parse("https://bob:s3cret@example.com/org/repo.git").unwrap();
        assert!(url.has_password());
        assert_eq!(url.redacted(), "https://example.com/org/repo.git");
        assert!(!url.fetch_url().contains("s3cret"));
        assert!(!format!("{url} {url:?}").contains("s3cret"));
        assert!(!format!("{url:?}").contains("bob"));
        let token_as_user = RepoUrl::parse("https://ghp_token@example.com/org/repo").unwrap();
        assert!(!token_as_user.has_password());
        assert!(!format!("{} {token_as_user:?}", token_as_user.fetch_url()).contains("ghp_token"));
        let ssh = RepoUrl::parse("git@github.com:org/repo").unwrap();
        assert!(!ssh.has_password());
        assert!(ssh.fetch_url().contains("git@"), "{}", ssh.fetch_url());
        assert!(!ssh.redacted().contains("git@"), "{}", ssh.redacted());
    }

    #[test]
    fn local_paths_and_file_urls() {
        let plain = RepoUrl::parse("/srv/git/a.git").unwrap();
        let file = RepoUrl::parse("file:///srv/git/a/").unwrap();
        assert!(plain.is_local() && file.is_local());
        assert_eq!(plain.cache_key(), file.cache_key());
        assert!(plain.same_repo(&file));
        assert_eq!(file.local_path(), Some(Path::new("/srv/git/a/")));
        assert!(!same("file:///tmp/x/repo", "file:///tmp/y/repo"));
        assert!(!RepoUrl::parse("https://h/o/r").unwrap().is_local());
    }

    #[test]
    fn cache_keys_are_file_system_safe_and_keep_path_case() {
        let a = RepoUrl::parse("https://GitHub.com/Org/Repo.git").unwrap();
        let b = RepoUrl::parse("https://user:pw@github.com:443/Org/Repo/").unwrap();
        let c = RepoUrl::parse("https://github.com/org/repo").unwrap();
        let d = RepoUrl::parse("https://github.com:8443/Org/Repo").unwrap();
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), c.cache_key());
        assert_ne!(a.cache_key(), d.cache_key());
        for url in [&a, &b, &c, &d] {
            let key = url.cache_key();
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
                "{key}"
            );
            assert!(!key.starts_with('.'), "{key}");
        }
    }
}
