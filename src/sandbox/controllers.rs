//! Simulated controllers: how the sandbox moves workload status towards ready (or failure).
//!
//! The sandbox runs no containers. Instead, after every create or modify of an object the server asks
//! [`next_status`] what its controller would write next; the answer is a [`StatusPlan`] (wait `after`,
//! then replace `.status`), or `None` once the status has settled. Each simulated kind goes through a
//! fixed list of stages (usually "created, not ready" immediately, then "ready" after the ready delay);
//! the function is pure and deterministic, so re-running it on a settled object returns `None`.
//!
//! Simulated kinds: apps/v1 StatefulSet, DaemonSet; batch/v1 Job; core/v1 Pod,
//! Service (type LoadBalancer gets `192.0.2.X`, a TEST-NET address derived from the name) and
//! PersistentVolumeClaim (Bound, with the requested capacity); networking.k8s.io Ingress (an address
//! from TEST-NET-2, `198.51.100.X`); autoscaling HorizontalPodAutoscaler (able to scale, at
//! `minReplicas`); a Namespace without a phase becomes Active; a CronJob gets the empty status a real
//! API server stores (it never schedules Jobs). Everything else has no simulated status.
//! Deployments and ReplicaSets own real children instead (`workloads`): their statuses follow their
//! Pods through [`replica_set_status`] and [`deployment_status`].
//!
//! # Annotations
//!
//! Set on the object's own `metadata.annotations`:
//!
//! - `sandbox.capstan.dev/ready-delay: "5s"` — how long this object takes to become ready, overriding the
//!   sandbox's `ready_delay`. Go-style durations: `1h`, `2m`, `5s`, `300ms`, `1m30s`, `1.5s`. An
//!   unparsable value falls back to the default.
//! - `sandbox.capstan.dev/fail: "true"` — the object never becomes healthy:
//!   - Deployment: never available; once its Pods crash-loop, `Progressing=False` with reason
//!     `ProgressDeadlineExceeded` ("ReplicaSet \"NAME-HASH\" has timed out progressing.").
//!   - ReplicaSet: never ready (its Pods crash-loop; the annotation travels to them).
//!   - StatefulSet, DaemonSet: stay at zero ready replicas.
//!   - Job: `Failed=True` with reason `BackoffLimitExceeded`, `status.failed` = backoffLimit + 1.
//!   - Pod: `Running` with every container waiting in `CrashLoopBackOff`, `restartCount` > 0,
//!     `Ready=False` (with `restartPolicy: Never`: phase `Failed`, exit code 1).
//!   - Service, Ingress: never get an address; PersistentVolumeClaim: stays `Pending`.
//!   - HorizontalPodAutoscaler: `AbleToScale=False` with reason `FailedGetScale`.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// Prefix of every annotation the simulated controllers read.
pub const ANNOTATION_PREFIX: &str = "sandbox.capstan.dev/";
/// Annotation overriding how long the object takes to become ready (Go-style duration).
pub const READY_DELAY_ANNOTATION: &str = "sandbox.capstan.dev/ready-delay";
/// Annotation that makes the object fail (`"true"`).
pub const FAIL_ANNOTATION: &str = "sandbox.capstan.dev/fail";

/// Number of nodes a DaemonSet is scheduled on: the sandbox pretends to be a one-node cluster.
const DAEMONSET_NODES: i64 = 1;
/// Restart count shown by a crash-looping simulated container.
const CRASH_RESTARTS: i64 = 3;
/// Used when an object carries no timestamp at all, so output stays deterministic.
const EPOCH: &str = "1970-01-01T00:00:00Z";
/// Alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const SAFE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Default time a workload takes to become ready.
    pub ready_delay: Duration,
}

/// The next status a simulated controller writes: after `after`, `.status` becomes `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPlan {
    /// How long to wait before writing.
    pub after: Duration,
    /// The complete new `.status`.
    pub status: Value,
}

/// The next status change for this object, or None when its status is settled.
pub fn next_status(
    group: &str,
    kind: &str,
    obj: &Value,
    settings: &SimSettings,
) -> Option<StatusPlan> {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return None;
    }
    let ctx = Ctx::new(obj, settings);
    let stages = match (group, kind) {
        ("apps", "StatefulSet") => stateful_set(&ctx),
        ("apps", "DaemonSet") => daemon_set(&ctx),
        ("batch", "Job") => job(&ctx),
        ("batch", "CronJob") => cron_job(&ctx),
        ("" | "core", "Pod") => pod(&ctx),
        ("" | "core", "Service") => service(&ctx),
        ("" | "core", "PersistentVolumeClaim") => pvc(&ctx),
        ("" | "core", "Namespace") => namespace(&ctx),
        ("networking.k8s.io", "Ingress") => ingress(&ctx),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(&ctx),
        _ => return None,
    };
    plan(ctx.status, stages)
}

