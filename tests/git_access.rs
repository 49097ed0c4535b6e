//! Who gets to see Git credentials and cached commits: credential scopes as they reach the wire,
//! redirects, the credential-keyed cache, and the repository URL policy.

mod common;
// The end-to-end harness (sandbox cluster, RabbitMQ, Git over HTTP), for the worker's view.
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use capstan::git::{Credentials, GitCredentials, GitError, GitPolicy, RepoCache};
use common::git::TestRepo;
use common::git_http::GitHttpServer;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

/// How the recording listener answers every request.
#[derive(Clone)]
enum Answer {
    /// 401 with a Basic challenge, as a Git server wanting credentials.
    Challenge,
    /// 302 to the same path and query under this base URL.
    RedirectTo(String),
}

/// The `Authorization` header of each request received, in order.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// An HTTP listener on 127.0.0.1 that records the `Authorization` header of every request.
struct Recorder {
    addr: SocketAddr,
    seen: Seen,
    handle: actix_web::dev::ServerHandle,
}

impl Recorder {
    fn start(answer: Answer) -> Recorder {
        let seen: Seen = Arc::default();
        let state = web::Data::new((seen.clone(), answer));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind recorder");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Recorder { addr, seen, handle }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.seen.lock().expect("recorder lock").len()
    }

    fn authorizations(&self) -> Vec<String> {
        let seen = self.seen.lock().expect("recorder lock");
        seen.iter().flatten().cloned().collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stop);
        }
    }
}

async fn record(req: HttpRequest, state: web::Data<(Seen, Answer)>) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    state.0.lock().expect("recorder lock").push(auth);
    match &state.1 {
        Answer::Challenge => HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"git\""))
            .body("authentication required"),
        Answer::RedirectTo(base) => {
            let target = match req.uri().path_and_query() {
                Some(pq) => format!("{base}{pq}"),
                None => base.clone(),
            };
            HttpResponse::Found()
                .insert_header(("Location", target))
                .finish()
        }
    }
}

fn cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = RepoCache::new(dir.path().to_path_buf());
    (dir, cache)
}

fn basic(username: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: username.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn credentials_reach_only_their_own_scope_on_the_wire() {
    let listener = Recorder::start(Answer::Challenge);
    let port = listener.addr.port();
    let mut creds = GitCredentials::new();
    creds
        .add(
            "https://git.example.com/",
            Credentials::Token("https-token".into()),
        )
        .unwrap();
    // Written without a trailing slash, as operators often do.
    creds
        .add("http://git.example.com", basic("capstan", "http-password"))
        .unwrap();
    creds
        .add(
            "http://127.0.0.1/",
            Credentials::Token("port-80-token".into()),
        )
        .unwrap();
    creds
        .add(
            &format!("http://127.0.0.1:{port}/org"),
            Credentials::Token("org-token".into()),
        )
        .unwrap();

    // Look-alike hosts cannot be reached from here; the rule alone must refuse them.
    for url in [
        "https://git.example.com.evil.test/team/repo",
        "http://git.example.com.evil.test/team/repo",
        "https://git.example.com@evil.test/team/repo",
    ] {
        assert!(creds.for_url(url).is_none(), "{url}");
    }

    let (_dir, cache) = cache();
    for url in [
        // The configured host as userinfo; the request goes to 127.0.0.1.
        format!("http://git.example.com@127.0.0.1:{port}/team/repo"),
        // Same host, another port than the scope's (80).
        format!("http://127.0.0.1:{port}/team/repo"),
        // `/org` is a prefix of `/organisation` as a string, not as a path.
        format!("http://127.0.0.1:{port}/organisation/repo"),
    ] {
        let err = cache
            .resolve(&url, "main", creds.for_url(&url))
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Auth), "{url}: {err}");
    }
    assert!(listener.requests() >= 3, "every URL reached the listener");
    assert_eq!(
        listener.authorizations(),
        Vec::<String>::new(),
        "no credentials on the wire"
    );

    // The listener does see credentials that belong to it.
    let own = format!("http://127.0.0.1:{port}/org/repo");
    let _ = cache.resolve(&own, "main", creds.for_url(&own)).await;
    assert_eq!(listener.authorizations(), vec!["Bearer org-token"]);
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_host() {
    let elsewhere = Recorder::start(Answer::Challenge);
    let origin = Recorder::start(Answer::RedirectTo(elsewhere.base()));
    let url = format!("{}/org/repo", origin.base());
    let (_dir, cache) = cache();
    for creds in [
        basic("capstan", "redirected-password"),
        Credentials::Token("redirected-token".into()),
    ] {
        let err = cache.resolve(&url, "main", Some(&creds)).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains("redirected-"), "{err}");
    }
    assert!(origin.requests() >= 2, "both fetches started at the origin");
    // With a fetch deadline set, gix refuses redirects altogether; should it ever follow one,
    // the other host must still get no credentials.
    assert_eq!(
        elsewhere.authorizations(),
        Vec::<String>::new(),
        "the other host got no credentials"
    );
}

