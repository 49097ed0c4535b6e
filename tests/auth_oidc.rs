//! Single sign-on with OpenID Connect against a real provider: npm's oidc-provider run with the
//! machine's Node.js (tests/fixtures/oidc/provider.mjs; installed by `scripts/install-tools
//! oidc-provider`), driven by a real chromium. A person logs in through the provider, their group
//! decides what they may sync, logout ends the session here and at the provider, a key rotation at
//! the provider does not break login, and `capstan login --sso` hands a browser login to the CLI.

mod common;
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use common::browser::{browser, click, free_port, text_of, until_js};
use common::child::ChildGuard;
use helpers::*;

const CLIENT_ID: &str = "capstan-test";
const CLIENT_SECRET: &str = "capstan-test-client-secret";
const ALICE_EMAIL: &str = "alice@example.com";
const ALICE_PASSWORD: &str = "alice-password";

/// The provider, killed with the guard.
struct Idp {
    issuer: String,
    _child: ChildGuard,
}

impl Idp {
    /// A provider whose client is a Capstan at `capstan_port`; alice is in `deployers`.
    async fn start(capstan_port: u16) -> Idp {
        Idp::start_with(capstan_port, false).await
    }

    /// [`Idp::start`]; with `userinfo_only` the ID token carries `sub` alone and the userinfo
    /// endpoint the rest.
    async fn start_with(capstan_port: u16, userinfo_only: bool) -> Idp {
        let modules = common::tools::require("oidc-provider");
        let node = common::tools::require("node");
        let port = free_port();
        let capstan = format!("http://127.0.0.1:{capstan_port}");
        let users = json!({"alice": {"password": ALICE_PASSWORD, "email": ALICE_EMAIL, "groups": ["deployers"]}});
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc/provider.mjs");
        let child = ChildGuard::new(
            std::process::Command::new(node)
                .arg(script)
                .env("OIDC_PROVIDER_DIR", modules)
                .env("PORT", port.to_string())
                .env("CLIENT_ID", CLIENT_ID)
                .env("CLIENT_SECRET", CLIENT_SECRET)
                .env("REDIRECT_URI", format!("{capstan}/auth/oidc/callback"))
                .env("POST_LOGOUT_REDIRECT_URI", format!("{capstan}/login"))
                .env("USERS", users.to_string())
                .env(
                    "CLAIMS_IN_USERINFO_ONLY",
                    if userinfo_only { "1" } else { "0" },
                )
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("node starts"),
        );
        let issuer = format!("http://127.0.0.1:{port}");
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        eventually(30, "the provider serves its discovery document", || {
            let url = discovery.clone();
            async move {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        Idp {
            issuer,
            _child: child,
        }
    }

    /// Replaces the provider's signing key; the old one is no longer published.
    async fn rotate_keys(&self) {
        let before = self.kids().await;
        let resp = reqwest::Client::new()
            .post(format!("{}/test/rotate", self.issuer))
            .send()
            .await
            .expect("rotate");
        assert!(resp.status().is_success());
        let after = self.kids().await;
        assert!(
            before.iter().all(|k| !after.contains(k)),
            "the old key is still published: {before:?} {after:?}"
        );
    }

    async fn kids(&self) -> Vec<String> {
        let jwks: Value = reqwest::get(format!("{}/jwks", self.issuer))
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks json");
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect()
    }
}

/// A Capstan at `port` whose `[auth.oidc]` is `idp`, where the group `deployers` may see every
/// app and sync only `default/allowed`.
async fn capstan_with(idp: &Idp, port: u16) -> TestApp {
    capstan_with_env(idp, port, Vec::new()).await
}

/// [`capstan_with`] and more settings.
async fn capstan_with_env(idp: &Idp, port: u16, more: Vec<(&str, String)>) -> TestApp {
    let env = [
        ("CAPSTAN__SERVER__LISTEN", format!("127.0.0.1:{port}")),
        ("CAPSTAN__AUTH__OIDC__NAME", "Test IdP".to_owned()),
        ("CAPSTAN__AUTH__OIDC__ISSUER", idp.issuer.clone()),
        ("CAPSTAN__AUTH__OIDC__CLIENT_ID", CLIENT_ID.to_owned()),
        (
            "CAPSTAN__AUTH__OIDC__CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        (
            "CAPSTAN__AUTH__OIDC__REDIRECT_URL",
            format!("http://127.0.0.1:{port}/auth/oidc/callback"),
        ),
        (
            "CAPSTAN__RBAC__POLICY_CSV",
            "p, role:deployer, applications, get, */*, allow\n\
             p, role:deployer, applications, sync, default/allowed, allow\n\
             g, deployers, role:deployer\n"
                .to_owned(),
        ),
    ];
    let app = spawn_app(Options {
        extra_env: env
            .into_iter()
            .chain(more)
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        ..Options::default()
    })
    .await;
    assert_eq!(app.address, format!("http://127.0.0.1:{port}"));
    app
}

/// Signs in at the provider's form the browser shows.
async fn sign_in_at_provider(c: &Client, password: &str) {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Id("idp-login"))
        .await
        .expect("the provider's login form")
        .send_keys("alice")
        .await
        .expect("type login");
    c.find(Locator::Id("idp-password"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type password");
    click(c, "#idp-submit").await;
}

/// The browser's session cookie and the CSRF token its pages carry.
async fn browser_session(c: &Client) -> (String, String) {
    let cookie = c
        .get_named_cookie("capstan_session")
        .await
        .expect("a session cookie");
    let csrf = c
        .execute(
            "return document.querySelector('meta[name=csrf-token]').content",
            vec![],
        )
        .await
        .expect("csrf");
    (
        format!("capstan_session={}", cookie.value()),
        csrf.as_str().expect("csrf string").to_owned(),
    )
}

async fn userinfo(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .expect("userinfo")
}

async fn two_apps(app: &TestApp) {
    app.repo.write("app/cm.yaml", &config_map("c", "1"));
    app.repo.commit("one");
    for name in ["allowed", "forbidden"] {
        assert_eq!(app.create_app(name, "app", None).await.status(), 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_logs_in_through_the_provider_and_their_group_decides_what_they_may_sync() {
    let port = free_port();
    let idp = Idp::start(port).await;
    let app = capstan_with(&idp, port).await;
    two_apps(&app).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let b = browser(profile.path()).await;
    let c = &b.client;

    c.goto(&format!("{}/login", app.address))
        .await
        .expect("login page");
    assert_eq!(text_of(c, "a.sso").await, "Log in via Test IdP");
    click(c, "a.sso").await;
    // A wrong password stays at the provider.
    sign_in_at_provider(c, "wrong").await;
    assert!(text_of(c, "#idp-error").await.contains("Invalid"));
    c.find(Locator::Id("idp-login"))
        .await
        .expect("form again")
        .clear()
        .await
        .expect("clear");
    sign_in_at_provider(c, ALICE_PASSWORD).await;
    assert_eq!(text_of(c, ".who").await, ALICE_EMAIL);
    assert!(
        c.get_named_cookie("capstan_oidc").await.is_err(),
        "the login's flow cookie outlived the login"
    );

    let (cookie, csrf) = browser_session(c).await;
    let me: Value = userinfo(&app, &cookie)
        .await
        .json()
        .await
        .expect("userinfo json");
    assert_eq!(me["username"], ALICE_EMAIL);
    assert_eq!(me["groups"], json!(["deployers"]));
    assert_eq!(me["iss"], "oidc");

    // The group's role allows syncing one app and not the other.
    let sync = |name: &'static str| {
        let (cookie, csrf, url) = (
            cookie.clone(),
            csrf.clone(),
            format!(
                "{}/api/v1/applications/{APP_NAMESPACE}/{name}/sync",
                app.address
            ),
        );
        let http = app.http.clone();
        async move {
            http.post(url)
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&json!({}))
                .send()
                .await
                .expect("sync")
        }
    };
    let allowed = sync("allowed").await;
    assert!(
        allowed.status().is_success(),
        "{}",
        allowed.text().await.unwrap_or_default()
    );
    let forbidden = sync("forbidden").await;
    assert_eq!(forbidden.status(), 403);
    let reason: Value = forbidden.json().await.expect("error json");
    let reason = reason["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("permission denied") && reason.contains("default/forbidden"),
        "{reason}"
    );

    // Logout ends the session here and at the provider, then comes back to the login page.
    click(c, "form.logout button").await;
    click(c, "#logout-yes").await;
    until_js(
        c,
        15,
        "back at Capstan's login page",
        &format!(
            "return location.href.startsWith('{}/login') && !!document.getElementById('login-title')",
            app.address
        ),
    )
    .await;
    assert_eq!(
        userinfo(&app, &cookie).await.status(),
        401,
        "the logged-out session's cookie still works"
    );
    click(c, "a.sso").await;
    // The provider asks again: its session ended too.
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Id("idp-login"))
        .await
        .expect("the provider asks for the password again");

    // The provider rotates its keys; the next login verifies with the new key.
    idp.rotate_keys().await;
    c.goto(&format!("{}/login", app.address))
        .await
        .expect("login page");
    click(c, "a.sso").await;
    sign_in_at_provider(c, ALICE_PASSWORD).await;
    assert_eq!(text_of(c, ".who").await, ALICE_EMAIL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_userinfo_on_the_user_and_groups_the_id_token_lacks_come_from_the_userinfo_endpoint() {
    let port = free_port();
    let idp = Idp::start_with(port, true).await;
    let app = capstan_with_env(
        &idp,
        port,
        vec![("CAPSTAN__AUTH__OIDC__USERINFO", "true".to_owned())],
    )
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    let b = browser(profile.path()).await;
    let c = &b.client;
    c.goto(&format!("{}/login", app.address))
        .await
        .expect("login page");
    click(c, "a.sso").await;
    sign_in_at_provider(c, ALICE_PASSWORD).await;
    assert_eq!(text_of(c, ".who").await, ALICE_EMAIL);
    let (cookie, _) = browser_session(c).await;
    let me: Value = userinfo(&app, &cookie)
        .await
        .json()
        .await
        .expect("userinfo json");
    assert_eq!(me["groups"], json!(["deployers"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_its_login_or_with_another_state_is_refused() {
    let port = free_port();
    let idp = Idp::start(port).await;
    let app = capstan_with(&idp, port).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // No flow cookie: a callback this browser did not start (login CSRF).
    let bare = http
        .get(format!(
            "{}/auth/oidc/callback?code=abc&state=xyz",
            app.address
        ))
        .send()
        .await
        .expect("callback");
    assert_eq!(bare.status(), 400);
    assert!(bare.headers().get("set-cookie").is_none_or(|c| {
        !c.to_str()
            .unwrap_or_default()
            .starts_with("capstan_session=")
    }));
    // A started login: the provider's URL carries PKCE S256, a state and a nonce.
    let start = http
        .get(format!("{}/auth/oidc/login", app.address))
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), 302);
    let to =
        reqwest::Url::parse(start.headers()["location"].to_str().expect("ascii")).expect("url");
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    let flow = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("capstan_oidc="))
        .expect("the flow cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/auth/oidc"] {
        assert!(flow.contains(flag), "{flow}");
    }
    let pair = flow.split(';').next().expect("pair");
    let wrong_state = http
        .get(format!(
            "{}/auth/oidc/callback?code=abc&state=another",
            app.address
        ))
        .header("cookie", pair)
        .send()
        .await
        .expect("callback");
    assert_eq!(wrong_state.status(), 400);
    let page = wrong_state.text().await.expect("page");
    assert!(page.contains("does not belong to this browser"), "{page}");
    // The right state with a made-up code: the provider refuses to redeem it.
    let made_up = http
        .get(format!(
            "{}/auth/oidc/callback?code=made-up&state={}",
            app.address, q["state"]
        ))
        .header("cookie", pair)
        .send()
        .await
        .expect("callback");
    assert_eq!(made_up.status(), 401);
    assert!(
        made_up
            .text()
            .await
            .expect("page")
            .contains("invalid_grant")
    );
}

/// The test's side of a `capstan login --sso`-style listener: the first request's query.
async fn one_callback(
    listener: tokio::net::TcpListener,
) -> std::collections::HashMap<String, String> {
    let (mut conn, _) = listener.accept().await.expect("the browser comes back");
    let mut head = vec![0u8; 8192];
    let n = conn.read(&mut head).await.expect("request");
    let line = String::from_utf8_lossy(&head[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .await
        .expect("answer");
    let target = line.split(' ').nth(1).expect("request target");
    reqwest::Url::parse(&format!("http://x{target}"))
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

fn capstan_cli(home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_capstan"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capstan_login_sso_takes_the_browser_login_and_logout_revokes_it() {
    let port = free_port();
    let idp = Idp::start(port).await;
    let app = capstan_with(&idp, port).await;
    let home = tempfile::tempdir().expect("home");
    let profile = tempfile::tempdir().expect("profile dir");
    let b = browser(profile.path()).await;
    let c = &b.client;

    let mut login = capstan_cli(home.path())
        .args(["login", &app.address, "--sso", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("capstan login starts");
    let mut out = BufReader::new(login.stdout.take().expect("stdout")).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
            .await
            .expect("the CLI prints the URL")
            .expect("stdout")
            .expect("a line");
        if let Some(url) = line
            .trim()
            .strip_prefix(&format!("{}/auth/cli?", app.address))
        {
            break format!("{}/auth/cli?{url}", app.address);
        }
    };
    // Not signed in yet: Capstan's login page first, then the provider, then back.
    c.goto(&url).await.expect("the CLI's URL");
    click(c, "a.sso").await;
    sign_in_at_provider(c, ALICE_PASSWORD).await;
    assert!(text_of(c, "#cli-title").await.contains("CLI"));
    click(c, "#cli-approve").await;
    assert!(text_of(c, "#done").await.contains("logged in"));
    let status = tokio::time::timeout(Duration::from_secs(30), login.wait())
        .await
        .expect("the CLI finishes")
        .expect("exit status");
    let mut rest = String::new();
    while let Ok(Some(line)) = out.next_line().await {
        rest += line.as_str();
    }
    assert!(status.success(), "capstan login failed: {rest}");
    assert!(
        rest.contains(&format!("as {ALICE_EMAIL} (groups: deployers)")),
        "{rest}"
    );

    let config = home.path().join("config/capstan/config.yaml");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config)
        .expect("config")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the saved session is readable by others");
    let saved = std::fs::read_to_string(&config).expect("config");
    let token = saved
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("a token")
        .trim_matches(['"', '\''])
        .to_owned();
    assert!(
        !url.contains(&token),
        "the session token travelled in a URL"
    );
    // Every command uses the saved session: alice may list apps.
    let list = capstan_cli(home.path())
        .args(["app", "list"])
        .output()
        .await
        .expect("app list");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );

    // The hand-off after a login that already exists: a code to the listener, redeemable once
    // and only with the verifier of its challenge.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cli_port = listener.local_addr().expect("addr").port();
    let verifier = "a-verifier-of-forty-three-characters-xxxxxx";
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let waiting = tokio::spawn(one_callback(listener));
    c.goto(&format!(
        "{}/auth/cli?port={cli_port}&state=s1&challenge={challenge}",
        app.address
    ))
    .await
    .expect("hand-off page");
    click(c, "#cli-approve").await;
    let back = waiting.await.expect("callback");
    assert_eq!(back["state"], "s1");
    let exchange = |verifier: &'static str| {
        let (http, url, code) = (
            app.http.clone(),
            format!("{}/api/v1/session/exchange", app.address),
            back["code"].clone(),
        );
        async move {
            http.post(url)
                .json(&json!({"code": code, "verifier": verifier}))
                .send()
                .await
                .expect("exchange")
        }
    };
    assert_eq!(
        exchange("another-verifier-xxxxxxxxxxxxxxxxxxxxxxxxxx")
            .await
            .status(),
        401,
        "a code redeemed without its verifier"
    );
    let first = exchange(verifier).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        exchange(verifier).await.status(),
        401,
        "a code redeemed twice"
    );

    // Logout revokes the saved session and forgets it.
    let logout = capstan_cli(home.path())
        .arg("logout")
        .output()
        .await
        .expect("logout");
    assert!(
        logout.status.success(),
        "{}",
        String::from_utf8_lossy(&logout.stderr)
    );
    assert!(
        !std::fs::read_to_string(&config)
            .expect("config")
            .contains("token")
    );
    let refused = app
        .http
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(refused.status(), 401, "the logged-out token still works");

    // A local account's password works the same way.
    let password = std::fs::read_to_string(app.data_dir.path().join("admin-password"))
        .expect("admin password");
    let mut by_password = capstan_cli(home.path())
        .args([
            "login",
            &app.address,
            "--username",
            "admin",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("capstan login");
    by_password
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", password.trim()).as_bytes())
        .await
        .expect("password");
    let done = by_password.wait_with_output().await.expect("login");
    assert!(done.status.success());
    assert!(String::from_utf8_lossy(&done.stdout).contains("as admin"));
}
