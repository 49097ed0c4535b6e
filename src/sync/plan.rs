//! The plan of a sync: every task (apply, prune, hook, namespace) with its phase and wave, in the
//! order Argo CD runs them. Pure: the same comparison always gives the same plan.
//!
//! Order: phase (PreSync, Sync, PostSync, SyncFail), wave, then Helm's kind order, then name.
//! A Namespace moves to the phase and wave of its first member, and a CRD to those of its first
//! instance, so neither is ever created after something that needs it. Prunes run after the
//! applies of the last Sync wave, in reverse order; `PruneLast` prunes run one wave later, once
//! everything else is healthy.

use std::collections::HashSet;

use serde_json::Value;

use super::Compared;
use super::hooks::{self, DeletePolicy, Phase, Role};
use super::options::{AppOptions, ObjectOptions, object_options};
use super::order::kind_rank;
use crate::cluster::ResourceKey;
use crate::cluster::resource::ObjectId;

/// What a task does.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// Apply a desired resource.
    Apply,
    /// Delete a tracked object that left Git.
    Prune,
    /// Create a hook and wait for it to complete.
    Hook { delete_policies: Vec<DeletePolicy> },
    /// Create the destination namespace (`CreateNamespace=true`).
    Namespace,
}

/// One step of a sync.
#[derive(Debug, Clone)]
pub struct Task {
    pub phase: Phase,
    pub wave: i64,
    pub kind: TaskKind,
    /// The object; for a `generateName` hook the name is empty until the sync names it.
    pub key: ResourceKey,
    /// `metadata.generateName` of a hook that has no name.
    pub generate_name: Option<String>,
    /// What to apply (None for a prune).
    pub desired: Option<Value>,
    pub live: Option<Value>,
    /// Live already equals desired (for ApplyOutOfSyncOnly and messages).
    pub in_sync: bool,
    /// The comparison's dry-run of exactly this desired object succeeded, so the sync need
    /// not dry-run it again.
    pub dry_run_ok: bool,
    pub options: ObjectOptions,
}

impl Task {
    /// Whether this task is a hook.
    pub fn is_hook(&self) -> bool {
        matches!(self.kind, TaskKind::Hook { .. })
    }
}

/// What the plan is made from.
pub struct PlanInput<'a> {
    /// Resources as compared (hooks excluded).
    pub compared: &'a [Compared],
    /// Desired hook objects (named, or with only `generateName`).
    pub hooks: &'a [Value],
    pub options: &'a AppOptions,
    /// The destination namespace, created first when `CreateNamespace=true`.
    pub namespace: Option<Value>,
    /// Selective sync: only these objects, and no hooks.
    pub selected: Option<&'a HashSet<ObjectId>>,
}

/// The ordered tasks of a sync.
pub fn plan(input: &PlanInput<'_>) -> Vec<Task> {
    let mut tasks: Vec<Task> = Vec::new();
    let selected = |key: &ResourceKey| input.selected.is_none_or(|s| s.contains(&key.object_id()));
    for c in input.compared {
        let Some(desired) = &c.desired else { continue };
        if !selected(&c.key) || (input.options.apply_out_of_sync_only && c.in_sync()) {
            continue;
        }
        tasks.push(Task {
            phase: Phase::Sync,
            wave: hooks::wave_of(desired),
            kind: TaskKind::Apply,
            key: c.key.clone(),
            generate_name: None,
            desired: Some(desired.clone()),
            live: c.live.clone(),
            in_sync: c.in_sync(),
            dry_run_ok: c.dry_run_ok,
            options: object_options(input.options, desired),
        });
    }
    if input.selected.is_none() {
        for hook in input.hooks {
            let Role::Hook {
                phases,
                delete_policies,
            } = hooks::role_of(hook)
            else {
                continue;
            };
            let Some(key) = super::prepare::key_or_generated(hook) else {
                continue;
            };
            let generate_name = key.name.is_empty().then(|| {
                hook.pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            });
            for phase in phases {
                tasks.push(Task {
                    phase,
                    wave: hooks::wave_of(hook),
                    kind: TaskKind::Hook {
                        delete_policies: delete_policies.clone(),
                    },
                    key: key.clone(),
                    generate_name: generate_name.clone(),
                    desired: Some(hook.clone()),
                    live: None,
                    in_sync: false,
                    dry_run_ok: false,
                    options: object_options(input.options, hook),
                });
            }
        }
    }
    sort(&mut tasks);
    move_dependencies_first(&mut tasks);
    if let Some(ns) = &input.namespace
        && let Some(key) = ResourceKey::of(ns)
    {
        let wave = tasks.first().map_or(0, |t| t.wave.min(0)) - 1;
        tasks.insert(
            0,
            Task {
                phase: Phase::PreSync,
                wave,
                kind: TaskKind::Namespace,
                key,
                generate_name: None,
                desired: Some(ns.clone()),
                live: None,
                in_sync: false,
                dry_run_ok: false,
                options: ObjectOptions::default(),
            },
        );
    }
    add_prunes(&mut tasks, input);
    tasks
}

