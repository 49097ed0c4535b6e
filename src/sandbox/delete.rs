//! Deletion: finalizers, propagation policies, garbage collection through ownerReferences,
//! namespace and CRD cascades, deletecollection.

use std::sync::Arc;

use serde_json::{Value, json};

use super::ops::{Filter, finalizers, is_namespace, key_of, meta_str, now, present};
use super::resources::ResourceType;
use super::status::{ApiError, qualified};
use super::store::{ObjName, Store, Stored, TypeKey};

/// How dependents of a deleted object are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete dependents after the owner.
    #[default]
    Background,
    /// Delete dependents before the owner.
    Foreground,
    /// Leave dependents, removing their ownerReferences.
    Orphan,
}

/// Delete options from the query and the DeleteOptions body.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// Propagation policy.
    pub propagation: Propagation,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl Store {
    /// DELETE one object.
    pub fn op_delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Arc<Stored>, ApiError> {
        let old = self.op_get(rt, ns, name)?;
        let uid = meta_str(&old.value, "uid").unwrap_or("");
        if let Some(want) = &opts.uid
            && want != uid
        {
            return Err(ApiError::conflict_msg(format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {want}, UID in object meta: {uid}",
                qualified(&rt.group, &rt.plural)
            )));
        }
        let rv = meta_str(&old.value, "resourceVersion").unwrap_or("");
        if let Some(want) = &opts.resource_version
            && want != rv
        {
            return Err(ApiError::conflict_msg(format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}",
                qualified(&rt.group, &rt.plural)
            )));
        }
        if opts.dry_run {
            return Ok(old);
        }
        let key = key_of(rt);
        let ns = meta_str(&old.value, "namespace").unwrap_or("").to_string();
        if is_namespace(rt) {
            // Like Kubernetes' namespace controller, contents go later (see `finalize_namespace`),
            // so deleting a namespace and then its objects does not fail.
            if old.value["metadata"]["deletionTimestamp"].is_string() {
                return Ok(old);
            }
            let mut v = old.value.clone();
            v["metadata"]["deletionTimestamp"] = Value::String(now());
            v["status"] = json!({"phase": "Terminating"});
            return Ok(self.put(&key, v));
        }
        if let Some(marked) = self.mark_deleting(&key, &old) {
            return Ok(present(rt, &marked));
        }
        self.remove_cascade(&key, &ns, name, opts.propagation)
            .map(|o| present(rt, &o))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Removes a terminating namespace and everything in it, once its own finalizers are gone.
    pub fn finalize_namespace(&mut self, name: &str) {
        let key = TypeKey::new("", "namespaces");
        let Some(ns) = self.get(&key, "", name) else {
            return;
        };
        if ns.value["metadata"]["deletionTimestamp"].is_string() && !finalizers(&ns.value) {
            self.remove_cascade(&key, "", name, Propagation::Background);
        }
    }

    /// Objects with finalizers only get a deletionTimestamp; returns the marked object.
    pub(super) fn mark_deleting(
        &mut self,
        key: &TypeKey,
        old: &Arc<Stored>,
    ) -> Option<Arc<Stored>> {
        if !finalizers(&old.value) {
            return None;
        }
        if old.value["metadata"]["deletionTimestamp"].is_string() {
            return Some(old.clone());
        }
        let mut v = old.value.clone();
        v["metadata"]["deletionTimestamp"] = Value::String(now());
        v["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        Some(self.put(key, v))
    }

    /// Removes an object now, then what depends on it: namespace contents, a CRD's objects,
    /// and objects whose ownerReferences point at it.
    pub(super) fn remove_cascade(
        &mut self,
        key: &TypeKey,
        ns: &str,
        name: &str,
        propagation: Propagation,
    ) -> Option<Arc<Stored>> {
        let is_ns = key.group.is_empty() && key.plural == "namespaces";
        if is_ns {
            for k in self.keys() {
                let names: Vec<ObjName> = self
                    .iter(&k, Some(name), None)
                    .map(|(n, _)| n.clone())
                    .collect();
                for (ons, oname) in names {
                    self.remove_cascade(&k, &ons, &oname, Propagation::Background);
                }
            }
        }
        let current = self.get(key, ns, name)?;
        if propagation == Propagation::Foreground {
            self.collect_dependents(&current, propagation);
        }
        let removed = self.remove(key, ns, name)?;
        if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            let spec = &removed.value["spec"];
            let ckey = TypeKey::new(
                spec["group"].as_str().unwrap_or(""),
                spec["names"]["plural"].as_str().unwrap_or(""),
            );
            let names: Vec<ObjName> = self
                .iter(&ckey, None, None)
                .map(|(n, _)| n.clone())
                .collect();
            for (ons, oname) in names {
                self.remove_cascade(&ckey, &ons, &oname, Propagation::Background);
            }
            self.refresh_catalog();
        }
        if propagation != Propagation::Foreground {
            self.collect_dependents(&removed, propagation);
        }
        Some(removed)
    }

    /// Deletes (or orphans) the objects owned by `owner`.
    fn collect_dependents(&mut self, owner: &Arc<Stored>, propagation: Propagation) {
        let Some(uid) = meta_str(&owner.value, "uid") else {
            return;
        };
        let uid = uid.to_string();
        for (key, (ns, name)) in self.owned() {
            let Some(dep) = self.get(&key, &ns, &name) else {
                continue;
            };
            let refs = dep.value["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !refs.iter().any(|r| r["uid"].as_str() == Some(uid.as_str())) {
                continue;
            }
            if propagation == Propagation::Orphan {
                let mut v = dep.value.clone();
                let kept: Vec<Value> = refs
                    .into_iter()
                    .filter(|r| r["uid"].as_str() != Some(uid.as_str()))
                    .collect();
                if kept.is_empty() {
                    if let Some(m) = v["metadata"].as_object_mut() {
                        m.remove("ownerReferences");
                    }
                } else {
                    v["metadata"]["ownerReferences"] = Value::Array(kept);
                }
                self.put(&key, v);
            } else if self.mark_deleting(&key, &dep).is_none() {
                self.remove_cascade(&key, &ns, &name, propagation);
            }
        }
    }

    /// DELETE on a collection: deletes every matching object.
    pub fn op_delete_collection(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        filter: &Filter,
        opts: &DeleteOpts,
    ) -> Result<Vec<Arc<Stored>>, ApiError> {
        let page = self.op_list(rt, ns, filter, None, None)?;
        let mut out = Vec::new();
        for obj in page.items {
            let name = meta_str(&obj.value, "name").unwrap_or("").to_string();
            let ons = meta_str(&obj.value, "namespace").map(str::to_string);
            match self.op_delete(rt, ons.as_deref(), &name, opts) {
                Ok(o) => out.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