/// One status the controller moves the object to, and how long after the previous one.
struct Stage {
    after: Duration,
    status: Value,
}

/// Picks the stage after the one the object is in; the first stage when it is in none of them.
fn plan(current: &Value, stages: Vec<Stage>) -> Option<StatusPlan> {
    let position = stages.iter().position(|s| &s.status == current);
    let next = match position {
        Some(i) => i + 1,
        None => 0,
    };
    stages.into_iter().nth(next).map(|s| StatusPlan {
        after: s.after,
        status: s.status,
    })
}

/// What every simulated controller reads from the object.
struct Ctx<'a> {
    obj: &'a Value,
    name: &'a str,
    namespace: &'a str,
    generation: i64,
    status: &'a Value,
    delay: Duration,
    fail: bool,
    /// Best deterministic approximation of "now": the object's latest recorded write.
    now: String,
}

impl<'a> Ctx<'a> {
    fn new(obj: &'a Value, settings: &SimSettings) -> Self {
        let annotation = |key: &str| {
            obj.pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
        };
        let delay = annotation(READY_DELAY_ANNOTATION)
            .and_then(parse_go_duration)
            .unwrap_or(settings.ready_delay);
        let fail =
            annotation(FAIL_ANNOTATION).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ctx {
            obj,
            name: str_at(obj, "/metadata/name").unwrap_or(""),
            namespace: str_at(obj, "/metadata/namespace").unwrap_or(""),
            generation: int_at(obj, "/metadata/generation")
                .filter(|g| *g > 0)
                .unwrap_or(1),
            status: obj.get("status").unwrap_or(&Value::Null),
            delay,
            fail,
            now: latest_write(obj),
        }
    }

    /// `spec.replicas`, defaulting to 1 when absent or not a non-negative integer.
    fn replicas(&self) -> i64 {
        int_at(self.obj, "/spec/replicas")
            .filter(|r| *r >= 0)
            .unwrap_or(1)
    }

    /// Name of the ReplicaSet/revision the current pod template maps to, e.g. `web-7d4b9c8f5x`.
    fn revision_name(&self) -> String {
        let template = self.obj.pointer("/spec/template").unwrap_or(&Value::Null);
        format!("{}-{}", self.name, pod_template_hash(template))
    }

    /// A condition, keeping the existing timestamps when the condition has not changed.
    fn condition(&self, type_: &str, status: &str, reason: &str, message: &str) -> Value {
        let mut c = self.condition_base(type_, status, reason, message);
        let existing = self.existing_condition(type_);
        let transition = existing
            .filter(|e| e.get("status").and_then(Value::as_str) == Some(status))
            .and_then(|e| e.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .unwrap_or(&self.now);
        c.insert("lastTransitionTime".into(), json!(transition));
        Value::Object(c)
    }

    /// A Deployment condition, which also carries `lastUpdateTime`.
    fn deployment_condition(
        &self,
        type_: &str,
        status: &str,
        reason: &str,
        message: &str,
    ) -> Value {
        let mut c = self.condition(type_, status, reason, message);
        let unchanged = self.existing_condition(type_).filter(|e| {
            e.get("status").and_then(Value::as_str) == Some(status)
                && e.get("reason").and_then(Value::as_str) == Some(reason)
                && e.get("message").and_then(Value::as_str) == Some(message)
        });
        let update = unchanged
            .and_then(|e| e.get("lastUpdateTime"))
            .and_then(Value::as_str)
            .unwrap_or(&self.now);
        if let Some(m) = c.as_object_mut() {
            m.insert("lastUpdateTime".into(), json!(update));
        }
        c
    }

    fn condition_base(
        &self,
        type_: &str,
        status: &str,
        reason: &str,
        message: &str,
    ) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("type".into(), json!(type_));
        c.insert("status".into(), json!(status));
        if !reason.is_empty() {
            c.insert("reason".into(), json!(reason));
        }
        if !message.is_empty() {
            c.insert("message".into(), json!(message));
        }
        c
    }

    fn existing_condition(&self, type_: &str) -> Option<&'a Value> {
        self.status
            .get("conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
    }

    /// An existing top-level status timestamp (e.g. `startTime`), or now.
    fn kept_time(&self, field: &str) -> String {
        self.status
            .get(field)
            .and_then(Value::as_str)
            .filter(|t| looks_like_time(t))
            .unwrap_or(&self.now)
            .to_string()
    }

