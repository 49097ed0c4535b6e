//! Running a planned sync, one step at a time, as gitops-engine's sync context does: each call
//! moves the operation as far as it can without waiting, then says whether it is still running.
//!
//! A step dry-runs everything first (only on the first step), then applies wave after wave. A wave
//! starts only once the previous one is healthy and its hooks completed; the last wave, when it has
//! no hooks, completes the sync at once (a one-wave sync behaves like `kubectl apply`). Any failure
//! stops the sync: nothing later is applied, nothing is pruned, SyncFail hooks run, and the
//! operation fails. The records the caller keeps between steps are the whole state, so a sync
//! survives a restarted worker.

use std::collections::BTreeSet;

use rand::Rng;
use serde_json::Value;
use tracing::{debug, warn};

use super::hooks::{DeletePolicy, Phase};
use super::options::Propagation;
use super::plan::{Task, TaskKind, groups};
use super::target::{ApplyMode, Target};
use crate::cluster::resource::set_tracking_id;
use crate::cluster::{ClusterError, ResourceKey};
use crate::health::{Health, HealthStatus};

/// The state of one task of a running or finished sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Not run yet.
    Pending,
    /// A hook that was created and has not completed.
    Running,
    /// A hook that completed.
    Succeeded,
    /// A hook that failed.
    Failed,
    /// Applied.
    Synced,
    /// Refused by the server (dry run or apply), or degraded while gating a wave.
    SyncFailed,
    Pruned,
    PruneSkipped,
}

impl TaskStatus {
    /// Argo CD's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "Pending",
            TaskStatus::Running => "Running",
            TaskStatus::Succeeded => "Succeeded",
            TaskStatus::Failed => "Failed",
            TaskStatus::Synced => "Synced",
            TaskStatus::SyncFailed => "SyncFailed",
            TaskStatus::Pruned => "Pruned",
            TaskStatus::PruneSkipped => "PruneSkipped",
        }
    }

    /// Parses Argo CD's name.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Pending,
            TaskStatus::Running,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
            TaskStatus::Synced,
            TaskStatus::SyncFailed,
            TaskStatus::Pruned,
            TaskStatus::PruneSkipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    fn done(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded
                | TaskStatus::Synced
                | TaskStatus::Pruned
                | TaskStatus::PruneSkipped
        )
    }

    fn failed(self) -> bool {
        matches!(self, TaskStatus::Failed | TaskStatus::SyncFailed)
    }
}

/// What a sync did to one object, kept between steps.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub phase: Phase,
    pub wave: i64,
    pub hook: bool,
    /// The object; a `generateName` hook carries the name this sync gave it.
    pub key: ResourceKey,
    pub generate_name: Option<String>,
    pub status: TaskStatus,
    pub message: String,
    /// `created`, `configured`, `unchanged`, `pruned` …
    pub action: Option<String>,
}

impl TaskRecord {
    fn matches(&self, task: &Task) -> bool {
        self.phase == task.phase
            && self.hook == task.is_hook()
            && self.key.group == task.key.group
            && self.key.kind == task.key.kind
            && self.key.namespace == task.key.namespace
            && match &task.generate_name {
                Some(g) => self.generate_name.as_deref() == Some(g.as_str()),
                None => self.key.name == task.key.name,
            }
    }
}

/// Where a sync stands after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for health or hooks; call again later.
    Running(String),
    Succeeded(String),
    Failed(String),
}

/// How to run the steps.
pub struct Settings<'a> {
    /// The app key hooks are tracked for.
    pub app: &'a str,
    pub prune: bool,
    pub dry_run: bool,
    pub propagation: Propagation,
    /// Health of a live object (built-in rules plus operator-defined checks).
    pub health: &'a (dyn Fn(&Value) -> Option<Health> + Send + Sync),
    /// Set by a terminate request: running hooks are deleted and the sync fails.
    pub terminate: bool,
}