fn order_key(t: &Task) -> (Phase, i64, usize, String, String, String) {
    (
        t.phase,
        t.wave,
        kind_rank(&t.key.kind),
        t.key.kind.clone(),
        t.key.namespace.clone(),
        t.key.name.clone(),
    )
}

fn sort(tasks: &mut [Task]) {
    tasks.sort_by_key(order_key);
}

/// Each Namespace and CRD takes the phase and wave of its first dependant when that comes
/// earlier, then the whole plan is sorted again.
fn move_dependencies_first(tasks: &mut [Task]) {
    let mut moves: Vec<(usize, Phase, i64)> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        if t.kind != TaskKind::Apply {
            continue;
        }
        let depends = |other: &Task| -> bool {
            if t.key.kind == "Namespace" && t.key.group.is_empty() {
                return other.key.namespace == t.key.name;
            }
            if t.key.kind == "CustomResourceDefinition" {
                let spec = t.desired.as_ref().and_then(|d| d.get("spec"));
                let group = spec.and_then(|s| s.get("group")).and_then(Value::as_str);
                let kind = spec
                    .and_then(|s| s.pointer("/names/kind"))
                    .and_then(Value::as_str);
                return group == Some(other.key.group.as_str())
                    && kind == Some(other.key.kind.as_str());
            }
            false
        };
        if let Some(first) = tasks.iter().find(|o| depends(o))
            && (first.phase, first.wave) < (t.phase, t.wave)
        {
            moves.push((i, first.phase, first.wave));
        }
    }
    for (i, phase, wave) in moves {
        tasks[i].phase = phase;
        tasks[i].wave = wave;
    }
    sort(tasks);
}

/// Prunes go after the applies of the last Sync wave (reverse order), PruneLast ones a wave later.
fn add_prunes(tasks: &mut Vec<Task>, input: &PlanInput<'_>) {
    let last_sync_wave = tasks
        .iter()
        .filter(|t| t.phase == Phase::Sync)
        .map(|t| t.wave)
        .max()
        .unwrap_or(0);
    let mut prunes: Vec<Task> = input
        .compared
        .iter()
        .filter(|c| c.requires_pruning)
        .filter(|c| {
            input
                .selected
                .is_none_or(|s| s.contains(&c.key.object_id()))
        })
        .map(|c| {
            let live = c.live.clone().unwrap_or(Value::Null);
            let options = object_options(input.options, &live);
            Task {
                phase: Phase::Sync,
                wave: hooks::wave_of(&live),
                kind: TaskKind::Prune,
                key: c.key.clone(),
                generate_name: None,
                desired: None,
                live: c.live.clone(),
                in_sync: false,
                dry_run_ok: true,
                options,
            }
        })
        .collect();
    // Reverse of creation order: the highest wave, and the last kind, goes first.
    prunes.sort_by_key(order_key);
    prunes.reverse();
    for p in &mut prunes {
        p.wave = if p.options.prune_last {
            last_sync_wave + 1
        } else {
            last_sync_wave
        };
    }
    prunes.sort_by_key(|p| p.wave); // stable: keeps the reverse order within a wave
    let at = tasks
        .iter()
        .position(|t| (t.phase, t.wave) > (Phase::Sync, last_sync_wave))
        .unwrap_or(tasks.len());
    let (now, last): (Vec<Task>, Vec<Task>) =
        prunes.into_iter().partition(|p| p.wave == last_sync_wave);
    let tail: Vec<Task> = tasks.drain(at..).collect();
    tasks.extend(now);
    tasks.extend(last);
    tasks.extend(tail);
}

