//! One app stuck mid-sync and flooded with refreshes must not stall the other apps its worker
//! serves, nor hold more than its running and one pending delivery.

use std::time::Duration;

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
