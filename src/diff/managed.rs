//! Fields owned by named managers, read from `metadata.managedFields[].fieldsV1` (the
//! server-side apply field-set format), and taken out of an object.
//!
//! Format: `f:<name>` is an object field, `k:<json>` a list item found by its key fields,
//! `v:<json>` a set item found by value, `i:<n>` a list item by position, and `.` the node
//! itself. An empty set under a field means the whole field is owned.

use serde_json::{Map, Value};

/// The field sets of every managedFields entry written by one of `managers` in `live`.
pub(crate) fn owned_sets<'a>(live: &'a Value, managers: &[String]) -> Vec<&'a Map<String, Value>> {
    let Some(entries) = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| {
            e.get("manager")
                .and_then(Value::as_str)
                .is_some_and(|m| managers.iter().any(|n| n == m))
        })
        .filter_map(|e| e.get("fieldsV1").and_then(Value::as_object))
        .collect()
}

/// Removes from `value` every field the set owns.
pub(crate) fn remove_owned(value: &mut Value, set: &Map<String, Value>) {
    match value {
        Value::Object(fields) => {
            for (key, sub) in set {
                let Some(name) = key.strip_prefix("f:") else {
                    continue;
                };
                let sub = sub.as_object();
                if owns_whole(sub) {
                    fields.remove(name);
                    continue;
                }
                let (Some(child), Some(sub)) = (fields.get_mut(name), sub) else {
                    continue;
                };
                let was_empty = is_empty(child);
                remove_owned(child, sub);
                // A map emptied by the removal is gone from the manager's view too; without
                // this, `spec: {}` on one side would differ from a missing `spec` on the other.
                if !was_empty && is_empty(child) {
                    fields.remove(name);
                }
            }
        }
        Value::Array(items) => {
            let mut doomed = Vec::new();
            for (key, sub) in set {
                let Some(i) = find_item(items, key) else {
                    continue;
                };
                let sub = sub.as_object();
                if owns_whole(sub) {
                    doomed.push(i);
                    continue;
                }
                let Some(sub) = sub else { continue };
                remove_owned(&mut items[i], sub);
                // The manager created the item (`.`) and every field left is its key: the
                // item is the manager's, e.g. a sidecar container injected by a webhook.
                if sub.contains_key(".") && only_key_fields(&items[i], key) {
                    doomed.push(i);
                }
            }
            doomed.sort_unstable();
            doomed.dedup();
            for i in doomed.into_iter().rev() {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn owns_whole(sub: Option<&Map<String, Value>>) -> bool {
    match sub {
        None => true,
        Some(s) => s.is_empty() || (s.len() == 1 && s.contains_key(".")),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn find_item(items: &[Value], key: &str) -> Option<usize> {
    if let Some(json) = key.strip_prefix("k:") {
        let wanted: Map<String, Value> = serde_json::from_str(json).ok()?;
        items.iter().position(|item| {
            wanted
                .iter()
                .all(|(k, v)| item.get(k).is_some_and(|x| json_eq(x, v)))
        })
    } else if let Some(json) = key.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(json).ok()?;
        items.iter().position(|item| json_eq(item, &wanted))
    } else if let Some(n) = key.strip_prefix("i:") {
        let i: usize = n.parse().ok()?;
        (i < items.len()).then_some(i)
    } else {
        None
    }
}

// Keys in field sets carry numbers as JSON numbers (`{"containerPort":80}`), which equal the
// object's integers; serde_json compares 80 and 80.0 as different, so numbers compare as f64.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn only_key_fields(item: &Value, key: &str) -> bool {
    let Some(fields) = item.as_object() else {
        return false;
    };
    let Some(keys) = key
        .strip_prefix("k:")
        .and_then(|j| serde_json::from_str::<Map<String, Value>>(j).ok())
    else {
        return fields.is_empty();
    };
    fields.keys().all(|k| keys.contains_key(k))
}
