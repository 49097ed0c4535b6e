//! Behaviour of the diff engine as a user of `capstan app diff` and sync status sees it.

use serde_json::{Value, json};

use super::*;

/// Whether the dry-run result differs from the live object, with no rules.
fn differs(predicted: &Value, live: &Value) -> bool {
    compare(predicted, live, &Normalizer::default()).modified
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    })
}

fn rule(group: &str, kind: &str) -> IgnoreRule {
    IgnoreRule {
        group: group.into(),
        kind: kind.into(),
        ..IgnoreRule::default()
    }
}

fn normalizer(rules: Vec<IgnoreRule>) -> Normalizer {
    Normalizer::new(&rules).expect("rules compile")
}

#[test]
fn normalizer_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync>() {}
    shared::<Normalizer>();
}

#[test]
fn server_fields_never_count() {
    let predicted = deployment("web", 2);
    let mut live = deployment("web", 2);
    live["metadata"]["resourceVersion"] = json!("9");
    live["metadata"]["uid"] = json!("u-1");
    live["metadata"]["generation"] = json!(4);
    live["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    live["metadata"]["managedFields"] = json!([{"manager": "capstan"}]);
    live["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
    live["status"] = json!({"replicas": 2});
    assert!(!compare(&predicted, &live, &Normalizer::default()).modified);
    live["spec"]["replicas"] = json!(3);
    assert!(compare(&predicted, &live, &Normalizer::default()).modified);
}

#[test]
fn empty_label_and_annotation_maps_equal_absent_ones() {
    let mut predicted = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {}, "annotations": {}}, "data": {"k": "v"}});
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "data": {"k": "v"}});
    assert!(!differs(&predicted, &live));
    predicted["metadata"]["labels"] = json!({"a": "b"});
    assert!(differs(&predicted, &live));
}

#[test]
fn endpoints_subsets_order_does_not_count() {
    let a = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}]}, {"addresses": [{"ip": "10.0.0.9"}]}]});
    let b = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}, {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]});
    assert!(!differs(&a, &b));
}

#[test]
fn aggregated_cluster_role_rules_do_not_count() {
    let desired = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}});
    let mut live = desired.clone();
    live["rules"] = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    assert!(!differs(&desired, &live));
    let mut plain = live.clone();
    plain
        .as_object_mut()
        .expect("object")
        .remove("aggregationRule");
    let mut plain_desired = desired.clone();
    plain_desired
        .as_object_mut()
        .expect("object")
        .remove("aggregationRule");
    assert!(differs(&plain_desired, &plain));
}

#[test]
fn json_pointer_hides_replicas_only_on_the_matching_kind_and_name() {
    let mut r = rule("apps", "Deployment");
    r.name = Some("web".into());
    r.json_pointers = vec!["/spec/replicas".into()];
    let n = normalizer(vec![r]);
    assert!(!compare(&deployment("web", 1), &deployment("web", 5), &n).modified);
    assert!(compare(&deployment("api", 1), &deployment("api", 5), &n).modified);
    // Another field of the matching object still counts.
    let mut changed = deployment("web", 1);
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert!(compare(&changed, &deployment("web", 5), &n).modified);
    // Same name, other kind: not hidden.
    let mut sts = deployment("web", 1);
    sts["kind"] = json!("StatefulSet");
    let mut sts_live = deployment("web", 5);
    sts_live["kind"] = json!("StatefulSet");
    assert!(compare(&sts, &sts_live, &n).modified);
}

#[test]
fn namespace_filter_applies() {
    let mut r = rule("apps", "Deployment");
    r.namespace = Some("other".into());
    r.json_pointers = vec!["/spec/replicas".into()];
    let n = normalizer(vec![r]);
    assert!(compare(&deployment("web", 1), &deployment("web", 5), &n).modified);
}

#[test]
fn pointer_escapes_and_missing_pointers() {
    let mut r = rule("", "ConfigMap");
    r.json_pointers = vec![
        "/metadata/annotations/example.com~1owner".into(),
        "/data/a~0b".into(),
        "/does/not/exist".into(),
    ];
    let n = normalizer(vec![r]);
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"keep": "1"}}, "data": {"a~b": "x", "c": "1"}});
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"keep": "1", "example.com/owner": "bob"}},
        "data": {"a~b": "y", "c": "1"}});
    assert!(!compare(&desired, &live, &n).modified);
    let mut other = live.clone();
    other["data"]["c"] = json!("2");
    assert!(compare(&desired, &other, &n).modified);
}

