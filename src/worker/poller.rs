//! The poller: the safety net that refreshes every Application at least every interval, even
//! when no signal arrives; and the watch trigger that refreshes new and changed apps at once.

use std::time::Duration;

use rand::Rng;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::domain::AppKey;
use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::queue::SharedQueue;
use crate::store::AppStore;
use crate::tenancy::Tenancy;

/// Runs until `shutdown` fires; the first poll is at once when `poll_on_start`, else after
/// `interval`.
pub async fn run(
    store: AppStore,
    tenancy: Tenancy,
    queue: SharedQueue,
    interval: Duration,
    jitter: Duration,
    poll_on_start: bool,
    shutdown: CancellationToken,
) {
    // Subscribe first, then poll at once: apps created before this worker started are covered
    // by the first poll, apps created after it by the change stream.
    let mut changes = store.spec_changes();
    let mut next_poll = tokio::time::Instant::now();
    if !poll_on_start {
        next_poll += interval;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_poll) => {}
            changed = changes.recv() => {
                match changed {
                    Ok(key) => enqueue(&queue, key, Duration::ZERO),
                    // Missed some changes: the next poll covers every app anyway.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
                continue;
            }
            _ = shutdown.cancelled() => return,
        }
        next_poll = tokio::time::Instant::now() + interval;
        // Applications in namespaces Capstan does not honour are left alone, not even refreshed.
        for app in store.list().iter().filter(|a| tenancy.honours(a).is_ok()) {
            // Spread the refreshes so a thousand apps do not hit Git and the API in one instant.
            let delay = if jitter.is_zero() {
                Duration::ZERO
            } else {
                rand::rng().random_range(Duration::ZERO..jitter)
            };
            enqueue(&queue, app.key(), delay);
        }
    }
}

/// Publishes a refresh for `key` after `delay`, in the background.
fn enqueue(queue: &SharedQueue, key: AppKey, delay: Duration) {
    let queue = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let job = Job::new(&key, JobKind::Refresh, Cause::from(CauseSource::Poll));
        match crate::job::publish(&queue, &job).await {
            Ok(()) => debug!(app = %key, "refresh enqueued"),
            Err(e) => warn!(app = %key, error = %e, "refresh not enqueued"),
        }
    });
}

/// The Lease in the control namespace whose holder is the one poller of the control plane.
pub const POLLER_LEASE: &str = "capstan-poller";

/// Runs [`run`] only while this process holds the poller Lease, so every Application is polled
/// once per interval across all workers; another worker takes over within the lease duration
/// when the holder dies (at once when it stops cleanly and releases the Lease).
#[allow(clippy::too_many_arguments)]
pub async fn run_elected(
    client: kube::Client,
    namespace: String,
    identity: String,
    lease: Duration,
    store: AppStore,
    tenancy: Tenancy,
    queue: SharedQueue,
    interval: Duration,
    jitter: Duration,
    poll_on_start: bool,
    shutdown: CancellationToken,
) {
    let secs = lease.as_secs().max(2);
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, POLLER_LEASE)
        .with_namespace(namespace)
        .with_identity(identity.clone())
        .with_duration(secs)
        .with_grace((secs / 3).max(1))
        .build()
        .await;
    let manager = match manager {
        Ok(m) => m,
        Err(e) => {
            // Polling twice is better than never: the safety net must not depend on the Lease.
            warn!(error = %e, "no poller election (Leases not usable); this worker polls on its own");
            run(
                store,
                tenancy,
                queue,
                interval,
                jitter,
                poll_on_start,
                shutdown,
            )
            .await;
            return;
        }
    };
    let (mut leading, task) = manager.watch().await;
    let mut polling: Option<CancellationToken> = None;
    loop {
        let leader = *leading.borrow_and_update();
        match (leader, &polling) {
            (true, None) => {
                tracing::info!(%identity, "holding the poller lease: polling");
                let token = shutdown.child_token();
                tokio::spawn(run(
                    store.clone(),
                    tenancy.clone(),
                    queue.clone(),
                    interval,
                    jitter,
                    poll_on_start,
                    token.clone(),
                ));
                polling = Some(token);
            }
            (false, Some(token)) => {
                tracing::info!(%identity, "lost the poller lease: not polling");
                token.cancel();
                polling = None;
            }
            _ => {}
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
    }
    if let Some(token) = polling {
        token.cancel();
    }
    // Closing the channel makes the manager release the Lease for the next worker.
    drop(leading);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
