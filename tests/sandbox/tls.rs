//! The sandbox in `--tls` mode: HTTPS with a generated CA, and a bearer token on every request.

use std::time::Duration;

use capstan::sandbox::{Sandbox, SandboxOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{kubectl, start_with, text};

async fn start_tls() -> Sandbox {
    start_with(SandboxOptions {
        tls: true,
        ready_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
}

/// An HTTPS client that trusts only the sandbox's CA.
fn https_client(sb: &Sandbox) -> reqwest::Client {
    let ca = sb.ca_pem().expect("a TLS sandbox has a CA");
    let cert = reqwest::Certificate::from_pem(ca.as_bytes()).expect("the CA is PEM");
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .timeout(super::REQUEST_TIMEOUT)
        .build()
        .expect("client")
}

async fn get_namespaces(sb: &Sandbox, authorization: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = https_client(sb).get(format!("{}/api/v1/namespaces", sb.url()));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let resp = req.send().await.expect("the TLS handshake succeeds");
    let code = resp.status().as_u16();
    (code, resp.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_over_tls_with_the_written_kubeconfig() {
    let sb = start_tls().await;
    assert!(sb.url().starts_with("https://127.0.0.1:"), "{}", sb.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    sb.write_kubeconfig(&kc).expect("kubeconfig written");
    let written = std::fs::read_to_string(&kc).expect("read kubeconfig");
    assert!(written.contains("certificate-authority-data:"), "{written}");
    assert!(!written.contains("insecure-skip-tls-verify"), "{written}");

    let out = kubectl(&kc, &["get", "namespaces", "-o", "name"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"),
        "{}",
        text(&out)
    );
    // Writes go through too: kubectl sends the token over TLS.
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: over-tls\ndata:\n  a: b\n",
    )
    .expect("write manifest");
    let out = kubectl(&kc, &["apply", "-f", &manifest.display().to_string()]).await;
    assert!(out.status.success(), "{}", text(&out));
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let cm = api.get("over-tls").await.expect("kubectl created it");
    assert_eq!(cm.data.unwrap_or_default()["a"], "b");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_token_or_with_a_wrong_one_get_401() {
    let sb = start_tls().await;
    let token = sb.token().expect("a TLS sandbox generates a token");
    assert!(token.len() >= 32, "the generated token is not guessable");

    let (code, status) = get_namespaces(&sb, None).await;
    assert_eq!(code, 401, "{status}");
    assert_eq!(status["reason"], "Unauthorized");
    let (code, _) = get_namespaces(&sb, Some("Bearer wrong")).await;
    assert_eq!(code, 401);
    let (code, list) = get_namespaces(&sb, Some(&format!("Bearer {token}"))).await;
    assert_eq!(code, 200, "{list}");
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["metadata"]["name"] == "kube-system")),
        "{list}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_token_is_the_one_required() {
    let sb = start_with(SandboxOptions {
        tls: true,
        token: Some("chosen-token".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(sb.token(), Some("chosen-token"));
    let (code, _) = get_namespaces(&sb, Some("Bearer chosen-token")).await;
    assert_eq!(code, 200);
    assert!(sb.kubeconfig_yaml().contains("token: \"chosen-token\""));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let sb = start_tls().await;
    let addr = sb.url().trim_start_matches("https://").to_string();
    let token = sb.token().expect("token").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // Even with the right token, a plain-text request must not be served.
    let req = format!(
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    // A bound so a server that waits forever fails the test instead of hanging it.
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closes a plain-text connection");
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        !answer.starts_with("HTTP/") && !answer.contains("kube-system"),
        "plain HTTP got an answer: {answer}"
    );
    // The server is still there for TLS clients.
    let (code, _) = get_namespaces(&sb, Some(&format!("Bearer {token}"))).await;
    assert_eq!(code, 200);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kube_client_from_start_trusts_the_ca_and_sends_the_token() {
    let sb = start_tls().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "via-kube"}, "data": {"k": "v"}}))
            .expect("configmap");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create over TLS");
    let got = api.get("via-kube").await.expect("get over TLS");
    assert_eq!(got.data.unwrap_or_default()["k"], "v");
    sb.shutdown().await;
}
