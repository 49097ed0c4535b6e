//! Behaviour of the patch formats, with patches shaped like the ones kubectl sends.
#![cfg(test)]

use serde_json::{Value, json};

use super::patch::{PatchError, json_patch, merge_patch, strategic_merge_patch};

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "demo",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
                        },
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}]
                }
            }
        }
    })
}

fn containers(d: &Value) -> &Vec<Value> {
    match d.pointer("/spec/template/spec/containers") {
        Some(Value::Array(c)) => c,
        other => panic!("containers missing: {other:?}"),
    }
}

fn smp(target: &mut Value, patch: Value) -> Result<(), PatchError> {
    strategic_merge_patch(target, &patch, "apps", "Deployment")
}

#[test]
fn merge_patch_merges_maps_and_null_deletes() {
    let mut d = deployment();
    merge_patch(
        &mut d,
        &json!({"metadata": {"labels": {"tier": null, "track": "stable"}}, "spec": {"replicas": 5}}),
    );
    assert_eq!(
        d.pointer("/metadata/labels"),
        Some(&json!({"app": "web", "track": "stable"}))
    );
    assert_eq!(d.pointer("/spec/replicas"), Some(&json!(5)));
    // Lists are replaced whole by a merge patch.
    merge_patch(
        &mut d,
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}}),
    );
    assert_eq!(containers(&d), &vec![json!({"name": "only"})]);
}

#[test]
fn json_patch_applies_operations_in_order() {
    let mut d = deployment();
    let ops = json!([
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels/track", "value": "canary"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"}
    ]);
    json_patch(&mut d, &ops).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.pointer("/spec/replicas"), Some(&json!(4)));
    assert_eq!(d.pointer("/metadata/labels/track"), Some(&json!("canary")));
    assert_eq!(containers(&d).len(), 1);
}

#[test]
fn json_patch_failed_test_is_invalid_and_changes_nothing() {
    let mut d = deployment();
    let before = d.clone();
    let ops = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 9},
        {"op": "test", "path": "/metadata/name", "value": "other"}
    ]);
    match json_patch(&mut d, &ops) {
        Err(PatchError::Invalid(msg)) => {
            assert!(msg.contains("/metadata/name"), "{msg}");
            assert!(msg.contains("test"), "{msg}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(d, before);
    let missing = json!([{"op": "remove", "path": "/spec/nothing"}]);
    assert!(matches!(
        json_patch(&mut d, &missing),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn json_patch_that_is_not_a_list_of_operations_is_a_bad_request() {
    let mut d = deployment();
    for bad in [
        json!({"op": "add"}),
        json!([{"op": "frobnicate", "path": "/a"}]),
        json!([{"path": "/a"}]),
        json!("x"),
    ] {
        assert!(
            matches!(json_patch(&mut d, &bad), Err(PatchError::BadRequest(_))),
            "{bad}"
        );
    }
}

#[test]
fn json_patch_copy_bomb_is_refused() {
    let mut d = json!({"a": [1, 2, 3, 4, 5, 6, 7, 8]});
    let mut ops = Vec::new();
    for i in 0..40 {
        ops.push(json!({"op": "copy", "from": "/a", "path": format!("/a/{}", i % 2)}));
    }
    assert!(matches!(
        json_patch(&mut d, &Value::Array(ops)),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn strategic_merge_updates_one_container_by_name() {
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.37"}]}}}}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = containers(&d);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["image"], "nginx:1.25");
    assert_eq!(c[1]["image"], "busybox:1.37");
    assert_eq!(c[1]["args"], json!(["sleep", "3600"]));
}

#[test]
fn kubectl_client_side_apply_patch_with_set_element_order() {
    // What `kubectl apply -f` sends after the image and replicas changed and a container was added
    // in front of the existing one.
    let mut d = deployment();
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"}},
        "spec": {
            "replicas": 3,
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "init-proxy"}, {"name": "web"}, {"name": "sidecar"}],
                "containers": [
                    {"image": "envoy:1.30", "name": "init-proxy"},
                    {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                     "env": [{"name": "C", "value": "3"}],
                     "image": "nginx:1.27", "name": "web"}
                ]
            }}
        }
    });
    smp(&mut d, patch).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&Value> = containers(&d).iter().map(|c| &c["name"]).collect();
    assert_eq!(names, vec!["init-proxy", "web", "sidecar"]);
    let web = &containers(&d)[1];
    assert_eq!(web["image"], "nginx:1.27");
    assert_eq!(
        web["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(d.pointer("/spec/replicas"), Some(&json!(3)));
    let text = d.to_string();
    assert!(!text.contains("$setElementOrder"), "{text}");
}

#[test]
fn strategic_merge_patch_delete_directive_removes_list_elements() {
    let mut d = deployment();
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [
            {"$patch": "delete", "name": "sidecar"},
            {"env": [{"$patch": "delete", "name": "A"}], "name": "web"}
        ]
    }}}});
    smp(&mut d, patch).unwrap_or_else(|e| panic!("{e}"));
    let c = containers(&d);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["env"], json!([{"name": "B", "value": "2"}]));
    assert!(!d.to_string().contains("$patch"));
}

