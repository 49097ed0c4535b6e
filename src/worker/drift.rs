//! Live changes to managed objects become refresh jobs: someone scaled a Deployment, a
//! controller reported a Pod ready, an object was deleted. The live cache names the apps whose
//! objects changed (never for Capstan's own writes); each becomes a refresh with cause `drift`,
//! so drift and health changes are seen in moments, not at the next poll.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, warn};

use crate::cluster::registry::CLUSTER_CHANGE;
use crate::domain::AppKey;
use crate::job::{CauseSource, Job, JobKind};
use crate::queue::SharedQueue;
use crate::store::AppStore;

/// Changes arriving this close together are sent as one refresh per app.
const GATHER: Duration = Duration::from_millis(50);

/// Publishes a refresh for every app the cache reports, until the cache stops.
pub async fn run(mut changed: UnboundedReceiver<String>, queue: SharedQueue, store: AppStore) {
    while let Some(first) = changed.recv().await {
        // App key → cause: a changed object is drift (compared with what was synced); a cluster
        // that went down or came back is a full refresh of its apps, as a poll would be.
        let mut apps: BTreeMap<String, CauseSource> = BTreeMap::new();
        let mut add = |key: String| match key.strip_prefix(CLUSTER_CHANGE) {
            Some(cluster) => {
                for app in apps_on(&store, cluster) {
                    apps.insert(app, CauseSource::Poll);
                }
            }
            None => {
                apps.entry(key).or_insert(CauseSource::Drift);
            }
        };
        add(first);
        let deadline = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(next)) = tokio::time::timeout_at(deadline, changed.recv()).await {
            add(next);
        }
        for (app, cause) in apps {
            let Ok(key) = AppKey::parse(&app) else {
                debug!(app = %app, "a tracking annotation names no valid app; ignored");
                continue;
            };
            let job = Job::new(&key, JobKind::Refresh, cause.into());
            if let Err(e) = crate::job::publish(&queue, &job).await {
                warn!(app = %key, error = %e, "could not enqueue a refresh for a live change; the poller will cover it");
            }
        }
    }
}

/// The apps whose destination is the cluster `NAME SERVER`.
fn apps_on(store: &AppStore, cluster: &str) -> Vec<String> {
    let (name, server) = cluster.split_once(' ').unwrap_or((cluster, ""));
    store
        .list()
        .iter()
        .filter(|app| {
            let dest = &app.spec.destination;
            dest.name.as_deref() == Some(name)
                || dest
                    .server
                    .as_deref()
                    .is_some_and(|s| !server.is_empty() && s.trim_end_matches('/') == server)
        })
        .map(|app| app.key().to_string())
        .collect()
}
