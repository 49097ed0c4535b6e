//! Many clusters from one control plane: a second sandbox (TLS and a token) registered as an Argo
//! CD cluster Secret, read unchanged; its apps sync; when it stops only its apps turn Unknown with
//! the reason; rotated credentials in the Secret are used without a restart.

use std::time::Duration;

use base64::Engine as _;
use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::store::cluster::ClusterObject;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::helpers::*;

async fn second_sandbox(
    listen: std::net::SocketAddr,
    token: &str,
    state: &std::path::Path,
) -> Sandbox {
    Sandbox::start(SandboxOptions {
        listen,
        tls: true,
        token: Some(token.into()),
        state_file: Some(state.to_path_buf()),
        ready_delay: Duration::from_millis(100),
    })
    .await
    .expect("second sandbox starts")
}

/// Applies the Argo CD cluster Secret for `sandbox` (name `second`) in the control namespace.
async fn register(app: &TestApp, sandbox: &Sandbox, token: &str) {
    let ca = sandbox.ca_pem().expect("a TLS sandbox has a CA");
    let config = json!({"bearerToken": token, "tlsClientConfig": {"insecure": false,
        "caData": base64::engine::general_purpose::STANDARD.encode(ca)}});
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cluster-second", "namespace": APP_NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
        "type": "Opaque",
        "stringData": {"name": "second", "server": sandbox.url(), "config": config.to_string()},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .patch(
            "cluster-second",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("cluster Secret applied");
}

fn condition(a: &Value, kind: &str) -> String {
    a["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_on_a_second_cluster_sync_and_only_they_fail_while_it_is_down() {
    let app = spawn_app(Options::default()).await;
    let state = app.data_dir.path().join("second-sandbox.json");
    let second = second_sandbox("127.0.0.1:0".parse().expect("addr"), "token-one", &state).await;
    let listen: std::net::SocketAddr = second
        .url()
        .trim_start_matches("https://")
        .parse()
        .expect("the sandbox's address");
    let server = second.url().to_owned();
    register(&app, &second, "token-one").await;

    app.repo
        .write("local/config.yaml", &config_map("here", "one"));
    app.repo
        .write("remote/config.yaml", &config_map("there", "one"));
    let first = app.repo.commit("one app per cluster");
    assert_eq!(
        app.create_app("local", "local", Some(true)).await.status(),
        201
    );
    let remote = json!({
        "project": "default",
        "source": { "repoURL": app.repo_url, "path": "remote", "targetRevision": "main" },
        "destination": { "server": server, "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    });
    assert_eq!(app.create_app_with("remote", remote).await.status(), 201);
    for name in ["local", "remote"] {
        app.wait_app(name, 60, "Synced", |a| {
            sync_of(a) == ("Synced".into(), first.clone())
        })
        .await;
    }
    let there: Api<ConfigMap> = Api::namespaced(second.client(), "default");
    assert!(
        there
            .get_opt("there")
            .await
            .expect("second answers")
            .is_some(),
        "applied to the second cluster"
    );
    assert!(
        app.config_map("there").await.is_none(),
        "not to the management cluster"
    );
    // By name too: an app whose destination is `name: second`.
    let by_name = json!({
        "project": "default",
        "source": { "repoURL": app.repo_url, "path": "remote", "targetRevision": "main" },
        "destination": { "name": "second", "namespace": "default" },
    });
    assert_eq!(app.create_app_with("by-name", by_name).await.status(), 201);
    // It compares against the second cluster, where `remote` already owns the object.
    let shared = app
        .wait_app("by-name", 60, "compared on the second cluster", |a| {
            sync_of(a).1 == first && !condition(a, "SharedResourceWarning").is_empty()
        })
        .await;
    assert!(
        condition(&shared, "SharedResourceWarning").contains("capstan/remote"),
        "{}",
        condition(&shared, "SharedResourceWarning")
    );

    // How long a push takes to reach the local app while the second cluster is up, then down.
    let up = local_push_latencies(&app, "up").await;
    // The second cluster stops: its apps turn Unknown with the reason; the local app still syncs.
    second.shutdown().await;
    let down = app
        .wait_app("remote", 60, "Unknown with the reason", |a| {
            sync_of(a).0 == "Unknown"
                && condition(a, "ComparisonError").contains("cannot be reached")
        })
        .await;
    assert!(
        condition(&down, "ComparisonError").contains("second"),
        "{}",
        condition(&down, "ComparisonError")
    );
    let down = local_push_latencies(&app, "down").await;
    // A figure, not an assertion: timing is the benchmarks' business.
    eprintln!(
        "push to Synced of an in-cluster app, median of {}: {:?} with the second cluster up, {:?} with it down",
        up.len(),
        up[up.len() / 2],
        down[down.len() / 2]
    );
    let second_commit = app.repo.head();

    // It comes back (same address) with a new CA and a rotated token, put in the Secret: the
    // remote app heals without a restart of Capstan.
    let second = second_sandbox(listen, "token-two", &state).await;
    register(&app, &second, "token-two").await;
    app.wait_app("remote", 60, "Synced again", |a| {
        sync_of(a) == ("Synced".into(), second_commit.clone())
            && condition(a, "ComparisonError").is_empty()
    })
    .await;
    let there: Api<ConfigMap> = Api::namespaced(second.client(), "default");
    assert!(there.get_opt("there").await.expect("answers").is_some());
}

/// Pushes three changes for the local app, each waited for until Synced; the latencies, sorted.
async fn local_push_latencies(app: &TestApp, label: &str) -> Vec<Duration> {
    let mut took = Vec::new();
    for i in 0..3 {
        app.repo.write(
            "local/config.yaml",
            &config_map("here", &format!("{label}-{i}")),
        );
        let commit = app.repo.commit(&format!("local change {label} {i}"));
        let start = std::time::Instant::now();
        assert_eq!(
            app.push_webhook(&commit, Some(""), None).await.status(),
            202
        );
        app.wait_app("local", 30, "the local app synced the new commit", |a| {
            sync_of(a) == ("Synced".into(), commit.clone())
        })
        .await;
        took.push(start.elapsed());
    }
    took.sort();
    took
}

/// Repository credentials from Argo CD Secrets, read unchanged: a repository the configuration has
/// no credentials for fails to fetch until a `repository` Secret for it (or a `repo-creds`
/// template for its prefix) exists, then syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_credentials_come_from_argo_cd_secrets() {
    let app = spawn_app(Options::default()).await;
    let private = crate::common::git::TestRepo::named("private");
    private.write("app/config.yaml", &config_map("private-config", "x"));
    let commit = private.commit("private app");
    let other = crate::common::git::TestRepo::named("other");
    other.write("app/config.yaml", &config_map("other-config", "y"));
    other.commit("other app");
    // Both repositories under one server root, behind credentials only the Secrets carry.
    let root = tempfile::tempdir().expect("tempdir");
    for repo in [&private, &other] {
        let status = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(repo.path())
            .arg(root.path().join(repo.name()))
            .status()
            .expect("git clone");
        assert!(status.success());
    }
    let server =
        crate::common::git_http::GitHttpServer::start(root.path(), Some(("argo", "first")));
    let spec = |name: &str| {
        json!({
            "project": "default",
            "source": { "repoURL": server.url_for(name), "path": "app", "targetRevision": "main" },
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
            "syncPolicy": { "automated": { "prune": true } },
        })
    };
    assert_eq!(
        app.create_app_with("private", spec("private"))
            .await
            .status(),
        201
    );
    app.wait_app("private", 60, "a fetch error without credentials", |a| {
        !condition(a, "ComparisonError").is_empty()
    })
    .await;

    let secrets: Api<Secret> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    let apply = |name: &str, kind: &str, url: String, password: &str| {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": APP_NAMESPACE,
                "labels": {"argocd.argoproj.io/secret-type": kind}},
            "stringData": {"url": url, "username": "argo", "password": password, "type": "git"},
        }))
        .expect("secret");
        let secrets = secrets.clone();
        let name = name.to_owned();
        async move {
            secrets
                .patch(
                    &name,
                    &PatchParams::apply("test").force(),
                    &Patch::Apply(&secret),
                )
                .await
                .expect("secret applied");
        }
    };
    apply(
        "repo-private",
        "repository",
        server.url_for("private"),
        "first",
    )
    .await;
    // Secrets are re-read every few seconds; a refresh (as the poller's) then fetches with them.
    refresh_until(&app, "private", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    assert!(app.config_map("private-config").await.is_some());

    // A template for the server's prefix serves the other repository.
    let prefix = server.url_for("").trim_end_matches('/').to_owned();
    apply("creds-all", "repo-creds", prefix, "first").await;
    assert_eq!(
        app.create_app_with("other", spec("other")).await.status(),
        201
    );
    refresh_until(&app, "other", |a| sync_of(a).0 == "Synced").await;
    assert!(app.config_map("other-config").await.is_some());
}

/// Asks for a refresh every second until `check` holds (at most 60 s).
async fn refresh_until(app: &TestApp, name: &str, check: impl Fn(&Value) -> bool) {
    for _ in 0..60 {
        if check(&app.get_app(name).await) {
            return;
        }
        app.refresh_app(name).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!(
        "{name} never got there: {}",
        app.get_app(name).await["status"]
    );
}

/// `capstan cluster add/list/rm` against a running server: the second cluster registered from
/// files (token and CA) syncs an app; the list shows its version, state and app count; removing
/// it makes its app an InvalidSpecError.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_cli_adds_lists_and_removes_clusters() {
    let app = spawn_app(Options::default()).await;
    let state = app.data_dir.path().join("third.json");
    let third = second_sandbox("127.0.0.1:0".parse().expect("addr"), "cli-token", &state).await;
    let token = app.data_dir.path().join("token");
    let ca = app.data_dir.path().join("ca.pem");
    std::fs::write(&token, "cli-token\n").expect("token file");
    std::fs::write(&ca, third.ca_pem().expect("ca")).expect("ca file");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args([
                "cluster",
                "--server",
                &app.address,
                "--token",
                &app.api_token,
            ])
            .args(args)
            .output()
            .expect("capstan runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = cli(&[
        "add",
        "third",
        third.url(),
        "--token-file",
        &token.display().to_string(),
        "--ca",
        &ca.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, _) = cli(&["add", "third", third.url()]);
    assert_eq!(code, Some(1), "a taken name is refused");

    app.repo
        .write("remote/config.yaml", &config_map("on-third", "x"));
    let commit = app.repo.commit("an app for the third cluster");
    let spec = json!({
        "project": "default",
        "source": { "repoURL": app.repo_url, "path": "remote", "targetRevision": "main" },
        "destination": { "name": "third", "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    });
    assert_eq!(app.create_app_with("on-third", spec).await.status(), 201);
    app.wait_app("on-third", 60, "Synced on the third cluster", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    let (code, stdout, stderr) = cli(&["list"]);
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("third"))
        .unwrap_or_else(|| panic!("not listed:\n{stdout}"));
    assert!(
        line.contains(third.url()) && line.contains("Successful"),
        "{line}"
    );
    assert!(line.trim_end().ends_with('1'), "one app targets it: {line}");
    assert!(stdout.lines().any(|l| l.contains("in-cluster")), "{stdout}");

    let (code, _, stderr) = cli(&["rm", "third"]);
    assert_eq!(code, Some(0), "{stderr}");
    app.refresh_app("on-third").await;
    app.wait_app(
        "on-third",
        60,
        "InvalidSpecError once the cluster is gone",
        |a| condition(a, "InvalidSpecError").contains("not a registered cluster"),
    )
    .await;
    let (code, _, _) = cli(&["rm", "third"]);
    assert_eq!(code, Some(1), "removing it twice is a 404");
}

/// `capstan repo add/list/rm`: credentials registered from a file reach the fetch, the list never
/// shows them, and removing them removes the Secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repo_cli_adds_lists_and_removes_credentials() {
    let app = spawn_app(Options::default()).await;
    let private = crate::common::git::TestRepo::named("vault");
    private.write("app/config.yaml", &config_map("vault-config", "x"));
    let commit = private.commit("vault app");
    let root = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(private.path())
        .arg(root.path().join("vault"))
        .status()
        .expect("git clone");
    assert!(status.success());
    let server =
        crate::common::git_http::GitHttpServer::start(root.path(), Some(("robot", "pa55word")));
    let password = app.data_dir.path().join("repo-password");
    std::fs::write(&password, "pa55word\n").expect("password file");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["repo", "--server", &app.address, "--token", &app.api_token])
            .args(args)
            .output()
            .expect("capstan runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let url = server.url_for("vault");
    let (code, _, stderr) = cli(&[
        "add",
        &url,
        "--username",
        "robot",
        "--password-file",
        &password.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, _) = cli(&["list"]);
    assert_eq!(code, Some(0));
    let line = stdout.lines().find(|l| l.contains(&url)).expect("listed");
    assert!(
        line.contains("repository") && line.contains("robot") && line.contains("set"),
        "{line}"
    );
    assert!(
        !stdout.contains("pa55word"),
        "the password is never listed: {stdout}"
    );

    let spec = json!({
        "project": "default",
        "source": { "repoURL": url, "path": "app", "targetRevision": "main" },
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    });
    assert_eq!(app.create_app_with("vault", spec).await.status(), 201);
    refresh_until(&app, "vault", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;

    let (code, _, stderr) = cli(&["rm", &url]);
    assert_eq!(code, Some(0), "{stderr}");
    let (_, stdout, _) = cli(&["list"]);
    assert!(!stdout.contains(&url), "{stdout}");
}

/// The Secret a `Cluster` object names, with the keys of a service-account-token Secret.
async fn cluster_credentials(app: &TestApp, sandbox: &Sandbox, token: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "edge-creds", "namespace": APP_NAMESPACE},
        "type": "Opaque",
        "stringData": {"token": token, "ca.crt": sandbox.ca_pem().expect("a TLS sandbox has a CA")},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .patch(
            "edge-creds",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("credentials Secret applied");
}

async fn cluster_object(app: &TestApp, name: &str, spec: Value) {
    let object: ClusterObject = serde_json::from_value(json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "namespace": APP_NAMESPACE},
        "spec": spec,
    }))
    .expect("a Cluster object");
    Api::<ClusterObject>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&object),
        )
        .await
        .expect("Cluster object applied");
}