#[test]
fn strategic_merge_null_deletes_and_atomic_lists_are_replaced() {
    let mut d = deployment();
    let patch = json!({
        "metadata": {"labels": {"tier": null}},
        "spec": {"template": {"spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "sidecar", "args": ["sleep", "10"]}]
        }}}
    });
    smp(&mut d, patch).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.pointer("/metadata/labels"), Some(&json!({"app": "web"})));
    assert_eq!(
        d.pointer("/spec/template/spec/tolerations"),
        Some(&json!([{"key": "b", "operator": "Exists"}]))
    );
    assert_eq!(containers(&d)[1]["args"], json!(["sleep", "10"]));
}

#[test]
fn strategic_merge_ports_merge_by_container_port() {
    let mut d = deployment();
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http"}]}
    ]}}}});
    smp(&mut d, patch).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        containers(&d)[0]["ports"],
        json!([
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443, "name": "https"}
        ])
    );
}

#[test]
fn strategic_merge_service_ports_and_finalizers() {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "finalizers": ["a", "b"]},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}
    });
    let patch = json!({
        "metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}
    });
    strategic_merge_patch(&mut svc, &patch, "", "Service").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        svc.pointer("/metadata/finalizers"),
        Some(&json!(["b", "c"]))
    );
    assert_eq!(
        svc.pointer("/spec/ports"),
        Some(&json!([{"port": 80, "targetPort": 9090}, {"port": 443}]))
    );
}

#[test]
fn strategic_merge_replace_and_retain_keys_directives() {
    let mut d = deployment();
    let patch = json!({"spec": {
        "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
        "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "x"}]}}
    }});
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
    smp(&mut d, patch).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.pointer("/spec/strategy"),
        Some(&json!({"type": "Recreate"}))
    );
    assert_eq!(containers(&d), &vec![json!({"name": "solo", "image": "x"})]);
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}});
    smp(&mut d, patch).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.pointer("/metadata/labels"),
        Some(&json!({"only": "this"}))
    );
}

#[test]
fn strategic_merge_cronjob_pod_template_is_keyed() {
    let mut cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}}}});
    let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
        {"name": "b", "image": "b:2"}]}}}}}});
    strategic_merge_patch(&mut cj, &patch, "batch", "CronJob").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cj.pointer("/spec/jobTemplate/spec/template/spec/containers"),
        Some(&json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]))
    );
}

#[test]
fn strategic_merge_rejects_malformed_patches() {
    let mut d = deployment();
    let no_key = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    match smp(&mut d, no_key) {
        Err(PatchError::Invalid(msg)) => assert!(msg.contains("merge key: name"), "{msg}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        smp(&mut d, json!([1, 2])),
        Err(PatchError::BadRequest(_))
    ));
    assert!(matches!(
        smp(&mut d, json!({"spec": {"$patch": "explode"}})),
        Err(PatchError::BadRequest(_))
    ));
    assert!(matches!(
        smp(&mut d, json!({"spec": {"$retainKeys": "nope"}})),
        Err(PatchError::BadRequest(_))
    ));
    let keyless_delete =
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}});
    assert!(matches!(
        smp(&mut d, keyless_delete),
        Err(PatchError::BadRequest(_))
    ));
}

#[test]
fn strategic_merge_of_a_deeply_nested_patch_is_refused() {
    let mut deep = json!("leaf");
    for _ in 0..500 {
        deep = json!({ "x": deep });
    }
    let mut d = deployment();
    assert!(matches!(
        smp(&mut d, json!({ "spec": deep })),
        Err(PatchError::Invalid(_))
    ));
    let mut lists = json!(1);
    for _ in 0..500 {
        lists = json!([lists]);
    }
    assert!(matches!(
        smp(
            &mut d,
            json!({ "spec": {"template": {"spec": {"tolerations": lists}}} })
        ),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn wide_strategic_merge_patches_merge_every_element() {
    let mut d = deployment();
    let patch: Vec<Value> = (0..5000)
        .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    let order: Vec<Value> = (0..5000)
        .rev()
        .map(|i| json!({"name": format!("c{i}")}))
        .collect();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": patch, "$setElementOrder/containers": order}}}}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = containers(&d);
    assert_eq!(c.len(), 5002);
    assert_eq!(c[0]["name"], "web");
    assert_eq!(c[2]["name"], "c4999");
    assert_eq!(c[5001]["name"], "c0");
}
