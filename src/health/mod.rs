//! Health assessment of live objects, compatible with Argo CD (gitops-engine) and kstatus.
//!
//! [`assess_with`] applies the rules in Argo CD's order: deletion, then a user-defined Lua check
//! for the kind ([`CustomHealth`]), then the generic rules (observed generation, Reconciling/Stalled
//! conditions), the built-in rule for the kind, and the `Ready` condition; kinds with none of these
//! (ConfigMap, Secret, RBAC …) have no health and are left out of [`app_health`].

mod aggregate;
mod autoscaling;
mod batch;
mod json;
mod lua;
mod networking;
mod platform;
mod pod;
mod status;
mod storage;
mod workloads;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod lua_tests;

use serde_json::Value;

pub use aggregate::{AppResource, aggregate, app_health, excluded_from_health};
pub use lua::{
    CustomHealth, CustomHealthError, INSTRUCTION_LIMIT, KEY_PREFIX, MAX_MESSAGE_BYTES,
    MAX_OBJECT_DEPTH, MEMORY_LIMIT,
};
pub use status::{Health, HealthStatus};

use json::{condition, int_at, str_at};

/// A per-kind health rule.
type Rule = fn(&Value) -> Health;

/// The health of a live object by the built-in rules, or None when its kind has no notion of health.
pub fn assess(obj: &Value) -> Option<Health> {
    assess_with(obj, &CustomHealth::none())
}

/// The health of a live object, a user-defined check for its kind coming before the built-in rules;
/// None when its kind has no notion of health.
pub fn assess_with(obj: &Value, custom: &CustomHealth) -> Option<Health> {
    let (group, kind) = group_kind(obj);
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Some(Health::progressing("Pending deletion"));
    }
    if let Some(h) = custom.evaluate(group, kind, obj) {
        return Some(h);
    }
    if let Some(h) = generation_not_observed(group, kind, obj) {
        return Some(h);
    }
    if let Some(c) = condition(obj, "Reconciling").filter(|c| c.is_true()) {
        return Some(Health::progressing(or(c.message, "Reconciling")));
    }
    if let Some(c) = condition(obj, "Stalled").filter(|c| c.is_true()) {
        return Some(Health::degraded(or(c.message, "Stalled")));
    }
    if let Some(rule) = rule_for(group, kind) {
        return Some(rule(obj));
    }
    let ready = condition(obj, "Ready")?;
    Some(if ready.is_true() {
        Health::new(HealthStatus::Healthy, ready.message)
    } else {
        Health::progressing(ready.message)
    })
}

/// The built-in rule for a kind.
fn rule_for(group: &str, kind: &str) -> Option<Rule> {
    let rule: Rule = match (group, kind) {
        ("apps", "Deployment") => workloads::deployment,
        ("apps", "StatefulSet") => workloads::stateful_set,
        ("apps", "DaemonSet") => workloads::daemon_set,
        ("apps", "ReplicaSet") => workloads::replica_set,
        ("", "Pod") => pod::pod,
        ("", "Service") => networking::service,
        ("networking.k8s.io" | "extensions", "Ingress") => networking::ingress,
        ("", "PersistentVolumeClaim") => storage::pvc,
        ("", "Namespace") => platform::namespace,
        ("batch", "Job") => batch::job,
        ("batch", "CronJob") => batch::cron_job,
        ("apiregistration.k8s.io", "APIService") => platform::api_service,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => platform::crd,
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::hpa,
        _ => return None,
    };
    Some(rule)
}

/// Group and kind from `apiVersion` (core objects have the empty group) and `kind`.
fn group_kind(obj: &Value) -> (&str, &str) {
    let api_version = str_at(obj, "/apiVersion").unwrap_or("");
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    (group, str_at(obj, "/kind").unwrap_or(""))
}

