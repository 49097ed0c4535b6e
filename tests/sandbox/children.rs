//! Fidelity of what the sandbox stores: Deployments own ReplicaSets and Pods like on a real
//! cluster, built-in kinds get the API server's defaults, and empty metadata maps are omitted.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use serde_json::{Value, json};

use super::{kubectl, start, text, write_kubeconfig};

const NS: &str = "default";

fn deployment(name: &str, image: &str, replicas: i64, annotations: Value) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "labels": { "capstan.dev/app": "shop" }, "annotations": annotations },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "web", "image": image, "ports": [{ "containerPort": 80 }] }] }
            }
        }
    });
    if annotations.as_object().is_some_and(|a| a.is_empty())
        && let Some(meta) = d["metadata"].as_object_mut()
    {
        meta.remove("annotations");
    }
    d
}

async fn apply(api: &Api<Deployment>, manifest: &Value) -> Deployment {
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::apply("capstan-test"),
        &Patch::Apply(manifest),
    )
    .await
    .expect("server-side apply")
}

/// Polls `check` until it returns Some, failing with `what` after a generous wait.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

fn owned_by<'a, T: kube::Resource>(items: &'a [T], uid: &str) -> Vec<&'a T> {
    items
        .iter()
        .filter(|o| {
            o.meta()
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits until the Deployment's current ReplicaSet runs `n` ready Pods and the Deployment says so.
async fn rolled_out(
    client: &kube::Client,
    name: &str,
    n: usize,
) -> (Deployment, ReplicaSet, Vec<Pod>) {
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    eventually(&format!("{name} rolled out with {n} pods"), || async {
        let d = deploys.get(name).await.ok()?;
        let uid = d.metadata.uid.clone()?;
        let status = d.status.clone()?;
        let revision = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"));
        if revision.is_none()
            || status.observed_generation != d.metadata.generation
            || status.available_replicas.unwrap_or(0) as usize != n
            || status.replicas.unwrap_or(0) as usize != n
            || status.updated_replicas.unwrap_or(0) as usize != n
        {
            return None;
        }
        let all_sets = sets.list(&ListParams::default()).await.ok()?.items;
        let current = owned_by(&all_sets, &uid)
            .into_iter()
            .find(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0 || n == 0)?
            .clone();
        let rs_uid = current.metadata.uid.clone()?;
        let all_pods = pods.list(&ListParams::default()).await.ok()?.items;
        let mine: Vec<Pod> = owned_by(&all_pods, &rs_uid).into_iter().cloned().collect();
        (mine.len() == n && mine.iter().all(pod_ready)).then_some((d, current, mine))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_owns_a_replica_set_and_ready_pods() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let manifest = deployment("web", "nginx:1.27", 2, json!({ "team": "shop" }));
    apply(&deploys, &manifest).await;
    let (d, rs, pods) = rolled_out(&client, "web", 2).await;

    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let hash = rs_name
        .strip_prefix("web-")
        .expect("rs named <deployment>-<hash>");
    let rs_labels = rs.metadata.labels.clone().unwrap_or_default();
    assert_eq!(rs_labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        rs_labels.get("pod-template-hash").map(String::as_str),
        Some(hash)
    );
    assert!(
        !rs_labels.contains_key("capstan.dev/app"),
        "parent labels are not copied"
    );
    let rs_annotations = rs.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        rs_annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    assert!(
        !rs_annotations.contains_key("team"),
        "parent annotations are not copied"
    );
    let owner = &rs.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(Some(&owner.uid), d.metadata.uid.as_ref());
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert!(rs.metadata.uid.is_some() && rs.metadata.creation_timestamp.is_some());
    assert_eq!(rs.metadata.generation, Some(1));
    let rs_status = rs.status.clone().expect("rs status");
    assert_eq!(
        (
            rs_status.replicas,
            rs_status.ready_replicas,
            rs_status.available_replicas
        ),
        (2, Some(2), Some(2))
    );
    assert_eq!(rs_status.fully_labeled_replicas, Some(2));

    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let suffix = name
            .strip_prefix(&format!("{rs_name}-"))
            .expect("pod named <rs>-<suffix>");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name}"
        );
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("pod-template-hash").map(String::as_str),
            Some(hash)
        );
        assert!(!labels.contains_key("capstan.dev/app"));
        let owner = &pod.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReplicaSet", rs_name.as_str())
        );
        let spec = pod.spec.clone().expect("pod spec");
        assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        assert_eq!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
    }

    let d = eventually("the Deployment carries its revision", || async {
        let d = Api::<Deployment>::namespaced(client.clone(), NS)
            .get("web")
            .await
            .ok()?;
        let annotations = d.metadata.annotations.clone()?;
        (annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str)
            == Some("1")
            && annotations.get("team").map(String::as_str) == Some("shop"))
        .then_some(d)
    })
    .await;
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("Progressing condition");
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("ReplicaSet \"{rs_name}\" has successfully progressed.").as_str())
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_change_rolls_to_a_new_replica_set_and_scaling_changes_pods() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    apply(&deploys, &deployment("web", "nginx:1.27", 2, json!({}))).await;
    let (_, first, first_pods) = rolled_out(&client, "web", 2).await;

    apply(&deploys, &deployment("web", "nginx:1.28", 2, json!({}))).await;
    let (_, second, _) = eventually("a second ReplicaSet runs", || async {
        let r = rolled_out(&client, "web", 2).await;
        (r.1.metadata.name != first.metadata.name).then_some(r)
    })
    .await;
    assert_eq!(
        second.metadata.annotations.unwrap_or_default()["deployment.kubernetes.io/revision"],
        "2"
    );
    let old = sets
        .get(first.metadata.name.as_deref().unwrap_or_default())
        .await
        .expect("the old ReplicaSet is kept as history");
    assert_eq!(old.spec.and_then(|s| s.replicas), Some(0));
    for p in first_pods {
        let name = p.metadata.name.unwrap_or_default();
        assert!(
            pods.get_opt(&name).await.expect("get").is_none(),
            "old pod {name} is gone"
        );
    }

    apply(&deploys, &deployment("web", "nginx:1.28", 3, json!({}))).await;
    let (_, scaled, scaled_pods) = rolled_out(&client, "web", 3).await;
    assert_eq!(
        scaled.metadata.name, second.metadata.name,
        "scaling keeps the ReplicaSet"
    );
    assert_eq!(scaled_pods.len(), 3);
    apply(&deploys, &deployment("web", "nginx:1.28", 1, json!({}))).await;
    rolled_out(&client, "web", 1).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_limit_trims_old_replica_sets() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    for tag in ["1", "2", "3", "4"] {
        let mut m = deployment("web", &format!("nginx:{tag}"), 1, json!({}));
        m["spec"]["revisionHistoryLimit"] = json!(1);
        apply(&deploys, &m).await;
        eventually("the new ReplicaSet exists", || async {
            let d = deploys.get("web").await.ok()?;
            let status = d.status?;
            if status.observed_generation != d.metadata.generation {
                return None;
            }
            let reason = status
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Progressing")?
                .reason?;
            (reason == "NewReplicaSetAvailable"
                && sets.list(&ListParams::default()).await.ok()?.items.len() <= 2)
                .then_some(())
        })
        .await;
    }
    let names: Vec<String> = sets
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|rs| {
            rs.metadata
                .annotations?
                .get("deployment.kubernetes.io/revision")
                .cloned()
        })
        .collect();
    let mut revisions = names;
    revisions.sort();
    assert_eq!(revisions, ["3", "4"], "one old ReplicaSet is kept");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_removes_its_children() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for (name, policy) in [
        ("bg", PropagationPolicy::Background),
        ("fg", PropagationPolicy::Foreground),
    ] {
        apply(&deploys, &deployment(name, "nginx:1.27", 2, json!({}))).await;
        rolled_out(&client, name, 2).await;
        deploys
            .delete(
                name,
                &DeleteParams {
                    propagation_policy: Some(policy),
                    ..Default::default()
                },
            )
            .await
            .expect("delete");
        eventually(&format!("{name}'s children are collected"), || async {
            let rs = sets.list(&ListParams::default()).await.ok()?.items;
            let ps = pods.list(&ListParams::default()).await.ok()?.items;
            (rs.is_empty() && ps.is_empty()).then_some(())
        })
        .await;
        // Nothing comes back once the owner is gone.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            sets.list(&ListParams::default())
                .await
                .expect("list")
                .items
                .is_empty()
        );
        assert!(
            pods.list(&ListParams::default())
                .await
                .expect("list")
                .items
                .is_empty()
        );
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deployment_exceeds_its_deadline_with_crash_looping_pods() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let manifest = deployment(
        "broken",
        "nginx:1.27",
        1,
        json!({ "sandbox.capstan.dev/fail": "true" }),
    );
    apply(&deploys, &manifest).await;
    let reason = eventually("the deadline is exceeded", || async {
        let d = deploys.get("broken").await.ok()?;
        let c = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.status == "False").then_some(c.reason)
    })
    .await;
    assert_eq!(reason.as_deref(), Some("ProgressDeadlineExceeded"));
    let all = pods.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(all.len(), 1);
    let waiting = all[0]
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs[0].state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    assert_eq!(waiting.as_deref(), Some("CrashLoopBackOff"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reapplying_is_a_no_op_and_dry_run_equals_the_live_object() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let manifest = deployment("web", "nginx", 1, json!({}));
    apply(&deploys, &manifest).await;
    let (live, _, _) = rolled_out(&client, "web", 1).await;
    let again = apply(&deploys, &manifest).await;
    assert_eq!(
        again.metadata.resource_version,
        live.metadata.resource_version
    );

    let dry = deploys
        .patch(
            "web",
            &PatchParams::apply("capstan-test").dry_run(),
            &Patch::Apply(&manifest),
        )
        .await
        .expect("dry-run apply");
    let strip = |d: &Deployment| {
        let mut v = serde_json::to_value(d).expect("json");
        v["metadata"]["managedFields"] = Value::Null;
        v
    };
    assert_eq!(strip(&dry), strip(&live));
    let spec = serde_json::to_value(&live.spec).expect("json");
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    // The applier owns only what it sent: defaults are nobody's.
    let owned = serde_json::to_string(&live.metadata.managed_fields).expect("json");
    assert!(!owned.contains("progressDeadlineSeconds"), "{owned}");

    let svc = json!({ "apiVersion": "v1", "kind": "Service",
                      "metadata": { "name": "web", "labels": {}, "annotations": {} },
                      "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80 }] } });
    let pp = PatchParams::apply("capstan-test");
    let first = services
        .patch("web", &pp, &Patch::Apply(&svc))
        .await
        .expect("apply svc");
    let second = services
        .patch("web", &pp, &Patch::Apply(&svc))
        .await
        .expect("re-apply svc");
    assert_eq!(
        first.metadata.resource_version,
        second.metadata.resource_version
    );
    assert_eq!(first.metadata.labels, None, "no empty labels map");
    assert_eq!(first.metadata.annotations, None, "no empty annotations map");
    let spec = first.spec.expect("spec");
    assert!(
        spec.cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10."))
    );
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_children_and_defaults() {
    let sb = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = write_kubeconfig(&sb, dir.path());
    let file = dir.path().join("web.yaml");
    let manifest = deployment("web", "nginx:1.27", 2, json!({}));
    std::fs::write(&file, serde_json::to_string(&manifest).expect("json")).expect("write");
    let out = kubectl(
        &kc,
        &[
            "apply",
            "--server-side",
            "-f",
            file.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    rolled_out(&sb.client(), "web", 2).await;

    let out = kubectl(&kc, &["get", "rs,pods", "-n", NS]).await;
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let rs_line = table
        .lines()
        .find(|l| l.starts_with("replicaset.apps/web-"))
        .unwrap_or_else(|| panic!("no ReplicaSet row: {table}"));
    let pod_rows: Vec<&str> = table
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "pod/{}-",
                rs_line
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("replicaset.apps/")
            ))
        })
        .collect();
    assert_eq!(
        pod_rows.len(),
        2,
        "pods named after their ReplicaSet: {table}"
    );
    let out = kubectl(
        &kc,
        &[
            "get",
            "pods",
            "-n",
            NS,
            "-o",
            "jsonpath={.items[*].status.phase}",
        ],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Running Running",
        "{}",
        text(&out)
    );

    let out = kubectl(&kc, &["get", "deploy", "web", "-n", NS, "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("deployment json");
    let spec = &d["spec"];
    assert_eq!(
        spec["strategy"],
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } })
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    let pod_spec = &spec["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert_eq!(pod_spec["schedulerName"], "default-scheduler");
    assert_eq!(pod_spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(
        pod_spec["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(pod_spec["containers"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(d["status"]["readyReplicas"], 2);

    let out = kubectl(&kc, &["get", "deploy", "web", "-n", NS, "-o", "yaml"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.contains("progressDeadlineSeconds: 600"), "{yaml}");
    assert!(yaml.contains("dnsPolicy: ClusterFirst"), "{yaml}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_and_job_pods() {
    let sb = start().await;
    let client = sb.client();
    let pp = PatchParams::apply("capstan-test");
    let sts_api: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), NS);
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let sts = |replicas: i64, image: &str| {
        json!({ "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": { "name": "db", "labels": { "capstan.dev/app": "shop" } },
                "spec": { "replicas": replicas, "serviceName": "db",
                          "selector": { "matchLabels": { "app": "db" } },
                          "template": { "metadata": { "labels": { "app": "db" } },
                                        "spec": { "containers": [{ "name": "pg", "image": image }] } } } })
    };
    sts_api
        .patch("db", &pp, &Patch::Apply(sts(3, "postgres:16")))
        .await
        .expect("apply sts");
    let names = |items: Vec<Pod>, prefix: &str| {
        let mut n: Vec<String> = items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .filter(|n| n.starts_with(prefix))
            .collect();
        n.sort();
        n
    };
    eventually("three ordinal pods", || async {
        let items = pods.list(&ListParams::default()).await.ok()?.items;
        (names(items, "db-") == ["db-0", "db-1", "db-2"]).then_some(())
    })
    .await;
    let db0 = pods.get("db-0").await.expect("db-0");
    let labels = db0.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("db-0")
    );
    assert!(!labels.contains_key("capstan.dev/app"));
    sts_api
        .patch("db", &pp, &Patch::Apply(sts(1, "postgres:17")))
        .await
        .expect("scale down");
    eventually("one pod at the new revision", || async {
        let items = pods.list(&ListParams::default()).await.ok()?.items;
        let p = pods.get("db-0").await.ok()?;
        let image = p.spec?.containers[0].image.clone()?;
        (names(items, "db-") == ["db-0"] && image == "postgres:17").then_some(())
    })
    .await;

    let job = json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "migrate" },
                      "spec": { "template": { "spec": { "restartPolicy": "Never",
                                "containers": [{ "name": "m", "image": "busybox:1" }] } } } });
    jobs.patch("migrate", &pp, &Patch::Apply(&job))
        .await
        .expect("apply job");
    let pod = eventually("the job's pod succeeds", || async {
        let items = pods.list(&ListParams::default()).await.ok()?.items;
        let p = items.into_iter().find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("migrate-"))
        })?;
        (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(p)
    })
    .await;
    let labels = pod.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("batch.kubernetes.io/job-name")
            .map(String::as_str),
        Some("migrate")
    );
    let stored = jobs.get("migrate").await.expect("job");
    assert_eq!(stored.spec.and_then(|s| s.backoff_limit), Some(6));
    jobs.delete(
        "migrate",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        },
    )
    .await
    .expect("delete job");
    assert!(
        pods.get_opt(pod.metadata.name.as_deref().unwrap_or_default())
            .await
            .expect("get")
            .is_none()
    );
    sb.shutdown().await;
}
