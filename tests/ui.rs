//! The web UI: the browser session (login, CSRF, logout) over plain HTTP, then scenarios in a
//! real headless chromium driven over WebDriver (Debian's chromium and chromium-driver, installed
//! by scripts/install-tools when missing). Each test has its own Capstan, sandbox and repository.

mod common;
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use common::browser::{browser, text_of, until_js};
use helpers::*;

/// An HTTP client that shows redirects instead of following them, with a timeout.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// `POST /login` with `token` (the tests' tokens need no URL encoding).
async fn login(app: &TestApp, token: &str) -> reqwest::Response {
    http()
        .post(format!("{}/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
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
async fn login_refuses_a_wrong_token_and_sets_an_http_only_lax_cookie_for_the_right_one() {
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
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "cookie lacks {flag}: {set}");
    }
    assert!(
        !set.contains(&app.api_token),
        "the cookie carries the token"
    );
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
    let refresh = format!(
        "{}/api/v1/applications/{APP_NAMESPACE}/csrf/refresh",
        app.address
    );

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
    assert_eq!(
        wrong.status(),
        403,
        "a cookie write with a wrong CSRF token"
    );
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
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong")
        .send()
        .await
        .expect("logout");
    assert_eq!(refused.status(), 403, "a logout without the CSRF token");
    let out = http()
        .post(format!("{}/logout", app.address))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yaml_editor_creates_an_argo_cd_application_and_refuses_bad_documents() {
    let app = spawn_app(Options::default()).await;
    let cookie = session_cookie(&login(&app, &app.api_token).await);
    let csrf = csrf_of(&app, &cookie).await;
    let post = |body: String, csrf: Option<&str>| {
        let mut req = http()
            .post(format!("{}/create/yaml", app.address))
            .header("cookie", &cookie)
            .header("content-type", "application/yaml")
            .body(body);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let doc = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: from-yaml\n  namespace: argocd\n\
         spec:\n  project: default\n  source:\n    repoURL: {}\n    path: app\n    targetRevision: main\n\
         \x20 destination:\n    server: https://kubernetes.default.svc\n    namespace: default\n",
        app.repo_url
    );
    let unprotected = post(doc.clone(), None).await.expect("post");
    assert_eq!(unprotected.status(), 403, "created without the CSRF token");
    let created = post(doc, Some(&csrf)).await.expect("post");
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let stored = app.get_app("from-yaml").await;
    assert_eq!(stored["apiVersion"], "capstan.dev/v1alpha1");
    assert_eq!(stored["metadata"]["namespace"], APP_NAMESPACE);
    let broken = post("spec: [unclosed".into(), Some(&csrf))
        .await
        .expect("post");
    assert_eq!(broken.status(), 400);
    let body: Value = broken.json().await.expect("error body");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid YAML")),
        "{body}"
    );
    let empty = post("  \n".into(), Some(&csrf)).await.expect("post");
    assert_eq!(empty.status(), 400);
}

/// Reads the event stream until `needle`, returning everything read; fails after 30 s.
/// The names of the rows a list page shows, in order.
fn row_names(page: &str) -> Vec<String> {
    page.split("class=\"app-row\" data-key=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|k| k.rsplit('/').next().unwrap_or(k).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_is_served_a_page_at_a_time_with_its_filters_applied_by_the_server() {
    let app = spawn_app(Options {
        role: capstan::config::Role::Api,
        ..Default::default()
    })
    .await;
    let api: kube::Api<capstan::store::Application> =
        kube::Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    for i in 0..60 {
        let doc = json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": format!("app-{i:02}"), "namespace": APP_NAMESPACE,
                         "labels": {"team": if i % 3 == 0 { "red" } else { "blue" }}},
            "spec": {"project": "default",
                "source": {"repoURL": "https://git.example.com/org/repo.git", "path": format!("apps/{i}")},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": format!("ns-{}", i % 2)}}});
        let obj: capstan::store::Application = serde_json::from_value(doc).expect("application");
        api.create(&kube::api::PostParams::default(), &obj)
            .await
            .expect("created");
    }
    let cookie = session_cookie(&login(&app, &app.api_token).await);
    let get = |query: &'static str| {
        let url = format!("{}/{query}", app.address);
        let cookie = cookie.clone();
        async move {
            // The api's cache sees the creates shortly after they are made.
            for _ in 0..100 {
                let page = http()
                    .get(&url)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .expect("list")
                    .text()
                    .await
                    .expect("body");
                if page.contains("app-59") || !query.is_empty() {
                    return page;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the list never showed all 60 apps");
        }
    };
    get("").await;
    let first = get("?per_page=25").await;
    let names = row_names(&first);
    assert_eq!(names.len(), 25, "{names:?}");
    assert_eq!(names.first().map(String::as_str), Some("app-00"));
    assert!(first.contains("Showing 1–25 of 60 applications"), "{first}");
    assert!(first.contains("Page 1 of 3"), "{first}");
    assert!(
        first.contains("href=\"/?per_page=25&amp;page=2\""),
        "no link to page 2: {first}"
    );

    let last = get("?per_page=25&page=3").await;
    let names = row_names(&last);
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(names.first().map(String::as_str), Some("app-50"));
    assert!(last.contains("rel=\"prev\""), "{last}");
    assert!(!last.contains("rel=\"next\""), "{last}");
    // A page past the end shows the last one rather than nothing.
    assert_eq!(row_names(&get("?per_page=25&page=99").await).len(), 10);

    // The server filters before it pages; the filters keep their values on the page.
    let red = get("?label=team%3Dred&namespace=ns-0").await;
    let names = row_names(&red);
    assert_eq!(
        names,
        (0..60)
            .filter(|i| i % 3 == 0 && i % 2 == 0)
            .map(|i| format!("app-{i:02}"))
            .collect::<Vec<_>>()
    );
    assert!(red.contains("(60 in all)"), "{red}");
    assert!(red.contains("value=\"team=red\""), "{red}");
    assert!(red.contains("<option value=\"ns-0\" selected>"), "{red}");
    let searched = get("?search=APP-4").await;
    assert_eq!(
        row_names(&searched).len(),
        10,
        "search is case-blind over names"
    );
    // Garbage in the query is read as the defaults, never an error page.
    let odd = get("?page=abc&per_page=7").await;
    assert_eq!(row_names(&odd).len(), 60);
    assert!(odd.contains("Page 1 of 1"), "{odd}");
}

async fn read_until(stream: &mut reqwest::Response, seen: &mut String, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in the stream; it sent:\n{seen}"))
            .expect("stream readable")
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_catches_up_on_changes_after_the_page_then_follows_live_ones() {
    let app = spawn_app(Options::default()).await;
    let cookie = session_cookie(&login(&app, &app.api_token).await);
    let open = |since: Option<u64>| {
        let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
        http()
            .get(format!("{}/api/v1/stream/applications{query}", app.address))
            .header("cookie", &cookie)
            .timeout(Duration::from_secs(120))
            .send()
    };
    let anonymous = http()
        .get(format!("{}/api/v1/stream/applications", app.address))
        .send()
        .await
        .expect("stream");
    assert_eq!(
        anonymous.status(),
        401,
        "the stream is open without a session"
    );

    // A page rendered before the app existed (change number 0 at most) …
    app.repo.write("app/cm.yaml", &config_map("c", "1"));
    app.repo.commit("one");
    assert_eq!(app.create_app("caught", "app", None).await.status(), 201);
    eventually(20, "the api lists the app", || async {
        app.get("/api/v1/applications")
            .await
            .json::<Value>()
            .await
            .expect("json")["items"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    // … gets the app's row before the stream says it is live; without `since` it does not.
    let key = format!("\"key\":\"{APP_NAMESPACE}/caught\"");
    let mut caught = open(Some(0)).await.expect("stream");
    assert_eq!(caught.status(), 200);
    assert_eq!(caught.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let before_ready = read_until(&mut caught, &mut seen, "event: ready").await;
    assert!(
        before_ready.contains("event: upsert") && before_ready.contains(&key),
        "no catch-up for the app: {before_ready}"
    );
    let mut fresh = open(None).await.expect("stream");
    let mut fresh_seen = String::new();
    let head = read_until(&mut fresh, &mut fresh_seen, "event: ready").await;
    assert!(
        !head.contains(&key),
        "a stream without `since` replayed: {head}"
    );

    // A live change arrives as an upsert carrying the new row; a delete as a delete.
    let api: kube::Api<capstan::store::Application> =
        kube::Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    api.patch(
        "caught",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"team": "blue"}}})),
    )
    .await
    .expect("labelled");
    read_until(&mut fresh, &mut fresh_seen, "team=blue").await;
    assert_eq!(
        app.http
            .delete(format!(
                "{}/api/v1/applications/{APP_NAMESPACE}/caught",
                app.address
            ))
            .bearer_auth(&app.api_token)
            .send()
            .await
            .expect("delete")
            .status(),
        200
    );
    let all = read_until(&mut fresh, &mut fresh_seen, "event: delete").await;
    let tail = &all[all.rfind("event: delete").unwrap_or(0)..];
    assert!(tail.contains(&key), "the delete names another app: {tail}");
}

// ---------------------------------------------------------------- browser

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/screenshots")
        .join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
}

/// Signs in on the login page with a local account's name and password.
async fn browser_login(c: &Client, app: &TestApp, user: &str, password: &str) {
    c.goto(&format!("{}/login", app.address))
        .await
        .expect("login page");
    let field = c
        .find(Locator::Id("username"))
        .await
        .expect("username field");
    field.send_keys(user).await.expect("type user");
    let field = c
        .find(Locator::Id("password"))
        .await
        .expect("password field");
    field.send_keys(password).await.expect("type password");
    c.find(Locator::Css(".login > form button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("submit click");
}

/// The admin's initial password, generated into the data directory.
fn admin_password(app: &TestApp) -> String {
    std::fs::read_to_string(app.data_dir.path().join("admin-password")).expect("admin password")
}

/// The scenario a person runs: log in (a wrong password first), watch an app appear and turn
/// Synced/Healthy after a signed webhook without reloading, open its tree and a Pod's manifest,
/// sync with prune, roll back, and read who initiated each deployment. Screenshots of the main
/// pages go to docs/screenshots/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_follows_and_operates_an_app_in_the_browser() {
    let app = spawn_app(Options::default()).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let b = browser(profile.path()).await;
    let c = &b.client;

    // A wrong password: the form says so and the browser holds no session.
    browser_login(c, &app, "admin", "wrong-password").await;
    assert!(
        text_of(c, "#login-error")
            .await
            .contains("Invalid username or password")
    );
    assert!(
        c.get_named_cookie("capstan_session").await.is_err(),
        "a refused login left a cookie"
    );
    screenshot(c, "login").await;
    browser_login(c, &app, "admin", &admin_password(&app)).await;
    until_js(
        c,
        20,
        "the list is live",
        "return document.getElementById('live-state')?.dataset.live === 'on'",
    )
    .await;
    // Marks this page load: a reload would lose it.
    c.execute("window.__sameLoad = true; return true", vec![])
        .await
        .expect("mark");

    // An automated app appears, syncs, then a signed push syncs it to the new commit.
    app.repo
        .write("web/deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = app.repo.commit("web at 1.25");
    assert_eq!(app.create_app("web", "web", Some(true)).await.status(), 201);
    let row = format!("document.getElementById('app-{APP_NAMESPACE}-web')");
    until_js(
        c,
        30,
        "the new app's row appears",
        &format!("return !!{row}"),
    )
    .await;
    app.wait_app("web", 30, "Synced at the first commit", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    app.repo
        .write("web/deploy.yaml", &deployment("web", "nginx:1.27"));
    let second = app.repo.commit("web at 1.27");
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );
    app.wait_app("web", 30, "Synced and Healthy at the pushed commit", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
            && a.pointer("/status/health/status") == Some(&"Healthy".into())
    })
    .await;
    until_js(
        c,
        30,
        "the row shows Synced and Healthy",
        &format!("const r = {row}; return !!r && r.dataset.sync === 'Synced' && r.dataset.health === 'Healthy' && r.textContent.includes('Synced') && r.textContent.includes('Healthy')"),
    )
    .await;
    assert_eq!(
        c.execute("return window.__sameLoad === true", vec![])
            .await
            .expect("js"),
        Value::Bool(true),
        "the page reloaded to show the change"
    );
    // A filter hides what does not match and shows what does.
    let health = c
        .find(Locator::Id("f-health"))
        .await
        .expect("health filter");
    health.select_by_value("Degraded").await.expect("select");
    until_js(
        c,
        5,
        "the row is filtered out",
        &format!("const r = {row}; return (!r || r.hidden) && location.search.includes('health=Degraded')"),
    )
    .await;
    health.select_by_value("").await.expect("select all");
    until_js(
        c,
        5,
        "the row is shown again",
        &format!(
            "const r = {row}; return !!r && !r.hidden && !location.search.includes('health=')"
        ),
    )
    .await;
    screenshot(c, "applications").await;
    c.set_window_size(390, 844).await.expect("phone size");
    screenshot(c, "applications-phone").await;
    c.set_window_size(1280, 900).await.expect("desktop size");

    // The tree: Deployment → ReplicaSet → Pod; the Pod's live manifest opens in the panel.
    c.goto(&format!("{}/applications/{APP_NAMESPACE}/web", app.address))
        .await
        .expect("app page");
    let pod = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(".tree button.node[data-kind='Pod']"))
        .await
        .expect("a Pod node under the Deployment");
    assert_eq!(
        c.execute(
            r#"const kindOf = (id) => document.getElementById(id).dataset.kind || 'Application';
               const parentOf = (id) => document.querySelector(`path.edge[data-to='${id}']`)?.dataset.from;
               const pod = document.querySelector(".tree button.node[data-kind='Pod']");
               const chain = [];
               for (let id = pod.id; id; id = parentOf(id)) chain.push(kindOf(id));
               const rs = document.getElementById(parentOf(pod.id)).getBoundingClientRect();
               const edge = document.querySelector(`path.edge[data-to='${pod.id}']`).getBoundingClientRect();
               const p = pod.getBoundingClientRect();
               return [chain.join(' > '),
                       p.left > rs.right ? 'right of its owner' : 'not right of its owner',
                       edge.width > 0 && edge.left >= rs.right - 1 && edge.right <= p.left + 1 ? 'joined' : 'not joined'].join(', ');"#,
            vec![]
        )
        .await
        .expect("js"),
        Value::String("Pod > ReplicaSet > Deployment > Application, right of its owner, joined".into()),
        "the Pod is not drawn as a child of its ReplicaSet, Deployment and app"
    );
    pod.click().await.expect("open the pod");
    until_js(c, 20, "the Pod's live manifest shows", "const m = document.getElementById('live-manifest'); return !!m && m.textContent.includes('kind: Pod')").await;
    screenshot(c, "application").await;
    let initiator = text_of(c, "#history tbody tr:first-child .initiator").await;
    assert!(
        !initiator.is_empty() && initiator != "unknown",
        "the newest deployment names no initiator: {initiator:?}"
    );
    // The newest deployment is the signed push's: the page names its host and delivery.
    let newest = app
        .get_app("web")
        .await
        .pointer("/status/history")
        .and_then(Value::as_array)
        .and_then(|h| h.iter().max_by_key(|e| e["id"].as_i64()).cloned())
        .expect("a history entry");
    let delivery = newest
        .pointer("/initiatedBy/cause/deliveryId")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the webhook's sync records its delivery: {newest}"));
    assert!(
        initiator.contains(delivery) && initiator.contains("github"),
        "the history entry hides the GitHub delivery {delivery}: {initiator}"
    );

    // A manual app: sync with prune from the dialog, then roll back.
    app.repo.write("manual/cm.yaml", &config_map("kept", "1"));
    app.repo.write("manual/old.yaml", &config_map("old", "1"));
    app.repo.commit("manual with two config maps");
    assert_eq!(app.create_app("manual", "manual", None).await.status(), 201);
    app.wait_app("manual", 30, "compared", |a| sync_of(a).0 == "OutOfSync")
        .await;
    let page = format!("{}/applications/{APP_NAMESPACE}/manual", app.address);
    c.goto(&page).await.expect("app page");
    until_js(
        c,
        20,
        "the app page is live",
        "return document.getElementById('live-state')?.dataset.live === 'on'",
    )
    .await;
    sync_from_dialog(c, true).await;
    app.wait_app("manual", 30, "synced by the dialog", |a| {
        sync_of(a).0 == "Synced"
    })
    .await;
    assert!(app.config_map("old").await.is_some());
    until_js(
        c,
        20,
        "the summary shows Synced live",
        "return document.querySelector('#app-sync .badge')?.dataset.status === 'Synced'",
    )
    .await;

    app.repo.remove("manual/old.yaml");
    app.repo.commit("old config map leaves Git");
    c.find(Locator::Css("button[data-action='refresh']"))
        .await
        .expect("refresh")
        .click()
        .await
        .expect("click");
    app.wait_app("manual", 30, "OutOfSync after the refresh", |a| {
        sync_of(a).0 == "OutOfSync"
    })
    .await;
    c.refresh().await.expect("reload for the new resources");
    until_js(
        c,
        20,
        "the app page is live",
        "return document.getElementById('live-state')?.dataset.live === 'on'",
    )
    .await;
    sync_from_dialog(c, true).await;
    app.wait_app("manual", 30, "synced with prune", |a| {
        sync_of(a).0 == "Synced"
            && a.pointer("/status/history")
                .and_then(Value::as_array)
                .is_some_and(|h| h.len() == 2)
    })
    .await;
    eventually(20, "the pruned ConfigMap is gone", || async {
        app.config_map("old").await.is_none()
    })
    .await;

    // Roll back to the first deployment: the pruned ConfigMap returns.
    c.refresh().await.expect("reload for the history");
    let rollback = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(
            "#history tr[data-history-id='0'] button[data-action='rollback']",
        ))
        .await
        .expect("a rollback button on the first deployment");
    let history_text = text_of(c, "#history").await;
    assert!(
        history_text.contains("admin"),
        "history does not name the initiator: {history_text}"
    );
    screenshot(c, "history").await;
    rollback.click().await.expect("rollback");
    // The confirm dialog opens from the click handler; accept it once it is there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(e) = c.accept_alert().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rollback confirmation: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(30, "the rollback brought the ConfigMap back", || async {
        app.config_map("old").await.is_some()
    })
    .await;

    // The other pages render what the API lists.
    c.goto(&format!("{}/projects", app.address))
        .await
        .expect("projects");
    assert!(text_of(c, "main").await.contains("default"));
    screenshot(c, "projects").await;
    c.goto(&format!("{}/clusters", app.address))
        .await
        .expect("clusters");
    assert!(text_of(c, "#clusters").await.contains("in-cluster"));
    screenshot(c, "clusters").await;
    c.goto(&format!("{}/create", app.address))
        .await
        .expect("create");
    screenshot(c, "create").await;
    // The form: Argo CD's fields become an Application and the browser lands on its page.
    for (id, value) in [
        ("name", "from-form"),
        ("repoURL", app.repo_url.as_str()),
        ("path", "manual"),
        ("targetRevision", "main"),
        ("clusterServer", "https://kubernetes.default.svc"),
        ("destNamespace", "default"),
        ("syncOptions", "CreateNamespace=true"),
    ] {
        c.find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("field {id}: {e}"))
            .send_keys(value)
            .await
            .expect("type");
    }
    c.find(Locator::Css("#create-form button[type=submit]"))
        .await
        .expect("create button")
        .click()
        .await
        .expect("create");
    until_js(
        c,
        20,
        "the new app's page opens",
        "return location.pathname === '/applications/capstan/from-form'",
    )
    .await;
    let created = app.get_app("from-form").await;
    assert_eq!(created["spec"]["source"]["path"], "manual");
    assert_eq!(created["spec"]["destination"]["namespace"], "default");
    assert_eq!(
        created["spec"]["syncPolicy"]["syncOptions"],
        json!(["CreateNamespace=true"])
    );
    let _ = b.client.clone().close().await;
}

/// Opens the Sync dialog, sets prune, and synchronizes.
async fn sync_from_dialog(c: &Client, prune: bool) {
    c.find(Locator::Css("button[data-action='sync-open']"))
        .await
        .expect("sync button")
        .click()
        .await
        .expect("open the dialog");
    if prune {
        c.find(Locator::Id("sync-prune"))
            .await
            .expect("prune")
            .click()
            .await
            .expect("check prune");
    }
    c.find(Locator::Css("#sync-dialog button[value='sync']"))
        .await
        .expect("synchronize")
        .click()
        .await
        .expect("synchronize");
    until_js(
        c,
        10,
        "the sync was queued",
        "return (document.getElementById('toast')?.textContent || '').includes('Sync queued')",
    )
    .await;
}
