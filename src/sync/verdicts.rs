//! Remembered comparison verdicts: whether the server's dry-run of a desired object equalled the
//! live object, keyed by both (live without status and server metadata), so an unchanged app is
//! compared without asking the server again, and a status update does not invalidate it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use serde_json::Value;

use crate::cluster::ResourceKey;
use crate::cluster::resource::ObjectId;

/// One remembered verdict.
#[derive(Clone, Copy)]
struct Verdict {
    salt: u64,
    desired: u64,
    live: u64,
    synced: bool,
}

/// Verdicts per object, for one cluster; bounded by the number of objects Capstan manages.
#[derive(Default)]
pub struct Verdicts {
    map: Mutex<HashMap<ObjectId, Verdict>>,
}

/// Live objects are fingerprinted as compared: without status and server metadata.
static PLAIN: std::sync::LazyLock<crate::diff::Normalizer> =
    std::sync::LazyLock::new(crate::diff::Normalizer::default);

fn normalise(live: &Value) -> Value {
    PLAIN.normalize(live, None)
}

/// A fingerprint of any serialisable value (an app's ignore rules, say), to salt verdicts with.
pub fn fingerprint_of<T: serde::Serialize>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(value).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn fingerprint(obj: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    // serde_json maps are ordered, so equal objects serialise equally.
    serde_json::to_vec(obj).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl Verdicts {
    /// The remembered verdict for exactly this desired and live object, compared under the
    /// rules `salt` stands for.
    pub fn get(&self, desired: &Value, live: &Value, salt: u64) -> Option<bool> {
        let id = ResourceKey::of(desired)?.object_id();
        let v = *self.lock().get(&id)?;
        (v.salt == salt
            && v.desired == fingerprint(desired)
            && v.live == fingerprint(&normalise(live)))
        .then_some(v.synced)
    }

    /// Remembers a verdict (after a dry-run, or after an apply: the applied object is in sync).
    pub fn put(&self, desired: &Value, live: &Value, salt: u64, synced: bool) {
        let Some(key) = ResourceKey::of(desired) else {
            return;
        };
        let verdict = Verdict {
            salt,
            desired: fingerprint(desired),
            live: fingerprint(&normalise(live)),
            synced,
        };
        self.lock().insert(key.object_id(), verdict);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, Verdict>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_verdict_holds_until_desired_or_live_changes_but_not_for_status() {
        let v = Verdicts::default();
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}, "data": {"k": "1"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "resourceVersion": "5"}, "data": {"k": "1"}});
        assert_eq!(v.get(&desired, &live, 0), None);
        v.put(&desired, &live, 0, true);
        assert_eq!(v.get(&desired, &live, 0), Some(true));
        assert_eq!(
            v.get(&desired, &live, 1),
            None,
            "other ignore rules, another verdict"
        );
        let mut status_only = live.clone();
        status_only["status"] = json!({"x": 1});
        status_only["metadata"]["resourceVersion"] = json!("6");
        assert_eq!(v.get(&desired, &status_only, 0), Some(true));
        let mut edited = live.clone();
        edited["data"]["k"] = json!("2");
        assert_eq!(v.get(&desired, &edited, 0), None);
        let mut changed = desired.clone();
        changed["data"]["k"] = json!("3");
        assert_eq!(v.get(&changed, &live, 0), None);
    }
}
