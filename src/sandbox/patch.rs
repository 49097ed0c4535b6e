//! Patch formats the sandbox accepts: JSON merge, JSON patch, strategic merge.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::list_keys::{ListType, list_type};

/// A patch that cannot be applied; the server answers 422 Invalid or 400 BadRequest.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot apply to this object (422 Invalid).
    #[error("{0}")]
    Invalid(String),
}

/// Deeper documents are refused rather than risking the stack.
pub const MAX_DEPTH: usize = 100;

/// How many JSON nodes `copy` operations of one JSON patch may add; repeated copies of the
/// document into itself would otherwise grow it exponentially.
const MAX_COPIED_NODES: usize = 1_000_000;

/// RFC 7386 JSON merge patch (`application/merge-patch+json`).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch (`application/json-patch+json`); `patch` is the array of operations.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    if !patch.is_array() {
        return Err(PatchError::BadRequest(
            "a JSON patch must be an array of operations".to_string(),
        ));
    }
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::BadRequest(format!("invalid JSON patch: {e}")))?;
    // Work on a copy so a failing operation leaves the target untouched.
    let mut doc = target.clone();
    let mut copied = 0usize;
    for (index, op) in ops.0.iter().enumerate() {
        if let json_patch::PatchOperation::Copy(copy) = op
            && let Some(source) = doc.pointer(copy.from.as_str())
        {
            copied += count_nodes(source, MAX_COPIED_NODES + 1);
            if copied > MAX_COPIED_NODES {
                return Err(PatchError::Invalid(
                    "JSON patch copies too much data".to_string(),
                ));
            }
        }
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            PatchError::Invalid(format!(
                "JSON patch operation {index} ({}) failed at path '{}': {}",
                op_name(op),
                e.path,
                e.kind
            ))
        })?;
    }
    *target = doc;
    Ok(())
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as Op;
    match op {
        Op::Add(_) => "add",
        Op::Remove(_) => "remove",
        Op::Replace(_) => "replace",
        Op::Move(_) => "move",
        Op::Copy(_) => "copy",
        Op::Test(_) => "test",
    }
}

/// Counts nodes of `v`, stopping once `limit` is reached.
fn count_nodes(v: &Value, limit: usize) -> usize {
    let mut stack = vec![v];
    let mut n = 0;
    while let Some(v) = stack.pop() {
        n += 1;
        if n >= limit {
            return n;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    n
}

/// Kubernetes strategic merge patch for built-in kinds (`application/strategic-merge-patch+json`).
pub fn strategic_merge_patch(
    target: &mut Value,
    patch: &Value,
    group: &str,
    kind: &str,
) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(
            "a strategic merge patch must be a JSON object".to_string(),
        ));
    };
    let merger = Strategic {
        group,
        kind,
        depth: Cell::new(0),
    };
    let mut path = Vec::new();
    let mut result = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merger.merge_map(&mut result, patch, &mut path)?;
    *target = Value::Object(result);
    Ok(())
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Strategic merge of patches into one object of a given kind.
struct Strategic<'a> {
    group: &'a str,
    kind: &'a str,
    depth: Cell<usize>,
}

