//! Server-side apply and managedFields bookkeeping.
//! Follows Kubernetes' structured-merge-diff: the applied configuration's field set becomes
//! the manager's Apply entry, fields it stopped applying are pruned unless someone else owns
//! them, and changing fields other managers own is a conflict unless forced.

use serde_json::{Map, Value};

use super::patch::MAX_DEPTH;
use super::ssa_fieldset::{
    FieldSet, Mode, Scope, Walker, compare, from_fields_v1, path_to_string, to_fields_v1,
};
use super::ssa_merge::Merger;

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
    fn is(&self, manager: &str, operation: &str, scope: Scope) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == scope.subresource()
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

/// Metadata the server owns; an applied configuration cannot set it. (`resourceVersion` stays:
/// the server checks it as a precondition.)
const SYSTEM_METADATA: &[&str] = &[
    "uid",
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
    let request = Request {
        manager,
        group,
        kind,
        now,
        scope: Scope::Main,
    };
    apply_in(&request, live, applied, force)
}

/// Server-side apply on the `status` subresource: only `.status` of `applied` is merged and
/// owned (entries with `subresource: status`); the rest of `live` is kept as it is.
pub fn apply_status(
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    group: &str,
    kind: &str,
    now: &str,
) -> Result<Value, SsaError> {
    let request = Request {
        manager,
        group,
        kind,
        now,
        scope: Scope::Status,
    };
    apply_in(&request, Some(live), applied, force)
}

/// Who changes what, when, and in which part of the object.
struct Request<'a> {
    manager: &'a str,
    group: &'a str,
    kind: &'a str,
    now: &'a str,
    scope: Scope,
}

impl Request<'_> {
    fn walker(&self, mode: Mode, strict: bool) -> Walker<'_> {
        Walker {
            group: self.group,
            kind: self.kind,
            mode,
            strict,
            scope: self.scope,
        }
    }
}

fn apply_in(
    req: &Request<'_>,
    live: Option<&Value>,
    applied: &Value,
    force: bool,
) -> Result<Value, SsaError> {
    let Request {
        manager,
        group,
        kind,
        now,
        scope,
    } = *req;
    let config = validate_config(applied, kind, scope)?;
    let api_version = str_field(&config, "/apiVersion")
        .unwrap_or_default()
        .to_string();
    let applied_set: FieldSet = req
        .walker(Mode::Apply, true)
        .walk(&config)
        .map_err(SsaError::Invalid)?
        .into_keys()
        .collect();

    let empty = Value::Object(Map::new());
    let live = live.filter(|l| l.is_object()).unwrap_or(&empty);
    let update_walker = req.walker(Mode::Update, false);
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
            subresource: scope.subresource().map(str::to_string),
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

    let (last_set, last_time) = entries
        .iter()
        .position(|e| e.is(manager, APPLY, scope))
        .map(|i| entries.remove(i))
        .map(|e| (e.set, e.time))
        .unwrap_or_default();
    let mut keep: FieldSet = applied_set.clone();
    for e in &entries {
        keep.extend(e.set.iter().cloned());
    }
    merger.prune(&mut merged, &last_set, &keep);

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
    // Kubernetes stamps the time only when the apply changed the object.
    let unchanged = diff.added.is_empty() && diff.modified.is_empty() && diff.removed.is_empty();
    let time = match last_time {
        Some(t) if unchanged => Some(t),
        _ => Some(now.to_string()),
    };
    entries.push(Entry {
        manager: manager.to_string(),
        operation: APPLY.to_string(),
        api_version,
        time,
        subresource: scope.subresource().map(str::to_string),
        set: applied_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Checks the applied configuration and strips what apply never sets in this scope.
fn validate_config(applied: &Value, kind: &str, scope: Scope) -> Result<Value, SsaError> {
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
        match scope {
            Scope::Main => {
                root.remove("status");
            }
            Scope::Status => {
                root.retain(|k, _| {
                    matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                });
            }
        }
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            match scope {
                Scope::Main => meta.retain(|k, _| !SYSTEM_METADATA.contains(&k.as_str())),
                Scope::Status => meta
                    .retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "resourceVersion")),
            }
        }
    }
    Ok(config)
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
    let request = Request {
        manager,
        group,
        kind,
        now,
        scope: Scope::Main,
    };
    record_in(&request, old, new);
}

/// Like [`record_update`] for a write to the `status` subresource: `manager` takes the status
/// fields that changed, in an entry with `subresource: status`.
pub fn record_status_update(
    old: &Value,
    new: &mut Value,
    manager: &str,
    group: &str,
    kind: &str,
    now: &str,
) {
    let request = Request {
        manager,
        group,
        kind,
        now,
        scope: Scope::Status,
    };
    record_in(&request, Some(old), new);
}

fn record_in(req: &Request<'_>, old: Option<&Value>, new: &mut Value) {
    let Request {
        manager,
        now,
        scope,
        ..
    } = *req;
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
    let walker = req.walker(Mode::Update, false);
    let empty = Value::Object(Map::new());
    let old_fields = walker.walk(old.unwrap_or(&empty)).unwrap_or_default();
    let new_fields = walker.walk(new).unwrap_or_default();
    let diff = compare(&old_fields, &new_fields);

    let mine = entries
        .iter()
        .position(|e| e.is(manager, UPDATE, scope))
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
    // Kubernetes stamps the time only when this manager set something.
    let set_something = !diff.modified.is_empty() || !diff.added.is_empty();
    let time = match &mine {
        Some(e) if !set_something => e.time.clone(),
        _ => Some(now.to_string()),
    };
    entries.push(Entry {
        manager: manager.to_string(),
        operation: UPDATE.to_string(),
        api_version: str_field(new, "/apiVersion")
            .unwrap_or_default()
            .to_string(),
        time,
        subresource: scope.subresource().map(str::to_string),
        set,
    });
    write_entries(new, entries);
}
