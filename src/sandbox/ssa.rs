//! Server-side apply and managedFields bookkeeping.
//! Follows Kubernetes' structured-merge-diff: the applied configuration's field set becomes
//! the manager's Apply entry, fields it stopped applying are pruned unless someone else owns
//! them, and changing fields other managers own is a conflict unless forced.

use std::ops::Bound;

use serde_json::{Map, Value};

use super::list_keys::{ListType, is_atomic_map, list_type};
use super::patch::MAX_DEPTH;
use super::ssa_fieldset::{
    FieldPath, FieldSet, Mode, PathElement, Walker, compare, element_key_of, from_fields_v1,
    path_to_string, set_element_of, to_fields_v1,
};

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// The manager that owns the field, e.g. `kubectl-client-side-apply`.
    pub manager: String,
    /// The field path in Kubernetes' notation, e.g. `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum SsaError {
    /// Other managers own fields this apply sets to different values (409 Conflict).
    #[error("{}", conflict_message(conflicts))]
    Conflict { conflicts: Vec<FieldConflict> },
    /// The applied configuration is not a valid object (422 Invalid / 400 BadRequest).
    #[error("{0}")]
    Invalid(String),
}

/// The message Kubernetes puts in the 409 Status of a conflicting apply.
pub fn conflict_message(conflicts: &[FieldConflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {:?}: {}",
            only.manager, only.field
        );
    }
    let mut lines = Vec::new();
    let mut current: Option<&str> = None;
    for c in conflicts {
        if current != Some(c.manager.as_str()) {
            lines.push(format!("conflicts with {:?}:", c.manager));
            current = Some(c.manager.as_str());
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";
/// Kubernetes' owner for fields of objects that existed before anyone applied.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.is_none()
    }
}

/// Reads `metadata.managedFields`, skipping entries it cannot understand.
fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(Value::Array(list)) = obj.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    list.iter().filter_map(read_entry).collect()
}

fn read_entry(v: &Value) -> Option<Entry> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let set = match v.get("fieldsV1") {
        None | Some(Value::Null) => FieldSet::new(),
        Some(f) => from_fields_v1(f)?,
    };
    Some(Entry {
        manager: s("manager")?,
        operation: s("operation").filter(|o| o == APPLY || o == UPDATE)?,
        api_version: s("apiVersion").unwrap_or_default(),
        time: s("time"),
        subresource: s("subresource").filter(|x| !x.is_empty()),
        set,
    })
}

/// Writes entries in Kubernetes' order (operation, time, manager); drops empty ones.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("apiVersion".into(), Value::String(e.api_version.clone()));
            m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            m.insert("fieldsV1".into(), to_fields_v1(&e.set));
            m.insert("manager".into(), Value::String(e.manager.clone()));
            m.insert("operation".into(), Value::String(e.operation.clone()));
            if let Some(sub) = &e.subresource {
                m.insert("subresource".into(), Value::String(sub.clone()));
            }
            if let Some(t) = &e.time {
                m.insert("time".into(), Value::String(t.clone()));
            }
            Value::Object(m)
        })
        .collect();
    let Value::Object(root) = obj else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn str_field<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Depth of `v`, counting up to `limit + 1` without recursion.
