//! An Application's health from its resources' health, by Argo CD's rules: worst-of over the
//! resources that count, Missing only when none of them exists yet.

use serde_json::Value;

use super::{CustomHealth, Health, HealthStatus, assess_with, group_kind};

/// Marks a sync hook (any phase, or `Skip`).
const HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// Marks a Helm hook, which Argo CD runs as a sync hook.
const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
/// Set to "true", keeps a resource out of the Application's health.
const IGNORE_HEALTHCHECK_ANNOTATION: &str = "argocd.argoproj.io/ignore-healthcheck";

/// One resource of an Application as the health roll-up sees it.
#[derive(Debug, Clone, Copy)]
pub struct AppResource<'a> {
    /// The live object; None when it has not been created (yet).
    pub live: Option<&'a Value>,
    /// Whether the desired object is left out of health: a hook, hook `Skip`, or annotated
    /// `ignore-healthcheck` (compute it with [`excluded_from_health`] on the object from Git).
    pub excluded: bool,
}

/// The worst status in Argo CD's order (Healthy < Suspended < Progressing < Missing < Degraded < Unknown);
/// Healthy when there is nothing to aggregate.
pub fn aggregate<'a>(items: impl IntoIterator<Item = &'a HealthStatus>) -> HealthStatus {
    items
        .into_iter()
        .copied()
        .max()
        .unwrap_or(HealthStatus::Healthy)
}

/// Whether an object is left out of an Application's health: sync hooks (Argo CD or Helm, the
/// `Skip` hook included) and objects annotated `argocd.argoproj.io/ignore-healthcheck: "true"`.
pub fn excluded_from_health(obj: &Value) -> bool {
    let annotation = |key: &str| {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    annotation(HOOK_ANNOTATION).is_some()
        // Helm's crd-install is not a hook for Argo CD: the CRDs are ordinary resources.
        || annotation(HELM_HOOK_ANNOTATION).is_some_and(|h| h != "crd-install")
        || annotation(IGNORE_HEALTHCHECK_ANNOTATION) == Some("true")
}

/// The Application's health: the worst health of its resources that count, with the message of the
/// first resource in that state. Excluded resources, kinds without health, resources not created
/// yet, and child Applications that are Missing or Unknown do not count; when the app has resources
/// that count and none of them exists live, it is Missing.
pub fn app_health<'a>(
    resources: impl IntoIterator<Item = AppResource<'a>>,
    custom: &CustomHealth,
) -> Health {
    let mut expected = 0usize;
    let mut live_count = 0usize;
    let mut worst: Option<Health> = None;
    for r in resources {
        if r.excluded || r.live.is_some_and(excluded_from_health) {
            continue;
        }
        expected += 1;
        let Some(live) = r.live else {
            continue;
        };
        live_count += 1;
        let Some(health) = assess_with(live, custom) else {
            continue;
        };
        if is_child_application(live)
            && matches!(health.status, HealthStatus::Missing | HealthStatus::Unknown)
        {
            continue;
        }
        let worse = worst.as_ref().is_none_or(|w| {
            health.status > w.status || (health.status == w.status && w.message.is_empty())
        });
        if worse {
            worst = Some(health);
        }
    }
    if expected > 0 && live_count == 0 {
        return Health::new(HealthStatus::Missing, "");
    }
    worst.unwrap_or_else(Health::healthy)
}

