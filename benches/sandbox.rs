//! Sandbox throughput over loopback HTTP with the kube client: create, get, server-side apply
//! and list over 10,000 ConfigMaps, plus the memory the sandbox holds them in.
//! Run with `cargo bench --bench sandbox`.

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
    let sb = Sandbox::start(SandboxOptions::default())
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
        "sandbox benchmark: {OBJECTS} ConfigMaps, kube client over loopback HTTP, {CONCURRENCY} requests in flight, median of {RUNS} runs"
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
