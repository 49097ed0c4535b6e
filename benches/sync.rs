//! Sync engine figures (a bench binary; `cargo bench --bench sync`), medians of ROUNDS rounds:
//!
//! - cold sync of N Applications × 10 objects (a Deployment with 0 replicas, a ServiceAccount, a
//!   Service, an Ingress and 6 ConfigMaps, as flux-benchmark's apps plus config), each into its own
//!   namespace (`CreateNamespace=true`): time from the first Application created until every one
//!   is Synced with its sync Succeeded; apps/s and objects/s; and the Capstan process's resident
//!   memory once all are synced. N is 100 and 1,000 (`CAPSTAN_BENCH_APPS=100,1000,10000` to choose).
//! - a no-change resync of one 100-object app: one whole reconcile (read the app, render from the
//!   cache, compare, write status), median over 50 reconciles, with the API requests it made.
//!
//! Capstan runs as its own process (`capstan serve`, embedded queue) so its memory is its own;
//! the sandbox runs in this process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::store::Application;
use child::ChildGuard;
use kube::api::{Api, ListParams, PostParams};

#[path = "../tests/common/child.rs"]
mod child;

const ROUNDS: usize = 3;
const CONTROL: &str = "capstan";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}");
}

/// A repository with `app/` (the 10-object app) and `big/` (100 ConfigMaps).
fn repo(dir: &Path) -> String {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("app")).expect("dir");
    std::fs::create_dir_all(repo.join("big")).expect("dir");
    let mut app = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  replicas: 0\n  selector:\n    matchLabels: {app: podinfo}\n  template:\n    metadata:\n      labels: {app: podinfo}\n    spec:\n      serviceAccountName: podinfo\n      containers:\n        - name: podinfo\n          image: ghcr.io/stefanprodan/podinfo:6.7.0\n          ports: [{containerPort: 9898}]\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: podinfo\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\nspec:\n  selector: {app: podinfo}\n  ports: [{port: 9898}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: podinfo\nspec:\n  rules:\n    - host: podinfo.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend: {service: {name: podinfo, port: {number: 9898}}}\n",
    );
    for i in 0..6 {
        app.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  key: \"value {i}\"\n"
        ));
    }
    std::fs::write(repo.join("app/app.yaml"), app).expect("write");
    let mut big = String::new();
    for i in 0..100 {
        big.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{i}\ndata:\n  key: \"value {i}\"\n  other: \"{}\"\n",
            "x".repeat(200)
        ));
    }
    std::fs::write(repo.join("big/big.yaml"), big).expect("write");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "b@capstan.dev"]);
    git(&repo, &["config", "user.name", "bench"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "apps"]);
    format!("file://{}", repo.display())
}

/// `capstan serve` against the sandbox, embedded queue; killed when dropped (a failing round
/// leaves no process behind).
fn capstan(dir: &Path, kubeconfig: &Path, concurrency: usize) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["serve"])
        .env("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0")
        .env("CAPSTAN__SERVER__DATA_DIR", dir.join("data"))
        .env("CAPSTAN__QUEUE__KIND", "embedded")
        .env("CAPSTAN__CLUSTER__MANAGEMENT", "kubeconfig")
        .env("CAPSTAN__CLUSTER__KUBECONFIG", kubeconfig)
        .env("CAPSTAN__GIT__ALLOWED_LOCAL_ROOTS", dir)
        .env("CAPSTAN__RECONCILE__CONCURRENCY", concurrency.to_string())
        .env("CAPSTAN__RECONCILE__INTERVAL_SECS", "3600")
        .env("CAPSTAN__LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("capstan starts");
    ChildGuard::new(child)
}

fn rss_mib(pid: u32) -> f64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn app_doc(
    name: &str,
    repo_url: &str,
    path: &str,
    namespace: &str,
    automated: bool,
) -> Application {
    let mut spec = serde_json::json!({
        "project": "default",
        "source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
    });
    if automated {
        spec["syncPolicy"]["automated"] = serde_json::json!({"prune": true, "selfHeal": true});
    }
    serde_json::from_value(
        serde_json::json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": CONTROL}, "spec": spec}),
    )
    .expect("application")
}

fn synced(app: &Application) -> bool {
    let Some(status) = app.status.as_ref() else {
        return false;
    };
    status
        .sync
        .as_ref()
        .is_some_and(|s| s.status == capstan::store::application::SyncStatusCode::Synced)
        && status
            .operation_state
            .as_ref()
            .is_some_and(|o| o.phase == capstan::store::application::OperationPhase::Succeeded)
}

struct Cold {
    seconds: f64,
    rss_mib: f64,
    /// Milliseconds from a manual edit of a managed object until self-heal put it back, one
    /// sample per app (a first heal each, so no backoff applies).
    heal_ms: Vec<f64>,
}

