//! Health of a Pod, following gitops-engine: crash loops and image errors are Degraded, finite
//! (Never/OnFailure) pods are Progressing while they run.

use serde_json::Value;

use super::json::{array_at, condition, int_or_zero, str_at};
use super::{Health, HealthStatus};

/// With this annotation set to "true", a Never/OnFailure pod that is not a hook is judged like an Always pod.
const IGNORE_RESTART_POLICY_ANNOTATION: &str = "argocd.argoproj.io/ignore-restart-policy";
/// Annotations that mark a pod as a sync hook, which must keep the finite-pod rule.
const HOOK_ANNOTATIONS: [&str; 2] = ["argocd.argoproj.io/hook", "helm.sh/hook"];

/// Pod health from its phase, container states and restart policy.
pub(super) fn pod(obj: &Value) -> Health {
    let restart_policy = effective_restart_policy(obj);
    let message = str_at(obj, "/status/message").unwrap_or("");
    if restart_policy == "Always" {
        let waiting: Vec<&str> = array_at(obj, "/status/containerStatuses")
            .iter()
            .filter_map(|c| c.pointer("/state/waiting"))
            .filter(|w| {
                let reason = w.get("reason").and_then(Value::as_str).unwrap_or("");
                reason.starts_with("Err")
                    || reason.ends_with("Error")
                    || reason.ends_with("BackOff")
            })
            .map(|w| w.get("message").and_then(Value::as_str).unwrap_or(""))
            .collect();
        if !waiting.is_empty() {
            return Health::degraded(waiting.join(", "));
        }
    }
    match str_at(obj, "/status/phase").unwrap_or("") {
        "Pending" => Health::progressing(message),
        "Succeeded" => Health::new(HealthStatus::Healthy, message),
        "Failed" => Health::degraded(if message.is_empty() {
            failure_message(obj)
        } else {
            message.to_string()
        }),
        "Running" if restart_policy == "Always" => {
            if condition(obj, "Ready").is_some_and(|c| c.is_true()) {
                return Health::new(HealthStatus::Healthy, message);
            }
            let restarted = array_at(obj, "/status/containerStatuses").iter().any(|c| {
                c.pointer("/lastState/terminated")
                    .is_some_and(Value::is_object)
            });
            if restarted {
                Health::degraded(message)
            } else {
                Health::progressing(message)
            }
        }
        // Never/OnFailure pods have a finite life (typically hooks): running is not yet healthy.
        "Running" => Health::progressing(message),
        _ => Health::new(HealthStatus::Unknown, message),
    }
}