fn depth_exceeds(v: &Value, limit: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        if d > limit {
            return true;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    false
}

/// Metadata the server owns; an applied configuration cannot set it.
const SYSTEM_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// Server-side apply of `applied` by `manager` onto `live` (None = the object does not exist).
/// Returns the merged object with `metadata.managedFields` updated.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    group: &str,
    kind: &str,
    now: &str,
) -> Result<Value, SsaError> {
    let config = validate_config(applied, kind)?;
    let api_version = str_field(&config, "/apiVersion")
        .unwrap_or_default()
        .to_string();
    let strict = Walker {
        group,
        kind,
        mode: Mode::Apply,
        strict: true,
    };
    let applied_set: FieldSet = strict
        .walk(&config)
        .map_err(|e| SsaError::Invalid(format!(".{}", e.trim_start_matches('.'))))?
        .into_keys()
        .collect();

    let empty = Value::Object(Map::new());
    let live = live.filter(|l| l.is_object()).unwrap_or(&empty);
    let update_walker = Walker {
        group,
        kind,
        mode: Mode::Update,
        strict: false,
    };
    let live_fields = update_walker.walk(live).unwrap_or_default();
    let mut entries = read_entries(live);
    if entries.is_empty() && !live_fields.is_empty() {
        // Kubernetes gives fields that predate field management to this placeholder owner.
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_string(),
            operation: UPDATE.to_string(),
            api_version: str_field(live, "/apiVersion")
                .unwrap_or_default()
                .to_string(),
            time: Some(now.to_string()),
            subresource: None,
            set: live_fields.keys().cloned().collect(),
        });
    }

    let mut merged = live.clone();
    if let Some(Value::Object(meta)) = merged.get_mut("metadata") {
        meta.remove("managedFields");
    }
    let merger = Merger { group, kind };
    merger.merge(&mut merged, &config, &mut Vec::new());
    for field in ["apiVersion", "kind"] {
        if let (Value::Object(m), Some(v)) = (&mut merged, config.get(field)) {
            m.insert(field.to_string(), v.clone());
        }
    }

    let last_set = entries
        .iter()
        .position(|e| e.is(manager, APPLY))
        .map(|i| entries.remove(i).set)
        .unwrap_or_default();
    let mut keep: FieldSet = applied_set.clone();
    for e in &entries {
        keep.extend(e.set.iter().cloned());
    }
    prune(&mut merged, &last_set, &keep);

    let merged_fields = update_walker.walk(&merged).unwrap_or_default();
    let diff = compare(&live_fields, &merged_fields);
    let mut conflicts = Vec::new();
    for e in &entries {
        for path in e.set.iter() {
            if diff.modified.contains(path) || diff.added.contains(path) {
                conflicts.push((e.manager.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        conflicts.dedup();
        return Err(SsaError::Conflict {
            conflicts: conflicts
                .into_iter()
                .map(|(manager, path)| FieldConflict {
                    manager,
                    field: path_to_string(&path),
                })
                .collect(),
        });
    }
    for e in &mut entries {
        e.set
            .retain(|p| !diff.modified.contains(p) && !diff.added.contains(p));
        e.set.retain(|p| !diff.removed.contains(p));
    }
    entries.push(Entry {
        manager: manager.to_string(),
        operation: APPLY.to_string(),
        api_version,
        time: Some(now.to_string()),
        subresource: None,
        set: applied_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Checks the applied configuration and strips what apply never sets (status, system metadata).
fn validate_config(applied: &Value, kind: &str) -> Result<Value, SsaError> {
    let invalid = |m: &str| Err(SsaError::Invalid(m.to_string()));
    if !applied.is_object() {
        return invalid("the applied configuration must be an object");
    }
    if depth_exceeds(applied, MAX_DEPTH) {
        return invalid("the applied configuration is nested too deeply");
    }
    if str_field(applied, "/apiVersion").is_none() {
        return invalid("apiVersion must be set in the applied configuration");
    }
    let Some(applied_kind) = str_field(applied, "/kind") else {
        return invalid("kind must be set in the applied configuration");
    };
    if !kind.is_empty() && applied_kind != kind {
        return Err(SsaError::Invalid(format!(
            "the applied configuration has kind {applied_kind:?}, expected {kind:?}"
        )));
    }
    if str_field(applied, "/metadata/name").is_none() {
        return invalid("metadata.name must be set in the applied configuration");
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return invalid("metadata.managedFields must be nil");
    }
    let mut config = applied.clone();
    if let Value::Object(root) = &mut config {
        root.remove("status");
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            for f in SYSTEM_METADATA {
                meta.remove(*f);
            }
        }
    }
    Ok(config)
}

/// Merges an applied configuration into a live object the way structured-merge-diff does.
struct Merger<'a> {
    group: &'a str,
    kind: &'a str,
}

impl Merger<'_> {
    fn merge<'c>(&self, live: &mut Value, config: &'c Value, names: &mut Vec<&'c str>) {
        match (live, config) {
            (Value::Object(l), Value::Object(c)) if !is_atomic_map(names) => {
                for (k, v) in c {
                    if v.is_null() {
                        l.remove(k);
                        continue;
                    }
                    names.push(k.as_str());
                    match l.get_mut(k) {
                        Some(existing) => self.merge(existing, v, names),
                        None => {
                            l.insert(k.clone(), v.clone());
                        }
                    }
                    names.pop();
                }
            }
            (Value::Array(l), Value::Array(c)) => match list_type(self.group, self.kind, names) {
                ListType::Atomic => *l = c.clone(),
                ListType::Set => {
                    let lhs = std::mem::take(l);
                    *l = self.merge_list(lhs, c, |x| Some(set_element_of(x)), names);
                }
                ListType::Map { keys, .. } => {
                    let lhs = std::mem::take(l);
                    *l = self.merge_list(lhs, c, |x| element_key_of(x, keys).ok(), names);
                }
            },
            (live, config) => *live = config.clone(),
        }
    }

    /// structured-merge-diff's list merge: live-only elements stay where they are, shared
    /// elements follow the configuration's order, new elements come in before the next shared one.
    fn merge_list<'c>(
        &self,
        lhs: Vec<Value>,
        rhs: &'c [Value],
        key_of: impl Fn(&Value) -> Option<PathElement>,
        names: &mut Vec<&'c str>,
    ) -> Vec<Value> {
        let lpe: Vec<Option<PathElement>> = lhs.iter().map(&key_of).collect();
        let rpe: Vec<Option<PathElement>> = rhs.iter().map(&key_of).collect();
        let in_rhs = |pe: &Option<PathElement>| pe.is_some() && rpe.contains(pe);
        let mut lhs: Vec<Option<Value>> = lhs.into_iter().map(Some).collect();
        let take_lhs = |pe: &Option<PathElement>, lhs: &mut Vec<Option<Value>>| {
            let i = lpe.iter().position(|x| x.is_some() && x == pe)?;
            lhs.get_mut(i).and_then(Option::take)
        };
        let mut shared = rpe.iter().filter(|pe| pe.is_some() && lpe.contains(pe));
        let mut next_shared = shared.next();
        let mut merged: Vec<&Option<PathElement>> = Vec::new();
        let mut out = Vec::with_capacity(lpe.len().max(rpe.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lpe.len() || ri < rpe.len() {
            if li < lpe.len() && ri < rpe.len() {
                if lpe[li].is_some() && lpe[li] == rpe[ri] {
                    merged.push(&rpe[ri]);
                    let mut item = take_lhs(&lpe[li], &mut lhs).unwrap_or(Value::Null);
                    self.merge(&mut item, &rhs[ri], names);
                    out.push(item);
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if in_rhs(&lpe[li]) && next_shared.is_some_and(|n| *n != lpe[li]) {
                    li += 1;
                    continue;
                }
            }
            if li < lpe.len() {
                if !in_rhs(&lpe[li]) {
                    if let Some(item) = lhs.get_mut(li).and_then(Option::take) {
                        out.push(item);
                    }
                    li += 1;
                    continue;
                }
                if merged.contains(&&lpe[li]) {
                    li += 1;
                    continue;
                }
            }
            if ri < rpe.len() {
                let pe = &rpe[ri];
                merged.push(pe);
                match take_lhs(pe, &mut lhs) {
                    Some(mut item) => {
                        self.merge(&mut item, &rhs[ri], names);
                        out.push(item);
                    }
                    None => out.push(rhs[ri].clone()),
                }
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.next();
                }
            }
        }
        out
    }
}

/// Removes what the applier owned last time and no longer applies, unless another manager
/// (or the new configuration) still owns it or something beneath it.
fn prune(obj: &mut Value, last: &FieldSet, keep: &FieldSet) {
    for path in last {
        if keep.contains(path) || has_descendant(keep, path) || is_key_field(path) {
            continue;
        }
        if remove_path(obj, path) {
            remove_empty_parents(obj, path, keep);
        }
    }
}

fn has_descendant(set: &FieldSet, path: &FieldPath) -> bool {
    // Descendants sort right after their ancestor.
    set.range((Bound::Excluded(path.clone()), Bound::Unbounded))
        .next()
        .is_some_and(|p| p.starts_with(path))
}

/// A key field of a list element stays as long as the element does.
fn is_key_field(path: &FieldPath) -> bool {
    match path.as_slice() {
        [.., PathElement::Key(json), PathElement::Field(f)] => {
            matches!(serde_json::from_str::<Value>(json), Ok(Value::Object(m)) if m.contains_key(f))
        }
        _ => false,
    }
}

fn child_mut<'v>(v: &'v mut Value, pe: &PathElement) -> Option<&'v mut Value> {
    match (v, pe) {
        (Value::Object(m), PathElement::Field(f)) => m.get_mut(f),
        (Value::Array(a), PathElement::Index(i)) => a.get_mut(*i),
        (Value::Array(a), pe) => a.iter_mut().find(|x| matches_element(x, pe)),
        _ => None,
    }
}

fn matches_element(item: &Value, pe: &PathElement) -> bool {
    match pe {
        PathElement::Value(_) => set_element_of(item) == *pe,
        PathElement::Key(json) => {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(json) else {
                return false;
            };
            key.iter().all(|(k, v)| match item.get(k) {
                Some(x) => x == v,
                // A defaulted key field (ports' protocol) may be absent from the element.
                None => k == "protocol" && v == "TCP",
            })
        }
        _ => false,
    }
}

fn navigate<'v>(obj: &'v mut Value, path: &[PathElement]) -> Option<&'v mut Value> {
    let mut cur = obj;
    for pe in path {
        cur = child_mut(cur, pe)?;
    }
    Some(cur)
}

