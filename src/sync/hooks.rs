//! What role a desired object plays in a sync: an ordinary resource, a hook of some phases, or
//! skipped — read from Argo CD's annotations, with Helm's hook annotations mapped onto them.

use serde_json::Value;

/// Argo CD's hook annotation (`PreSync`, `Sync`, `PostSync`, `SyncFail`, `Skip`, comma-separated).
pub const HOOK: &str = "argocd.argoproj.io/hook";
/// Argo CD's hook delete policy annotation.
pub const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
/// Argo CD's sync wave annotation (an integer, default 0).
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// Helm's hook annotation (`pre-install,post-upgrade`, …).
pub const HELM_HOOK: &str = "helm.sh/hook";
/// Helm's hook weight, used as the wave when no sync-wave is given.
pub const HELM_HOOK_WEIGHT: &str = "helm.sh/hook-weight";
/// Helm's hook delete policy annotation.
pub const HELM_HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";

/// The phases of a sync, in the order they run (`SyncFail` only after a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    PreSync,
    Sync,
    PostSync,
    SyncFail,
}

impl Phase {
    /// Argo CD's name of the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreSync => "PreSync",
            Phase::Sync => "Sync",
            Phase::PostSync => "PostSync",
            Phase::SyncFail => "SyncFail",
        }
    }

    /// Parses Argo CD's name of a phase.
    pub fn parse(text: &str) -> Option<Phase> {
        match text {
            "PreSync" => Some(Phase::PreSync),
            "Sync" => Some(Phase::Sync),
            "PostSync" => Some(Phase::PostSync),
            "SyncFail" => Some(Phase::SyncFail),
            _ => None,
        }
    }
}

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletePolicy {
    /// After the hook succeeded.
    HookSucceeded,
    /// After the hook failed.
    HookFailed,
    /// Just before the hook is created again (the default: the last run stays for inspection).
    BeforeHookCreation,
}

/// The role of one desired object in a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An ordinary resource: compared, applied, pruned, counted for health.
    Resource,
    /// A hook: created in its phases, never compared or pruned, not counted for app health.
    /// No phases means a hook of a kind Capstan never runs (Helm `test`, `PreDelete` …).
    Hook {
        phases: Vec<Phase>,
        delete_policies: Vec<DeletePolicy>,
    },
    /// `argocd.argoproj.io/hook: Skip`: neither applied nor counted.
    Skip,
}

impl Role {
    /// Whether the object is a hook (of any phase, or of none Capstan runs).
    pub fn is_hook(&self) -> bool {
        matches!(self, Role::Hook { .. })
    }
}

fn annotation<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?
        .get(name)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The role of `obj`; Argo CD's own hook annotation wins over Helm's.
pub fn role_of(obj: &Value) -> Role {
    if let Some(hook) = annotation(obj, HOOK) {
        if list(hook).any(|h| h == "Skip") {
            return Role::Skip;
        }
        let mut phases: Vec<Phase> = list(hook).filter_map(Phase::parse).collect();
        phases.sort();
        phases.dedup();
        return Role::Hook {
            phases,
            delete_policies: delete_policies(obj),
        };
    }
    if let Some(helm) = annotation(obj, HELM_HOOK) {
        // Helm marks legacy CRDs with this hook type; they are ordinary resources.
        if helm == "crd-install" {
            return Role::Resource;
        }
        let mut phases: Vec<Phase> = list(helm)
            .filter_map(|h| match h {
                "pre-install" | "pre-upgrade" => Some(Phase::PreSync),
                "post-install" | "post-upgrade" => Some(Phase::PostSync),
                _ => None,
            })
            .collect();
        phases.sort();
        phases.dedup();
        return Role::Hook {
            phases,
            delete_policies: delete_policies(obj),
        };
    }
    Role::Resource
}