#[test]
fn invalid_pointer_is_an_error() {
    let mut r = rule("", "ConfigMap");
    r.json_pointers = vec!["spec/replicas".into()];
    let err = Normalizer::new(&[r]).expect_err("pointer without / is refused");
    assert!(err.to_string().contains("spec/replicas"), "{err}");
}

#[test]
fn jq_hides_an_injected_container() {
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions =
        vec![r#".spec.template.spec.containers[] | select(.name=="sidecar")"#.into()];
    let n = normalizer(vec![r]);
    let desired = deployment("web", 1);
    let mut live = deployment("web", 1);
    live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .insert(0, json!({"name": "sidecar", "image": "proxy:1"}));
    let d = compare(&desired, &live, &n);
    assert!(
        !d.modified,
        "{}",
        unified(Some(&d.normalized_live), Some(&d.normalized_predicted))
    );
    // The web container itself still counts.
    live["spec"]["template"]["spec"]["containers"][1]["image"] = json!("nginx:2");
    assert!(compare(&desired, &live, &n).modified);
}

#[test]
fn jq_quoted_annotation_key() {
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions = vec![r#".metadata.annotations."a/b""#.into()];
    let n = normalizer(vec![r]);
    let desired = deployment("web", 1);
    let mut live = deployment("web", 1);
    live["metadata"]["annotations"] = json!({"a/b": "x"});
    assert!(!compare(&desired, &live, &n).modified);
    live["metadata"]["annotations"]["c"] = json!("y");
    assert!(compare(&desired, &live, &n).modified);
}

#[test]
fn jq_on_missing_fields_hides_nothing_and_does_not_fail() {
    let mut r = rule("*", "*");
    r.jq_path_expressions = vec![".spec.nothing.here[] | select(.x)".into()];
    let n = normalizer(vec![r]);
    assert!(compare(&deployment("web", 1), &deployment("web", 2), &n).modified);
}

#[test]
fn wildcards_match_any_group_and_kind() {
    let mut r = rule("*", "*");
    r.json_pointers = vec!["/spec/replicas".into()];
    let n = normalizer(vec![r]);
    assert!(!compare(&deployment("web", 1), &deployment("web", 5), &n).modified);
    let mut core = rule("", "*");
    core.json_pointers = vec!["/spec/replicas".into()];
    let n = normalizer(vec![core]);
    assert!(compare(&deployment("web", 1), &deployment("web", 5), &n).modified);
}

#[test]
fn system_keys_name_group_and_kind() {
    assert_eq!(IgnoreRule::system_target("all"), ("*".into(), "*".into()));
    assert_eq!(
        IgnoreRule::system_target("apps_Deployment"),
        ("apps".into(), "Deployment".into())
    );
    assert_eq!(
        IgnoreRule::system_target("Service"),
        (String::new(), "Service".into())
    );
}

#[test]
fn invalid_jq_names_the_expression() {
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions = vec![".spec.replicas |".into()];
    let err = Normalizer::new(&[r]).expect_err("a dangling pipe does not parse");
    assert!(err.to_string().contains("`.spec.replicas |`"), "{err}");

    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions = vec![".spec | nosuchfn".into()];
    let err = Normalizer::new(&[r]).expect_err("unknown function");
    assert!(err.to_string().contains("nosuchfn"), "{err}");
    eprintln!("{err}");

    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions = vec![".a[".into()];
    let err = Normalizer::new(&[r]).expect_err("unclosed bracket");
    assert!(err.to_string().contains("`.a[`"), "{err}");
    eprintln!("{err}");
}

#[test]
fn runaway_jq_is_refused_when_compiled() {
    for expr in [
        "def f: f; f",
        "recurse(.[0])",
        "last(range(1e18))",
        r#".spec | select("\(repeat(1))")"#,
        r#".spec | select(("x" * 1e12) | length > 0)"#,
        ".a | $ENV",
    ] {
        let mut r = rule("*", "*");
        r.jq_path_expressions = vec![expr.into()];
        let err = Normalizer::new(&[r]).expect_err(expr);
        assert!(err.to_string().contains("not allowed"), "{expr}: {err}");
    }
}

#[test]
fn jq_outputs_are_bounded() {
    // `..` on an object visits every node: bounded by the object, not endless.
    let mut r = rule("*", "*");
    r.jq_path_expressions = vec![r#".. | select(type == "string" and . == "nginx:1.27")"#.into()];
    let n = normalizer(vec![r]);
    let mut live = deployment("web", 1);
    live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let out = n.normalize(&live, None);
    assert!(
        out.pointer("/spec/template/spec/containers/0/image")
            .is_none()
    );
    assert!(
        out.pointer("/spec/template/spec/containers/0/name")
            .is_some()
    );
}

fn managed_live() -> Value {
    let mut live = deployment("web", 7);
    live["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "2"}});
    live["metadata"]["managedFields"] = json!([
        {"manager": "capstan", "operation": "Apply", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
             "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "vpa", "operation": "Update", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
             "k:{\"name\":\"web\"}": {"f:resources": {"f:limits": {"f:cpu": {}}}}}}}}}}
    ]);
    live
}

