//! Router-side repository matching: every spelling of one repository compares equal.

use crate::domain::RepoUrl;

/// The canonical match key of a repository URL; None when it is not a usable repository URL.
///
/// `https://user@GitHub.com:443/Org/Repo.git/`, `git@github.com:org/repo`, `ssh://git@ssh.github.com/org/repo`
/// all become `github.com/org/repo`. `file://` URLs keep their full path.
pub fn canonical(url: &str) -> Option<String> {
    RepoUrl::parse(url)
        .ok()
        .map(|url| url.match_key().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two URLs name the same repository; an unparsable URL matches nothing.
    fn same_repo(a: &str, b: &str) -> bool {
        canonical(a).is_some_and(|key| Some(key) == canonical(b))
    }

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
