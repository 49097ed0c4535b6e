//! `GET /metrics` on a worker-only process after one webhook-driven sync: the worker's own
//! families (stages, outcomes, Git, cluster requests, apps, queue, shards) carry real counts.

use capstan::config::Role;

use crate::helpers::*;

/// The value of the sample `name{labels…}` in an exposition: every given label must match;
/// samples of the same name with other labels are skipped.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            return None;
        }
        let all = labels.iter().all(|(k, v)| {
            series_labels
                .split(',')
                .any(|p| p == format!("{k}=\"{v}\""))
        });
        all.then(|| value.parse().ok()).flatten()
    })
}

async fn scrape(address: &str) -> String {
    let resp = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("metrics answer");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_exports_stage_git_cluster_and_app_metrics_after_a_webhook_sync() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let worker = spawn_twin(&app, Role::Worker, Vec::new()).await;
    app.synced_then_pushed("observed").await;

    // The gauge is counted from the watch cache, which sees the status write a moment later.
    let counted = |text: &str| {
        sample(
            text,
            "capstan_apps",
            &[("sync_status", "Synced"), ("health_status", "Healthy")],
        ) == Some(1.0)
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = scrape(&worker.address).await;
    while !counted(&text) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never counted the app as Synced and Healthy:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = scrape(&worker.address).await;
    }

    for stage in ["fetch", "render", "compare", "sync"] {
        let n = sample(
            &text,
            "capstan_reconcile_stage_duration_seconds_count",
            &[("stage", stage)],
        );
        assert!(n.is_some_and(|n| n >= 2.0), "stage {stage}: {n:?}\n{text}");
    }
    // The router in the worker turned the webhook's event into a job.
    let webhook_jobs = sample(
        &text,
        "capstan_jobs_published_total",
        &[("cause", "webhook")],
    );
    assert!(webhook_jobs.is_some_and(|n| n >= 1.0), "{text}");
    let synced = sample(&text, "capstan_reconciles_total", &[("outcome", "synced")]);
    assert!(synced.is_some_and(|n| n >= 2.0), "{text}");
    assert!(
        sample(&text, "capstan_reconcile_duration_seconds_count", &[]).is_some_and(|n| n >= 2.0)
    );
    // Two commits fetched over HTTP: packs with real bytes.
    let fetches = sample(&text, "capstan_git_fetch_duration_seconds_count", &[]);
    assert!(fetches.is_some_and(|n| n >= 2.0), "{text}");
    let bytes = sample(&text, "capstan_git_fetch_bytes_total", &[]);
    assert!(bytes.is_some_and(|n| n > 0.0), "{text}");
    // Server-side apply is a PATCH to the destination (the management cluster here).
    let applies = sample(
        &text,
        "capstan_cluster_requests_total",
        &[
            ("cluster", "in-cluster"),
            ("verb", "patch"),
            ("code", "200"),
        ],
    );
    assert!(applies.is_some_and(|n| n >= 2.0), "{text}");
    // Every shard queue is consumed by this, the only worker, and sampled from the broker.
    let shards = capstan::queue::QueueSettings::default().shards;
    assert_eq!(
        sample(&text, "capstan_shards_owned", &[]),
        Some(f64::from(shards)),
        "{text}"
    );
    let router_queue = format!("{}.events.router", app.prefix);
    eventually(15, "queue depths sampled from the broker", || {
        let address = worker.address.clone();
        let router_queue = router_queue.clone();
        async move {
            sample(
                &scrape(&address).await,
                "capstan_queue_depth",
                &[("queue", &router_queue)],
            ) == Some(0.0)
        }
    })
    .await;

    // The api process counted the webhook; it runs no reconcile.
    let api = scrape(&app.address).await;
    assert!(
        sample(
            &api,
            "capstan_webhook_requests_total",
            &[("provider", "github"), ("outcome", "queued")]
        ) == Some(1.0),
        "{api}"
    );
    assert_eq!(
        sample(&api, "capstan_reconcile_duration_seconds_count", &[]),
        Some(0.0)
    );
}
