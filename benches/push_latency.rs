//! Webhook → applied latency under a steady push rate (a bench binary;
//! `cargo bench --bench push_latency`): an api process and N worker processes on a real RabbitMQ,
//! M apps each on its own Git repository, the sandbox answering every request after a fixed
//! 20 ms. Signed GitHub pushes arrive at a steady rate (default 50/s) round-robin over the apps,
//! each a new commit on one app's repository; for each push it measures the time from the
//! webhook POST to the first moment the sandbox holds that push's value (or a later one of the
//! same app: pushes that arrive while their app is busy are applied together, as a user sees
//! them). Prints p50/p99/max, the pushes never applied and any answer other than 202.
//!
//! `CAPSTAN_BENCH_RATE` (pushes/s, default 50), `CAPSTAN_BENCH_SECS` (default 30),
//! `CAPSTAN_BENCH_APPS` (default 20), `CAPSTAN_BENCH_WORKERS` (default 2) and
//! `CAPSTAN_BENCH_ROUNDS` (default 3; the summary is the median round by p50) choose the sizes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan::config::Settings;
use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::store::Application;
use capstan::webhook::Signature;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

#[path = "../tests/common/child.rs"]
mod child;
#[path = "support/worker.rs"]
mod support;

use child::ChildGuard;
use support::{AMQP, SHARDS, worker};

const CONTROL: &str = "capstan";
const LATENCY: Duration = Duration::from_millis(20);
const SECRET: &str = "bench-secret";
/// How long to wait after the last push for every app to reach its last push.
const SETTLE: Duration = Duration::from_secs(60);

/// What one round runs.
#[derive(Clone, Copy)]
struct Load {
    rate: f64,
    secs: u64,
    apps: usize,
    workers: usize,
}

/// One round's figures.
struct Round {
    latencies: Vec<Duration>,
    sent: usize,
    achieved_rate: f64,
    not_applied: usize,
    answers: BTreeMap<u16, usize>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn manifest(name: &str, value: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

/// A repository for app `name` at `dir` whose `main` holds value 0, plus `commits` more commits
/// (values 1..=commits, each on the one before) made ahead of time with one `git fast-import`,
/// so that a push during the measurement is only a ref update: the bench spends no CPU writing
/// commits while it measures. Returns the commits, index = value.
fn prepared_repo(dir: &Path, name: &str, commits: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("repo dir");
    git(dir, &["init", "-q", "-b", "main"]);
    let mut stream = Vec::new();
    for value in 0..=commits {
        let content = manifest(name, value);
        let message = format!("{name} at {value}");
        // Value 0 is main; the rest wait on a side branch until their push moves main to them.
        let branch = if value == 0 { "main" } else { "ahead" };
        let _ = write!(
            stream,
            "commit refs/heads/{branch}\nmark :{}\ncommitter bench <bench@capstan.dev> {} +0000\ndata {}\n{message}\n",
            value + 1,
            1_700_000_000 + value,
            message.len()
        );
        if value > 0 {
            let _ = writeln!(stream, "from :{value}");
        }
        let _ = write!(
            stream,
            "M 100644 inline app/config.yaml\ndata {}\n{content}\n",
            content.len()
        );
    }
    let marks = dir.join(".git").join("bench-marks");
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fast-import", "--quiet"])
        .arg(format!("--export-marks={}", marks.display()))
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&stream)
        .expect("feed git fast-import");
    assert!(child.wait().expect("git fast-import").success());
    let mut shas = vec![String::new(); commits + 1];
    for line in std::fs::read_to_string(&marks).expect("marks").lines() {
        if let Some((mark, sha)) = line.split_once(' ')
            && let Ok(mark) = mark.trim_start_matches(':').parse::<usize>()
        {
            shas[mark - 1] = sha.to_owned();
        }
    }
    assert!(shas.iter().all(|s| s.len() == 40), "every commit imported");
    shas
}

fn app_doc(i: usize, repo_url: &str) -> Application {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": format!("app-{i}"), "namespace": CONTROL},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": "app", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
            "syncPolicy": {"automated": {"prune": true}},
        },
    }))
    .expect("application")
}

