//! Git cache (file:// and smart HTTP) and plain-directory rendering against real repositories.

mod common;

use capstan::git::{Credentials, GitError, RepoCache};
use common::git::TestRepo;
use common::git_http::GitHttpServer;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

fn cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = RepoCache::new(dir.path().to_path_buf());
    (dir, cache)
}

#[tokio::test]
async fn resolves_branches_tags_refs_head_and_shas_over_file_urls() {
    let repo = TestRepo::new();
    let first = repo.write("a.yaml", DEPLOYMENT).commit("first");
    repo.tag("v1").lightweight_tag("light");
    repo.switch("feature");
    let feature = repo.write("b.yaml", DEPLOYMENT).commit("feature work");
    repo.switch("main");
    let (_dir, cache) = cache();
    let url = repo.file_url();

    assert_eq!(cache.resolve(&url, "", None).await.unwrap(), first);
    assert_eq!(cache.resolve(&url, "HEAD", None).await.unwrap(), first);
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), first);
    assert_eq!(cache.resolve(&url, "feature", None).await.unwrap(), feature);
    assert_eq!(
        cache
            .resolve(&url, "refs/heads/feature", None)
            .await
            .unwrap(),
        feature
    );
    // An annotated tag resolves to the commit it points at, not to the tag object.
    assert_eq!(cache.resolve(&url, "v1", None).await.unwrap(), first);
    assert_eq!(
        cache.resolve(&url, "refs/tags/v1", None).await.unwrap(),
        first
    );
    assert_eq!(cache.resolve(&url, "light", None).await.unwrap(), first);
    assert_eq!(cache.resolve(&url, &feature, None).await.unwrap(), feature);
    // A plain path works like file://.
    let path = repo.path().display().to_string();
    assert_eq!(
        cache.resolve(&path, "feature", None).await.unwrap(),
        feature
    );
}

#[tokio::test]
async fn a_new_commit_is_seen_by_the_next_resolve() {
    let repo = TestRepo::new();
    let first = repo.write("a.yaml", DEPLOYMENT).commit("first");
    let (_dir, cache) = cache();
    let url = repo.file_url();
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), first);
    let second = repo.write("a.yaml", "# changed\n").commit("second");
    assert_ne!(first, second);
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), second);
    assert_eq!(cache.resolve(&url, "HEAD", None).await.unwrap(), second);
}

#[tokio::test]
async fn a_missing_revision_is_reported_as_not_found() {
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    let (_dir, cache) = cache();
    let url = repo.file_url();
    for revision in ["nope", "refs/heads/nope", "refs/tags/main", &"0".repeat(40)] {
        let err = cache.resolve(&url, revision, None).await.unwrap_err();
        assert!(
            matches!(&err, GitError::RevisionNotFound { revision: r } if r == revision),
            "{revision}: {err}"
        );
        assert!(err.to_string().contains(revision));
    }
}

#[tokio::test]
async fn an_unreachable_repository_is_a_fetch_error() {
    let (_dir, cache) = cache();
    let missing = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}/absent", missing.path().display());
    let err = cache.resolve(&url, "main", None).await.unwrap_err();
    assert!(matches!(err, GitError::Fetch(_)), "{err}");
}

#[tokio::test]
async fn checkout_writes_the_tree_of_the_commit_and_reuses_it() {
    let repo = TestRepo::new();
    repo.write("apps/web/deploy.yaml", DEPLOYMENT);
    repo.write("README.md", "hello\n");
    repo.symlink("apps/link.yaml", "web/deploy.yaml");
    let first = repo.commit("first");
    let second = repo.remove("README.md").commit("second");
    let (_dir, cache) = cache();
    let url = repo.file_url();

    // Checkout of a commit the mirror has never seen fetches it.
    let old = cache.checkout(&url, &first, None).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(old.join("apps/web/deploy.yaml")).unwrap(),
        DEPLOYMENT
    );
    assert_eq!(
        std::fs::read_to_string(old.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_link(old.join("apps/link.yaml")).unwrap(),
        std::path::Path::new("web/deploy.yaml")
    );
    assert!(!old.join(".git").exists());

    let new = cache.checkout(&url, &second, None).await.unwrap();
    assert_ne!(old, new);
    assert!(!new.join("README.md").exists());
    assert!(old.join("README.md").exists(), "old checkout untouched");

    // The repository may vanish: a known commit needs no remote.
    drop(repo);
    assert_eq!(cache.checkout(&url, &first, None).await.unwrap(), old);
}