impl Strategic<'_> {
    fn list_type(&self, path: &[String]) -> ListType {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        list_type(self.group, self.kind, &path)
    }

    fn merge_map(
        &self,
        orig: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<(), PatchError> {
        if path.len() > MAX_DEPTH {
            return Err(PatchError::Invalid("patch nested too deeply".to_string()));
        }
        match patch.get(DIRECTIVE) {
            None => {}
            Some(Value::String(d)) if d == "merge" => {}
            Some(Value::String(d)) if d == "replace" => {
                let mut rest = patch.clone();
                rest.remove(DIRECTIVE);
                orig.clear();
                return self.merge_map(orig, &rest, path);
            }
            Some(Value::String(d)) if d == "delete" => {
                orig.clear();
                return Ok(());
            }
            Some(other) => {
                return Err(PatchError::BadRequest(format!(
                    "unknown patch type: {other} in map"
                )));
            }
        }
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let Value::Array(keys) = retain else {
                return Err(PatchError::BadRequest(
                    "$retainKeys must be a list of strings".to_string(),
                ));
            };
            let mut names = Vec::with_capacity(keys.len());
            for k in keys {
                let Value::String(k) = k else {
                    return Err(PatchError::BadRequest(
                        "$retainKeys must be a list of strings".to_string(),
                    ));
                };
                names.push(k.as_str());
            }
            let outside = patch
                .iter()
                .any(|(k, v)| !v.is_null() && !k.starts_with('$') && !names.contains(&k.as_str()));
            if outside {
                return Err(PatchError::BadRequest(
                    "doesn't match $retainKeys: the patch sets fields $retainKeys drops"
                        .to_string(),
                ));
            }
            orig.retain(|k, _| names.contains(&k.as_str()));
        }
        let mut orders = Vec::new();
        for (k, v) in patch {
            if k == DIRECTIVE || k == RETAIN_KEYS {
                continue;
            }
            if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                let Value::Array(remove) = v else {
                    return Err(PatchError::BadRequest(format!("{k} must be a list")));
                };
                let remove: HashSet<String> = remove.iter().map(Value::to_string).collect();
                if let Some(Value::Array(list)) = orig.get_mut(field) {
                    list.retain(|item| !remove.contains(&item.to_string()));
                }
                continue;
            }
            if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
                let Value::Array(order) = v else {
                    return Err(PatchError::BadRequest(format!("{k} must be a list")));
                };
                orders.push((field, order));
                continue;
            }
            if v.is_null() {
                orig.remove(k);
                continue;
            }
            path.push(k.clone());
            let merged = self.merge_value(orig.remove(k), v, path);
            path.pop();
            orig.insert(k.clone(), merged?);
        }
        for (field, order) in orders {
            path.push(field.to_string());
            let list_type = self.list_type(path);
            path.pop();
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                let key = match list_type {
                    ListType::Map { patch_key, .. } => Some(patch_key),
                    _ => None,
                };
                reorder(list, order, key);
            }
        }
        Ok(())
    }

    fn merge_value(
        &self,
        orig: Option<Value>,
        patch: &Value,
        path: &mut Vec<String>,
    ) -> Result<Value, PatchError> {
        // Lists nest without lengthening `path`, so depth is counted separately.
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return Err(PatchError::Invalid("patch nested too deeply".to_string()));
        }
        self.depth.set(depth);
        let result = self.merge_value_at_depth(orig, patch, path);
        self.depth.set(depth - 1);
        result
    }

    fn merge_value_at_depth(
        &self,
        orig: Option<Value>,
        patch: &Value,
        path: &mut Vec<String>,
    ) -> Result<Value, PatchError> {
        match patch {
            Value::Object(p) => {
                let mut base = match orig {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                self.merge_map(&mut base, p, path)?;
                Ok(Value::Object(base))
            }
            Value::Array(p) => {
                let orig = match orig {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                match self.list_type(path) {
                    ListType::Map { patch_key, .. } => self
                        .merge_keyed_list(orig, p, patch_key, path)
                        .map(Value::Array),
                    ListType::Set => Ok(Value::Array(merge_primitive_list(orig, p))),
                    ListType::Atomic => self.replace_list(p, path).map(Value::Array),
                }
            }
            scalar => Ok(scalar.clone()),
        }
    }

    /// An atomic list is replaced by the patch's list, with any directives in it resolved.
    fn replace_list(
        &self,
        patch: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        patch
            .iter()
            .filter(|e| !is_directive_only(e))
            .map(|e| self.merge_value(None, e, path))
            .collect()
    }

    fn merge_keyed_list(
        &self,
        orig: Vec<Value>,
        patch: &[Value],
        key: &str,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        if patch.iter().any(is_replace_directive) {
            return self.replace_list(patch, path);
        }
        // Slots keep the original order; the index finds elements by key without rescanning.
        let mut slots: Vec<Option<Value>> = Vec::with_capacity(orig.len() + patch.len());
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, o) in orig.into_iter().enumerate() {
            if let Some(k) = o.get(key) {
                index.entry(k.to_string()).or_default().push(i);
            }
            slots.push(Some(o));
        }
        for elem in patch {
            let Value::Object(elem_map) = elem else {
                return Err(PatchError::Invalid(format!(
                    "{}: expected a list of objects keyed by {key:?}, found {elem}",
                    path.join(".")
                )));
            };
            let Some(key_value) = elem_map.get(key) else {
                return Err(match elem_map.get(DIRECTIVE) {
                    Some(Value::String(d)) if d == "delete" => PatchError::BadRequest(
                        "delete patch type with no merge key defined".to_string(),
                    ),
                    Some(Value::String(d)) if d == "merge" => PatchError::BadRequest(
                        "merging lists cannot yet be specified in the patch".to_string(),
                    ),
                    Some(other) => {
                        PatchError::BadRequest(format!("unknown patch type: {other} in list"))
                    }
                    None => PatchError::Invalid(format!(
                        "map: {elem} does not contain declared merge key: {key}"
                    )),
                });
            };
            let id = key_value.to_string();
            if is_delete_directive(elem) {
                for i in index.remove(&id).unwrap_or_default() {
                    if let Some(slot) = slots.get_mut(i) {
                        *slot = None;
                    }
                }
                continue;
            }
            let existing = index
                .get(&id)
                .and_then(|at| at.first())
                .and_then(|&i| slots.get_mut(i))
                .and_then(Option::as_mut);
            match existing {
                Some(Value::Object(existing)) => self.merge_map(existing, elem_map, path)?,
                Some(other) => {
                    let mut fresh = Map::new();
                    self.merge_map(&mut fresh, elem_map, path)?;
                    *other = Value::Object(fresh);
                }
                None => {
                    let mut fresh = Map::new();
                    self.merge_map(&mut fresh, elem_map, path)?;
                    index.entry(id).or_default().push(slots.len());
                    slots.push(Some(Value::Object(fresh)));
                }
            }
        }
        Ok(slots.into_iter().flatten().collect())
    }
}

