//! Integration tests of the sandbox cluster: the real `kubectl`, the `kube` client, and raw HTTP.

#[path = "../common/child.rs"]
mod child;
mod children;
mod cli;
mod kube_client;
mod kubeconfig_file;
mod kubectl;
mod operations;
mod server;
mod tls;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use capstan::sandbox::{Sandbox, SandboxOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sandbox with fast simulated controllers.
pub async fn start() -> Sandbox {
    start_with(SandboxOptions {
        ready_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
}

/// A sandbox with these options.
pub async fn start_with(opts: SandboxOptions) -> Sandbox {
    capstan::install_crypto_provider();
    Sandbox::start(opts).await.expect("sandbox starts")
}

/// Writes the sandbox's kubeconfig into `dir` and returns its path.
pub fn write_kubeconfig(sb: &Sandbox, dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, sb.kubeconfig_yaml()).expect("write kubeconfig");
    path
}

/// Runs the real kubectl against a kubeconfig, failing the test instead of hanging.
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env(
            "HOME",
            kubeconfig.parent().expect("kubeconfig has a parent"),
        )
        .env_remove("KUBECONFIG")
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
        Ok(out) => out.expect("kubectl is installed"),
        Err(_) => panic!("kubectl {args:?} did not finish within 60 s"),
    }
}

/// stdout + stderr of a kubectl run, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How long one request of these tests may take, answer read to its end included; a server
/// that never ends an answer (a watch ignoring `timeoutSeconds`) fails the test instead of
/// hanging it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One raw HTTP/1.1 request; returns the status code and body (non-chunked answers only).
/// Fails the test when the exchange takes longer than [`REQUEST_TIMEOUT`].
pub async fn raw(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    raw_within(REQUEST_TIMEOUT, url, method, path, headers, body).await
}

/// [`raw`] with its own time limit.
pub async fn raw_within(
    limit: Duration,
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    match tokio::time::timeout(limit, raw_unbounded(url, method, path, headers, body)).await {
        Ok(answer) => answer,
        Err(_) => panic!("{method} {path}: no complete answer within {limit:?}"),
    }
}

async fn raw_unbounded(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    // A server may answer and close before reading a too-large body; the answer still counts.
    let _ = stream.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    (code, body.to_string())
}
