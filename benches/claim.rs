//! Redelivery de-duplication on RabbitMQ (a bench binary; `cargo bench --bench claim`): claims
//! per second one at a time and 16 at a time, the latency of a First and of a Duplicate claim,
//! and the broker memory one live claim holds (one transient queue per distinct delivery id).
//! Medians over ROUNDS rounds; needs the broker at amqp://guest:guest@127.0.0.1:5672/%2f.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan::queue::{Claim, Queue, QueueKind, QueueSettings, RabbitQueue, rabbitmq};
use futures::StreamExt;

const ROUNDS: usize = 5;
const SEQUENTIAL: usize = 300;
const CONCURRENT: usize = 1000;
const IN_FLIGHT: usize = 16;
const HELD_FOR_MEMORY: usize = 2000;
const WINDOW: Duration = Duration::from_secs(120);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| format!("github:{}", uuid::Uuid::new_v4()))
        .collect()
}

async fn claim_all(queue: &Arc<RabbitQueue>, keys: &[String], in_flight: usize) -> Vec<Claim> {
    futures::stream::iter(keys)
        .map(|k| async move { queue.claim(k, WINDOW).await.expect("claim answered") })
        .buffered(in_flight)
        .collect()
        .await
}

async fn release_all(queue: &Arc<RabbitQueue>, keys: &[String]) {
    futures::stream::iter(keys)
        .for_each_concurrent(IN_FLIGHT, |k| async move { queue.release(k).await })
        .await;
}

/// Total memory of the broker's Erlang VM, in bytes; None without rabbitmqctl.
fn broker_memory() -> Option<f64> {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "eval", "erlang:memory(total)."])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    capstan::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let settings = QueueSettings {
            kind: QueueKind::Rabbitmq,
            prefix: format!("capstan-bench-{}", uuid::Uuid::new_v4().simple()),
            ..QueueSettings::default()
        };
        let queue = RabbitQueue::connect_concrete(&settings)
            .await
            .expect("RabbitMQ topology declared");
        assert!(queue.is_ready().await, "RabbitMQ must be running");

        let (mut seq_rate, mut conc_rate, mut first_ms, mut dup_ms) =
            (vec![], vec![], vec![], vec![]);
        let mut memory_per_claim = vec![];
        for _ in 0..ROUNDS {
            let ks = keys(SEQUENTIAL);
            let mut latencies = Vec::with_capacity(SEQUENTIAL);
            let start = Instant::now();
            for k in &ks {
                let t = Instant::now();
                assert_eq!(queue.claim(k, WINDOW).await.expect("claim"), Claim::First);
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            seq_rate.push(SEQUENTIAL as f64 / start.elapsed().as_secs_f64());
            first_ms.push(median(latencies));
            let mut latencies = Vec::with_capacity(SEQUENTIAL);
            for k in &ks {
                let t = Instant::now();
                assert_eq!(
                    queue.claim(k, WINDOW).await.expect("claim"),
                    Claim::Duplicate
                );
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            dup_ms.push(median(latencies));
            release_all(&queue, &ks).await;

            let ks = keys(CONCURRENT);
            let start = Instant::now();
            let outcomes = claim_all(&queue, &ks, IN_FLIGHT).await;
            conc_rate.push(CONCURRENT as f64 / start.elapsed().as_secs_f64());
            assert!(outcomes.iter().all(|c| *c == Claim::First));
            release_all(&queue, &ks).await;

            if let Some(before) = broker_memory() {
                let ks = keys(HELD_FOR_MEMORY);
                claim_all(&queue, &ks, IN_FLIGHT).await;
                if let Some(after) = broker_memory() {
                    memory_per_claim.push((after - before) / HELD_FOR_MEMORY as f64);
                }
                release_all(&queue, &ks).await;
            }
        }
        println!("claim (RabbitMQ on loopback, medians of {ROUNDS} rounds)");
        println!("  one at a time:   {:>8.0} claims/s", median(seq_rate));
        println!(
            "  {IN_FLIGHT} in flight:    {:>8.0} claims/s",
            median(conc_rate)
        );
        println!("  First latency:   {:>8.2} ms", median(first_ms));
        println!("  Duplicate lat.:  {:>8.2} ms", median(dup_ms));
        if memory_per_claim.is_empty() {
            println!("  broker memory per live claim: (rabbitmqctl not available)");
        } else {
            println!(
                "  broker memory per live claim: {:>6.1} KiB ({HELD_FOR_MEMORY} held)",
                median(memory_per_claim) / 1024.0
            );
        }
        queue.close().await;
        let _ = rabbitmq::delete_topology(&settings).await;
    });
}
