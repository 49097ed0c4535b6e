//! Identity of a Kubernetes object as Capstan tracks it, and the tracking annotation.

use serde_json::Value;

/// The annotation Capstan marks every applied object with.
pub const TRACKING_ANNOTATION: &str = "capstan.dev/tracking-id";

/// Group, version, kind, namespace and name of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    /// Reads the key from an object; None when apiVersion, kind or name is missing.
    pub fn of(obj: &Value) -> Option<ResourceKey> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let meta = obj.get("metadata")?;
        Some(ResourceKey {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: obj.get("kind")?.as_str()?.to_owned(),
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            name: meta.get("name")?.as_str()?.to_owned(),
        })
    }

    /// `apiVersion` as written in manifests.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The tracking id for this object managed by `app` (`<app>:<group>/<Kind>:<namespace>/<name>`).
    pub fn tracking_id(&self, app: &str) -> String {
        format!(
            "{app}:{}/{}:{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }

    /// Same object regardless of API version.
    pub fn same_object(&self, other: &ResourceKey) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = if self.namespace.is_empty() {
            String::new()
        } else {
            format!("{}/", self.namespace)
        };
        if self.group.is_empty() {
            write!(f, "{}/{ns}{}", self.kind, self.name)
        } else {
            write!(f, "{}.{}/{ns}{}", self.kind, self.group, self.name)
        }
    }
}

/// The tracking id on a live object, if any.
pub fn tracking_id_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")?
        .get(TRACKING_ANNOTATION)?
        .as_str()
}

/// Whether `obj` carries the tracking id of exactly this object for `app`; a copied
/// annotation that names another object does not count (as Argo CD does).
pub fn is_tracked_by(obj: &Value, app: &str) -> bool {
    match (tracking_id_of(obj), ResourceKey::of(obj)) {
        (Some(id), Some(key)) => id == key.tracking_id(app),
        _ => false,
    }
}

/// Adds the tracking annotation to a desired object.
pub fn set_tracking_id(obj: &mut Value, app: &str) {
    let Some(key) = ResourceKey::of(obj) else {
        return;
    };
    let id = key.tracking_id(app);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if !annotations.is_object() {
            *annotations = Value::Object(Default::default());
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(TRACKING_ANNOTATION.to_owned(), Value::String(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tracking_id_follows_the_documented_shape() {
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}});
        set_tracking_id(&mut obj, "apps/shop");
        assert_eq!(
            tracking_id_of(&obj),
            Some("apps/shop:apps/Deployment:shop/web")
        );
        assert!(is_tracked_by(&obj, "apps/shop"));
        assert!(!is_tracked_by(&obj, "apps/other"));
        let core = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "d"}});
        assert_eq!(
            ResourceKey::of(&core).expect("key").tracking_id("a/b"),
            "a/b:/Service:d/svc"
        );
    }

    #[test]
    fn a_copied_annotation_naming_another_object_is_not_tracking() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "copy", "namespace": "d",
                "annotations": {TRACKING_ANNOTATION: "a/b:/ConfigMap:d/original"}}});
        assert!(!is_tracked_by(&obj, "a/b"));
    }
}
