//! What counting every Kubernetes API request costs: sequential GETs of one ConfigMap from the
//! in-process sandbox through a plain kube client and through the same client wrapped by
//! `cluster::observe` (one more buffered hop and a counter per request), medians of 3 runs.
//! Run with `cargo bench --bench cluster_requests`.

use std::sync::Arc;
use std::time::Instant;

use capstan::metrics::Metrics;
use capstan::sandbox::{Sandbox, SandboxOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

const GETS: usize = 2_000;
const RUNS: usize = 3;

/// Microseconds per GET over `GETS` sequential requests.
async fn per_get(client: kube::Client) -> f64 {
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let start = Instant::now();
    for _ in 0..GETS {
        api.get("bench").await.expect("get");
    }
    start.elapsed().as_secs_f64() * 1e6 / GETS as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    capstan::install_crypto_provider();
    let sb = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bench"}, "data": {"value": "x"}
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(sb.client(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let metrics = Arc::new(Metrics::new());
    let observed = capstan::cluster::observe::observe(sb.client(), metrics.clone(), "bench");
    // Warm both paths (connections, TLS) before timing.
    per_get(sb.client()).await;
    per_get(observed.clone()).await;
    let (mut plain, mut counted) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        plain.push(per_get(sb.client()).await);
        counted.push(per_get(observed.clone()).await);
    }
    let (plain, counted) = (median(plain), median(counted));
    println!(
        "GET through the sandbox, median of {RUNS} runs of {GETS}: plain {plain:.1} µs, counted {counted:.1} µs ({:+.1} µs per request)",
        counted - plain
    );
    let text = metrics.encode();
    let counted_line = text
        .lines()
        .find(|l| l.starts_with("capstan_cluster_requests_total"))
        .unwrap_or("");
    println!("{counted_line}");
}
