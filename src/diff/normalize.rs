//! The object as compared: server-written fields gone, known server reorderings undone, and
//! the paths the ignoreDifferences rules name taken out.

use serde_json::Value;

use super::DiffError;
use super::ignore::{CompiledRule, IgnoreRule, Target};
use super::{jq, managed, path};

/// Metadata the API server writes; never part of a comparison.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Holds the client's whole previous object (Secrets' values included); never compared.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Compiled ignoreDifferences rules (an Application's and the system-wide ones together).
#[derive(Debug, Default)]
pub struct Normalizer {
    rules: Vec<CompiledRule>,
}

impl Normalizer {
    /// Compiles `rules`; an invalid jq expression or pointer is an error naming it.
    pub fn new(rules: &[IgnoreRule]) -> Result<Normalizer, DiffError> {
        Ok(Normalizer {
            rules: rules
                .iter()
                .map(CompiledRule::compile)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The object as compared: server fields gone, ignored paths (for this object) gone.
    /// Managers' fields are read from `live_for_managers` (the live object), else from `obj`.
    pub fn normalize(&self, obj: &Value, live_for_managers: Option<&Value>) -> Value {
        let mut out = obj.clone();
        self.remove_ignored(&mut out, obj, live_for_managers.unwrap_or(obj));
        strip_server_fields(&mut out);
        out
    }

    /// Takes out only what the rules name (no server fields), reading paths from `obj`'s own
    /// shape, as `respect_ignored` needs.
    pub(crate) fn remove_ignored(&self, out: &mut Value, obj: &Value, live: &Value) {
        if self.rules.is_empty() {
            return;
        }
        let target = Target::of(obj);
        let mut paths = Vec::new();
        let mut val = None;
        let mut sets = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(&target)) {
            for tokens in &rule.pointers {
                if let Some(p) = path::resolve_pointer(obj, tokens) {
                    paths.push(p);
                }
            }
            for expr in &rule.jq {
                let input = val.get_or_insert_with(|| jq::to_val(obj));
                paths.extend(expr.paths(input));
            }
            if !rule.managers.is_empty() {
                sets.extend(managed::owned_sets(live, &rule.managers));
            }
        }
        // The root path would erase the object; no rule means that.
        paths.retain(|p| !p.is_empty());
        path::remove_all(out, paths);
        for set in sets {
            managed::remove_owned(out, set);
        }
    }

    /// Whether any rule applies to `obj`.
    pub(crate) fn has_rules_for(&self, obj: &Value) -> bool {
        let target = Target::of(obj);
        self.rules.iter().any(|r| r.matches(&target))
    }
}

/// Removes status, server metadata, last-applied, empty label and annotation maps; sorts
/// Endpoints subsets; drops aggregated ClusterRole rules (the controller fills them).
fn strip_server_fields(out: &mut Value) {
    let Some(map) = out.as_object_mut() else {
        return;
    };
    map.remove("status");
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(LAST_APPLIED);
        }
        for key in ["annotations", "labels"] {
            if meta
                .get(key)
                .is_some_and(|v| v.is_null() || v.as_object().is_some_and(|m| m.is_empty()))
            {
                meta.remove(key);
            }
        }
    }
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let group = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(g, _)| g);
    match (group, kind) {
        ("", "Endpoints") => {
            if let Some(subsets) = map.get_mut("subsets").and_then(Value::as_array_mut) {
                sort_endpoints(subsets);
            }
        }
        ("rbac.authorization.k8s.io", "ClusterRole") if map.contains_key("aggregationRule") => {
            map.remove("rules");
        }
        _ => {}
    }
}

// The endpoints controller writes addresses and ports in no stable order.
fn sort_endpoints(subsets: &mut [Value]) {
    for subset in subsets.iter_mut() {
        for key in ["addresses", "notReadyAddresses", "ports"] {
            if let Some(list) = subset.get_mut(key).and_then(Value::as_array_mut) {
                list.sort_by_cached_key(|v| v.to_string());
            }
        }
    }
    subsets.sort_by_cached_key(|v| v.to_string());
}
