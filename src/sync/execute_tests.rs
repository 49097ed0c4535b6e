//! The engine's steps against an in-memory cluster: waves, hooks, failures, prunes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::execute::{Progress, Settings, TaskRecord, TaskStatus, step};
use super::options::{AppOptions, Propagation};
use super::plan::{PlanInput, Task, plan};
use super::target::{ApplyMode, Target};
use super::{Compared, SyncState};
use crate::cluster::resource::ObjectId;
use crate::cluster::{ClusterError, ResourceKey};
use crate::health::{Health, HealthStatus};

/// Objects by id, and every write in order.
#[derive(Default)]
struct Fake {
    objects: Mutex<BTreeMap<ObjectId, Value>>,
    log: Mutex<Vec<String>>,
}

/// Health in these tests comes from the annotation `test/health` of the live object.
fn health(obj: &Value) -> Option<Health> {
    let h = obj
        .pointer("/metadata/annotations/test~1health")?
        .as_str()?;
    Some(match h {
        "Healthy" => Health::healthy(),
        "Degraded" => Health::degraded("broken"),
        _ => Health::progressing("starting"),
    })
}

impl Fake {
    fn write(&self, verb: &str, key: &ResourceKey, obj: &Value) {
        self.log
            .lock()
            .expect("log")
            .push(format!("{verb} {}", key.name));
        self.objects
            .lock()
            .expect("objects")
            .insert(key.object_id(), obj.clone());
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    fn set_health(&self, name: &str, h: &str) {
        let mut objects = self.objects.lock().expect("objects");
        for (id, obj) in objects.iter_mut() {
            if id.3 == name || (name.ends_with('-') && id.3.starts_with(name)) {
                obj["metadata"]["annotations"]["test/health"] = json!(h);
            }
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.objects
            .lock()
            .expect("objects")
            .keys()
            .any(|id| id.3 == name)
    }

    fn names_like(&self, prefix: &str) -> Vec<String> {
        self.objects
            .lock()
            .expect("objects")
            .keys()
            .filter(|id| id.3.starts_with(prefix))
            .map(|id| id.3.clone())
            .collect()
    }
}

impl Target for Fake {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Value>, ClusterError> {
        Ok(self
            .objects
            .lock()
            .expect("objects")
            .get(&key.object_id())
            .cloned())
    }

    async fn apply(&self, obj: &Value, mode: ApplyMode) -> Result<Value, ClusterError> {
        let key = ResourceKey::of(obj).ok_or(ClusterError::BadObject)?;
        if obj.pointer("/metadata/annotations/test~1refuse").is_some() {
            return Err(ClusterError::Api(format!("{key} refused")));
        }
        // An existing object marked so refuses changes, as an immutable field does.
        if self.exists(&key.name)
            && obj
                .pointer("/metadata/annotations/test~1immutable")
                .is_some()
        {
            return Err(ClusterError::Api(format!("{key}: field is immutable")));
        }
        if !mode.dry_run {
            self.write("apply", &key, obj);
        }
        Ok(obj.clone())
    }

    async fn create(&self, obj: &Value) -> Result<Value, ClusterError> {
        let key = ResourceKey::of(obj).ok_or(ClusterError::BadObject)?;
        self.write("create", &key, obj);
        Ok(obj.clone())
    }

    async fn replace(&self, obj: &Value) -> Result<Value, ClusterError> {
        let key = ResourceKey::of(obj).ok_or(ClusterError::BadObject)?;
        self.write("replace", &key, obj);
        Ok(obj.clone())
    }

    async fn delete(&self, key: &ResourceKey, _: Propagation) -> Result<(), ClusterError> {
        self.log
            .lock()
            .expect("log")
            .push(format!("delete {}", key.name));
        self.objects
            .lock()
            .expect("objects")
            .remove(&key.object_id());
        Ok(())
    }
}

fn obj(kind: &str, name: &str, annotations: Value) -> Value {
    let api = if kind == "Job" { "batch/v1" } else { "v1" };
    json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "d", "annotations": annotations}})
}