#[test]
fn managed_fields_managers_hide_only_their_fields() {
    let mut r = rule("apps", "Deployment");
    r.managed_fields_managers = vec!["kube-controller-manager".into()];
    let n = normalizer(vec![r]);
    let live = managed_live();
    let mut desired = deployment("web", 2);
    desired["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "2"}});
    assert!(!compare(&desired, &live, &n).modified);
    // The image is capstan's, not the controller's: a change still counts.
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let d = compare(&desired, &live, &n);
    assert!(d.modified);
    assert!(d.normalized_live.pointer("/spec/replicas").is_none());
    assert!(d.normalized_live.pointer("/spec/selector").is_some());
}

#[test]
fn managed_fields_keyed_list_items() {
    let mut r = rule("apps", "Deployment");
    r.managed_fields_managers = vec!["vpa".into()];
    let n = normalizer(vec![r]);
    let live = managed_live();
    let desired = deployment("web", 7);
    let d = compare(&desired, &live, &n);
    assert!(
        !d.modified,
        "{}",
        unified(Some(&d.normalized_live), Some(&d.normalized_predicted))
    );
    assert_eq!(
        d.normalized_live
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str),
        Some("nginx:1.27")
    );
}

#[test]
fn managed_fields_item_created_by_manager_is_removed_whole() {
    let mut r = rule("apps", "Deployment");
    r.managed_fields_managers = vec!["injector".into()];
    let n = normalizer(vec![r]);
    let desired = deployment("web", 1);
    let mut live = deployment("web", 1);
    live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "proxy:1"}));
    live["metadata"]["managedFields"] = json!([{"manager": "injector", "fieldsV1": {"f:spec":
        {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"sidecar\"}":
            {".": {}, "f:name": {}, "f:image": {}}}}}}}}]);
    assert!(!compare(&desired, &live, &n).modified);
}

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"a\":\"c2VjcmV0LWE=\"}}"}},
        "type": "Opaque", "data": data})
}

#[test]
fn secret_values_never_appear_in_any_output() {
    let mut live = secret(json!({"a": "c2VjcmV0LWE=", "same": "c2FtZS12YWx1ZQ=="}));
    let mut predicted = secret(json!({"a": "bmV3LXNlY3JldA==", "same": "c2FtZS12YWx1ZQ=="}));
    live["stringData"] = json!({"plain": "hunter2"});
    predicted["stringData"] = json!({"plain": "hunter3"});
    let n = Normalizer::default();
    let d = compare(&predicted, &live, &n);
    assert!(d.modified);
    let (mut l, mut p) = (d.normalized_live, d.normalized_predicted);
    mask_secrets(&mut l, &mut p);
    let text = unified(Some(&l), Some(&p));
    let ops = serde_json::to_string(&patch(&l, &p)).expect("patch serialises");
    let raw = format!("{l}{p}");
    for plain in [
        "c2VjcmV0LWE=",
        "bmV3LXNlY3JldA==",
        "c2FtZS12YWx1ZQ==",
        "hunter2",
        "hunter3",
    ] {
        assert!(!text.contains(plain), "{plain} in {text}");
        assert!(!ops.contains(plain), "{plain} in {ops}");
        assert!(!raw.contains(plain), "{plain} in {raw}");
    }
    // Equal values: the same mask on both sides; different values: different masks.
    assert_eq!(l["data"]["same"], p["data"]["same"]);
    assert_ne!(l["data"]["a"], p["data"]["a"]);
    assert_ne!(l["stringData"]["plain"], p["stringData"]["plain"]);
    assert!(
        l["data"]["a"]
            .as_str()
            .expect("mask")
            .chars()
            .all(|c| c == '+')
    );
    assert!(text.contains("data:"), "{text}");
    assert!(ops.contains("/data/a"), "{ops}");
    assert!(!ops.contains("/data/same"), "{ops}");
}

