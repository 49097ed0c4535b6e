//! Worker processes under load and failure: a burst for one app never runs two reconciles of it
//! at once and collapses into one extra run; a job that fails on every attempt is dead-lettered
//! and says so on its app.

use std::time::Duration;

use capstan::config::Role;
use capstan::queue::REASON_HEADER;
use capstan::sandbox::{FaultAction, FaultMatch};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::AMQPValue;
use serde_json::Value;

use crate::helpers::*;
use crate::job_log::{self, JobRun};

const APP: &str = "capstan/burst";
const REFRESHES: usize = 10;
const PUSHES: usize = 10;

fn no_start_poll() -> Vec<(String, String)> {
    vec![(
        "CAPSTAN__RECONCILE__POLL_ON_START".to_string(),
        "false".to_string(),
    )]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_under_a_burst_never_overlap_one_app_and_run_it_once_more() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let logs = tempfile::tempdir().expect("tempdir");
    let log_paths = [
        logs.path().join("worker-a.log"),
        logs.path().join("worker-b.log"),
    ];
    let _workers: Vec<_> = log_paths
        .iter()
        .map(|log| spawn_process_with(&app, Role::Worker, log, no_start_poll()))
        .collect();
    // Without a poll at start, only an app created after a worker started is refreshed at once.
    for log in &log_paths {
        wait_listening(log).await;
    }
    let all_runs = || -> Vec<JobRun> {
        log_paths
            .iter()
            .flat_map(|log| job_log::runs(log, APP))
            .collect()
    };
    app.repo
        .write("app/config.yaml", &config_map("burst", "one"));
    let first = app.repo.commit("one");
    assert_eq!(
        app.create_app("burst", "app", Some(true)).await.status(),
        201
    );
    app.wait_app("burst", 60, "Synced", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    eventually(10, "the creation's runs are over", || {
        let idle = {
            let runs = all_runs();
            !runs.is_empty() && runs.iter().all(|r| r.ended.is_some())
        };
        async move { idle }
    })
    .await;
    let quiet_since = jiff::Timestamp::now();

    // Hold one run inside its status write while the burst arrives; long enough that a loaded
    // machine still sends and routes the whole burst before the hold ends.
    let hold = Duration::from_secs(25);
    app.sandbox.faults().inject(
        1,
        FaultMatch::new("/applications/burst/status", Some("PATCH")),
        FaultAction::Delay(hold),
    );
    assert_eq!(app.refresh_app("burst").await.status(), 202);
    eventually(30, "a run is held", || async {
        app.sandbox.faults().hits() >= 1
    })
    .await;
    app.repo
        .write("app/config.yaml", &config_map("burst", "two"));
    let second = app.repo.commit("two");
    for i in 0..REFRESHES.max(PUSHES) {
        if i < REFRESHES {
            assert_eq!(app.refresh_app("burst").await.status(), 202);
        }
        if i < PUSHES {
            assert_eq!(
                app.push_webhook(&second, Some(""), None).await.status(),
                202
            );
        }
    }
    // Every job of the burst reached the worker while the run is held: nothing waits in the
    // shard queue, which holds only the held delivery and the one kept for the run owed, both
    // unacknowledged.
    let (_, shard) = name_on_shard_of(APP_NAMESPACE, "burst", "x");
    let shard_queue = format!("{}.jobs.{shard}", app.prefix);
    let router_queue = format!("{}.events.router", app.prefix);
    eventually(25, "the burst is delivered", || async {
        queue_ready_and_unacked(&router_queue).await == (0, 0)
            && matches!(queue_ready_and_unacked(&shard_queue).await, (0, 1..=2))
    })
    .await;
    let delivered_at = jiff::Timestamp::now();

    app.wait_app("burst", 60, "Synced at the pushed commit", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    eventually(10, "every run has ended", || {
        let over = all_runs().iter().all(|r| r.ended.is_some());
        async move { over }
    })
    .await;

    let runs = all_runs();
    job_log::assert_never_overlapping(&runs);
    // Progress re-checks (cause Drift) follow a sync on their own; what the burst asked for
    // is every other run.
    let mut asked: Vec<JobRun> = runs
        .into_iter()
        .filter(|r| r.started > quiet_since && r.cause != "Drift")
        .collect();
    asked.sort_by_key(|r| r.started);
    let held = &asked[0];
    assert_eq!(
        held.cause, "Manual",
        "the held run is the first refresh: {held:?}"
    );
    assert!(
        held.ended.is_some_and(|end| delivered_at < end),
        "the burst was delivered while the run was held (else this test proves nothing): {held:?}"
    );
    assert_eq!(
        asked.len(),
        2,
        "the burst of {} jobs collapsed into one extra run: {asked:#?}",
        REFRESHES + PUSHES
    );
    let extra = &asked[1];
    // A progress re-check of the creation's sync may have joined the burst.
    assert!(
        extra.coalesced() >= (REFRESHES + PUSHES) as u64,
        "the extra run stands for the whole burst: {extra:?}"
    );
    assert!(
        extra.synced() && extra.revision() == second,
        "the extra run synced the pushed commit: {extra:?}"
    );
    let live = app.config_map("burst").await.expect("config map");
    assert_eq!(
        live.pointer("/data/key").and_then(Value::as_str),
        Some("two")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_every_attempt_is_dead_lettered_and_named_on_its_app() {
    const MAX_ATTEMPTS: usize = 3;
    let app = spawn_app(Options {
        extra_env: vec![(
            "CAPSTAN__QUEUE__MAX_ATTEMPTS".to_string(),
            MAX_ATTEMPTS.to_string(),
        )],
        ..Default::default()
    })
    .await;
    app.repo
        .write("app/config.yaml", &config_map("poison", "x"));
    app.repo.commit("config");
    assert_eq!(app.create_app("poison", "app", None).await.status(), 201);
    app.wait_app("poison", 30, "reconciled once", |a| {
        a.pointer("/status/reconciledAt").is_some()
    })
    .await;

    // Every attempt's status write is refused, so every attempt of the refresh fails.
    app.sandbox.faults().fail_next(
        MAX_ATTEMPTS,
        "/applications/poison/status",
        Some("PATCH"),
        500,
    );
    assert_eq!(app.refresh_app("poison").await.status(), 202);
    let state = app
        .wait_app("poison", 60, "a ReconcileFailed condition", |a| {
            a.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["type"] == "ReconcileFailed"))
        })
        .await;
    assert_eq!(
        app.sandbox.faults().hits(),
        MAX_ATTEMPTS,
        "one failed status write per attempt"
    );
    let message = state
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "ReconcileFailed"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .to_owned();
    assert!(
        message.contains("dead-lettered")
            && message.contains(&format!("failed {MAX_ATTEMPTS} times"))
            && message.contains("injected fault"),
        "the condition names the error and the dead-lettering: {message}"
    );

    // The condition is written just before the message is dead-lettered.
    let dead_queue = format!("{}.dead", app.prefix);
    eventually(10, "the job is in the dead-letter queue", || async {
        queue_depth(&dead_queue).await >= 1
    })
    .await;
    let dead = dead_letters(&dead_queue).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (job, reason) = &dead[0];
    assert_eq!(job["app"], "capstan/poison", "{job}");
    assert_eq!(job["kind"], "refresh", "{job}");
    assert!(
        message.contains(job["id"].as_str().unwrap_or("?")),
        "the condition names the dead job: {message}"
    );
    assert!(reason.contains("injected fault"), "{reason}");

    // The next reconcile that works clears it.
    assert_eq!(app.refresh_app("poison").await.status(), 202);
    app.wait_app("poison", 30, "ReconcileFailed cleared", |a| {
        a.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_none_or(|c| c.iter().all(|c| c["type"] != "ReconcileFailed"))
    })
    .await;
}

/// Every message in a dead-letter queue (taken off it): the body as JSON, and the reason header.
async fn dead_letters(queue: &str) -> Vec<(Value, String)> {
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("amqp connect");
    let channel = conn.create_channel().await.expect("channel");
    let mut found = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .expect("basic.get on the dead queue")
    {
        let headers = m.delivery.properties.headers().clone().unwrap_or_default();
        let reason = match headers.inner().get(REASON_HEADER) {
            Some(AMQPValue::LongString(s)) => s.to_string(),
            other => format!("no reason header: {other:?}"),
        };
        let body = serde_json::from_slice(&m.delivery.data).unwrap_or(Value::Null);
        found.push((body, reason));
        m.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = conn.close(0, "".into()).await;
    found
}
