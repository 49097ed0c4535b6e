//! The `capstan` binary: `capstan sandbox` as a user runs it, `--version`, and configuration errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::child::ChildGuard;
use super::{kubectl, text};

fn capstan() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capstan"));
    // Keep the user's environment from changing what the test sees.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CAPSTAN")) {
        cmd.env_remove(key);
    }
    cmd
}

#[test]
fn version_is_printed() {
    let out = capstan().arg("--version").output().expect("capstan runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("capstan {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_configuration_value_is_a_clear_error() {
    let out = capstan()
        .arg("version")
        .env("CAPSTAN__LOG__FORMAT", "xml")
        .output()
        .expect("capstan runs");
    assert!(!out.status.success(), "an unknown log format must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("format") && stderr.contains("xml"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capstan_sandbox_prints_its_address_serves_kubectl_logs_json_and_keeps_state_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let state = dir.path().join("state.json");
    let mut child = ChildGuard::new(
        capstan()
            .args(["sandbox", "--listen", "127.0.0.1:0", "--write-kubeconfig"])
            .arg(&kubeconfig)
            .arg("--state")
            .arg(&state)
            .env("CAPSTAN__LOG__FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("capstan sandbox starts"),
    );
    let stdout = child.stdout.take().expect("stdout");
    let reader = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("listening on"))
            .collect::<Vec<String>>()
    });
    // The reader ends once the guard kills the process on the way out of a failing test.
    let banner = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the banner is printed within 60 s")
        .expect("reader");
    assert!(
        banner
            .iter()
            .any(|l| l.contains("Capstan sandbox") && l.contains("runs no containers")),
        "the banner says it is not a real cluster: {banner:?}"
    );

    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  a: b\n",
    )
    .expect("write");
    let created = kubectl(
        &kubeconfig,
        &["create", "-f", &manifest.display().to_string()],
    )
    .await;
    assert!(created.status.success(), "{}", text(&created));
    // Typed imperative commands send protobuf, which the sandbox refuses in words a user can act on.
    let typed = kubectl(
        &kubeconfig,
        &["create", "configmap", "typed", "--from-literal=a=b"],
    )
    .await;
    assert!(!typed.status.success());
    let refusal = String::from_utf8_lossy(&typed.stderr);
    assert!(
        refusal.contains("accepts JSON request bodies only"),
        "{}",
        text(&typed)
    );
    let version = kubectl(&kubeconfig, &["version", "-o", "json"]).await;
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("sandbox"),
        "{}",
        text(&version)
    );

    // SIGTERM: a service manager's stop. The state file must hold the ConfigMap afterwards.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                return (status, stderr);
            }
            if std::time::Instant::now() > deadline {
                panic!("capstan sandbox did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("waiter");
    assert!(status.0.success(), "clean exit on SIGTERM: {:?}", status.0);
    let logs = status.1;
    assert!(!logs.trim().is_empty(), "the sandbox logs something");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "log.format=json gives JSON lines: {line}"
        );
    }
    let saved = std::fs::read_to_string(&state).expect("state file written");
    assert!(
        saved.contains("\"kept\""),
        "the ConfigMap is in the state file"
    );
}

/// Reads stdout lines until one starts with `until`, returning them all (that one included);
/// fails the test after 60 s.
async fn banner_until(stdout: std::process::ChildStdout, until: &'static str) -> Vec<String> {
    let reader = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with(until);
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap_or_else(|_| panic!("no {until:?} line within 60 s"))
        .expect("reader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capstan_sandbox_tls_writes_a_private_kubeconfig_that_kubectl_uses() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").expect("write victim");
    std::os::unix::fs::symlink(&victim, &kubeconfig).expect("plant symlink");
    let mut child = ChildGuard::new(
        capstan()
            .args([
                "sandbox",
                "--tls",
                "--listen",
                "127.0.0.1:0",
                "--write-kubeconfig",
            ])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("capstan sandbox starts"),
    );
    let banner = banner_until(child.stdout.take().expect("stdout"), "kubeconfig written").await;
    assert!(
        banner
            .iter()
            .any(|l| l.starts_with("listening on https://")),
        "{banner:?}"
    );

    let out = kubectl(&kubeconfig, &["get", "namespaces", "-o", "name"]).await;
    child.kill_and_wait();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("namespace/default"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious",
        "the planted link's target is untouched"
    );
    let meta = std::fs::symlink_metadata(&kubeconfig).expect("metadata");
    assert!(
        meta.file_type().is_file(),
        "the kubeconfig is a regular file"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capstan_serve_starts_its_sandbox_over_tls_and_names_the_kubeconfig() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let mut child = ChildGuard::new(
        capstan()
            .arg("serve")
            .current_dir(dir.path())
            .env("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0")
            .env("CAPSTAN__SERVER__DATA_DIR", &data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("capstan serve starts"),
    );
    let banner = banner_until(child.stdout.take().expect("stdout"), "management cluster").await;
    let line = banner.last().cloned().unwrap_or_default();
    let kubeconfig = data_dir.join("sandbox.kubeconfig");
    let named = line.contains(&format!("kubectl --kubeconfig {}", kubeconfig.display()));
    let out = kubectl(&kubeconfig, &["get", "namespaces", "-o", "name"]).await;
    let anonymous = unauthenticated_get(&kubeconfig).await;
    child.kill_and_wait();
    assert!(line.contains("https://127.0.0.1:"), "{banner:?}");
    assert!(named, "the banner names the kubeconfig: {banner:?}");
    assert_eq!(
        anonymous, 401,
        "anyone on the machine without the token is refused"
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"),
        "{}",
        text(&out)
    );
    let mode = std::fs::metadata(&kubeconfig)
        .expect("kubeconfig")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    assert!(
        written.contains("certificate-authority-data:") && written.contains("token:"),
        "the kubeconfig carries the CA and a token"
    );
}

/// The status of `GET /api/v1/namespaces` without a token, trusting the kubeconfig's CA.
async fn unauthenticated_get(kubeconfig: &std::path::Path) -> u16 {
    use base64::Engine as _;
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("a kubeconfig");
    let cluster = kc.clusters[0].cluster.clone().expect("a cluster");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster.certificate_authority_data.expect("CA data"))
        .expect("base64");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("PEM")])
        .timeout(super::REQUEST_TIMEOUT)
        .build()
        .expect("client");
    let server = cluster.server.expect("a server URL");
    http.get(format!("{server}/api/v1/namespaces"))
        .send()
        .await
        .expect("the TLS handshake succeeds")
        .status()
        .as_u16()
}

#[test]
fn a_failing_command_prints_one_line_and_no_backtrace_even_with_rust_backtrace_set() {
    // Nothing listens on port 1: the command fails with a chain of causes.
    let out = capstan()
        .args([
            "app",
            "get",
            "guestbook",
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ])
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .output()
        .expect("capstan runs");
    assert!(!out.status.success(), "a failure exits non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    assert!(
        lines[0].contains("cannot reach http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("Error: "), "no Debug dump: {stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}
