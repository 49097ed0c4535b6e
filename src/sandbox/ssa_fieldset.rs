//! Field sets for server-side apply: paths into an object, the FieldsV1 trie encoding of
//! `managedFields`, Kubernetes' printed path notation, and walking an object into its field set.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::list_keys::{KeyField, ListType, is_always_serialized, is_atomic_map, list_type};
use super::patch::MAX_DEPTH;

/// One step of a field path (`f:`, `k:`, `v:`, `i:` in FieldsV1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A map field.
    Field(String),
    /// An associative-list element, as the canonical JSON of its key fields.
    Key(String),
    /// A set element, as its canonical JSON.
    Value(String),
    /// A positional list element (only read from foreign managedFields).
    Index(usize),
}

/// A path from the object root.
pub type FieldPath = Vec<PathElement>;

/// A set of owned paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// Paths of an object with, for leaves, the value they hold (None for structural members:
/// list elements and maps), so two objects can be compared.
pub type FieldValues<'a> = BTreeMap<FieldPath, Option<&'a Value>>;

/// Prints a path as Kubernetes does in conflict messages: `.spec.containers[name="web"].image`.
pub fn path_to_string(path: &[PathElement]) -> String {
    let mut out = String::new();
    for pe in path {
        match pe {
            PathElement::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            PathElement::Key(json) => {
                out.push('[');
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(json) {
                    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&parts.join(","));
                }
                out.push(']');
            }
            PathElement::Value(json) => {
                out.push_str("[=");
                out.push_str(json);
                out.push(']');
            }
            PathElement::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Default)]
struct Trie {
    member: bool,
    children: BTreeMap<PathElement, Trie>,
}

fn element_key(pe: &PathElement) -> String {
    match pe {
        PathElement::Field(n) => format!("f:{n}"),
        PathElement::Key(j) => format!("k:{j}"),
        PathElement::Value(j) => format!("v:{j}"),
        PathElement::Index(i) => format!("i:{i}"),
    }
}

/// Encodes a field set in the FieldsV1 format of `managedFields`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Trie::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }
    encode_trie(&root)
}

fn encode_trie(node: &Trie) -> Value {
    let mut m = Map::new();
    if node.member && !node.children.is_empty() {
        m.insert(".".to_string(), Value::Object(Map::new()));
    }
    for (pe, child) in &node.children {
        m.insert(element_key(pe), encode_trie(child));
    }
    Value::Object(m)
}

/// Decodes FieldsV1; None when it is malformed.
pub fn from_fields_v1(v: &Value) -> Option<FieldSet> {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    decode_into(v, &mut path, &mut set)?;
    Some(set)
}

fn decode_into(v: &Value, path: &mut FieldPath, set: &mut FieldSet) -> Option<()> {
    if path.len() > MAX_DEPTH {
        return None;
    }
    let Value::Object(m) = v else {
        return None;
    };
    if m.is_empty() && !path.is_empty() {
        set.insert(path.clone());
    }
    for (k, child) in m {
        if k == "." {
            if !path.is_empty() {
                set.insert(path.clone());
            }
            continue;
        }
        path.push(parse_element(k)?);
        let ok = decode_into(child, path, set);
        path.pop();
        ok?;
    }
    Some(())
}

fn parse_element(s: &str) -> Option<PathElement> {
    let (prefix, rest) = s.split_at_checked(2)?;
    match prefix {
        "f:" => Some(PathElement::Field(rest.to_string())),
        "k:" => match serde_json::from_str::<Value>(rest).ok()? {
            Value::Object(m) => Some(PathElement::Key(canonical(&Value::Object(m)))),
            _ => None,
        },
        "v:" => serde_json::from_str::<Value>(rest)
            .ok()
            .map(|v| PathElement::Value(canonical(&v))),
        "i:" => rest.parse().ok().map(PathElement::Index),
        _ => None,
    }
}

