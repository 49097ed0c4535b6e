//! Server-side apply ownership as a kubectl user sees it: removal, conflicts, force, sharing.
#![cfg(test)]

use serde_json::{Value, json};

use super::ssa::{
    FieldConflict, SsaError, apply, apply_status, record_status_update, record_update,
};

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-01T00:01:00Z";

fn config(replicas: u64, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "labels": labels},
        "spec": {"replicas": replicas}
    })
}

fn ssa(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, SsaError> {
    apply(live, applied, manager, force, "apps", "Deployment", T1)
}

fn ok(r: Result<Value, SsaError>) -> Value {
    r.unwrap_or_else(|e| panic!("apply failed: {e}"))
}

/// The FieldsV1 of one manager's entry with this operation.
fn fields_of(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
}

fn managers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["manager"].as_str().unwrap_or("?"),
                        e["operation"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn conflicts(r: Result<Value, SsaError>) -> Vec<FieldConflict> {
    match r {
        Err(SsaError::Conflict { conflicts }) => conflicts,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn conflict(manager: &str, field: &str) -> FieldConflict {
    FieldConflict {
        manager: manager.to_string(),
        field: field.to_string(),
    }
}

#[test]
fn first_apply_creates_the_object_and_an_apply_entry() {
    let obj = ok(ssa(
        None,
        &config(2, json!({"app": "web", "tier": "fe"})),
        "a",
        false,
    ));
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(obj["metadata"]["name"], "web");
    let entry = &obj["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "a");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["apiVersion"], "apps/v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(entry["time"], T1);
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}, "f:spec": {"f:replicas": {}}})
    );
}

#[test]
fn reapplying_without_a_label_removes_it() {
    let v1 = ok(ssa(
        None,
        &config(2, json!({"app": "web", "tier": "fe"})),
        "a",
        false,
    ));
    let v2 = ok(ssa(
        Some(&v1),
        &config(2, json!({"app": "web"})),
        "a",
        false,
    ));
    assert_eq!(v2["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        fields_of(&v2, "a", "Apply"),
        Some(json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}}))
    );
    // Dropping every label drops the map too.
    let mut no_labels = config(2, json!({}));
    no_labels["metadata"]
        .as_object_mut()
        .map(|m| m.remove("labels"));
    let v3 = ok(ssa(Some(&v2), &no_labels, "a", false));
    assert!(v3.pointer("/metadata/labels").is_none(), "{v3}");
}

