//! Sandbox throughput over loopback HTTP with the kube client: create, get, server-side apply
//! and list over 10,000 ConfigMaps, plus the memory the sandbox holds them in.
//! Run with `cargo bench --bench sandbox`; `CAPSTAN_BENCH_TLS=1` measures the `--tls` mode instead.

use std::time::{Duration, Instant};

use capstan::sandbox::{Sandbox, SandboxOptions};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const OBJECTS: usize = 10_000;
const CONCURRENCY: usize = 32;
const RUNS: usize = 3;
const LISTS: usize = 20;

/// Whether to measure the sandbox over HTTPS with a bearer token.
fn tls() -> bool {
    std::env::var_os("CAPSTAN_BENCH_TLS").is_some_and(|v| v == "1")
}

fn configmap(i: usize, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("bench-{i:05}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}},
        "data": {"value": value, "payload": "x".repeat(200)}
    }))
    .expect("configmap")
}

/// Resident set size of this process in bytes (from /proc/self/statm), when available.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn timed<F, Fut>(n: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(f)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    n as f64 / start.elapsed().as_secs_f64()
}

struct Run {
    create: f64,
    get: f64,
    apply: f64,
    list: f64,
    rss_delta: Option<u64>,
    json_bytes: usize,
}

async fn one_run() -> Run {
    let sb = Sandbox::start(SandboxOptions {
        tls: tls(),
        ..Default::default()
    })
    .await
    .expect("sandbox starts");
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let rss_before = rss_bytes();

    let create = timed(OBJECTS, |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &configmap(i, "created"))
                .await
                .expect("create");
        }
    })
    .await;
    let rss_after = rss_bytes();

    let get = timed(OBJECTS, |i| {
        let api = api.clone();
        async move {
            api.get(&format!("bench-{:05}", (i * 7919) % OBJECTS))
                .await
                .expect("get");
        }
    })
    .await;

    let apply = timed(OBJECTS, |i| {
        let api = api.clone();
        async move {
            let params = PatchParams::apply("bench").force();
            api.patch(
                &format!("bench-{i:05}"),
                &params,
                &Patch::Apply(configmap(i, "applied")),
            )
            .await
            .expect("apply");
        }
    })
    .await;

    let start = Instant::now();
    let mut json_bytes = 0;
    for _ in 0..LISTS {
        let list = api.list(&ListParams::default()).await.expect("list");
        assert_eq!(list.items.len(), OBJECTS);
        json_bytes = serde_json::to_vec(&list.items)
            .map(|v| v.len())
            .unwrap_or(0);
    }
    let list = LISTS as f64 / start.elapsed().as_secs_f64();
    sb.shutdown().await;
    Run {
        create,
        get,
        apply,
        list,
        rss_delta: rss_before.zip(rss_after).map(|(b, a)| a.saturating_sub(b)),
        json_bytes,
    }
}

/// Resident set size of another process in bytes.
fn rss_of(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs `capstan sandbox` as its own process, creates the objects, and measures that
/// process's RSS before and after: the memory the sandbox alone holds them in.
async fn child_memory() -> Option<(u64, u64)> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("CAPSTAN__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let pid = child.id()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take()?).lines();
    let url = loop {
        let line = lines.next_line().await.ok()??;
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_string();
        }
    };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: {url}\nusers:\n- name: s\n  user: {{}}\ncontexts:\n- name: s\n  context:\n    cluster: s\n    user: s\ncurrent-context: s\n"
    );
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).ok()?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .ok()?;
    let client = kube::Client::try_from(config).ok()?;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.list(&ListParams::default()).await.ok()?;
    let before = rss_of(pid)?;
    timed(OBJECTS, |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &configmap(i, "created"))
                .await
                .expect("create");
        }
    })
    .await;
    let after = rss_of(pid)?;
    let _ = child.kill().await;
    Some((before, after))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    capstan::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let run = rt.block_on(one_run());
        println!(
            "run {}: create {:.0}/s, get {:.0}/s, apply {:.0}/s, list(10k) {:.2}/s",
            i + 1,
            run.create,
            run.get,
            run.apply,
            run.list
        );
        runs.push(run);
        std::thread::sleep(Duration::from_millis(200));
    }
    let pick = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    println!(
        "sandbox benchmark: {OBJECTS} ConfigMaps, kube client over loopback {}, {CONCURRENCY} requests in flight, median of {RUNS} runs",
        if tls() { "HTTPS with a token" } else { "HTTP" }
    );
    println!("  create           {:>10.0} requests/s", pick(|r| r.create));
    println!("  get              {:>10.0} requests/s", pick(|r| r.get));
    println!("  server-side apply{:>10.0} requests/s", pick(|r| r.apply));
    let list = pick(|r| r.list);
    println!(
        "  list (10,000)    {:>10.2} requests/s ({:.0} objects/s)",
        list,
        list * OBJECTS as f64
    );
    match rt.block_on(child_memory()) {
        Some((before, after)) => println!(
            "  memory: `capstan sandbox` process RSS {:.1} MiB -> {:.1} MiB with {OBJECTS} ConfigMaps (+{:.1} MiB, {:.0} bytes/object; /proc/PID/statm)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            after.saturating_sub(before) as f64 / 1048576.0,
            after.saturating_sub(before) as f64 / OBJECTS as f64
        ),
        None => println!("  memory: could not run the capstan binary to measure its RSS"),
    }
    if let Some(delta) = runs.first().and_then(|r| r.rss_delta) {
        println!(
            "  memory: RSS delta over the 10,000 creates {:.1} MiB (whole process: server and client, first run)",
            delta as f64 / 1048576.0
        );
    }
    if let Some(r) = runs.first() {
        println!(
            "  store estimate: {:.1} MiB of object JSON after apply (the store keeps each object as a JSON value plus its serialized bytes)",
            r.json_bytes as f64 / 1048576.0
        );
    }
}
