//! End-to-end figures for the first whole path (a bench binary; `cargo bench --bench pipeline`):
//! latency from a signed webhook being received to the resource applied in the sandbox, median and
//! p99 over PUSHES pushes, with the embedded queue and with RabbitMQ; and webhooks accepted per
//! second with RabbitMQ and publisher confirms.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use capstan::config::Settings;
use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::webhook::Signature;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;

const PUSHES: usize = 100;
const SECRET: &str = "bench-secret";
const TOKEN: &str = "bench-token";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit_value(repo: &Path, i: usize) -> String {
    std::fs::write(
        repo.join("cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\ndata:\n  value: \"{i}\"\n"
        ),
    )
    .expect("write manifest");
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", &format!("value {i}")]);
    git(repo, &["rev-parse", "HEAD"])
}

fn settings(queue: &str, kubeconfig: &Path, data: &Path, role: &str) -> Settings {
    let env: Vec<(String, String)> = [
        ("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0".to_string()),
        ("CAPSTAN__SERVER__ROLE", role.to_string()),
        ("CAPSTAN__SERVER__DATA_DIR", data.display().to_string()),
        ("CAPSTAN__API__TOKEN", TOKEN.to_string()),
        ("CAPSTAN__WEBHOOK__GITHUB_SECRET", SECRET.to_string()),
        ("CAPSTAN__QUEUE__KIND", queue.to_string()),
        (
            "CAPSTAN__QUEUE__PREFIX",
            format!("capstan-bench-{}", uuid::Uuid::new_v4()),
        ),
        ("CAPSTAN__CLUSTER__MANAGEMENT", "kubeconfig".to_string()),
        (
            "CAPSTAN__CLUSTER__KUBECONFIG",
            kubeconfig.display().to_string(),
        ),
        ("CAPSTAN__LOG__LEVEL", "warn".to_string()),
        // The repository is a local path; a kubeconfig cluster reads only listed roots.
        (
            "CAPSTAN__GIT__ALLOWED_LOCAL_ROOTS",
            data.display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Settings::load_from(None, env).expect("bench settings")
}

fn push_body(repo_url: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "before": "1".repeat(40), "after": after,
        "repository": {"clone_url": repo_url, "default_branch": "main"},
        "commits": [{"added": [], "removed": [], "modified": ["cm.yaml"]}]
    }))
    .expect("json")
}