fn remove_path(obj: &mut Value, path: &[PathElement]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let Some(parent) = navigate(obj, parent) else {
        return false;
    };
    match (parent, last) {
        (Value::Object(m), PathElement::Field(f)) => m.remove(f).is_some(),
        (Value::Array(a), PathElement::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        (Value::Array(a), pe) => {
            let before = a.len();
            a.retain(|x| !matches_element(x, pe));
            a.len() != before
        }
        _ => false,
    }
}

/// Drops maps and lists that pruning left empty, up to the first one someone owns.
fn remove_empty_parents(obj: &mut Value, path: &[PathElement], keep: &FieldSet) {
    let mut end = path.len() - 1;
    while end >= 1 {
        let parent = &path[..end];
        if keep.contains(parent) || parent == [PathElement::Field("metadata".to_string())] {
            return;
        }
        let empty = match navigate(obj, parent) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty || !remove_path(obj, parent) {
            return;
        }
        end -= 1;
    }
}

/// Records in `new.metadata.managedFields` that `manager` (operation Update) set the fields
/// that differ between `old` (None = created) and `new`, taking them from other managers.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    group: &str,
    kind: &str,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    let mut entries = match old {
        // A request that carries managedFields different from the stored ones replaces them.
        Some(old)
            if new
                .pointer("/metadata/managedFields")
                .is_none_or(|m| Some(m) == old.pointer("/metadata/managedFields")) =>
        {
            read_entries(old)
        }
        _ => read_entries(new),
    };
    let walker = Walker {
        group,
        kind,
        mode: Mode::Update,
        strict: false,
    };
    let empty = Value::Object(Map::new());
    let old_fields = walker.walk(old.unwrap_or(&empty)).unwrap_or_default();
    let new_fields = walker.walk(new).unwrap_or_default();
    let diff = compare(&old_fields, &new_fields);

    let mine = entries
        .iter()
        .position(|e| e.is(manager, UPDATE))
        .map(|i| entries.remove(i));
    for e in &mut entries {
        e.set.retain(|p| {
            !diff.modified.contains(p) && !diff.added.contains(p) && !diff.removed.contains(p)
        });
    }
    let mut set = mine.as_ref().map(|e| e.set.clone()).unwrap_or_default();
    set.retain(|p| !diff.removed.contains(p));
    set.extend(diff.modified.iter().cloned());
    set.extend(diff.added.iter().cloned());
    let changed = mine.as_ref().is_none_or(|e| e.set != set);
    let time = match &mine {
        Some(e) if !changed => e.time.clone(),
        _ => Some(now.to_string()),
    };
    entries.push(Entry {
        manager: manager.to_string(),
        operation: UPDATE.to_string(),
        api_version: str_field(new, "/apiVersion")
            .unwrap_or_default()
            .to_string(),
        time,
        subresource: None,
        set,
    });
    write_entries(new, entries);
}
