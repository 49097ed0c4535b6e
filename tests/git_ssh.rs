//! Git over SSH against a real `sshd`: Capstan presents exactly the configured key, trusts
//! exactly the configured host keys, and leaves the user's own `~/.ssh` alone.

mod common;

use std::path::Path;

use capstan::git::{Credentials, GitError, RepoCache, SshKey};
use common::git::TestRepo;
use common::sshd::{KeyPair, SshServer, home_from_passwd, keypair};

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

struct Setup {
    repo: TestRepo,
    server: SshServer,
    key: KeyPair,
    commit: String,
}

fn setup() -> Setup {
    let sshd = common::tools::require("sshd");
    let repo = TestRepo::new();
    repo.write("apps/web.yaml", DEPLOYMENT);
    let commit = repo.commit("web");
    let key = keypair();
    let server = SshServer::start(&sshd, &key.public);
    Setup {
        repo,
        server,
        key,
        commit,
    }
}

fn creds(private_key: &str, known_hosts: &str, insecure: bool) -> Credentials {
    Credentials::Ssh(SshKey {
        private_key: private_key.to_string(),
        known_hosts: known_hosts.to_string(),
        insecure_ignore_host_key: insecure,
    })
}

fn cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(dir.path().to_path_buf());
    (dir, cache)
}

/// Names and modification times under `dir` (or None when it does not exist).
fn snapshot(dir: &Path) -> Option<Vec<(String, std::time::SystemTime)>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut seen: Vec<_> = entries
        .flatten()
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), modified)
        })
        .collect();
    seen.sort();
    Some(seen)
}

#[tokio::test]
async fn resolve_and_checkout_over_ssh_with_the_configured_key() {
    let s = setup();
    let home_ssh = home_from_passwd().join(".ssh");
    let before = snapshot(&home_ssh);
    let (_dir, cache) = cache();
    let url = s.server.url_for(s.repo.path());
    let creds = creds(&s.key.private, &s.server.known_hosts_line(), false);

    let head = cache.resolve(&url, "main", Some(&creds)).await.unwrap();
    assert_eq!(head, s.commit);
    let checkout = cache.checkout(&url, &head, Some(&creds)).await.unwrap();
    let text = std::fs::read_to_string(checkout.path().join("apps/web.yaml")).unwrap();
    assert_eq!(text, DEPLOYMENT);

    // A new commit is seen through the same mirror (an incremental fetch over SSH).
    s.repo.write("apps/db.yaml", DEPLOYMENT);
    let next = s.repo.commit("db");
    assert_eq!(
        cache.resolve(&url, "main", Some(&creds)).await.unwrap(),
        next
    );

    // ssh created, read-modified or wrote nothing in the user's own ~/.ssh.
    assert_eq!(
        snapshot(&home_ssh),
        before,
        "{} changed",
        home_ssh.display()
    );
}

#[tokio::test]
async fn a_key_the_server_does_not_accept_is_an_auth_error_that_shows_no_key() {
    let s = setup();
    let (_dir, cache) = cache();
    let url = s.server.url_for(s.repo.path());
    let wrong = keypair();
    let creds = creds(&wrong.private, &s.server.known_hosts_line(), false);
    let err = cache.resolve(&url, "main", Some(&creds)).await.unwrap_err();
    assert!(matches!(err, GitError::Auth), "{err:?}");
    let shown = format!("{err} {err:?} {creds:?}");
    let key_body = wrong.private.lines().nth(1).unwrap();
    assert!(!shown.contains(key_body), "{shown}");
}

#[tokio::test]
async fn an_unknown_or_changed_host_key_is_refused_unless_checking_is_off() {
    let s = setup();
    let (_dir, cache) = cache();
    let url = s.server.url_for(s.repo.path());

    // Another server's key for this host:port: a man in the middle, as far as ssh can tell.
    let impostor = keypair();
    let mut fields = impostor.public.split_whitespace();
    let other = format!(
        "{} {} {}",
        s.server
            .known_hosts_line()
            .split_whitespace()
            .next()
            .unwrap(),
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    let changed = creds(&s.key.private, &other, false);
    match cache.resolve(&url, "main", Some(&changed)).await {
        Err(GitError::HostKey { reason, url: shown }) => {
            assert!(reason.contains("does not match"), "{reason}");
            assert!(shown.contains("127.0.0.1"), "{shown}");
        }
        other => panic!("expected a host key error, got {other:?}"),
    }

    let unknown = creds(&s.key.private, "", false);
    match cache.resolve(&url, "main", Some(&unknown)).await {
        Err(GitError::HostKey { reason, .. }) => assert!(reason.contains("not in"), "{reason}"),
        other => panic!("expected a host key error, got {other:?}"),
    }

    let insecure = creds(&s.key.private, "", true);
    let head = cache.resolve(&url, "main", Some(&insecure)).await.unwrap();
    assert_eq!(head, s.commit);
}

#[tokio::test]
async fn an_ssh_url_without_an_ssh_key_is_refused_before_connecting() {
    let s = setup();
    let (_dir, cache) = cache();
    let url = s.server.url_for(s.repo.path());
    let err = cache.resolve(&url, "main", None).await.unwrap_err();
    assert!(
        matches!(&err, GitError::Refused { reason, .. } if reason.contains("SSH key")),
        "{err:?}"
    );
    let basic = Credentials::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let err = cache.resolve(&url, "main", Some(&basic)).await.unwrap_err();
    assert!(matches!(err, GitError::Refused { .. }), "{err:?}");
}
