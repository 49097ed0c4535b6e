//! Canonical `host/path` keys for repository URLs, so every spelling of one repo compares equal.

/// The canonical key of a repository URL, lower-cased; None for an empty or hostless URL.
///
/// `https://user@GitHub.com:443/Org/Repo.git/`, `git@github.com:org/repo`, `ssh://git@ssh.github.com/org/repo`
/// all become `github.com/org/repo`. `file://` URLs keep their full path.
pub fn canonical(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let lower = url.to_ascii_lowercase();
    if let Some(path) = lower.strip_prefix("file://") {
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        return Some(format!("file://{}", path.trim_end_matches('/')));
    }
    let (rest, scp_style) = match ["https://", "http://", "ssh://", "git://", "git+ssh://"]
        .iter()
        .find_map(|s| lower.strip_prefix(s))
    {
        Some(rest) => (rest, false),
        None => (lower.as_str(), true),
    };
    // Drop user info: everything up to the last '@' before the first '/'.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let (host_port, path) = if scp_style {
        // scp style: host:path, where ':' separates the path (no port).
        match rest.split_once(':') {
            Some((host, path)) if !host.contains('/') => (host, path),
            _ => return None,
        }
    } else {
        match rest.split_once('/') {
            Some((host, path)) => (host, path),
            None => return None,
        }
    };
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    let host = host
        .strip_prefix("altssh.")
        .or_else(|| host.strip_prefix("ssh."))
        .unwrap_or(host);
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{host}/{path}"))
}

/// Whether two URLs name the same repository.
pub fn same_repo(a: &str, b: &str) -> bool {
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_repository_match() {
        let canon = Some("github.com/org/repo".to_string());
        for url in [
            "https://github.com/org/repo.git",
            "https://github.com/org/repo",
            "https://github.com/org/repo/",
            "HTTPS://GitHub.com/Org/Repo.git",
            "http://github.com/org/repo",
            "git@github.com:org/repo.git",
            "ssh://git@github.com/org/repo.git",
            "ssh://git@ssh.github.com:443/org/repo.git",
            "https://user:pass@github.com:443/org/repo.git",
            "git://github.com/org/repo",
        ] {
            assert_eq!(canonical(url), canon, "{url}");
        }
    }

    #[test]
    fn different_repositories_and_garbage_do_not_match() {
        assert!(!same_repo(
            "https://github.com/org/repo",
            "https://github.com/org/repo2"
        ));
        assert!(!same_repo(
            "https://github.com/a..d/r",
            "https://github.com/abcd/r"
        ));
        assert!(!same_repo("", ""));
        assert_eq!(canonical("   "), None);
        assert_eq!(canonical("https://"), None);
        assert_eq!(canonical("not a url"), None);
        assert_eq!(canonical("git@host:"), None);
    }

    #[test]
    fn file_urls_keep_their_path() {
        assert!(same_repo("file:///tmp/x/repo.git", "file:///tmp/x/repo"));
        assert!(!same_repo("file:///tmp/x/repo", "file:///tmp/y/repo"));
    }
}