#[test]
fn secret_on_one_side_and_raw_objects_are_masked() {
    // Raw (not normalised) Secret: the last-applied annotation holds the value too.
    let mut live = Value::Null;
    let mut predicted = secret(json!({"a": "c2VjcmV0LWE="}));
    mask_secrets(&mut live, &mut predicted);
    let text = unified(None, Some(&predicted));
    assert!(!text.contains("c2VjcmV0LWE="), "{text}");
    assert!(text.starts_with("--- live\n+++ desired\n"), "{text}");
    assert!(
        text.contains("+  a: '++++++++'") || text.contains("+  a: ++++++++"),
        "{text}"
    );
}

#[test]
fn mask_leaves_other_kinds_alone() {
    let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
    let mut predicted = live.clone();
    mask_secrets(&mut live, &mut predicted);
    assert_eq!(live["data"]["k"], json!("v"));
}

#[test]
fn respect_ignored_keeps_live_replicas() {
    let mut r = rule("apps", "Deployment");
    r.json_pointers = vec!["/spec/replicas".into()];
    let n = normalizer(vec![r]);
    let mut live = deployment("web", 9);
    live["metadata"]["resourceVersion"] = json!("42");
    live["status"] = json!({"replicas": 9});
    let mut desired = deployment("web", 2);
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    respect_ignored(&mut desired, &live, &n);
    assert_eq!(desired["spec"]["replicas"], json!(9));
    assert_eq!(
        desired["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:2")
    );
    // Server fields of live do not leak into what is applied.
    assert!(desired.get("status").is_none());
    assert!(desired.pointer("/metadata/resourceVersion").is_none());

    // Live lacks the ignored field: desired drops it.
    let mut no_replicas = live.clone();
    no_replicas["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("replicas");
    let mut desired = deployment("web", 2);
    respect_ignored(&mut desired, &no_replicas, &n);
    assert!(desired.pointer("/spec/replicas").is_none());
}

#[test]
fn respect_ignored_with_jq_and_managers() {
    let mut r = rule("apps", "Deployment");
    r.managed_fields_managers = vec!["kube-controller-manager".into()];
    let n = normalizer(vec![r]);
    let live = managed_live();
    let mut desired = deployment("web", 2);
    respect_ignored(&mut desired, &live, &n);
    assert_eq!(desired["spec"]["replicas"], json!(7));
    assert!(desired.pointer("/metadata/managedFields").is_none());

    // An injected container hidden by jq is kept as live has it.
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions =
        vec![r#".spec.template.spec.containers[] | select(.name=="sidecar")"#.into()];
    let n = normalizer(vec![r]);
    let mut live = deployment("web", 1);
    live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "proxy:1"}));
    let mut desired = deployment("web", 1);
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    respect_ignored(&mut desired, &live, &n);
    assert_eq!(
        desired["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:2"}, {"name": "sidecar", "image": "proxy:1"}])
    );
}

#[test]
fn unified_diff_format() {
    assert_eq!(
        unified(Some(&deployment("web", 1)), Some(&deployment("web", 1))),
        ""
    );
    let text = unified(Some(&deployment("web", 1)), Some(&deployment("web", 3)));
    let expected_start = "--- live\n+++ desired\n@@ ";
    assert!(text.starts_with(expected_start), "{text}");
    assert!(
        text.contains("\n-  replicas: 1\n+  replicas: 3\n"),
        "{text}"
    );
    // Three lines of context around the change, no more.
    let lines: Vec<&str> = text.lines().skip(3).collect();
    let first_change = lines
        .iter()
        .position(|l| l.starts_with('-'))
        .expect("a removal");
    assert_eq!(first_change, 3, "{text}");
    // Keys are rendered sorted, so the order of the input does not matter.
    let yaml = unified(None, Some(&json!({"b": 1, "a": 2})));
    assert!(yaml.contains("+a: 2\n+b: 1\n"), "{yaml}");
    // An object only on the live side is all removals.
    let removed = unified(Some(&json!({"a": 1})), None);
    assert!(removed.contains("-a: 1"), "{removed}");
}

#[test]
fn patch_ops_turn_live_into_predicted() {
    let live = deployment("web", 1);
    let mut predicted = deployment("web", 3);
    predicted["metadata"]["labels"]["tier"] = json!("front");
    let ops = patch(&live, &predicted);
    let text = serde_json::to_value(&ops).expect("serialises");
    assert!(
        text.as_array()
            .expect("ops")
            .contains(&json!({"op": "replace", "path": "/spec/replicas", "value": 3})),
        "{text}"
    );
    let mut applied = live.clone();
    json_patch::patch(&mut applied, &ops).expect("ops apply");
    assert_eq!(applied, predicted);
    assert!(patch(&live, &live).0.is_empty());
}
