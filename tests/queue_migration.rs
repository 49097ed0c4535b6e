//! Changing `queue.shards` and `queue.max_attempts` on a broker that holds work: `capstan queue
//! migrate` moves every message to the new topology generation, keeps the dead letters, puts the
//! new delivery limit in force, and is refused while old workers consume; a process started with
//! settings the broker does not hold is told to migrate. Needs RabbitMQ at
//! amqp://guest:guest@127.0.0.1:5672/%2f.

#[allow(dead_code, unused_macros)]
#[path = "queue/support.rs"]
mod support;

use std::collections::BTreeMap;

use capstan::job::{Cause, CauseSource, Job, JobKind};
use capstan::queue::{
    Generation, Migration, Queue, QueueError, QueueKind, QueueSettings, REASON_HEADER, Topic,
    migrate, shard_for,
};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use support::{AMQP_URL, Harness, assert_quiet, next};

/// How the CLI reads an app key from a job published without the key header.
fn key_of(body: &[u8]) -> Option<String> {
    Job::parse(body).ok().map(|j| j.app.to_string())
}

fn job_body(app: &str) -> Vec<u8> {
    let key = capstan::domain::AppKey::parse(app).expect("app key");
    let job = Job::new(&key, JobKind::Refresh, Cause::from(CauseSource::Poll));
    serde_json::to_vec(&job).expect("job json")
}

async fn broker() -> Connection {
    Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be running (rabbitmq-server -detached)")
}

/// Whether `queue` exists (a passive declare on a channel of its own).
async fn exists(conn: &Connection, queue: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .is_ok()
}

/// Publishes as a Capstan without the key header did (and as any other client may).
async fn publish_raw(conn: &Connection, exchange: &str, routing_key: &str, id: &str, body: &[u8]) {
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(Default::default())
        .await
        .expect("confirm");
    let confirm = ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(id.into()),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(
        matches!(confirm, lapin::Confirmation::Ack(None)),
        "{confirm:?}"
    );
}