/// The api process (in this one): signed GitHub webhooks to RabbitMQ on `prefix`.
fn api_settings(kubeconfig: &Path, data: &Path, prefix: &str) -> Settings {
    let env: Vec<(String, String)> = [
        ("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0".to_string()),
        ("CAPSTAN__SERVER__ROLE", "api".to_string()),
        ("CAPSTAN__SERVER__DATA_DIR", data.display().to_string()),
        ("CAPSTAN__API__TOKEN", "bench-token".to_string()),
        ("CAPSTAN__WEBHOOK__GITHUB_SECRET", SECRET.to_string()),
        ("CAPSTAN__QUEUE__KIND", "rabbitmq".to_string()),
        ("CAPSTAN__QUEUE__URL", AMQP.to_string()),
        ("CAPSTAN__QUEUE__PREFIX", prefix.to_string()),
        ("CAPSTAN__QUEUE__SHARDS", SHARDS.to_string()),
        ("CAPSTAN__CLUSTER__MANAGEMENT", "kubeconfig".to_string()),
        (
            "CAPSTAN__CLUSTER__KUBECONFIG",
            kubeconfig.display().to_string(),
        ),
        ("CAPSTAN__LOG__LEVEL", "error".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Settings::load_from(None, env).expect("bench settings")
}

async fn send(http: &reqwest::Client, base: &str, repo_url: &str, after: &str) -> u16 {
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "before": "1".repeat(40), "after": after,
        "repository": {"clone_url": repo_url, "default_branch": "main"},
        "commits": [{"id": after, "added": [], "removed": [], "modified": ["app/config.yaml"]}]
    }))
    .expect("json");
    http.post(format!("{base}/api/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
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

/// When each app's ConfigMap first held each value, as the sandbox's watch reports it.
type Applied = Arc<Mutex<HashMap<String, Vec<(usize, Instant)>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn watch_applied(client: kube::Client, applied: Applied) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let at = Instant::now();
            let (Ok(watcher::Event::Apply(cm)) | Ok(watcher::Event::InitApply(cm))) = event else {
                continue;
            };
            let value = cm
                .data
                .as_ref()
                .and_then(|d| d.get("key"))
                .and_then(|v| v.parse::<usize>().ok());
            if let (Some(name), Some(value)) = (cm.metadata.name, value) {
                let mut applied = lock(&applied);
                let seen = applied.entry(name).or_default();
                if seen.last().is_none_or(|(v, _)| *v != value) {
                    seen.push((value, at));
                }
            }
        }
    })
}

/// The first moment app `name` held `value` or a later one.
fn applied_at(applied: &Applied, name: &str, value: usize) -> Option<Instant> {
    lock(applied)
        .get(name)
        .and_then(|seen| seen.iter().find(|(v, _)| *v >= value).map(|(_, at)| *at))
}