/// JSON text with object keys sorted, so equal values give equal path elements.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), sorted(x));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// The path element of an associative-list element, or an error naming the missing key.
pub fn element_key_of(elem: &Value, keys: &[KeyField]) -> Result<PathElement, String> {
    let Value::Object(m) = elem else {
        return Err("associative list element is not an object".to_string());
    };
    let mut key = Map::new();
    for k in keys {
        match (m.get(k.name), k.default) {
            (Some(v), _) if !v.is_null() => {
                key.insert(k.name.to_string(), v.clone());
            }
            (_, Some(default)) => {
                key.insert(k.name.to_string(), Value::String(default.to_string()));
            }
            _ => {
                return Err(format!(
                    "associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                    k.name
                ));
            }
        }
    }
    Ok(PathElement::Key(canonical(&Value::Object(key))))
}

/// The path element of a set element.
pub fn set_element_of(elem: &Value) -> PathElement {
    PathElement::Value(canonical(elem))
}

/// Which field set to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The fields an applied configuration sets (Kubernetes' ToFieldSet): leaves, list
    /// elements, atomic values, empty maps.
    Apply,
    /// Also every map and non-atomic list the Go types may omit, as Kubernetes' object
    /// comparison reports them for Update managers (`.: {}` under `f:labels`, `f:ports`).
    Update,
}

/// Walks objects of one kind into field sets.
pub struct Walker<'a> {
    /// API group of the kind.
    pub group: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Which members to report.
    pub mode: Mode,
    /// Strict walks fail on malformed lists; lenient ones skip the offending elements.
    pub strict: bool,
    /// Which part of the object is walked.
    pub scope: Scope,
}

const IGNORED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Which part of an object a request manages: the main resource or its `status` subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything but status.
    Main,
    /// Only `.status`.
    Status,
}

impl Scope {
    /// The `subresource` of managedFields entries written in this scope.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Scope::Main => None,
            Scope::Status => Some("status"),
        }
    }

    /// Whether a path is outside field management in this scope (identity, system metadata,
    /// and status or everything but status).
    pub fn ignores(self, path: &[PathElement]) -> bool {
        let is_status = matches!(path.first(), Some(PathElement::Field(f)) if f == "status");
        if self == Scope::Status {
            return !is_status;
        }
        match path {
            _ if is_status => true,
            [PathElement::Field(f), ..] if f == "apiVersion" || f == "kind" => true,
            [PathElement::Field(m), PathElement::Field(f), ..] if m == "metadata" => {
                IGNORED_METADATA.contains(&f.as_str())
            }
            _ => false,
        }
    }
}

