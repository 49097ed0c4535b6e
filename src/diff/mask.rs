//! Secret values never leave the engine: each value becomes a run of `+`, equal values the
//! same run on both sides and different values different runs, so "changed" stays visible.

use std::collections::HashMap;

use serde_json::Value;

/// Every mask starts this long; each further distinct value of a key gets a longer one.
const MASK: &str = "++++++++";

/// Masks `data` and `stringData` of both sides at once when they are Secrets (either side may
/// be `Value::Null` for an object that exists on one side only). Also drops the last-applied
/// annotation of a Secret, which holds its values in plain text.
pub fn mask_secrets(live: &mut Value, predicted: &mut Value) {
    if !is_secret(live) && !is_secret(predicted) {
        return;
    }
    for field in ["data", "stringData"] {
        let mut masks: HashMap<String, HashMap<String, String>> = HashMap::new();
        for side in [&mut *live, &mut *predicted] {
            let Some(values) = side.get_mut(field).and_then(Value::as_object_mut) else {
                continue;
            };
            for (key, value) in values.iter_mut() {
                let per_key = masks.entry(key.clone()).or_default();
                let plain = match &mut *value {
                    Value::String(s) => std::mem::take(s),
                    other => other.to_string(),
                };
                let next = MASK.len() + 4 * per_key.len();
                let mask = per_key
                    .entry(plain)
                    .or_insert_with(|| "+".repeat(next))
                    .clone();
                *value = Value::String(mask);
            }
        }
    }
    for side in [live, predicted] {
        if let Some(annotations) = side
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}