/// The hook's delete policies: Argo CD's annotation, else Helm's, else BeforeHookCreation.
fn delete_policies(obj: &Value) -> Vec<DeletePolicy> {
    let argo = annotation(obj, HOOK_DELETE_POLICY).map(|p| {
        list(p)
            .filter_map(|p| match p {
                "HookSucceeded" => Some(DeletePolicy::HookSucceeded),
                "HookFailed" => Some(DeletePolicy::HookFailed),
                "BeforeHookCreation" => Some(DeletePolicy::BeforeHookCreation),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let helm = || {
        annotation(obj, HELM_HOOK_DELETE_POLICY).map(|p| {
            list(p)
                .filter_map(|p| match p {
                    "hook-succeeded" => Some(DeletePolicy::HookSucceeded),
                    "hook-failed" => Some(DeletePolicy::HookFailed),
                    "before-hook-creation" => Some(DeletePolicy::BeforeHookCreation),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
    };
    match argo.or_else(helm) {
        Some(p) if !p.is_empty() => p,
        _ => vec![DeletePolicy::BeforeHookCreation],
    }
}

/// The object's wave: `sync-wave`, else Helm's `hook-weight` (for hooks and plain objects alike),
/// else 0. An unparsable value counts as absent, as in Argo CD.
pub fn wave_of(obj: &Value) -> i64 {
    annotation(obj, SYNC_WAVE)
        .and_then(|w| w.parse().ok())
        .or_else(|| annotation(obj, HELM_HOOK_WEIGHT).and_then(|w| w.parse().ok()))
        .unwrap_or(0)
}

/// Whether a live object is a hook: hooks are never pruned or compared.
pub fn is_hook(obj: &Value) -> bool {
    role_of(obj).is_hook()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "annotations": annotations}})
    }

    #[test]
    fn argo_cd_hook_annotations_give_phases_and_policies() {
        let obj = with(json!({HOOK: "PreSync, PostSync", HOOK_DELETE_POLICY: "HookSucceeded"}));
        assert_eq!(
            role_of(&obj),
            Role::Hook {
                phases: vec![Phase::PreSync, Phase::PostSync],
                delete_policies: vec![DeletePolicy::HookSucceeded],
            }
        );
        assert_eq!(
            role_of(&with(json!({HOOK: "SyncFail"}))),
            Role::Hook {
                phases: vec![Phase::SyncFail],
                delete_policies: vec![DeletePolicy::BeforeHookCreation],
            },
            "no policy means BeforeHookCreation"
        );
        assert_eq!(role_of(&with(json!({HOOK: "Skip"}))), Role::Skip);
        assert_eq!(role_of(&with(json!({"other": "x"}))), Role::Resource);
        assert_eq!(role_of(&json!({"kind": "ConfigMap"})), Role::Resource);
    }

    #[test]
    fn helm_hooks_map_onto_phases_and_argo_cd_wins() {
        let helm = with(json!({HELM_HOOK: "pre-install,pre-upgrade",
            HELM_HOOK_DELETE_POLICY: "before-hook-creation,hook-succeeded", HELM_HOOK_WEIGHT: "-5"}));
        assert_eq!(
            role_of(&helm),
            Role::Hook {
                phases: vec![Phase::PreSync],
                delete_policies: vec![
                    DeletePolicy::BeforeHookCreation,
                    DeletePolicy::HookSucceeded
                ],
            }
        );
        assert_eq!(wave_of(&helm), -5);
        assert_eq!(
            role_of(&with(json!({HELM_HOOK: "post-install"}))),
            Role::Hook {
                phases: vec![Phase::PostSync],
                delete_policies: vec![DeletePolicy::BeforeHookCreation],
            }
        );
        // Helm test hooks never run in a sync.
        assert_eq!(
            role_of(&with(json!({HELM_HOOK: "test"}))),
            Role::Hook {
                phases: vec![],
                delete_policies: vec![DeletePolicy::BeforeHookCreation],
            }
        );
        assert_eq!(
            role_of(&with(json!({HELM_HOOK: "crd-install"}))),
            Role::Resource
        );
        let both = with(json!({HELM_HOOK: "pre-install", HOOK: "PostSync"}));
        assert!(
            matches!(role_of(&both), Role::Hook { phases, .. } if phases == vec![Phase::PostSync])
        );
    }

    #[test]
    fn waves_come_from_sync_wave_then_hook_weight() {
        assert_eq!(
            wave_of(&with(json!({SYNC_WAVE: "2", HELM_HOOK_WEIGHT: "9"}))),
            2
        );
        assert_eq!(wave_of(&with(json!({SYNC_WAVE: "-1"}))), -1);
        assert_eq!(
            wave_of(&with(json!({SYNC_WAVE: "x", HELM_HOOK_WEIGHT: "3"}))),
            3
        );
        assert_eq!(wave_of(&with(json!({}))), 0);
    }
}