/// The restart policy the rules use: Always when unset (the API server's default), or when the
/// ignore annotation asks for it on a pod that is not a hook.
fn effective_restart_policy(obj: &Value) -> &str {
    let policy = str_at(obj, "/spec/restartPolicy").unwrap_or("Always");
    let annotations = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object);
    let annotated = |key: &str| annotations.and_then(|a| a.get(key)).is_some();
    let ignore = annotations
        .and_then(|a| a.get(IGNORE_RESTART_POLICY_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true");
    if ignore && !HOOK_ANNOTATIONS.iter().any(|k| annotated(k)) {
        "Always"
    } else {
        policy
    }
}

/// Why a failed pod failed: the first terminated container (init containers first) with something to say.
fn failure_message(obj: &Value) -> String {
    let init = array_at(obj, "/status/initContainerStatuses");
    let main = array_at(obj, "/status/containerStatuses");
    for c in init.iter().chain(main) {
        let Some(terminated) = c.pointer("/state/terminated").filter(|t| t.is_object()) else {
            continue;
        };
        let text = |k: &str| terminated.get(k).and_then(Value::as_str).unwrap_or("");
        if !text("message").is_empty() {
            return text("message").to_string();
        }
        if text("reason") == "OOMKilled" {
            return "OOMKilled".to_string();
        }
        let exit_code = int_or_zero(terminated, "/exitCode");
        if exit_code != 0 {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            return format!("container \"{name}\" failed with exit code {exit_code}");
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::*;
    use serde_json::json;

    fn pod_with(spec: Value, status: Value) -> Value {
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" }, "spec": spec, "status": status })
    }

    #[test]
    fn pod_table() {
        let ready = json!([{ "type": "Ready", "status": "True" }]);
        let not_ready = json!([{ "type": "Ready", "status": "False" }]);
        let crash = json!([{ "name": "a", "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 5m0s" } } },
                           { "name": "b", "state": { "waiting": { "reason": "ErrImagePull", "message": "pull failed" } } }]);
        let cases = [
            (
                json!({}),
                json!({ "phase": "Pending", "message": "scheduling" }),
                Health::progressing("scheduling"),
            ),
            (
                json!({}),
                json!({ "phase": "Running", "conditions": ready }),
                Health::healthy(),
            ),
            (
                json!({}),
                json!({ "phase": "Running", "conditions": not_ready }),
                Health::progressing(""),
            ),
            (
                json!({}),
                json!({ "phase": "Running", "conditions": not_ready,
                                "containerStatuses": [{ "name": "a", "lastState": { "terminated": { "exitCode": 1 } } }] }),
                Health::degraded(""),
            ),
            (
                json!({}),
                json!({ "phase": "Running", "containerStatuses": crash }),
                Health::degraded("back-off 5m0s, pull failed"),
            ),
            (
                json!({ "restartPolicy": "Never" }),
                json!({ "phase": "Running", "containerStatuses": crash }),
                Health::progressing(""),
            ),
            (
                json!({ "restartPolicy": "OnFailure" }),
                json!({ "phase": "Running", "conditions": ready }),
                Health::progressing(""),
            ),
            (
                json!({ "restartPolicy": "Never" }),
                json!({ "phase": "Succeeded" }),
                Health::healthy(),
            ),
            (
                json!({}),
                json!({ "phase": "Failed", "message": "evicted" }),
                Health::degraded("evicted"),
            ),
            (
                json!({}),
                json!({ "phase": "Failed", "containerStatuses": [{ "name": "a", "state": { "terminated": { "exitCode": 2 } } }] }),
                Health::degraded("container \"a\" failed with exit code 2"),
            ),
            (
                json!({}),
                json!({ "phase": "Failed", "initContainerStatuses": [{ "name": "i", "state": { "terminated": { "reason": "OOMKilled", "exitCode": 137 } } }] }),
                Health::degraded("OOMKilled"),
            ),
            (
                json!({}),
                json!({ "phase": "Pending", "containerStatuses": [{ "name": "a", "state": { "waiting": {
                    "reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\"" } } }] }),
                Health::degraded("Back-off pulling image \"nope:1\""),
            ),
            (
                json!({}),
                json!({ "phase": "Pending", "containerStatuses": [{ "name": "a", "state": { "waiting": {
                    "reason": "CreateContainerConfigError", "message": "secret \"s\" not found" } } }] }),
                Health::degraded("secret \"s\" not found"),
            ),
            (
                json!({}),
                json!({ "phase": "Pending", "message": "pulling", "containerStatuses": [{ "name": "a",
                    "state": { "waiting": { "reason": "ContainerCreating" } } }] }),
                Health::progressing("pulling"),
            ),
            (
                json!({}),
                json!({ "phase": "Failed", "containerStatuses": [{ "name": "a", "state": { "terminated": { "reason": "OOMKilled", "exitCode": 137 } } }] }),
                Health::degraded("OOMKilled"),
            ),
            (
                json!({ "restartPolicy": "Never" }),
                json!({ "phase": "Failed", "containerStatuses": [{ "name": "a", "state": { "terminated": { "exitCode": 3 } } }] }),
                Health::degraded("container \"a\" failed with exit code 3"),
            ),
            (
                json!({ "restartPolicy": "Never" }),
                json!({ "phase": "Pending", "message": "waiting" }),
                Health::progressing("waiting"),
            ),
            (
                json!({}),
                json!({ "phase": "Weird" }),
                Health::new(HealthStatus::Unknown, ""),
            ),
        ];
        for (spec, status, want) in cases {
            assert_eq!(
                assess(&pod_with(spec, status.clone())),
                Some(want),
                "{status}"
            );
        }
    }

    #[test]
    fn ignore_restart_policy_annotation_except_for_hooks() {
        let mut obj = pod_with(
            json!({ "restartPolicy": "Never" }),
            json!({ "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] }),
        );
        obj["metadata"]["annotations"] = json!({ IGNORE_RESTART_POLICY_ANNOTATION: "true" });
        assert_eq!(assess(&obj), Some(Health::healthy()));
        obj["metadata"]["annotations"]["argocd.argoproj.io/hook"] = json!("PreSync");
        assert_eq!(assess(&obj), Some(Health::progressing("")));
    }
}