fn is_delete_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

fn is_replace_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).and_then(Value::as_str) == Some("replace")
}

/// `{"$patch": "..."}` with nothing else: a list-level directive, not an element.
fn is_directive_only(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.contains_key(DIRECTIVE))
}

fn merge_primitive_list(mut orig: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    if patch.iter().any(is_replace_directive) {
        return patch
            .iter()
            .filter(|e| !is_directive_only(e))
            .cloned()
            .collect();
    }
    let mut seen: HashSet<String> = orig.iter().map(Value::to_string).collect();
    for v in patch {
        if seen.insert(v.to_string()) {
            orig.push(v.clone());
        }
    }
    orig
}

/// Applies `$setElementOrder`: the elements named in `order` take the positions they already
/// occupy, in the order given; elements the patch did not mention keep their places.
fn reorder(list: &mut [Value], order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Option<String> {
        match key {
            Some(k) => v.get(k).map(Value::to_string),
            None => Some(v.to_string()),
        }
    };
    let mut rank_of: HashMap<String, usize> = HashMap::new();
    for (r, o) in order.iter().enumerate() {
        if let Some(id) = ident(o) {
            rank_of.entry(id).or_insert(r);
        }
    }
    let mut slots = Vec::new();
    let mut ranked = Vec::new();
    for (i, v) in list.iter().enumerate() {
        if let Some(r) = ident(v).and_then(|id| rank_of.get(&id).copied()) {
            slots.push(i);
            ranked.push((r, v.clone()));
        }
    }
    ranked.sort_by_key(|(r, _)| *r);
    for (slot, (_, v)) in slots.into_iter().zip(ranked) {
        if let Some(place) = list.get_mut(slot) {
            *place = v;
        }
    }
}
