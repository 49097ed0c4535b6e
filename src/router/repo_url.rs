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
        // (canonical key, spellings that must all reduce to it)
        let table: &[(&str, &[&str])] = &[
            (
                "github.com/org/repo",
                &[
                    "https://github.com/org/repo.git",
                    "https://github.com/org/repo",
                    "https://github.com/org/repo/",
                    "https://github.com/org/repo.git/",
                    "HTTPS://GitHub.com/Org/Repo.git",
                    "http://github.com/org/repo",
                    "git@github.com:org/repo.git",
                    "git@github.com:org/repo",
                    "git@github.com:/org/repo.git",
                    "GIT@GITHUB.COM:ORG/REPO.GIT",
                    "ssh://git@github.com/org/repo.git",
                    "ssh://github.com/org/repo",
                    "ssh://git@github.com:22/org/repo",
                    "ssh://git@ssh.github.com:443/org/repo.git",
                    "ssh://git@altssh.github.com:443/org/repo.git",
                    "https://user:pass@github.com:443/org/repo.git",
                    "https://x-access-token@github.com/org/repo",
                    "https://first.last@github.com/org/repo",
                    "https://github.com:8443/org/repo",
                    "git://github.com/org/repo",
                    "  https://github.com/org/repo  ",
                ],
            ),
            (
                "gitlab.com/group/sub/repo",
                &[
                    "https://gitlab.com/group/sub/repo.git",
                    "git@gitlab.com:group/sub/repo.git",
                    "ssh://git@altssh.gitlab.com:443/group/sub/repo",
                ],
            ),
            (
                "dev.azure.com/org/proj/_git/repo",
                &[
                    "https://dev.azure.com/org/proj/_git/repo",
                    "https://org@dev.azure.com/org/proj/_git/repo",
                    "git@ssh.dev.azure.com:v3/org/proj/repo",
                    "ssh://git@ssh.dev.azure.com/v3/org/proj/repo",
                    "https://org.visualstudio.com/proj/_git/repo",
                    "https://org.visualstudio.com/DefaultCollection/proj/_git/repo",
                    "org@vs-ssh.visualstudio.com:v3/org/proj/repo",
                ],
            ),
            (
                "bitbucket.example.com/scm/proj/repo",
                &[
                    "https://bitbucket.example.com/scm/proj/repo.git",
                    "https://admin@bitbucket.example.com:7990/scm/PROJ/repo.git",
                ],
            ),
            (
                "example.com/org/my%20repo",
                &["https://example.com/org/my%20repo"],
            ),
        ];
        for (key, spellings) in table {
            for url in *spellings {
                assert_eq!(canonical(url).as_deref(), Some(*key), "{url}");
            }
        }
    }

    #[test]
    fn different_repositories_do_not_match() {
        for (a, b) in [
            (
                "https://github.com/org/repo",
                "https://github.com/org/repo2",
            ),
            ("https://github.com/org/repo", "https://github.com/org/rep"),
            (
                "https://github.com/org/repo",
                "https://github.com/org2/repo",
            ),
            ("https://github.com/org/repo", "https://gitlab.com/org/repo"),
            (
                "https://github.com/org/repo",
                "https://github.com/org/repo/sub",
            ),
            (
                "https://github.com/org/repo",
                "https://sub.github.com/org/repo",
            ),
            ("https://github.com/a..d/r", "https://github.com/abcd/r"),
            ("https://github.com/a.d/r", "https://github.com/abd/r"),
            (
                "https://github.com/org/repo",
                "https://github.com/org/repo.github",
            ),
            (
                "https://github.com/org/repo",
                "https://github.com/org/repo.git.git",
            ),
            (
                "https://example.com/org/my%20repo",
                "https://example.com/org/my-repo",
            ),
            (
                "https://dev.azure.com/org/proj/_git/repo",
                "git@ssh.dev.azure.com:v3/org/proj/other",
            ),
            (
                "https://dev.azure.com/org/proj/_git/repo",
                "https://dev.azure.com/org2/proj/_git/repo",
            ),
            (
                "https://org.visualstudio.com/proj/_git/repo",
                "https://other.visualstudio.com/proj/_git/repo",
            ),
            ("file:///tmp/x/repo", "file:///tmp/y/repo"),
        ] {
            assert!(!same_repo(a, b), "{a} vs {b}");
            assert!(!same_repo(b, a), "{b} vs {a}");
        }
    }

    #[test]
    fn empty_and_garbage_match_nothing() {
        assert!(!same_repo("", ""));
        for url in [
            "",
            "   ",
            "https://",
            "not a url",
            "git@host:",
            "https://github.com/",
            "\0",
        ] {
            assert_eq!(canonical(url), None, "{url:?}");
        }
    }

    #[test]
    fn file_urls_keep_their_path() {
        assert!(same_repo("file:///tmp/x/repo.git", "file:///tmp/x/repo"));
        assert!(same_repo("/tmp/x/repo", "file:///tmp/x/repo/"));
        assert!(same_repo("/tmp/x/REPO.GIT", "file:///tmp/x/repo"));
        assert!(!same_repo("/tmp/x/repo.git.git", "file:///tmp/x/repo"));
    }
}
