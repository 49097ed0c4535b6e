//! The simulated Deployment and ReplicaSet controllers: they own children like the real ones.
//!
//! A Deployment gets a ReplicaSet `<name>-<pod-template-hash>` per pod template, the ReplicaSet gets
//! Pods `<rs>-<5 chars>`; a template change makes a new ReplicaSet and scales the old ones to 0,
//! keeping `revisionHistoryLimit` of them. Statuses follow the children: Pods go through the
//! simulated pod stages (`controllers`), a ReplicaSet counts its Pods, a Deployment its ReplicaSets.
//! A StatefulSet gets Pods `<name>-0..N-1` (all replaced at once on a template change) and a Job one
//! Pod `<job>-<5 chars>`; their statuses stay simulated from the spec (`controllers`).
//! Children are written through the same verbs as client writes (uid, resourceVersion, events,
//! managedFields by `kube-controller-manager`) and carry only the pod template's labels, never the
//! parent's, so label-tracked tools do not mistake them for their own objects. Only the sandbox's
//! own `sandbox.capstan.dev/*` annotations travel down, so `fail` and `ready-delay` reach the Pods.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::controllers::{self, ANNOTATION_PREFIX, Rollout, SimSettings};
use super::delete::DeleteOpts;
use super::ops::{WriteOpts, meta_str};
use super::resources::ResourceType;
use super::store::{Store, Stored, TypeKey};

/// The field manager the real controllers write as.
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";
/// Label carrying the hash of the pod template a ReplicaSet runs.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Annotation numbering a Deployment's ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Label naming the StatefulSet revision a Pod runs.
const STS_REVISION_LABEL: &str = "controller-revision-hash";
/// The most Pods one ReplicaSet gets, so a huge `replicas` cannot stall the sandbox.
const MAX_PODS: i64 = 500;

fn opts() -> WriteOpts {
    WriteOpts {
        manager: CONTROLLER_MANAGER.into(),
        ..Default::default()
    }
}

fn deployments() -> TypeKey {
    TypeKey::new("apps", "deployments")
}

fn replica_sets() -> TypeKey {
    TypeKey::new("apps", "replicasets")
}

fn pods() -> TypeKey {
    TypeKey::new("", "pods")
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// The name of the controlling owner of `kind`, if any.
fn controller_of<'a>(obj: &'a Value, kind: &str) -> Option<(&'a str, &'a str)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true) && r["kind"].as_str() == Some(kind))
        .and_then(|r| Some((r["name"].as_str()?, r["uid"].as_str()?)))
}

fn controlled_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["controller"].as_bool() == Some(true) && r["uid"].as_str() == Some(uid))
        })
}

