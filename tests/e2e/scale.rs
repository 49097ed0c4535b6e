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
    let code = terminate(&mut a, 60).await;
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

/// Apps in the rolling-restart test, each its own path (`roll-<i>/`) in the test repository.
const ROLL_APPS: usize = 20;
/// Worker processes in the rolling-restart test; every one of them is replaced.
const ROLL_WORKERS: usize = 3;
/// One signed push every this long, round-robin over the apps, for the whole test.
const PUSH_EVERY: Duration = Duration::from_millis(150);

/// One push of the stream: round `value` of app `app`, committed as `commit`, and the answer.
struct Pushed {
    app: usize,
    value: u64,
    commit: String,
    status: u16,
}

/// Every value the ConfigMap `name` was seen to hold in the sandbox, in order.
type Seen = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u64>>>>;

/// Records every value of `data.key` the ConfigMaps in `default` take, until aborted.
fn watch_values(kube: kube::Client, seen: Seen) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{WatchStreamExt, watcher};
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::namespaced(kube, "default");
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let (Ok(watcher::Event::Apply(cm)) | Ok(watcher::Event::InitApply(cm))) = event else {
                continue;
            };
            let name = cm.metadata.name.clone().unwrap_or_default();
            let value = cm
                .data
                .as_ref()
                .and_then(|d| d.get("key"))
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(value) = value {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                let values = seen.entry(name).or_default();
                if values.last() != Some(&value) {
                    values.push(value);
                }
            }
        }
    })
}

