//! The HTTP edge against hostile or careless clients: encoded and slow bodies, huge headers,
//! unsigned webhooks, bad names, and `/readyz` floods.

use std::time::Duration;

use capstan::config::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn push_body(app: &TestApp) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "after": "4".repeat(40),
        "repository": { "clone_url": app.repo_url, "default_branch": "main" },
    }))
    .expect("json")
}

/// A correctly signed GitHub push with `extra` headers.
async fn signed_push(app: &TestApp, extra: &[(String, String)]) -> reqwest::Response {
    let body = push_body(app);
    let mut req = app
        .http
        .post(format!("{}/api/webhook", app.address))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            capstan::webhook::Signature::sign(app.webhook_secret.as_bytes(), &body),
        );
    for (k, v) in extra {
        req = req.header(k.as_str(), v.as_str());
    }
    req.body(body).send().await.expect("webhook request")
}

/// Writes `head` and `body` on a raw connection and returns the status line the server answers,
/// or panics if it never answers.
async fn raw_exchange(address: &str, head: &str, body: &[u8]) -> String {
    let addr = address.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(head.as_bytes()).await.expect("write head");
    conn.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    // Only a deadline for a hang: the server must answer by itself, long before this.
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server never answered a stalled request");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_slow_or_oversized_webhooks_are_refused_and_enqueue_nothing() {
    let app = spawn_app(Options {
        role: Role::Api,
        extra_env: env(&[("CAPSTAN__WEBHOOK__BODY_TIMEOUT_MS", "500")]),
        ..Default::default()
    })
    .await;
    let router_queue = format!("{}.events.router", app.prefix);

    for encoding in ["gzip", "deflate", "br", "identity, gzip"] {
        let resp = signed_push(&app, &[("content-encoding".into(), encoding.into())]).await;
        assert_eq!(resp.status(), 415, "Content-Encoding: {encoding}");
        let body: Value = resp.json().await.expect("json error body");
        assert_eq!(body["code"], 415);
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Content-Encoding")),
            "{body}"
        );
    }

    // A request head over actix's 128 KiB limit, and one with more than the 96 headers it parses.
    let huge = signed_push(&app, &[("x-padding".into(), "a".repeat(200 * 1024))]).await;
    assert_eq!(huge.status(), 431);
    let many: Vec<(String, String)> = (0..100).map(|i| (format!("x-h{i}"), "x".into())).collect();
    let too_many = signed_push(&app, &many).await;
    assert_eq!(too_many.status(), 431);

    // A body announced as 1000 bytes of which 10 ever arrive: cut off, not held open.
    let head = format!(
        "POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256={}\r\nContent-Length: 1000\r\n\r\n",
        "0".repeat(64)
    );
    let status = raw_exchange(&app.address, &head, b"{\"ref\": \"").await;
    assert!(status.contains(" 408 "), "{status}");

    assert_eq!(
        queue_depth(&router_queue).await,
        0,
        "refused webhooks must not reach the broker"
    );
    // The same push, unencoded (or declared identity), is taken: the refusals above were not blanket.
    let plain = signed_push(&app, &[("content-encoding".into(), "identity".into())]).await;
    assert_eq!(plain.status(), 202);
    eventually(10, "the accepted event is in the queue", || async {
        queue_depth(&router_queue).await == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_unsigned_takes_effect_when_configured_but_never_excuses_a_wrong_signature() {
    let app = spawn_app(Options {
        role: Role::Api,
        extra_env: env(&[("CAPSTAN__WEBHOOK__ALLOW_UNSIGNED", "github")]),
        ..Default::default()
    })
    .await;
    let sha = "5".repeat(40);
    let unsigned = app.push_webhook(&sha, None, None).await;
    assert_eq!(
        unsigned.status(),
        202,
        "listed provider, unsigned request: accepted although a secret is configured"
    );
    let forged = app
        .push_webhook(
            &sha,
            Some(&capstan::webhook::Signature::sign(b"guess", b"{}")),
            None,
        )
        .await;
    assert_eq!(forged.status(), 401, "a wrong signature is still refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_readyz_calls_probe_the_cluster_once() {
    let app = spawn_app(Options {
        role: Role::Api,
        extra_env: env(&[("CAPSTAN__SERVER__READINESS_CACHE_MS", "600000")]),
        ..Default::default()
    })
    .await;
    // A zero delay changes nothing but counts every /version request the sandbox serves.
    app.sandbox
        .faults()
        .delay_next(1_000_000, "/version", Some("GET"), Duration::ZERO);
    let calls = (0..100).map(|_| app.http.get(format!("{}/readyz", app.address)).send());
    for resp in futures::future::join_all(calls).await {
        assert_eq!(resp.expect("readyz").status(), 200);
    }
    assert_eq!(
        app.sandbox.faults().hits(),
        1,
        "one cluster probe served a hundred /readyz calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_bad_documents_and_unknown_routes_answer_in_one_json_error_shape() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let call = |method: reqwest::Method, path: &str| {
        app.http
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&app.api_token)
    };
    async fn error_of(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.expect("a JSON error body");
        assert_eq!(body["code"], status, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        (status, body)
    }

    for (path, names) in [
        ("/api/v1/applications/Default/guestbook", "namespace"),
        ("/api/v1/applications/default/Guest_Book/refresh", "name"),
        (
            &format!("/api/v1/applications/{}/x", "a".repeat(64)) as &str,
            "namespace",
        ),
        ("/api/v1/applications/default/a..b/sync", "name"),
    ] {
        let method = if path.ends_with("refresh") || path.ends_with("sync") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let (status, body) = error_of(call(method, path).send().await.expect("request")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(names)),
            "{path}: {body}"
        );
    }

    let (status, _) = error_of(
        call(reqwest::Method::POST, "/api/v1/applications")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("bad json"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        call(
            reqwest::Method::POST,
            "/api/v1/applications/default/x/refresh?hard=maybe",
        )
        .send()
        .await
        .expect("bad query"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        call(reqwest::Method::GET, "/api/v1/nothing-here")
            .send()
            .await
            .expect("unknown route"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = error_of(
        app.http
            .get(format!("{}/api/v1/applications", app.address))
            .send()
            .await
            .expect("no token"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = error_of(
        call(reqwest::Method::GET, "/api/v1/applications/default/absent")
            .send()
            .await
            .expect("missing app"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("absent")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directories_and_generated_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("tempdir");
    let data_dir = parent.path().join("fresh/capstan");
    let app = spawn_app(Options {
        extra_env: env(&[
            ("CAPSTAN__SERVER__DATA_DIR", &data_dir.display().to_string()),
            // Empty: the secret is generated into the data directory.
            ("CAPSTAN__WEBHOOK__GITHUB_SECRET", ""),
        ]),
        ..Default::default()
    })
    .await;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&parent.path().join("fresh")), 0o700);
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("git")), 0o700, "the Git cache");
    assert_eq!(mode(&data_dir.join("github-webhook-secret")), 0o600);
    drop(app);
}
