//! Webhook figures per provider (`cargo bench --bench webhooks [-- PROVIDER…]`): Capstan in
//! process with the API role and RabbitMQ on loopback (a unique prefix, removed afterwards), a
//! secret configured for every registered provider, and each provider's own signed push:
//! - closed loop: 64 concurrent senders for 3 s; the rate of 202s, each one a verified body
//!   whose event the broker confirmed;
//! - open loop: 1,000 requests/s for 5 s on a fixed schedule; latency p50/p99 from each
//!   request's scheduled send time to its answer, so a stall shows as queueing, not as fewer
//!   samples (no coordinated omission).
//!
//! Medians of 3 runs. Every answer other than 202 is counted and printed as a failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use capstan::config::Settings;
use capstan::webhook::{PROVIDERS, Provider, SamplePush, SignedRequest};

const SECRET: &str = "bench-webhook-secret";
const RUNS: usize = 3;
const SENDERS: usize = 64;
const CLOSED_WINDOW: Duration = Duration::from_secs(3);
const OPEN_RATE: u64 = 1_000;
const OPEN_WINDOW: Duration = Duration::from_secs(5);

/// A fresh signed push: a new delivery id and commit each time, so no de-duplication by
/// delivery or by (repository, ref, commit) can turn a send into a no-op.
fn request(p: &dyn Provider) -> SignedRequest {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let files = ["apps/a/deploy.yaml".to_owned()];
    let after = format!("{n:040x}");
    let delivery = uuid::Uuid::new_v4().to_string();
    p.sample(
        &SamplePush {
            repo: "https://git.example.com/org/repo.git",
            git_ref: "refs/heads/main",
            before: Some("1111111111111111111111111111111111111111"),
            after: Some(&after),
            files: Some(&files),
            default_branch: "main",
            delivery: &delivery,
        },
        Some(SECRET),
    )
}

/// An HTTP client that gives up on an answer after 30 s (counted as a failure, status 0).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// Sends one request; the status, or 0 when no answer came.
async fn send(http: &reqwest::Client, url: &str, req: SignedRequest) -> u16 {
    let mut builder = http.post(url);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(req.body)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Answers other than 202, by status (0 = no answer).
#[derive(Default)]
struct Failures(std::collections::BTreeMap<u16, u64>);

impl Failures {
    fn add(&mut self, status: u16) {
        *self.0.entry(status).or_default() += 1;
    }
    fn total(&self) -> u64 {
        self.0.values().sum()
    }
    fn merge(&mut self, other: &Failures) {
        for (k, v) in &other.0 {
            *self.0.entry(*k).or_default() += v;
        }
    }
}

/// 202s per second with `SENDERS` senders, each sending its next request on an answer.
async fn closed_loop(p: &'static dyn Provider, url: &str, window: Duration) -> (f64, Failures) {
    let http = client();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut failed = Failures::default();
            while started.elapsed() < window {
                match send(&http, &url, request(p)).await {
                    202 => ok += 1,
                    other => failed.add(other),
                }
            }
            (ok, failed)
        }));
    }
    let mut ok = 0;
    let mut failed = Failures::default();
    for t in tasks {
        if let Ok((n, f)) = t.await {
            ok += n;
            failed.merge(&f);
        }
    }
    (ok as f64 / started.elapsed().as_secs_f64(), failed)
}

