//! Scale-out figures (a bench binary; `cargo bench --bench workers`), medians of ROUNDS rounds:
//! a cold sync of N Applications (one ConfigMap each) by 1, 2 and 4 worker processes sharing a
//! real RabbitMQ, against the sandbox answering every request after a fixed 20 ms (as a remote
//! API server would, so the work is I/O-bound like against a real cluster). Reports apps/s and
//! the speed-up over one worker. `CAPSTAN_BENCH_APPS` (default 1000) and
//! `CAPSTAN_BENCH_WORKERS` (default `1,2,4`) choose the sizes.

use std::time::{Duration, Instant};

use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::store::Application;
use kube::api::{Api, ListParams, PostParams};

#[path = "../tests/common/child.rs"]
mod child;
#[path = "../tests/common/git.rs"]
mod git;
#[path = "support/worker.rs"]
mod support;

use child::ChildGuard;
use git::TestRepo;
use support::worker;

const ROUNDS: usize = 3;
const CONTROL: &str = "capstan";
const LATENCY: Duration = Duration::from_millis(20);

/// A repository with `app/`: one ConfigMap (the same name in each app's own namespace).
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  key: value\n",
    );
    repo.commit("app");
    repo
}

fn app_doc(i: usize, repo_url: &str) -> Application {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": format!("app-{i}"), "namespace": CONTROL},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": "app", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": format!("bench-{i}")},
            "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]},
        },
    }))
    .expect("application")
}

fn synced(app: &Application) -> bool {
    app.status.as_ref().is_some_and(|s| {
        s.sync
            .as_ref()
            .is_some_and(|s| s.status == capstan::store::application::SyncStatusCode::Synced)
            && s.operation_state
                .as_ref()
                .is_some_and(|o| o.phase == capstan::store::application::OperationPhase::Succeeded)
    })
}

/// Seconds from the first Application created until all `n` are synced, with `workers`
/// worker processes.
async fn cold(n: usize, workers: usize) -> f64 {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).expect("kubeconfig");
    let repo = repo();
    let repo_url = repo.file_url();
    let repos = repo.path().parent().unwrap_or(repo.path()).to_path_buf();
    let prefix = format!("capstan-bench-workers-{}", uuid::Uuid::new_v4().simple());
    let mut children: Vec<ChildGuard> = (0..workers)
        .map(|i| worker(dir.path(), &repos, i, &kubeconfig, &prefix))
        .collect();
    let apps: Api<Application> = Api::namespaced(sandbox.client(), CONTROL);
    let deadline = Instant::now() + Duration::from_secs(60);
    while apps.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(Instant::now() < deadline, "capstan never installed its CRD");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for the workers to hear each other and split the shards.
    tokio::time::sleep(Duration::from_secs(5)).await;
    sandbox.faults().set_latency(LATENCY);
    let start = Instant::now();
    for i in 0..n {
        apps.create(&PostParams::default(), &app_doc(i, &repo_url))
            .await
            .expect("create app");
    }
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let list = apps.list(&ListParams::default()).await.expect("list apps");
        let done = list.items.iter().filter(|a| synced(a)).count();
        if done == n {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {n} synced");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    // The workers stop before their topology goes, so nothing declares it again.
    for child in &mut children {
        child.kill_and_wait();
    }
    support::delete_topology(&prefix).await;
    seconds
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    capstan::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n: usize = std::env::var("CAPSTAN_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let counts: Vec<usize> = std::env::var("CAPSTAN_BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut base = None;
    for workers in counts {
        let secs = median((0..ROUNDS).map(|_| rt.block_on(cold(n, workers))).collect());
        let rate = n as f64 / secs;
        let speedup = base.map_or(1.0, |b: f64| rate / b);
        base.get_or_insert(rate);
        println!(
            "cold sync, {n} apps x 1 object, {workers} worker process(es), API latency {} ms: {secs:.1} s, {rate:.1} apps/s, speed-up x{speedup:.2} (median of {ROUNDS})",
            LATENCY.as_millis()
        );
    }
}
