//! The verbs: create, update, patch, apply, delete (with garbage collection), list, status writes.
//! They run under the store lock, so each call is atomic.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value, json};

use super::defaults;
use super::delete::Propagation;
use super::patch::{self, PatchError};
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::ssa::{self, SsaError};
use super::status::ApiError;
use super::store::{ObjName, Store, Stored, TypeKey};
use super::validate::{check_name, check_type};

/// Options every mutating verb takes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// `dryRun=All`: answer as if done, store nothing.
    pub dry_run: bool,
    /// The field manager (`fieldManager`, else the User-Agent's product).
    pub manager: String,
    /// `force=true` for server-side apply.
    pub force: bool,
    /// Whether the request named `fieldManager` explicitly.
    pub explicit_manager: bool,
}

/// One page of a list.
pub struct ListPage {
    /// Matching objects.
    pub items: Vec<Arc<Stored>>,
    /// The list's resourceVersion.
    pub rv: u64,
    /// Continue token when more remain.
    pub continue_token: Option<String>,
}

/// Filters for list, watch and deletecollection.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// labelSelector.
    pub labels: LabelSelector,
    /// fieldSelector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// Now, as Kubernetes writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(super) fn catch<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, ApiError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!(what, "sandbox helper panicked");
        ApiError::internal(format!("{what} is not available in this sandbox build"))
    })
}

fn patch_err(e: PatchError, rt: &ResourceType, name: &str) -> ApiError {
    match e {
        PatchError::BadRequest(m) => ApiError::bad_request(m),
        PatchError::Invalid(m) => ApiError::invalid(&rt.group, &rt.kind, name, m),
    }
}

pub(super) fn key_of(rt: &ResourceType) -> TypeKey {
    TypeKey::new(&rt.group, &rt.plural)
}

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str()
}

/// The object as read through `rt`'s version (CRDs may serve several versions of one storage).
pub fn present(rt: &ResourceType, stored: &Arc<Stored>) -> Arc<Stored> {
    let want = rt.api_version();
    if stored.value["apiVersion"].as_str() == Some(want.as_str()) {
        return stored.clone();
    }
    let mut value = stored.value.clone();
    value["apiVersion"] = Value::String(want);
    Stored::new(value)
}

/// Everything except metadata and status: what bumps `generation` when it changes.
fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The object without the fields every write changes, to detect no-op writes.
fn comparable(obj: &Value) -> Value {
    let mut v = without_resource_version(obj);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

/// The object without its resourceVersion.
fn without_resource_version(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    v
}

pub(super) fn finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Sets the status Kubernetes gives a CRD once its names are accepted.
fn crd_status(obj: &mut Value) {
    let stamp = now();
    let stored: Vec<Value> = obj["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool().unwrap_or(false))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    obj["status"] = json!({
        "acceptedNames": obj["spec"]["names"].clone(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": stamp},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": stamp},
        ],
        "storedVersions": stored,
    });
}

/// Kinds with a spec that controllers observe get `metadata.generation`, as in Kubernetes.
fn tracks_generation(rt: &ResourceType) -> bool {
    rt.status_subresource || !rt.builtin
}

