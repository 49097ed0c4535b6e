//! The sync engine, in gitops-engine's shape: compare desired with live ([`compare`]), plan the
//! tasks ([`plan`]), run them step by step ([`execute`]). It works on plain objects and plans,
//! never on the CRD's wire types. A failed sync never prunes and never reports success
//! (docs/architecture.md, invariant 7).

pub mod execute;
#[cfg(test)]
mod execute_tests;
pub mod hooks;
pub mod options;
pub mod order;
pub mod plan;
pub mod prepare;
pub mod target;
pub mod verdicts;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::cluster::cache::LiveCache;
use crate::cluster::resource::{ObjectId, is_tracked_by};
use crate::cluster::{Cluster, ClusterError, ResourceKey};
use crate::diff;
pub use verdicts::Verdicts;

/// An app's ignore rules, compiled, with the fingerprint verdicts are salted with.
#[derive(Default)]
pub struct Rules {
    pub normalizer: diff::Normalizer,
    pub salt: u64,
}

impl Rules {
    /// Compiles `rules`; an invalid pointer or jq expression is an error naming it.
    pub fn new(rules: &[diff::IgnoreRule]) -> Result<Rules, diff::DiffError> {
        Ok(Rules {
            normalizer: diff::Normalizer::new(rules)?,
            salt: verdicts::fingerprint_of(&rules),
        })
    }
}

/// Whether live equals desired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    Synced,
    OutOfSync,
}

/// One resource as compared: what Git wants, what the cluster has, and whether they agree.
#[derive(Debug, Clone)]
pub struct Compared {
    pub key: ResourceKey,
    pub desired: Option<Value>,
    pub live: Option<Value>,
    pub state: SyncState,
    /// Tracked by the app, gone from Git.
    pub requires_pruning: bool,
    /// Why the comparison could not be completed (e.g. dry-run refused), if it could not.
    pub message: Option<String>,
    /// The server accepted a dry-run of exactly this desired object over this live one.
    pub dry_run_ok: bool,
}

impl Compared {
    /// Whether live equals desired.
    pub fn in_sync(&self) -> bool {
        self.state == SyncState::Synced
    }
}

/// Compares each desired object with the cluster, and finds tracked objects that left Git.
/// `inventory` is what the app managed before (its last status), so removed kinds are still scanned.
///
/// Live state comes from the watch-fed cache of managed objects (`cache`): the first compare of a
/// kind starts its watch, later ones read memory. The tracking label only narrows what is cached:
/// an object is pruned only when its tracking annotation names exactly this app and object. An
/// `inventory` object the cache does not hold (managed before objects carried the label) is read
/// by name, so it is found for pruning once.
///
/// Each existing object is compared through a server-side dry-run of the desired object, whose
/// verdict is remembered (`verdicts`) until the desired object or the live one changes, so a
/// resync of an unchanged app makes no API call at all.
pub async fn compare(
    cluster: &Cluster,
    cache: &LiveCache,
    app: &str,
    desired: &[Value],
    inventory: &[ResourceKey],
    verdicts: &Verdicts,
    normalizer: &Rules,
) -> Result<Vec<Compared>, ClusterError> {
    let keys = desired
        .iter()
        .map(crate::cluster::key_of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut kinds: BTreeSet<(String, String, String)> = BTreeSet::new();
    for key in keys.iter().chain(inventory) {
        kinds.insert((key.group.clone(), key.version.clone(), key.kind.clone()));
    }
    let mut watched: HashSet<(String, String)> = HashSet::new();
    for (group, version, kind) in &kinds {
        let served = match cluster.served(group, version, kind).await {
            Ok(s) => s,
            // Not served (yet): nothing of it exists; a CRD in this sync may define it.
            Err(ClusterError::UnknownKind { .. }) => continue,
            Err(e) => return Err(e),
        };
        cache
            .ensure(&served.resource)
            .await
            .map_err(|e| ClusterError::Api(e.to_string()))?;
        watched.insert((group.clone(), kind.clone()));
    }
    // Maps, not scans: an app may manage thousands of objects.
    let mut labeled: BTreeMap<ObjectId, Value> = BTreeMap::new();
    for live in cache.objects_of(app) {
        if let Some(key) = ResourceKey::of(&live) {
            labeled.entry(key.object_id()).or_insert(owned(live));
        }
    }

    let mut out = Vec::with_capacity(desired.len());
    for (obj, key) in desired.iter().zip(keys) {
        let live = match labeled.remove(&key.object_id()) {
            Some(live) => Some(live),
            // A watched kind holds every labeled object, another app's too (a shared resource);
            // one it does not hold is not there yet.
            None if watched.contains(&(key.group.clone(), key.kind.clone())) => {
                cache.get(&key.object_id()).map(owned)
            }
            None => get_if_served(cluster, &key).await?,
        };
        let mut compared = Compared {
            key,
            desired: Some(obj.clone()),
            live: None,
            state: SyncState::OutOfSync,
            requires_pruning: false,
            message: None,
            dry_run_ok: false,
        };
        if let Some(live) = live {
            match verdicts.get(obj, &live, normalizer.salt) {
                Some(synced) => {
                    compared.dry_run_ok = true;
                    compared.state = state(synced);
                }
                None => match cluster.apply(obj, true).await {
                    Ok(predicted) => {
                        let synced =
                            !diff::compare(&predicted, &live, &normalizer.normalizer).modified;
                        verdicts.put(obj, &live, normalizer.salt, synced);
                        compared.dry_run_ok = true;
                        compared.state = state(synced);
                    }
                    // The server's trouble, not the object's: the whole compare fails (and is
                    // retried) rather than marking this object.
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => compared.message = Some(e.to_string()),
                },
            }
            compared.live = Some(live);
        }
        out.push(compared);
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
        // Hooks are the operation's business, never pruned as resources.
        if !is_tracked_by(&live, app) || hooks::is_hook(&live) || !seen.insert(key.object_id()) {
            continue;
        }
        out.push(Compared {
            key,
            desired: None,
            live: Some(live),
            state: SyncState::OutOfSync,
            requires_pruning: true,
            message: None,
            dry_run_ok: false,
        });
    }
    Ok(out)
}

/// A cached object as an owned value; the cache parses a fresh copy for each read, so this
/// normally copies nothing.
fn owned(v: std::sync::Arc<Value>) -> Value {
    std::sync::Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone())
}

fn state(synced: bool) -> SyncState {
    if synced {
        SyncState::Synced
    } else {
        SyncState::OutOfSync
    }
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
