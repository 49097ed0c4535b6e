//! The sandbox's simulated controllers and health assessment agree: every simulated kind settles
//! Healthy, the `fail` annotation settles Degraded, and a spec change is Progressing again.
//! Deployments and ReplicaSets take their status from their children (`deployment_status`,
//! `replica_set_status`), so they are checked through those.

use serde_json::{Value, json};

use super::{HealthStatus, assess};
use crate::sandbox::controllers::{
    FAIL_ANNOTATION, Rollout, SimSettings, deployment_status, next_status, replica_set_status,
};

const MAX_STEPS: usize = 10;

fn settings() -> SimSettings {
    SimSettings {
        ready_delay: std::time::Duration::from_millis(300),
    }
}

fn group_of(obj: &Value) -> &str {
    obj["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g)
}

/// Applies plans until the controller is done; returns the health seen after each step.
fn converge(obj: &mut Value) -> Vec<HealthStatus> {
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let group = group_of(obj).to_string();
    let mut seen = Vec::new();
    for _ in 0..MAX_STEPS {
        let Some(plan) = next_status(&group, &kind, obj, &settings()) else {
            return seen;
        };
        obj["status"] = plan.status;
        seen.extend(assess(obj).map(|h| h.status));
    }
    panic!("{kind} did not settle within {MAX_STEPS} steps: {obj}");
}

fn object(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": { "name": "demo", "namespace": "default", "generation": 1,
                      "creationTimestamp": "2026-11-27T05:00:00Z" },
        "spec": spec,
    })
}

fn template() -> Value {
    json!({ "metadata": { "labels": { "app": "demo" } },
            "spec": { "containers": [{ "name": "app", "image": "nginx:1.27" }] } })
}

fn simulated_objects() -> Vec<Value> {
    vec![
        object(
            "apps/v1",
            "StatefulSet",
            json!({ "replicas": 2, "template": template() }),
        ),
        object("apps/v1", "DaemonSet", json!({ "template": template() })),
        object("batch/v1", "Job", json!({ "template": template() })),
        object("batch/v1", "CronJob", json!({ "schedule": "*/5 * * * *" })),
        object("v1", "Pod", template()["spec"].clone()),
        object(
            "v1",
            "Service",
            json!({ "type": "LoadBalancer", "ports": [{ "port": 80 }] }),
        ),
        object(
            "v1",
            "PersistentVolumeClaim",
            json!({ "resources": { "requests": { "storage": "1Gi" } } }),
        ),
        object(
            "networking.k8s.io/v1",
            "Ingress",
            json!({ "rules": [{ "host": "demo.example" }] }),
        ),
        object(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            json!({ "minReplicas": 2, "maxReplicas": 5 }),
        ),
    ]
}

#[test]
fn every_simulated_kind_settles_healthy() {
    for mut obj in simulated_objects() {
        let kind = obj["kind"].clone();
        assert_ne!(
            assess(&obj).map(|h| h.status),
            Some(HealthStatus::Healthy),
            "{kind} is not Healthy before its controller ran"
        );
        converge(&mut obj);
        let health = assess(&obj);
        assert_eq!(
            health.as_ref().map(|h| h.status),
            Some(HealthStatus::Healthy),
            "{kind}: {health:?} {}",
            obj["status"]
        );
    }
}

#[test]
fn workloads_pass_through_progressing() {
    for mut obj in simulated_objects().into_iter().take(3) {
        let seen = converge(&mut obj);
        assert_eq!(
            seen.first(),
            Some(&HealthStatus::Progressing),
            "{}",
            obj["kind"]
        );
        assert_eq!(seen.last(), Some(&HealthStatus::Healthy), "{}", obj["kind"]);
    }
}

#[test]
fn fail_annotation_settles_degraded() {
    let failing = [
        object("batch/v1", "Job", json!({ "template": template() })),
        object("v1", "Pod", template()["spec"].clone()),
        object(
            "v1",
            "Pod",
            json!({ "restartPolicy": "Never", "containers": [{ "name": "once" }] }),
        ),
        object(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            json!({ "maxReplicas": 5 }),
        ),
    ];
    for mut obj in failing {
        obj["metadata"]["annotations"] = json!({ FAIL_ANNOTATION: "true" });
        converge(&mut obj);
        let health = assess(&obj);
        assert_eq!(
            health.as_ref().map(|h| h.status),
            Some(HealthStatus::Degraded),
            "{}: {health:?}",
            obj["kind"]
        );
    }
}