fn desired(o: Value) -> Compared {
    Compared {
        key: ResourceKey::of(&o).expect("key"),
        desired: Some(o),
        live: None,
        state: SyncState::OutOfSync,
        requires_pruning: false,
        message: None,
        dry_run_ok: false,
    }
}

fn prune(o: Value) -> Compared {
    Compared {
        key: ResourceKey::of(&o).expect("key"),
        desired: None,
        live: Some(o),
        state: SyncState::OutOfSync,
        requires_pruning: true,
        message: None,
        dry_run_ok: false,
    }
}

fn tasks(compared: &[Compared], hooks: &[Value]) -> Vec<Task> {
    let options = AppOptions::default();
    plan(&PlanInput {
        compared,
        hooks,
        options: &options,
        namespace: None,
        selected: None,
    })
}

fn settings(prune: bool) -> Settings<'static> {
    Settings {
        app: "d/app",
        prune,
        dry_run: false,
        propagation: Propagation::Foreground,
        health: &health,
        terminate: false,
    }
}

fn record<'a>(records: &'a [TaskRecord], name: &str) -> &'a TaskRecord {
    records
        .iter()
        .find(|r| r.key.name.starts_with(name))
        .expect("record")
}

#[tokio::test]
async fn a_wave_starts_only_when_the_previous_one_is_healthy() {
    let fake = Fake::default();
    let c = [
        desired(obj(
            "Service",
            "first",
            json!({"test/health": "Progressing"}),
        )),
        desired(obj(
            "Service",
            "second",
            json!({"argocd.argoproj.io/sync-wave": "1", "test/health": "Healthy"}),
        )),
    ];
    let t = tasks(&c, &[]);
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(
        matches!(p, Progress::Running(ref m) if m.contains("first")),
        "{p:?}"
    );
    assert_eq!(fake.log(), ["apply first"], "wave 1 waits for wave 0");
    // Still progressing: another step changes nothing.
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(matches!(p, Progress::Running(_)));
    assert_eq!(fake.log(), ["apply first"]);
    fake.set_health("first", "Healthy");
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert_eq!(
        p,
        Progress::Succeeded("successfully synced (all tasks run)".into())
    );
    assert_eq!(fake.log(), ["apply first", "apply second"]);
}

#[tokio::test]
async fn a_degraded_wave_stops_the_sync_runs_sync_fail_hooks_and_prunes_nothing() {
    let fake = Fake::default();
    let c = [
        desired(obj("Service", "bad", json!({"test/health": "Degraded"}))),
        desired(obj(
            "Service",
            "later",
            json!({"argocd.argoproj.io/sync-wave": "1"}),
        )),
        prune(obj("ConfigMap", "old", json!({}))),
    ];
    fake.objects
        .lock()
        .expect("o")
        .insert(c[2].key.object_id(), c[2].live.clone().expect("live"));
    let hooks = [obj(
        "ConfigMap",
        "on-fail",
        json!({"argocd.argoproj.io/hook": "SyncFail"}),
    )];
    let t = tasks(&c, &hooks);
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(true)).await;
    assert!(
        matches!(p, Progress::Failed(ref m) if m.contains("Degraded")),
        "{p:?}"
    );
    assert_eq!(fake.log(), ["apply bad", "apply on-fail"]);
    assert!(fake.exists("old"), "a failed sync never prunes");
    assert!(!fake.exists("later"));
    assert_eq!(record(&records, "bad").status, TaskStatus::SyncFailed);
    assert_eq!(record(&records, "later").status, TaskStatus::Pending);
}

#[tokio::test]
async fn a_failing_pre_sync_hook_creates_nothing_and_hooks_are_deleted_by_policy() {
    let fake = Fake::default();
    let c = [desired(obj("Service", "web", json!({})))];
    let hooks = [obj(
        "Job",
        "migrate",
        json!({"argocd.argoproj.io/hook": "PreSync",
            "argocd.argoproj.io/hook-delete-policy": "HookFailed", "test/health": "Progressing"}),
    )];
    let t = tasks(&c, &hooks);
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(
        matches!(p, Progress::Running(ref m) if m.contains("migrate")),
        "{p:?}"
    );
    assert_eq!(record(&records, "migrate").status, TaskStatus::Running);
    fake.set_health("migrate", "Degraded");
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(
        matches!(p, Progress::Failed(ref m) if m.contains("migrate")),
        "{p:?}"
    );
    assert!(!fake.exists("web"), "nothing of the Sync phase was applied");
    assert!(
        !fake.exists("migrate"),
        "HookFailed deletes the failed hook"
    );
}

