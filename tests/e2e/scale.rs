//! Worker processes that share the work: one poller for the whole control plane (a Lease), and
//! a worker killed under load loses nothing because its shards move to the others.

use std::path::Path;
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
fn kill(mut child: crate::common::child::ChildGuard) {
    child.kill_and_wait();
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
    let mut workers: Vec<Option<crate::common::child::ChildGuard>> = paths
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

/// Fencing: worker A is inside the compare of revision 2 when its broker connection is cut;
/// worker B takes the job over and syncs revision 3. A must stop acting at once: when its
/// held request comes back it applies nothing, so revision 2 never lands after revision 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_from_the_broker_mid_sync_never_applies_after_the_new_owner() {
    use crate::common::tcp_proxy::TcpProxy;
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let logs = tempfile::tempdir().expect("tempdir");
    let via_proxy = vec![(
        "CAPSTAN__QUEUE__URL".to_owned(),
        format!("amqp://guest:guest@{}/%2f", proxy.addr()),
    )];
    let a = spawn_process_with(
        &app,
        Role::Worker,
        &logs.path().join("worker-a.log"),
        via_proxy,
    );
    app.repo
        .write("fenced/config.yaml", &config_map("fenced", "rev1"));
    let rev1 = app.repo.commit("rev1");
    assert_eq!(
        app.create_app("fenced", "fenced", Some(true))
            .await
            .status(),
        201
    );
    app.wait_app("fenced", 60, "A synced rev1", |a| {
        sync_of(a) == ("Synced".into(), rev1.clone())
    })
    .await;

    // A's next request to the object (the compare's dry-run of rev2) is held for 8 s.
    app.sandbox.faults().delay_next(
        1,
        "/configmaps/fenced",
        Some("PATCH"),
        Duration::from_secs(8),
    );
    app.repo
        .write("fenced/config.yaml", &config_map("fenced", "rev2"));
    let rev2 = app.repo.commit("rev2");
    assert_eq!(app.push_webhook(&rev2, Some(""), None).await.status(), 202);
    eventually(30, "A is inside the compare of rev2", || async {
        app.sandbox.faults().hits() >= 1
    })
    .await;
    let b = spawn_process(&app, Role::Worker, &logs.path().join("worker-b.log"));
    app.repo
        .write("fenced/config.yaml", &config_map("fenced", "rev3"));
    let rev3 = app.repo.commit("rev3");
    // B is consuming (as standby of A's shard) before A is cut.
    eventually(30, "B consumes", || async {
        std::fs::read_to_string(logs.path().join("worker-b.log"))
            .unwrap_or_default()
            .contains("consuming shard")
    })
    .await;
    proxy.cut();
    app.wait_app("fenced", 60, "B synced rev3", |a| {
        sync_of(a) == ("Synced".into(), rev3.clone())
    })
    .await;
    // Past the end of A's held request: A must not apply rev2 now.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let live = app.config_map("fenced").await.expect("the ConfigMap");
    assert_eq!(
        live["data"]["key"], "rev3",
        "an older revision landed after a newer one"
    );
    let status = app.get_app("fenced").await;
    assert_eq!(sync_of(&status), ("Synced".into(), rev3.clone()));
    let a_log = std::fs::read_to_string(logs.path().join("worker-a.log")).unwrap_or_default();
    assert!(
        a_log.contains("connection was lost mid-job"),
        "A noticed and stopped:\n{a_log}"
    );
    kill(a);
    kill(b);
}

/// SIGTERM mid-sync: the worker finishes the job in progress (its held write goes through),
/// acknowledges it and exits 0; the worker beside it never runs that job again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_job_in_progress_finish_before_the_worker_exits() {
    use capstan::sandbox::{FaultAction, FaultMatch};
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let logs = tempfile::tempdir().expect("tempdir");
    let (a_log, b_log) = (
        logs.path().join("worker-a.log"),
        logs.path().join("worker-b.log"),
    );
    let mut a = spawn_process(&app, Role::Worker, &a_log);
    app.repo
        .write("drained/config.yaml", &config_map("drained", "rev1"));
    let rev1 = app.repo.commit("rev1");
    assert_eq!(
        app.create_app("drained", "drained", Some(true))
            .await
            .status(),
        201
    );
    app.wait_app("drained", 60, "A synced rev1", |a| {
        sync_of(a) == ("Synced".into(), rev1.clone())
    })
    .await;
    // A's real write of rev2 (not its dry-run) is held for 5 s.
    app.sandbox.faults().inject(
        1,
        FaultMatch::new("/configmaps/drained", Some("PATCH")).writes_only(),
        FaultAction::Delay(Duration::from_secs(5)),
    );
    app.repo
        .write("drained/config.yaml", &config_map("drained", "rev2"));
    let rev2 = app.repo.commit("rev2");
    assert_eq!(app.push_webhook(&rev2, Some(""), None).await.status(), 202);
    eventually(30, "A is inside the write of rev2", || async {
        app.sandbox.faults().hits() >= 1
    })
    .await;
    let _b = spawn_process(&app, Role::Worker, &b_log);
    let pid = a.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = a.try_wait().expect("wait") {
            break status.code();
        }
        assert!(std::time::Instant::now() < deadline, "A never exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, Some(0), "a drained worker exits cleanly");
    let app_key = format!("{APP_NAMESPACE}/drained");
    let a_runs = crate::job_log::runs(&a_log, &app_key);
    let finished = a_runs
        .iter()
        .find(|r| r.revision() == rev2)
        .unwrap_or_else(|| panic!("A finished the rev2 job before exiting: {a_runs:?}"));
    let b_runs = crate::job_log::runs(&b_log, &app_key);
    assert!(
        b_runs.iter().all(|r| r.job_id != finished.job_id),
        "B ran the job A had finished: {b_runs:?}"
    );
    assert!(finished.synced(), "A's run synced rev2: {finished:?}");
    let live = app.config_map("drained").await.expect("the ConfigMap");
    assert_eq!(live["data"]["key"], "rev2");
}