impl Walker<'_> {
    fn list_member(&self, path: &FieldPath, names: &[&str], out: &mut FieldValues<'_>) {
        if self.mode == Mode::Update && !is_always_serialized(names) {
            out.insert(path.clone(), None);
        }
    }

    /// The managed paths of `obj` with their leaf values.
    pub fn walk<'v>(&self, obj: &'v Value) -> Result<FieldValues<'v>, String> {
        let mut out = FieldValues::new();
        if let Value::Object(m) = obj {
            let mut path = Vec::new();
            let mut names = Vec::new();
            self.fields(m, &mut path, &mut names, &mut out)?;
        }
        Ok(out)
    }

    fn fields<'v>(
        &self,
        m: &'v Map<String, Value>,
        path: &mut FieldPath,
        names: &mut Vec<&'v str>,
        out: &mut FieldValues<'v>,
    ) -> Result<(), String> {
        for (k, v) in m {
            path.push(PathElement::Field(k.clone()));
            names.push(k.as_str());
            let r = if self.scope.ignores(path) {
                Ok(())
            } else {
                self.value(v, path, names, out)
            };
            names.pop();
            path.pop();
            r?;
        }
        Ok(())
    }

    fn value<'v>(
        &self,
        v: &'v Value,
        path: &mut FieldPath,
        names: &mut Vec<&'v str>,
        out: &mut FieldValues<'v>,
    ) -> Result<(), String> {
        if path.len() > MAX_DEPTH {
            if self.strict {
                return Err(format!("{}: nested too deeply", path_to_string(path)));
            }
            out.insert(path.clone(), Some(v));
            return Ok(());
        }
        match v {
            Value::Object(m) => {
                if m.is_empty() || is_atomic_map(names) {
                    out.insert(path.clone(), Some(v));
                    return Ok(());
                }
                if self.mode == Mode::Update && !is_always_serialized(names) {
                    out.insert(path.clone(), None);
                }
                self.fields(m, path, names, out)
            }
            Value::Array(items) => match list_type(self.group, self.kind, names) {
                ListType::Atomic => {
                    out.insert(path.clone(), Some(v));
                    Ok(())
                }
                ListType::Set => {
                    self.list_member(path, names, out);
                    for item in items {
                        if item.is_object() || item.is_array() {
                            if self.strict {
                                return Err(format!(
                                    "{}: set elements must be scalars",
                                    path_to_string(path)
                                ));
                            }
                            continue;
                        }
                        path.push(set_element_of(item));
                        let dup = out.insert(path.clone(), None).is_some();
                        let err = (dup && self.strict)
                            .then(|| format!("{}: duplicate entries", path_to_string(path)));
                        path.pop();
                        if let Some(err) = err {
                            return Err(err);
                        }
                    }
                    Ok(())
                }
                ListType::Map { keys, .. } => {
                    self.list_member(path, names, out);
                    for item in items {
                        let pe = match element_key_of(item, keys) {
                            Ok(pe) => pe,
                            Err(e) if self.strict => {
                                return Err(format!("{}: {e}", path_to_string(path)));
                            }
                            Err(_) => continue,
                        };
                        path.push(pe);
                        let dup = out.insert(path.clone(), None).is_some();
                        let r = if dup {
                            Err(format!(
                                "{}: duplicate entries for key",
                                path_to_string(path)
                            ))
                        } else if let Value::Object(m) = item {
                            self.fields(m, path, names, out)
                        } else {
                            Ok(())
                        };
                        path.pop();
                        match r {
                            Err(e) if self.strict => return Err(e),
                            _ => {}
                        }
                    }
                    Ok(())
                }
            },
            scalar => {
                out.insert(path.clone(), Some(scalar));
                Ok(())
            }
        }
    }
}

/// What changed between two objects, as field paths.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Paths only in the new object.
    pub added: FieldSet,
    /// Leaves in both with different values.
    pub modified: FieldSet,
    /// Paths only in the old object.
    pub removed: FieldSet,
}

/// Compares two walked objects.
pub fn compare(old: &FieldValues<'_>, new: &FieldValues<'_>) -> Comparison {
    let mut c = Comparison::default();
    for (path, nv) in new {
        match old.get(path) {
            None => {
                c.added.insert(path.clone());
            }
            Some(ov) => {
                if ov != nv {
                    c.modified.insert(path.clone());
                }
            }
        }
    }
    for path in old.keys() {
        if !new.contains_key(path) {
            c.removed.insert(path.clone());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_and_prints_like_kubernetes() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}
        });
        let set = from_fields_v1(&v).unwrap_or_default();
        assert_eq!(set.len(), 6);
        assert_eq!(to_fields_v1(&set), v);
        let printed: Vec<String> = set.iter().map(|p| path_to_string(p)).collect();
        assert!(
            printed.contains(&".spec.template.spec.containers[name=\"web\"].image".to_string())
        );
        assert!(printed.contains(&".metadata.labels".to_string()));
    }

    #[test]
    fn malformed_fields_v1_is_rejected() {
        assert!(from_fields_v1(&json!({"x:foo": {}})).is_none());
        assert!(from_fields_v1(&json!({"f:foo": 3})).is_none());
        assert!(from_fields_v1(&json!([])).is_none());
        assert!(from_fields_v1(&json!({"k:notjson": {}})).is_none());
    }

    #[test]
    fn ports_are_keyed_with_the_default_protocol() {
        let w = Walker {
            group: "",
            kind: "Service",
            mode: Mode::Apply,
            strict: true,
            scope: Scope::Main,
        };
        let svc = json!({"spec": {"ports": [{"port": 80}]}});
        let fields = w.walk(&svc).unwrap_or_default();
        let printed: Vec<String> = fields.keys().map(|p| path_to_string(p)).collect();
        assert_eq!(
            printed,
            vec![
                ".spec.ports[port=80,protocol=\"TCP\"]",
                ".spec.ports[port=80,protocol=\"TCP\"].port"
            ]
        );
    }
}
