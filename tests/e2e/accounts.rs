//! Accounts, sessions, API tokens and RBAC through the REST API: the admin logs in with the
//! generated password, people get what the policy grants and a readable 403 for the rest, the
//! person is recorded on the sync they start, and logout, revocation, expiry and failed-login
//! backoff refuse what they should — on every api replica.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// `dev` may read every app of `default` and sync only `allowed`; `ci` holds API tokens.
const ACCOUNTS: &str = r#"
[auth.accounts.dev]
capabilities = ["login"]
[auth.accounts.ci]
capabilities = ["apiKey"]
[auth.accounts.old]
capabilities = ["login", "apiKey"]
enabled = false
[rbac]
policy_default = ""
policy_csv = """
p, dev, applications, get, default/*, allow
p, dev, applications, sync, default/allowed, allow
g, ci, role:readonly
"""
"#;

async fn spawn() -> TestApp {
    spawn_app(Options {
        extra_toml: ACCOUNTS.into(),
        ..Options::default()
    })
    .await
}

fn admin_password(app: &TestApp) -> String {
    std::fs::read_to_string(app.data_dir.path().join("admin-password"))
        .expect("the initial admin password was generated into the data directory")
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.address))
        .timeout(Duration::from_secs(30));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("API request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    call(
        app,
        reqwest::Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"username": user, "password": password})),
    )
    .await
}

async fn token_of(app: &TestApp, user: &str, password: &str) -> String {
    let (status, body) = login(app, user, password).await;
    assert_eq!(status, 200, "{user} could not log in: {body}");
    body["token"].as_str().expect("a session token").to_owned()
}

/// The admin sets `dev`'s password (Argo CD asks for the admin's own current password).
async fn set_password(app: &TestApp, account: &str, password: &str) {
    let (status, body) = call(
        app,
        reqwest::Method::PUT,
        "/api/v1/account/password",
        Some(&app.api_token),
        Some(json!({"name": account, "currentPassword": admin_password(app), "newPassword": password})),
    )
    .await;
    assert_eq!(status, 200, "setting {account}'s password: {body}");
}