#[tokio::test]
async fn generate_name_hooks_get_a_new_name_each_sync_and_hook_succeeded_deletes_them() {
    let fake = Fake::default();
    let c = [desired(obj(
        "Service",
        "web",
        json!({"test/health": "Healthy"}),
    ))];
    let hook = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "smoke-",
        "namespace": "d", "annotations": {"argocd.argoproj.io/hook": "PostSync",
        "argocd.argoproj.io/hook-delete-policy": "HookSucceeded", "test/health": "Progressing"}}});
    let t = tasks(&c, std::slice::from_ref(&hook));
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(matches!(p, Progress::Running(_)), "{p:?}");
    let created = fake.names_like("smoke-");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].len(), "smoke-".len() + 5);
    assert_eq!(
        record(&records, "smoke-").key.name,
        created[0],
        "the name is kept for later steps"
    );
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(matches!(p, Progress::Running(_)), "still running: {p:?}");
    assert_eq!(
        fake.names_like("smoke-"),
        created,
        "no second hook while the first runs"
    );
    fake.set_health("smoke-", "Healthy");
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(matches!(p, Progress::Succeeded(_)), "{p:?}");
    assert!(
        fake.names_like("smoke-").is_empty(),
        "HookSucceeded deleted it"
    );
    // The next sync creates a hook with another name.
    let mut again = Vec::new();
    step(&fake, &t, &mut again, &settings(false)).await;
    let second = fake.names_like("smoke-");
    assert_eq!(second.len(), 1);
    assert_ne!(second, created);
}

#[tokio::test]
async fn before_hook_creation_replaces_the_previous_named_hook() {
    let fake = Fake::default();
    let hook = obj(
        "Job",
        "migrate",
        json!({"argocd.argoproj.io/hook": "PreSync", "test/health": "Healthy"}),
    );
    fake.objects
        .lock()
        .expect("o")
        .insert(ResourceKey::of(&hook).expect("k").object_id(), hook.clone());
    let t = tasks(&[], std::slice::from_ref(&hook));
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert!(matches!(p, Progress::Succeeded(_)), "{p:?}");
    assert_eq!(fake.log(), ["delete migrate", "apply migrate"]);
    assert!(
        fake.exists("migrate"),
        "the default policy keeps the hook after the sync"
    );
}

#[tokio::test]
async fn prunes_run_in_reverse_order_after_the_applies_and_respect_prune_false() {
    let fake = Fake::default();
    let c = [
        desired(obj("Service", "web", json!({}))),
        prune(obj("ConfigMap", "w0", json!({}))),
        prune(obj(
            "Service",
            "w1",
            json!({"argocd.argoproj.io/sync-wave": "1"}),
        )),
        prune(obj(
            "ConfigMap",
            "keep",
            json!({"argocd.argoproj.io/sync-options": "Prune=false"}),
        )),
    ];
    let t = tasks(&c, &[]);
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(true)).await;
    assert!(matches!(p, Progress::Succeeded(_)), "{p:?}");
    assert_eq!(fake.log(), ["apply web", "delete w1", "delete w0"]);
    assert_eq!(record(&records, "keep").status, TaskStatus::PruneSkipped);
    let mut records = Vec::new();
    let fake = Fake::default();
    step(&fake, &t, &mut records, &settings(false)).await;
    assert_eq!(fake.log(), ["apply web"], "prune off deletes nothing");
    assert_eq!(record(&records, "w0").status, TaskStatus::PruneSkipped);
}

