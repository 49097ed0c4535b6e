//! LDAP login end to end: Debian's slapd started by the test (StartTLS and LDAPS with a
//! certificate from a CA generated here), a whole Capstan pointed at it, and people logging in
//! through `POST /api/v1/session` with their directory groups mapped to RBAC roles.

mod common;
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::path::Path;
use std::time::Duration;

use capstan::auth::ldap::{
    Directory, GroupSearchSettings, LdapError, LdapSettings, UserSearchSettings,
};
use serde_json::{Value, json};

use common::slapd::{self, GROUPS, PEOPLE, READER_DN, READER_PASSWORD, Slapd, TestCa};
use helpers::*;

/// alice is a developer, bob a viewer; `dup` exists twice; `admin` is also a local account.
fn people() -> String {
    let contractors = format!("ou=contractors,{PEOPLE}");
    [
        slapd::person("alice", "alice-pw-1"),
        slapd::person("bob", "bob-pw-1"),
        slapd::person("carol", "carol-pw-1"),
        slapd::person("dup", "dup-pw-1"),
        slapd::person("admin", "admin-pw-1"),
        format!("dn: {contractors}\nobjectClass: organizationalUnit\nou: contractors\n\n"),
        format!(
            "dn: uid=dup,{contractors}\nobjectClass: inetOrgPerson\nuid: dup\ncn: dup\nsn: dup\n\
             userPassword: dup-pw-1\n\n"
        ),
        slapd::group("devs", &["alice"]),
        slapd::group("viewers", &["bob"]),
    ]
    .concat()
}

/// developers may sync `ldap-ok` only.
const POLICY: &str = "p, role:deployer, applications, sync, default/ldap-ok, allow\n\
                      p, role:deployer, applications, get, default/*, allow\n\
                      g, devs, role:deployer\n";

/// `[auth.ldap]` as environment variables; `extra` are more `auth.ldap.*` keys.
fn ldap_env(url: &str, ca_file: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("URL", url),
        ("CA_FILE", &ca_file.display().to_string()),
        ("BIND_DN", READER_DN),
        ("BIND_PASSWORD", READER_PASSWORD),
        ("USER_SEARCH__BASE_DN", PEOPLE),
        ("TIMEOUT_SECS", "5"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (format!("CAPSTAN__AUTH__LDAP__{k}"), v.to_string()))
    .collect();
    env.push(("CAPSTAN__RBAC__POLICY_CSV".into(), POLICY.into()));
    env
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    http()
        .post(format!("{}/api/v1/session", app.address))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login request")
}

/// The session token of a login that must succeed.
async fn token_of(app: &TestApp, username: &str, password: &str) -> String {
    let resp = login(app, username, password).await;
    let status = resp.status();
    let body: Value = resp.json().await.expect("login answer");
    assert_eq!(status, 200, "{username} logs in: {body}");
    body["token"].as_str().expect("a token").to_owned()
}

/// The web UI's login form (no redirects followed); `username` and `password` are sent as is.
async fn form_login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
        .post(format!("{}/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        // The tests' names and passwords need no percent-encoding.
        .body(format!("username={username}&password={password}"))
        .send()
        .await
        .expect("login form")
}

async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/api/v1/session/userinfo", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo")
}