#[tokio::test]
async fn the_admin_logs_in_with_the_generated_password_and_can_change_it() {
    let app = spawn().await;
    let initial = admin_password(&app);
    assert!(initial.len() >= 16, "a weak initial password: {initial:?}");
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    let kept = secrets
        .get("capstan-initial-admin-secret")
        .await
        .expect("the initial password Secret, as Argo CD's");
    assert_eq!(kept.data.expect("data")["password"].0, initial.as_bytes());

    let token = token_of(&app, "admin", &initial).await;
    let (status, me) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/session/userinfo",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["iss"], "local");
    assert_eq!(login(&app, "admin", "wrong-password").await.0, 401);

    let (status, body) = call(
        &app,
        reqwest::Method::PUT,
        "/api/v1/account/password",
        Some(&token),
        Some(json!({"currentPassword": initial, "newPassword": "a-new-password-1"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        login(&app, "admin", &initial).await.0,
        401,
        "the old password still works"
    );
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/session/userinfo",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a session of the old password still works");
    token_of(&app, "admin", "a-new-password-1").await;

    // Nothing secret in the Secret: a hash of the password, never the password.
    let stored = secrets
        .get("capstan-accounts")
        .await
        .expect("accounts Secret");
    let data = stored.data.expect("data");
    let hash = String::from_utf8(data["accounts.admin.password"].0.clone()).expect("utf8");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("a-new-password-1"));
}

#[tokio::test]
async fn a_person_gets_what_the_policy_grants_and_a_readable_403_for_the_rest() {
    let app = spawn().await;
    app.repo.write("cm.yaml", &config_map("rbac", "v1"));
    app.repo.commit("v1");
    for name in ["allowed", "forbidden"] {
        let resp = app.create_app(name, ".", None).await;
        assert_eq!(resp.status(), 201, "creating {name}");
    }
    set_password(&app, "dev", "dev-password-1").await;
    let dev = token_of(&app, "dev", "dev-password-1").await;

    let (status, list) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/applications",
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "dev sees every app of default: {names:?}");

    // What the CLI's `account can-i` asks: the object's slash travels percent-encoded.
    for (object, answer) in [("default%2Fallowed", "yes"), ("default%2Fforbidden", "no")] {
        let (status, body) = call(
            &app,
            reqwest::Method::GET,
            &format!("/api/v1/account/can-i/applications/sync/{object}"),
            Some(&dev),
            None,
        )
        .await;
        assert_eq!(
            (status, body["value"].as_str()),
            (200, Some(answer)),
            "{object}"
        );
    }
    let sync = |name: &str| format!("/api/v1/applications/{APP_NAMESPACE}/{name}/sync");
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        &sync("forbidden"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"],
        "permission denied: applications, sync, default/forbidden, sub: dev"
    );
    let (status, body) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/applications/{APP_NAMESPACE}/allowed"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(status, 403, "dev deleted an app: {body}");
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/projects",
        Some(&dev),
        Some(
            json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "mine"}, "spec": {"sourceRepos": ["*"]}}),
        ),
    )
    .await;
    assert_eq!(status, 403, "dev created a project");

    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        &sync("allowed"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let synced = app
        .wait_app("allowed", 90, "allowed synced by dev", |a| {
            a["status"]["operationState"]["phase"] == "Succeeded"
        })
        .await;
    assert_eq!(
        synced["status"]["operationState"]["initiatedBy"]["username"], "dev",
        "the sync does not say who started it: {}",
        synced["status"]["operationState"]
    );
    // The forbidden app was never synced by anyone.
    let other = app.get_app("forbidden").await;
    assert!(
        other["status"]["operationState"].is_null(),
        "the refused sync ran: {}",
        other["status"]["operationState"]
    );
    // Still the admin's: the static token is admin, who may do everything.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &sync("forbidden"),
        Some(&app.api_token),
        None,
    )
    .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn api_tokens_work_until_revoked_or_expired_and_only_their_hash_is_kept() {
    let app = spawn().await;
    let issue = |account: &'static str, body: Value| {
        let app = &app;
        async move {
            call(
                app,
                reqwest::Method::POST,
                &format!("/api/v1/account/{account}/token"),
                Some(&app.api_token),
                Some(body),
            )
            .await
        }
    };
    let (status, issued) = issue("ci", json!({"description": "deploys"})).await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["token"].as_str().expect("token").to_owned();
    let id = issued["id"].as_str().expect("id").to_owned();
    let (status, me) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/session/userinfo",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["username"].as_str(), me["iss"].as_str()),
        (Some("ci"), Some("apikey"))
    );
    // role:readonly: reading works, creating does not.
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/applications",
            Some(&token),
            None
        )
        .await
        .0,
        200
    );
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/projects",
        Some(&token),
        Some(
            json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "ci-made"}, "spec": {}}),
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    let (_, account) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/account/ci",
        Some(&app.api_token),
        None,
    )
    .await;
    assert_eq!(account["tokens"][0]["id"], id.as_str());
    assert!(
        !account.to_string().contains(&token[token.len() - 20..]),
        "the secret is listed"
    );
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    let stored = serde_json::to_string(&secrets.get("capstan-accounts").await.expect("Secret"))
        .expect("json");
    let secret_part = token.rsplit('_').next().expect("secret part");
    assert!(
        !stored.contains(secret_part),
        "the token's secret is stored"
    );

    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/account/ci/token/{id}"),
        Some(&app.api_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/applications",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a revoked token still works: {body}");

    // Expiry: a token of one second is refused once it has passed.
    let (_, short) = issue("ci", json!({"expiresIn": 1})).await;
    let short = short["token"].as_str().expect("token").to_owned();
    eventually(10, "the expired token is refused", || {
        let app = &app;
        let short = short.clone();
        async move {
            call(
                app,
                reqwest::Method::GET,
                "/api/v1/applications",
                Some(&short),
                None,
            )
            .await
            .0 == 401
        }
    })
    .await;
    // Accounts without apiKey, or disabled, get no tokens; a forged token is refused.
    assert_eq!(issue("dev", json!({})).await.0, 422);
    assert_eq!(issue("old", json!({})).await.0, 422);
    let forged = format!("cst_{id}_{}", "0".repeat(64));
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/applications",
            Some(&forged),
            None
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn logout_on_one_replica_ends_the_session_on_every_replica() {
    let app = spawn().await;
    let twin = spawn_twin(&app, capstan::config::Role::Api, Vec::new()).await;
    let token = token_of(&app, "admin", &admin_password(&app)).await;
    // Signed with the key every replica shares.
    let on_twin = |token: String| {
        let http = app.http.clone();
        let url = format!("{}/api/v1/session/userinfo", twin.address);
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("twin request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        on_twin(token.clone()).await,
        200,
        "the twin does not accept the session"
    );

    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/session",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/session/userinfo",
            Some(&token),
            None
        )
        .await
        .0,
        401,
        "the logged-out session still works where it logged out"
    );
    eventually(10, "the twin refuses the logged-out session", || {
        let check = on_twin(token.clone());
        async move { check.await == 401 }
    })
    .await;
    // A tampered token (another user in the payload) is refused.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value =
        serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("json");
    claims["sub"] = "someone-else".into();
    claims["jti"] = "fresh".into();
    parts[1] = b64.encode(serde_json::to_vec(&claims).expect("json"));
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            "/api/v1/session/userinfo",
            Some(&parts.join(".")),
            None
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_refused_for_a_while_even_with_the_right_password() {
    let app = spawn().await;
    let password = admin_password(&app);
    set_password(&app, "dev", "dev-password-1").await;
    for attempt in 1..=5 {
        let (status, _) = login(&app, "admin", &format!("guess-{attempt}")).await;
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let resp = app
        .http
        .post(format!("{}/api/v1/session", app.address))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!(retry > 60, "Retry-After {retry}");
    // Another user is not locked out by it.
    token_of(&app, "dev", "dev-password-1").await;
}

#[tokio::test]
async fn a_project_role_token_syncs_its_project_only_until_it_is_deleted() {
    let app = spawn().await;
    let project = json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "team"},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
            "roles": [{"name": "deployer",
                "policies": ["p, proj:team:deployer, applications, sync, team/*, allow"]}]}});
    assert_eq!(app.post("/api/v1/projects", &project).await.status(), 201);
    app.repo.write("cm.yaml", &config_map("team", "v1"));
    app.repo.commit("v1");
    let mut spec = json!({
        "project": "team",
        "source": {"repoURL": app.repo_url, "path": ".", "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
    });
    assert_eq!(
        app.create_app_with("team-web", spec.clone()).await.status(),
        201
    );
    spec["project"] = "default".into();
    assert_eq!(app.create_app_with("other-web", spec).await.status(), 201);

    let (status, issued) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/projects/team/roles/deployer/token",
        Some(&app.api_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["token"].as_str().expect("token").to_owned();
    let id = issued["id"].as_str().expect("id").to_owned();
    // The project lists the token (id and time only).
    let stored = app.get("/api/v1/projects/team").await;
    let stored: Value = stored.json().await.expect("project json");
    assert_eq!(
        stored["spec"]["roles"][0]["jwtTokens"][0]["id"],
        id.as_str()
    );
    assert!(
        !stored.to_string().contains(&token),
        "the token itself is stored"
    );

    let sync = |name: &str| format!("/api/v1/applications/{APP_NAMESPACE}/{name}/sync");
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        &sync("team-web"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        &sync("other-web"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"],
        "permission denied: applications, sync, default/other-web, sub: proj:team:deployer"
    );
    let synced = app
        .wait_app("team-web", 90, "team-web synced by the role token", |a| {
            a["status"]["operationState"]["phase"] == "Succeeded"
        })
        .await;
    assert_eq!(
        synced["status"]["operationState"]["initiatedBy"]["username"],
        "proj:team:deployer"
    );

    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/projects/team/roles/deployer/token/{id}"),
        Some(&app.api_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &sync("team-web"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a deleted role token still works");
}
