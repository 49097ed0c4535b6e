//! Repository URL handling: cache keys, credential-free display, and userinfo extraction.

use sha2::{Digest, Sha256};

/// The URL with any `user:password@` removed, safe for messages and logs.
pub fn redact_url(url: &str) -> String {
    split_userinfo(url).0
}

/// Splits `scheme://user:pass@host/…` into the URL without userinfo and the userinfo (if any).
///
/// scp-style (`git@host:path`) and local paths carry no secret and are returned unchanged.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None);
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let stripped = format!(
                "{}{}{}",
                &url[..scheme_end + 3],
                &authority[at + 1..],
                &rest[authority_end..]
            );
            (stripped, Some(authority[..at].to_string()))
        }
        None => (url.to_string(), None),
    }
}

/// A file-system-safe directory name identifying the repository behind `url`.
///
/// Case of the host, credentials, a trailing `/` or `.git`, and `file://` versus a plain path
/// do not change the key; a readable prefix is kept for people looking at the cache.
pub fn cache_key(url: &str) -> String {
    let canonical = canonical(url);
    let digest = Sha256::digest(canonical.as_bytes());
    let readable: String = canonical
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

fn canonical(url: &str) -> String {
    let (url, _) = split_userinfo(url.trim());
    let (scheme, rest) = match url.find("://") {
        Some(i) => (url[..i].to_ascii_lowercase(), url[i + 3..].to_string()),
        None => ("file".to_string(), url.clone()),
    };
    let rest = if scheme == "file" {
        rest
    } else {
        // Host names are case-insensitive; paths are not.
        match rest.find('/') {
            Some(i) => format!("{}{}", rest[..i].to_ascii_lowercase(), &rest[i..]),
            None => rest.to_ascii_lowercase(),
        }
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest
        .strip_suffix(".git")
        .unwrap_or(rest)
        .trim_end_matches('/');
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_from_urls() {
        assert_eq!(
            redact_url("https://bob:s3cret@example.com/org/repo.git"),
            "https://example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("https://tok@en@example.com:8443/r?x=@"),
            "https://example.com:8443/r?x=@"
        );
        assert_eq!(
            redact_url("git@github.com:org/repo"),
            "git@github.com:org/repo"
        );
        assert_eq!(redact_url("/srv/repo"), "/srv/repo");
    }

    #[test]
    fn splits_userinfo() {
        let (url, info) = split_userinfo("http://u:p@h/r");
        assert_eq!(url, "http://h/r");
        assert_eq!(info.as_deref(), Some("u:p"));
    }

    #[test]
    fn equivalent_urls_share_a_cache_key() {
        let a = cache_key("https://GitHub.com/Org/Repo.git");
        assert_eq!(a, cache_key("https://user:pw@github.com/Org/Repo/"));
        assert_ne!(a, cache_key("https://github.com/org/repo"));
        assert_eq!(cache_key("/srv/git/a.git"), cache_key("file:///srv/git/a"));
        assert!(!a.contains('/'));
        assert!(!cache_key("..").starts_with('.'));
    }
}