#[test]
fn another_manager_changing_an_owned_field_conflicts_and_force_takes_it() {
    let v1 = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    let b_config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"}, "spec": {"replicas": 5}});
    let err = ssa(Some(&v1), &b_config, "b", false);
    let message = match &err {
        Err(e) => e.to_string(),
        Ok(_) => String::new(),
    };
    assert_eq!(conflicts(err), vec![conflict("a", ".spec.replicas")]);
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
    );

    let forced = ok(ssa(Some(&v1), &b_config, "b", true));
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(
        fields_of(&forced, "b", "Apply"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    assert_eq!(
        fields_of(&forced, "a", "Apply"),
        Some(json!({"f:metadata": {"f:labels": {"f:app": {}}}}))
    );
    // A's next apply of its old value now conflicts with B.
    assert_eq!(
        conflicts(ssa(
            Some(&forced),
            &config(2, json!({"app": "web"})),
            "a",
            false
        )),
        vec![conflict("b", ".spec.replicas")]
    );
}

#[test]
fn applying_the_same_value_shares_ownership() {
    let v1 = ok(ssa(
        None,
        &config(2, json!({"app": "web", "tier": "fe"})),
        "a",
        false,
    ));
    let v2 = ok(ssa(
        Some(&v1),
        &config(2, json!({"tier": "fe"})),
        "b",
        false,
    ));
    assert_eq!(managers(&v2), vec!["a/Apply", "b/Apply"]);
    // A stops applying tier; B still owns it, so it stays.
    let v3 = ok(ssa(
        Some(&v2),
        &config(2, json!({"app": "web"})),
        "a",
        false,
    ));
    assert_eq!(
        v3["metadata"]["labels"],
        json!({"app": "web", "tier": "fe"})
    );
    // Replicas is shared: neither can change it alone.
    assert_eq!(
        conflicts(ssa(
            Some(&v3),
            &config(3, json!({"tier": "fe"})),
            "b",
            false
        )),
        vec![conflict("a", ".spec.replicas")]
    );
}

#[test]
fn a_field_set_by_an_update_conflicts_with_a_different_apply() {
    let v1 = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    // kubectl edit changes replicas with a plain update.
    let mut edited = v1.clone();
    edited["spec"]["replicas"] = json!(7);
    record_update(
        Some(&v1),
        &mut edited,
        "kubectl-edit",
        "apps",
        "Deployment",
        T2,
    );
    assert_eq!(
        fields_of(&edited, "kubectl-edit", "Update"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    assert_eq!(
        fields_of(&edited, "a", "Apply"),
        Some(json!({"f:metadata": {"f:labels": {"f:app": {}}}}))
    );
    assert_eq!(managers(&edited), vec!["a/Apply", "kubectl-edit/Update"]);
    assert_eq!(
        conflicts(ssa(
            Some(&edited),
            &config(2, json!({"app": "web"})),
            "a",
            false
        )),
        vec![conflict("kubectl-edit", ".spec.replicas")]
    );
    // Applying the value the edit set is not a conflict.
    let same = ok(ssa(
        Some(&edited),
        &config(7, json!({"app": "web"})),
        "a",
        false,
    ));
    assert_eq!(same["spec"]["replicas"], 7);
}

fn with_containers(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": containers}}}})
}

#[test]
fn apply_time_moves_only_when_the_object_changes() {
    let v1 = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    let same = apply(
        Some(&v1),
        &config(2, json!({"app": "web"})),
        "a",
        false,
        "apps",
        "Deployment",
        T2,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(same["metadata"]["managedFields"][0]["time"], T1);
    let changed = apply(
        Some(&v1),
        &config(3, json!({"app": "web"})),
        "a",
        false,
        "apps",
        "Deployment",
        T2,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changed["metadata"]["managedFields"][0]["time"], T2);
}

#[test]
fn containers_merge_by_name_across_managers() {
    let a = with_containers(json!([{"name": "web", "image": "nginx:1.25"}]));
    let b = with_containers(json!([{"name": "sidecar", "image": "envoy:1.30"}]));
    let v1 = ok(ssa(None, &a, "a", false));
    let v2 = ok(ssa(Some(&v1), &b, "b", false));
    let names: Vec<&Value> = v2["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["web", "sidecar"]);
    assert_eq!(
        fields_of(&v2, "b", "Apply"),
        Some(
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        )
    );
    // A changing B's container image conflicts with a path Kubernetes would print.
    let a2 = with_containers(
        json!([{"name": "web", "image": "nginx:1.25"}, {"name": "sidecar", "image": "envoy:1.31"}]),
    );
    assert_eq!(
        conflicts(ssa(Some(&v2), &a2, "a", false)),
        vec![conflict(
            "b",
            ".spec.template.spec.containers[name=\"sidecar\"].image"
        )]
    );
    // B stops applying its container: it is removed, A's stays.
    let b_none = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    let v3 = ok(ssa(Some(&v2), &b_none, "b", false));
    assert_eq!(
        v3["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:1.25"}])
    );
}

#[test]
fn an_element_only_the_applier_owned_is_removed_but_others_keep_theirs() {
    let a = with_containers(json!([
        {"name": "web", "image": "nginx:1.25"},
        {"name": "sidecar", "image": "envoy:1.30"}
    ]));
    let v1 = ok(ssa(None, &a, "a", false));
    // Another controller adds an env var to the sidecar through an update.
    let mut v2 = v1.clone();
    v2["spec"]["template"]["spec"]["containers"][1]["env"] = json!([{"name": "X", "value": "1"}]);
    record_update(Some(&v1), &mut v2, "injector", "apps", "Deployment", T2);
    let only_web = with_containers(json!([{"name": "web", "image": "nginx:1.25"}]));
    let v3 = apply(Some(&v2), &only_web, "a", false, "apps", "Deployment", T2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v3["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "web", "image": "nginx:1.25"},
            {"name": "sidecar", "env": [{"name": "X", "value": "1"}]}
        ])
    );
}

#[test]
fn record_update_on_create_owns_everything_like_kubectl_create() {
    let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "uid": "u1", "resourceVersion": "1", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "web", "image": "x", "ports": [{"containerPort": 80}]}]}}},
        "status": {"replicas": 1}});
    record_update(None, &mut obj, "kubectl-create", "apps", "Deployment", T1);
    assert_eq!(
        fields_of(&obj, "kubectl-create", "Update"),
        Some(json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                    ".": {},
                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                }}}}}}
        }))
    );
    assert_eq!(obj["metadata"]["managedFields"][0]["time"], T1);
}

