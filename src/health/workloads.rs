//! Health of apps/v1 workload controllers: Deployment, StatefulSet, DaemonSet, ReplicaSet.
//! Rules and messages follow gitops-engine, which borrows them from `kubectl rollout status`.

use serde_json::Value;

use super::Health;
use super::HealthStatus;
use super::json::{bool_at, condition, int_at, int_or_zero, str_at};

fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name").unwrap_or("")
}

/// Whether the controller has seen the latest spec (an absent observedGeneration counts as 0).
fn generation_observed(obj: &Value) -> bool {
    int_or_zero(obj, "/metadata/generation") <= int_or_zero(obj, "/status/observedGeneration")
}

/// Deployment: paused, deadline exceeded, or the rollout's progress.
pub(super) fn deployment(obj: &Value) -> Health {
    if bool_at(obj, "/spec/paused") {
        return Health::new(HealthStatus::Suspended, "Deployment is paused");
    }
    if !generation_observed(obj) {
        return Health::progressing(
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    if condition(obj, "Progressing").is_some_and(|c| c.reason == "ProgressDeadlineExceeded") {
        return Health::degraded(format!(
            "Deployment \"{}\" exceeded its progress deadline",
            name(obj)
        ));
    }
    let replicas = int_at(obj, "/status/replicas").unwrap_or(0);
    let updated = int_or_zero(obj, "/status/updatedReplicas");
    let available = int_or_zero(obj, "/status/availableReplicas");
    if let Some(wanted) = int_at(obj, "/spec/replicas")
        && updated < wanted
    {
        return Health::progressing(format!(
            "Waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Health::progressing(format!(
            "Waiting for rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Health::progressing(format!(
            "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Health::healthy()
}

/// StatefulSet: observed generation, ready pods, partitioned or revision-based rollout.
pub(super) fn stateful_set(obj: &Value) -> Health {
    let observed = int_or_zero(obj, "/status/observedGeneration");
    if observed == 0 || int_or_zero(obj, "/metadata/generation") > observed {
        return Health::progressing("Waiting for statefulset spec update to be observed...");
    }
    let wanted = int_at(obj, "/spec/replicas");
    let ready = int_or_zero(obj, "/status/readyReplicas");
    let updated = int_or_zero(obj, "/status/updatedReplicas");
    if let Some(wanted) = wanted
        && ready < wanted
    {
        return Health::progressing(format!(
            "Waiting for {} pods to be ready...",
            wanted - ready
        ));
    }
    let strategy = str_at(obj, "/spec/updateStrategy/type").unwrap_or("");
    let rolling_update = obj
        .pointer("/spec/updateStrategy/rollingUpdate")
        .filter(|r| r.is_object());
    if strategy == "RollingUpdate"
        && let Some(rolling_update) = rolling_update
    {
        let partition = int_at(rolling_update, "/partition");
        if let (Some(wanted), Some(partition)) = (wanted, partition)
            && updated < wanted - partition
        {
            return Health::progressing(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                wanted - partition
            ));
        }
        return Health::new(
            HealthStatus::Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    if strategy == "OnDelete" {
        return Health::new(
            HealthStatus::Healthy,
            format!("statefulset has {ready} ready pods"),
        );
    }
    let update_revision = str_at(obj, "/status/updateRevision").unwrap_or("");
    let current_revision = str_at(obj, "/status/currentRevision").unwrap_or("");
    if update_revision != current_revision {
        return Health::progressing(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        ));
    }
    Health::new(
        HealthStatus::Healthy,
        format!(
            "statefulset rolling update complete {} pods at revision {current_revision}...",
            int_or_zero(obj, "/status/currentReplicas")
        ),
    )
}

/// DaemonSet: observed generation, then updated and available pods against the desired count.
pub(super) fn daemon_set(obj: &Value) -> Health {
    if !generation_observed(obj) {
        return Health::progressing(
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        );
    }
    let desired = int_or_zero(obj, "/status/desiredNumberScheduled");
    let updated = int_or_zero(obj, "/status/updatedNumberScheduled");
    let available = int_or_zero(obj, "/status/numberAvailable");
    if str_at(obj, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::new(
            HealthStatus::Healthy,
            format!("daemon set {updated} out of {desired} new pods have been updated"),
        );
    }
    let name = name(obj);
    if updated < desired {
        return Health::progressing(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return Health::progressing(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    Health::healthy()
}

/// ReplicaSet: ReplicaFailure, then available replicas against the spec.
pub(super) fn replica_set(obj: &Value) -> Health {
    if !generation_observed(obj) {
        return Health::progressing(
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if let Some(failure) = condition(obj, "ReplicaFailure").filter(|c| c.is_true()) {
        return Health::degraded(failure.message);
    }
    let available = int_or_zero(obj, "/status/availableReplicas");
    if let Some(wanted) = int_at(obj, "/spec/replicas")
        && available < wanted
    {
        return Health::progressing(format!(
            "Waiting for rollout to finish: {available} out of {wanted} new replicas are available..."
        ));
    }
    Health::healthy()
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::*;
    use serde_json::json;

    fn deployment_with(spec: Value, status: Value) -> Value {
        json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "generation": 2 }, "spec": spec, "status": status })
    }

    #[test]
    fn deployment_table() {
        let cases = [
            (
                json!({ "replicas": 2 }),
                json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2 }),
                Health::healthy(),
            ),
            (
                json!({ "replicas": 2, "paused": true }),
                json!({ "observedGeneration": 2 }),
                Health::new(HealthStatus::Suspended, "Deployment is paused"),
            ),
            (
                json!({ "replicas": 2 }),
                json!({}),
                Health::progressing(
                    "Waiting for rollout to finish: observed deployment generation less than desired generation",
                ),
            ),
            (
                json!({ "replicas": 2 }),
                json!({ "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2 }),
                Health::progressing(
                    "Waiting for rollout to finish: observed deployment generation less than desired generation",
                ),
            ),
            (
                json!({ "replicas": 3 }),
                json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 1 }),
                Health::progressing(
                    "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...",
                ),
            ),
            (
                json!({ "replicas": 2 }),
                json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2 }),
                Health::progressing(
                    "Waiting for rollout to finish: 1 old replicas are pending termination...",
                ),
            ),
            (
                json!({ "replicas": 1 }),
                json!({ "observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0 }),
                Health::progressing(
                    "Waiting for rollout to finish: 0 of 1 updated replicas are available...",
                ),
            ),
            (
                json!({ "replicas": 1 }),
                json!({ "observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                      "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }] }),
                Health::degraded("Deployment \"web\" exceeded its progress deadline"),
            ),
            (
                json!({ "replicas": 1, "paused": true }),
                json!({ "observedGeneration": 2, "replicas": 1, "updatedReplicas": 0,
                      "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }] }),
                Health::new(HealthStatus::Suspended, "Deployment is paused"),
            ),
            (
                json!({ "replicas": 0 }),
                json!({ "observedGeneration": 2 }),
                Health::healthy(),
            ),
        ];
        for (spec, status, want) in cases {
            let obj = deployment_with(spec, status.clone());
            assert_eq!(assess(&obj), Some(want), "{status}");
        }
    }

    fn sts(spec: Value, status: Value) -> Value {
        json!({ "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": { "name": "db", "generation": 1 }, "spec": spec, "status": status })
    }

    #[test]
    fn statefulset_table() {
        let done = json!({ "observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
                           "updatedReplicas": 3, "currentRevision": "db-1", "updateRevision": "db-1" });
        let cases = [
            (
                json!({ "replicas": 3 }),
                done.clone(),
                Health::new(
                    HealthStatus::Healthy,
                    "statefulset rolling update complete 3 pods at revision db-1...",
                ),
            ),
            (
                json!({ "replicas": 3 }),
                json!({ "replicas": 3 }),
                Health::progressing("Waiting for statefulset spec update to be observed..."),
            ),
            (
                json!({ "replicas": 3 }),
                json!({ "observedGeneration": 1, "readyReplicas": 1 }),
                Health::progressing("Waiting for 2 pods to be ready..."),
            ),
            (
                json!({ "replicas": 3 }),
                json!({ "observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1, "currentRevision": "db-1", "updateRevision": "db-2" }),
                Health::progressing(
                    "waiting for statefulset rolling update to complete 1 pods at revision db-2...",
                ),
            ),
            (
                json!({ "replicas": 3, "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 1 } } }),
                json!({ "observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1 }),
                Health::progressing(
                    "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
                ),
            ),
            (
                json!({ "replicas": 3, "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 1 } } }),
                json!({ "observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 2 }),
                Health::new(
                    HealthStatus::Healthy,
                    "partitioned roll out complete: 2 new pods have been updated...",
                ),
            ),
            (
                json!({ "replicas": 3, "updateStrategy": { "type": "OnDelete" } }),
                json!({ "observedGeneration": 1, "readyReplicas": 3, "currentRevision": "a", "updateRevision": "b" }),
                Health::new(HealthStatus::Healthy, "statefulset has 3 ready pods"),
            ),
        ];
        for (spec, status, want) in cases {
            assert_eq!(assess(&sts(spec, status.clone())), Some(want), "{status}");
        }
    }

    #[test]
    fn daemonset_table() {
        let ds = |spec: Value, status: Value| {
            json!({ "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "agent", "generation": 1 },
                    "spec": spec, "status": status })
        };
        let cases = [
            (
                json!({}),
                json!({ "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2 }),
                Health::healthy(),
            ),
            (
                json!({}),
                json!({ "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1 }),
                Health::progressing(
                    "Waiting for daemon set \"agent\" rollout to finish: 1 out of 2 new pods have been updated...",
                ),
            ),
            (
                json!({}),
                json!({ "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1 }),
                Health::progressing(
                    "Waiting for daemon set \"agent\" rollout to finish: 1 of 2 updated pods are available...",
                ),
            ),
            (
                json!({ "updateStrategy": { "type": "OnDelete" } }),
                json!({ "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1 }),
                Health::new(
                    HealthStatus::Healthy,
                    "daemon set 1 out of 2 new pods have been updated",
                ),
            ),
            (
                json!({}),
                json!({}),
                Health::progressing(
                    "Waiting for rollout to finish: observed daemon set generation less than desired generation",
                ),
            ),
        ];
        for (spec, status, want) in cases {
            assert_eq!(assess(&ds(spec, status.clone())), Some(want), "{status}");
        }
    }

    #[test]
    fn replicaset_table() {
        let rs = |status: Value| {
            json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": { "name": "web-abc", "generation": 1 },
                    "spec": { "replicas": 2 }, "status": status })
        };
        let cases = [
            (
                json!({ "observedGeneration": 1, "availableReplicas": 2 }),
                Health::healthy(),
            ),
            (
                json!({ "observedGeneration": 1, "availableReplicas": 1 }),
                Health::progressing(
                    "Waiting for rollout to finish: 1 out of 2 new replicas are available...",
                ),
            ),
            (
                json!({ "observedGeneration": 1, "conditions": [{ "type": "ReplicaFailure", "status": "True", "message": "quota" }] }),
                Health::degraded("quota"),
            ),
            (
                json!({}),
                Health::progressing(
                    "Waiting for rollout to finish: observed replica set generation less than desired generation",
                ),
            ),
        ];
        for (status, want) in cases {
            assert_eq!(assess(&rs(status.clone())), Some(want), "{status}");
        }
    }
}