/// Progressing when the controller has not yet seen the latest spec (kstatus `LatestGenerationNotObserved`).
fn generation_not_observed(group: &str, kind: &str, obj: &Value) -> Option<Health> {
    let observed = int_at(obj, "/status/observedGeneration")?;
    let generation = int_at(obj, "/metadata/generation")?;
    if observed == generation {
        return None;
    }
    let message = match (group, kind) {
        ("apps", "Deployment") => {
            "Waiting for rollout to finish: observed deployment generation less than desired generation"
                .to_string()
        }
        ("apps", "ReplicaSet") => {
            "Waiting for rollout to finish: observed replica set generation less than desired generation"
                .to_string()
        }
        ("apps", "DaemonSet") => {
            "Waiting for rollout to finish: observed daemon set generation less than desired generation"
                .to_string()
        }
        ("apps", "StatefulSet") => "Waiting for statefulset spec update to be observed...".to_string(),
        _ => format!("{kind} generation is {generation}, but latest observed generation is {observed}"),
    };
    Some(Health::progressing(message))
}

/// The text, or a fallback when it is empty.
fn or<'a>(text: &'a str, fallback: &'a str) -> &'a str {
    if text.is_empty() { fallback } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_without_health_have_none() {
        for (api_version, kind) in [
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "ServiceAccount"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("policy/v1", "PodDisruptionBudget"),
            ("example.com/v1", "Widget"),
        ] {
            let obj = json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": "x" }, "data": {} });
            assert_eq!(assess(&obj), None, "{kind}");
        }
    }

    #[test]
    fn deletion_comes_first() {
        let obj = json!({ "apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": { "name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z" } });
        assert_eq!(assess(&obj), Some(Health::progressing("Pending deletion")));
    }

    #[test]
    fn generation_not_observed_is_progressing_for_any_kind() {
        let obj = json!({ "apiVersion": "example.com/v1", "kind": "Widget",
                          "metadata": { "name": "x", "generation": 3 },
                          "status": { "observedGeneration": 2,
                                      "conditions": [{ "type": "Ready", "status": "True" }] } });
        assert_eq!(
            assess(&obj),
            Some(Health::progressing(
                "Widget generation is 3, but latest observed generation is 2"
            ))
        );
    }

    #[test]
    fn reconciling_and_stalled_conditions() {
        let with = |type_: &str| {
            json!({ "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "x" },
                    "status": { "conditions": [
                        { "type": type_, "status": "True", "message": "working on it" },
                        { "type": "Ready", "status": "True" }] } })
        };
        assert_eq!(
            assess(&with("Reconciling")),
            Some(Health::progressing("working on it"))
        );
        assert_eq!(
            assess(&with("Stalled")),
            Some(Health::degraded("working on it"))
        );
    }

    #[test]
    fn ready_condition_decides_for_custom_resources() {
        let with = |status: &str| {
            json!({ "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "x" },
                    "status": { "conditions": [{ "type": "Ready", "status": status, "message": "m" }] } })
        };
        assert_eq!(
            assess(&with("True")).map(|h| h.status),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(assess(&with("False")), Some(Health::progressing("m")));
        assert_eq!(assess(&with("Unknown")), Some(Health::progressing("m")));
    }

    #[test]
    fn garbage_never_panics() {
        let garbage = [
            json!(null),
            json!("Deployment"),
            json!([1, 2]),
            json!({ "apiVersion": 5, "kind": ["Pod"] }),
            json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": "x", "spec": 1, "status": "x" }),
            json!({ "apiVersion": "v1", "kind": "Pod", "spec": { "restartPolicy": 3 },
                    "status": { "phase": 1, "containerStatuses": [1, "x", { "state": 5 }], "conditions": "x" } }),
            json!({ "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                    "metadata": { "annotations": { "autoscaling.alpha.kubernetes.io/conditions": "{not json" } } }),
        ];
        for g in &garbage {
            let _ = assess(g);
        }
        assert_eq!(
            assess(&garbage[6]).map(|h| h.status),
            Some(HealthStatus::Unknown)
        );
    }
}