#[test]
fn record_update_drops_removed_fields_and_keeps_time_when_nothing_changes() {
    let mut v1 = config(2, json!({"app": "web", "tier": "fe"}));
    record_update(None, &mut v1, "creator", "apps", "Deployment", T1);
    let mut v2 = v1.clone();
    v2["metadata"]["labels"] = json!({"app": "web"});
    record_update(Some(&v1), &mut v2, "editor", "apps", "Deployment", T2);
    // The removed label leaves the creator's set; the editor changed nothing it could own.
    assert_eq!(
        fields_of(&v2, "creator", "Update"),
        Some(
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}})
        )
    );
    assert_eq!(managers(&v2), vec!["creator/Update"]);
    let mut v3 = v2.clone();
    record_update(Some(&v2), &mut v3, "creator", "apps", "Deployment", T2);
    assert_eq!(v3["metadata"]["managedFields"][0]["time"], T1);
}

#[test]
fn status_in_an_applied_configuration_is_ignored() {
    let mut cfg = config(2, json!({"app": "web"}));
    cfg["status"] = json!({"replicas": 99});
    let mut live = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    live["status"] = json!({"replicas": 1});
    let out = ok(ssa(Some(&live), &cfg, "a", false));
    assert_eq!(out["status"], json!({"replicas": 1}));
    assert!(
        !out["metadata"]["managedFields"]
            .to_string()
            .contains("f:status")
    );
}

#[test]
fn objects_without_managed_fields_get_a_before_first_apply_owner() {
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"}, "spec": {"replicas": 4}});
    assert_eq!(
        conflicts(ssa(
            Some(&live),
            &config(2, json!({"app": "web"})),
            "a",
            false
        )),
        vec![conflict("before-first-apply", ".spec.replicas")]
    );
    let forced = ok(ssa(
        Some(&live),
        &config(2, json!({"app": "web"})),
        "a",
        true,
    ));
    // before-first-apply lost its only field and is dropped.
    assert_eq!(managers(&forced), vec!["a/Apply"]);
}

#[test]
fn every_conflict_is_reported_sorted() {
    let a = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"x": "1", "a": "1"}}, "spec": {"replicas": 1, "paused": false}});
    let v1 = ok(ssa(None, &a, "m1", false));
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"x": "2", "a": "2"}}, "spec": {"replicas": 2}});
    let found = conflicts(ssa(Some(&v1), &b, "m2", false));
    assert_eq!(
        found,
        vec![
            conflict("m1", ".metadata.labels.a"),
            conflict("m1", ".metadata.labels.x"),
            conflict("m1", ".spec.replicas")
        ]
    );
    let msg = SsaError::Conflict { conflicts: found }.to_string();
    assert!(
        msg.starts_with(
            "Apply failed with 3 conflicts: conflicts with \"m1\":\n- .metadata.labels.a"
        ),
        "{msg}"
    );
}

#[test]
fn invalid_configurations_are_refused() {
    for bad in [
        json!({"kind": "Deployment", "metadata": {"name": "x"}}),
        json!({"apiVersion": "apps/v1", "metadata": {"name": "x"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}}),
        json!({"apiVersion": "apps/v1", "kind": "Service", "metadata": {"name": "x"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "managedFields": []}}),
        json!([1]),
        // A container without its key field, as Kubernetes refuses it.
        with_containers(json!([{"image": "nginx"}])),
        with_containers(json!([{"name": "a"}, {"name": "a"}])),
    ] {
        assert!(
            matches!(ssa(None, &bad, "a", false), Err(SsaError::Invalid(_))),
            "{bad}"
        );
    }
}

