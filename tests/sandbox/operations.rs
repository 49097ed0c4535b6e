//! Object semantics through the kube client: SSA ownership, dry-run, concurrency, deletion.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::{Value, json};

use super::start;

fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )
    .expect("configmap")
}

fn api_code(err: &kube::Error) -> u16 {
    match err {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssa_removes_fields_only_their_manager_owned_and_reports_conflicts() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let a = PatchParams::apply("manager-a");
    api.patch(
        "owned",
        &a,
        &Patch::Apply(cm("owned", json!({"x": "1", "y": "2"}))),
    )
    .await
    .expect("apply x,y");
    // manager-b co-owns nothing yet; it sets z.
    api.patch(
        "owned",
        &PatchParams::apply("manager-b"),
        &Patch::Apply(cm("owned", json!({"z": "3"}))),
    )
    .await
    .expect("apply z");
    // manager-a drops y from its configuration: y goes, z (manager-b's) stays.
    let after = api
        .patch("owned", &a, &Patch::Apply(cm("owned", json!({"x": "1"}))))
        .await
        .expect("re-apply without y");
    let data = after.data.unwrap_or_default();
    assert_eq!(data.get("x").map(String::as_str), Some("1"));
    assert_eq!(data.get("y"), None, "y was only manager-a's");
    assert_eq!(
        data.get("z").map(String::as_str),
        Some("3"),
        "z belongs to manager-b"
    );

    // manager-b sets x to another value: 409 naming manager-a and the field.
    let err = api
        .patch(
            "owned",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(cm("owned", json!({"x": "9", "z": "3"}))),
        )
        .await
        .expect_err("conflict");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status.message.contains("conflict with \"manager-a\""),
        "{}",
        status.message
    );
    assert!(status.message.contains(".data.x"), "{}", status.message);
    let forced = api
        .patch(
            "owned",
            &PatchParams::apply("manager-b").force(),
            &Patch::Apply(cm("owned", json!({"x": "9", "z": "3"}))),
        )
        .await
        .expect("forced");
    assert_eq!(
        forced.data.unwrap_or_default().get("x").map(String::as_str),
        Some("9")
    );
    sb.shutdown().await;
}