async fn cold(n: usize, concurrency: usize) -> Cold {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).expect("kubeconfig");
    let repo_url = repo(dir.path());
    let mut child = capstan(dir.path(), &kubeconfig, concurrency);
    let client = sandbox.client();
    let apps: Api<Application> = Api::namespaced(client.clone(), CONTROL);
    // Ready when the CRD is served and the default project exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    while apps.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(Instant::now() < deadline, "capstan never installed its CRD");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    let created = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..n {
        let apps = apps.clone();
        let doc = app_doc(
            &format!("app-{i}"),
            &repo_url,
            "app",
            &format!("bench-{i}"),
            true,
        );
        let permit = created.clone().acquire_owned().await.expect("permit");
        tasks.push(tokio::spawn(async move {
            apps.create(&PostParams::default(), &doc)
                .await
                .expect("create app");
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("created");
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
    let rss = rss_mib(child.id());
    let mut heal_ms = Vec::new();
    for i in 0..n.min(10) {
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(client.clone(), &format!("bench-{i}"));
        let edit = serde_json::json!({"data": {"key": "edited by hand"}});
        let params = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        };
        let start = Instant::now();
        cms.patch("config-0", &params, &kube::api::Patch::Merge(&edit))
            .await
            .expect("edit");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let cm = cms.get("config-0").await.expect("get");
            if cm.data.and_then(|d| d.get("key").cloned()).as_deref() == Some("value 0") {
                break;
            }
            assert!(Instant::now() < deadline, "never healed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        heal_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    child.kill_and_wait();
    Cold {
        seconds,
        rss_mib: rss,
        heal_ms,
    }
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
    let sizes: Vec<usize> = std::env::var("CAPSTAN_BENCH_APPS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let concurrency: usize = std::env::var("CAPSTAN_BENCH_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    for n in sizes {
        let rounds = if n >= 10_000 { 1 } else { ROUNDS };
        let runs: Vec<Cold> = (0..rounds)
            .map(|_| rt.block_on(cold(n, concurrency)))
            .collect();
        let secs = median(runs.iter().map(|r| r.seconds).collect());
        let rss = median(runs.iter().map(|r| r.rss_mib).collect());
        println!(
            "cold sync, {n} apps x 10 objects, reconcile.concurrency {concurrency}: {secs:.1} s, {:.1} apps/s, {:.0} objects/s, capstan RSS {rss:.0} MiB (median of {rounds})",
            n as f64 / secs,
            n as f64 * 10.0 / secs,
        );
        let heals: Vec<f64> = runs
            .iter()
            .flat_map(|r| r.heal_ms.iter().copied())
            .collect();
        if !heals.is_empty() {
            println!(
                "  drift -> healed (a ConfigMap edited by hand, self-heal from the watch), {n} apps: median {:.0} ms over {} edits",
                median(heals.clone()),
                heals.len()
            );
        }
    }
    rt.block_on(resync());
}

/// One 100-object app synced, then 50 no-change reconciles timed one by one.
async fn resync() {
    use capstan::worker::reconcile::{Context, reconcile};
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo_url = repo(dir.path());
    let client = sandbox.client();
    capstan::store::install_crds(&client).await.expect("crds");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns =
        serde_json::from_value(serde_json::json!({"metadata": {"name": CONTROL}})).expect("ns");
    let _ = namespaces.create(&PostParams::default(), &ns).await;
    let store = capstan::store::AppStore::start(client.clone())
        .await
        .expect("store");
    let projects = capstan::store::ProjectStore::start(client.clone(), CONTROL)
        .await
        .expect("projects");
    projects.ensure_default().await.expect("default project");
    let settings = capstan::config::Settings::load_from(
        None,
        vec![
            (
                "CAPSTAN__SERVER__DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ),
            (
                "CAPSTAN__GIT__ALLOWED_LOCAL_ROOTS".into(),
                dir.path().display().to_string(),
            ),
        ],
    )
    .expect("settings");
    let manifests =
        capstan::startup::build_manifests(&settings, &dir.path().join("data")).expect("manifests");
    let ctx = Context {
        store: store.clone(),
        tenancy: capstan::tenancy::Tenancy::new(projects, &[]),
        clusters: capstan::cluster::registry::Registry::new(
            Arc::new(
                capstan::cluster::Cluster::connect(client.clone())
                    .await
                    .expect("cluster"),
            ),
            client.clone(),
            CONTROL,
            Default::default(),
            Default::default(),
        )
        .0,
        manifests: Arc::new(manifests),
        reconcile_timeout: Duration::from_secs(60),
        health: Default::default(),
        metrics: Default::default(),
        notify: capstan::notify::Notifier::disabled(),
    };
    let apps: Api<Application> = Api::namespaced(client.clone(), CONTROL);
    apps.create(
        &PostParams::default(),
        &app_doc("big", &repo_url, "big", "big", false),
    )
    .await
    .expect("create");
    let key = capstan::domain::AppKey::parse("capstan/big").expect("key");
    let cause = || capstan::job::Cause::from(capstan::job::CauseSource::Manual);
    // The store watches Applications; wait until it has this one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctx.store.get(CONTROL, "big").await.is_err() {
        assert!(Instant::now() < deadline, "app never seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sync = capstan::job::Job::new(&key, capstan::job::JobKind::Sync, cause());
    reconcile(&ctx, &sync).await.expect("sync");
    let refresh = capstan::job::Job::new(&key, capstan::job::JobKind::Refresh, cause());
    reconcile(&ctx, &refresh).await.expect("warm");
    let app = ctx.store.get(CONTROL, "big").await.expect("app");
    assert!(synced(&app), "the 100-object app is synced before timing");
    let mut samples = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        reconcile(&ctx, &refresh).await.expect("resync");
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "no-change resync of a 100-object app (one whole reconcile): median {:.1} ms, min {:.1} ms (50 reconciles)",
        median(samples.clone()),
        samples.iter().cloned().fold(f64::MAX, f64::min)
    );
}