/// Runs the sync as far as it can go now. `records` is empty on the first step.
pub async fn step<T: Target>(
    target: &T,
    tasks: &[Task],
    records: &mut Vec<TaskRecord>,
    settings: &Settings<'_>,
) -> Progress {
    let main: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.phase != Phase::SyncFail)
        .collect();
    if records.is_empty() {
        if let Some(failed) = dry_run(target, &main, records, settings).await {
            return failed;
        }
        if settings.dry_run {
            return Progress::Succeeded("successfully synced (dry run: nothing applied)".into());
        }
        for t in tasks {
            records.push(new_record(t));
        }
    }
    if settings.terminate {
        return terminate(target, records).await;
    }
    refresh_hooks(target, records, settings).await;
    if let Some(message) = first_failure(records) {
        return fail(target, tasks, records, settings, message).await;
    }
    let main_tasks: Vec<Task> = main.into_iter().cloned().collect();
    let steps = groups(&main_tasks);
    for (n, range) in steps.iter().enumerate() {
        let group = &main_tasks[range.clone()];
        let last = n + 1 == steps.len();
        let has_hooks = group.iter().any(Task::is_hook);
        let mut applied_now = Vec::new();
        for task in group {
            let i = record_of(records, task);
            if records[i].status == TaskStatus::Pending {
                let live = run_task(target, task, &mut records[i], settings).await;
                applied_now.push((i, live));
                if records[i].status.failed() {
                    let message = format!("{}: {}", records[i].key, records[i].message);
                    return fail(target, tasks, records, settings, message).await;
                }
            }
        }
        if last
            && !has_hooks
            && group
                .iter()
                .all(|t| records[record_of(records, t)].status.done())
        {
            break;
        }
        // A wave whose successors started was gated already.
        let successors_started = main_tasks[range.end..]
            .iter()
            .any(|t| records[record_of(records, t)].status != TaskStatus::Pending);
        if successors_started {
            continue;
        }
        // Gate: hooks complete, resources healthy, before the next wave.
        if let Some(waiting) = group.iter().find_map(|t| {
            let r = &records[record_of(records, t)];
            (r.status == TaskStatus::Running).then(|| format!("waiting for hook {}", r.key))
        }) {
            return Progress::Running(waiting);
        }
        for task in group.iter().filter(|t| t.kind == TaskKind::Apply) {
            let i = record_of(records, task);
            let live = match applied_now.iter().find(|(j, _)| *j == i) {
                Some((_, live)) => live.clone(),
                None => target.get(&records[i].key).await.ok().flatten(),
            };
            let Some(live) = live else {
                return Progress::Running(format!("waiting for {} to exist", records[i].key));
            };
            match (settings.health)(&live) {
                Some(h) if h.status == HealthStatus::Degraded => {
                    let message = format!(
                        "{} is Degraded{}",
                        records[i].key,
                        if h.message.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", h.message)
                        }
                    );
                    records[i].status = TaskStatus::SyncFailed;
                    records[i].message = message.clone();
                    return fail(target, tasks, records, settings, message).await;
                }
                Some(h) if !matches!(h.status, HealthStatus::Healthy | HealthStatus::Suspended) => {
                    return Progress::Running(format!(
                        "waiting for {} to become healthy ({})",
                        records[i].key,
                        h.status.as_str()
                    ));
                }
                _ => {}
            }
        }
    }
    delete_hooks_by_policy(target, tasks, records).await;
    Progress::Succeeded("successfully synced (all tasks run)".into())
}

fn new_record(t: &Task) -> TaskRecord {
    let mut key = t.key.clone();
    if let Some(prefix) = &t.generate_name {
        key.name = generated_name(prefix);
    }
    TaskRecord {
        phase: t.phase,
        wave: t.wave,
        hook: t.is_hook(),
        key,
        generate_name: t.generate_name.clone(),
        status: TaskStatus::Pending,
        message: String::new(),
        action: None,
    }
}

/// `prefix` plus five random lowercase letters and digits, as the API server names objects.
fn generated_name(prefix: &str) -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

fn record_of(records: &[TaskRecord], task: &Task) -> usize {
    records
        .iter()
        .position(|r| r.matches(task))
        .unwrap_or(usize::MAX)
}