    fn immediately(&self, status: Value) -> Stage {
        Stage {
            after: Duration::ZERO,
            status,
        }
    }

    fn delayed(&self, status: Value) -> Stage {
        Stage {
            after: self.delay,
            status,
        }
    }
}

/// What a Deployment's ReplicaSets report, from which its status follows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollout {
    /// Name of the ReplicaSet running the current template.
    pub new_replica_set: String,
    /// Pods of all its ReplicaSets.
    pub replicas: i64,
    /// Pods of the current template's ReplicaSet.
    pub updated: i64,
    /// Ready Pods.
    pub ready: i64,
    /// Available Pods.
    pub available: i64,
    /// Every Pod of the current ReplicaSet exists and has left Pending, so a failing one stays so.
    pub settled: bool,
}

/// A Deployment's status from its rollout; conditions keep their times while unchanged.
pub fn deployment_status(obj: &Value, rollout: &Rollout, settings: &SimSettings) -> Value {
    let ctx = Ctx::new(obj, settings);
    let n = ctx.replicas();
    let rs = &rollout.new_replica_set;
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(ctx.generation));
    // The real status omits zero counts (omitempty).
    for (field, value) in [
        ("replicas", rollout.replicas),
        ("updatedReplicas", rollout.updated),
        ("readyReplicas", rollout.ready),
        ("availableReplicas", rollout.available),
        ("unavailableReplicas", (n - rollout.available).max(0)),
    ] {
        if value > 0 {
            status.insert(field.into(), json!(value));
        }
    }
    let available = if rollout.available >= n {
        ctx.deployment_condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        ctx.deployment_condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let complete = rollout.updated == n && rollout.replicas == n && rollout.available >= n;
    let progressing = if bool_at(ctx.obj, "/spec/paused") {
        ctx.deployment_condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        )
    } else if complete {
        ctx.deployment_condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs}\" has successfully progressed."),
        )
    } else if ctx.fail && rollout.settled {
        ctx.deployment_condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rs}\" has timed out progressing."),
        )
    } else {
        ctx.deployment_condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs}\" is progressing."),
        )
    };
    status.insert("conditions".into(), json!([available, progressing]));
    Value::Object(status)
}

/// A ReplicaSet's status from its (not terminating) Pods.
pub fn replica_set_status(obj: &Value, pods: &[&Value]) -> Value {
    let generation = int_at(obj, "/metadata/generation")
        .filter(|g| *g > 0)
        .unwrap_or(1);
    let ready = pods.iter().filter(|p| pod_is_ready(p)).count() as i64;
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    if !pods.is_empty() {
        status.insert("fullyLabeledReplicas".into(), json!(pods.len()));
    }
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(ready));
    }
    status.insert("observedGeneration".into(), json!(generation));
    Value::Object(status)
}

