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
    use std::path::PathBuf;

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
    async fn checkout(repo: &TestRepo) -> (tempfile::TempDir, PathBuf) {
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