/// The index ranges of consecutive tasks sharing a phase and wave: the steps of a sync.
pub fn groups(tasks: &[Task]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=tasks.len() {
        if i == tasks.len()
            || (tasks[i].phase, tasks[i].wave) != (tasks[start].phase, tasks[start].wave)
        {
            if i > start {
                out.push(start..i);
            }
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::options::app_options;
    use serde_json::json;

    fn obj(kind: &str, name: &str, annotations: Value) -> Value {
        let api = match kind {
            "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            "CustomResourceDefinition" => "apiextensions.k8s.io/v1",
            "Widget" => "example.com/v1",
            _ => "v1",
        };
        let ns = if matches!(kind, "Namespace" | "CustomResourceDefinition") {
            json!(null)
        } else {
            json!("shop")
        };
        json!({"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": ns, "annotations": annotations}})
    }

    fn compared(desired: Value) -> Compared {
        Compared {
            key: ResourceKey::of(&desired).expect("key"),
            desired: Some(desired),
            live: None,
            state: super::super::SyncState::OutOfSync,
            requires_pruning: false,
            message: None,
            dry_run_ok: false,
        }
    }

    fn pruned(live: Value) -> Compared {
        Compared {
            key: ResourceKey::of(&live).expect("key"),
            desired: None,
            live: Some(live),
            state: super::super::SyncState::OutOfSync,
            requires_pruning: true,
            message: None,
            dry_run_ok: false,
        }
    }

    fn names(tasks: &[Task]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| {
                let kind = match t.kind {
                    TaskKind::Apply => "apply",
                    TaskKind::Prune => "prune",
                    TaskKind::Hook { .. } => "hook",
                    TaskKind::Namespace => "ns",
                };
                format!("{}:{}:{kind}:{}", t.phase.as_str(), t.wave, t.key.name)
            })
            .collect()
    }

    fn input<'a>(
        compared: &'a [Compared],
        hooks: &'a [Value],
        options: &'a AppOptions,
    ) -> PlanInput<'a> {
        PlanInput {
            compared,
            hooks,
            options,
            namespace: None,
            selected: None,
        }
    }

    #[test]
    fn phases_then_waves_then_kinds_and_prunes_reversed_after_the_last_wave() {
        let c = [
            compared(obj(
                "Deployment",
                "web",
                json!({"argocd.argoproj.io/sync-wave": "1"}),
            )),
            compared(obj("ConfigMap", "cfg", json!({}))),
            compared(obj("Service", "svc", json!({}))),
            pruned(obj("ConfigMap", "old-0", json!({}))),
            pruned(obj(
                "Deployment",
                "old-1",
                json!({"argocd.argoproj.io/sync-wave": "1"}),
            )),
            pruned(obj(
                "ConfigMap",
                "old-last",
                json!({"argocd.argoproj.io/sync-options": "PruneLast=true"}),
            )),
        ];
        let hooks = [
            obj(
                "Job",
                "migrate",
                json!({"argocd.argoproj.io/hook": "PreSync"}),
            ),
            obj(
                "Job",
                "smoke",
                json!({"argocd.argoproj.io/hook": "PostSync"}),
            ),
            obj(
                "Job",
                "cleanup",
                json!({"argocd.argoproj.io/hook": "SyncFail"}),
            ),
        ];
        let options = AppOptions::default();
        let tasks = plan(&input(&c, &hooks, &options));
        assert_eq!(
            names(&tasks),
            [
                "PreSync:0:hook:migrate",
                "Sync:0:apply:cfg",
                "Sync:0:apply:svc",
                "Sync:1:apply:web",
                "Sync:1:prune:old-1",
                "Sync:1:prune:old-0",
                "Sync:2:prune:old-last",
                "PostSync:0:hook:smoke",
                "SyncFail:0:hook:cleanup",
            ]
        );
        let g = groups(&tasks);
        assert_eq!(g.len(), 6, "{g:?}");
    }

    #[test]
    fn namespaces_and_crds_move_before_their_first_member() {
        let ns = obj(
            "Namespace",
            "shop",
            json!({"argocd.argoproj.io/sync-wave": "5"}),
        );
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com", "annotations": {"argocd.argoproj.io/sync-wave": "3"}},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}}});
        let c = [
            compared(ns),
            compared(crd),
            compared(obj(
                "Widget",
                "w",
                json!({"argocd.argoproj.io/sync-wave": "-1"}),
            )),
        ];
        let options = AppOptions::default();
        let tasks = plan(&input(&c, &[], &options));
        assert_eq!(
            names(&tasks),
            [
                "Sync:-1:apply:shop",
                "Sync:-1:apply:widgets.example.com",
                "Sync:-1:apply:w"
            ]
        );
    }

    #[test]
    fn selective_sync_skips_hooks_and_other_objects_and_out_of_sync_only_skips_synced() {
        let mut synced = compared(obj("ConfigMap", "same", json!({})));
        synced.state = super::super::SyncState::Synced;
        let c = [synced, compared(obj("ConfigMap", "changed", json!({})))];
        let hooks = [obj(
            "Job",
            "migrate",
            json!({"argocd.argoproj.io/hook": "PreSync"}),
        )];
        let only: HashSet<ObjectId> = [c[1].key.object_id()].into();
        let options = AppOptions::default();
        let mut i = input(&c, &hooks, &options);
        i.selected = Some(&only);
        assert_eq!(names(&plan(&i)), ["Sync:0:apply:changed"]);
        let out_of_sync_only = app_options(["ApplyOutOfSyncOnly=true"]);
        let tasks = plan(&input(&c, &hooks, &out_of_sync_only));
        assert_eq!(
            names(&tasks),
            ["PreSync:0:hook:migrate", "Sync:0:apply:changed"]
        );
    }

    #[test]
    fn generate_name_hooks_are_planned_without_a_name_and_helm_weights_order_them() {
        let hook = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "seed-", "namespace": "shop",
                "annotations": {"helm.sh/hook": "post-install", "helm.sh/hook-weight": "-2"}}});
        let options = AppOptions::default();
        let c = [compared(obj(
            "Service",
            "svc",
            json!({"helm.sh/hook-weight": "2"}),
        ))];
        let mut i = input(&c, std::slice::from_ref(&hook), &options);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        i.namespace = Some(ns);
        let tasks = plan(&i);
        assert_eq!(
            names(&tasks),
            [
                "PreSync:-1:ns:shop",
                "Sync:2:apply:svc",
                "PostSync:-2:hook:"
            ]
        );
        assert_eq!(tasks[2].generate_name.as_deref(), Some("seed-"));
    }
}
