//! Git cache (file:// and smart HTTP) and plain-directory rendering against real repositories.

mod common;

use std::time::Duration;

use capstan::git::{Checkout, Credentials, GitError, GitLimits, RepoCache};
use common::drip::DripServer;
use common::git::TestRepo;
use common::git_http::GitHttpServer;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

fn cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = RepoCache::new(dir.path().to_path_buf());
    (dir, cache)
}

fn cache_with(limits: GitLimits) -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = RepoCache::with_limits(dir.path().to_path_buf(), limits);
    (dir, cache)
}

/// The only per-repository directory under `<cache>/checkouts`.
fn checkouts_dir(cache_root: &std::path::Path) -> std::path::PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(cache_root.join("checkouts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

/// Names in `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Points branch `name` at a new commit of `tree` (made with plumbing, as a hostile server could).
fn commit_tree(repo: &TestRepo, tree: &str, name: &str) -> String {
    let commit = repo.git(&["commit-tree", tree, "-m", name]);
    repo.git(&["update-ref", &format!("refs/heads/{name}"), &commit]);
    commit
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
async fn a_new_checkout_links_unchanged_files_and_writes_only_what_changed() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let repo = TestRepo::new();
    repo.write("apps/a/deploy.yaml", DEPLOYMENT)
        .write("apps/b/cm.yaml", "kind: ConfigMap\n")
        .write("run.sh", "#!/bin/sh\n")
        .write("tool.sh", "#!/bin/sh\n")
        .write("moved/x.yaml", "x: 1\n");
    repo.git(&["update-index", "--chmod=+x", "run.sh"]);
    let first = repo.commit("first");
    repo.write("apps/b/cm.yaml", "kind: ConfigMap\ndata: {}\n")
        .remove("moved/x.yaml")
        .write("moved", "now a file\n");
    // The same bytes, executable now: a mode change must not reuse the old file.
    repo.git(&["update-index", "--chmod=+x", "tool.sh"]);
    let second = repo.commit("second");
    let (_dir, cache) = cache();
    let url = repo.file_url();
    let old = cache.checkout(&url, &first, None).await.unwrap();
    let new = cache.checkout(&url, &second, None).await.unwrap();
    let inode =
        |root: &std::path::Path, path: &str| std::fs::metadata(root.join(path)).unwrap().ino();
    assert_eq!(
        inode(&old, "apps/a/deploy.yaml"),
        inode(&new, "apps/a/deploy.yaml")
    );
    assert_eq!(inode(&old, "run.sh"), inode(&new, "run.sh"));
    assert_ne!(inode(&old, "apps/b/cm.yaml"), inode(&new, "apps/b/cm.yaml"));
    assert_ne!(inode(&old, "tool.sh"), inode(&new, "tool.sh"));
    let mode = |root: &std::path::Path, path: &str| {
        std::fs::metadata(root.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&new, "run.sh"), 0o755);
    assert_eq!(mode(&new, "tool.sh"), 0o755);
    assert_eq!(
        mode(&old, "tool.sh"),
        0o644,
        "the old checkout is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(new.join("apps/b/cm.yaml")).unwrap(),
        "kind: ConfigMap\ndata: {}\n"
    );
    assert_eq!(
        std::fs::read_to_string(old.join("apps/b/cm.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
    assert_eq!(
        std::fs::read_to_string(new.join("moved")).unwrap(),
        "now a file\n"
    );
    assert!(old.join("moved/x.yaml").is_file());
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

    // A password in the URL is refused (credentials belong in configuration), unechoed.
    let with_userinfo = url.replace("http://", "http://alice:s3cret@");
    let err = cache
        .resolve(&with_userinfo, "main", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Refused { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cret"));

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

mod render {
    use super::*;
    use capstan::render::{DirectoryOptions, RenderError, render_directory};
    use serde_json::Value;

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    fn names(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// Commits the repository and returns the checkout the worker would render from.
    async fn checkout(repo: &TestRepo) -> (tempfile::TempDir, Checkout) {
        let commit = repo.commit("render test");
        let (dir, cache) = cache();
        let path = cache
            .checkout(&repo.file_url(), &commit, None)
            .await
            .unwrap();
        (dir, path)
    }

    fn opts(recurse: bool, include: Option<&str>, exclude: Option<&str>) -> DirectoryOptions {
        DirectoryOptions {
            recurse,
            include: include.map(str::to_string),
            exclude: exclude.map(str::to_string),
        }
    }

    fn sample() -> TestRepo {
        let repo = TestRepo::new();
        repo.write("app/b.yaml", &format!("{}---\n{}", cm("b1"), cm("b2")));
        repo.write("app/a.yml", &cm("a"));
        repo.write(
            "app/c.json",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"c"}}"#,
        );
        repo.write(
            "app/list.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: l1\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: l2\n",
        );
        repo.write("app/README.md", "not a manifest: [");
        repo.write("app/sub/d.yaml", &cm("d"));
        repo.write("app/sub/deeper/e.yaml", &cm("e"));
        repo
    }

    #[tokio::test]
    async fn renders_yaml_json_and_lists_in_path_order() {
        let repo = sample();
        let (_dir, path) = checkout(&repo).await;
        let objects = render_directory(&path, "app", &opts(false, None, None)).unwrap();
        assert_eq!(names(&objects), ["a", "b1", "b2", "c", "l1", "l2"]);
        assert_eq!(objects[3]["kind"], "Service");
        // The same source with other spellings of the path.
        for spelling in ["./app", "app/", "sub/../app"] {
            let again = render_directory(&path, spelling, &opts(false, None, None)).unwrap();
            assert_eq!(again, objects, "{spelling}");
        }
    }

    #[tokio::test]
    async fn recurse_descends_into_subdirectories() {
        let repo = sample();
        let (_dir, path) = checkout(&repo).await;
        let objects = render_directory(&path, "app", &opts(true, None, None)).unwrap();
        assert_eq!(
            names(&objects),
            ["a", "b1", "b2", "c", "l1", "l2", "d", "e"]
        );
        let root = render_directory(&path, "", &opts(true, None, None)).unwrap();
        assert_eq!(root, objects);
        assert!(
            render_directory(&path, ".", &opts(false, None, None))
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn include_and_exclude_globs_select_files() {
        let repo = sample();
        let (_dir, path) = checkout(&repo).await;
        let only_yaml = render_directory(&path, "app", &opts(true, Some("*.yaml"), None)).unwrap();
        assert_eq!(names(&only_yaml), ["b1", "b2", "l1", "l2", "d", "e"]);
        let set =
            render_directory(&path, "app", &opts(true, Some("{a.yml,c.json}"), None)).unwrap();
        assert_eq!(names(&set), ["a", "c"]);
        let excluded = render_directory(&path, "app", &opts(true, None, Some("sub/*"))).unwrap();
        assert_eq!(names(&excluded), ["a", "b1", "b2", "c", "l1", "l2"]);
        let both = render_directory(
            &path,
            "app",
            &opts(true, Some("*.yaml"), Some("{list.yaml,sub/deeper/*}")),
        )
        .unwrap();
        assert_eq!(names(&both), ["b1", "b2", "d"]);
        let err = render_directory(&path, "app", &opts(true, Some("{a"), None)).unwrap_err();
        assert!(matches!(err, RenderError::InvalidGlob { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_broken_file_fails_the_whole_source_and_names_the_file() {
        let repo = sample();
        repo.write(
            "app/sub/zz-broken.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
        );
        let (_dir, path) = checkout(&repo).await;
        // Not read without recurse.
        assert!(render_directory(&path, "app", &opts(false, None, None)).is_ok());
        let err = render_directory(&path, "app", &opts(true, None, None)).unwrap_err();
        match &err {
            RenderError::Parse { file, message } => {
                assert_eq!(file, "app/sub/zz-broken.yaml");
                assert!(message.contains("line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("app/sub/zz-broken.yaml"));
    }

    #[tokio::test]
    async fn a_document_that_is_not_a_kubernetes_object_is_refused() {
        let repo = TestRepo::new();
        repo.write("m/x.yaml", &format!("{}---\nfoo: bar\n", cm("ok")));
        let (_dir, path) = checkout(&repo).await;
        let err = render_directory(&path, "m", &opts(false, None, None)).unwrap_err();
        assert!(
            matches!(&err, RenderError::NotAnObject { file, index: 1, .. } if file == "m/x.yaml"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn paths_leaving_the_checkout_are_refused() {
        let repo = sample();
        let (_dir, path) = checkout(&repo).await;
        for bad in ["..", "../app", "app/../..", "/etc", "/"] {
            let err = render_directory(&path, bad, &opts(true, None, None)).unwrap_err();
            assert!(
                matches!(err, RenderError::PathEscapes { .. }),
                "{bad}: {err}"
            );
        }
        let err = render_directory(&path, "nope", &opts(true, None, None)).unwrap_err();
        assert!(matches!(err, RenderError::NotFound { .. }), "{err}");
        let err = render_directory(&path, "app/a.yml", &opts(true, None, None)).unwrap_err();
        assert!(matches!(err, RenderError::NotADirectory { .. }), "{err}");
    }

    #[tokio::test]
    async fn symlinks_inside_are_followed_and_symlinks_outside_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.yaml"), cm("stolen")).unwrap();
        let outside_file = outside.path().join("secret.yaml").display().to_string();
        let outside_dir = outside.path().display().to_string();

        let repo = TestRepo::new();
        repo.write("shared/s.yaml", &cm("shared"));
        repo.write("app/own.yaml", &cm("own"));
        repo.symlink("app/link.yaml", "../shared/s.yaml");
        repo.symlink("app/linkdir", "../shared");
        repo.symlink("via-link", "app");
        repo.symlink("escape-file/x.yaml", &outside_file);
        repo.symlink(
            "escape-rel/x.yaml",
            "../../../../../../../../../../etc/hostname.yaml",
        );
        repo.symlink("escape-dir/d", &outside_dir);
        repo.symlink("escape-src", &outside_dir);
        repo.symlink("loop/a.yaml", "b.yaml");
        repo.symlink("loop/b.yaml", "a.yaml");
        repo.symlink("dirloop/self", ".");
        let (_dir, path) = checkout(&repo).await;
        // Links leaving the repository are not even written; recreate them by hand to show
        // that the renderer refuses them on its own as well.
        for (link, target) in [
            ("escape-file/x.yaml", outside_file.as_str()),
            (
                "escape-rel/x.yaml",
                "../../../../../../../../../../etc/hostname.yaml",
            ),
            ("escape-dir/d", outside_dir.as_str()),
            ("escape-src", outside_dir.as_str()),
        ] {
            assert!(path.join(link).symlink_metadata().is_err(), "{link}");
            std::os::unix::fs::symlink(target, path.join(link)).unwrap();
        }

        let objects = render_directory(&path, "app", &opts(true, None, None)).unwrap();
        assert_eq!(names(&objects), ["shared", "shared", "own"]);
        // A source path through a symlink that stays inside is fine.
        let via = render_directory(&path, "via-link", &opts(false, None, None)).unwrap();
        assert_eq!(names(&via), ["shared", "own"]);

        for (source, recurse) in [
            ("escape-file", false),
            ("escape-rel", false),
            ("escape-dir", true),
            ("escape-src", false),
        ] {
            let err = render_directory(&path, source, &opts(recurse, None, None)).unwrap_err();
            assert!(
                matches!(err, RenderError::PathEscapes { .. }),
                "{source}: {err}"
            );
            assert!(!err.to_string().contains("stolen"));
        }
        // Not descending into the outside directory means not reading it.
        assert!(
            render_directory(&path, "escape-dir", &opts(false, None, None))
                .unwrap()
                .is_empty()
        );

        let err = render_directory(&path, "loop", &opts(false, None, None)).unwrap_err();
        assert!(matches!(err, RenderError::SymlinkLoop { .. }), "{err}");
        let err = render_directory(&path, "dirloop", &opts(true, None, None)).unwrap_err();
        assert!(matches!(err, RenderError::SymlinkLoop { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_billion_laughs_file_is_an_error_not_an_oom() {
        let repo = TestRepo::new();
        let mut bomb = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "  a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        repo.write("bomb/lol.yaml", &bomb);
        let (_dir, path) = checkout(&repo).await;
        let err = render_directory(&path, "bomb", &opts(false, None, None)).unwrap_err();
        assert!(
            matches!(&err, RenderError::Parse { file, .. } if file == "bomb/lol.yaml"),
            "{err}"
        );
    }

    #[test]
    fn oversized_files_and_sources_hit_the_budgets() {
        use capstan::render::{Limits, render_directory_with_limits};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), cm("a")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), cm("b")).unwrap();
        let small_file = Limits {
            max_file_bytes: 10,
            ..Limits::default()
        };
        let err =
            render_directory_with_limits(dir.path(), "", &opts(false, None, None), &small_file)
                .unwrap_err();
        assert!(matches!(err, RenderError::TooLarge { .. }), "{err}");
        let small_total = Limits {
            max_total_bytes: cm("a").len() as u64 + 5,
            ..Limits::default()
        };
        let err =
            render_directory_with_limits(dir.path(), "", &opts(false, None, None), &small_total)
                .unwrap_err();
        assert!(matches!(err, RenderError::TooLarge { .. }), "{err}");
        let one_doc = Limits {
            max_documents: 1,
            ..Limits::default()
        };
        assert!(
            render_directory_with_limits(dir.path(), "", &opts(false, None, None), &one_doc)
                .is_err()
        );
        std::fs::write(dir.path().join("c.yaml"), b"\xff\xfe").unwrap();
        let err = render_directory(dir.path(), "", &opts(false, None, None)).unwrap_err();
        assert!(
            matches!(&err, RenderError::Parse { file, .. } if file == "c.yaml"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_fetch_killed_midway_does_not_wedge_the_mirror() {
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    let (dir, cache) = cache();
    let url = repo.file_url();
    cache.resolve(&url, "main", None).await.unwrap();
    // What a SIGKILL during a ref update leaves behind.
    let mirrors: Vec<_> = std::fs::read_dir(dir.path().join("mirrors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(mirrors.len(), 1);
    std::fs::write(mirrors[0].join("refs/heads/main.lock"), "").unwrap();
    std::fs::write(mirrors[0].join("packed-refs.lock"), "").unwrap();
    let second = repo.write("a.yaml", "# two\n").commit("second");
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), second);
    let path = cache.checkout(&url, &second, None).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(path.join("a.yaml")).unwrap(),
        "# two\n"
    );
}

#[tokio::test]
async fn a_tree_entry_that_climbs_out_is_refused_at_checkout() {
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    // Git's porcelain never writes such trees, but a hostile server can serve them.
    let blob = repo.git_with_input(&["hash-object", "-w", "--stdin"], "pwned\n");
    let inner = repo.git_with_input(&["mktree"], &format!("100644 blob {blob}\tescaped.yaml\n"));
    let outer = repo.git_with_input(&["mktree"], &format!("040000 tree {inner}\t..\n"));
    let commit = repo.git(&["commit-tree", &outer, "-m", "evil"]);
    repo.git(&["update-ref", "refs/heads/evil", &commit]);
    let (dir, cache) = cache();
    let url = repo.file_url();
    assert_eq!(cache.resolve(&url, "evil", None).await.unwrap(), commit);
    let err = cache.checkout(&url, &commit, None).await.unwrap_err();
    assert!(matches!(err, GitError::Read { .. }), "{err}");
    assert!(err.to_string().contains("unsafe file name"), "{err}");
    let checkouts = dir.path().join("checkouts");
    let key_dir = std::fs::read_dir(&checkouts)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(!key_dir.join("escaped.yaml").exists());
    assert!(
        !key_dir.join(&commit).exists(),
        "no partial checkout left in place"
    );
}

#[tokio::test]
async fn an_empty_repository_has_no_revisions() {
    let repo = TestRepo::new();
    let (_dir, cache) = cache();
    let err = cache
        .resolve(&repo.file_url(), "HEAD", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_branch_deleted_on_the_remote_no_longer_resolves() {
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    repo.branch("gone");
    let (_dir, cache) = cache();
    let url = repo.file_url();
    let commit = cache.resolve(&url, "gone", None).await.unwrap();
    repo.git(&["branch", "-D", "gone"]);
    let err = cache.resolve(&url, "gone", None).await.unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
    // Its commit is still known by id.
    assert_eq!(cache.resolve(&url, &commit, None).await.unwrap(), commit);
}

#[tokio::test]
async fn checkout_never_writes_through_a_link_in_the_tree() {
    let outside = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    let blob = repo.git_with_input(&["hash-object", "-w", "--stdin"], "pwned\n");
    let inner = repo.git_with_input(&["mktree"], &format!("100644 blob {blob}\tevil.yaml\n"));
    let file_link = repo.git_with_input(
        &["hash-object", "-w", "--stdin"],
        &outside.path().join("evil.yaml").display().to_string(),
    );
    let dir_link = repo.git_with_input(
        &["hash-object", "-w", "--stdin"],
        &outside.path().display().to_string(),
    );
    // A link and a file of one name (the file written through the link), and a link and a
    // directory of one name (the directory's files written through the link).
    let trees = [
        format!("120000 blob {file_link}\tx.yaml\n100644 blob {blob}\tx.yaml\n"),
        format!("120000 blob {dir_link}\td\n040000 tree {inner}\td\n"),
    ];
    let (dir, cache) = cache();
    let url = repo.file_url();
    for (i, listing) in trees.iter().enumerate() {
        let tree = repo.git_with_input(&["mktree"], listing);
        let ls = repo.git(&["ls-tree", &tree]);
        assert!(ls.starts_with("120000"), "the link comes first: {ls}");
        let commit = commit_tree(&repo, &tree, &format!("evil{i}"));
        assert_eq!(
            cache
                .resolve(&url, &format!("evil{i}"), None)
                .await
                .unwrap(),
            commit
        );
        let err = cache.checkout(&url, &commit, None).await.unwrap_err();
        assert!(matches!(err, GitError::Read { .. }), "{err}");
        assert!(err.to_string().contains("two entries named"), "{err}");
        assert!(
            names_in(outside.path()).is_empty(),
            "nothing written outside the checkout"
        );
        assert!(!checkouts_dir(dir.path()).join(&commit).exists());
    }
}

#[tokio::test]
async fn only_files_and_links_inside_the_repository_are_written() {
    let repo = TestRepo::new();
    repo.write("app/deploy.yaml", DEPLOYMENT);
    repo.symlink("app/inner.yaml", "deploy.yaml");
    repo.symlink("app/up.yaml", "../app/deploy.yaml");
    repo.symlink("app/absolute.yaml", "/etc/hostname");
    repo.symlink("app/climbing.yaml", "../../outside.yaml");
    // A gitlink names a commit of another repository, which need not exist here.
    let sub = "1".repeat(40);
    repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub},vendor/sub"),
    ]);
    let commit = repo.commit("links and a submodule");
    let (_dir, cache) = cache();
    let path = cache
        .checkout(&repo.file_url(), &commit, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(path.join("app/inner.yaml")).unwrap(),
        DEPLOYMENT
    );
    assert_eq!(
        std::fs::read_to_string(path.join("app/up.yaml")).unwrap(),
        DEPLOYMENT
    );
    for left_out in ["app/absolute.yaml", "app/climbing.yaml", "vendor/sub"] {
        assert!(
            path.join(left_out).symlink_metadata().is_err(),
            "{left_out} should not be in the checkout"
        );
    }
}

#[tokio::test]
async fn a_git_bomb_is_refused_before_anything_is_written() {
    let repo = TestRepo::new();
    repo.write("a.yaml", DEPLOYMENT).commit("first");
    let commit = repo.git_bomb("bomb");
    let (dir, cache) = cache();
    let url = repo.file_url();
    assert_eq!(cache.resolve(&url, "bomb", None).await.unwrap(), commit);
    let err = cache.checkout(&url, &commit, None).await.unwrap_err();
    assert!(
        matches!(
            &err,
            GitError::CheckoutTooLarge {
                what: "entries",
                limit: 100_000,
                key: "max_checkout_entries",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("git.max_checkout_entries"),
        "{err}"
    );
    assert!(
        names_in(&checkouts_dir(dir.path())).is_empty(),
        "no checkout and no staging directory left behind"
    );
}

#[tokio::test]
async fn checkout_limits_count_entries_and_bytes_exactly() {
    let repo = TestRepo::new();
    repo.write("a.yaml", &"a".repeat(100));
    repo.write("dir/b.yaml", &"b".repeat(100));
    let commit = repo.commit("three entries, 200 bytes");
    let url = repo.file_url();
    let fits = GitLimits {
        max_checkout_entries: 3,
        max_checkout_bytes: 200,
        ..GitLimits::default()
    };
    let (_dir, cache) = cache_with(fits.clone());
    let path = cache.checkout(&url, &commit, None).await.unwrap();
    assert!(path.join("dir/b.yaml").is_file());

    for (limits, what) in [
        (
            GitLimits {
                max_checkout_entries: 2,
                ..fits.clone()
            },
            "entries",
        ),
        (
            GitLimits {
                max_checkout_bytes: 199,
                ..fits.clone()
            },
            "bytes",
        ),
    ] {
        let (_dir, cache) = cache_with(limits);
        let err = cache.checkout(&url, &commit, None).await.unwrap_err();
        assert!(
            matches!(&err, GitError::CheckoutTooLarge { what: w, .. } if *w == what),
            "{what}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_server_is_abandoned_while_other_repositories_fetch() {
    let drip = DripServer::start(Duration::from_secs(1)).await;
    let healthy = TestRepo::new();
    let head = healthy.write("a.yaml", DEPLOYMENT).commit("first");
    let (_dir, cache) = cache_with(GitLimits {
        fetch_timeout: Duration::from_secs(8),
        ..GitLimits::default()
    });
    let stuck = {
        let cache = cache.clone();
        let url = drip.url("stuck.git");
        tokio::spawn(async move { cache.resolve(&url, "main", None).await })
    };
    drip.wait_for_connection().await;
    // The stuck fetch holds its own repository's lock, not the cache's.
    let url = healthy.file_url();
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), head);
    let path = cache.checkout(&url, &head, None).await.unwrap();
    assert!(path.join("a.yaml").is_file());
    assert!(
        !stuck.is_finished(),
        "the healthy repository was served while the other fetch was still stuck"
    );
    let err = stuck.await.unwrap().unwrap_err();
    assert!(matches!(err, GitError::Timeout { secs: 8, .. }), "{err}");
    assert!(err.to_string().contains("git.fetch_timeout_secs"), "{err}");
}

#[tokio::test]
async fn a_dripping_server_fails_checkouts_too() {
    let drip = DripServer::start(Duration::from_secs(1)).await;
    let (_dir, cache) = cache_with(GitLimits {
        fetch_timeout: Duration::from_secs(2),
        ..GitLimits::default()
    });
    let err = cache
        .checkout(&drip.url("stuck.git"), &"a".repeat(40), None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn old_checkouts_are_collected_but_never_one_in_use() {
    let repo = TestRepo::new();
    let (dir, cache) = cache_with(GitLimits {
        checkouts_per_repo: 2,
        ..GitLimits::default()
    });
    let url = repo.file_url();
    let first = repo.write("a.yaml", "# 0\n").commit("0");
    let held = cache.checkout(&url, &first, None).await.unwrap();
    let mut commits = vec![first.clone()];
    for i in 1..6 {
        let commit = repo
            .write("a.yaml", &format!("# {i}\n"))
            .commit(&i.to_string());
        let path = cache.checkout(&url, &commit, None).await.unwrap();
        assert!(path.join("a.yaml").is_file());
        commits.push(commit);
    }
    let mut expected = vec![first.clone(), commits[4].clone(), commits[5].clone()];
    expected.sort();
    let key_dir = checkouts_dir(dir.path());
    assert_eq!(
        names_in(&key_dir),
        expected,
        "two newest plus the one in use"
    );
    assert_eq!(
        std::fs::read_to_string(held.join("a.yaml")).unwrap(),
        "# 0\n"
    );

    // Reusing a checkout makes it the newest again; released ones go at the next collection.
    drop(held);
    let again = cache.checkout(&url, &commits[4], None).await.unwrap();
    let last = repo.write("a.yaml", "# 6\n").commit("6");
    cache.checkout(&url, &last, None).await.unwrap();
    let mut expected = vec![commits[4].clone(), last.clone()];
    expected.sort();
    assert_eq!(names_in(&key_dir), expected);
    assert_eq!(
        std::fs::read_to_string(again.join("a.yaml")).unwrap(),
        "# 4\n"
    );
}