/// Two managers applying the same value share it: when one stops applying it, it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssa_equal_values_are_shared_and_survive_one_owner_leaving() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let a = PatchParams::apply("manager-a");
    let b = PatchParams::apply("manager-b");
    api.patch(
        "shared",
        &a,
        &Patch::Apply(cm("shared", json!({"x": "1", "only-a": "a"}))),
    )
    .await
    .expect("a applies");
    let shared = api
        .patch("shared", &b, &Patch::Apply(cm("shared", json!({"x": "1"}))))
        .await
        .expect("b applies the same value without conflict");
    let managers: Vec<String> = shared
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"manager-b".to_string()),
        "b co-owns x: {managers:?}"
    );
    let after = api
        .patch(
            "shared",
            &a,
            &Patch::Apply(cm("shared", json!({"only-a": "a"}))),
        )
        .await
        .expect("a stops applying x");
    let data = after.data.unwrap_or_default();
    assert_eq!(
        data.get("x").map(String::as_str),
        Some("1"),
        "x stays: manager-b still owns it"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_leaves_nothing_behind() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let rv_before = sb.resource_version();
    let created = api
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &cm("ghost", json!({"a": "b"})),
        )
        .await
        .expect("dry-run create answers");
    assert_eq!(created.metadata.name.as_deref(), Some("ghost"));
    api.patch(
        "ghost",
        &PatchParams::apply("m").dry_run(),
        &Patch::Apply(cm("ghost", json!({"a": "b"}))),
    )
    .await
    .expect("dry-run apply answers");
    assert_eq!(
        api_code(&api.get("ghost").await.expect_err("nothing stored")),
        404
    );

    api.create(&PostParams::default(), &cm("real", json!({"a": "b"})))
        .await
        .expect("create");
    let rv_real = sb.resource_version();
    api.patch(
        "real",
        &PatchParams {
            dry_run: true,
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"a": "c"}})),
    )
    .await
    .expect("dry-run patch");
    api.delete(
        "real",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .expect("dry-run delete");
    let live = api.get("real").await.expect("still there");
    assert_eq!(live.data.unwrap_or_default()["a"], "b");
    assert_eq!(
        sb.resource_version(),
        rv_real,
        "dry runs do not bump the resourceVersion"
    );
    assert!(rv_real > rv_before);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_update_gets_409_conflict() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let first = api
        .create(&PostParams::default(), &cm("occ", json!({"v": "1"})))
        .await
        .expect("create");
    let mut a = first.clone();
    a.data = Some([("v".to_string(), "2".to_string())].into());
    api.replace("occ", &PostParams::default(), &a)
        .await
        .expect("first writer wins");
    let mut b = first;
    b.data = Some([("v".to_string(), "3".to_string())].into());
    let err = api
        .replace("occ", &PostParams::default(), &b)
        .await
        .expect_err("stale writer");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
    assert_eq!(
        api.get("occ").await.expect("get").data.unwrap_or_default()["v"],
        "2"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_deletion_collects_dependents_unless_orphaned() {
    let sb = start().await;
    let client = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let spec = json!({"selector": {"matchLabels": {"app": "o"}},
                      "template": {"metadata": {"labels": {"app": "o"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}});
    for owner in ["keep-deps", "drop-deps"] {
        let d: Deployment =
            serde_json::from_value(json!({"metadata": {"name": owner}, "spec": spec}))
                .expect("deploy");
        let d = deploys
            .create(&PostParams::default(), &d)
            .await
            .expect("create owner");
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": format!("{owner}-rs"), "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": owner,
                "uid": d.metadata.uid, "controller": true}]},
            "spec": spec
        }))
        .expect("rs");
        sets.create(&PostParams::default(), &rs)
            .await
            .expect("create dependent");
    }
    deploys
        .delete(
            "drop-deps",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    deploys
        .delete(
            "keep-deps",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Orphan),
                ..Default::default()
            },
        )
        .await
        .expect("delete orphaning");
    assert_eq!(
        api_code(&sets.get("drop-deps-rs").await.expect_err("collected")),
        404
    );
    let orphan = sets.get("keep-deps-rs").await.expect("orphan survives");
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_its_contents() {
    let sb = start().await;
    let client = sb.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "doomed"}})).expect("ns");
    let ns = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let uid = ns.metadata.uid.unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(&PostParams::default(), &cm("inside", json!({})))
        .await
        .expect("create inside");
    let outside: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    outside
        .create(&PostParams::default(), &cm("inside", json!({})))
        .await
        .expect("same name elsewhere");

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let terminating = namespaces
        .get("doomed")
        .await
        .expect("terminating for a while");
    assert_eq!(
        terminating.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let err = cms
        .create(&PostParams::default(), &cm("late", json!({})))
        .await
        .expect_err("no new content");
    assert_eq!(api_code(&err), 403);

    let gone = kube::runtime::wait::await_condition(
        namespaces.clone(),
        "doomed",
        kube::runtime::wait::conditions::is_deleted(&uid),
    );
    tokio::time::timeout(Duration::from_secs(20), gone)
        .await
        .expect("namespace goes away")
        .expect("wait");
    assert_eq!(
        api_code(&cms.get("inside").await.expect_err("contents gone")),
        404
    );
    outside
        .get("inside")
        .await
        .expect("other namespaces untouched");

    let err = cms
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .expect_err("missing namespace");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"doomed\" not found")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_deletion_until_removed() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let mut obj = cm("held", json!({}));
    obj.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    api.delete("held", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let held = api.get("held").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert_eq!(api_code(&api.get("held").await.expect_err("gone")), 404);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_selectors_and_pages() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    for i in 0..7 {
        let mut obj = cm(&format!("page-{i}"), json!({}));
        obj.metadata.labels = Some(
            [(
                "tier".to_string(),
                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
            )]
            .into(),
        );
        api.create(&PostParams::default(), &obj)
            .await
            .expect("create");
    }
    let even = api
        .list(&ListParams::default().labels("tier=even"))
        .await
        .expect("list");
    assert_eq!(even.items.len(), 4);
    let not_even = api
        .list(&ListParams::default().labels("tier notin (even)"))
        .await
        .expect("list");
    assert_eq!(not_even.items.len(), 3);
    let named = api
        .list(&ListParams::default().fields("metadata.name=page-3"))
        .await
        .expect("list");
    assert_eq!(named.items.len(), 1);

    let mut names = Vec::new();
    let mut params = ListParams::default().limit(3);
    loop {
        let page = api.list(&params).await.expect("page");
        assert!(page.items.len() <= 3);
        names.extend(page.items.into_iter().filter_map(|o| o.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(
        names,
        (0..7).map(|i| format!("page-{i}")).collect::<Vec<_>>()
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_and_generation() {
    let sb = start().await;
    let api: Api<Deployment> = Api::namespaced(sb.client(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "gen"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "g"}},
                 "template": {"metadata": {"labels": {"app": "g"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 99}
    }))
    .expect("deploy");
    let created = api
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert_ne!(
        created.status.and_then(|s| s.replicas),
        Some(99),
        "status is not written through the main resource"
    );
    let patched = api
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let patched = api
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(patched.metadata.generation, Some(2));

    // The simulated controller reports readiness for the new generation.
    let ready =
        kube::runtime::wait::await_condition(api.clone(), "gen", |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
                s.observed_generation == Some(2) && s.available_replicas == Some(2)
            })
        });
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("becomes available")
        .expect("wait");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_are_refused_with_kubernetes_reasons() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let err = api
        .create(&PostParams::default(), &cm("Not_Valid", json!({})))
        .await
        .expect_err("bad name");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let err = api
        .create(&PostParams::default(), &cm("dup", json!({})))
        .await
        .and(
            api.create(&PostParams::default(), &cm("dup", json!({})))
                .await,
        );
    let err = err.expect_err("duplicate");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    let mut generated = cm("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let made = api
        .create(&PostParams::default(), &generated)
        .await
        .expect("generateName");
    let name = made.metadata.name.unwrap_or_default();
    assert!(name.starts_with("gen-") && name.len() > 4, "{name}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_preconditions_and_deletecollection() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    for (name, tier) in [("dc-a", "x"), ("dc-b", "x"), ("dc-c", "y")] {
        let mut obj = cm(name, json!({}));
        obj.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        api.create(&PostParams::default(), &obj)
            .await
            .expect("create");
    }
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = api
        .delete("dc-a", &wrong)
        .await
        .expect_err("precondition fails");
    assert_eq!(api_code(&err), 409);
    api.get("dc-a").await.expect("still there");

    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=x"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default().labels("tier"))
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(left, ["dc-c"]);
    sb.shutdown().await;
}
