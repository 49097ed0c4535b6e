//! The operator's Lua health checks: from the configuration file and, when configured, from a
//! ConfigMap in the control namespace (Argo CD's `resource.customizations.health.*` keys), re-read
//! periodically so a changed check takes effect without a restart or a rebuild.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::HealthSettings;
use crate::health::{CustomHealth, KEY_PREFIX};

/// The checks in force; reconciles take a copy (cheap: an `Arc` inside).
pub type HealthChecks = Arc<RwLock<CustomHealth>>;

/// The current checks.
pub fn current(checks: &HealthChecks) -> CustomHealth {
    checks.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Loads the checks once, then keeps re-reading the ConfigMap (if any) until `shutdown`.
pub async fn start(
    client: Client,
    namespace: &str,
    settings: &HealthSettings,
    shutdown: CancellationToken,
) -> HealthChecks {
    let checks = Arc::new(RwLock::new(load(&client, namespace, settings).await));
    if let Some(name) = settings.configmap.clone() {
        let (checks, namespace, settings) =
            (checks.clone(), namespace.to_owned(), settings.clone());
        let every = Duration::from_secs(settings.configmap_reload_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let fresh = load(&client, &namespace, &settings).await;
                *checks.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                tracing::debug!(configmap = %name, "health checks re-read");
            }
        });
    }
    checks
}

/// The configuration's checks plus the ConfigMap's (the ConfigMap's win on the same key).
async fn load(client: &Client, namespace: &str, settings: &HealthSettings) -> CustomHealth {
    let mut entries: Vec<(String, String)> = settings
        .checks
        .iter()
        .map(|c| (c.key.clone(), c.lua.clone()))
        .collect();
    if let Some(name) = &settings.configmap {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(cm)) => {
                for (key, script) in cm.data.unwrap_or_default() {
                    // Only the health keys: an argocd-cm carries much else.
                    if key.starts_with(KEY_PREFIX) {
                        entries.push((key, script));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(configmap = %name, error = %e, "cannot read the health checks ConfigMap; keeping the file's checks")
            }
        }
    }
    let count = entries.len();
    let (checks, errors) = CustomHealth::from_entries(entries);
    for e in errors {
        // The kind is then Unknown with this message, so the problem is visible on the app too.
        warn!(error = %e, "a custom health check does not load");
    }
    if count > 0 {
        info!(checks = count, "custom health checks loaded");
    }
    checks
}