async fn sync(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    http()
        .post(format!(
            "{}/api/v1/applications/{APP_NAMESPACE}/{name}/sync",
            app.address
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("sync")
}

/// The status and `error` of a refused request.
async fn refusal(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

fn ca_file(dir: &Path, name: &str, ca: &TestCa) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, &ca.ca_pem).expect("write CA file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_user_logs_in_over_start_tls_gets_their_groups_role_and_logout_ends_the_session() {
    let ca = TestCa::generate("directory CA");
    let mut directory = Slapd::start(&ca, &people());
    let files = tempfile::tempdir().expect("tempdir");
    let ca_path = ca_file(files.path(), "ca.pem", &ca);
    let app = spawn_app(Options {
        extra_env: ldap_env(
            &directory.ldap_url(),
            &ca_path,
            &[("START_TLS", "true"), ("GROUP_SEARCH__BASE_DN", GROUPS)],
        ),
        ..Default::default()
    })
    .await;
    app.repo.write("app/cm.yaml", &config_map("ldap", "1"));
    app.repo.commit("one");
    for name in ["ldap-ok", "ldap-other"] {
        assert_eq!(app.create_app(name, "app", None).await.status(), 201);
    }

    let alice = token_of(&app, "alice", "alice-pw-1").await;
    let me: Value = userinfo(&app, &alice).await.json().await.expect("userinfo");
    assert_eq!(me["username"], "alice");
    assert_eq!(
        me["groups"],
        json!(["devs"]),
        "groups from the group search"
    );
    assert_eq!(me["iss"], "ldap");

    assert_eq!(
        sync(&app, &alice, "ldap-ok").await.status(),
        202,
        "devs may sync ldap-ok"
    );
    let (status, error, reason) = refusal(sync(&app, &alice, "ldap-other").await).await;
    assert_eq!((status, reason.as_str()), (403, "forbidden"), "{error}");
    assert_eq!(
        error,
        "permission denied: applications, sync, default/ldap-other, sub: alice"
    );
    let bob = token_of(&app, "bob", "bob-pw-1").await;
    let (status, error, _) = refusal(sync(&app, &bob, "ldap-ok").await).await;
    assert_eq!(status, 403, "viewers hold no role that syncs: {error}");

    let out = http()
        .delete(format!("{}/api/v1/session", app.address))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 200);
    assert_eq!(userinfo(&app, &alice).await.status(), 401, "after logout");
    assert_eq!(sync(&app, &alice, "ldap-ok").await.status(), 401);
    assert_eq!(
        userinfo(&app, &bob).await.status(),
        200,
        "bob's session lives on"
    );

    // A directory that is down is not a wrong password, and local accounts still log in.
    directory.stop();
    let (status, error, reason) = refusal(login(&app, "alice", "alice-pw-1").await).await;
    assert_eq!((status, reason.as_str()), (503, "unavailable"), "{error}");
    let page = form_login(&app, "alice", "alice-pw-1").await;
    assert_eq!(page.status(), 503);
    let text = page.text().await.expect("login page");
    assert!(text.contains("LDAP directory is unavailable"), "{text}");
    let admin_password =
        std::fs::read_to_string(app.data_dir.path().join("admin-password")).expect("admin pw");
    token_of(&app, "admin", admin_password.trim()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_empty_injected_ambiguous_and_local_names_are_refused_over_ldaps() {
    let ca = TestCa::generate("directory CA");
    let directory = Slapd::start(&ca, &people());
    let files = tempfile::tempdir().expect("tempdir");
    let ca_path = ca_file(files.path(), "ca.pem", &ca);
    let mut env = ldap_env(
        &directory.ldaps_url(),
        &ca_path,
        &[("USER_SEARCH__GROUPS_ATTRIBUTE", "memberOf")],
    );
    env.push(("CAPSTAN__AUTH__MAX_LOGIN_FAILURES".into(), "3".into()));
    let app = spawn_app(Options {
        extra_env: env,
        ..Default::default()
    })
    .await;

    let wrong = login(&app, "alice", "not-alice").await;
    let (status, error, _) = refusal(wrong).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid username or password")
    );
    assert_eq!(refusal(login(&app, "alice", "").await).await.0, 401);
    // Each would match alice (or everyone) if the name reached the filter unescaped.
    for name in [
        "*",
        "al*",
        "*)(uid=*",
        ")(uid=*",
        "alice)(|(uid=*",
        "alice)(uid=alice",
    ] {
        let (status, error, _) = refusal(login(&app, name, "alice-pw-1").await).await;
        assert_eq!(status, 401, "{name:?} logged in: {error}");
    }
    assert_eq!(
        refusal(login(&app, "dup", "dup-pw-1").await).await.0,
        401,
        "a name two entries match"
    );
    for name in ["admin", "ADMIN"] {
        assert_eq!(
            refusal(login(&app, name, "admin-pw-1").await).await.0,
            401,
            "the directory's {name} is not the local admin"
        );
    }

    let browser = form_login(&app, "alice", "alice-pw-1").await;
    assert_eq!(
        browser.status(),
        303,
        "the web UI's form takes directory users"
    );
    assert!(
        browser
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().is_ok_and(|c| c.starts_with("capstan_session="))),
        "a session cookie"
    );
    assert_eq!(form_login(&app, "alice", "wrong").await.status(), 401);

    let alice = token_of(&app, "alice", "alice-pw-1").await;
    let me: Value = userinfo(&app, &alice).await.json().await.expect("userinfo");
    assert_eq!(
        (&me["username"], &me["groups"]),
        (&json!("alice"), &json!(["devs"])),
        "groups from memberOf"
    );

    // Directory failures count towards the backoff like local ones, whatever the name's case.
    for name in ["carol", "Carol", "CAROL"] {
        assert_eq!(refusal(login(&app, name, "nope").await).await.0, 401);
    }
    let (status, error, _) = refusal(login(&app, "carol", "carol-pw-1").await).await;
    assert_eq!(status, 429, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_whose_certificate_is_not_trusted_or_that_stalls_is_refused() {
    capstan::install_crypto_provider();
    let ca = TestCa::generate("directory CA");
    let other = TestCa::generate("someone else's CA");
    let directory = Slapd::start(&ca, &people());
    let files = tempfile::tempdir().expect("tempdir");
    let untrusted = ca_file(files.path(), "other.pem", &other);
    let app = spawn_app(Options {
        extra_env: ldap_env(&directory.ldaps_url(), &untrusted, &[]),
        ..Default::default()
    })
    .await;
    let (status, error, reason) = refusal(login(&app, "alice", "alice-pw-1").await).await;
    assert_eq!((status, reason.as_str()), (503, "unavailable"), "{error}");

    // The same over StartTLS; and only insecure_skip_verify accepts it.
    let settings =
        |url: String, start_tls: bool, ca_file: Option<&Path>, insecure: bool| LdapSettings {
            url,
            start_tls,
            ca_file: ca_file.map(Path::to_path_buf),
            insecure_skip_verify: insecure,
            bind_dn: Some(READER_DN.into()),
            bind_password: Some(READER_PASSWORD.into()),
            bind_password_file: None,
            user_search: UserSearchSettings {
                base_dn: PEOPLE.into(),
                filter: "(uid={username})".into(),
                username_attribute: "uid".into(),
                email_attribute: Some("mail".into()),
                groups_attribute: None,
            },
            group_search: Some(GroupSearchSettings {
                base_dn: GROUPS.into(),
                filter: "(&(objectClass=groupOfNames)(member={dn}))".into(),
                name_attribute: "cn".into(),
            }),
            timeout_secs: 5,
        };
    let start_tls = Directory::new(&settings(
        directory.ldap_url(),
        true,
        Some(&untrusted),
        false,
    ))
    .expect("settings");
    assert!(matches!(
        start_tls.login("alice", "alice-pw-1").await,
        Err(LdapError::Unavailable(_))
    ));
    // A server that accepts the connection and then says nothing is cut off by the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("ldap://{}", silent.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    // Plain: the service bind waits; StartTLS: the upgrade does.
    for start_tls in [false, true] {
        let mut stalled = settings(silent_url.clone(), start_tls, Some(&untrusted), false);
        stalled.timeout_secs = 1;
        let stalled = Directory::new(&stalled).expect("settings");
        assert!(matches!(
            stalled.login("alice", "alice-pw-1").await,
            Err(LdapError::Unavailable(_))
        ));
    }
    held.abort();

    let insecure =
        Directory::new(&settings(directory.ldaps_url(), false, None, true)).expect("settings");
    let alice = insecure
        .login("alice", "alice-pw-1")
        .await
        .expect("insecure_skip_verify accepts any certificate");
    assert_eq!(
        (alice.user.as_str(), alice.groups.as_slice()),
        ("alice@example.org", ["devs".to_string()].as_slice()),
        "email_attribute names the user"
    );
}
