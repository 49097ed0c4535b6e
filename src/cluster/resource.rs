//! Identity of a Kubernetes object as Capstan tracks it: the tracking annotation (authoritative)
//! and the tracking label (an index, so live state is listed by selector, not by scanning a kind).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::names::{check_label, check_subdomain};

/// The annotation Capstan marks every applied object with.
pub const TRACKING_ANNOTATION: &str = "capstan.dev/tracking-id";

/// The label Capstan marks every applied object with; its value is [`tracking_label_value`].
pub const TRACKING_LABEL: &str = "capstan.dev/app";

/// Kubernetes' limit on a label value.
const LABEL_VALUE_MAX: usize = 63;

/// Group, kind, namespace and name: one object, whatever API version it is read at.
pub type ObjectId = (String, String, String, String);

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

    /// What identifies the object whatever API version it is read at, for maps and sets.
    pub fn object_id(&self) -> ObjectId {
        (
            self.group.clone(),
            self.kind.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
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

/// The tracking label's value for the app key `namespace/name`: `namespace.name` when that is a
/// valid label value, otherwise `h` and 56 hex digits of its SHA-256.
///
/// Distinct apps get distinct values: a namespace never contains a dot, so the readable form is
/// split unambiguously at its first dot, and the hashed form contains no dot at all. A collision
/// could only come from a hostile label copy; the annotation stays authoritative for that.
pub fn tracking_label_value(app: &str) -> String {
    if let Some((ns, name)) = app.split_once('/') {
        let readable = format!("{ns}.{name}");
        if check_label("namespace", ns).is_ok()
            && check_subdomain("name", name).is_ok()
            && readable.len() <= LABEL_VALUE_MAX
        {
            return readable;
        }
    }
    let digest = hex::encode(Sha256::digest(app.as_bytes()));
    format!("h{}", &digest[..56])
}

/// The label selector that finds the objects `app` may track.
pub fn tracking_selector(app: &str) -> String {
    format!("{TRACKING_LABEL}={}", tracking_label_value(app))
}

/// Adds the tracking annotation and the tracking label to a desired object.
pub fn set_tracking_id(obj: &mut Value, app: &str) {
    let Some(key) = ResourceKey::of(obj) else {
        return;
    };
    let id = key.tracking_id(app);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        insert_into(meta, "annotations", TRACKING_ANNOTATION, id);
        insert_into(meta, "labels", TRACKING_LABEL, tracking_label_value(app));
    }
}

/// Sets `metadata.<field>.<key>`, replacing a `<field>` that is not a map.
fn insert_into(meta: &mut serde_json::Map<String, Value>, field: &str, key: &str, value: String) {
    let entry = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Default::default()));
    if !entry.is_object() {
        *entry = Value::Object(Default::default());
    }
    if let Some(map) = entry.as_object_mut() {
        map.insert(key.to_owned(), Value::String(value));
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

    fn is_valid_label_value(v: &str) -> bool {
        let bytes = v.as_bytes();
        v.len() <= LABEL_VALUE_MAX
            && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
            && bytes.last().is_none_or(u8::is_ascii_alphanumeric)
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }

    #[test]
    fn the_tracking_label_is_readable_when_it_fits_and_always_valid() {
        assert_eq!(tracking_label_value("shop/web"), "shop.web");
        assert_eq!(tracking_label_value("shop/web.v2"), "shop.web.v2");
        let long = format!("shop/{}", "a".repeat(80));
        let odd = ["capstan/Upper", "x/-y", "/", "", "no-slash", &long];
        for app in ["shop/web", "shop/web.v2"].into_iter().chain(odd) {
            let value = tracking_label_value(app);
            assert!(is_valid_label_value(&value), "{app:?} -> {value:?}");
        }
        for app in odd {
            assert!(tracking_label_value(app).starts_with('h'), "{app:?}");
        }
    }

    #[test]
    fn distinct_apps_get_distinct_tracking_labels() {
        // Where a naive `ns-name` or truncation would collide.
        let apps = [
            "a-b/c",
            "a/b-c",
            "a/b.c",
            "ab/c",
            &format!("team/{}x", "n".repeat(70)),
            &format!("team/{}y", "n".repeat(70)),
        ];
        let values: std::collections::BTreeSet<String> =
            apps.iter().map(|a| tracking_label_value(a)).collect();
        assert_eq!(values.len(), apps.len(), "{values:?}");
    }

    #[test]
    fn set_tracking_id_adds_the_label_without_dropping_the_manifests_labels() {
        let mut obj = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "d", "labels": {"team": "x"}}});
        set_tracking_id(&mut obj, "capstan/owner");
        assert_eq!(obj.pointer("/metadata/labels/team"), Some(&json!("x")));
        assert_eq!(
            obj.pointer("/metadata/labels/capstan.dev~1app"),
            Some(&json!("capstan.owner"))
        );
        assert_eq!(
            tracking_selector("capstan/owner"),
            "capstan.dev/app=capstan.owner"
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