#[test]
fn fail_annotation_keeps_other_workloads_from_becoming_healthy() {
    for (api_version, kind) in [
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("v1", "PersistentVolumeClaim"),
    ] {
        let mut obj = object(
            api_version,
            kind,
            json!({ "replicas": 1, "template": template() }),
        );
        obj["metadata"]["annotations"] = json!({ FAIL_ANNOTATION: "true" });
        converge(&mut obj);
        assert_eq!(
            assess(&obj).map(|h| h.status),
            Some(HealthStatus::Progressing),
            "{kind}"
        );
    }
}

#[test]
fn spec_change_is_progressing_until_the_controller_catches_up() {
    for mut obj in simulated_objects().into_iter().take(2) {
        let kind = obj["kind"].clone();
        converge(&mut obj);
        obj["metadata"]["generation"] = json!(2);
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        assert_eq!(
            assess(&obj).map(|h| h.status),
            Some(HealthStatus::Progressing),
            "{kind}"
        );
        let group = group_of(&obj).to_string();
        let kind_str = kind.as_str().unwrap_or_default();
        assert!(
            next_status(&group, kind_str, &obj, &settings()).is_some(),
            "{kind}"
        );
        let seen = converge(&mut obj);
        assert_eq!(seen.first(), Some(&HealthStatus::Progressing), "{kind}");
        assert_eq!(
            assess(&obj).map(|h| h.status),
            Some(HealthStatus::Healthy),
            "{kind}"
        );
        assert_eq!(obj["status"]["observedGeneration"], 2, "{kind}");
    }
}

#[test]
fn namespace_becomes_active() {
    let mut obj = object("v1", "Namespace", json!({}));
    converge(&mut obj);
    assert_eq!(obj["status"]["phase"], "Active");
    assert_eq!(assess(&obj).map(|h| h.status), Some(HealthStatus::Healthy));
}

fn rollout(replicas: i64, ready: i64, settled: bool) -> Rollout {
    Rollout {
        new_replica_set: "demo-abc".into(),
        replicas,
        updated: replicas,
        ready,
        available: ready,
        settled,
    }
}

#[test]
fn deployment_status_from_its_children_is_progressing_then_healthy() {
    let obj = object(
        "apps/v1",
        "Deployment",
        json!({ "replicas": 2, "template": template() }),
    );
    let with_status = |r: Rollout| {
        let mut o = obj.clone();
        o["status"] = deployment_status(&obj, &r, &settings());
        assess(&o).map(|h| h.status)
    };
    assert_eq!(
        with_status(rollout(0, 0, false)),
        Some(HealthStatus::Progressing)
    );
    assert_eq!(
        with_status(rollout(2, 0, false)),
        Some(HealthStatus::Progressing)
    );
    assert_eq!(
        with_status(rollout(2, 2, true)),
        Some(HealthStatus::Healthy)
    );
}

#[test]
fn failing_deployment_settles_degraded_once_its_pods_crash() {
    let mut obj = object(
        "apps/v1",
        "Deployment",
        json!({ "replicas": 1, "template": template() }),
    );
    obj["metadata"]["annotations"] = json!({ FAIL_ANNOTATION: "true" });
    obj["status"] = deployment_status(&obj, &rollout(1, 0, false), &settings());
    assert_eq!(
        assess(&obj).map(|h| h.status),
        Some(HealthStatus::Progressing)
    );
    obj["status"] = deployment_status(&obj, &rollout(1, 0, true), &settings());
    assert_eq!(
        assess(&obj).map(|h| h.message),
        Some("Deployment \"demo\" exceeded its progress deadline".to_string())
    );
}

#[test]
fn replica_set_status_from_its_pods() {
    let mut rs = object(
        "apps/v1",
        "ReplicaSet",
        json!({ "replicas": 1, "template": template() }),
    );
    let mut pod = object("v1", "Pod", template()["spec"].clone());
    rs["status"] = replica_set_status(&rs, &[&pod]);
    assert_eq!(
        assess(&rs).map(|h| h.status),
        Some(HealthStatus::Progressing)
    );
    converge(&mut pod);
    rs["status"] = replica_set_status(&rs, &[&pod]);
    assert_eq!(assess(&rs).map(|h| h.status), Some(HealthStatus::Healthy));
}

#[test]
fn paused_deployment_settles_suspended() {
    let mut obj = object(
        "apps/v1",
        "Deployment",
        json!({ "paused": true, "template": template() }),
    );
    obj["status"] = deployment_status(&obj, &Rollout::default(), &settings());
    assert_eq!(
        assess(&obj).map(|h| h.status),
        Some(HealthStatus::Suspended)
    );
}