/// Whether a Pod's Ready condition is True.
pub fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The `pod-template-hash` of a pod template (also the suffix of its ReplicaSet's name).
pub fn pod_template_hash(template: &Value) -> String {
    short_hash(&template.to_string())
}

fn stateful_set(ctx: &Ctx) -> Vec<Stage> {
    let n = ctx.replicas();
    let update_revision = ctx.revision_name();
    // During a rollout the old revision stays current until the new pods are ready.
    let current_revision = str_at(ctx.status, "/currentRevision")
        .filter(|r| !r.is_empty())
        .unwrap_or(&update_revision)
        .to_string();
    let updated = if current_revision == update_revision {
        n
    } else {
        0
    };
    let rolling = json!({
        "observedGeneration": ctx.generation,
        "replicas": n,
        "currentReplicas": n,
        "updatedReplicas": updated,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    });
    if ctx.fail {
        return vec![ctx.immediately(rolling)];
    }
    let ready = json!({
        "observedGeneration": ctx.generation,
        "replicas": n,
        "currentReplicas": n,
        "updatedReplicas": n,
        "readyReplicas": n,
        "availableReplicas": n,
        "currentRevision": update_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    });
    vec![ctx.immediately(rolling), ctx.delayed(ready)]
}

fn daemon_set(ctx: &Ctx) -> Vec<Stage> {
    let counts = |ready: i64| {
        json!({
            "observedGeneration": ctx.generation,
            "desiredNumberScheduled": DAEMONSET_NODES,
            "currentNumberScheduled": DAEMONSET_NODES,
            "updatedNumberScheduled": DAEMONSET_NODES,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "numberUnavailable": DAEMONSET_NODES - ready,
        })
    };
    if ctx.fail {
        return vec![ctx.immediately(counts(0))];
    }
    vec![
        ctx.immediately(counts(0)),
        ctx.delayed(counts(DAEMONSET_NODES)),
    ]
}

fn job(ctx: &Ctx) -> Vec<Stage> {
    if bool_at(ctx.obj, "/spec/suspend") && ctx.status.get("startTime").is_none() {
        let suspended = json!({
            "conditions": [ctx.condition("Suspended", "True", "JobSuspended", "Job suspended")],
        });
        return vec![ctx.immediately(suspended)];
    }
    let start = ctx.kept_time("startTime");
    let running = json!({ "startTime": start, "active": 1, "ready": 0 });
    let last = if ctx.fail {
        let backoff_limit = int_at(ctx.obj, "/spec/backoffLimit")
            .filter(|b| (0..=i64::from(i32::MAX)).contains(b))
            .unwrap_or(6);
        let message = "Job has reached the specified backoff limit";
        json!({
            "startTime": start,
            "failed": backoff_limit + 1,
            "ready": 0,
            "conditions": [
                ctx.condition("FailureTarget", "True", "BackoffLimitExceeded", message),
                ctx.condition("Failed", "True", "BackoffLimitExceeded", message),
            ],
        })
    } else {
        let completions = int_at(ctx.obj, "/spec/completions")
            .filter(|c| *c >= 0)
            .unwrap_or(1);
        let message = "Reached expected number of succeeded pods";
        json!({
            "startTime": start,
            "completionTime": max_time(&ctx.kept_time("completionTime"), &start),
            "succeeded": completions,
            "ready": 0,
            "conditions": [
                ctx.condition("SuccessCriteriaMet", "True", "CompletionsReached", message),
                ctx.condition("Complete", "True", "CompletionsReached", message),
            ],
        })
    };
    vec![ctx.immediately(running), ctx.delayed(last)]
}

/// A real API server stores an empty status for a new CronJob; health rules read its absence as
/// "not yet processed", so the sandbox writes it too. No Jobs are ever scheduled.
fn cron_job(ctx: &Ctx) -> Vec<Stage> {
    if ctx.status.is_object() {
        return Vec::new();
    }
    vec![ctx.immediately(json!({}))]
}

fn pod(ctx: &Ctx) -> Vec<Stage> {
    let restart_policy = str_at(ctx.obj, "/spec/restartPolicy").unwrap_or("Always");
    let containers: Vec<(&str, &str)> = ctx
        .obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c.get("name").and_then(Value::as_str).unwrap_or(""),
                        c.get("image").and_then(Value::as_str).unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let names = containers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" ");
    let start = ctx.kept_time("startTime");
    let scheduled = ctx.condition("PodScheduled", "True", "", "");
    let pending = json!({
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [scheduled],
    });
    let pod_ip = format!("10.244.0.{}", 2 + name_byte(ctx.namespace, ctx.name) % 250);
    let base = |phase: &str, conditions: Vec<Value>, statuses: Vec<Value>| {
        json!({
            "phase": phase,
            "qosClass": "BestEffort",
            "hostIP": "192.0.2.1",
            "podIP": pod_ip,
            "podIPs": [{ "ip": pod_ip }],
            "startTime": start,
            "conditions": conditions,
            "containerStatuses": statuses,
        })
    };
    let conditions = |ready: &str, reason: &str, message: &str| {
        vec![
            ctx.condition("PodReadyToStartContainers", "True", "", ""),
            ctx.condition("Initialized", "True", "", ""),
            ctx.condition("Ready", ready, reason, message),
            ctx.condition("ContainersReady", ready, reason, message),
            ctx.condition("PodScheduled", "True", "", ""),
        ]
    };
    let container_status = |name: &str, image: &str, ready: bool, restarts: i64, state: Value| {
        let mut s = json!({
            "name": name,
            "image": image,
            "imageID": "",
            "ready": ready,
            "started": ready,
            "restartCount": restarts,
            "state": state,
        });
        if restarts > 0
            && let Some(m) = s.as_object_mut()
        {
            m.insert(
                "lastState".into(),
                json!({ "terminated": { "exitCode": 1, "reason": "Error", "startedAt": start, "finishedAt": start } }),
            );
        }
        s
    };
    let last = match (ctx.fail, restart_policy) {
        (false, "Never" | "OnFailure") => {
            let statuses = containers
                .iter()
                .map(|(n, i)| {
                    let done = json!({ "terminated": { "exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": start } });
                    container_status(n, i, false, 0, done)
                })
                .collect();
            base(
                "Succeeded",
                conditions("False", "PodCompleted", ""),
                statuses,
            )
        }
        (false, _) => {
            let statuses = containers
                .iter()
                .map(|(n, i)| {
                    container_status(n, i, true, 0, json!({ "running": { "startedAt": start } }))
                })
                .collect();
            base("Running", conditions("True", "", ""), statuses)
        }
        (true, "Never") => {
            let statuses = containers
                .iter()
                .map(|(n, i)| {
                    let failed = json!({ "terminated": { "exitCode": 1, "reason": "Error", "startedAt": start, "finishedAt": start } });
                    container_status(n, i, false, 0, failed)
                })
                .collect();
            base("Failed", conditions("False", "PodFailed", ""), statuses)
        }
        (true, _) => {
            let statuses = containers
                .iter()
                .map(|(n, i)| {
                    let message = format!(
                        "back-off 40s restarting failed container={n} pod={}_{}",
                        ctx.name, ctx.namespace
                    );
                    let waiting =
                        json!({ "waiting": { "reason": "CrashLoopBackOff", "message": message } });
                    container_status(n, i, false, CRASH_RESTARTS, waiting)
                })
                .collect();
            let message = format!("containers with unready status: [{names}]");
            base(
                "Running",
                conditions("False", "ContainersNotReady", &message),
                statuses,
            )
        }
    };
    vec![ctx.immediately(pending), ctx.delayed(last)]
}

