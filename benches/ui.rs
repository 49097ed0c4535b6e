//! Web UI figures (a bench binary; `cargo bench --bench ui`, or `cargo test --bench ui` for a
//! debug build; needs RabbitMQ and chromium):
//! the Applications list with N apps (`CAPSTAN_BENCH_APPS`, default 1000) — server time to the
//! whole page and its size, and chromium's DOMContentLoaded and load events — and the live-update
//! latency from a status write in the cluster to the SSE event at a client, and to the row
//! changing in the browser. Medians (and the slowest) of several rounds; an api-only Capstan,
//! so no worker competes for the two cores.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capstan::config::Role;
use capstan::store::Application;
use fantoccini::ClientBuilder;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use common::child::ChildGuard;
use helpers::{APP_NAMESPACE, Options, TestApp, spawn_app};

const PAGE_ROUNDS: usize = 10;
const LATENCY_ROUNDS: usize = 20;

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

fn status(i: usize, message: &str) -> Value {
    let (sync, health) = match i % 4 {
        0 => ("OutOfSync", "Progressing"),
        1 => ("Synced", "Degraded"),
        _ => ("Synced", "Healthy"),
    };
    json!({"status": {
        "sync": {"status": sync, "revision": "0123456789abcdef0123456789abcdef01234567"},
        "health": {"status": health, "message": message},
        "operationState": {"phase": "Succeeded", "message": "successfully synced",
            "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:05Z"},
    }})
}

async fn write_status(api: &Api<Application>, i: usize, message: &str) {
    api.patch_status(
        &format!("bench-{i:04}"),
        &PatchParams::default(),
        &Patch::Merge(&status(i, message)),
    )
    .await
    .expect("status written");
}