#[test]
fn deeply_nested_configuration_is_invalid_not_a_crash() {
    let mut deep = json!(1);
    for _ in 0..300 {
        deep = json!({ "x": deep });
    }
    let mut cfg = config(1, json!({}));
    cfg["spec"]["deep"] = deep;
    assert!(matches!(
        ssa(None, &cfg, "a", false),
        Err(SsaError::Invalid(_))
    ));
    // A deep live object is handled too.
    let mut live = config(1, json!({}));
    live["spec"]["deep"] = cfg["spec"]["deep"].clone();
    let out = ssa(Some(&live), &config(1, json!({"app": "web"})), "a", true);
    assert!(out.is_ok());
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(2);
    record_update(Some(&live), &mut new, "m", "apps", "Deployment", T1);
    assert_eq!(
        fields_of(&new, "m", "Update"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
}

#[test]
fn malformed_managed_fields_are_treated_as_absent() {
    for junk in [
        json!("nonsense"),
        json!([1, 2]),
        json!([{"manager": 5}]),
        json!([{"manager": "m", "operation": "Apply", "fieldsV1": {"f:spec": "oops"}}]),
        json!([{"manager": "m", "operation": "Apply", "fieldsV1": {"zz": {}}}]),
        json!({"a": 1}),
    ] {
        let mut live = config(2, json!({"app": "web"}));
        live["metadata"]["managedFields"] = junk.clone();
        let out = ok(ssa(
            Some(&live),
            &config(2, json!({"app": "web"})),
            "a",
            false,
        ));
        assert_eq!(out["spec"]["replicas"], 2);
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(3);
        record_update(Some(&live), &mut new, "m", "apps", "Deployment", T1);
        assert_eq!(
            fields_of(&new, "m", "Update"),
            Some(json!({"f:spec": {"f:replicas": {}}})),
            "{junk}"
        );
    }
}

#[test]
fn service_ports_are_associative_by_port_and_protocol() {
    let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    let out = ok(apply(None, &cfg, "a", false, "", "Service", T1));
    assert_eq!(
        out["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {
            ".": {}, "f:port": {}, "f:targetPort": {}}}, "f:selector": {}}})
    );
}

#[test]
fn status_subresource_apply_owns_only_status() {
    let live = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "labels": {"ignored": "yes"}},
        "spec": {"replicas": 9},
        "status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}});
    let out = apply_status(&live, &status, "ctrl", false, "apps", "Deployment", T2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(out["status"]["readyReplicas"], 2);
    let entry = out["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == "ctrl"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}},
            "f:readyReplicas": {}}})
    );
    // A main-resource apply by A neither touches nor conflicts on status.
    let again = ok(ssa(
        Some(&out),
        &config(2, json!({"app": "web"})),
        "a",
        false,
    ));
    assert_eq!(again["status"], out["status"]);
    // A second status manager changing readyReplicas conflicts with the first.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "status": {"readyReplicas": 1}});
    match apply_status(&again, &other, "other", false, "apps", "Deployment", T2) {
        Err(SsaError::Conflict { conflicts }) => {
            assert_eq!(conflicts, vec![conflict("ctrl", ".status.readyReplicas")]);
        }
        r => panic!("expected a conflict, got {r:?}"),
    }
}

#[test]
fn status_updates_are_recorded_under_the_status_subresource() {
    let live = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    let mut new = live.clone();
    new["status"] = json!({"replicas": 2});
    record_status_update(
        &live,
        &mut new,
        "kube-controller-manager",
        "apps",
        "Deployment",
        T2,
    );
    let entry = new["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == "kube-controller-manager"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    assert_eq!(
        fields_of(&new, "a", "Apply"),
        fields_of(&live, "a", "Apply")
    );
}

#[test]
fn resource_version_in_the_configuration_is_kept_for_the_precondition() {
    let mut live = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    live["metadata"]["resourceVersion"] = json!("5");
    let mut cfg = config(3, json!({"app": "web"}));
    cfg["metadata"]["resourceVersion"] = json!("4");
    let out = ok(ssa(Some(&live), &cfg, "a", false));
    assert_eq!(out["metadata"]["resourceVersion"], "4");
    assert!(
        !out["metadata"]["managedFields"]
            .to_string()
            .contains("resourceVersion")
    );
}

#[test]
fn dropping_replicas_after_an_autoscaler_took_them_leaves_the_scaled_value() {
    let v1 = ok(ssa(None, &config(2, json!({"app": "web"})), "a", false));
    let mut scaled = v1.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(Some(&v1), &mut scaled, "hpa", "apps", "Deployment", T2);
    let mut without = config(0, json!({"app": "web"}));
    without["spec"] = json!({});
    let out = ok(ssa(Some(&scaled), &without, "a", false));
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(managers(&out), vec!["a/Apply", "hpa/Update"]);
}

