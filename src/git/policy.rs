//! Which repository URLs this process may fetch from, decided before any network access.
//!
//! An Application author chooses `repoURL`; without this policy a `file://` URL would let them
//! read any repository on the worker's disk (and deploy what it holds), and a URL carrying a
//! password would put a secret into the Application object.

use std::path::{Path, PathBuf};

use super::GitError;
use super::url::redact_url;
use crate::config::{ManagementCluster, Settings};
use crate::domain::RepoUrl;

/// Which local repositories may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalRepos {
    /// Any path: the quick-start sandbox, where the operator owns the whole machine.
    Any,
    /// Only paths whose canonical form lies under one of these roots (none when empty).
    Under(Vec<PathBuf>),
}

/// The repository URL policy a `RepoCache` enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPolicy {
    local: LocalRepos,
}

impl GitPolicy {
    /// The policy for these settings: `git.allowed_local_roots` when listed; otherwise any
    /// local path with `cluster.management = "sandbox"`, and none with a real cluster.
    pub fn from_settings(settings: &Settings) -> GitPolicy {
        let roots = &settings.git.allowed_local_roots;
        if roots.is_empty() && settings.cluster.management == ManagementCluster::Sandbox {
            GitPolicy::allow_any_local()
        } else {
            GitPolicy::local_roots(roots.clone())
        }
    }

    /// Local repositories anywhere on disk are allowed.
    pub fn allow_any_local() -> GitPolicy {
        GitPolicy {
            local: LocalRepos::Any,
        }
    }

    /// Local repositories only under `roots` (no local repository at all when empty).
    pub fn local_roots(roots: Vec<PathBuf>) -> GitPolicy {
        GitPolicy {
            local: LocalRepos::Under(roots),
        }
    }

    /// Parses `url` and refuses what the policy forbids; the returned URL is what to fetch.
    ///
    /// Touches no network; the file system only to canonicalise a local path under a root.
    pub fn check(&self, url: &str) -> Result<RepoUrl, GitError> {
        let parsed = RepoUrl::parse(url).map_err(|err| GitError::InvalidUrl {
            url: redact_url(url),
            message: err.to_string(),
        })?;
        if parsed.has_password() {
            return Err(refused(
                &parsed,
                "the URL carries a password; configure credentials in git.credentials or a \
                 repository Secret instead",
            ));
        }
        let Some(path) = parsed.local_path() else {
            return Ok(parsed);
        };
        let roots = match &self.local {
            LocalRepos::Any => return Ok(parsed),
            LocalRepos::Under(roots) if roots.is_empty() => {
                return Err(refused(
                    &parsed,
                    "local repositories are not allowed (list a root in git.allowed_local_roots)",
                ));
            }
            LocalRepos::Under(roots) => roots,
        };
        // One message whether the path is missing or outside, so probing learns nothing.
        let outside = || {
            refused(
                &parsed,
                "the local path does not exist or is not under git.allowed_local_roots",
            )
        };
        let canonical = path.canonicalize().map_err(|_| outside())?;
        if !roots.iter().any(|root| is_under(&canonical, root)) {
            return Err(outside());
        }
        // Fetch the resolved path, so a symlink swapped in later does not change the target.
        let canonical = canonical.to_str().ok_or_else(outside)?;
        RepoUrl::parse(canonical).map_err(|_| outside())
    }
}

fn is_under(path: &Path, root: &Path) -> bool {
    root.canonicalize()
        .is_ok_and(|root| path.starts_with(&root))
}

fn refused(url: &RepoUrl, reason: &str) -> GitError {
    GitError::Refused {
        url: url.redacted(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_reason(result: Result<RepoUrl, GitError>) -> String {
        match result {
            Err(GitError::Refused { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn settings(management: &str, roots: &[&Path]) -> Settings {
        let roots: Vec<String> = roots
            .iter()
            .map(|r| format!("{:?}", r.display().to_string()))
            .collect();
        let toml = format!(
            "[cluster]\nmanagement = {management:?}\n[git]\nallowed_local_roots = [{}]\n",
            roots.join(", ")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load_from(Some(&file), Vec::new()).unwrap()
    }

    #[test]
    fn sandbox_allows_local_repositories_and_real_clusters_do_not() {
        let repo = tempfile::tempdir().unwrap();
        let url = format!("file://{}", repo.path().display());
        assert!(
            GitPolicy::from_settings(&settings("sandbox", &[]))
                .check(&url)
                .is_ok()
        );
        for management in ["kubeconfig", "in-cluster"] {
            let policy = GitPolicy::from_settings(&settings(management, &[]));
            assert!(refused_reason(policy.check(&url)).contains("allowed_local_roots"));
            let listed = GitPolicy::from_settings(&settings(management, &[repo.path()]));
            assert!(listed.check(&url).is_ok(), "{management}");
        }
        let other = tempfile::tempdir().unwrap();
        let sandbox_listed = GitPolicy::from_settings(&settings("sandbox", &[other.path()]));
        assert!(
            sandbox_listed.check(&url).is_err(),
            "listing roots restricts the sandbox"
        );
    }

    #[test]
    fn roots_can_come_from_the_environment() {
        let env = [
            ("CAPSTAN__CLUSTER__MANAGEMENT", "in-cluster"),
            ("CAPSTAN__GIT__ALLOWED_LOCAL_ROOTS", "/srv/a,/srv/b"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let settings = Settings::load_from(None, env).unwrap();
        assert_eq!(
            GitPolicy::from_settings(&settings),
            GitPolicy::local_roots(vec!["/srv/a".into(), "/srv/b".into()])
        );
    }

    #[test]
    fn local_paths_must_stay_under_a_root() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(root.join("repo")).unwrap();
        std::fs::create_dir_all(root.join("rootless")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let sibling = base.path().join("rootx");
        std::fs::create_dir_all(&sibling).unwrap();
        let policy = GitPolicy::local_roots(vec![root.clone()]);

        let ok = policy
            .check(&root.join("repo").display().to_string())
            .unwrap();
        assert!(ok.is_local());
        for escape in [
            format!("{}/repo/../../outside", root.display()),
            format!("file://{}/../outside", root.display()),
            format!("{}/link", root.display()),
            sibling.display().to_string(),
            format!("{}/missing", root.display()),
        ] {
            assert!(
                refused_reason(policy.check(&escape)).contains("allowed_local_roots"),
                "{escape}"
            );
        }
    }

    #[test]
    fn network_urls_pass_and_passwords_are_refused_without_echo() {
        let none = GitPolicy::local_roots(Vec::new());
        assert!(none.check("https://git.example.com/org/repo").is_ok());
        assert!(none.check("git@git.example.com:org/repo").is_ok());
        let err = none
            .check("https://bob:hunter2@git.example.com/org/repo")
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("password"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            GitPolicy::allow_any_local()
                .check("https://bob:hunter2@git.example.com/org/repo")
                .is_err()
        );
        assert!(matches!(
            none.check("ext::sh -c id"),
            Err(GitError::InvalidUrl { .. })
        ));
    }
}