async fn login(app: &TestApp, http: &reqwest::Client) -> String {
    let resp = http
        .post(format!("{}/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", app.api_token))
        .send()
        .await
        .expect("login");
    let set = resp.headers()["set-cookie"].to_str().expect("cookie");
    set.split(';').next().expect("pair").to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("CAPSTAN_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let api: Api<Application> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    let started = Instant::now();
    for i in 0..n {
        let doc = json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": format!("bench-{i:04}"), "namespace": APP_NAMESPACE,
                         "labels": {"team": format!("t{}", i % 7)}},
            "spec": {"project": "default",
                "source": {"repoURL": format!("https://git.example.com/org/repo-{}.git", i % 13),
                           "path": format!("apps/{i}"), "targetRevision": "main"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": format!("ns-{}", i % 17)}}});
        let obj: Application = serde_json::from_value(doc).expect("application");
        api.create(&PostParams::default(), &obj)
            .await
            .expect("created");
        write_status(&api, i, "").await;
    }
    println!(
        "setup: {n} apps with status in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let cookie = login(&app, &http).await;
    // The store's cache must hold every app before the page is timed.
    loop {
        let body = http
            .get(format!("{}/api/v1/applications", app.address))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("list")
            .json::<Value>()
            .await
            .expect("json");
        if body["items"].as_array().is_some_and(|a| a.len() == n)
            && body["items"]
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["status"].is_object()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The first page as a visitor lands on it, then the whole list on one page.
    for (query, rows) in [("", n.min(100)), ("?per_page=1000", n.min(1000))] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..PAGE_ROUNDS {
            let t = Instant::now();
            let body = http
                .get(format!("{}/{query}", app.address))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("page")
                .bytes()
                .await
                .expect("body");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            size = body.len();
            assert_eq!(
                String::from_utf8_lossy(&body)
                    .matches("class=\"app-row\"")
                    .count(),
                rows,
                "the page does not show {rows} rows"
            );
        }
        let (med, max) = median(times);
        println!(
            "list page `/{query}`, {n} apps, {rows} rows: server + transfer median {med:.1} ms (slowest {max:.1} ms), HTML {:.0} KiB",
            size as f64 / 1024.0
        );
    }

    // SSE: a status write in the cluster → the event at a client.
    let mut stream = http
        .get(format!(
            "{}{}",
            app.address,
            capstan::ui::stream::APPLICATIONS_STREAM
        ))
        .header("cookie", &cookie)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .expect("stream");
    let mut buffer = String::new();
    async fn next_event(stream: &mut reqwest::Response, buffer: &mut String, needle: &str) {
        loop {
            if let Some(at) = buffer.find(needle) {
                buffer.drain(..at + needle.len());
                return;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
                .await
                .expect("an event within 30 s")
                .expect("stream readable")
                .expect("stream open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    next_event(&mut stream, &mut buffer, "event: ready").await;
    let mut sse = Vec::new();
    for round in 0..LATENCY_ROUNDS {
        let i = (round * 37) % n;
        let marker = format!("sse-{round}-{}", uuid::Uuid::new_v4());
        let t = Instant::now();
        write_status(&api, i, &marker).await;
        next_event(
            &mut stream,
            &mut buffer,
            &format!("\"key\":\"{APP_NAMESPACE}/bench-{i:04}\""),
        )
        .await;
        sse.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(stream);
    let (med, max) = median(sse);
    println!("SSE: status write → event at a client: median {med:.1} ms (slowest {max:.1} ms)");

    // Chromium: load events of the list, then a status write → the row changing in the page.
    let chromedriver = common::tools::require("chromedriver");
    let chromium = common::tools::require("chromium");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let _driver = ChildGuard::new(
        std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let profile = tempfile::tempdir().expect("profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-quic", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--window-size=1280,900",
        format!("--user-data-dir={}", profile.path().display())]}),
    );
    // chromedriver takes a moment to listen on a loaded machine.
    let mut attempt = 0;
    let c = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if attempt < 40 => {
                attempt += 1;
                eprintln!("webdriver not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("webdriver session: {e}"),
        }
    };
    c.goto(&format!("{}/login", app.address))
        .await
        .expect("login page");
    // The token form is folded under the account form.
    c.find(fantoccini::Locator::Css("details.token-login summary"))
        .await
        .expect("token form")
        .click()
        .await
        .expect("unfold");
    c.find(fantoccini::Locator::Id("token"))
        .await
        .expect("field")
        .send_keys(&app.api_token)
        .await
        .expect("type");
    c.find(fantoccini::Locator::Css("details.token-login button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let mut dcl = Vec::new();
    let mut load = Vec::new();
    for _ in 0..5 {
        // The first page, as a visitor lands on it.
        c.goto(&format!("{}/", app.address)).await.expect("list");
        let t = c
            .execute("const n = performance.getEntriesByType('navigation')[0]; return [n.domContentLoadedEventEnd, n.loadEventEnd]", vec![])
            .await
            .expect("timing");
        dcl.push(t[0].as_f64().unwrap_or_default());
        load.push(t[1].as_f64().unwrap_or_default());
    }
    let (dcl_med, dcl_max) = median(dcl);
    let (load_med, load_max) = median(load);
    println!(
        "chromium, list of {n}: DOMContentLoaded median {dcl_med:.0} ms (slowest {dcl_max:.0}), load median {load_med:.0} ms (slowest {load_max:.0})"
    );
    let wait_live = "return document.getElementById('live-state')?.dataset.live === 'on'";
    while c.execute(wait_live, vec![]).await.expect("js") != Value::Bool(true) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut dom = Vec::new();
    for round in 0..LATENCY_ROUNDS {
        // An app on the first page, which the browser shows.
        let i = (round * 53 + 1) % n.min(100);
        let marker = format!("dom-{round}-{}", uuid::Uuid::new_v4());
        // The first change of the rows after the write is the replaced row (nothing else
        // writes statuses here: an api-only Capstan has no worker).
        let watch = "window.__seen = null; const rows = document.getElementById('app-rows'); \
            new MutationObserver((_, o) => { window.__seen = Date.now(); o.disconnect(); }) \
            .observe(rows, {childList: true}); return true";
        c.execute(watch, vec![]).await.expect("observer");
        let t0 = now_ms();
        write_status(&api, i, &marker).await;
        let seen = loop {
            let v = c.execute("return window.__seen", vec![]).await.expect("js");
            if let Some(ms) = v.as_f64() {
                break ms;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        dom.push(seen - t0);
    }
    let (med, max) = median(dom);
    println!(
        "browser: status write → row replaced in the page: median {med:.1} ms (slowest {max:.1} ms)"
    );
    let _ = c.close().await;
}
