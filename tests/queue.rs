//! Queue behaviour, run against both the embedded queue and a real RabbitMQ
//! (amqp://guest:guest@127.0.0.1:5672/%2f; the RabbitMQ tests fail if it is not running).

#[path = "queue/support.rs"]
#[macro_use]
mod support;

use std::time::Duration;

use capstan::queue::{Queue, QueueError, QueueKind, QueueSettings, Topic, shard_for};
use support::{EVENTUALLY, Harness, Proxy, assert_quiet, next};

both!(a_confirmed_event_is_delivered_once_and_acked);
async fn a_confirmed_event_is_delivered_once_and_acked(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    // Published before anyone listens: it must wait in the queue.
    h.queue
        .publish(Topic::Events, "", "ev-1", br#"{"v":1}"#.to_vec())
        .await
        .expect("publish confirmed");
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    let d = next(&mut sub).await;
    assert_eq!(d.id, "ev-1");
    assert_eq!(d.body, br#"{"v":1}"#);
    assert_eq!(d.attempt, 1);
    assert_eq!(d.shard, None);
    d.ack().await.expect("ack");
    assert_quiet(&mut sub, "an acked message is gone").await;
}

both!(notifications_wait_in_their_own_queue);
async fn notifications_wait_in_their_own_queue(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    for i in 0..2 {
        h.queue
            .publish(
                Topic::Notifications,
                "ns/app",
                &format!("n-{i}"),
                b"{}".to_vec(),
            )
            .await
            .expect("publish confirmed");
    }
    // Neither the router nor the syncers see them.
    let mut events = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    let mut jobs = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    let mut notify = h
        .queue
        .subscribe(Topic::Notifications)
        .await
        .expect("subscribe");
    let first = next(&mut notify).await;
    let second = next(&mut notify).await;
    assert_eq!((first.id.as_str(), second.id.as_str()), ("n-0", "n-1"));
    assert_eq!((first.shard, second.shard), (None, None));
    first.ack().await.expect("ack");
    second.ack().await.expect("ack");
    assert_quiet(&mut events, "no notification is an event").await;
    assert_quiet(&mut jobs, "no notification is a job").await;
    assert_quiet(&mut notify, "acked notifications are gone").await;
}

both!(jobs_for_one_app_always_land_on_its_shard);
async fn jobs_for_one_app_always_land_on_its_shard(kind: QueueKind) {
    let h = Harness::new(kind, |s| s.shards = 4).await;
    let mut sub = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    let apps = ["default/guestbook", "argocd/app-1", "team-a/payments"];
    for (i, app) in apps.iter().enumerate() {
        for round in 0..2 {
            let id = format!("{i}-{round}");
            h.queue
                .publish(Topic::Jobs, app, &id, app.as_bytes().to_vec())
                .await
                .expect("publish");
        }
    }
    for _ in 0..apps.len() * 2 {
        let d = next(&mut sub).await;
        let app = String::from_utf8(d.body.clone()).expect("utf8");
        assert_eq!(d.shard, Some(shard_for(&app, 4)), "{app}");
        d.ack().await.expect("ack");
    }
    assert_quiet(&mut sub, "every job was acked").await;
}

both!(retry_redelivers_with_the_next_attempt_then_dead_letters);
async fn retry_redelivers_with_the_next_attempt_then_dead_letters(kind: QueueKind) {
    let mut h = Harness::new(kind, |s| s.max_attempts = 3).await;
    let mut sub = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    h.queue
        .publish(Topic::Jobs, "ns/app", "job-1", b"{}".to_vec())
        .await
        .expect("publish");
    for expected in 1..=3 {
        let d = next(&mut sub).await;
        assert_eq!((d.id.as_str(), d.attempt), ("job-1", expected));
        d.retry().await.expect("retry");
    }
    let dead = h.await_dead("job-1").await;
    assert_eq!(dead, ["job-1"]);
    assert_quiet(&mut sub, "a dead-lettered job is not delivered again").await;
}

both!(reject_dead_letters_at_once);
async fn reject_dead_letters_at_once(kind: QueueKind) {
    let mut h = Harness::new(kind, |_| {}).await;
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    h.queue
        .publish(Topic::Events, "", "poison", b"\xff\xfe".to_vec())
        .await
        .expect("publish");
    let d = next(&mut sub).await;
    assert_eq!(d.attempt, 1);
    d.reject().await.expect("reject");
    assert_eq!(h.await_dead("poison").await, ["poison"]);
    assert_quiet(&mut sub, "a rejected message is not redelivered").await;
}

both!(a_dropped_delivery_comes_back);
async fn a_dropped_delivery_comes_back(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    let mut sub = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    h.queue
        .publish(Topic::Jobs, "ns/app", "job-1", b"{}".to_vec())
        .await
        .expect("publish");
    let first = next(&mut sub).await;
    drop(first);
    let again = next(&mut sub).await;
    assert_eq!((again.id.as_str(), again.attempt), ("job-1", 2));
    again.ack().await.expect("ack");
}

both!(prefetch_bounds_unsettled_deliveries);
async fn prefetch_bounds_unsettled_deliveries(kind: QueueKind) {
    let h = Harness::new(kind, |s| s.prefetch = 2).await;
    for i in 0..3 {
        h.queue
            .publish(Topic::Events, "", &format!("ev-{i}"), b"{}".to_vec())
            .await
            .expect("publish");
    }
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    let a = next(&mut sub).await;
    let b = next(&mut sub).await;
    assert_quiet(&mut sub, "two deliveries are unsettled, prefetch is 2").await;
    a.ack().await.expect("ack");
    let c = next(&mut sub).await;
    assert_eq!([b.id.as_str(), c.id.as_str()], ["ev-1", "ev-2"]);
    b.ack().await.expect("ack");
    c.ack().await.expect("ack");
}

both!(one_shard_has_one_active_consumer_until_it_dies);
async fn one_shard_has_one_active_consumer_until_it_dies(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    let mut first = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    let other = h.second_process().await;
    let mut second = other.subscribe(Topic::Jobs).await.expect("subscribe");
    for i in 0..3 {
        h.queue
            .publish(Topic::Jobs, "ns/app", &format!("job-{i}"), b"{}".to_vec())
            .await
            .expect("publish");
    }
    // The first consumer takes the jobs; the second stands by.
    let held = next(&mut first).await;
    assert_eq!(held.id, "job-0");
    for _ in 1..3 {
        next(&mut first).await.ack().await.expect("ack");
    }
    assert_quiet(&mut second, "the shard has an active consumer").await;

    h.crash_first(first, held).await;
    let taken_over = next(&mut second).await;
    assert_eq!(taken_over.id, "job-0", "the unacked job is redelivered");
    assert_eq!(taken_over.attempt, 2);
    taken_over.ack().await.expect("ack");
    other
        .publish(Topic::Jobs, "ns/app", "job-3", b"{}".to_vec())
        .await
        .expect("publish");
    assert_eq!(next(&mut second).await.id, "job-3");
}

both!(a_closed_queue_refuses_work_and_ends_subscriptions);
async fn a_closed_queue_refuses_work_and_ends_subscriptions(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    assert!(h.queue.is_ready().await);
    h.queue.close().await;
    assert!(!h.queue.is_ready().await);
    let err = h
        .queue
        .publish(Topic::Events, "", "late", b"{}".to_vec())
        .await
        .expect_err("closed");
    assert!(matches!(err, QueueError::Closed), "{err}");
    let end = tokio::time::timeout(EVENTUALLY, sub.next()).await;
    assert!(matches!(end, Ok(None)), "the subscription ends");
}

#[tokio::test]
async fn embedded_dead_letters_say_why_and_how_often() {
    use capstan::queue::{DeadReason, EmbeddedQueue};
    let q = EmbeddedQueue::new(&QueueSettings {
        max_attempts: 2,
        retry_delay_ms: 0,
        ..QueueSettings::default()
    })
    .expect("queue");
    let mut sub = q.subscribe(Topic::Jobs).await.expect("subscribe");
    q.publish(Topic::Jobs, "ns/a", "tired", b"1".to_vec())
        .await
        .expect("publish");
    q.publish(Topic::Jobs, "ns/a", "poison", b"2".to_vec())
        .await
        .expect("publish");
    let tired = next(&mut sub).await;
    next(&mut sub).await.reject().await.expect("reject");
    tired.retry().await.expect("retry");
    // The second delivery of "tired" is its last; dropping it counts like a crash.
    drop(next(&mut sub).await);
    let dead = q.dead_letters();
    let summary: Vec<_> = dead
        .iter()
        .map(|d| (d.id.as_str(), d.attempts, d.reason.clone(), d.shard))
        .collect();
    let shard = Some(shard_for("ns/a", 4));
    assert_eq!(
        summary,
        [
            ("poison", 1, DeadReason::Rejected, shard),
            ("tired", 2, DeadReason::DeliveryLimit, shard)
        ]
    );
    assert_eq!(dead[0].body, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_counts_crashes_toward_the_delivery_limit() {
    // Nobody settles the message: each consumer dies holding it. The broker itself must
    // dead-letter it after max_attempts deliveries (x-delivery-limit), or a job that kills its
    // worker would kill every worker forever.
    let mut h = Harness::new(QueueKind::Rabbitmq, |s| s.max_attempts = 2).await;
    h.queue
        .publish(Topic::Jobs, "ns/crashy", "crashy", b"{}".to_vec())
        .await
        .expect("publish");
    support::crash_on(&h.settings, "crashy", 2).await;
    assert_eq!(h.await_dead("crashy").await, ["crashy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_unreachable_broker_means_unavailable_not_success() {
    let settings = QueueSettings {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        publish_timeout_ms: 1000,
        ..support::settings(QueueKind::Rabbitmq)
    };
    // Starting without a broker is allowed (it keeps retrying), but nothing is accepted.
    let q = capstan::queue::connect(&settings)
        .await
        .expect("starts without a broker");
    assert!(!q.is_ready().await);
    let err = q
        .publish(Topic::Events, "", "ev", b"{}".to_vec())
        .await
        .expect_err("no broker, no confirm");
    assert!(matches!(err, QueueError::Unavailable(_)), "{err}");
    q.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_refuses_a_url_that_is_not_amqp_without_echoing_the_password() {
    let settings = QueueSettings {
        url: "amqp://guest:hunter2@[::1".to_owned(),
        ..support::settings(QueueKind::Rabbitmq)
    };
    let err = capstan::queue::connect(&settings)
        .await
        .err()
        .expect("bad url");
    assert!(matches!(err, QueueError::Settings(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_resumes_after_the_broker_closes_the_connection() {
    let h = Harness::new(QueueKind::Rabbitmq, |_| {}).await;
    let mut sub = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    h.queue
        .publish(Topic::Jobs, "ns/app", "before", b"{}".to_vec())
        .await
        .expect("publish");
    next(&mut sub).await.ack().await.expect("ack");

    support::close_connection_from_broker(h.rabbit().connection_name());

    // Publishing may fail while the connection is being rebuilt, then must succeed again.
    publish_eventually(&h, Topic::Jobs, "after").await;
    let d = next(&mut sub).await;
    assert_eq!(d.id, "after", "the same Subscription keeps yielding");
    d.ack().await.expect("ack on the new connection");
    assert!(h.queue.is_ready().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_broker_outage_is_unavailable_then_recovers() {
    let proxy = Proxy::start(0).await;
    let port = proxy.port;
    let h = Harness::new(QueueKind::Rabbitmq, |s| {
        s.url = proxy.url();
        s.publish_timeout_ms = 1500;
    })
    .await;
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");

    proxy.stop();
    let err = h
        .queue
        .publish(Topic::Events, "", "during", b"{}".to_vec())
        .await
        .expect_err("the broker is gone");
    assert!(matches!(err, QueueError::Unavailable(_)), "{err}");
    assert!(!h.queue.is_ready().await);

    let _back = Proxy::start(port).await;
    publish_eventually(&h, Topic::Events, "after").await;
    // A publish that failed may still have reached the broker before the link went (at least
    // once, as for any publisher whose confirm was lost): "during" may come first, nothing else.
    let mut d = next(&mut sub).await;
    if d.id == "during" {
        d.ack().await.expect("ack");
        d = next(&mut sub).await;
    }
    assert_eq!(d.id, "after");
    d.ack().await.expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_unroutable_message_is_an_error() {
    let h = Harness::new(QueueKind::Rabbitmq, |s| s.shards = 2).await;
    let conn = lapin::Connection::connect(support::AMQP_URL, Default::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let shard = shard_for("ns/app", 2);
    let (queue, exchange) = (
        format!("{}.jobs.{shard}", h.settings.prefix),
        format!("{}.jobs", h.settings.prefix),
    );
    ch.queue_unbind(
        queue.as_str().into(),
        exchange.as_str().into(),
        shard.to_string().as_str().into(),
        Default::default(),
    )
    .await
    .expect("unbind");
    let err = h
        .queue
        .publish(Topic::Jobs, "ns/app", "lost", b"{}".to_vec())
        .await
        .expect_err("no queue is bound");
    assert!(matches!(err, QueueError::Unroutable), "{err}");
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_topology_is_durable_quorum_with_single_active_consumer() {
    let h = Harness::new(QueueKind::Rabbitmq, |s| s.shards = 2).await;
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "durable", "type", "arguments"])
        .output()
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    let record = format!("{}.topology\t", h.settings.prefix);
    let (records, mine): (Vec<&str>, Vec<&str>) = listing
        .lines()
        .filter(|l| l.contains(&h.settings.prefix))
        .partition(|l| l.starts_with(&record));
    assert_eq!(
        mine.len(),
        6,
        "events.router, jobs.0, jobs.1, notify, previews, dead:\n{listing}"
    );
    assert_eq!(records.len(), 1, "the topology record:\n{listing}");
    for line in &mine {
        assert!(line.contains("true") && line.contains("quorum"), "{line}");
    }
    // Notifications and previews are retried by their consumers: dead-lettered, but no delivery
    // limit of queue.max_attempts (that would tie the queues to a topology generation).
    for side in ["notify", "previews"] {
        let name = format!("{}.{side}\t", h.settings.prefix);
        let found: Vec<_> = mine.iter().filter(|l| l.starts_with(&name)).collect();
        assert_eq!(found.len(), 1, "{listing}");
        assert!(
            found[0].contains(&format!("{}.dead", h.settings.prefix))
                && !found[0].contains("x-delivery-limit")
                && !found[0].contains("x-single-active-consumer"),
            "{}",
            found[0]
        );
    }
    let jobs: Vec<_> = mine.iter().filter(|l| l.contains(".jobs.")).collect();
    assert_eq!(jobs.len(), 2);
    for line in jobs {
        assert!(line.contains("x-single-active-consumer"), "{line}");
        assert!(line.contains("x-delivery-limit"), "{line}");
        assert!(
            line.contains(&format!("{}.dead", h.settings.prefix)),
            "{line}"
        );
    }
}

async fn publish_eventually(h: &Harness, topic: Topic, id: &str) {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        match h.queue.publish(topic, "ns/app", id, b"{}".to_vec()).await {
            Ok(()) => return,
            Err(QueueError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                eprintln!("publish not yet possible: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("publishing did not resume: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_wrong_password_fails_at_start_without_showing_it() {
    let settings = QueueSettings {
        url: "amqp://guest:not-the-password@127.0.0.1:5672/%2f".to_owned(),
        ..support::settings(QueueKind::Rabbitmq)
    };
    let err = capstan::queue::connect(&settings)
        .await
        .err()
        .expect("credentials refused");
    assert!(matches!(err, QueueError::Protocol(_)), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_password_can_come_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rabbitmq-password");
    std::fs::write(&file, "guest\n").expect("write");
    let h = Harness::new(QueueKind::Rabbitmq, |s| {
        s.url = "amqp://guest@127.0.0.1:5672/%2f".to_owned();
        s.password_file = Some(file.clone());
    })
    .await;
    h.queue
        .publish(Topic::Events, "", "ev", b"{}".to_vec())
        .await
        .expect("publish with the password from the file");

    std::fs::remove_file(&file).expect("remove");
    let settings = QueueSettings {
        prefix: format!("{}-x", h.settings.prefix),
        ..h.settings.clone()
    };
    let err = capstan::queue::connect(&settings)
        .await
        .err()
        .expect("an unreadable password file is refused at start");
    assert!(matches!(err, QueueError::Settings(_)), "{err}");
}

/// The active consumer of each of `prefix`'s job shard queues as the broker reports it:
/// shard → the consumer tags of its consumers and whether each is active.
fn broker_consumers(prefix: &str) -> std::collections::BTreeMap<u16, Vec<(String, bool)>> {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "-q",
            "--no-table-headers",
            "list_consumers",
            "queue_name",
            "consumer_tag",
            "active",
        ])
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_shard = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [queue, tag, active] = fields[..] else {
            continue;
        };
        let Some(shard) = queue
            .strip_prefix(&format!("{prefix}.jobs."))
            .and_then(|s| s.parse::<u16>().ok())
        else {
            continue;
        };
        by_shard
            .entry(shard)
            .or_insert_with(Vec::new)
            .push((tag.to_owned(), active == "true"));
    }
    by_shard
}

/// Waits until the broker shows every shard with exactly one consumer, active, belonging to
/// one of `processes`, and the processes' counts within one of each other; returns the counts.
async fn fair_split(
    prefix: &str,
    shards: u16,
    processes: &[&capstan::queue::RabbitQueue],
) -> Vec<usize> {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let consumers = broker_consumers(prefix);
        let mut counts = vec![0usize; processes.len()];
        let mut settled = consumers.len() == usize::from(shards);
        for list in consumers.values() {
            let owner = match list.as_slice() {
                [(tag, true)] => processes
                    .iter()
                    .position(|p| tag.starts_with(&format!("{}/", p.connection_name()))),
                _ => None,
            };
            match owner {
                Some(i) => counts[i] += 1,
                None => settled = false,
            }
        }
        let spread = counts
            .iter()
            .max()
            .zip(counts.iter().min())
            .map(|(h, l)| h - l);
        if settled && spread.is_some_and(|s| s <= 1) {
            return counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no fair split on the broker: {consumers:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Worker processes share the job shards evenly (±1), as the broker's own consumer list
/// shows, and take a departed process's shards over.
#[tokio::test]
async fn rabbitmq_shards_spread_over_the_live_processes_and_follow_them() {
    let settings = QueueSettings {
        shards: 8,
        ..support::settings(QueueKind::Rabbitmq)
    };
    let a = support::rabbit(&settings).await;
    let b = support::rabbit(&settings).await;
    let _sa = a.subscribe(Topic::Jobs).await.expect("subscribe");
    let _sb = b.subscribe(Topic::Jobs).await.expect("subscribe");
    assert_eq!(fair_split(&settings.prefix, 8, &[&a, &b]).await, [4, 4]);
    let c = support::rabbit(&settings).await;
    let _sc = c.subscribe(Topic::Jobs).await.expect("subscribe");
    let mut three = fair_split(&settings.prefix, 8, &[&a, &b, &c]).await;
    three.sort();
    assert_eq!(three, [2, 3, 3]);
    // b dies without a word (its connection closes): a and c share its shards.
    b.close().await;
    assert_eq!(fair_split(&settings.prefix, 8, &[&a, &c]).await, [4, 4]);
    for q in [a, c] {
        q.close().await;
    }
    let _ = capstan::queue::rabbitmq::delete_topology(&settings).await;
}

/// While shards move between processes (one joins, one leaves), no job runs in two processes
/// at once for one app, and every job is done.
#[tokio::test]
async fn rabbitmq_a_shard_changes_hands_only_after_its_jobs_are_done() {
    use std::sync::{Arc, Mutex};
    let settings = QueueSettings {
        shards: 4,
        prefetch: 8,
        ..support::settings(QueueKind::Rabbitmq)
    };
    // (app, process, start, end) of every job run.
    type Run = (String, String, tokio::time::Instant, tokio::time::Instant);
    let runs: Arc<Mutex<Vec<Run>>> = Arc::default();
    let done: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let work = |q: Arc<capstan::queue::RabbitQueue>, name: &'static str| {
        let (runs, done) = (runs.clone(), done.clone());
        tokio::spawn(async move {
            let mut sub = q.subscribe(Topic::Jobs).await.expect("subscribe");
            while let Some(d) = sub.next().await {
                let app = String::from_utf8(d.body.clone()).expect("utf8");
                let start = tokio::time::Instant::now();
                tokio::time::sleep(Duration::from_millis(30)).await;
                let end = tokio::time::Instant::now();
                // Recorded before the ack: the abort below can land inside an ack the broker
                // already took, and a job done then must still count. A job whose ack fails is
                // redelivered and done again, which the overlap check sees.
                runs.lock()
                    .expect("runs")
                    .push((app, name.to_owned(), start, end));
                done.lock().expect("done").insert(d.id.clone());
                let _ = d.ack().await;
            }
        })
    };
    let a = support::rabbit(&settings).await;
    let first = work(a.clone(), "a");
    let publisher = support::rabbit(&settings).await;
    let total = 240;
    let mut joined = None;
    for i in 0..total {
        publisher
            .publish(
                Topic::Jobs,
                &format!("ns/app-{}", i % 12),
                &format!("job-{i}"),
                format!("ns/app-{}", i % 12).into_bytes(),
            )
            .await
            .expect("publish");
        if i == 60 {
            let b = support::rabbit(&settings).await;
            joined = Some((b.clone(), work(b, "b")));
        }
        if i == 160 {
            // a stops taking work and leaves; its shards move to b after its jobs are done.
            first.abort();
            a.close().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while done.lock().expect("done").len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {total} jobs done",
            done.lock().expect("done").len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = runs.lock().expect("runs").clone();
    let by = |p: &str| runs.iter().filter(|r| r.1 == p).count();
    assert!(
        by("a") > 0 && by("b") > 0,
        "both processes worked: a {}, b {}",
        by("a"),
        by("b")
    );
    for x in &runs {
        for y in &runs {
            let overlap = x.0 == y.0 && x.1 != y.1 && x.2 < y.3 && y.2 < x.3;
            assert!(!overlap, "{} ran in a and b at once: {x:?} {y:?}", x.0);
        }
    }
    if let Some((b, task)) = joined {
        task.abort();
        b.close().await;
    }
    publisher.close().await;
    let _ = capstan::queue::rabbitmq::delete_topology(&settings).await;
}

both!(depths_count_waiting_messages_per_queue_and_shards_owned_are_reported);
async fn depths_count_waiting_messages_per_queue_and_shards_owned_are_reported(kind: QueueKind) {
    let h = Harness::new(kind, |s| s.shards = 4).await;
    let prefix = h.settings.prefix.clone();
    let metrics = std::sync::Arc::new(capstan::metrics::Metrics::new());
    h.queue.report_to(metrics.clone());
    for i in 0..3 {
        h.queue
            .publish(Topic::Jobs, "ns/app", &format!("job-{i}"), b"{}".to_vec())
            .await
            .expect("publish");
    }
    h.queue
        .publish(Topic::Events, "", "ev-1", b"{}".to_vec())
        .await
        .expect("publish");
    let shard = shard_for("ns/app", 4);
    let expected: Vec<(String, u64)> = std::iter::once((format!("{prefix}.events.router"), 1))
        .chain((0..4).map(|i| (format!("{prefix}.jobs.{i}"), if i == shard { 3 } else { 0 })))
        .chain([
            (format!("{prefix}.notify"), 0),
            (format!("{prefix}.previews"), 0),
            (format!("{prefix}.dead"), 0),
        ])
        .collect();
    // The broker's counts follow confirmed publishes closely but not atomically.
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let depths = h.queue.depths().await.expect("depths");
        if depths == expected {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{depths:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.encode().contains("capstan_shards_owned 0\n"));
    let sub = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    assert!(
        metrics.encode().contains("capstan_shards_owned 4\n"),
        "{}",
        metrics.encode()
    );
    drop(sub);
}

both!(a_message_carries_the_trace_context_of_the_span_that_published_it);
async fn a_message_carries_the_trace_context_of_the_span_that_published_it(kind: QueueKind) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    let h = Harness::new(kind, |_| {}).await;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // The trace context is read when `publish` is called, inside the span.
    let (traced, expected) = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("webhook");
        let _entered = span.enter();
        let expected = capstan::telemetry::current_traceparent();
        (
            h.queue.publish(Topic::Events, "", "traced", b"{}".to_vec()),
            expected,
        )
    });
    traced.await.expect("publish");
    h.queue
        .publish(Topic::Events, "", "untraced", b"{}".to_vec())
        .await
        .expect("publish");
    let expected = expected.expect("a traceparent inside a recorded span");
    assert!(
        expected.starts_with("00-") && expected.len() == 55,
        "{expected}"
    );
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    let d = next(&mut sub).await;
    assert_eq!(
        (d.id.as_str(), d.traceparent.as_deref()),
        ("traced", Some(expected.as_str()))
    );
    d.ack().await.expect("ack");
    let d = next(&mut sub).await;
    assert_eq!(
        (d.id.as_str(), d.traceparent.as_deref()),
        ("untraced", None)
    );
    d.ack().await.expect("ack");
}

both!(the_last_attempt_is_known_before_the_retry_that_dead_letters_it);
async fn the_last_attempt_is_known_before_the_retry_that_dead_letters_it(kind: QueueKind) {
    let mut h = Harness::new(kind, |s| s.max_attempts = 2).await;
    let mut sub = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    h.queue
        .publish(Topic::Jobs, "ns/app", "job-1", b"{}".to_vec())
        .await
        .expect("publish");
    let first = next(&mut sub).await;
    assert!(!first.is_last_attempt());
    first.retry().await.expect("retry");
    let second = next(&mut sub).await;
    assert_eq!(second.attempt, 2);
    assert!(second.is_last_attempt());
    second.retry().await.expect("retry");
    assert_eq!(h.await_dead("job-1").await, ["job-1"]);
}
