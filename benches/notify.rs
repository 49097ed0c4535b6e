//! Notification throughput (`cargo bench --bench notify`; needs RabbitMQ on loopback for the
//! second half): N notifications (`CAPSTAN_BENCH_NOTIFICATIONS`, default 2,000), each with its
//! own deduplication key, published to the notification queue, then delivered by the consumer
//! (`notify::run`, default concurrency 16) to a local webhook receiver: rendered from the
//! built-in template, signed with HMAC-SHA256, POSTed, and acknowledged. The figure is N over
//! the time from the first publish to the last request received. Median of 3 runs, on the
//! embedded queue and on RabbitMQ (a unique prefix, removed afterwards).

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan::domain::AppKey;
use capstan::notify::notification::{NOTIFICATION_VERSION, publish};
use capstan::notify::webhook::WebhookSettings;
use capstan::notify::{Notification, NotifySettings, Sender, ServiceSettings, Trigger};
use capstan::queue::{EmbeddedQueue, QueueKind, QueueSettings, SharedQueue};
use capstan::secret::SecretString;
use common::receiver::Receiver;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const RUNS: usize = 3;

fn notification(i: usize) -> Notification {
    Notification {
        v: NOTIFICATION_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        app: AppKey::parse(&format!("bench/app-{}", i % 100)).expect("key"),
        trigger: Trigger::Deployed,
        revision: format!("{i:040x}"),
        occurrence: format!("{i:040x}-{}", uuid::Uuid::new_v4()),
        service: "hook".into(),
        recipient: String::new(),
        app_snapshot: json!({
            "metadata": {"name": format!("app-{}", i % 100), "namespace": "bench"},
            "status": {"sync": {"status": "Synced", "revision": format!("{i:040x}")},
                "health": {"status": "Healthy"},
                "operationState": {"phase": "Succeeded", "message": "successfully synced",
                    "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}},
        }),
        fired_at: "2026-01-01T00:00:01Z".into(),
    }
}

/// One run: publish `n`, wait for `n` requests; notifications per second.
async fn run(queue: SharedQueue, n: usize) -> f64 {
    let receiver = Receiver::start();
    let settings = NotifySettings {
        services: BTreeMap::from([(
            "hook".to_owned(),
            ServiceSettings::Webhook(WebhookSettings {
                url: receiver.url("/hook"),
                method: None,
                headers: BTreeMap::new(),
                body: None,
                secret: Some(SecretString::from("bench-secret")),
                secret_file: None,
                signature_header: None,
            }),
        )]),
        ..NotifySettings::default()
    };
    let stop = CancellationToken::new();
    let sender = Sender::new(Arc::new(settings)).expect("sender");
    let consumer = tokio::spawn(capstan::notify::run(
        sender,
        queue.clone(),
        Default::default(),
        stop.clone(),
    ));
    let batch: Vec<Notification> = (0..n).map(notification).collect();
    let started = Instant::now();
    for n in &batch {
        publish(&queue, n).await.expect("published");
    }
    let deadline = started + Duration::from_secs(300);
    while receiver.on("/hook").len() < n {
        assert!(Instant::now() < deadline, "not all notifications arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = consumer.await;
    assert_eq!(receiver.on("/hook").len(), n, "each notification once");
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    capstan::install_crypto_provider();
    let n: usize = std::env::var("CAPSTAN_BENCH_NOTIFICATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut embedded = Vec::new();
        for _ in 0..RUNS {
            let queue = EmbeddedQueue::new(&QueueSettings::default()).expect("queue");
            embedded.push(run(queue.shared(), n).await);
        }
        println!(
            "notify embedded: {n} notifications, median {:.0}/s (runs: {:?})",
            median(embedded.clone()),
            embedded.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
        let settings = QueueSettings {
            kind: QueueKind::Rabbitmq,
            prefix: format!("capstan-bench-{}", uuid::Uuid::new_v4().simple()),
            ..QueueSettings::default()
        };
        let queue = capstan::queue::connect(&settings).await.expect("queue");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !queue.is_ready().await {
            assert!(
                Instant::now() < deadline,
                "RabbitMQ must be running on 127.0.0.1:5672"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut rabbit = Vec::new();
        for _ in 0..RUNS {
            rabbit.push(run(queue.clone(), n).await);
        }
        queue.close().await;
        let _ = capstan::queue::rabbitmq::delete_topology(&settings).await;
        println!(
            "notify rabbitmq: {n} notifications, median {:.0}/s (runs: {:?})",
            median(rabbit.clone()),
            rabbit.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    });
}
