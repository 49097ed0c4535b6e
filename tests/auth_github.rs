//! GitHub login end to end: a person signs in through a local GitHub (tests/common/github_api.rs,
//! the documented OAuth and REST endpoints over HTTPS with a private CA, as a GitHub Enterprise
//! Server would be), driven as a browser would with reqwest (cookie jar, redirects), then uses the
//! session on the REST API: team groups map to a role, an allowed sync runs, a forbidden one is
//! refused with the reason, logout ends the session. Forged, replayed and refused logins too.

mod common;
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use common::github_api::{GithubApi, GithubUser};
use helpers::*;

/// A Capstan whose `[auth.github]` points at a fake GitHub.
struct Setup {
    app: TestApp,
    gh: GithubApi,
    _ca_dir: tempfile::TempDir,
}

/// Who may do what in these tests: deployers may sync `web` only; viewers may only look.
const POLICY: &str = "p, role:deployer, applications, get, default/*, allow
p, role:deployer, applications, sync, default/web, allow
g, acme:deployers, role:deployer
g, acme:viewers, role:readonly";

/// Starts a fake GitHub holding `users` and a Capstan that signs people in there, admitting
/// members of the teams `acme:deployers` and `acme:viewers`.
async fn capstan_with_github(users: Vec<GithubUser>) -> Setup {
    capture_logs();
    // The OAuth App's callback URL names Capstan's port, so the port is chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let gh = GithubApi::start(&format!("{address}/auth/github/callback"), users);
    let ca_dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca_dir.path().join("ghes-ca.pem");
    std::fs::write(&ca_file, &gh.ca_pem).expect("write the CA");
    let config_toml = format!(
        r#"
[auth.github]
client_id = {id:?}
redirect_url = "{address}/auth/github/callback"
github_url = {url:?}
api_url = {api:?}
ca_file = {ca:?}

[[auth.github.orgs]]
name = "acme"
teams = ["deployers", "viewers"]

[rbac]
policy_csv = """
{POLICY}
"""
"#,
        id = gh.client_id,
        url = gh.url,
        api = gh.api_url,
        ca = ca_file.display().to_string(),
    );
    let app = spawn_app(Options {
        extra_toml: config_toml,
        extra_env: vec![
            (
                "CAPSTAN__SERVER__LISTEN".into(),
                format!("127.0.0.1:{port}"),
            ),
            (
                "CAPSTAN__AUTH__GITHUB__CLIENT_SECRET".into(),
                gh.client_secret.clone(),
            ),
        ],
        ..Options::default()
    })
    .await;
    assert_eq!(app.address, address);
    Setup {
        app,
        gh,
        _ca_dir: ca_dir,
    }
}

/// Every log line this test binary's Capstans write, as the `capstan serve` console shows them.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Appends to [`LOGS`].
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing logs (once per binary).
fn capture_logs() {
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,capstan=debug")
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        logs
    });
}

/// What was logged so far.
fn logged() -> String {
    let logs = LOGS.get().expect("logs are captured");
    String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned()
}

/// A browser: a cookie jar, the fake GitHub's CA trusted, and redirects followed (or not).
fn browser(gh: &GithubApi, follow: bool) -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .tls_certs_merge(
            reqwest::Certificate::from_pem_bundle(gh.ca_pem.as_bytes()).expect("CA pem"),
        )
        .redirect(if follow {
            Policy::limited(10)
        } else {
            Policy::none()
        })
        .timeout(Duration::from_secs(30))
        .build()
        .expect("browser");
    (client, jar)
}

/// The `capstan_session` cookie `jar` holds for `app`, as a `Cookie` header value.
fn session_cookie(app: &TestApp, jar: &Jar) -> Option<String> {
    let url = reqwest::Url::parse(&app.address).expect("url");
    let cookies = jar.cookies(&url)?;
    let cookies = cookies.to_str().expect("ascii").to_owned();
    cookies
        .split("; ")
        .find(|c| c.starts_with("capstan_session="))
        .map(str::to_owned)
}