async fn round(load: Load) -> Round {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).expect("kubeconfig");
    let repos = dir.path().join("repos");
    let per_app = (load.rate * load.secs as f64 / load.apps as f64).ceil() as usize + 2;
    let names: Vec<String> = (0..load.apps).map(|i| format!("app-{i}")).collect();
    let paths: Vec<PathBuf> = names.iter().map(|n| repos.join(n)).collect();
    let commits: Vec<Vec<String>> = names
        .iter()
        .zip(&paths)
        .map(|(n, p)| prepared_repo(p, n, per_app))
        .collect();
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("file://{}", p.display()))
        .collect();

    let prefix = format!("capstan-bench-push-{}", uuid::Uuid::new_v4().simple());
    let service = capstan::startup::Service::build(api_settings(
        &kubeconfig,
        &dir.path().join("api"),
        &prefix,
    ))
    .await
    .expect("capstan api");
    let base = format!("http://127.0.0.1:{}", service.port());
    let stop = service.stop_handle();
    let running = tokio::spawn(service.run_until_stopped());
    let mut children: Vec<ChildGuard> = (0..load.workers)
        .map(|i| worker(dir.path(), &repos, i, &kubeconfig, &prefix))
        .collect();

    let applied: Applied = Arc::default();
    let watching = watch_applied(sandbox.client(), applied.clone());
    let apps: Api<Application> = Api::namespaced(sandbox.client(), CONTROL);
    for (i, url) in urls.iter().enumerate() {
        apps.create(&PostParams::default(), &app_doc(i, url))
            .await
            .expect("create app");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !names.iter().all(|n| applied_at(&applied, n, 0).is_some()) {
        assert!(Instant::now() < deadline, "the first sync never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for the workers to hear each other and split the shards.
    tokio::time::sleep(Duration::from_secs(5)).await;
    sandbox.faults().set_latency(LATENCY);

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    // Pushes of one app move its ref in order; another app's never wait for it.
    let next: Vec<Arc<tokio::sync::Mutex<usize>>> = (0..load.apps)
        .map(|_| Arc::new(tokio::sync::Mutex::new(1)))
        .collect();
    let total = (load.rate * load.secs as f64).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / load.rate));
    let started = Instant::now();
    let mut sends = Vec::with_capacity(total);
    for n in 0..total {
        tick.tick().await;
        let i = n % load.apps;
        let (http, base, url, next) =
            (http.clone(), base.clone(), urls[i].clone(), next[i].clone());
        let (path, commits) = (paths[i].clone(), commits[i].clone());
        sends.push(tokio::spawn(async move {
            let value = {
                let mut next = next.lock().await;
                let value = *next;
                let moved = tokio::process::Command::new("git")
                    .arg("-C")
                    .arg(&path)
                    .args(["update-ref", "refs/heads/main", &commits[value]])
                    .arg(&commits[value - 1])
                    .status()
                    .await
                    .is_ok_and(|s| s.success());
                assert!(moved, "main of {} moved to value {value}", path.display());
                *next += 1;
                value
            };
            let at = Instant::now();
            let status = send(&http, &base, &url, &commits[value]).await;
            (i, value, at, status)
        }));
    }
    let mut pushes = Vec::with_capacity(total);
    for s in sends {
        pushes.push(s.await.expect("push task"));
    }
    // The rate the webhooks actually went out at, first POST to last.
    let span = pushes
        .iter()
        .map(|(_, _, at, _)| *at)
        .max()
        .map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(started)
        });
    let achieved_rate = total.saturating_sub(1) as f64 / span.as_secs_f64().max(1e-3);
    let last: HashMap<usize, usize> =
        pushes
            .iter()
            .map(|(i, v, _, _)| (*i, *v))
            .fold(HashMap::new(), |mut m, (i, v)| {
                let e = m.entry(i).or_insert(0);
                *e = (*e).max(v);
                m
            });
    let settle = Instant::now() + SETTLE;
    while Instant::now() < settle
        && !last
            .iter()
            .all(|(i, v)| applied_at(&applied, &names[*i], *v).is_some())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answers = BTreeMap::new();
    let mut latencies = Vec::with_capacity(total);
    let mut not_applied = 0;
    for (i, value, at, status) in &pushes {
        if *status != 202 {
            *answers.entry(*status).or_insert(0) += 1;
        }
        match applied_at(&applied, &names[*i], *value) {
            Some(done) => latencies.push(done.saturating_duration_since(*at)),
            None => not_applied += 1,
        }
    }
    latencies.sort();

    watching.abort();
    // Everything on the prefix stops before its topology goes, so nothing declares it again.
    for child in &mut children {
        child.kill_and_wait();
    }
    stop.stop().await;
    let _ = running.await;
    support::delete_topology(&prefix).await;
    Round {
        latencies,
        sent: total,
        achieved_rate,
        not_applied,
        answers,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    capstan::install_crypto_provider();
    let load = Load {
        rate: env_or("CAPSTAN_BENCH_RATE", 50.0),
        secs: env_or("CAPSTAN_BENCH_SECS", 30),
        apps: env_or("CAPSTAN_BENCH_APPS", 20),
        workers: env_or("CAPSTAN_BENCH_WORKERS", 2),
    };
    let rounds: usize = env_or("CAPSTAN_BENCH_ROUNDS", 3);
    assert!(
        load.rate > 0.0 && load.secs > 0 && load.apps > 0 && load.workers > 0 && rounds > 0,
        "CAPSTAN_BENCH_RATE, _SECS, _APPS, _WORKERS and _ROUNDS must be positive"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut results = Vec::with_capacity(rounds);
    for r in 1..=rounds {
        let round = rt.block_on(round(load));
        let other: usize = round.answers.values().sum();
        println!(
            "round {r}: {} pushes at {:.1}/s: webhook → applied p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; not applied {}; answers other than 202: {other}{}",
            round.sent,
            round.achieved_rate,
            ms(percentile(&round.latencies, 0.5)),
            ms(percentile(&round.latencies, 0.99)),
            ms(round.latencies.last().copied().unwrap_or_default()),
            round.not_applied,
            if other > 0 {
                format!(" by status (0 = no answer) {:?}", round.answers)
            } else {
                String::new()
            },
        );
        results.push(round);
    }
    results.sort_by_key(|r| percentile(&r.latencies, 0.5));
    let median = &results[results.len() / 2];
    println!(
        "webhook → applied, steady {} pushes/s for {} s over {} apps, {} worker process(es), API latency {} ms: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, not applied {} of {} (median round of {rounds} by p50)",
        load.rate,
        load.secs,
        load.apps,
        load.workers,
        LATENCY.as_millis(),
        ms(percentile(&median.latencies, 0.5)),
        ms(percentile(&median.latencies, 0.99)),
        ms(median.latencies.last().copied().unwrap_or_default()),
        median.not_applied,
        median.sent,
    );
}
