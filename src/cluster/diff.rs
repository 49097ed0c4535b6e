//! Comparing what Git wants with what the cluster has, ignoring what the server owns.

use serde_json::Value;

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

/// The object minus status and server-owned metadata, as compared for sync status.
pub fn normalise(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in SERVER_METADATA {
                meta.remove(*key);
            }
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_some_and(|l| l.is_empty())
            {
                meta.remove("labels");
            }
        }
    }
    out
}

/// Whether the server's dry-run result of applying the desired object differs from the live object.
pub fn differs(dry_run_result: &Value, live: &Value) -> bool {
    normalise(dry_run_result) != normalise(live)
}

/// Paths (JSON pointers) where two objects differ after normalisation, for readable messages.
pub fn changed_paths(desired: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", &normalise(desired), &normalise(live), &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= 20 {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let child = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => walk(&child, p, q, out),
                    _ => out.push(child),
                }
            }
        }
        _ if a != b => out.push(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields_and_status_do_not_count() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "5", "managedFields": []}, "data": {"k": "v"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "9", "uid": "x", "generation": 2},
            "data": {"k": "v"}, "status": {"x": 1}});
        assert!(!differs(&desired, &live));
        let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}});
        assert!(differs(&changed, &live));
        assert_eq!(changed_paths(&changed, &live), vec!["/data/k".to_string()]);
    }
}