fn owner_reference(owner: &Value, kind: &str) -> Value {
    let api_version = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// The parent's `sandbox.capstan.dev/*` annotations, which steer the simulation of its children.
fn sandbox_annotations(obj: &Value) -> Map<String, Value> {
    obj["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes `target`'s sandbox annotations equal `want`; true when something changed.
fn sync_sandbox_annotations(target: &mut Value, want: &Map<String, Value>) -> bool {
    let current = sandbox_annotations(target);
    if &current == want {
        return false;
    }
    if !target["metadata"]["annotations"].is_object() {
        target["metadata"]["annotations"] = json!({});
    }
    if let Some(a) = target["metadata"]["annotations"].as_object_mut() {
        a.retain(|k, _| !k.starts_with(ANNOTATION_PREFIX));
        a.extend(want.clone());
    }
    true
}

fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .unwrap_or(1)
        .min(MAX_PODS)
}

fn revision(obj: &Value) -> i64 {
    obj["metadata"]["annotations"][REVISION_ANNOTATION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl Store {
    fn resource(&self, group: &str, plural: &str) -> Option<ResourceType> {
        self.catalog.find(group, "v1", plural).cloned()
    }

    /// The live objects of `key` in `ns` that `uid` controls.
    fn controlled(&self, key: &TypeKey, ns: &str, uid: &str) -> Vec<Arc<Stored>> {
        self.iter(key, Some(ns), None)
            .filter(|(_, o)| controlled_by(&o.value, uid))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Reacts to a change of one object: the controllers that own or watch it catch up.
    pub fn reconcile_workloads(&mut self, key: &TypeKey, obj: &Value, settings: &SimSettings) {
        let ns = meta_str(obj, "namespace").unwrap_or("").to_string();
        let name = meta_str(obj, "name").unwrap_or("").to_string();
        match (key.group.as_str(), key.plural.as_str()) {
            ("apps", "deployments") => self.sync_deployment(&ns, &name, settings),
            ("apps", "replicasets") => {
                self.sync_replica_set(&ns, &name);
                if let Some((owner, _)) = controller_of(obj, "Deployment") {
                    self.sync_deployment(&ns, owner, settings);
                }
            }
            ("apps", "statefulsets") => self.sync_stateful_set(&ns, &name),
            ("batch", "jobs") => self.sync_job(&ns, &name),
            ("", "pods") => {
                if let Some((owner, _)) = controller_of(obj, "StatefulSet") {
                    self.sync_stateful_set(&ns, owner);
                }
                let Some((owner, _)) = controller_of(obj, "ReplicaSet") else {
                    return;
                };
                self.sync_replica_set(&ns, owner);
                // A crash-looping Pod changes no ReplicaSet count, but ends its Deployment's wait.
                let deployment = self.get(&replica_sets(), &ns, owner).and_then(|rs| {
                    controller_of(&rs.value, "Deployment").map(|(d, _)| d.to_string())
                });
                if let Some(d) = deployment {
                    self.sync_deployment(&ns, &d, settings);
                }
            }
            _ => {}
        }
    }

    fn sync_deployment(&mut self, ns: &str, name: &str, settings: &SimSettings) {
        let Some(dep) = self.get(&deployments(), ns, name) else {
            return;
        };
        if deleting(&dep.value) {
            return;
        }
        let uid = meta_str(&dep.value, "uid").unwrap_or("").to_string();
        let template = dep.value["spec"]["template"].clone();
        let hash = controllers::pod_template_hash(&template);
        let rs_name = format!("{name}-{hash}");
        if !dep.value["spec"]["paused"].as_bool().unwrap_or(false) {
            self.roll_out(&dep.value, &rs_name, &hash);
        }
        let owned = self.controlled(&replica_sets(), ns, &uid);
        let sum = |field: &str| -> i64 {
            owned
                .iter()
                .map(|rs| rs.value["status"][field].as_i64().unwrap_or(0))
                .sum()
        };
        let new_rs = owned
            .iter()
            .find(|rs| meta_str(&rs.value, "name") == Some(&rs_name));
        if let Some(rs) = new_rs {
            self.note_revision(ns, name, revision(&rs.value));
        }
        let settled = new_rs.is_some_and(|rs| {
            let rs_uid = meta_str(&rs.value, "uid").unwrap_or("");
            let pods = self.controlled(&pods(), ns, rs_uid);
            pods.len() as i64 == replicas(&rs.value)
                && pods.iter().all(|p| {
                    p.value["status"]["phase"]
                        .as_str()
                        .is_some_and(|ph| ph != "Pending")
                })
        });
        let rollout = Rollout {
            new_replica_set: rs_name.clone(),
            replicas: sum("replicas"),
            updated: new_rs.map_or(0, |rs| rs.value["status"]["replicas"].as_i64().unwrap_or(0)),
            ready: sum("readyReplicas"),
            available: sum("availableReplicas"),
            settled,
        };
        let status = controllers::deployment_status(&dep.value, &rollout, settings);
        let generation = dep.value["metadata"]["generation"].as_i64().unwrap_or(1);
        self.set_status(&deployments(), ns, name, &uid, generation, status);
    }

    /// Marks the Deployment with its current revision, as the real controller does.
    fn note_revision(&mut self, ns: &str, name: &str, current: i64) {
        let Some(dep) = self.get(&deployments(), ns, name) else {
            return;
        };
        let want = current.to_string();
        if current == 0
            || dep.value["metadata"]["annotations"][REVISION_ANNOTATION].as_str() == Some(&want)
        {
            return;
        }
        let Some(rt) = self.resource("apps", "deployments") else {
            return;
        };
        let mut v = dep.value.clone();
        if !v["metadata"]["annotations"].is_object() {
            v["metadata"]["annotations"] = json!({});
        }
        v["metadata"]["annotations"][REVISION_ANNOTATION] = json!(want);
        self.write_child(&rt, &dep, v);
    }

    /// Makes the template's ReplicaSet run all replicas, scales the others to 0, trims history.
    fn roll_out(&mut self, dep: &Value, rs_name: &str, hash: &str) {
        let Some(rt) = self.resource("apps", "replicasets") else {
            return;
        };
        let ns = meta_str(dep, "namespace").unwrap_or("").to_string();
        let uid = meta_str(dep, "uid").unwrap_or("");
        let owned = self.controlled(&replica_sets(), &ns, uid);
        let want = replicas(dep);
        let annotations = sandbox_annotations(dep);
        let newest_other = owned
            .iter()
            .filter(|rs| meta_str(&rs.value, "name") != Some(rs_name))
            .map(|rs| revision(&rs.value))
            .max()
            .unwrap_or(0);
        match owned
            .iter()
            .find(|rs| meta_str(&rs.value, "name") == Some(rs_name))
        {
            None => {
                let rs = new_replica_set(dep, rs_name, hash, newest_other + 1, &annotations);
                if let Err(e) = self.op_create(&rt, Some(&ns), rs, &opts()) {
                    tracing::debug!(error = %e.message, "sandbox cannot create a ReplicaSet");
                }
            }
            Some(rs) => {
                let mut v = rs.value.clone();
                let mut changed = sync_sandbox_annotations(&mut v, &annotations);
                if replicas(&v) != want || v["spec"]["replicas"].is_null() {
                    v["spec"]["replicas"] = json!(want);
                    changed = true;
                }
                if revision(&v) <= newest_other {
                    v["metadata"]["annotations"][REVISION_ANNOTATION] =
                        json!((newest_other + 1).to_string());
                    changed = true;
                }
                if changed {
                    self.write_child(&rt, rs, v);
                }
            }
        }
        let mut old: Vec<Arc<Stored>> = owned
            .into_iter()
            .filter(|rs| meta_str(&rs.value, "name") != Some(rs_name))
            .collect();
        for rs in &old {
            if rs.value["spec"]["replicas"].as_i64() != Some(0) {
                let mut v = rs.value.clone();
                v["spec"]["replicas"] = json!(0);
                self.write_child(&rt, rs, v);
            }
        }
        let limit = dep["spec"]["revisionHistoryLimit"]
            .as_i64()
            .filter(|l| *l >= 0)
            .unwrap_or(10) as usize;
        if old.len() > limit {
            old.sort_by_key(|rs| revision(&rs.value));
            for rs in &old[..old.len() - limit] {
                let name = meta_str(&rs.value, "name").unwrap_or("").to_string();
                let _ = self.op_delete(&rt, Some(&ns), &name, &DeleteOpts::default());
            }
        }
    }

    /// An update by the controller; failures (a concurrent delete) just wait for the next event.
    fn write_child(&mut self, rt: &ResourceType, old: &Arc<Stored>, new: Value) {
        if let Err(e) = self.finish_write(rt, old, new, false, &opts(), false) {
            tracing::debug!(error = %e.message, "sandbox controller write failed");
        }
    }

    fn sync_replica_set(&mut self, ns: &str, name: &str) {
        let Some(rs) = self.get(&replica_sets(), ns, name) else {
            return;
        };
        if deleting(&rs.value) {
            return;
        }
        let Some(rt) = self.resource("", "pods") else {
            return;
        };
        let uid = meta_str(&rs.value, "uid").unwrap_or("").to_string();
        let want = replicas(&rs.value);
        let annotations = sandbox_annotations(&rs.value);
        let mut live: Vec<Arc<Stored>> = self
            .controlled(&pods(), ns, &uid)
            .into_iter()
            .filter(|p| !deleting(&p.value))
            .collect();
        for _ in (live.len() as i64)..want {
            let pod = new_pod(&rs.value, &annotations);
            if let Err(e) = self.op_create(&rt, Some(ns), pod, &opts()) {
                tracing::debug!(error = %e.message, "sandbox cannot create a Pod");
                break;
            }
        }
        if live.len() as i64 > want {
            // Like the real controller: unready Pods go first, then the newest.
            live.sort_by_key(|p| {
                (
                    controllers::pod_is_ready(&p.value),
                    std::cmp::Reverse(meta_str(&p.value, "creationTimestamp").map(str::to_string)),
                )
            });
            let surplus = live.len() - want as usize;
            for p in live.drain(..surplus) {
                let pname = meta_str(&p.value, "name").unwrap_or("").to_string();
                let _ = self.op_delete(&rt, Some(ns), &pname, &DeleteOpts::default());
            }
        }
        for p in &live {
            let mut v = p.value.clone();
            if sync_sandbox_annotations(&mut v, &annotations) {
                self.write_child(&rt, p, v);
            }
        }
        let current = self.controlled(&pods(), ns, &uid);
        let pod_values: Vec<&Value> = current
            .iter()
            .filter(|p| !deleting(&p.value))
            .map(|p| &p.value)
            .collect();
        let status = controllers::replica_set_status(&rs.value, &pod_values);
        let generation = rs.value["metadata"]["generation"].as_i64().unwrap_or(1);
        self.set_status(&replica_sets(), ns, name, &uid, generation, status);
    }
}

impl Store {
    /// StatefulSet: Pods `<name>-0..N-1` at the current revision (replaced all at once).
    fn sync_stateful_set(&mut self, ns: &str, name: &str) {
        let Some(sts) = self.get(&TypeKey::new("apps", "statefulsets"), ns, name) else {
            return;
        };
        let Some(rt) = self.resource("", "pods") else {
            return;
        };
        if deleting(&sts.value) {
            return;
        }
        let sts = &sts.value;
        let uid = meta_str(sts, "uid").unwrap_or("").to_string();
        let template = &sts["spec"]["template"];
        let revision = format!("{name}-{}", controllers::pod_template_hash(template));
        let want = replicas(sts);
        let annotations = sandbox_annotations(sts);
        for pod in self.controlled(&pods(), ns, &uid) {
            let pname = meta_str(&pod.value, "name").unwrap_or("").to_string();
            let ordinal = pname
                .strip_prefix(&format!("{name}-"))
                .and_then(|o| o.parse::<i64>().ok());
            let current = pod.value["metadata"]["labels"][STS_REVISION_LABEL].as_str()
                == Some(revision.as_str())
                && sandbox_annotations(&pod.value) == annotations;
            let keep = ordinal.is_some_and(|o| o < want) && current;
            if !keep && !deleting(&pod.value) {
                let _ = self.op_delete(&rt, Some(ns), &pname, &DeleteOpts::default());
            }
        }
        for ordinal in 0..want {
            let pname = format!("{name}-{ordinal}");
            if self.get(&pods(), ns, &pname).is_some() {
                continue;
            }
            let mut pod = pod_from_template(sts, "StatefulSet", &annotations);
            let meta = &mut pod["metadata"];
            if let Some(m) = meta.as_object_mut() {
                m.remove("generateName");
            }
            meta["name"] = json!(pname);
            if !meta["labels"].is_object() {
                meta["labels"] = json!({});
            }
            meta["labels"][STS_REVISION_LABEL] = json!(revision);
            meta["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pname);
            meta["labels"]["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
            pod["spec"]["hostname"] = json!(pname);
            if let Some(service) = sts["spec"]["serviceName"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                pod["spec"]["subdomain"] = json!(service);
            }
            if let Err(e) = self.op_create(&rt, Some(ns), pod, &opts()) {
                tracing::debug!(error = %e.message, "sandbox cannot create a StatefulSet Pod");
                break;
            }
        }
    }

    /// Job: one Pod `<job>-<5 chars>` while the Job runs (its status stays simulated).
    fn sync_job(&mut self, ns: &str, name: &str) {
        let Some(job) = self.get(&TypeKey::new("batch", "jobs"), ns, name) else {
            return;
        };
        let Some(rt) = self.resource("", "pods") else {
            return;
        };
        let job = &job.value;
        let suspended = job["spec"]["suspend"].as_bool().unwrap_or(false);
        let uid = meta_str(job, "uid").unwrap_or("").to_string();
        if deleting(job) || suspended || !self.controlled(&pods(), ns, &uid).is_empty() {
            return;
        }
        let mut pod = pod_from_template(job, "Job", &sandbox_annotations(job));
        let labels = &mut pod["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid.as_str()),
            ("batch.kubernetes.io/job-name", name),
            ("controller-uid", uid.as_str()),
            ("job-name", name),
        ] {
            labels[k] = json!(v);
        }
        if let Err(e) = self.op_create(&rt, Some(ns), pod, &opts()) {
            tracing::debug!(error = %e.message, "sandbox cannot create a Job Pod");
        }
    }
}

/// The ReplicaSet a Deployment runs for its current template.
fn new_replica_set(
    dep: &Value,
    name: &str,
    hash: &str,
    revision: i64,
    sandbox: &Map<String, Value>,
) -> Value {
    let spec = &dep["spec"];
    let mut template = spec["template"].clone();
    if !template.is_object() {
        template = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = spec["selector"].clone();
    if !selector.is_object() {
        selector = json!({});
    }
    if !selector["matchLabels"].is_object() {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let want = replicas(dep);
    let mut annotations = json!({
        "deployment.kubernetes.io/desired-replicas": want.to_string(),
        "deployment.kubernetes.io/max-replicas": (want + (want + 3) / 4).to_string(),
        REVISION_ANNOTATION: revision.to_string(),
    });
    if let Some(a) = annotations.as_object_mut() {
        a.extend(sandbox.clone());
    }
    let mut rs_spec = json!({
        "replicas": want,
        "selector": selector,
        "template": template.clone(),
    });
    if let Some(min_ready) = spec.get("minReadySeconds").filter(|v| !v.is_null()) {
        rs_spec["minReadySeconds"] = min_ready.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": dep["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": owner_reference(dep, "Deployment"),
        },
        "spec": rs_spec,
    })
}

/// A Pod from a ReplicaSet's template.
fn new_pod(rs: &Value, sandbox: &Map<String, Value>) -> Value {
    pod_from_template(rs, "ReplicaSet", sandbox)
}

/// A Pod from the owner's `spec.template`, named `<owner>-<5 chars>`.
fn pod_from_template(owner: &Value, kind: &str, sandbox: &Map<String, Value>) -> Value {
    let template = &owner["spec"]["template"];
    let mut annotations = template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.extend(sandbox.clone());
    let spec = if template["spec"].is_object() {
        template["spec"].clone()
    } else {
        json!({})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", owner["metadata"]["name"].as_str().unwrap_or("")),
            "namespace": owner["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": owner_reference(owner, kind),
        },
        "spec": spec,
    })
}
