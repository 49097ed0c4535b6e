//! The server around the objects: state file, bearer token, fault injection, versions, 410 Gone.

use std::time::Duration;

use capstan::sandbox::{Sandbox, SandboxError, SandboxOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchParams};
use serde_json::json;

use super::{raw, raw_within, start, start_with};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let opts = SandboxOptions {
        state_file: Some(state.clone()),
        ..Default::default()
    };
    let sb = start_with(opts.clone()).await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let created = api
        .create(&PostParams::default(), &cm("kept"))
        .await
        .expect("create");
    let rv = sb.resource_version();
    sb.shutdown().await;

    let sb = start_with(opts).await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let kept = api.get("kept").await.expect("object survived");
    assert_eq!(kept.metadata.uid, created.metadata.uid);
    assert_eq!(kept.data.unwrap_or_default()["k"], "v");
    api.create(&PostParams::default(), &cm("after"))
        .await
        .expect("create after restart");
    assert!(
        sb.resource_version() > rv,
        "the resourceVersion counter continues"
    );

    // Watching from before the restart is answered with 410 Gone.
    let mut stream = Box::pin(
        api.watch(&WatchParams::default(), "1")
            .await
            .expect("watch opens"),
    );
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event")
        .expect("stream item");
    match first {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410),
        Ok(kube::api::WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"resourceVersion\": \"12\", \"objects\": [tru").expect("write");
    capstan::install_crypto_provider();
    let err = match Sandbox::start(SandboxOptions {
        state_file: Some(state),
        ..Default::default()
    })
    .await
    {
        Ok(_) => panic!("a corrupt state file must not load"),
        Err(e) => e,
    };
    assert!(matches!(err, SandboxError::State(_)), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_enforced() {
    let sb = start_with(SandboxOptions {
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let (code, body) = raw(sb.url(), "GET", "/api/v1/namespaces", &[], "").await;
    assert_eq!(code, 401);
    let status: serde_json::Value = serde_json::from_str(&body).expect("Status body");
    assert_eq!(status["reason"], "Unauthorized");
    let (code, _) = raw(
        sb.url(),
        "GET",
        "/api/v1/namespaces",
        &[("Authorization", "Bearer wrong")],
        "",
    )
    .await;
    assert_eq!(code, 401);
    let (code, _) = raw(
        sb.url(),
        "GET",
        "/api/v1/namespaces",
        &[("Authorization", "Bearer s3cret")],
        "",
    )
    .await;
    assert_eq!(code, 200);
    // The client the sandbox hands out carries the token.
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    api.create(&PostParams::default(), &cm("authorized"))
        .await
        .expect("client with token");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_are_seen_by_clients() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    api.create(&PostParams::default(), &cm("flaky"))
        .await
        .expect("create");

    sb.faults()
        .fail_next(1, "/configmaps/flaky", Some("GET"), 500);
    let err = api.get("flaky").await.expect_err("injected 500");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 500 && s.reason == "InternalError"),
        "{err:?}"
    );
    api.get("flaky").await.expect("only the next request fails");

    sb.faults().fail_next(1, "/configmaps", None, 429);
    let (code, body) = raw(
        sb.url(),
        "GET",
        "/api/v1/namespaces/default/configmaps",
        &[],
        "",
    )
    .await;
    assert_eq!(code, 429);
    assert!(body.contains("TooManyRequests"), "{body}");
    // kube retries 429 answers on its own: the request succeeds after the fault is used up.
    sb.faults().fail_next(1, "/configmaps/flaky", None, 429);
    api.get("flaky").await.expect("kube retries after 429");
    assert_eq!(sb.faults().hits(), 3);

    sb.faults()
        .delay_next(1, "/configmaps/flaky", None, Duration::from_millis(200));
    api.get("flaky")
        .await
        .expect("a delayed request still succeeds");
    assert_eq!(sb.faults().hits(), 4);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_discovery_say_it_is_the_sandbox() {
    let sb = start().await;
    let info = sb.client().apiserver_version().await.expect("version");
    assert!(
        info.git_version.contains("capstan-sandbox"),
        "{}",
        info.git_version
    );
    let (code, body) = raw(sb.url(), "GET", "/version", &[], "").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"capstanSandbox\":true"), "{body}");
    let (code, body) = raw(sb.url(), "GET", "/apis/apps/v1", &[], "").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"deployments/status\""), "{body}");
    let (code, body) = raw(sb.url(), "GET", "/openapi/v3", &[], "").await;
    assert_eq!(code, 200);
    assert!(body.contains("apis/apps/v1"), "{body}");
    let (code, body) = raw(
        sb.url(),
        "GET",
        "/api/v1/namespaces/default/nothings",
        &[],
        "",
    )
    .await;
    assert_eq!(code, 404);
    assert!(body.contains("\"kind\":\"Status\""), "{body}");
    let (code, _) = raw(sb.url(), "GET", "/healthz", &[], "").await;
    assert_eq!(code, 200);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_watch_path_streams_events_and_honours_timeout() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    api.create(&PostParams::default(), &cm("watched"))
        .await
        .expect("create");
    // With timeoutSeconds=1 the server ends the stream, so reading to the end terminates; a
    // server that ignored it would keep the stream open and fail this within 10 s.
    let (code, body) = raw_within(
        Duration::from_secs(10),
        sb.url(),
        "GET",
        "/api/v1/watch/namespaces/default/configmaps?timeoutSeconds=1&sendInitialEvents=true&allowWatchBookmarks=true",
        &[],
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body.contains("{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"v1\""),
        "{body}"
    );
    assert!(body.contains("\"name\":\"watched\""), "{body}");
    assert!(body.contains("k8s.io/initial-events-end"), "{body}");
    let (code, body) = raw(
        sb.url(),
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc",
        &[],
        "",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    sb.shutdown().await;
}

/// Tests elsewhere use plain `#[tokio::test]`: the sandbox works on a current-thread runtime too.
#[tokio::test]
async fn works_on_a_current_thread_runtime() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    api.create(&PostParams::default(), &cm("single"))
        .await
        .expect("create");
    assert_eq!(
        api.get("single")
            .await
            .expect("get")
            .metadata
            .name
            .as_deref(),
        Some("single")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_a_status() {
    let sb = start().await;
    let big = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"x\":\"{}\"}}}}",
        "a".repeat(3 * 1024 * 1024)
    );
    let (code, body) = raw(
        sb.url(),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[("Content-Type", "application/json")],
        &big,
    )
    .await;
    assert_eq!(code, 413, "{}", &body[..body.len().min(300)]);
    assert!(
        body.contains("RequestEntityTooLarge"),
        "{}",
        &body[..body.len().min(300)]
    );
    sb.shutdown().await;
}
