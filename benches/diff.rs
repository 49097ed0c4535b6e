//! Diff engine figures (a bench binary; `cargo bench --bench diff`): normalise+compare of a
//! typical Deployment pair (live with server fields and status, predicted from a dry-run) with
//! no rules, and with a jsonPointer + a jq rule; a 100-object no-change resync; the text diff.
//! Medians over ROUNDS runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use capstan::diff::{IgnoreRule, Normalizer, compare, unified};
use serde_json::{Value, json};

const ROUNDS: usize = 501;

fn deployment(i: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("web-{i}"), "namespace": "shop",
            "labels": {"app": "web", "app.kubernetes.io/instance": "shop"},
            "annotations": {"capstan.io/tracking-id": format!("shop:apps/Deployment:shop/web-{i}")}},
        "spec": {"replicas": 3, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                     "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
                     "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30}}}
    })
}

fn live(i: usize) -> Value {
    let mut live = deployment(i);
    let meta = &mut live["metadata"];
    meta["uid"] = json!("6f1c2a9e-0000-4000-8000-000000000000");
    meta["resourceVersion"] = json!("123456");
    meta["generation"] = json!(7);
    meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    meta["managedFields"] = json!([{"manager": "capstan", "operation": "Apply", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}}]);
    live["status"] = json!({"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
        "conditions": [{"type": "Available", "status": "True"}]});
    live
}

/// Median duration of `ROUNDS` runs of `f`, which says whether its result was the expected one.
fn median(mut f: impl FnMut() -> bool) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let expected = f();
            let elapsed = start.elapsed();
            assert!(expected, "the bench measured a wrong result");
            elapsed
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let none = Normalizer::default();
    let rules = Normalizer::new(&[IgnoreRule {
        group: "apps".into(),
        kind: "Deployment".into(),
        json_pointers: vec!["/spec/replicas".into()],
        jq_path_expressions: vec![
            r#".spec.template.spec.containers[] | select(.name == "sidecar")"#.into(),
        ],
        ..IgnoreRule::default()
    }])
    .expect("bench rules compile");
    let (predicted, live_obj) = (deployment(0), live(0));
    let plain = median(|| !black_box(compare(&predicted, &live_obj, &none)).modified);
    let ruled = median(|| !black_box(compare(&predicted, &live_obj, &rules)).modified);
    let pairs: Vec<(Value, Value)> = (0..100).map(|i| (deployment(i), live(i))).collect();
    let resync = median(|| {
        !pairs
            .iter()
            .any(|(p, l)| black_box(compare(p, l, &rules)).modified)
    });
    let mut changed = deployment(0);
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let d = compare(&changed, &live_obj, &none);
    let text = median(|| {
        !black_box(unified(
            Some(&d.normalized_live),
            Some(&d.normalized_predicted),
        ))
        .is_empty()
    });
    println!("diff bench ({profile}), medians over {ROUNDS} runs:");
    println!(
        "  normalise+compare Deployment, 0 rules:              {:>8.1} µs",
        micros(plain)
    );
    println!(
        "  normalise+compare Deployment, jsonPointer + jq:     {:>8.1} µs",
        micros(ruled)
    );
    println!(
        "  no-change resync, 100 Deployments, pointer + jq:    {:>8.1} µs",
        micros(resync)
    );
    println!(
        "  unified YAML diff of a one-line change:             {:>8.1} µs",
        micros(text)
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