/// What the API server's defaulting adds (see `defaults`); custom resources only lose empty maps.
pub(super) fn server_defaults(rt: &ResourceType, obj: &mut Value) {
    if rt.builtin {
        defaults::apply(&rt.group, &rt.kind, obj);
    } else {
        defaults::drop_empty_metadata(obj);
    }
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

pub(super) fn is_namespace(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "namespaces"
}

impl Store {
    fn require_namespace(&self, rt: &ResourceType, ns: Option<&str>) -> Result<String, ApiError> {
        if !rt.namespaced {
            return Ok(String::new());
        }
        let ns = ns.unwrap_or("");
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource (namespace required)",
            ));
        }
        match self.get(&TypeKey::new("", "namespaces"), "", ns) {
            None => return Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n.value["metadata"]["deletionTimestamp"].is_string() => {
                return Err(ApiError::forbidden(format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.plural
                )));
            }
            Some(_) => {}
        }
        Ok(ns.to_string())
    }

    /// GET one object.
    pub fn op_get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Stored>, ApiError> {
        let ns = if rt.namespaced { ns.unwrap_or("") } else { "" };
        self.get(&key_of(rt), ns, name)
            .map(|o| present(rt, &o))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// LIST with selectors and paging.
    pub fn op_list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let ns = if rt.namespaced { ns } else { None };
        let after = continue_token
            .filter(|t| !t.is_empty())
            .map(decode_continue)
            .transpose()?;
        let limit = limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut last_key: Option<&ObjName> = None;
        for (objname, obj) in self.iter(&key_of(rt), ns, after.as_ref()) {
            if !filter.matches(&obj.value) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                continue_token = last_key.map(|(ns, name)| encode_continue(ns, name));
                break;
            }
            items.push(present(rt, obj));
            last_key = Some(objname);
        }
        Ok(ListPage {
            items,
            rv: self.rv(),
            continue_token,
        })
    }

    /// POST: create an object.
    pub fn op_create(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Stored>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type(rt, &mut obj)?;
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        obj["metadata"]["name"] = Value::String(name.clone());
        self.check_namespace_field(rt, ns, &mut obj)?;
        check_name(rt, &name, &obj)?;
        let ns = self.require_namespace(rt, ns)?;
        if self.get(&key_of(rt), &ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        self.prepare_new(rt, &mut obj);
        server_defaults(rt, &mut obj);
        let mut attempt = obj.clone();
        if catch("managedFields bookkeeping", || {
            ssa::record_update(
                None,
                &mut attempt,
                &opts.manager,
                &rt.group,
                &rt.kind,
                &now(),
            )
        })
        .is_ok()
        {
            obj = attempt;
        }
        self.store_new(rt, obj, opts)
    }

    fn check_namespace_field(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if rt.namespaced {
            let url_ns = ns.unwrap_or("");
            match meta_str(obj, "namespace") {
                Some(body_ns) if !body_ns.is_empty() && body_ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => obj["metadata"]["namespace"] = Value::String(url_ns.to_string()),
            }
        } else if let Some(meta) = obj["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// System fields of a new object.
    fn prepare_new(&self, rt: &ResourceType, obj: &mut Value) {
        let name = meta_str(obj, "name").unwrap_or("").to_string();
        if let Some(meta) = obj["metadata"].as_object_mut() {
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "generateName",
            ] {
                if f != "generateName" {
                    meta.remove(f);
                }
            }
            meta.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            meta.insert("creationTimestamp".into(), Value::String(now()));
            if tracks_generation(rt) {
                meta.insert("generation".into(), json!(1));
            }
        }
        if rt.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        if is_namespace(rt) {
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = Value::String(name);
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"] = json!({"phase": "Active"});
        }
        if is_crd(rt) {
            crd_status(obj);
        }
    }

    fn store_new(
        &mut self,
        rt: &ResourceType,
        obj: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Stored>, ApiError> {
        if opts.dry_run {
            return Ok(Stored::new(obj));
        }
        Ok(self.commit(rt, &key_of(rt), obj))
    }

    /// PUT: replace an object (or its status).
    pub fn op_update(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        status_only: bool,
        opts: &WriteOpts,
    ) -> Result<Arc<Stored>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type(rt, &mut obj)?;
        match meta_str(&obj, "name") {
            Some(n) if n == name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None => obj["metadata"]["name"] = Value::String(name.to_string()),
        }
        self.check_namespace_field(rt, ns, &mut obj)?;
        let old = self.op_get(rt, ns, name)?;
        self.finish_write(rt, &old, obj, status_only, opts, false)
    }

    /// PATCH in one of the four patch formats.
    #[allow(clippy::too_many_arguments)]
    pub fn op_patch(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        content_type: &str,
        body: &[u8],
        status_only: bool,
        opts: &WriteOpts,
    ) -> Result<(Arc<Stored>, bool), ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media == "application/apply-patch+yaml" {
            return self.op_apply(rt, ns, name, body, status_only, opts);
        }
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let old = self.op_get(rt, ns, name)?;
        let mut new = old.value.clone();
        match media {
            "application/merge-patch+json" => {
                catch("JSON merge patch", || patch::merge_patch(&mut new, &patch))?;
            }
            "application/json-patch+json" => {
                catch("JSON patch", || patch::json_patch(&mut new, &patch))?
                    .map_err(|e| patch_err(e, rt, name))?;
            }
            "application/strategic-merge-patch+json" if rt.builtin => {
                catch("strategic merge patch", || {
                    patch::strategic_merge_patch(&mut new, &patch, &rt.group, &rt.kind)
                })?
                .map_err(|e| patch_err(e, rt, name))?;
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        if !new.is_object() {
            return Err(ApiError::bad_request("the patch did not produce an object"));
        }
        check_type(rt, &mut new)?;
        new["metadata"]["name"] = Value::String(name.to_string());
        Ok((
            self.finish_write(rt, &old, new, status_only, opts, false)?,
            false,
        ))
    }

    fn op_apply(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        body: &[u8],
        status_only: bool,
        opts: &WriteOpts,
    ) -> Result<(Arc<Stored>, bool), ApiError> {
        if !opts.explicit_manager {
            return Err(ApiError::bad_request(
                "PATCH /apply requires fieldManager to be set: fieldManager is required for apply requests",
            ));
        }
        let applied = parse_apply_body(body)?;
        let want = rt.api_version();
        let (got_api, got_kind) = (
            applied["apiVersion"].as_str().unwrap_or(""),
            applied["kind"].as_str().unwrap_or(""),
        );
        if got_api != want {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {got_api}, expected: {want}"
            )));
        }
        if got_kind != rt.kind {
            return Err(ApiError::bad_request(format!(
                "Incorrect kind specified in apply patch. Specified patch kind: {got_kind}, expected: {}",
                rt.kind
            )));
        }
        let live = self.get(
            &key_of(rt),
            if rt.namespaced { ns.unwrap_or("") } else { "" },
            name,
        );
        let mut applied = applied;
        // The patch merges into the live object, whose name is the URL's: a patch of an
        // existing object may leave the name out (as kube-apiserver allows); one that names
        // another object, or creates one without a name, is refused.
        match meta_str(&applied, "name") {
            Some(n) if n == name => {}
            None if live.is_some() => {
                if let Some(meta) = applied
                    .as_object_mut()
                    .map(|o| o.entry("metadata").or_insert_with(|| serde_json::json!({})))
                    .and_then(Value::as_object_mut)
                {
                    meta.insert("name".into(), Value::String(name.to_owned()));
                }
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object in the apply patch does not match the name on the URL ({name})"
                )));
            }
        }
        self.check_namespace_field(rt, ns, &mut applied)?;
        let stamp = now();
        let merged = catch("server-side apply", || match (&live, status_only) {
            (Some(old), true) => ssa::apply_status(
                &old.value,
                &applied,
                &opts.manager,
                opts.force,
                &rt.group,
                &rt.kind,
                &stamp,
            ),
            _ => ssa::apply(
                live.as_ref().map(|o| &o.value),
                &applied,
                &opts.manager,
                opts.force,
                &rt.group,
                &rt.kind,
                &stamp,
            ),
        })?
        .map_err(|e| ssa_err(e, rt, name))?;
        match live {
            Some(old) => Ok((
                self.finish_write(rt, &old, merged, status_only, opts, true)?,
                false,
            )),
            None => {
                if status_only {
                    return Err(ApiError::not_found(&rt.group, &rt.plural, name));
                }
                let mut obj = merged;
                check_name(rt, name, &obj)?;
                self.require_namespace(rt, ns)?;
                let managed = obj["metadata"]["managedFields"].take();
                self.prepare_new(rt, &mut obj);
                // After the managed-fields computation, so the applier owns no defaulted field.
                server_defaults(rt, &mut obj);
                if !managed.is_null() {
                    obj["metadata"]["managedFields"] = managed;
                }
                Ok((self.store_new(rt, obj, opts)?, true))
            }
        }
    }

    /// The common tail of update, patch and apply on an existing object.
    pub(super) fn finish_write(
        &mut self,
        rt: &ResourceType,
        old: &Arc<Stored>,
        mut new: Value,
        status_only: bool,
        opts: &WriteOpts,
        applied: bool,
    ) -> Result<Arc<Stored>, ApiError> {
        let name = meta_str(&old.value, "name").unwrap_or("").to_string();
        let old_rv = meta_str(&old.value, "resourceVersion").unwrap_or("");
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != old_rv
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, &name));
        }
        if !status_only {
            server_defaults(rt, &mut new);
        }
        if status_only {
            let mut merged = old.value.clone();
            merged["status"] = new["status"].take();
            if applied {
                merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].take();
            }
            new = merged;
        } else if rt.status_subresource
            && let Some(m) = new.as_object_mut()
        {
            match old.value.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ] {
            match old.value["metadata"].get(f) {
                Some(v) => new["metadata"][f] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(f);
                    }
                }
            }
        }
        if tracks_generation(rt) {
            let old_gen = old.value["metadata"]["generation"].as_i64().unwrap_or(1);
            let generation = if spec_part(&old.value) != spec_part(&new) {
                old_gen + 1
            } else {
                old_gen
            };
            new["metadata"]["generation"] = json!(generation);
        }
        if is_crd(rt) && !status_only {
            crd_status(&mut new);
        }
        if is_namespace(rt) && new["status"].is_null() {
            new["status"] = json!({"phase": "Active"});
        }
        check_name(rt, &name, &new)?;
        // An apply that only changes ownership (a second manager sharing a value, a forced
        // take-over of an equal value) is a real write: its managedFields must be kept.
        let unchanged = if applied {
            without_resource_version(&new) == without_resource_version(&old.value)
        } else {
            comparable(&new) == comparable(&old.value)
        };
        if unchanged {
            return Ok(present(rt, old));
        }
        if !applied {
            let mut attempt = new.clone();
            let stamp = now();
            if catch("managedFields bookkeeping", || {
                let record = if status_only {
                    ssa::record_status_update
                } else {
                    |old: &Value, new: &mut Value, m: &str, g: &str, k: &str, t: &str| {
                        ssa::record_update(Some(old), new, m, g, k, t)
                    }
                };
                record(
                    &old.value,
                    &mut attempt,
                    &opts.manager,
                    &rt.group,
                    &rt.kind,
                    &stamp,
                )
            })
            .is_ok()
            {
                new = attempt;
            }
        }
        if opts.dry_run {
            return Ok(Stored::new(new));
        }
        let key = key_of(rt);
        let ns = meta_str(&old.value, "namespace").unwrap_or("").to_string();
        if new["metadata"]["deletionTimestamp"].is_string() && !finalizers(&new) {
            self.put(&key, new);
            let last = self.remove_cascade(&key, &ns, &name, Propagation::Background);
            return last.ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, &name));
        }
        Ok(self.commit(rt, &key, new))
    }

    /// Stores a written object; a CRD change also changes what the server serves.
    fn commit(&mut self, rt: &ResourceType, key: &TypeKey, obj: Value) -> Arc<Stored> {
        let stored = self.put(key, obj);
        if is_crd(rt) {
            self.refresh_catalog();
        }
        present(rt, &stored)
    }

    /// A controller's status write: only when the object still has this uid and generation.
    /// Returns false when the object changed underneath or the status is already this.
    pub fn set_status(
        &mut self,
        key: &TypeKey,
        ns: &str,
        name: &str,
        uid: &str,
        generation: i64,
        status: Value,
    ) -> bool {
        let Some(old) = self.get(key, ns, name) else {
            return false;
        };
        let meta = &old.value["metadata"];
        if meta["uid"].as_str() != Some(uid)
            || meta["generation"].as_i64().unwrap_or(1) != generation
        {
            return false;
        }
        if old.value["status"] == status {
            return false;
        }
        let mut v = old.value.clone();
        v["status"] = status;
        self.put(key, v);
        true
    }
}

fn ssa_err(e: SsaError, rt: &ResourceType, name: &str) -> ApiError {
    match e {
        SsaError::Conflict { conflicts } => {
            let lines: Vec<String> = conflicts
                .iter()
                .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
                .collect();
            let message = if lines.len() == 1 {
                format!("Apply failed with 1 conflict: {}", lines[0])
            } else {
                format!(
                    "Apply failed with {} conflicts: {}",
                    lines.len(),
                    lines.join("\n")
                )
            };
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "type": "FieldManagerConflict",
                                "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            let mut err = ApiError::conflict_msg(message);
            err.details =
                Some(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}));
            err
        }
        SsaError::Invalid(m) => ApiError::invalid(&rt.group, &rt.kind, name, m),
    }
}

/// The applied configuration: JSON, or YAML within serde-saphyr's default budgets.
fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("apply patch is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn encode_continue(ns: &str, name: &str) -> String {
    hex::encode(format!("{ns}\n{name}"))
}

fn decode_continue(token: &str) -> Result<ObjName, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (ns, name) = text.split_once('\n').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}