fn service(ctx: &Ctx) -> Vec<Stage> {
    let is_lb = str_at(ctx.obj, "/spec/type") == Some("LoadBalancer");
    let has_ingress = ctx
        .status
        .pointer("/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !is_lb {
        // A Service that stopped being a LoadBalancer loses its address.
        if has_ingress {
            return vec![ctx.immediately(json!({ "loadBalancer": {} }))];
        }
        return Vec::new();
    }
    if ctx.fail {
        return Vec::new();
    }
    let ip = format!("192.0.2.{}", 1 + name_byte(ctx.namespace, ctx.name) % 254);
    vec![ctx.delayed(json!({ "loadBalancer": { "ingress": [{ "ip": ip, "ipMode": "VIP" }] } }))]
}

/// Ingress: an ingress controller publishes an address (TEST-NET-2, so it differs from Services').
fn ingress(ctx: &Ctx) -> Vec<Stage> {
    if ctx.fail {
        return Vec::new();
    }
    let ip = format!(
        "198.51.100.{}",
        1 + name_byte(ctx.namespace, ctx.name) % 254
    );
    vec![ctx.delayed(json!({ "loadBalancer": { "ingress": [{ "ip": ip }] } }))]
}

/// HorizontalPodAutoscaler: able to scale, holding `minReplicas` (there are no metrics to act on).
fn hpa(ctx: &Ctx) -> Vec<Stage> {
    let min = int_at(ctx.obj, "/spec/minReplicas")
        .filter(|m| *m >= 0)
        .unwrap_or(1);
    let conditions = if ctx.fail {
        vec![ctx.condition(
            "AbleToScale",
            "False",
            "FailedGetScale",
            &format!("the HPA controller was unable to get the target's current scale: simulated failure ({FAIL_ANNOTATION})"),
        )]
    } else {
        vec![
            ctx.condition(
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
            ),
            ctx.condition(
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count",
            ),
            ctx.condition(
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            ),
        ]
    };
    let status = json!({
        "currentReplicas": min,
        "desiredReplicas": min,
        "currentMetrics": [],
        "conditions": conditions,
    });
    vec![ctx.delayed(status)]
}

/// Namespace: the API server marks a new namespace Active; the sandbox does it here if it did not.
fn namespace(ctx: &Ctx) -> Vec<Stage> {
    if str_at(ctx.status, "/phase").is_some() {
        return Vec::new();
    }
    let mut status = ctx.status.as_object().cloned().unwrap_or_default();
    status.insert("phase".into(), json!("Active"));
    vec![ctx.immediately(Value::Object(status))]
}

fn pvc(ctx: &Ctx) -> Vec<Stage> {
    let pending = json!({ "phase": "Pending" });
    if ctx.fail {
        return vec![ctx.immediately(pending)];
    }
    let access_modes = ctx
        .obj
        .pointer("/spec/accessModes")
        .filter(|v| v.is_array())
        .cloned()
        .unwrap_or_else(|| json!(["ReadWriteOnce"]));
    let storage = ctx
        .obj
        .pointer("/spec/resources/requests/storage")
        .filter(|v| v.is_string() || v.is_number())
        .cloned()
        .unwrap_or_else(|| json!("1Gi"));
    let bound = json!({
        "phase": "Bound",
        "accessModes": access_modes,
        "capacity": { "storage": storage },
    });
    vec![ctx.immediately(pending), ctx.delayed(bound)]
}

