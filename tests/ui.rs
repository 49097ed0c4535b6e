//! The web UI: the browser session (login, CSRF, logout) over plain HTTP, then scenarios in a
//! real headless chromium driven over WebDriver (Debian's chromium and chromium-driver, installed
//! by scripts/install-tools when missing). Each test has its own Capstan, sandbox and repository.

mod common;
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use common::child::ChildGuard;
use helpers::*;

/// An HTTP client that shows redirects instead of following them, with a timeout.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// `POST /login` with `token`.
async fn login(app: &TestApp, token: &str) -> reqwest::Response {
    http()
        .post(format!("{}/login", app.address))
        .form(&[("token", token)])
        .send()
        .await
        .expect("login request")
}

/// The `capstan_session=…` pair a successful login set.
fn session_cookie(resp: &reqwest::Response) -> String {
    let set = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("capstan_session="))
        .expect("login sets the session cookie");
    set.split(';').next().expect("cookie pair").to_owned()
}

/// The CSRF token a page renders for the session.
async fn csrf_of(app: &TestApp, cookie: &str) -> String {
    let page = http()
        .get(format!("{}/", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page text");
    let start = page
        .find(r#"<meta name="csrf-token" content=""#)
        .expect("the page carries the CSRF token")
        + r#"<meta name="csrf-token" content=""#.len();
    page[start..start + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_a_wrong_token_and_sets_a_strict_http_only_cookie_for_the_right_one() {
    let app = spawn_app(Options::default()).await;
    let wrong = login(&app, "not-the-token").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers().get("set-cookie").is_none(),
        "a refused login set a cookie"
    );
    let page = wrong.text().await.expect("text");
    assert!(page.contains("That token is not valid."), "{page}");
    assert!(!page.contains("not-the-token"), "the page echoes the token");

    let right = login(&app, &app.api_token).await;
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/");
    let set = right.headers()["set-cookie"].to_str().expect("ascii");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "cookie lacks {flag}: {set}");
    }
    assert!(!set.contains(&app.api_token), "the cookie carries the token");
    // Over plain http the cookie cannot be Secure, or the browser would drop it.
    assert!(!set.contains("Secure"), "{set}");
    let cookie = session_cookie(&right);
    let list = http()
        .get(format!("{}/", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
    // Without a session the page sends the visitor to the login form.
    let anonymous = http()
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("list");
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_session_writes_only_with_its_csrf_token_and_bearer_tokens_still_work() {
    let app = spawn_app(Options::default()).await;
    app.repo.write("app/cm.yaml", &config_map("c", "1"));
    app.repo.commit("one");
    assert_eq!(app.create_app("csrf", "app", None).await.status(), 201);
    let cookie = session_cookie(&login(&app, &app.api_token).await);
    let csrf = csrf_of(&app, &cookie).await;
    let refresh = format!("{}/api/v1/applications/{APP_NAMESPACE}/csrf/refresh", app.address);

    let bare = http()
        .post(&refresh)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("refresh");
    assert_eq!(bare.status(), 403, "a cookie write without the CSRF header");
    let wrong = http()
        .post(&refresh)
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .expect("refresh");
    assert_eq!(wrong.status(), 403, "a cookie write with a wrong CSRF token");
    let right = http()
        .post(&refresh)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("refresh");
    assert_eq!(right.status(), 202, "the page's own write");
    // Reads need no CSRF token; the cookie alone reads the REST API.
    let read = http()
        .get(format!("{}/api/v1/applications", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("list");
    assert_eq!(read.status(), 200);
    // The CLI's way is untouched: a bearer token writes without any CSRF header.
    let bearer = http()
        .post(&refresh)
        .bearer_auth(&app.api_token)
        .send()
        .await
        .expect("refresh");
    assert_eq!(bearer.status(), 202);
    // A made-up session id is no session.
    let forged = http()
        .get(format!("{}/api/v1/applications", app.address))
        .header("cookie", format!("capstan_session={}", "a".repeat(64)))
        .send()
        .await
        .expect("list");
    assert_eq!(forged.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app(Options::default()).await;
    let cookie = session_cookie(&login(&app, &app.api_token).await);
    let csrf = csrf_of(&app, &cookie).await;
    let refused = http()
        .post(format!("{}/logout", app.address))
        .header("cookie", &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .expect("logout");
    assert_eq!(refused.status(), 403, "a logout without the CSRF token");
    let out = http()
        .post(format!("{}/logout", app.address))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    let cleared = out.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie, replayed, no longer opens anything.
    let replay = http()
        .get(format!("{}/api/v1/applications", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("list");
    assert_eq!(replay.status(), 401);
    let page = http()
        .get(format!("{}/", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 303);
}

// ---------------------------------------------------------------- browser

/// Chromium driven over WebDriver; chromedriver dies with the guard.
struct Browser {
    client: Client,
    _driver: ChildGuard,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn browser(profile: &std::path::Path) -> Browser {
    let driver_bin = common::tools::require("chromedriver");
    let chromium = common::tools::require("chromium");
    let port = free_port();
    let driver = ChildGuard::new(
        std::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    eventually(20, "chromedriver listens", || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-quic", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display())],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .expect("chromium starts within 60 s")
    .expect("a WebDriver session");
    Browser {
        client,
        _driver: driver,
    }
}

/// Waits (bounded) until the script returns true in the page.
async fn until_js(c: &Client, secs: u64, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = c.execute(script, vec![]).await.expect("script runs");
        if v == Value::Bool(true) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let body = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!("never happened in the browser: {what}\npage text:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first element matching `css`.
async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/screenshots")
        .join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
}

async fn browser_login(c: &Client, app: &TestApp, token: &str) {
    c.goto(&format!("{}/login", app.address)).await.expect("login page");
    let field = c.find(Locator::Id("token")).await.expect("token field");
    field.send_keys(token).await.expect("type token");
    c.find(Locator::Css(".login button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("submit click");
}