/// A second cluster registered as a `Cluster` object with its credentials in a Secret: its app
/// syncs; a restart with a new CA and a rotated token, put in the Secret, is used without a
/// restart of Capstan. A registration whose Secret is missing and a cluster that accepts
/// connections but never answers each fail only their own app, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_object_registers_a_cluster_and_its_secret_rotates() {
    let app = spawn_app(Options::default()).await;
    let state = app.data_dir.path().join("edge.json");
    let edge = second_sandbox("127.0.0.1:0".parse().expect("addr"), "edge-one", &state).await;
    let listen: std::net::SocketAddr = edge
        .url()
        .trim_start_matches("https://")
        .parse()
        .expect("the sandbox's address");
    cluster_credentials(&app, &edge, "edge-one").await;
    cluster_object(
        &app,
        "edge",
        json!({"server": edge.url(), "secretRef": {"name": "edge-creds"}}),
    )
    .await;
    cluster_object(
        &app,
        "ghost",
        json!({"server": "https://127.0.0.1:1", "secretRef": {"name": "missing-creds"}}),
    )
    .await;
    // Accepts TCP connections and never says a word (a blackholed API server).
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hung_url = format!("https://{}", hung.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    cluster_object(&app, "hung", json!({"server": hung_url, "insecure": true})).await;

    app.repo
        .write("remote/config.yaml", &config_map("at-edge", "one"));
    let first = app.repo.commit("an app per registration");
    for (name, destination) in [
        ("on-edge", json!({"name": "edge", "namespace": "default"})),
        ("on-ghost", json!({"name": "ghost", "namespace": "default"})),
        (
            "on-hung",
            json!({"server": hung_url, "namespace": "default"}),
        ),
    ] {
        let spec = json!({
            "project": "default",
            "source": { "repoURL": app.repo_url, "path": "remote", "targetRevision": "main" },
            "destination": destination,
            "syncPolicy": { "automated": { "prune": true } },
        });
        assert_eq!(app.create_app_with(name, spec).await.status(), 201);
    }
    app.wait_app("on-edge", 60, "Synced on the edge cluster", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    let at_edge: Api<ConfigMap> = Api::namespaced(edge.client(), "default");
    assert!(
        at_edge
            .get_opt("at-edge")
            .await
            .expect("edge answers")
            .is_some()
    );
    app.wait_app("on-ghost", 60, "told its Secret is missing", |a| {
        sync_of(a).0 == "Unknown"
            && condition(a, "ComparisonError").contains("Secret missing-creds does not exist")
    })
    .await;
    app.wait_app("on-hung", 60, "Unknown: the cluster never answers", |a| {
        sync_of(a).0 == "Unknown" && condition(a, "ComparisonError").contains("cannot be reached")
    })
    .await;

    let listed: Value = app
        .get("/api/v1/clusters")
        .await
        .json()
        .await
        .expect("cluster list");
    let find = |name: &str| {
        listed["items"]
            .as_array()
            .and_then(|i| i.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    let listed_edge = find("edge");
    assert_eq!(listed_edge["source"], "Cluster/edge");
    assert_eq!(listed_edge["status"], "Successful", "{listed_edge}");
    assert!(
        listed_edge["version"]
            .as_str()
            .is_some_and(|v| v.starts_with('v'))
    );
    assert_eq!(listed_edge["apps"], 1);
    let ghost = find("ghost");
    assert_eq!(ghost["status"], "Failed", "{ghost}");
    assert!(
        ghost["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing-creds"))
    );
    assert_eq!(find("hung")["status"], "Failed");

    // The edge cluster comes back with a new CA and a rotated token; only the Secret changes.
    edge.shutdown().await;
    let edge = second_sandbox(listen, "edge-two", &state).await;
    cluster_credentials(&app, &edge, "edge-two").await;
    app.repo
        .write("remote/config.yaml", &config_map("at-edge", "two"));
    let second = app.repo.commit("a change for the edge cluster");
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );
    app.wait_app("on-edge", 90, "Synced again with the rotated token", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    let at_edge: Api<ConfigMap> = Api::namespaced(edge.client(), "default");
    let cm = at_edge
        .get("at-edge")
        .await
        .expect("applied with the new token");
    assert_eq!(
        cm.data.and_then(|d| d.get("key").cloned()).as_deref(),
        Some("two")
    );

    // Removing it through the API deletes the object, not the user's Secret.
    let client = reqwest::Client::new();
    let removed = client
        .delete(format!("{}/api/v1/clusters/edge", app.address))
        .bearer_auth(&app.api_token)
        .send()
        .await
        .expect("delete");
    assert_eq!(removed.status(), 200);
    let objects: Api<ClusterObject> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    assert!(objects.get_opt("edge").await.expect("read").is_none());
    let secrets: Api<Secret> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    assert!(secrets.get_opt("edge-creds").await.expect("read").is_some());
}

/// An SSH repository as Argo CD users register it: `capstan repo add --ssh-private-key-path`
/// writes a `repository` Secret with `sshPrivateKey`, and the server's host key comes from the
/// `argocd-ssh-known-hosts-cm` ConfigMap. Without the ConfigMap the key is refused with the reason;
/// with both, the app fetches over SSH and syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_keys_come_from_argo_cd_repository_secrets() {
    let sshd = crate::common::tools::require("sshd");
    let app = spawn_app(Options::default()).await;
    let key = crate::common::sshd::keypair();
    let server = crate::common::sshd::SshServer::start(&sshd, &key.public);
    app.repo
        .write("ssh/config.yaml", &config_map("over-ssh", "x"));
    let commit = app.repo.commit("an app fetched over SSH");
    let url = server.url_for(app.repo.path());
    let key_file = app.data_dir.path().join("id_ed25519");
    std::fs::write(&key_file, &key.private).expect("key file");
    let add = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["repo", "--server", &app.address, "--token", &app.api_token])
            .args(["add", &url, "--ssh-private-key-path"])
            .arg(&key_file)
            .output()
            .expect("capstan runs")
    };
    let refused = add();
    assert_eq!(refused.status.code(), Some(1), "no host key to trust yet");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("argocd-ssh-known-hosts-cm"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let known_hosts: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-ssh-known-hosts-cm", "namespace": APP_NAMESPACE},
        "data": {"ssh_known_hosts": server.known_hosts_line()},
    }))
    .expect("config map");
    Api::<ConfigMap>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .patch(
            "argocd-ssh-known-hosts-cm",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&known_hosts),
        )
        .await
        .expect("known hosts applied");
    let added = add();
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let spec = json!({
        "project": "default",
        "source": { "repoURL": url, "path": "ssh", "targetRevision": "main" },
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    });
    assert_eq!(app.create_app_with("over-ssh", spec).await.status(), 201);
    refresh_until(&app, "over-ssh", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    assert!(app.config_map("over-ssh").await.is_some());
}