/// Parses a Go `time.ParseDuration` string (`1h30m`, `1.5s`, `300ms`); None when invalid or negative.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The latest of creationTimestamp and the managedFields write times, or the epoch.
fn latest_write(obj: &Value) -> String {
    let created = str_at(obj, "/metadata/creationTimestamp");
    let managed = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("time").and_then(Value::as_str));
    created
        .into_iter()
        .chain(managed)
        .filter(|t| looks_like_time(t))
        .fold(EPOCH.to_string(), |acc, t| max_time(&acc, t))
}

/// Later of two RFC 3339 UTC timestamps (seconds precision compares correctly as text).
fn max_time(a: &str, b: &str) -> String {
    if b > a { b.to_string() } else { a.to_string() }
}

/// Accepts only RFC 3339-shaped strings, so garbage never ends up in a written status.
fn looks_like_time(t: &str) -> bool {
    let b = t.as_bytes();
    (20..=35).contains(&b.len())
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && t.is_ascii()
}

/// FNV-1a 64 of the text, rendered with Kubernetes' name-suffix alphabet (10 characters).
fn short_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = SAFE_CHARS[(h % SAFE_CHARS.len() as u64) as usize];
            h /= SAFE_CHARS.len() as u64;
            char::from(c)
        })
        .collect()
}

