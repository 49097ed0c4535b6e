//! The sync engine: compare desired with live, then dry-run, apply in order, and prune.
//! A failed sync never prunes and never reports success (docs/architecture.md, invariant 7).

pub mod order;
pub mod prepare;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::cluster::resource::{ObjectId, is_tracked_by, tracking_selector};
use crate::cluster::{Cluster, ClusterError, ResourceKey};
use crate::diff;
use crate::store::application::{ResourceResult, ResultCode, SyncStatusCode};

/// One resource as compared: what Git wants, what the cluster has, and whether they agree.
#[derive(Debug, Clone)]
pub struct Compared {
    pub key: ResourceKey,
    pub desired: Option<Value>,
    pub live: Option<Value>,
    pub status: SyncStatusCode,
    /// Tracked by the app, gone from Git.
    pub requires_pruning: bool,
    /// Why the comparison could not be completed (e.g. dry-run refused), if it could not.
    pub message: Option<String>,
}

/// Compares each desired object with the cluster, and finds tracked objects that left Git.
/// `inventory` is what the app managed before (its last status), so removed kinds are still scanned.
///
/// Live state is read by the tracking label, one list per kind, so the cost follows the app's
/// size, not the cluster's. The label only narrows the search: an object is pruned only when
/// its tracking annotation names exactly this app and object. Two fallbacks read single objects
/// by name: a desired object the label list did not return (not created yet, or created before
/// it carried the label), and an `inventory` object the label list did not return (managed
/// before objects carried the label, so it is found for pruning once).
pub async fn compare(
    cluster: &Cluster,
    app: &str,
    desired: &[Value],
    inventory: &[ResourceKey],
) -> Result<Vec<Compared>, ClusterError> {
    let keys = desired
        .iter()
        .map(crate::cluster::key_of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut kinds: BTreeSet<(String, String, String)> = BTreeSet::new();
    for key in keys.iter().chain(inventory) {
        kinds.insert((key.group.clone(), key.version.clone(), key.kind.clone()));
    }
    let selector = tracking_selector(app);
    // Maps, not scans: an app may manage thousands of objects.
    let mut labeled: BTreeMap<ObjectId, Value> = BTreeMap::new();
    for (group, version, kind) in &kinds {
        for live in cluster
            .list_labeled(group, version, kind, &selector)
            .await?
        {
            if let Some(key) = ResourceKey::of(&live) {
                labeled.entry(key.object_id()).or_insert(live);
            }
        }
    }

    let mut out = Vec::with_capacity(desired.len());
    for (obj, key) in desired.iter().zip(keys) {
        let live = match labeled.get(&key.object_id()) {
            Some(live) => Some(live.clone()),
            None => get_if_served(cluster, &key).await?,
        };
        let (status, message) = match &live {
            None => (SyncStatusCode::OutOfSync, None),
            Some(live) => match cluster.apply(obj, true).await {
                Ok(result) if diff::differs(&result, live) => (SyncStatusCode::OutOfSync, None),
                Ok(_) => (SyncStatusCode::Synced, None),
                Err(e @ ClusterError::Unreachable(_)) => return Err(e),
                Err(e) => (SyncStatusCode::OutOfSync, Some(e.to_string())),
            },
        };
        out.push(Compared {
            key,
            desired: Some(obj.clone()),
            live,
            status,
            requires_pruning: false,
            message,
        });
    }

    let mut seen: HashSet<ObjectId> = out.iter().map(|c| c.key.object_id()).collect();
    let mut fallbacks = Vec::new();
    for key in inventory {
        let id = key.object_id();
        if !seen.contains(&id)
            && !labeled.contains_key(&id)
            && let Some(live) = get_if_served(cluster, key).await?
        {
            fallbacks.push(live);
        }
    }
    for live in labeled.into_values().chain(fallbacks) {
        let Some(key) = ResourceKey::of(&live) else {
            continue;
        };
        if !is_tracked_by(&live, app) || !seen.insert(key.object_id()) {
            continue;
        }
        out.push(Compared {
            key,
            desired: None,
            live: Some(live),
            status: SyncStatusCode::OutOfSync,
            requires_pruning: true,
            message: None,
        });
    }
    Ok(out)
}

/// The live object, or None when it or its kind does not exist (a kind may be served only once
/// a CRD in this sync is applied, or no longer once its CRD is gone).
async fn get_if_served(
    cluster: &Cluster,
    key: &ResourceKey,
) -> Result<Option<Value>, ClusterError> {
    match cluster.get(key).await {
        Ok(live) => Ok(live),
        Err(ClusterError::UnknownKind { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What to do in a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    pub prune: bool,
    /// Namespace to create first (`CreateNamespace=true`), if any.
    pub create_namespace: Option<String>,
}

/// The result of a sync operation.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub succeeded: bool,
    pub message: String,
    pub resources: Vec<ResourceResult>,
}

/// Runs one sync: dry-run everything, then apply in order, then prune when allowed.
pub async fn sync(cluster: &Cluster, compared: &[Compared], opts: &SyncOptions) -> SyncOutcome {
    let mut to_apply: Vec<&Compared> = compared.iter().filter(|c| c.desired.is_some()).collect();
    to_apply.sort_by_key(|c| order::apply_order(&c.key));
    let mut results = Vec::new();

    if let Some(ns) = &opts.create_namespace {
        let namespace =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let key = ResourceKey::of(&namespace);
        let exists = match &key {
            Some(k) => matches!(cluster.get(k).await, Ok(Some(_))),
            None => false,
        };
        if !exists && let Err(e) = cluster.apply(&namespace, false).await {
            return SyncOutcome {
                succeeded: false,
                message: format!("cannot create namespace {ns}: {e}"),
                resources: results,
            };
        }
    }

    // Dry-run first so that a refused object means nothing at all is applied.
    let created_namespaces: BTreeSet<&str> = to_apply
        .iter()
        .filter(|c| c.key.kind == "Namespace" && c.key.group.is_empty())
        .map(|c| c.key.name.as_str())
        .collect();
    let created_kinds = crd_kinds(&to_apply);
    let mut dry_run_failed = false;
    for c in &to_apply {
        let Some(obj) = &c.desired else { continue };
        let namespace_created_here = created_namespaces.contains(c.key.namespace.as_str());
        let kind_created_here = created_kinds.contains(&(c.key.group.clone(), c.key.kind.clone()));
        if namespace_created_here || kind_created_here {
            continue;
        }
        if let Err(e) = cluster.apply(obj, true).await {
            dry_run_failed = true;
            results.push(result(&c.key, ResultCode::SyncFailed, &e.to_string(), None));
        }
    }
    if dry_run_failed {
        return SyncOutcome {
            succeeded: false,
            message: "one or more objects failed to apply (dry run)".into(),
            resources: results,
        };
    }

    for c in &to_apply {
        let Some(obj) = &c.desired else { continue };
        let action = if c.live.is_none() {
            "created"
        } else if c.status == SyncStatusCode::Synced {
            "unchanged"
        } else {
            "configured"
        };
        match cluster.apply(obj, false).await {
            Ok(_) => {
                results.push(result(
                    &c.key,
                    ResultCode::Synced,
                    &format!("{} {action}", c.key),
                    Some(action),
                ));
                if c.key.kind == "CustomResourceDefinition" {
                    let _ = cluster.rediscover().await;
                }
            }
            Err(e) => {
                results.push(result(&c.key, ResultCode::SyncFailed, &e.to_string(), None));
                return SyncOutcome {
                    succeeded: false,
                    message: format!("{} failed to apply: {e}", c.key),
                    resources: results,
                };
            }
        }
    }

    let mut prunes: Vec<&Compared> = compared.iter().filter(|c| c.requires_pruning).collect();
    prunes.sort_by_key(|c| std::cmp::Reverse(order::apply_order(&c.key)));
    for c in prunes {
        if !opts.prune {
            results.push(result(
                &c.key,
                ResultCode::PruneSkipped,
                "ignored (requires pruning)",
                None,
            ));
            continue;
        }
        match cluster.delete(&c.key).await {
            Ok(()) => results.push(result(&c.key, ResultCode::Pruned, "pruned", Some("pruned"))),
            Err(e) => {
                results.push(result(
                    &c.key,
                    ResultCode::SyncFailed,
                    &format!("prune failed: {e}"),
                    None,
                ));
                return SyncOutcome {
                    succeeded: false,
                    message: format!("{} failed to prune: {e}", c.key),
                    resources: results,
                };
            }
        }
    }
    SyncOutcome {
        succeeded: true,
        message: "successfully synced (all tasks run)".into(),
        resources: results,
    }
}

/// (group, kind) of every custom kind defined by a CRD in this sync.
fn crd_kinds(items: &[&Compared]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .filter(|c| c.key.kind == "CustomResourceDefinition")
        .filter_map(|c| {
            let spec = c.desired.as_ref()?.get("spec")?;
            Some((
                spec.get("group")?.as_str()?.to_owned(),
                spec.pointer("/names/kind")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn result(
    key: &ResourceKey,
    status: ResultCode,
    message: &str,
    action: Option<&str>,
) -> ResourceResult {
    ResourceResult {
        group: key.group.clone(),
        version: key.version.clone(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        status,
        message: message.to_owned(),
        action: action.map(str::to_owned),
    }
}