async fn send(http: &reqwest::Client, base: &str, body: Vec<u8>) -> u16 {
    http.post(format!("{base}/api/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            Signature::sign(SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A sandbox with its kubeconfig written into a fresh temporary directory.
async fn sandbox() -> (Sandbox, tempfile::TempDir, std::path::PathBuf) {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).expect("kubeconfig");
    (sandbox, dir, kubeconfig)
}

async fn latency(queue: &str) -> Vec<Duration> {
    let (sandbox, dir, kubeconfig) = sandbox().await;
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "b@capstan.dev"]);
    git(&repo, &["config", "user.name", "bench"]);
    commit_value(&repo, 0);
    let repo_url = format!("file://{}", repo.display());

    let settings = settings(queue, &kubeconfig, dir.path(), "all");
    let queue_settings = settings.queue.clone();
    let service = capstan::startup::Service::build(settings)
        .await
        .expect("capstan");
    let base = format!("http://127.0.0.1:{}", service.port());
    let stop = service.stop_handle();
    let running = tokio::spawn(service.run_until_stopped());
    let http = reqwest::Client::new();
    let app = serde_json::json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "bench"},
        "spec": {"source": {"repoURL": repo_url, "path": ".", "targetRevision": "main"},
                 "destination": {"namespace": "default"}, "syncPolicy": {"automated": {"prune": true}}}});
    let created = http
        .post(format!("{base}/api/v1/applications"))
        .bearer_auth(TOKEN)
        .json(&app)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);

    let ar = ApiResource {
        group: "".into(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    };
    let cms: Api<DynamicObject> = Api::namespaced_with(sandbox.client(), "default", &ar);
    let value_is = |want: String| {
        let cms = cms.clone();
        async move {
            loop {
                if let Ok(Some(cm)) = cms.get_opt("bench").await
                    && cm.data.pointer("/data/value").and_then(|v| v.as_str())
                        == Some(want.as_str())
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), value_is("0".into()))
        .await
        .expect("initial sync");

    let mut samples = Vec::with_capacity(PUSHES);
    for i in 1..=PUSHES {
        let after = commit_value(&repo, i);
        let start = Instant::now();
        let status = send(&http, &base, push_body(&repo_url, &after)).await;
        assert_eq!(status, 202, "push {i} answered {status} (0 = no answer)");
        tokio::time::timeout(Duration::from_secs(60), value_is(i.to_string()))
            .await
            .expect("push applied");
        samples.push(start.elapsed());
    }
    samples.sort();
    stop_then_delete_queues(stop, running, &queue_settings).await;
    samples
}

/// Webhooks accepted per second, how many, and the other answers by status (0 = no answer).
async fn accepted_per_second() -> (f64, usize, BTreeMap<u16, usize>) {
    let (_sandbox, dir, kubeconfig) = sandbox().await;
    let settings = settings("rabbitmq", &kubeconfig, dir.path(), "api");
    let queue_settings = settings.queue.clone();
    let service = capstan::startup::Service::build(settings)
        .await
        .expect("capstan");
    let base = format!("http://127.0.0.1:{}", service.port());
    let stop = service.stop_handle();
    let running = tokio::spawn(service.run_until_stopped());
    let http = reqwest::Client::new();
    let body = push_body("https://example.com/org/repo.git", &"a".repeat(40));
    let window = Duration::from_secs(5);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (http, base, body) = (http.clone(), base.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            let mut other = BTreeMap::<u16, usize>::new();
            while start.elapsed() < window {
                match send(&http, &base, body.clone()).await {
                    202 => ok += 1,
                    status => *other.entry(status).or_default() += 1,
                }
            }
            (ok, other)
        }));
    }
    let mut total = 0;
    let mut failures = BTreeMap::<u16, usize>::new();
    for t in tasks {
        let (ok, other) = t.await.expect("sender task");
        total += ok;
        for (status, n) in other {
            *failures.entry(status).or_default() += n;
        }
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    stop_then_delete_queues(stop, running, &queue_settings).await;
    (rate, total, failures)
}

/// Stops the service, then removes the bench's exchanges and queues (with their messages) from
/// the broker; in the other order the running service would declare them again.
async fn stop_then_delete_queues(
    stop: capstan::startup::StopHandle,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    settings: &capstan::queue::QueueSettings,
) {
    stop.stop().await;
    // Returns once the workers ended and the queue connection is closed.
    let _ = running.await;
    if settings.kind == capstan::queue::QueueKind::Rabbitmq {
        let _ = capstan::queue::rabbitmq::delete_topology(settings).await;
    }
}

fn main() {
    capstan::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for queue in ["embedded", "rabbitmq"] {
            let s = latency(queue).await;
            println!(
                "webhook → applied, {queue:>8} queue, {PUSHES} pushes: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                percentile(&s, 0.5).as_secs_f64() * 1e3,
                percentile(&s, 0.99).as_secs_f64() * 1e3,
                s[s.len() - 1].as_secs_f64() * 1e3,
            );
        }
        let (rate, total, failures) = accepted_per_second().await;
        let failed: usize = failures.values().sum();
        println!("webhooks accepted (202, RabbitMQ publisher confirms), 32 concurrent senders: {rate:.0}/s ({total} in 5 s), other answers: {failed}{}",
            if failed > 0 { format!(" by status (0 = no answer) {failures:?}") } else { String::new() });
    });
}
