//! Worker processes that share the work: one poller for the whole control plane (a Lease), and
//! a worker killed under load loses nothing because its shards move to the others.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use capstan::config::Role;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::helpers::*;

/// How many refreshes the poller of the process logging to `log` has enqueued.
fn polls(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("refresh enqueued"))
        .count()
}

/// Kills a child process and reaps it.
fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Two workers, polling every second: only the holder of the `capstan-poller` Lease polls; when
/// it is killed, the other takes the Lease over and polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_polls_for_the_whole_control_plane_and_another_takes_over() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    app.repo
        .write("polled/config.yaml", &config_map("polled", "x"));
    app.repo.commit("an app to poll");
    assert_eq!(app.create_app("polled", "polled", None).await.status(), 201);
    let logs = tempfile::tempdir().expect("tempdir");
    let fast = || {
        vec![
            (
                "CAPSTAN__RECONCILE__INTERVAL_SECS".to_owned(),
                "1".to_owned(),
            ),
            (
                "CAPSTAN__RECONCILE__POLLER_LEASE_SECS".to_owned(),
                "3".to_owned(),
            ),
        ]
    };
    let paths = [
        logs.path().join("worker-1.log"),
        logs.path().join("worker-2.log"),
    ];
    let mut workers: Vec<Option<Child>> = paths
        .iter()
        .map(|p| Some(spawn_process_with(&app, Role::Worker, p, fast())))
        .collect();
    eventually(30, "someone polls", || async {
        paths.iter().map(|p| polls(p)).sum::<usize>() >= 3
    })
    .await;
    // A few more intervals: still only one of them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts: Vec<usize> = paths.iter().map(|p| polls(p)).collect();
    let polling: Vec<usize> = (0..2).filter(|i| counts[*i] > 0).collect();
    assert_eq!(polling.len(), 1, "exactly one worker polls: {counts:?}");
    let holder = polling[0];
    let leases: Api<Lease> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    let lease = leases
        .get("capstan-poller")
        .await
        .expect("the poller Lease");
    assert!(
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .is_some_and(|h| !h.is_empty()),
        "the Lease names its holder: {lease:?}"
    );

    if let Some(child) = workers[holder].take() {
        kill(child);
    }
    let other = 1 - holder;
    let before = polls(&paths[other]);
    eventually(30, "the other worker takes the poller over", || async {
        polls(&paths[other]) > before + 2
    })
    .await;
    for child in workers.into_iter().flatten() {
        kill(child);
    }
}

/// Two workers share the shards; one is SIGKILLed while pushes keep coming: its shards move to
/// the survivor and every app ends at the last commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_under_load_hands_its_shards_over_and_nothing_is_lost() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let apps: Vec<String> = (0..8).map(|i| format!("load-{i}")).collect();
    for name in &apps {
        app.repo
            .write(&format!("{name}/config.yaml"), &config_map(name, "0"));
    }
    let mut head = app.repo.commit("eight apps");
    let logs = tempfile::tempdir().expect("tempdir");
    let first = spawn_process(&app, Role::Worker, &logs.path().join("worker-1.log"));
    let second = spawn_process(&app, Role::Worker, &logs.path().join("worker-2.log"));
    for name in &apps {
        assert_eq!(app.create_app(name, name, Some(true)).await.status(), 201);
    }
    for name in &apps {
        app.wait_app(name, 60, "first sync", |a| {
            sync_of(a) == ("Synced".into(), head.clone())
        })
        .await;
    }
    let jobs = |log: &str| {
        std::fs::read_to_string(logs.path().join(log))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("job done"))
            .count()
    };
    let said = |log: &str, what: &str| {
        std::fs::read_to_string(logs.path().join(log))
            .unwrap_or_default()
            .contains(what)
    };
    eventually(30, "the workers split the shards", || async {
        said("worker-1.log", "handed shard over") && said("worker-2.log", "handed shard over")
    })
    .await;
    let before = (jobs("worker-1.log"), jobs("worker-2.log"));
    let mut first = Some(first);
    for round in 1..=6 {
        if round == 2 {
            // Both took part in round 1: the shards are split between them, not held by the
            // first to start.
            eventually(30, "both workers reconcile the first round", || async {
                jobs("worker-1.log") > before.0 && jobs("worker-2.log") > before.1
            })
            .await;
        }
        for name in &apps {
            app.repo.write(
                &format!("{name}/config.yaml"),
                &config_map(name, &round.to_string()),
            );
        }
        head = app.repo.commit(&format!("round {round}"));
        assert_eq!(app.push_webhook(&head, Some(""), None).await.status(), 202);
        if round == 3
            && let Some(child) = first.take()
        {
            kill(child);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for name in &apps {
        app.wait_app(name, 90, "the last commit, after the kill", |a| {
            sync_of(a) == ("Synced".into(), head.clone())
        })
        .await;
        let live = app.config_map(name).await.expect("applied");
        assert_eq!(live["data"]["key"], "6", "{name} has the last round");
    }
    kill(second);
}