/// Latencies (sorted) of requests sent at `OPEN_RATE`/s for `OPEN_WINDOW`, each measured from
/// its scheduled send time.
async fn open_loop(p: &'static dyn Provider, url: &str) -> (Vec<Duration>, Failures) {
    let http = client();
    let total = OPEN_RATE * OPEN_WINDOW.as_secs();
    let interval = Duration::from_nanos(1_000_000_000 / OPEN_RATE);
    // Requests are built ahead so that building them cannot delay the schedule.
    let requests: Vec<SignedRequest> = (0..total).map(|_| request(p)).collect();
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(requests.len());
    for (i, req) in requests.into_iter().enumerate() {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let status = send(&http, &url, req).await;
            (status, scheduled.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = Failures::default();
    for t in tasks {
        if let Ok((status, took)) = t.await {
            if status == 202 {
                latencies.push(took);
            } else {
                failed.add(status);
            }
        }
    }
    latencies.sort();
    (latencies, failed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// Capstan with the API role on RabbitMQ, a secret for every provider: the webhook URL, the
/// queue settings, the handle that stops it and its task.
async fn start(
    dir: &std::path::Path,
) -> (
    String,
    capstan::queue::QueueSettings,
    capstan::startup::StopHandle,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut toml = String::from("[webhook]\n");
    for p in PROVIDERS {
        toml.push_str(&format!(
            "[webhook.providers.{:?}]\nsecret = {SECRET:?}\n",
            p.name()
        ));
    }
    let file = dir.join("capstan.toml");
    std::fs::write(&file, toml).expect("write config");
    let env = [
        ("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0".to_owned()),
        ("CAPSTAN__SERVER__ROLE", "api".to_owned()),
        ("CAPSTAN__SERVER__DATA_DIR", dir.display().to_string()),
        ("CAPSTAN__QUEUE__KIND", "rabbitmq".to_owned()),
        (
            "CAPSTAN__QUEUE__PREFIX",
            format!("capstan-bench-{}", uuid::Uuid::new_v4()),
        ),
        ("CAPSTAN__LOG__LEVEL", "error".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = Settings::load_from(Some(&file), env).expect("bench settings");
    let queue = settings.queue.clone();
    let service = capstan::startup::Service::build(settings)
        .await
        .expect("capstan starts (is RabbitMQ running at 127.0.0.1:5672?)");
    let url = format!("http://127.0.0.1:{}/api/webhook", service.port());
    let stop = service.stop_handle();
    let running = tokio::spawn(service.run_until_stopped());
    (url, queue, stop, running)
}

fn main() {
    capstan::install_crypto_provider();
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, queue, stop, running) = start(dir.path()).await;
        println!(
            "webhooks, API role, RabbitMQ publisher confirms on loopback; medians of {RUNS} runs"
        );
        let mut warmed = false;
        for p in PROVIDERS.iter().copied() {
            if !only.is_empty() && !only.iter().any(|o| o == p.name()) {
                continue;
            }
            if !warmed {
                let _ = closed_loop(p, &url, Duration::from_secs(1)).await;
                warmed = true;
            }
            let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
            let mut failed = Failures::default();
            for _ in 0..RUNS {
                let (rate, f) = closed_loop(p, &url, CLOSED_WINDOW).await;
                rates.push(rate);
                failed.merge(&f);
                let (latencies, f) = open_loop(p, &url).await;
                failed.merge(&f);
                p50s.push(percentile(&latencies, 0.50).as_secs_f64() * 1e3);
                p99s.push(percentile(&latencies, 0.99).as_secs_f64() * 1e3);
            }
            println!(
                "{:<17} verified+confirmed {:>6.0}/s ({SENDERS} senders, {}s)   at {OPEN_RATE}/s: p50 {:>6.2} ms  p99 {:>7.2} ms   runs {:?}/s p99 {:?} ms   failures {}{}",
                p.name(),
                median(rates.clone()),
                CLOSED_WINDOW.as_secs(),
                median(p50s),
                median(p99s.clone()),
                rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
                p99s.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>(),
                failed.total(),
                if failed.total() > 0 {
                    format!(" by status {:?}", failed.0)
                } else {
                    String::new()
                },
            );
        }
        // Stopped first (workers ended, queue closed): a running service would declare its
        // topology again.
        stop.stop().await;
        let _ = running.await;
        let _ = capstan::queue::rabbitmq::delete_topology(&queue).await;
    });
}