#[tokio::test]
async fn cached_commits_are_served_only_to_credentials_that_can_read_them() {
    let repo = TestRepo::new();
    let head = repo.write("a.yaml", DEPLOYMENT).commit("first");
    let server = GitHttpServer::start(repo.root(), Some(("alice", "s3cret")));
    let url = server.url_for(&repo.name());
    let (_dir, cache) = cache();
    let alice = basic("alice", "s3cret");
    assert_eq!(
        cache.resolve(&url, "main", Some(&alice)).await.unwrap(),
        head
    );
    let checkout = cache.checkout(&url, &head, Some(&alice)).await.unwrap();
    assert!(checkout.join("a.yaml").is_file());

    // Another app asks for the very commit already in the cache, by full SHA, under spellings
    // of the same repository, without credentials or with wrong ones.
    let wrong = basic("alice", "guess");
    for spelling in [url.clone(), format!("{url}/"), format!("{url}.git")] {
        for creds in [None, Some(&wrong)] {
            let err = cache.resolve(&spelling, &head, creds).await.unwrap_err();
            assert!(matches!(err, GitError::Auth), "resolve {spelling}: {err}");
            let err = cache.checkout(&spelling, &head, creds).await.unwrap_err();
            assert!(matches!(err, GitError::Auth), "checkout {spelling}: {err}");
        }
    }

    // The app whose credentials fetched it is still served (from the cache).
    assert_eq!(
        cache.resolve(&url, &head, Some(&alice)).await.unwrap(),
        head
    );
    assert_eq!(
        cache.checkout(&url, &head, Some(&alice)).await.unwrap(),
        checkout
    );
}

#[tokio::test]
async fn repository_url_policy_is_enforced_before_any_access() {
    let allowed = TestRepo::new();
    let head = allowed.write("a.yaml", DEPLOYMENT).commit("first");
    let outside = TestRepo::new();
    outside.write("a.yaml", DEPLOYMENT).commit("secret stuff");
    std::os::unix::fs::symlink(outside.path(), allowed.root().join("link")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(dir.path().to_path_buf())
        .with_policy(GitPolicy::local_roots(vec![allowed.root().to_path_buf()]));
    assert_eq!(
        cache
            .resolve(&allowed.file_url(), "main", None)
            .await
            .unwrap(),
        head
    );
    let escape_by_dots = format!(
        "{}/../{}/repo",
        allowed.root().display(),
        outside
            .root()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );
    for url in [
        outside.file_url(),
        outside.path().display().to_string(),
        format!("file://{}/link", allowed.root().display()),
        escape_by_dots,
    ] {
        let err = cache.resolve(&url, "main", None).await.unwrap_err();
        assert!(matches!(err, GitError::Refused { .. }), "{url}: {err}");
        assert!(err.to_string().contains("allowed_local_roots"), "{err}");
    }

    // With no root listed (a real cluster's default) nothing local is read, not even the
    // cache directory is created.
    let strict_dir = tempfile::tempdir().unwrap();
    let strict = RepoCache::new(strict_dir.path().join("cache"))
        .with_policy(GitPolicy::local_roots(Vec::new()));
    let err = strict
        .resolve(&allowed.file_url(), "main", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Refused { .. }), "{err}");

    // A password in the URL is refused before anything goes on the wire.
    let listener = Recorder::start(Answer::Challenge);
    let with_password = format!("http://alice:hunter2@{}/org/repo", listener.addr);
    let err = strict
        .resolve(&with_password, "main", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("password"), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    assert_eq!(listener.requests(), 0);
    assert!(!strict_dir.path().join("cache").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_repo_url_is_an_invalid_spec_condition_and_nothing_is_applied() {
    let app = helpers::spawn_app(helpers::Options::default()).await;
    app.repo
        .write("app/cm.yaml", &helpers::config_map("from-git", "x"));
    app.repo.commit("one config map");
    let spec = |repo_url: &str| {
        serde_json::json!({
            "project": "default",
            "source": { "repoURL": repo_url, "path": "app", "targetRevision": "main" },
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
            "syncPolicy": { "automated": { "prune": false, "selfHeal": false } },
        })
    };
    let with_password = app.repo_url.replace(
        "http://",
        &format!("http://{}:{}@", helpers::GIT_USER, helpers::GIT_PASSWORD),
    );
    // This Capstan runs against a kubeconfig cluster with no allowed_local_roots.
    let cases = [
        ("with-password", with_password, "password"),
        ("local", app.repo.file_url(), "allowed_local_roots"),
    ];
    for (name, repo_url, rule) in cases {
        if rule == "password" {
            // The API refuses to store it; someone with kubectl access can still create it.
            let refused = app.create_app_with(name, spec(&repo_url)).await;
            assert_eq!(refused.status(), 422);
            app.apply_app(helpers::APP_NAMESPACE, name, spec(&repo_url))
                .await;
        } else {
            assert_eq!(
                app.create_app_with(name, spec(&repo_url)).await.status(),
                201
            );
        }
        let state = app
            .wait_app(name, 30, "an InvalidSpecError condition", |a| {
                a.pointer("/status/conditions")
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "InvalidSpecError"))
            })
            .await;
        let status = state["status"].to_string();
        assert!(status.contains(rule), "{name}: {status}");
        assert!(!status.contains(helpers::GIT_PASSWORD), "{name}: {status}");
    }
    assert!(
        app.config_map("from-git").await.is_none(),
        "nothing applied"
    );
}