#[tokio::test]
async fn checkout_of_an_unknown_commit_is_not_found() {
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    let (_dir, cache) = cache();
    let err = cache
        .checkout(&repo.file_url(), &"1".repeat(40), None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
    let err = cache
        .checkout(&repo.file_url(), "main", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resolves_and_checkouts_of_one_url_agree() {
    let repo = TestRepo::new();
    let head = repo.write("a.yaml", DEPLOYMENT).commit("first");
    let (_dir, cache) = cache();
    let url = repo.file_url();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let cache = cache.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let commit = cache.resolve(&url, "main", None).await?;
            let path = cache.checkout(&url, &commit, None).await?;
            Ok::<_, GitError>((commit, path))
        }));
    }
    let mut paths = Vec::new();
    for task in tasks {
        let (commit, path) = task.await.unwrap().unwrap();
        assert_eq!(commit, head);
        paths.push(path);
    }
    paths.dedup();
    assert_eq!(paths.len(), 1);
    assert!(paths[0].join("a.yaml").is_file());
}

#[tokio::test]
async fn smart_http_with_basic_auth() {
    let repo = TestRepo::new();
    let head = repo.write("a.yaml", DEPLOYMENT).commit("first");
    let server = GitHttpServer::start(repo.root(), Some(("alice", "s3cret")));
    let url = server.url_for(&repo.name());
    let (_dir, cache) = cache();
    let good = Credentials::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    assert_eq!(
        cache.resolve(&url, "main", Some(&good)).await.unwrap(),
        head
    );
    let checkout = cache.checkout(&url, &head, Some(&good)).await.unwrap();
    assert!(checkout.join("a.yaml").is_file());

    // Credentials in the URL work too and never show up in errors.
    let with_userinfo = url.replace("http://", "http://alice:s3cret@");
    assert_eq!(
        cache.resolve(&with_userinfo, "main", None).await.unwrap(),
        head
    );

    let bad = Credentials::Basic {
        username: "alice".into(),
        password: "wrong-password".into(),
    };
    let err = cache.resolve(&url, "main", Some(&bad)).await.unwrap_err();
    assert!(matches!(err, GitError::Auth), "{err}");
    assert!(!err.to_string().contains("wrong-password"));
    assert!(err.to_string().contains("authentication"));

    let err = cache.resolve(&url, "main", None).await.unwrap_err();
    assert!(matches!(err, GitError::Auth), "{err}");

    let bad_userinfo = url.replace("http://", "http://alice:leaked@");
    let err = cache
        .resolve(&bad_userinfo, "main", None)
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("leaked"));

    let err = cache
        .resolve(&url, "main", Some(&Credentials::Token("tok".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Auth), "{err}");
}

#[tokio::test]
async fn smart_http_without_auth_sees_new_commits_and_missing_revisions() {
    let repo = TestRepo::new();
    let first = repo.write("a.yaml", DEPLOYMENT).commit("first");
    let server = GitHttpServer::start(repo.root(), None);
    let url = server.url_for(&repo.name());
    let (_dir, cache) = cache();
    assert_eq!(cache.resolve(&url, "HEAD", None).await.unwrap(), first);
    let second = repo.write("b.yaml", DEPLOYMENT).commit("second");
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), second);
    let err = cache.resolve(&url, "nope", None).await.unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
    let err = cache
        .resolve(&server.url_for("absent"), "main", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Fetch(_)), "{err}");
}

#[tokio::test]
async fn smart_http_with_a_bearer_token() {
    let repo = TestRepo::new();
    let head = repo.write("a.yaml", DEPLOYMENT).commit("first");
    let server = GitHttpServer::start_with_bearer(repo.root(), "t0ken");
    let url = server.url_for(&repo.name());
    let (_dir, cache) = cache();
    let token = Credentials::Token("t0ken".into());
    assert_eq!(
        cache.resolve(&url, "main", Some(&token)).await.unwrap(),
        head
    );
    let wrong = Credentials::Token("other".into());
    let err = cache.resolve(&url, "main", Some(&wrong)).await.unwrap_err();
    assert!(matches!(err, GitError::Auth), "{err}");
    assert!(!format!("{err} {err:?}").contains("other"));
}
