//! Turning rendered manifests into the exact objects to apply for one Application.

use serde_json::Value;

use crate::cluster::resource::set_tracking_id;
use crate::cluster::{Cluster, ClusterError, ResourceKey};

/// A rendered object that cannot be applied as it is.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{object}: {message}")]
    Object { object: String, message: String },
    #[error("{0} appears more than once in the manifests")]
    Duplicate(String),
}

/// The desired objects with namespaces defaulted to the destination's, cluster-scoped objects
/// stripped of namespaces, and the tracking annotation set. Kinds the cluster does not serve yet
/// are kept namespaced when a CRD among `objects` will define them.
pub async fn prepare(
    cluster: &Cluster,
    objects: Vec<Value>,
    app: &str,
    dest_namespace: &str,
) -> Result<Vec<Value>, PrepareError> {
    let mut out: Vec<Value> = Vec::with_capacity(objects.len());
    let mut seen = std::collections::BTreeSet::new();
    for mut obj in objects {
        let generated = ResourceKey::of(&obj).is_none() && super::hooks::is_hook(&obj);
        let key = key_or_generated(&obj).ok_or_else(|| PrepareError::Object {
            object: describe(&obj),
            message: "missing apiVersion, kind or metadata.name".into(),
        })?;
        let namespaced = match cluster
            .is_namespaced(&key.group, &key.version, &key.kind)
            .await
        {
            Ok(n) => n,
            // A custom kind whose CRD is part of this sync: CRD scope decides; default namespaced.
            Err(ClusterError::UnknownKind { .. }) => {
                crd_scope_namespaced(&key, &out).unwrap_or(true)
            }
            Err(e) => {
                return Err(PrepareError::Object {
                    object: key.to_string(),
                    message: e.to_string(),
                });
            }
        };
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if namespaced {
                let ns = meta
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if ns.is_empty() {
                    meta.insert("namespace".into(), Value::String(dest_namespace.to_owned()));
                }
            } else {
                meta.remove("namespace");
            }
        }
        if generated {
            // Named, and tracked, when the sync creates it.
            out.push(obj);
            continue;
        }
        set_tracking_id(&mut obj, app);
        let key = ResourceKey::of(&obj).ok_or_else(|| PrepareError::Object {
            object: describe(&obj),
            message: "missing metadata".into(),
        })?;
        if !seen.insert((
            key.group.clone(),
            key.kind.clone(),
            key.namespace.clone(),
            key.name.clone(),
        )) {
            return Err(PrepareError::Duplicate(key.to_string()));
        }
        out.push(obj);
    }
    Ok(out)
}

/// The key of an object; a hook with only `generateName` gets an empty name.
pub fn key_or_generated(obj: &Value) -> Option<ResourceKey> {
    if let Some(key) = ResourceKey::of(obj) {
        return Some(key);
    }
    let prefix = obj.pointer("/metadata/generateName")?.as_str()?;
    if prefix.is_empty() || !super::hooks::is_hook(obj) {
        return None;
    }
    let mut named = obj.clone();
    named
        .get_mut("metadata")?
        .as_object_mut()?
        .insert("name".into(), Value::String(String::new()));
    ResourceKey::of(&named)
}

/// The scope a CRD among `objects` declares for `key`'s kind, if one does.
fn crd_scope_namespaced(key: &ResourceKey, objects: &[Value]) -> Option<bool> {
    objects.iter().find_map(|o| {
        let is_crd = o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition");
        let spec = o.get("spec")?;
        let matches = spec.get("group").and_then(Value::as_str) == Some(key.group.as_str())
            && spec.pointer("/names/kind").and_then(Value::as_str) == Some(key.kind.as_str());
        (is_crd && matches).then(|| spec.get("scope").and_then(Value::as_str) != Some("Cluster"))
    })
}

fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind}/{name}")
}
