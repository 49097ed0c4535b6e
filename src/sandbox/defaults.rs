//! API-server defaulting for built-in kinds, as Kubernetes v1.33's `pkg/apis/*/v1/defaults.go`
//! and the Service registry do it, plus dropping empty metadata maps a real server never returns.
//!
//! Applied on every write of the main resource (create, update, patch, server-side apply, dry-run
//! included). For apply it runs after the managed-fields computation, so defaulted fields are never
//! owned by the applier and re-applying the same manifest changes nothing.

use serde_json::{Map, Value, json};

/// First address of the simulated service CIDR 10.96.0.0/12, as a number.
const SERVICE_CIDR_BASE: u32 = 10 << 24 | 96 << 16;
/// Addresses in a /12.
const SERVICE_CIDR_SIZE: u32 = 1 << 20;
/// The first addresses are reserved (network, the `kubernetes` Service, cluster DNS at .10).
const SERVICE_CIDR_RESERVED: u32 = 16;
/// The default NodePort range, 30000-32767.
const NODE_PORT_FIRST: u32 = 30000;
const NODE_PORT_COUNT: u32 = 2768;

/// Fills in what a real API server defaults for this built-in kind and drops empty metadata maps.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    drop_empty_metadata(obj);
    if !obj.is_object() {
        return;
    }
    match (group, kind) {
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => replica_set(obj),
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("", "Pod") => pod(obj),
        ("", "Service") => service(obj),
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = spec_mut(obj) {
                set(spec, "volumeMode", json!("Filesystem"));
            }
        }
        ("", "Secret") => {
            if let Some(m) = obj.as_object_mut() {
                set(m, "type", json!("Opaque"));
            }
        }
        _ => {}
    }
}

/// A real server omits empty labels, annotations, finalizers and ownerReferences on output.
pub fn drop_empty_metadata(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
        let empty = match meta.get(field) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            meta.remove(field);
        }
    }
}

/// Sets `key` only when it is absent (or null, which a real server decodes as absent).
fn set(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// The object at `key`, created empty when absent; None when it is something else.
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), json!({}));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

fn spec_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.as_object_mut().and_then(|m| child(m, "spec"))
}

/// The pod template's spec, when the workload has one.
fn template_spec(spec: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    spec.get_mut("template")?
        .as_object_mut()?
        .get_mut("spec")?
        .as_object_mut()
}