#[test]
fn client_side_apply_then_server_side_apply_like_kubectl() {
    use super::patch::strategic_merge_patch;
    // `kubectl apply -f` creates the object ...
    let mut created = with_containers(json!([{"name": "web", "image": "nginx:1.25"}]));
    created["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
    record_update(
        None,
        &mut created,
        "kubectl-client-side-apply",
        "apps",
        "Deployment",
        T1,
    );
    // ... and later patches a changed image.
    let mut patched = created.clone();
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"image": "nginx:1.27", "name": "web"}]}}}});
    strategic_merge_patch(&mut patched, &patch, "apps", "Deployment")
        .unwrap_or_else(|e| panic!("{e}"));
    record_update(
        Some(&created),
        &mut patched,
        "kubectl-client-side-apply",
        "apps",
        "Deployment",
        T2,
    );
    assert_eq!(managers(&patched), vec!["kubectl-client-side-apply/Update"]);
    assert_eq!(patched["metadata"]["managedFields"][0]["time"], T2);
    // `kubectl apply --server-side` of another image conflicts with the client-side owner.
    let ssa_config = with_containers(json!([{"name": "web", "image": "nginx:1.28"}]));
    assert_eq!(
        conflicts(ssa(Some(&patched), &ssa_config, "kubectl", false)),
        vec![conflict(
            "kubectl-client-side-apply",
            ".spec.template.spec.containers[name=\"web\"].image"
        )]
    );
    // The same image is shared instead.
    let same = with_containers(json!([{"name": "web", "image": "nginx:1.27"}]));
    let shared = ok(ssa(Some(&patched), &same, "kubectl", false));
    assert_eq!(
        managers(&shared),
        vec!["kubectl/Apply", "kubectl-client-side-apply/Update"]
    );
}

#[test]
fn finalizers_are_a_set_each_manager_owns_its_own() {
    let with = |f: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "finalizers": f}, "data": {"k": "v"}})
    };
    let cm = |live: Option<&Value>, cfg: &Value| {
        apply(live, cfg, "a", false, "", "ConfigMap", T1).unwrap_or_else(|e| panic!("{e}"))
    };
    let v1 = cm(None, &with(json!(["example.com/a", "example.com/b"])));
    assert_eq!(
        fields_of(&v1, "a", "Apply"),
        Some(
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:finalizers": {
            "v:\"example.com/a\"": {}, "v:\"example.com/b\"": {}}}})
        )
    );
    let mut v2 = v1.clone();
    v2["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b", "example.com/c"]);
    record_update(Some(&v1), &mut v2, "ctrl", "", "ConfigMap", T2);
    let v3 = cm(Some(&v2), &with(json!(["example.com/a"])));
    assert_eq!(
        v3["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/c"])
    );
}

#[test]
fn wide_lists_merge_and_prune_element_by_element() {
    let many: Vec<Value> = (0..2000)
        .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    let v1 = ok(ssa(
        None,
        &with_containers(Value::Array(many.clone())),
        "a",
        false,
    ));
    let mut reversed = many.clone();
    reversed.reverse();
    let v2 = ok(ssa(
        Some(&v1),
        &with_containers(Value::Array(reversed)),
        "b",
        false,
    ));
    assert_eq!(
        v2["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2000)
    );
    let v3 = ok(ssa(
        Some(&v2),
        &with_containers(json!([{"name": "c1", "image": "x"}])),
        "a",
        false,
    ));
    // B still owns every element, so nothing goes.
    assert_eq!(
        v3["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2000)
    );
    let v4 = ok(ssa(
        Some(&v3),
        &with_containers(json!([{"name": "c2", "image": "x"}])),
        "b",
        false,
    ));
    // B's order (reversed) is the shared order.
    assert_eq!(
        v4["spec"]["template"]["spec"]["containers"],
        json!([{"name": "c2", "image": "x"}, {"name": "c1", "image": "x"}])
    );
}

#[test]
fn non_object_inputs_do_not_panic() {
    let cfg = config(1, json!({"app": "web"}));
    for live in [
        json!(null),
        json!([1, 2]),
        json!("x"),
        json!({"metadata": 5}),
    ] {
        let out = ssa(Some(&live), &cfg, "a", false);
        assert!(out.is_ok(), "{live}: {out:?}");
        let mut new = live.clone();
        record_update(Some(&cfg), &mut new, "m", "apps", "Deployment", T1);
        let mut new = cfg.clone();
        record_update(Some(&live), &mut new, "m", "apps", "Deployment", T1);
        assert_eq!(
            fields_of(&new, "m", "Update"),
            Some(
                json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}})
            )
        );
    }
}