/// A stable small number derived from the object's identity (for addresses).
fn name_byte(namespace: &str, name: &str) -> u64 {
    let hash = short_hash(&format!("{namespace}/{name}"));
    hash.bytes().fold(0u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn bool_at(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SimSettings {
        SimSettings {
            ready_delay: Duration::from_millis(300),
        }
    }

    /// Applies plans until none is left; returns the object and the plans seen.
    fn converge(group: &str, kind: &str, mut obj: Value) -> (Value, Vec<StatusPlan>) {
        let mut plans = Vec::new();
        for _ in 0..10 {
            match next_status(group, kind, &obj, &settings()) {
                None => return (obj, plans),
                Some(p) => {
                    obj["status"] = p.status.clone();
                    plans.push(p);
                }
            }
        }
        panic!("{kind} did not converge: {plans:?}");
    }

    fn deployment_obj(annotations: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "demo", "generation": 1,
                          "creationTimestamp": "2026-01-02T03:04:05Z", "annotations": annotations },
            "spec": { "replicas": 3, "template": { "spec": { "containers": [{ "name": "app", "image": "nginx" }] } } }
        })
    }

    fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
            .unwrap_or(&Value::Null)
    }

    fn rollout(replicas: i64, ready: i64, settled: bool) -> Rollout {
        Rollout {
            new_replica_set: "web-abc".into(),
            replicas,
            updated: replicas,
            ready,
            available: ready,
            settled,
        }
    }

    #[test]
    fn deployment_status_follows_its_replica_sets() {
        let obj = deployment_obj(json!({}));
        let starting = deployment_status(&obj, &rollout(3, 0, false), &settings());
        assert_eq!(starting["observedGeneration"], 1);
        assert_eq!(starting["unavailableReplicas"], 3);
        assert!(starting.get("readyReplicas").is_none());
        assert_eq!(condition(&starting, "Available")["status"], "False");
        assert_eq!(
            condition(&starting, "Progressing")["reason"],
            "ReplicaSetUpdated"
        );
        let done = deployment_status(&obj, &rollout(3, 3, true), &settings());
        assert_eq!(done["readyReplicas"], 3);
        assert_eq!(done["availableReplicas"], 3);
        assert_eq!(done["updatedReplicas"], 3);
        assert!(done.get("unavailableReplicas").is_none());
        assert_eq!(condition(&done, "Available")["status"], "True");
        let progressing = condition(&done, "Progressing");
        assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
        assert_eq!(
            progressing["message"],
            "ReplicaSet \"web-abc\" has successfully progressed."
        );
        assert_eq!(progressing["lastTransitionTime"], "2026-01-02T03:04:05Z");
    }

    #[test]
    fn failing_deployment_exceeds_its_deadline_once_its_pods_settle() {
        let obj = deployment_obj(json!({ FAIL_ANNOTATION: "true" }));
        let early = deployment_status(&obj, &rollout(3, 0, false), &settings());
        assert_eq!(condition(&early, "Progressing")["status"], "True");
        let late = deployment_status(&obj, &rollout(3, 0, true), &settings());
        let progressing = condition(&late, "Progressing");
        assert_eq!(progressing["status"], "False");
        assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
        assert_eq!(
            progressing["message"],
            "ReplicaSet \"web-abc\" has timed out progressing."
        );
        assert_eq!(condition(&late, "Available")["status"], "False");
    }

    #[test]
    fn old_replicas_keep_the_rollout_progressing() {
        let obj = deployment_obj(json!({}));
        let mut r = rollout(3, 3, true);
        r.replicas = 5;
        let status = deployment_status(&obj, &r, &settings());
        assert_eq!(status["replicas"], 5);
        assert_eq!(
            condition(&status, "Progressing")["reason"],
            "ReplicaSetUpdated"
        );
    }

    #[test]
    fn paused_deployment_reports_paused() {
        let mut obj = deployment_obj(json!({}));
        obj["spec"]["paused"] = json!(true);
        let status = deployment_status(&obj, &Rollout::default(), &settings());
        assert_eq!(
            condition(&status, "Progressing")["reason"],
            "DeploymentPaused"
        );
    }

    #[test]
    fn replica_set_status_counts_ready_pods() {
        let rs =
            json!({ "metadata": { "name": "rs", "generation": 2 }, "spec": { "replicas": 2 } });
        let ready = json!({ "status": { "conditions": [{ "type": "Ready", "status": "True" }] } });
        let pending = json!({ "status": { "phase": "Pending" } });
        let status = replica_set_status(&rs, &[&ready, &pending]);
        assert_eq!(
            status,
            json!({ "replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1,
                    "availableReplicas": 1, "observedGeneration": 2 })
        );
        assert_eq!(
            replica_set_status(&rs, &[]),
            json!({ "replicas": 0, "observedGeneration": 2 })
        );
        assert_eq!(next_status("apps", "ReplicaSet", &rs, &settings()), None);
        assert_eq!(next_status("apps", "Deployment", &rs, &settings()), None);
    }

    #[test]
    fn settled_status_is_stable_when_time_moves_on() {
        let kinds = [
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("", "Pod"),
            ("", "Service"),
            ("", "PersistentVolumeClaim"),
            ("", "Namespace"),
            ("networking.k8s.io", "Ingress"),
            ("autoscaling", "HorizontalPodAutoscaler"),
        ];
        for fail in ["false", "true"] {
            for (group, kind) in kinds {
                let mut obj = deployment_obj(json!({ FAIL_ANNOTATION: fail }));
                obj["spec"]["type"] = json!("LoadBalancer");
                let (mut obj, plans) = converge(group, kind, obj);
                assert!(!plans.is_empty() || fail == "true", "{kind}");
                obj["metadata"]["managedFields"] =
                    json!([{ "manager": "sandbox", "time": "2027-01-01T00:00:00Z" }]);
                assert_eq!(next_status(group, kind, &obj, &settings()), None, "{kind}");
            }
        }
    }

    #[test]
    fn statefulset_moves_its_current_revision_after_the_update() {
        let obj = json!({
            "metadata": { "name": "db", "generation": 1 },
            "spec": { "replicas": 2, "template": { "spec": { "containers": [{ "name": "pg" }] } } }
        });
        let (mut obj, _) = converge("apps", "StatefulSet", obj);
        let first = obj["status"]["updateRevision"].clone();
        assert_eq!(obj["status"]["readyReplicas"], 2);
        obj["metadata"]["generation"] = json!(2);
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!("pg:17");
        let (obj, plans) = converge("apps", "StatefulSet", obj);
        assert_eq!(plans[0].status["currentRevision"], first);
        assert_ne!(plans[0].status["updateRevision"], first);
        assert_eq!(
            obj["status"]["currentRevision"],
            obj["status"]["updateRevision"]
        );
    }

    #[test]
    fn daemonset_becomes_ready() {
        let ds = json!({ "metadata": { "name": "ds", "generation": 1 }, "spec": {} });
        let (ds, _) = converge("apps", "DaemonSet", ds);
        assert_eq!(ds["status"]["numberAvailable"], 1);
        assert_eq!(ds["status"]["desiredNumberScheduled"], 1);
    }

    #[test]
    fn job_completes_or_fails() {
        let job = json!({ "metadata": { "name": "migrate", "creationTimestamp": "2026-01-02T03:04:05Z" },
                          "spec": { "completions": 2 } });
        let (done, plans) = converge("batch", "Job", job.clone());
        assert_eq!(plans[0].status["active"], 1);
        assert_eq!(done["status"]["succeeded"], 2);
        assert_eq!(condition(&done["status"], "Complete")["status"], "True");
        assert_eq!(
            condition(&done["status"], "SuccessCriteriaMet")["status"],
            "True"
        );
        assert_eq!(done["status"]["completionTime"], "2026-01-02T03:04:05Z");

        let mut failing = job;
        failing["metadata"]["annotations"] = json!({ FAIL_ANNOTATION: "true" });
        let (failed, _) = converge("batch", "Job", failing);
        assert_eq!(
            condition(&failed["status"], "Failed")["reason"],
            "BackoffLimitExceeded"
        );
        assert_eq!(failed["status"]["failed"], 7);
    }

    #[test]
    fn pod_runs_ready_or_crash_loops() {
        let pod = json!({ "metadata": { "name": "p", "namespace": "n" },
                          "spec": { "containers": [{ "name": "a", "image": "busybox" }] } });
        let (running, plans) = converge("", "Pod", pod.clone());
        assert_eq!(plans[0].status["phase"], "Pending");
        assert_eq!(running["status"]["phase"], "Running");
        assert_eq!(condition(&running["status"], "Ready")["status"], "True");
        assert_eq!(running["status"]["containerStatuses"][0]["ready"], true);

        let mut failing = pod;
        failing["metadata"]["annotations"] = json!({ FAIL_ANNOTATION: "true" });
        let (crashing, _) = converge("", "Pod", failing);
        let c = &crashing["status"]["containerStatuses"][0];
        assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert!(c["restartCount"].as_i64().unwrap_or(0) > 0);
        assert_eq!(condition(&crashing["status"], "Ready")["status"], "False");
    }

    #[test]
    fn load_balancer_gets_a_stable_test_net_address() {
        let svc = json!({ "metadata": { "name": "web", "namespace": "demo" }, "spec": { "type": "LoadBalancer" } });
        let (a, _) = converge("", "Service", svc.clone());
        let (b, _) = converge("", "Service", svc);
        let ip = a["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .unwrap_or("");
        assert!(ip.starts_with("192.0.2."), "{ip}");
        assert_eq!(a["status"], b["status"]);
        let cluster_ip = json!({ "metadata": { "name": "web" }, "spec": { "type": "ClusterIP" } });
        assert_eq!(next_status("", "Service", &cluster_ip, &settings()), None);
    }

    #[test]
    fn pvc_binds_with_the_requested_capacity() {
        let pvc = json!({ "metadata": { "name": "data" },
                          "spec": { "resources": { "requests": { "storage": "5Gi" } } } });
        let (pvc, _) = converge("", "PersistentVolumeClaim", pvc);
        assert_eq!(pvc["status"]["phase"], "Bound");
        assert_eq!(pvc["status"]["capacity"]["storage"], "5Gi");
    }

    #[test]
    fn unsimulated_kinds_have_no_plan() {
        let cm = json!({ "metadata": { "name": "c" }, "data": {} });
        assert_eq!(next_status("", "ConfigMap", &cm, &settings()), None);
        let (cron, plans) = converge("batch", "CronJob", cm.clone());
        assert_eq!((cron["status"].clone(), plans.len()), (json!({}), 1));
        let scheduled = json!({ "status": { "lastScheduleTime": "2026-01-01T00:00:00Z" } });
        assert_eq!(
            next_status("batch", "CronJob", &scheduled, &settings()),
            None
        );
    }

    #[test]
    fn garbage_input_is_treated_as_defaults() {
        for g in [json!(null), json!("x"), json!([1, 2])] {
            for (group, kind) in [("apps", "StatefulSet"), ("batch", "Job"), ("", "Pod")] {
                assert!(
                    next_status(group, kind, &g, &settings()).is_some(),
                    "{kind}"
                );
            }
        }
        let garbage = [
            json!({ "metadata": "x", "spec": { "replicas": "three" }, "status": "broken" }),
            json!({ "metadata": { "generation": "x", "annotations": { READY_DELAY_ANNOTATION: "soon" } },
                    "spec": { "replicas": -4, "template": 7, "containers": "x" }, "status": [1] }),
        ];
        for kind in ["StatefulSet", "DaemonSet"] {
            for g in &garbage {
                let (obj, _) = converge("apps", kind, g.clone());
                assert!(obj["status"].is_object(), "{kind}");
            }
        }
        for (group, kind) in [("batch", "Job"), ("", "Pod"), ("", "PersistentVolumeClaim")] {
            for g in &garbage {
                converge(group, kind, g.clone());
            }
        }
        for g in &garbage {
            let status = deployment_status(g, &rollout(1, 1, true), &settings());
            assert_eq!(status["readyReplicas"], 1);
            replica_set_status(g, &[g]);
        }
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in [
            "",
            "5",
            "s",
            "-1s",
            "5x",
            "1e400s",
            "..s",
            "9".repeat(400).as_str(),
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