/// An Application (Capstan's or Argo CD's) managed by this one (app of apps); its own roll-up must
/// not leak upward while it is still being created or cannot be judged.
fn is_child_application(obj: &Value) -> bool {
    let (group, kind) = group_kind(obj);
    matches!(group, "capstan.dev" | "argoproj.io") && kind == "Application"
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;
    use serde_json::json;

    #[test]
    fn worst_status_wins() {
        assert_eq!(aggregate(&[]), Healthy);
        assert_eq!(aggregate(&[Healthy, Healthy]), Healthy);
        assert_eq!(aggregate(&[Healthy, Suspended]), Suspended);
        assert_eq!(aggregate(&[Suspended, Progressing, Healthy]), Progressing);
        assert_eq!(aggregate(&[Progressing, Missing]), Missing);
        assert_eq!(aggregate(&[Degraded, Missing, Progressing]), Degraded);
        assert_eq!(aggregate(&[Unknown, Degraded, Healthy]), Unknown);
        let statuses = [Healthy, Degraded];
        assert_eq!(aggregate(statuses.iter()), Degraded);
    }

    fn pvc(phase: &str) -> Value {
        json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": { "name": phase },
                "status": { "phase": phase } })
    }

    fn with_annotation(mut obj: Value, key: &str, value: &str) -> Value {
        obj["metadata"]["annotations"] = json!({ key: value });
        obj
    }

    fn live(obj: &Value) -> AppResource<'_> {
        AppResource {
            live: Some(obj),
            excluded: false,
        }
    }

    const NOT_CREATED: AppResource<'static> = AppResource {
        live: None,
        excluded: false,
    };

    fn status(resources: &[AppResource<'_>]) -> HealthStatus {
        app_health(resources.iter().copied(), &CustomHealth::none()).status
    }

    #[test]
    fn app_health_table() {
        let bound = pvc("Bound");
        let pending = pvc("Pending");
        let lost = pvc("Lost");
        let config =
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } });
        let paused = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" },
                             "spec": { "paused": true } });
        let failed_hook = with_annotation(
            json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "migrate" },
                    "status": { "conditions": [{ "type": "Failed", "status": "True" }] } }),
            HOOK_ANNOTATION,
            "PreSync",
        );
        let helm_hook = with_annotation(lost.clone(), HELM_HOOK_ANNOTATION, "pre-install");
        let helm_crd = with_annotation(lost.clone(), HELM_HOOK_ANNOTATION, "crd-install");
        let skipped = with_annotation(lost.clone(), HOOK_ANNOTATION, "Skip");
        let ignored = with_annotation(lost.clone(), IGNORE_HEALTHCHECK_ANNOTATION, "true");
        let not_ignored = with_annotation(lost.clone(), IGNORE_HEALTHCHECK_ANNOTATION, "false");
        let child_missing = json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                    "metadata": { "name": "child" },
                                    "status": { "conditions": [{ "type": "Ready", "status": "False" }] } });
        let git_excluded = AppResource {
            live: Some(&lost),
            excluded: true,
        };
        let cases: Vec<(&str, Vec<AppResource<'_>>, HealthStatus)> = vec![
            ("no resources", vec![], Healthy),
            ("all healthy", vec![live(&bound), live(&bound)], Healthy),
            (
                "worst wins",
                vec![live(&bound), live(&pending), live(&lost)],
                Degraded,
            ),
            (
                "suspended below progressing",
                vec![live(&paused), live(&pending)],
                Progressing,
            ),
            (
                "suspended above healthy",
                vec![live(&paused), live(&bound)],
                Suspended,
            ),
            (
                "kinds without health do not count",
                vec![live(&config), live(&pending)],
                Progressing,
            ),
            ("only kinds without health", vec![live(&config)], Healthy),
            (
                "one not created yet is skipped",
                vec![live(&bound), NOT_CREATED],
                Healthy,
            ),
            (
                "none created is Missing",
                vec![NOT_CREATED, NOT_CREATED],
                Missing,
            ),
            (
                "hooks are ignored",
                vec![live(&bound), live(&failed_hook)],
                Healthy,
            ),
            (
                "helm hooks are ignored",
                vec![live(&bound), live(&helm_hook)],
                Healthy,
            ),
            (
                "helm crd-install is not a hook",
                vec![live(&bound), live(&helm_crd)],
                Degraded,
            ),
            (
                "Skip is ignored",
                vec![live(&bound), live(&skipped)],
                Healthy,
            ),
            (
                "ignore-healthcheck",
                vec![live(&bound), live(&ignored)],
                Healthy,
            ),
            (
                "ignore-healthcheck false counts",
                vec![live(&bound), live(&not_ignored)],
                Degraded,
            ),
            ("excluded in Git", vec![live(&bound), git_excluded], Healthy),
            ("only excluded resources", vec![git_excluded], Healthy),
            (
                "a not-created hook does not make it Missing",
                vec![AppResource {
                    live: None,
                    excluded: true,
                }],
                Healthy,
            ),
            (
                "existing kind without health is not Missing",
                vec![live(&config), NOT_CREATED],
                Healthy,
            ),
            (
                "child app Progressing counts",
                vec![live(&bound), live(&child_missing)],
                Progressing,
            ),
        ];
        for (name, resources, want) in cases {
            assert_eq!(status(&resources), want, "{name}");
        }
    }

    #[test]
    fn app_health_keeps_the_first_message_at_the_worst_status() {
        let lb = |name: &str| {
            json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": { "name": name, "generation": 1 },
                    "status": { "observedGeneration": 1,
                                "conditions": [{ "type": "ReplicaFailure", "status": "True", "message": format!("{name} failed") }] } })
        };
        let (a, b, ok) = (lb("a"), lb("b"), pvc("Bound"));
        let h = app_health([live(&ok), live(&a), live(&b)], &CustomHealth::none());
        assert_eq!(h, Health::degraded("a failed"));
    }

    #[test]
    fn child_applications_missing_or_unknown_do_not_count() {
        let script = "return { status = obj.status.health.status }".to_string();
        let (custom, errors) = CustomHealth::from_entries([
            ("argoproj.io_Application".to_string(), script.clone()),
            ("capstan.dev_Application".to_string(), script),
        ]);
        assert_eq!(errors, vec![]);
        let bound = pvc("Bound");
        for api_version in ["argoproj.io/v1alpha1", "capstan.dev/v1alpha1"] {
            let child = |s: &str| {
                json!({ "apiVersion": api_version, "kind": "Application", "metadata": { "name": "c" },
                        "status": { "health": { "status": s } } })
            };
            for (s, want) in [
                ("Missing", Healthy),
                ("Unknown", Healthy),
                ("Degraded", Degraded),
            ] {
                let c = child(s);
                assert_eq!(
                    app_health([live(&bound), live(&c)], &custom).status,
                    want,
                    "{api_version} {s}"
                );
            }
        }
    }
}