/// Issue 11: every worker is restarted in turn (SIGTERM, wait for the exit, start a replacement,
/// wait until it has joined the split and reconciles) while signed pushes keep coming, one every
/// PUSH_EVERY round-robin over 20 apps. Nothing is lost (every app ends at its last push), no
/// two reconciles of one app ever overlap across processes, no applied value goes backwards,
/// nothing is dead-lettered.
///
/// How it fails (each tried with a temporary change): with `drain` skipped, the exiting worker
/// closes its connection while a reconcile is still running, the job is redelivered to another
/// worker and the two runs overlap (a run cut by the exit never ends, which the same check
/// names); with a hand-over that does not wait for the jobs in progress, apps end short of their
/// last push; without single active consumer, a starting worker takes a shard's jobs beside its
/// owner and the runs overlap. The sandbox answers after 20 ms, so reconciles last long enough
/// that apps are in progress at every hand-over, and each app gets a push every 3 s, so the next
/// owner soon has a job for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_worker_under_a_push_stream_loses_nothing_and_never_overlaps() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = Arc::new(
        spawn_app(Options {
            role: Role::Api,
            ..Default::default()
        })
        .await,
    );
    let names: Vec<String> = (0..ROLL_APPS).map(|i| format!("roll-{i}")).collect();
    // The apps cover every shard, so every hand-over moves apps (the names are fixed, so this
    // holds or fails the same way every run).
    let shards = capstan::queue::QueueSettings::default().shards;
    let covered: std::collections::BTreeSet<u16> = names
        .iter()
        .map(|n| capstan::queue::shard_for(&format!("{APP_NAMESPACE}/{n}"), shards))
        .collect();
    assert_eq!(covered.len(), usize::from(shards), "{covered:?}");
    for name in &names {
        app.repo
            .write(&format!("{name}/config.yaml"), &config_map(name, "0"));
    }
    let initial = app.repo.commit("twenty apps");
    let logs = tempfile::tempdir().expect("tempdir");
    let mut originals: Vec<(crate::common::child::ChildGuard, std::path::PathBuf)> = (0
        ..ROLL_WORKERS)
        .map(|i| {
            let log = logs.path().join(format!("original-{i}.log"));
            (spawn_process(&app, Role::Worker, &log), log)
        })
        .collect();
    for (_, log) in &originals {
        wait_listening(log).await;
    }
    for name in &names {
        assert_eq!(app.create_app(name, name, Some(true)).await.status(), 201);
    }
    for name in &names {
        app.wait_app(name, 60, "first sync", |a| {
            sync_of(a) == ("Synced".into(), initial.clone())
        })
        .await;
    }
    eventually(30, "the workers split the shards", || {
        let split = originals
            .iter()
            .all(|(_, log)| log_says(log, "handed shard over"));
        async move { split }
    })
    .await;
    app.sandbox.faults().set_latency(Duration::from_millis(20));
    let seen: Seen = Default::default();
    let watching = watch_values(app.kube.clone(), seen.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn({
        let (app, stop, names) = (app.clone(), stop.clone(), names.clone());
        async move {
            let mut pushed: Vec<Pushed> = Vec::new();
            let mut tick = tokio::time::interval(PUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in 0usize.. {
                tick.tick().await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (i, value) = (n % ROLL_APPS, (n / ROLL_APPS + 1) as u64);
                let path = format!("{}/config.yaml", names[i]);
                app.repo
                    .write(&path, &config_map(&names[i], &value.to_string()));
                let commit = app.repo.commit(&format!("{} at {value}", names[i]));
                let status = app.push_webhook_paths(&commit, &[&path]).await.status();
                pushed.push(Pushed {
                    app: i,
                    value,
                    commit,
                    status: status.as_u16(),
                });
            }
            pushed
        }
    });
    let stream_began = jiff::Timestamp::now();
    let original_logs: Vec<std::path::PathBuf> =
        originals.iter().map(|(_, log)| log.clone()).collect();
    let runs_since = |log: &std::path::Path, since: jiff::Timestamp| {
        names
            .iter()
            .flat_map(|n| crate::job_log::runs(log, &format!("{APP_NAMESPACE}/{n}")))
            .filter(|r| r.started > since && r.ended.is_some())
            .count()
    };
    // Every original worker is reconciling pushes before the restarts begin.
    eventually(30, "every worker reconciles pushes", || {
        let busy = original_logs
            .iter()
            .all(|log| runs_since(log, stream_began) > 0);
        async move { busy }
    })
    .await;

    let mut replacements: Vec<(crate::common::child::ChildGuard, std::path::PathBuf)> = Vec::new();
    for (i, (child, log)) in originals.iter_mut().enumerate() {
        let code = terminate(child, 60).await;
        assert_eq!(
            code,
            Some(0),
            "original worker {i} drained and exited cleanly; its log ends:\n{}",
            std::fs::read_to_string(&*log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            log_says(log, "drained"),
            "original worker {i} drained before it exited"
        );
        let new_log = logs.path().join(format!("replacement-{i}.log"));
        let started = jiff::Timestamp::now();
        let child = spawn_process(&app, Role::Worker, &new_log);
        // It has heard the others (and released what is theirs) and reconciles its own shards.
        eventually(45, "the replacement owns shards", || {
            let owns = log_says(&new_log, "handed shard over") && runs_since(&new_log, started) > 0;
            async move { owns }
        })
        .await;
        replacements.push((child, new_log));
    }
    // A few more pushes with only replacements running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let pushed = stream.await.expect("the push stream");

    let refused: Vec<(usize, u64, u16)> = pushed
        .iter()
        .filter(|p| p.status != 202)
        .map(|p| (p.app, p.value, p.status))
        .collect();
    assert!(refused.is_empty(), "pushes not queued: {refused:?}");
    // Commit order: the stream is the only committer after the first commit.
    let order: HashMap<&str, usize> = std::iter::once(initial.as_str())
        .chain(pushed.iter().map(|p| p.commit.as_str()))
        .enumerate()
        .map(|(i, c)| (c, i))
        .collect();
    let mut last: HashMap<usize, &Pushed> = HashMap::new();
    for p in &pushed {
        last.insert(p.app, p);
    }
    assert_eq!(last.len(), ROLL_APPS, "every app was pushed");

    // (a) Every app ends with its last push applied, and says so.
    for (i, name) in names.iter().enumerate() {
        let want = &last[&i];
        let at_least = order[want.commit.as_str()];
        app.wait_app(name, 60, "synced at or after its last push", |a| {
            let (sync, revision) = sync_of(a);
            sync == "Synced" && order.get(revision.as_str()).is_some_and(|r| *r >= at_least)
        })
        .await;
        let live = app.config_map(name).await.expect("applied");
        assert_eq!(
            live["data"]["key"],
            want.value.to_string(),
            "{name} holds its last pushed value"
        );
    }

    // (b) No two reconciles of one app overlapped, across all six processes.
    let logs_now: Vec<std::path::PathBuf> = original_logs
        .iter()
        .chain(replacements.iter().map(|(_, log)| log))
        .cloned()
        .collect();
    let runs_of = |name: &str| -> Vec<crate::job_log::JobRun> {
        logs_now
            .iter()
            .flat_map(|log| crate::job_log::runs(log, &format!("{APP_NAMESPACE}/{name}")))
            .collect()
    };
    // The originals have exited: a run of theirs that has not ended never will, and the
    // overlap check below names it.
    eventually(30, "the replacements' runs have ended", || {
        let over = replacements.iter().all(|(_, log)| {
            names.iter().all(|n| {
                crate::job_log::runs(log, &format!("{APP_NAMESPACE}/{n}"))
                    .iter()
                    .all(|r| r.ended.is_some())
            })
        });
        async move { over }
    })
    .await;
    let mut total_runs = 0;
    for name in &names {
        let runs = runs_of(name);
        total_runs += runs.len();
        crate::job_log::assert_never_overlapping(&runs);

        // (c) The revisions its syncs applied never went backwards, and neither did the live
        // value the sandbox held.
        let mut synced: Vec<&crate::job_log::JobRun> = runs.iter().filter(|r| r.synced()).collect();
        synced.sort_by_key(|r| r.started);
        let revisions: Vec<usize> = synced
            .iter()
            .map(|r| {
                *order
                    .get(r.revision())
                    .unwrap_or_else(|| panic!("{name} synced an unknown revision: {r:?}"))
            })
            .collect();
        assert!(
            revisions.windows(2).all(|w| w[0] <= w[1]),
            "{name}'s applied revisions went backwards (commit indexes {revisions:?})"
        );
        let values = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name.as_str())
            .cloned()
            .unwrap_or_default();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "{name}'s live value went backwards: {values:?}"
        );
    }
    watching.abort();
    // Every original did work during the stream and was replaced; the replacements did work.
    for log in &logs_now {
        assert!(
            runs_since(log, stream_began) > 0,
            "{} reconciled nothing during the stream",
            log.display()
        );
    }

    // (d) Nothing was dead-lettered.
    assert_eq!(
        queue_depth(&format!("{}.dead", app.prefix)).await,
        0,
        "jobs were dead-lettered"
    );
    for log in &logs_now {
        assert!(
            !log_says(log, "dead-letter"),
            "{} dead-lettered a job",
            log.display()
        );
    }
    eprintln!(
        "rolling restart: {} pushes, {total_runs} runs over {} processes",
        pushed.len(),
        logs_now.len()
    );
    for (mut child, _) in replacements {
        child.kill_and_wait();
    }
}