/// Dry-runs every task that applies something; a refusal fails the sync before anything changes.
async fn dry_run<T: Target>(
    target: &T,
    tasks: &[&Task],
    records: &mut Vec<TaskRecord>,
    settings: &Settings<'_>,
) -> Option<Progress> {
    let created_namespaces: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| {
            t.key.kind == "Namespace" && t.key.group.is_empty() && t.kind != TaskKind::Prune
        })
        .map(|t| t.key.name.as_str())
        .collect();
    let created_kinds: BTreeSet<(String, String)> = tasks
        .iter()
        .filter(|t| t.key.kind == "CustomResourceDefinition" && t.kind == TaskKind::Apply)
        .filter_map(|t| {
            let spec = t.desired.as_ref()?.get("spec")?;
            Some((
                spec.get("group")?.as_str()?.to_owned(),
                spec.pointer("/names/kind")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut failed = false;
    for task in tasks {
        let mut record = new_record(task);
        let skip = task.kind == TaskKind::Prune
            || task.dry_run_ok
            || created_namespaces.contains(task.key.namespace.as_str())
            || created_kinds.contains(&(task.key.group.clone(), task.key.kind.clone()));
        if task.kind == TaskKind::Prune {
            record.status =
                if settings.prune && task.options.prune == super::options::PruneMode::Allowed {
                    TaskStatus::Pruned
                } else {
                    TaskStatus::PruneSkipped
                };
            record.message = "pruned (dry run)".into();
        } else if !skip {
            let Some(obj) = task.desired.as_ref() else {
                continue;
            };
            let obj = named(obj, &record.key);
            let mode = ApplyMode {
                dry_run: true,
                validate: task.options.validate,
            };
            match target.apply(&obj, mode).await {
                Ok(_) => {}
                Err(ClusterError::UnknownKind { .. }) if task.options.skip_dry_run_on_missing => {}
                Err(e) => {
                    failed = true;
                    record.status = TaskStatus::SyncFailed;
                    record.message = e.to_string();
                }
            }
        }
        if settings.dry_run && record.status == TaskStatus::Pending {
            record.status = TaskStatus::Synced;
            record.message = "(dry run)".into();
        }
        if failed || settings.dry_run {
            records.push(record);
        }
    }
    if failed {
        records.retain(|r| r.status == TaskStatus::SyncFailed);
        return Some(Progress::Failed(
            "one or more objects failed to apply (dry run)".into(),
        ));
    }
    None
}

/// `obj` with `metadata.name` set to the record's (a generated name for a `generateName` hook).
fn named(obj: &Value, key: &ResourceKey) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && !meta.contains_key("name")
    {
        meta.remove("generateName");
        meta.insert("name".into(), Value::String(key.name.clone()));
    }
    obj
}

/// Runs one pending task; returns the object as the server stored it, when there is one.
async fn run_task<T: Target>(
    target: &T,
    task: &Task,
    record: &mut TaskRecord,
    settings: &Settings<'_>,
) -> Option<Value> {
    match &task.kind {
        TaskKind::Prune => {
            if !settings.prune {
                record.status = TaskStatus::PruneSkipped;
                record.message = "ignored (requires pruning)".into();
                return None;
            }
            match task.options.prune {
                super::options::PruneMode::Never => {
                    record.status = TaskStatus::PruneSkipped;
                    record.message = "ignored (Prune=false)".into();
                    return None;
                }
                super::options::PruneMode::Confirm => {
                    record.status = TaskStatus::PruneSkipped;
                    record.message =
                        "ignored (Prune=confirm needs a confirmation Capstan cannot take yet)"
                            .into();
                    return None;
                }
                super::options::PruneMode::Allowed => {}
            }
            match target.delete(&task.key, settings.propagation).await {
                Ok(()) => {
                    record.status = TaskStatus::Pruned;
                    record.message = "pruned".into();
                    record.action = Some("pruned".into());
                }
                Err(e) => {
                    record.status = TaskStatus::SyncFailed;
                    record.message = format!("prune failed: {e}");
                }
            }
            None
        }
        TaskKind::Namespace => {
            let exists = matches!(target.get(&task.key).await, Ok(Some(_)));
            if exists
                && task.desired.as_ref().is_none_or(|d| {
                    d.pointer("/metadata/labels").is_none()
                        && d.pointer("/metadata/annotations").is_none()
                })
            {
                record.status = TaskStatus::Synced;
                record.message = format!("namespace {} exists", task.key.name);
                return None;
            }
            apply_resource(target, task, record).await
        }
        TaskKind::Apply => apply_resource(target, task, record).await,
        TaskKind::Hook { delete_policies } => {
            if task.generate_name.is_none()
                && delete_policies.contains(&DeletePolicy::BeforeHookCreation)
                && let Ok(Some(_)) = target.get(&record.key).await
            {
                // The previous run's hook stays until now, for inspection.
                if let Err(e) = target.delete(&record.key, Propagation::Background).await {
                    record.status = TaskStatus::Failed;
                    record.message = format!("cannot delete the previous hook: {e}");
                    return None;
                }
            }
            let Some(desired) = &task.desired else {
                return None;
            };
            let mut obj = named(desired, &record.key);
            set_tracking_id(&mut obj, settings.app);
            let mode = ApplyMode {
                dry_run: false,
                validate: task.options.validate,
            };
            match target.apply(&obj, mode).await {
                Ok(live) => {
                    record.action = Some("created".into());
                    // A hook with no notion of health (a ConfigMap) is done once created.
                    (record.status, record.message) = match (settings.health)(&live) {
                        None => (
                            TaskStatus::Succeeded,
                            "hook created (no health to wait for)".into(),
                        ),
                        Some(h) => {
                            hook_state(h).unwrap_or((TaskStatus::Running, "hook created".into()))
                        }
                    };
                    Some(live)
                }
                Err(e) => {
                    record.status = TaskStatus::Failed;
                    record.message = e.to_string();
                    None
                }
            }
        }
    }
}

/// Applies a resource as its options ask: server-side apply, or create/replace, with force.
async fn apply_resource<T: Target>(
    target: &T,
    task: &Task,
    record: &mut TaskRecord,
) -> Option<Value> {
    let desired = task.desired.as_ref()?;
    let opts = task.options;
    let mode = ApplyMode {
        dry_run: false,
        validate: opts.validate,
    };
    let action = if task.live.is_none() {
        "created"
    } else if task.in_sync {
        "unchanged"
    } else {
        "configured"
    };
    let result = if opts.replace && task.key.kind != "CustomResourceDefinition" {
        replace(target, desired, &task.key, task.live.is_some(), opts.force).await
    } else {
        match target.apply(desired, mode).await {
            Err(e) if opts.force && is_immutable(&e) => {
                debug!(object = %task.key, "re-creating after an immutable-field refusal (Force=true)");
                recreate(target, desired, &task.key).await
            }
            other => other,
        }
    };
    match result {
        Ok(live) => {
            record.status = TaskStatus::Synced;
            record.message = format!("{} {action}", task.key);
            record.action = Some(action.into());
            Some(live)
        }
        Err(e) => {
            record.status = TaskStatus::SyncFailed;
            record.message = e.to_string();
            None
        }
    }
}

async fn replace<T: Target>(
    target: &T,
    desired: &Value,
    key: &ResourceKey,
    exists: bool,
    force: bool,
) -> Result<Value, ClusterError> {
    if !exists {
        return target.create(desired).await;
    }
    if force {
        return recreate(target, desired, key).await;
    }
    target.replace(desired).await
}

async fn recreate<T: Target>(
    target: &T,
    desired: &Value,
    key: &ResourceKey,
) -> Result<Value, ClusterError> {
    target.delete(key, Propagation::Background).await?;
    target.create(desired).await
}

/// Whether the server refused a change to an immutable field (as Flux recognises it).
fn is_immutable(e: &ClusterError) -> bool {
    let text = e.to_string();
    text.contains("immutable") || text.contains("field is immutable")
}

/// Hooks that are running are re-read: Healthy means succeeded, Degraded failed, gone failed.
async fn refresh_hooks<T: Target>(target: &T, records: &mut [TaskRecord], settings: &Settings<'_>) {
    for r in records
        .iter_mut()
        .filter(|r| r.status == TaskStatus::Running)
    {
        match target.get(&r.key).await {
            Ok(Some(live)) => match (settings.health)(&live) {
                None => r.status = TaskStatus::Succeeded,
                Some(h) => match hook_state(h.clone()) {
                    Some((status, message)) => (r.status, r.message) = (status, message),
                    None if !h.message.is_empty() => r.message = h.message,
                    None => {}
                },
            },
            Ok(None) => {
                r.status = TaskStatus::Failed;
                r.message = "hook was deleted before it completed".into();
            }
            Err(e) => warn!(hook = %r.key, error = %e, "cannot read a running hook; will retry"),
        }
    }
}

/// A hook's state from its health: Healthy has completed, Degraded has failed, anything else
/// still runs (None).
fn hook_state(h: Health) -> Option<(TaskStatus, String)> {
    match h.status {
        HealthStatus::Healthy => Some((TaskStatus::Succeeded, or(h.message, "hook completed"))),
        HealthStatus::Degraded => Some((TaskStatus::Failed, or(h.message, "hook failed"))),
        _ => None,
    }
}

fn or(message: String, default: &str) -> String {
    if message.is_empty() {
        default.to_owned()
    } else {
        message
    }
}

fn first_failure(records: &[TaskRecord]) -> Option<String> {
    records
        .iter()
        .find(|r| r.status.failed() && r.phase != Phase::SyncFail)
        .map(|r| format!("{}: {}", r.key, r.message))
}

/// After a failure: run the SyncFail hooks, wait for them, delete hooks by policy, fail.
async fn fail<T: Target>(
    target: &T,
    tasks: &[Task],
    records: &mut [TaskRecord],
    settings: &Settings<'_>,
    message: String,
) -> Progress {
    for task in tasks.iter().filter(|t| t.phase == Phase::SyncFail) {
        let i = record_of(records, task);
        if i < records.len() && records[i].status == TaskStatus::Pending {
            run_task(target, task, &mut records[i], settings).await;
        }
    }
    if records
        .iter()
        .any(|r| r.phase == Phase::SyncFail && r.status == TaskStatus::Running)
    {
        return Progress::Running(format!("running SyncFail hooks after: {message}"));
    }
    delete_hooks_by_policy(target, tasks, records).await;
    Progress::Failed(message)
}

/// Deletes hooks whose policy says so, now that the sync is over.
async fn delete_hooks_by_policy<T: Target>(target: &T, tasks: &[Task], records: &[TaskRecord]) {
    for task in tasks {
        let TaskKind::Hook { delete_policies } = &task.kind else {
            continue;
        };
        let i = record_of(records, task);
        let Some(r) = records.get(i) else { continue };
        let delete = (r.status == TaskStatus::Succeeded
            && delete_policies.contains(&DeletePolicy::HookSucceeded))
            || (r.status == TaskStatus::Failed
                && delete_policies.contains(&DeletePolicy::HookFailed));
        if delete && let Err(e) = target.delete(&r.key, Propagation::Background).await {
            warn!(hook = %r.key, error = %e, "cannot delete a completed hook");
        }
    }
}

/// Terminate: running hooks are deleted and the sync fails.
async fn terminate<T: Target>(target: &T, records: &mut [TaskRecord]) -> Progress {
    for r in records
        .iter_mut()
        .filter(|r| r.status == TaskStatus::Running)
    {
        if let Err(e) = target.delete(&r.key, Propagation::Background).await {
            warn!(hook = %r.key, error = %e, "cannot delete a running hook on terminate");
        }
        r.status = TaskStatus::Failed;
        r.message = "terminated".into();
    }
    Progress::Failed("operation terminated".into())
}