/// The CSRF token a page renders for its session.
fn csrf_in(page: &str) -> String {
    let marker = r#"<meta name="csrf-token" content=""#;
    let start = page.find(marker).expect("the page carries the CSRF token") + marker.len();
    page[start..start + 64].to_owned()
}

/// The error a login page shows.
fn login_error(page: &str) -> &str {
    let start = page
        .find(r#"id="login-error""#)
        .expect("the page shows an error");
    let end = page[start..].find("</p>").map_or(page.len(), |e| start + e);
    &page[start..end]
}

/// Signs `login` in to GitHub in a fresh browser and follows "Log in via GitHub" to the end.
async fn github_login(
    setup: &Setup,
    login: &str,
) -> (reqwest::Response, reqwest::Client, Arc<Jar>) {
    let (client, jar) = browser(&setup.gh, true);
    setup.gh.sign_in(&client, login).await;
    let resp = client
        .get(format!("{}/auth/github/login", setup.app.address))
        .send()
        .await
        .expect("login through GitHub");
    (resp, client, jar)
}

/// Alice: in `acme` and `bigcorp`, and in 100 teams of `bigcorp` before `acme:deployers`, so
/// the team that matters is on the second page of `/user/teams`.
fn alice() -> GithubUser {
    let mut alice = GithubUser::new("alice", &["bigcorp", "acme"], &[]);
    alice.teams = (0..100)
        .map(|i| ("bigcorp".to_owned(), format!("team-{i:03}")))
        .collect();
    alice.teams.push(("acme".into(), "deployers".into()));
    alice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_team_maps_to_a_role_that_may_sync_one_app_but_not_another_until_logout() {
    let setup = capstan_with_github(vec![alice()]).await;
    let app = &setup.app;
    app.repo.write("web/cm.yaml", &config_map("web", "1"));
    app.repo.write("db/cm.yaml", &config_map("db", "1"));
    app.repo.commit("two apps");
    assert_eq!(app.create_app("web", "web", None).await.status(), 201);
    assert_eq!(app.create_app("db", "db", None).await.status(), 201);

    let (client, _) = browser(&setup.gh, true);
    let login_page = client
        .get(format!("{}/login", app.address))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("text");
    assert!(
        login_page.contains(r#"href="/auth/github/login""#)
            && login_page.contains("Log in via GitHub"),
        "the login page offers GitHub: {login_page}"
    );

    let (landed, client, jar) = github_login(&setup, "alice").await;
    assert_eq!(landed.status(), 200);
    assert_eq!(landed.url().as_str(), format!("{}/", app.address));
    let csrf = csrf_in(&landed.text().await.expect("page"));
    assert_eq!(setup.gh.exchanges(), 1);

    let me: Value = client
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    // Only the allowlisted organisation gives groups; the team came from the second page.
    assert_eq!(
        me,
        json!({ "loggedIn": true, "username": "alice", "groups": ["acme", "acme:deployers"], "iss": "github" })
    );

    let sync = |name: &str| {
        client
            .post(format!(
                "{}/api/v1/applications/{APP_NAMESPACE}/{name}/sync",
                app.address
            ))
            .header("x-csrf-token", &csrf)
            .send()
    };
    let allowed = sync("web").await.expect("sync web");
    assert!(
        allowed.status().is_success(),
        "alice may sync web: {} {}",
        allowed.status(),
        allowed.text().await.unwrap_or_default()
    );
    app.wait_app("web", 60, "synced, as alice", |a| {
        a.pointer("/status/operationState/phase") == Some(&json!("Succeeded"))
            && a.pointer("/status/operationState/initiatedBy/username") == Some(&json!("alice"))
    })
    .await;
    assert!(app.config_map("web").await.is_some(), "web was applied");

    let logs = logged();
    assert!(
        logs.contains("UI login") && logs.contains("user=alice"),
        "the login is logged: {logs}"
    );
    for secret in setup.gh.secrets() {
        assert!(
            !logs.contains(&secret),
            "a log line carries a GitHub code, token or the client secret"
        );
    }

    let refused = sync("db").await.expect("sync db");
    assert_eq!(refused.status(), 403);
    let reason = refused.text().await.expect("text");
    assert!(
        reason.contains("permission denied: applications, sync, default/db, sub: alice"),
        "{reason}"
    );
    assert!(app.config_map("db").await.is_none(), "db was applied");

    let kept = session_cookie(app, &jar).expect("the browser holds a session");
    let out = client
        .post(format!("{}/logout", app.address))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.url().path(), "/login");
    assert!(
        session_cookie(app, &jar).is_none(),
        "logout clears the cookie"
    );
    // Someone who kept the old cookie gets nothing with it.
    let stale = reqwest::Client::new()
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .header("cookie", &kept)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(stale.status(), 401);
    let stale_sync = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/applications/{APP_NAMESPACE}/web/sync",
            app.address
        ))
        .header("cookie", &kept)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("sync");
    assert_eq!(stale_sync.status(), 401);
}