/// The dead-letter queue's messages (id → reason header), taken off the queue.
async fn take_dead(conn: &Connection, prefix: &str) -> BTreeMap<String, String> {
    let ch = conn.create_channel().await.expect("channel");
    let mut dead = BTreeMap::new();
    while let Some(m) = ch
        .basic_get(
            format!("{prefix}.dead").as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .expect("basic.get on the dead queue")
    {
        let p = &m.delivery.properties;
        let id = p
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let reason = p
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(REASON_HEADER).cloned())
            .map(|v| match v {
                AMQPValue::LongString(s) => s.to_string(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        dead.insert(id, reason);
    }
    dead
}

fn new_settings(old: &QueueSettings, shards: u16, max_attempts: u32) -> QueueSettings {
    QueueSettings {
        shards,
        max_attempts,
        ..old.clone()
    }
}

/// 30 apps × 2 jobs published by Capstan, 2 jobs of an earlier Capstan without the key header,
/// one message nobody can route, an event, and a dead letter: after migrating from 4 shards
/// and 3 attempts to `to_shards` and 5, every job arrives once, on the shard the new count gives.
async fn every_message_moves_once(to_shards: u16, unmarked: bool) {
    let h = Harness::new(QueueKind::Rabbitmq, |s| {
        s.shards = 4;
        s.max_attempts = 3;
    })
    .await;
    let prefix = h.settings.prefix.clone();
    let conn = broker().await;

    // A dead letter from before: the migration must leave it alone.
    let worker = support::rabbit(&h.settings).await;
    let mut sub = worker.subscribe(Topic::Jobs).await.expect("subscribe");
    h.queue
        .publish(Topic::Jobs, "ns/poison", "poison", b"{}".to_vec())
        .await
        .expect("publish");
    next(&mut sub).await.reject().await.expect("reject");
    worker.close().await;
    drop(sub);

    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for app in 0..30 {
        let app = format!("team-{}/app-{app}", app % 3);
        for round in 0..2 {
            let id = format!("{app}#{round}");
            h.queue
                .publish(Topic::Jobs, &app, &id, app.clone().into_bytes())
                .await
                .expect("publish");
            expected.insert(id, app.clone());
        }
    }
    for app in ["legacy/one", "legacy/two"] {
        let id = format!("{app}#old");
        let shard = shard_for(app, 4).to_string();
        publish_raw(
            &conn,
            &format!("{prefix}.jobs"),
            &shard,
            &id,
            &job_body(app),
        )
        .await;
        expected.insert(id, app.to_owned());
    }
    publish_raw(
        &conn,
        &format!("{prefix}.jobs"),
        "1",
        "keyless",
        b"not a job",
    )
    .await;
    h.queue
        .publish(Topic::Events, "", "ev-1", br#"{"v":1}"#.to_vec())
        .await
        .expect("publish an event");
    if unmarked {
        // What a broker of a Capstan from before topology generations holds.
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_delete(
            format!("{prefix}.topology").as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .expect("delete the record");
    }

    let settings = new_settings(&h.settings, to_shards, 5);
    let outcome = migrate(&settings, &key_of).await.expect("migrated");
    assert_eq!(
        outcome,
        Migration::Migrated {
            from: Generation {
                number: 0,
                shards: 4,
                max_attempts: (!unmarked).then_some(3),
            },
            to: Generation {
                number: 1,
                shards: to_shards,
                max_attempts: Some(5),
            },
            events: 1,
            jobs: 62,
            dead_lettered: 1,
        }
    );
    let again = migrate(&settings, &key_of).await.expect("second run");
    assert_eq!(
        again,
        Migration::Current(Generation {
            number: 1,
            shards: to_shards,
            max_attempts: Some(5),
        }),
        "a second run changes nothing"
    );

    // The old generation is gone: a process still on the old settings cannot queue a job
    // into it (an error, not a confirm for a queue nobody reads).
    for old in (0..4).map(|i| format!("{prefix}.jobs.{i}")) {
        assert!(!exists(&conn, &old).await, "{old} is deleted");
    }
    assert!(!exists(&conn, &format!("{prefix}.events.router")).await);
    for i in 0..to_shards {
        assert!(exists(&conn, &format!("{prefix}.jobs.g1.{i}")).await);
    }
    assert!(!exists(&conn, &format!("{prefix}.jobs.g1.{to_shards}")).await);
    let late = h
        .queue
        .publish(Topic::Jobs, "ns/late", "late", b"{}".to_vec())
        .await;
    assert!(late.is_err(), "an old-settings publish must fail: {late:?}");

    let q = support::rabbit(&settings).await;
    let mut jobs = q.subscribe(Topic::Jobs).await.expect("subscribe");
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..expected.len() {
        let d = next(&mut jobs).await;
        let app = expected
            .get(&d.id)
            .unwrap_or_else(|| panic!("unexpected job {}", d.id))
            .clone();
        assert_eq!(d.shard, Some(shard_for(&app, to_shards)), "{}", d.id);
        assert_eq!(d.attempt, 1, "{}", d.id);
        assert!(seen.insert(d.id.clone(), app).is_none(), "{} twice", d.id);
        d.ack().await.expect("ack");
    }
    assert_quiet(&mut jobs, "every job arrived exactly once").await;
    let mut events = q.subscribe(Topic::Events).await.expect("subscribe events");
    let ev = next(&mut events).await;
    assert_eq!(ev.id, "ev-1");
    ev.ack().await.expect("ack");
    assert_quiet(&mut events, "the event arrived once").await;

    let dead = take_dead(&conn, &prefix).await;
    assert_eq!(
        dead.keys().map(String::as_str).collect::<Vec<_>>(),
        ["keyless", "poison"]
    );
    assert!(dead["keyless"].contains("no app key"), "{dead:?}");
    q.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_migrating_to_more_shards_moves_every_job_once_to_its_new_shard() {
    every_message_moves_once(8, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_migrating_an_unrecorded_broker_to_fewer_shards_moves_every_job_once() {
    every_message_moves_once(2, true).await;
}

/// A job that kills its worker on every delivery is dead-lettered by the broker after the
/// new max_attempts deliveries (5), not the old (3), and counts from 1 again after the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_after_a_migration_the_new_delivery_limit_is_in_force() {
    let mut h = Harness::new(QueueKind::Rabbitmq, |s| s.max_attempts = 3).await;
    h.queue
        .publish(Topic::Jobs, "ns/crashy", "crashy", b"{}".to_vec())
        .await
        .expect("publish");
    support::crash_on(&h.settings, "crashy", 1).await;
    let settings = new_settings(&h.settings, h.settings.shards, 5);
    migrate(&settings, &key_of).await.expect("migrated");
    support::crash_on(&settings, "crashy", 5).await;
    assert_eq!(h.await_dead("crashy").await, ["crashy"]);
}

/// Settings the broker does not hold are refused at start with what to do, and nothing is
/// declared; a broker from before topology records is adopted only when it matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_a_process_with_other_settings_is_told_to_migrate_and_declares_nothing() {
    let h = Harness::new(QueueKind::Rabbitmq, |s| {
        s.shards = 4;
        s.max_attempts = 3;
    })
    .await;
    let prefix = h.settings.prefix.clone();
    let conn = broker().await;
    for (shards, max_attempts) in [(8, 3), (4, 5)] {
        let err = capstan::queue::connect(&new_settings(&h.settings, shards, max_attempts))
            .await
            .err()
            .expect("refused");
        let message = err.to_string();
        assert!(matches!(err, QueueError::Topology(_)), "{message}");
        assert!(message.contains("capstan queue migrate"), "{message}");
        assert!(
            message.contains("shards = 4, max_attempts = 3")
                && message.contains(&format!("shards = {shards}, max_attempts = {max_attempts}")),
            "{message}"
        );
    }
    assert!(
        !exists(&conn, &format!("{prefix}.jobs.4")).await,
        "nothing declared"
    );
    assert!(!exists(&conn, &format!("{prefix}.jobs.g1.0")).await);

    // A broker of a Capstan from before the record: adopted when it matches.
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_delete(
        format!("{prefix}.topology").as_str().into(),
        QueueDeleteOptions::default(),
    )
    .await
    .expect("delete the record");
    for (shards, max_attempts, what) in
        [(8, 3, "have 4 job shards"), (4, 5, "another max_attempts")]
    {
        let err = capstan::queue::connect(&new_settings(&h.settings, shards, max_attempts))
            .await
            .err()
            .expect("refused");
        let message = err.to_string();
        assert!(message.contains("capstan queue migrate"), "{message}");
        assert!(message.contains(what), "{message}");
    }
    assert!(!exists(&conn, &format!("{prefix}.topology")).await);
    let same = capstan::queue::connect(&h.settings).await.expect("adopted");
    assert!(
        exists(&conn, &format!("{prefix}.topology")).await,
        "recorded"
    );
    same.close().await;
}

/// While a worker of the old configuration consumes, the migration changes nothing; once it is
/// gone, the migration goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_the_migration_is_refused_while_old_workers_consume() {
    let h = Harness::new(QueueKind::Rabbitmq, |s| s.shards = 2).await;
    h.queue
        .publish(Topic::Jobs, "ns/app", "job-1", b"{}".to_vec())
        .await
        .expect("publish");
    let worker = support::rabbit(&h.settings).await;
    let mut sub = worker.subscribe(Topic::Jobs).await.expect("subscribe");
    let d = next(&mut sub).await;
    let settings = new_settings(&h.settings, 3, h.settings.max_attempts);
    let err = migrate(&settings, &key_of).await.expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("stop every worker"), "{message}");
    assert!(
        message.contains(&format!("{}.jobs.0", h.settings.prefix)),
        "{message}"
    );
    // Nothing moved: the worker still holds its job on the old generation.
    d.ack().await.expect("ack on the old generation");
    h.queue
        .publish(Topic::Jobs, "ns/app", "job-2", b"{}".to_vec())
        .await
        .expect("the old generation still takes jobs");
    assert_eq!(next(&mut sub).await.id, "job-2");
    worker.close().await;
    drop(sub);
    let outcome = migrate(&settings, &key_of).await.expect("migrated");
    assert!(
        matches!(outcome, Migration::Migrated { jobs: 1, .. }),
        "job-2 was never acked, so it moves: {outcome:?}"
    );
}

/// `capstan queue migrate` as an operator runs it: the configuration through the environment,
/// a line saying what was done, and a no-op the second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_the_cli_migrates_and_says_so_then_has_nothing_to_do() {
    let h = Harness::new(QueueKind::Rabbitmq, |s| s.shards = 4).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["queue", "migrate"])
            .env("CAPSTAN__QUEUE__KIND", "rabbitmq")
            .env("CAPSTAN__QUEUE__URL", AMQP_URL)
            .env("CAPSTAN__QUEUE__PREFIX", &h.settings.prefix)
            .env("CAPSTAN__QUEUE__SHARDS", "6")
            .output()
            .expect("capstan runs")
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("migrated from generation 0 (shards = 4")
            && stdout.contains("to generation 1 (shards = 6"),
        "{stdout}"
    );
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A migration that died after taking the old generation's exchange and binding away and
/// deleting one (empty) old queue, before recording the new generation: the old settings are
/// still recorded, processes with the new ones still refuse to start, and running it again
/// moves what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_an_interrupted_migration_finishes_when_run_again() {
    let h = Harness::new(QueueKind::Rabbitmq, |s| s.shards = 4).await;
    let prefix = h.settings.prefix.clone();
    let apps: Vec<String> = (0..12).map(|i| format!("ns/app-{i}")).collect();
    for app in &apps {
        h.queue
            .publish(Topic::Jobs, app, app, b"{}".to_vec())
            .await
            .expect("publish");
    }
    h.queue.close().await;
    let empty = (0..4u16)
        .find(|s| apps.iter().all(|a| shard_for(a, 4) != *s))
        .map(|s| format!("{prefix}.jobs.{s}"));
    let conn = broker().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_unbind(
        format!("{prefix}.events.router").as_str().into(),
        format!("{prefix}.events").as_str().into(),
        "".into(),
        FieldTable::default(),
    )
    .await
    .expect("unbind");
    ch.exchange_delete(format!("{prefix}.jobs").as_str().into(), Default::default())
        .await
        .expect("delete the old jobs exchange");
    if let Some(empty) = &empty {
        ch.queue_delete(empty.as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("delete an empty old queue");
    }
    let settings = new_settings(&h.settings, 8, h.settings.max_attempts);
    let err = capstan::queue::connect(&settings)
        .await
        .err()
        .expect("the new settings are not recorded yet");
    assert!(err.to_string().contains("capstan queue migrate"), "{err}");

    let outcome = migrate(&settings, &key_of).await.expect("finished");
    assert!(
        matches!(
            outcome,
            Migration::Migrated {
                jobs: 12,
                events: 0,
                dead_lettered: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    let q = support::rabbit(&settings).await;
    let mut sub = q.subscribe(Topic::Jobs).await.expect("subscribe");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..apps.len() {
        let d = next(&mut sub).await;
        assert_eq!(d.shard, Some(shard_for(&d.id, 8)), "{}", d.id);
        assert!(seen.insert(d.id.clone()), "{} twice", d.id);
        d.ack().await.expect("ack");
    }
    assert_quiet(&mut sub, "every job once").await;
    q.close().await;
}
