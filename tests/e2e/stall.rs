//! A slow or failing API server: one app stuck mid-sync and flooded with refreshes must not stall
//! the other apps its worker serves, nor hold more than its running and one pending delivery; a
//! transient server error is retried within the job instead of left as a ComparisonError.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_of_a_stuck_app_never_stall_another_app_on_its_shard() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("stuck/config.yaml", &config_map("stuck", "a"));
    app.repo.write("free/config.yaml", &config_map("free", "b"));
    let commit = app.repo.commit("two apps");

    // Hold A inside its sync: the sandbox delays the first write of A's ConfigMap beyond the test.
    app.sandbox.faults().delay_next(
        1,
        "/configmaps/stuck",
        Some("PATCH"),
        Duration::from_secs(600),
    );
    assert_eq!(
        app.create_app("stuck", "stuck", Some(false)).await.status(),
        201
    );
    eventually(60, "A is inside its sync", || async {
        app.sandbox.faults().hits() >= 1
    })
    .await;
    // One more than the prefetch window.
    for _ in 0..17 {
        assert_eq!(app.refresh_app("stuck").await.status(), 202);
    }

    // B shares A's shard queue, so it is served by the consumer whose window A could fill.
    let (other, shard) = name_on_shard_of(&app.app_namespace("stuck").await, "stuck", "free");
    assert_eq!(
        app.create_app(&other, "free", Some(false)).await.status(),
        201
    );
    app.wait_app(&other, 60, "B Synced while A is stuck", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;

    let stuck = app.get_app("stuck").await;
    assert_ne!(sync_of(&stuck).0, "Synced", "A is still stuck: {stuck}");
    let queue = format!("{}.jobs.{shard}", app.prefix);
    let (ready, unacked) = queue_ready_and_unacked(&queue).await;
    // Every refresh of A was delivered (B's job came after them), and merged rather than held.
    assert_eq!(ready, 0, "messages still waiting in {queue}");
    assert!(
        unacked <= 2,
        "A holds {unacked} unacked deliveries (at most its running and one pending)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_commit_syncs_through_a_transient_api_server_error() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = app.repo.commit("web at 1.25");
    assert_eq!(
        app.create_app("flaky", "app", Some(true)).await.status(),
        201
    );
    // Healthy too: no progress re-check is still due, which would compare again on its own.
    app.wait_app("flaky", 30, "Synced and Healthy at the first commit", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
            && a.pointer("/status/health/status") == Some(&"Healthy".into())
    })
    .await;

    // Every status the app goes through from here on: without a prompt retry the failed compare
    // is written as a ComparisonError, however soon a later refresh heals it.
    let namespace = app.app_namespace("flaky").await;
    let seen_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn({
        let seen_errors = seen_errors.clone();
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "capstan.dev",
            "v1alpha1",
            "Application",
        ));
        let api: Api<DynamicObject> = Api::namespaced_with(app.kube.clone(), &namespace, &ar);
        async move {
            let mut ready = Some(ready_tx);
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(obj)) => {
                        let conditions = obj.data.pointer("/status/conditions").cloned();
                        for c in conditions
                            .as_ref()
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if c["type"] == "ComparisonError" {
                                seen_errors
                                    .lock()
                                    .expect("lock")
                                    .push(c["message"].to_string());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("the watch started")
        .expect("the watch started");

    // The compare's server-side dry-run of the Deployment meets one 500 (an API server
    // restarting).
    app.sandbox.faults().inject(
        1,
        capstan::sandbox::FaultMatch {
            dry_run: Some(true),
            ..capstan::sandbox::FaultMatch::new("/deployments/web", Some("PATCH"))
        },
        capstan::sandbox::FaultAction::Fail(500),
    );
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.27"));
    let second = app.repo.commit("web at 1.27");
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );
    let synced = app
        .wait_app("flaky", 30, "Synced at the pushed commit", |a| {
            sync_of(a) == ("Synced".into(), second.clone())
        })
        .await;
    assert_eq!(app.sandbox.faults().hits(), 1, "the 500 was served");
    watch.abort();
    let seen_errors = seen_errors.lock().expect("lock").clone();
    assert!(
        seen_errors.is_empty(),
        "the app never showed a ComparisonError: {seen_errors:?}; last status {}",
        synced["status"]
    );
    let live = app.deployment("web").await.expect("the Deployment");
    assert_eq!(
        live.pointer("/spec/template/spec/containers/0/image"),
        Some(&"nginx:1.27".into())
    );
}
