//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets (`kubectl scale`).

use serde_json::{Value, json};

use super::ops::{WriteOpts, catch, meta_str};
use super::patch;
use super::resources::ResourceType;
use super::status::ApiError;
use super::store::Store;

/// Whether this resource serves `/scale`.
pub fn has_scale(rt: &ResourceType) -> bool {
    rt.builtin
        && rt.group == "apps"
        && matches!(
            rt.plural.as_str(),
            "deployments" | "replicasets" | "statefulsets"
        )
}

/// The autoscaling/v1 Scale view of a workload.
fn to_scale(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// A change to a Scale: a whole new Scale (PUT) or a patch of it.
pub enum ScaleChange<'a> {
    /// PUT body.
    Replace(Value),
    /// PATCH content type and body.
    Patch(&'a str, &'a [u8]),
}

impl Store {
    /// GET `/scale`.
    pub fn op_get_scale(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        Ok(to_scale(&self.op_get(rt, ns, name)?.value))
    }

    /// PUT or PATCH `/scale`: changes `spec.replicas` of the workload.
    pub fn op_write_scale(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        change: ScaleChange<'_>,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        let old = self.op_get(rt, ns, name)?;
        let mut scale = to_scale(&old.value);
        match change {
            ScaleChange::Replace(body) => scale = body,
            ScaleChange::Patch(content_type, body) => {
                let patch: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                match content_type.split(';').next().unwrap_or("").trim() {
                    "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                        catch("JSON merge patch", || {
                            patch::merge_patch(&mut scale, &patch)
                        })?;
                    }
                    "application/json-patch+json" => {
                        catch("JSON patch", || patch::json_patch(&mut scale, &patch))?
                            .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    }
                    other => return Err(ApiError::unsupported_media_type(other)),
                }
            }
        }
        let replicas = scale["spec"]["replicas"]
            .as_i64()
            .filter(|r| (0..=i64::from(i32::MAX)).contains(r))
            .ok_or_else(|| {
                ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    "spec.replicas: Invalid value: must be a non-negative integer",
                )
            })?;
        let mut new = old.value.clone();
        new["spec"]["replicas"] = json!(replicas);
        if let Some(rv) = meta_str(&scale, "resourceVersion").filter(|rv| !rv.is_empty()) {
            new["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        }
        let written = self.finish_write(rt, &old, new, false, opts, false)?;
        Ok(to_scale(&written.value))
    }
}