fn deployment(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    set(spec, "replicas", json!(1));
    if let Some(strategy) = child(spec, "strategy") {
        set(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = child(strategy, "rollingUpdate")
        {
            set(rolling, "maxUnavailable", json!("25%"));
            set(rolling, "maxSurge", json!("25%"));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    if let Some(pod) = template_spec(spec) {
        pod_spec(pod, true);
    }
}

fn replica_set(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    set(spec, "replicas", json!(1));
    if let Some(pod) = template_spec(spec) {
        pod_spec(pod, true);
    }
}

fn stateful_set(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    set(spec, "replicas", json!(1));
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(strategy) = child(spec, "updateStrategy") {
        set(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = child(strategy, "rollingUpdate")
        {
            set(rolling, "partition", json!(0));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    if let Some(policy) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        set(policy, "whenDeleted", json!("Retain"));
        set(policy, "whenScaled", json!("Retain"));
    }
    if let Some(pod) = template_spec(spec) {
        pod_spec(pod, true);
    }
}

fn daemon_set(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    if let Some(strategy) = child(spec, "updateStrategy") {
        set(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = child(strategy, "rollingUpdate")
        {
            set(rolling, "maxUnavailable", json!(1));
            set(rolling, "maxSurge", json!(0));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    if let Some(pod) = template_spec(spec) {
        pod_spec(pod, true);
    }
}

fn job(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    job_spec(spec);
}

/// Job defaults; a Job's restartPolicy is required (Never/OnFailure), so it is not defaulted.
fn job_spec(spec: &mut Map<String, Value>) {
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    let per_index = spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null());
    set(
        spec,
        "backoffLimit",
        json!(if per_index { i64::from(i32::MAX) } else { 6 }),
    );
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
    set(
        spec,
        "podReplacementPolicy",
        json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    if let Some(pod) = template_spec(spec) {
        pod_spec(pod, false);
    }
}

fn cron_job(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    set(spec, "concurrencyPolicy", json!("Allow"));
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    // The job template's JobSpec is not defaulted (SetDefaults_Job is per Job), its pods are.
    if let Some(pod) = spec
        .get_mut("jobTemplate")
        .and_then(Value::as_object_mut)
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
        .and_then(template_spec)
    {
        pod_spec(pod, false);
    }
}

fn pod(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    pod_spec(spec, true);
    set(spec, "enableServiceLinks", json!(true));
}

/// SetDefaults_PodSpec and the per-container defaults.
fn pod_spec(spec: &mut Map<String, Value>, default_restart: bool) {
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    if default_restart {
        set(spec, "restartPolicy", json!("Always"));
    }
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    set(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                container(c);
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    set(c, "imagePullPolicy", json!(pull_policy(image)));
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    set(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set(p, "timeoutSeconds", json!(1));
            set(p, "periodSeconds", json!(10));
            set(p, "successThreshold", json!(1));
            set(p, "failureThreshold", json!(3));
            if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set(get, "path", json!("/"));
                set(get, "scheme", json!("HTTP"));
            }
        }
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent` (a digest counts as a tag).
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn service(obj: &mut Value) {
    let id = format!(
        "{}/{}",
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("")
    );
    let Some(spec) = spec_mut(obj) else { return };
    set(spec, "type", json!("ClusterIP"));
    set(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let external_name = ty == "ExternalName";
    if !external_name {
        let ip = match spec.get("clusterIP").and_then(Value::as_str) {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => cluster_ip(&id),
        };
        spec.insert("clusterIP".into(), json!(ip));
        set(spec, "clusterIPs", json!([ip]));
        set(spec, "ipFamilies", json!(["IPv4"]));
        set(spec, "ipFamilyPolicy", json!("SingleStack"));
        set(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    let node_ports = matches!(ty.as_str(), "NodePort" | "LoadBalancer");
    if node_ports {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            set(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set(p, "targetPort", port);
            }
            if node_ports {
                set(p, "nodePort", json!(node_port(&id, i)));
            }
        }
    }
}

/// A stable ClusterIP for the Service `id` (namespace/name) in 10.96.0.0/12.
pub fn cluster_ip(id: &str) -> String {
    let offset =
        SERVICE_CIDR_RESERVED + (fnv32(id) % (SERVICE_CIDR_SIZE - 2 * SERVICE_CIDR_RESERVED));
    std::net::Ipv4Addr::from(SERVICE_CIDR_BASE + offset).to_string()
}

/// A stable node port in 30000-32767 for port number `index` of Service `id`.
fn node_port(id: &str, index: usize) -> u32 {
    NODE_PORT_FIRST + fnv32(&format!("{id}#{index}")) % NODE_PORT_COUNT
}

/// FNV-1a 32, the hash Kubernetes itself uses for pod-template-hash.
pub fn fnv32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(group: &str, kind: &str, obj: Value) -> Value {
        let mut obj = obj;
        apply(group, kind, &mut obj);
        obj
    }

    fn nginx_template() -> Value {
        json!({ "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "app", "image": "nginx:1.27",
                                           "ports": [{ "containerPort": 80 }] }] } })
    }

    fn defaulted_pod_spec(containers: Value) -> Value {
        json!({
            "containers": containers,
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "securityContext": {},
            "schedulerName": "default-scheduler",
        })
    }

    fn defaulted_nginx() -> Value {
        json!([{ "name": "app", "image": "nginx:1.27", "ports": [{ "containerPort": 80, "protocol": "TCP" }],
                 "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                 "terminationMessagePolicy": "File", "resources": {} }])
    }

    #[test]
    fn deployment_gets_the_api_server_defaults() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({ "metadata": { "name": "web", "labels": {}, "annotations": {} },
                    "spec": { "selector": { "matchLabels": { "app": "web" } }, "template": nginx_template() } }),
        );
        assert_eq!(d["metadata"], json!({ "name": "web" }));
        assert_eq!(
            d["spec"],
            json!({
                "replicas": 1,
                "selector": { "matchLabels": { "app": "web" } },
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "25%", "maxSurge": "25%" } },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": { "metadata": { "labels": { "app": "web" } }, "spec": defaulted_pod_spec(defaulted_nginx()) },
            })
        );
    }

    #[test]
    fn given_values_are_kept_and_recreate_gets_no_rolling_update() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({ "spec": { "replicas": 0, "strategy": { "type": "Recreate" }, "revisionHistoryLimit": 2,
                              "template": { "spec": { "restartPolicy": "Never", "containers": [] } } } }),
        );
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["spec"]["strategy"], json!({ "type": "Recreate" }));
        assert_eq!(d["spec"]["revisionHistoryLimit"], 2);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        let table = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry:5000/team/app", "Always"),
            ("registry:5000/team/app:v2", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ];
        for (image, want) in table {
            assert_eq!(pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn statefulset_and_daemonset_defaults() {
        let s = defaulted(
            "apps",
            "StatefulSet",
            json!({ "spec": { "template": nginx_template() } }),
        );
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } })
        );
        assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({ "whenDeleted": "Retain", "whenScaled": "Retain" })
        );
        assert_eq!(
            s["spec"]["template"]["spec"]["schedulerName"],
            "default-scheduler"
        );
        let ds = defaulted(
            "apps",
            "DaemonSet",
            json!({ "spec": { "updateStrategy": { "type": "OnDelete" } } }),
        );
        assert_eq!(ds["spec"]["updateStrategy"], json!({ "type": "OnDelete" }));
        let ds = defaulted("apps", "DaemonSet", json!({ "spec": {} }));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1, "maxSurge": 0 } })
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let rs = defaulted("apps", "ReplicaSet", json!({ "spec": {} }));
        assert_eq!(rs["spec"]["replicas"], 1);
    }

    #[test]
    fn job_and_cronjob_defaults_leave_restart_policy_alone() {
        let j = defaulted(
            "batch",
            "Job",
            json!({ "spec": { "template": { "spec": { "containers": [{ "name": "m", "image": "x:1" }] } } } }),
        );
        let spec = &j["spec"];
        assert_eq!(
            (
                &spec["completions"],
                &spec["parallelism"],
                &spec["backoffLimit"]
            ),
            (&json!(1), &json!(1), &json!(6))
        );
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(spec.get("manualSelector").is_none());
        assert!(spec["template"]["spec"].get("restartPolicy").is_none());
        assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");

        let parallel = defaulted("batch", "Job", json!({ "spec": { "parallelism": 3 } }));
        assert!(parallel["spec"].get("completions").is_none());
        assert_eq!(parallel["spec"]["parallelism"], 3);

        let c = defaulted(
            "batch",
            "CronJob",
            json!({ "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": {
                "spec": { "restartPolicy": "OnFailure", "containers": [{ "name": "c", "image": "busybox" }] } } } } } }),
        );
        let spec = &c["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
        assert_eq!(
            spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn service_defaults_and_stable_addresses() {
        let svc = || {
            json!({ "metadata": { "name": "web", "namespace": "demo" },
                    "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80 }] } })
        };
        let s = defaulted("", "Service", svc());
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        let ip = spec["clusterIP"].as_str().unwrap_or("");
        let parsed: std::net::Ipv4Addr = ip.parse().expect("an IPv4 address");
        assert_eq!(u32::from(parsed) >> 20, SERVICE_CIDR_BASE >> 20, "{ip}");
        assert_eq!(spec["clusterIPs"], json!([ip]));
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(
            spec["ports"],
            json!([{ "port": 80, "protocol": "TCP", "targetPort": 80 }])
        );
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(defaulted("", "Service", svc())["spec"]["clusterIP"], ip);

        let mut headless = svc();
        headless["spec"]["clusterIP"] = json!("None");
        let h = defaulted("", "Service", headless);
        assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));

        let mut lb = svc();
        lb["spec"]["type"] = json!("LoadBalancer");
        lb["spec"]["ports"][0]["targetPort"] = json!("http");
        let l = defaulted("", "Service", lb);
        let port = &l["spec"]["ports"][0];
        assert_eq!(port["targetPort"], "http");
        let node_port = port["nodePort"].as_u64().unwrap_or(0);
        assert!((30000..=32767).contains(&node_port), "{node_port}");
        assert_eq!(l["spec"]["externalTrafficPolicy"], "Cluster");

        let ext = defaulted(
            "",
            "Service",
            json!({ "spec": { "type": "ExternalName", "externalName": "example.com" } }),
        );
        assert!(ext["spec"].get("clusterIP").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn small_kinds_and_untouched_kinds() {
        let pvc = defaulted("", "PersistentVolumeClaim", json!({ "spec": {} }));
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        let secret = defaulted("", "Secret", json!({ "data": {} }));
        assert_eq!(secret["type"], "Opaque");
        let cm = json!({ "metadata": { "name": "c" }, "data": { "k": "v" } });
        assert_eq!(defaulted("", "ConfigMap", cm.clone()), cm);
        let pod = defaulted(
            "",
            "Pod",
            json!({ "spec": { "containers": [{ "name": "a", "image": "busybox" }] } }),
        );
        assert_eq!(pod["spec"]["enableServiceLinks"], true);
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
    }

    #[test]
    fn defaulting_is_idempotent_and_survives_garbage() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({ "spec": { "template": nginx_template() } }),
        );
        assert_eq!(defaulted("apps", "Deployment", d.clone()), d);
        for garbage in [
            json!(null),
            json!("x"),
            json!({ "spec": 3 }),
            json!({ "spec": { "template": { "spec": { "containers": "x" } } } }),
        ] {
            for (g, k) in [
                ("apps", "Deployment"),
                ("", "Service"),
                ("batch", "Job"),
                ("", "Pod"),
            ] {
                defaulted(g, k, garbage.clone());
            }
        }
    }

    #[test]
    fn empty_metadata_collections_are_dropped() {
        let mut obj = json!({ "metadata": { "name": "x", "labels": {}, "annotations": {}, "finalizers": [],
                                            "ownerReferences": [], "uid": "u" } });
        drop_empty_metadata(&mut obj);
        assert_eq!(obj["metadata"], json!({ "name": "x", "uid": "u" }));
        let mut kept = json!({ "metadata": { "labels": { "a": "b" } } });
        drop_empty_metadata(&mut kept);
        assert_eq!(kept["metadata"]["labels"]["a"], "b");
    }
}