#[tokio::test]
async fn a_refused_dry_run_applies_nothing_and_a_dry_run_sync_writes_nothing() {
    let fake = Fake::default();
    let c = [
        desired(obj("Service", "fine", json!({}))),
        desired(obj("Service", "refused", json!({"test/refuse": "x"}))),
    ];
    let t = tasks(&c, &[]);
    let mut records = Vec::new();
    let p = step(&fake, &t, &mut records, &settings(false)).await;
    assert_eq!(
        p,
        Progress::Failed("one or more objects failed to apply (dry run)".into())
    );
    assert!(fake.log().is_empty());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key.name, "refused");

    let c = [desired(obj("Service", "fine", json!({})))];
    let t = tasks(&c, &[]);
    let mut records = Vec::new();
    let mut s = settings(true);
    s.dry_run = true;
    let p = step(&fake, &t, &mut records, &s).await;
    assert!(
        matches!(p, Progress::Succeeded(ref m) if m.contains("dry run")),
        "{p:?}"
    );
    assert!(fake.log().is_empty());
}

#[tokio::test]
async fn terminate_deletes_running_hooks_and_fails() {
    let fake = Fake::default();
    let hooks = [obj(
        "Job",
        "slow",
        json!({"argocd.argoproj.io/hook": "PreSync", "test/health": "Progressing"}),
    )];
    let c = [desired(obj("Service", "web", json!({})))];
    let t = tasks(&c, &hooks);
    let mut records = Vec::new();
    step(&fake, &t, &mut records, &settings(false)).await;
    assert!(fake.exists("slow"));
    let mut s = settings(false);
    s.terminate = true;
    let p = step(&fake, &t, &mut records, &s).await;
    assert_eq!(p, Progress::Failed("operation terminated".into()));
    assert!(!fake.exists("slow") && !fake.exists("web"));
    let _ = HealthStatus::Healthy;
}

#[tokio::test]
async fn replace_and_force_create_replace_or_recreate_as_asked() {
    let fake = Fake::default();
    let existing = |name: &str, options: &str| {
        let o = obj(
            "Service",
            name,
            json!({"argocd.argoproj.io/sync-options": options}),
        );
        fake.objects
            .lock()
            .expect("o")
            .insert(ResourceKey::of(&o).expect("k").object_id(), o.clone());
        let mut c = desired(o.clone());
        c.live = Some(o);
        c
    };
    let c = [
        existing("replaced", "Replace=true"),
        existing("recreated", "Replace=true,Force=true"),
        desired(obj(
            "Service",
            "new",
            json!({"argocd.argoproj.io/sync-options": "Replace=true"}),
        )),
    ];
    let mut records = Vec::new();
    let p = step(&fake, &tasks(&c, &[]), &mut records, &settings(false)).await;
    assert!(matches!(p, Progress::Succeeded(_)), "{p:?}");
    assert_eq!(
        fake.log(),
        [
            "create new",
            "delete recreated",
            "create recreated",
            "replace replaced"
        ]
    );

    // Force alone re-creates only when the server refuses a change as immutable.
    let fake = Fake::default();
    let mut immutable = obj("Job", "migrate", json!({"test/immutable": "x"}));
    fake.objects.lock().expect("o").insert(
        ResourceKey::of(&immutable).expect("k").object_id(),
        immutable.clone(),
    );
    let mut records = Vec::new();
    let mut c = desired(immutable.clone());
    c.live = Some(immutable.clone());
    c.dry_run_ok = true;
    let p = step(
        &fake,
        &tasks(std::slice::from_ref(&c), &[]),
        &mut records,
        &settings(false),
    )
    .await;
    assert!(
        matches!(p, Progress::Failed(ref m) if m.contains("immutable")),
        "without Force: {p:?}"
    );
    immutable["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] = json!("Force=true");
    let mut c = desired(immutable.clone());
    c.live = Some(immutable);
    c.dry_run_ok = true;
    let mut records = Vec::new();
    let p = step(
        &fake,
        &tasks(std::slice::from_ref(&c), &[]),
        &mut records,
        &settings(false),
    )
    .await;
    assert!(matches!(p, Progress::Succeeded(_)), "with Force: {p:?}");
    assert_eq!(fake.log(), ["delete migrate", "create migrate"]);
}