/// What a browser that stops at each redirect sees of one login: the state cookie's header and
/// the callback URL GitHub sent it back to.
async fn start_login(setup: &Setup, client: &reqwest::Client) -> (String, String) {
    let start = client
        .get(format!("{}/auth/github/login", setup.app.address))
        .send()
        .await
        .expect("login");
    assert_eq!(start.status(), 303);
    let set_cookie = start.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let to_github = start.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        to_github.starts_with(&format!("{}/login/oauth/authorize?", setup.gh.url)),
        "{to_github}"
    );
    let back = client.get(&to_github).send().await.expect("authorize");
    assert_eq!(back.status(), 302, "GitHub sends the browser back");
    let callback = back.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        callback.starts_with(&format!("{}/auth/github/callback?code=", setup.app.address)),
        "{callback}"
    );
    (set_cookie, callback)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_wrong_or_replayed_state_a_bad_code_or_a_github_refusal_opens_no_session() {
    let mut dora = GithubUser::new("dora", &["acme"], &[("acme", "deployers")]);
    dora.declines = true;
    let mut sam = GithubUser::new("sam", &["acme"], &[("acme", "deployers")]);
    sam.suspended = true;
    let setup = capstan_with_github(vec![alice(), dora, sam]).await;
    let app = &setup.app;
    let (a, a_jar) = browser(&setup.gh, false);
    let (b, b_jar) = browser(&setup.gh, false);
    setup.gh.sign_in(&a, "alice").await;
    setup.gh.sign_in(&b, "alice").await;
    let (a_cookie, a_callback) = start_login(&setup, &a).await;
    for flag in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/auth/github/callback",
        "Max-Age=600",
    ] {
        assert!(
            a_cookie.contains(flag),
            "state cookie lacks {flag}: {a_cookie}"
        );
    }
    let a_state = a_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("capstan_github_state="))
        .expect("the state cookie")
        .to_owned();
    assert!(
        a_callback.contains(&format!("state={a_state}")),
        "GitHub echoes the state"
    );
    let _ = start_login(&setup, &b).await;

    let refused = |resp: reqwest::Response, status: u16, says: &'static str| async move {
        assert_eq!(resp.status(), status);
        assert!(
            !resp.headers().get_all("set-cookie").iter().any(|c| c
                .to_str()
                .unwrap_or_default()
                .starts_with("capstan_session=")),
            "a refused login set a session cookie"
        );
        let page = resp.text().await.expect("page");
        assert!(login_error(&page).contains(says), "{page}");
    };

    // Another browser, without the cookie (a login CSRF: someone else's code pushed on us).
    let stranger = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let missing = stranger.get(&a_callback).send().await.expect("callback");
    refused(missing, 400, "not started in this browser").await;
    // A browser with a state of its own.
    let wrong = b.get(&a_callback).send().await.expect("callback");
    refused(wrong, 400, "does not belong to this browser").await;
    assert_eq!(setup.gh.exchanges(), 0, "a refused state reached GitHub");
    assert!(session_cookie(app, &b_jar).is_none());

    // The right browser gets in, and forgets the state.
    let ok = a.get(&a_callback).send().await.expect("callback");
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/");
    assert!(session_cookie(app, &a_jar).is_some());
    let cleared = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("capstan_github_state="))
        .expect("the state cookie is cleared")
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(setup.gh.exchanges(), 1);

    // Replayed by someone who kept both the cookie and the URL.
    let replay = stranger
        .get(&a_callback)
        .header("cookie", format!("capstan_github_state={a_state}"))
        .send()
        .await
        .expect("callback");
    refused(replay, 400, "already used").await;
    assert_eq!(setup.gh.exchanges(), 1, "a replay reached GitHub");

    // A code GitHub does not know: GitHub's refusal, in words.
    let (c, c_jar) = browser(&setup.gh, false);
    setup.gh.sign_in(&c, "alice").await;
    let (_, c_callback) = start_login(&setup, &c).await;
    let mut forged = reqwest::Url::parse(&c_callback).expect("url");
    let state = forged
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", "0123456789abcdef0123")
        .append_pair("state", &state);
    let bad_code = c.get(forged.as_str()).send().await.expect("callback");
    refused(
        bad_code,
        401,
        "GitHub refused the login: The code passed is incorrect or expired. (bad_verification_code)",
    )
    .await;
    assert!(session_cookie(app, &c_jar).is_none());

    // A person who clicks "Cancel" on GitHub.
    let (declined, _, dora_jar) = github_login(&setup, "dora").await;
    refused(
        declined,
        401,
        "The user has denied your application access.",
    )
    .await;
    assert!(session_cookie(app, &dora_jar).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_allowed_teams_sign_in_and_a_local_account_name_is_refused() {
    let setup = capstan_with_github(vec![
        GithubUser::new("mallory", &["evil"], &[("evil", "deployers")]),
        GithubUser::new("bob", &["acme"], &[("acme", "qa")]),
        // Membership of acme is private: only the team says so.
        GithubUser::new("carol", &[], &[("acme", "viewers"), ("other", "x")]),
        GithubUser::new("admin", &["acme"], &[("acme", "deployers")]),
    ])
    .await;
    let app = &setup.app;
    for outsider in ["mallory", "bob"] {
        let (resp, _, jar) = github_login(&setup, outsider).await;
        assert_eq!(resp.status(), 403, "{outsider}");
        let page = resp.text().await.expect("page");
        let error = login_error(&page);
        assert!(
            error.contains(&format!(
                "signed in to GitHub as {outsider}, who is not a member of an organisation or team allowed"
            )),
            "{page}"
        );
        assert!(!page.contains("viewers"), "the page reveals the allowlist");
        assert!(
            session_cookie(app, &jar).is_none(),
            "{outsider} got a session"
        );
    }

    let (resp, _, jar) = github_login(&setup, "admin").await;
    assert_eq!(resp.status(), 403);
    let page = resp.text().await.expect("page");
    assert!(
        login_error(&page).contains("has the name of a local Capstan account"),
        "{page}"
    );
    assert!(
        session_cookie(app, &jar).is_none(),
        "GitHub's admin became Capstan's"
    );

    let (landed, client, _) = github_login(&setup, "carol").await;
    assert_eq!(landed.status(), 200);
    let me: Value = client
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "carol");
    assert_eq!(me["groups"], json!(["acme", "acme:viewers"]));
    // role:readonly through acme:viewers: reading works.
    let list = client
        .get(format!("{}/api/v1/applications", app.address))
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
}
