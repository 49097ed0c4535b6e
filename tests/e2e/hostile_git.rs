//! Hostile Git in the worker: a repository server that drips one byte at a time and a "git bomb"
//! commit each end in a readable condition, while other apps keep syncing and the refreshes piling
//! up on the stuck app hold no more than two deliveries.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::drip::DripServer;
use crate::helpers::*;

/// Long enough that the healthy app syncs while the dripping one is still stuck.
const FETCH_TIMEOUT_SECS: u64 = 15;

fn comparison_error(app: &Value) -> Option<String> {
    app.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ComparisonError")
        .and_then(|c| c["message"].as_str())
        .map(str::to_owned)
}

fn spec(repo: &str, revision: &str, path: &str) -> Value {
    json!({
        "project": "default",
        "source": {"repoURL": repo, "path": path, "targetRevision": revision},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
        "syncPolicy": {"automated": {"prune": true}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_server_and_a_git_bomb_end_in_conditions_while_other_apps_sync() {
    let drip = DripServer::start(Duration::from_secs(2)).await;
    let app = spawn_app(Options {
        extra_env: vec![(
            "CAPSTAN__GIT__FETCH_TIMEOUT_SECS".into(),
            FETCH_TIMEOUT_SECS.to_string(),
        )],
        ..Default::default()
    })
    .await;
    app.repo
        .write("ok/config.yaml", &config_map("healthy", "1"));
    let commit = app.repo.commit("a healthy app");
    app.repo.git_bomb("bomb");

    let stuck_url = drip.url("/org/stuck.git");
    let created = app
        .create_app_with("dripping", spec(&stuck_url, "main", "."))
        .await;
    assert_eq!(created.status(), 201);
    drip.wait_for_connection().await;
    // One more than the prefetch window, all for the app that is stuck on the dripping server.
    for _ in 0..17 {
        assert_eq!(app.refresh_app("dripping").await.status(), 202);
    }
    let (healthy, shard) = name_on_shard_of(APP_NAMESPACE, "dripping", "healthy");
    assert_eq!(
        app.create_app_with(&healthy, spec(&app.repo_url, "main", "ok"))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_app_with("bombed", spec(&app.repo_url, "bomb", "."))
            .await
            .status(),
        201
    );

    app.wait_app(&healthy, 60, "Synced while the other app is stuck", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    let dripping = app.get_app("dripping").await;
    assert!(
        comparison_error(&dripping).is_none() && sync_of(&dripping).0 != "Synced",
        "the dripping app is still stuck in its fetch: {dripping}"
    );
    let (ready, unacked) = queue_ready_and_unacked(&format!("{}.jobs.{shard}", app.prefix)).await;
    assert_eq!(ready, 0, "every refresh was delivered and merged");
    assert!(
        unacked <= 2,
        "the stuck app holds {unacked} unacked deliveries"
    );

    let bombed = app
        .wait_app("bombed", 60, "a ComparisonError", |a| {
            comparison_error(a).is_some()
        })
        .await;
    let message = comparison_error(&bombed).unwrap_or_default();
    assert!(
        message.contains("too large to check out") && message.contains("git.max_checkout_entries"),
        "{message}"
    );
    assert_ne!(sync_of(&bombed).0, "Synced");

    let dripping = app
        .wait_app("dripping", 60, "a ComparisonError", |a| {
            comparison_error(a).is_some()
        })
        .await;
    let message = comparison_error(&dripping).unwrap_or_default();
    assert!(
        message.contains(&format!(
            "took longer than {FETCH_TIMEOUT_SECS} s (limit git.fetch_timeout_secs)"
        )),
        "{message}"
    );
    assert!(drip.connections() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_past_its_deadline_is_abandoned_with_a_condition() {
    let app = spawn_app(Options {
        extra_env: vec![("CAPSTAN__RECONCILE__TIMEOUT_SECS".into(), "3".into())],
        ..Default::default()
    })
    .await;
    app.repo.write("app/config.yaml", &config_map("held", "1"));
    app.repo.commit("one config map");
    // The cluster holds the apply far beyond the deadline.
    app.sandbox.faults().delay_next(
        1,
        "/configmaps/held",
        Some("PATCH"),
        Duration::from_secs(600),
    );
    assert_eq!(
        app.create_app("held", "app", Some(false)).await.status(),
        201
    );
    let state = app
        .wait_app("held", 60, "a ComparisonError", |a| {
            comparison_error(a).is_some()
        })
        .await;
    let message = comparison_error(&state).unwrap_or_default();
    assert_eq!(
        message,
        "reconcile took longer than 3 s (limit reconcile.timeout_secs); abandoned"
    );
    assert_ne!(sync_of(&state).0, "Synced");
    assert!(
        app.sandbox.faults().hits() >= 1,
        "the apply was really held"
    );
}
