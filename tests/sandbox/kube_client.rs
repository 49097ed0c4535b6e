//! The kube client against the sandbox: discovery, dynamic objects, SSA, watchers, CRDs.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher;
use serde_json::json;

use super::start;

type Events =
    futures::stream::BoxStream<'static, Result<watcher::Event<ConfigMap>, watcher::Error>>;

/// Skips the initial list until the watcher is live.
async fn wait_until_watching(events: &mut Events) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(Ok(watcher::Event::InitDone))) => break,
            Ok(Some(Ok(_))) => continue,
            other => panic!("watcher did not start: {other:?}"),
        }
    }
}

/// The next watch event, failing the test after 10 s.
async fn next_event(events: &mut Events) -> watcher::Event<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event arrives")
        .expect("stream continues")
        .expect("no watch error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_api_through_discovery_with_forced_apply() {
    let sb = start().await;
    let client = sb.client();
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments are discoverable");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("batch", "v1", "CronJob"))
            .is_some()
    );

    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let deploy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}
    }))
    .expect("object");
    api.patch("api", &PatchParams::apply("team-a"), &Patch::Apply(&deploy))
        .await
        .expect("first apply creates");

    // Another manager takes the image over with force.
    let mut takeover = deploy.clone();
    takeover.data["spec"]["template"]["spec"]["containers"][0]["image"] = json!("api:2");
    let conflict = api
        .patch(
            "api",
            &PatchParams::apply("team-b"),
            &Patch::Apply(&takeover),
        )
        .await
        .expect_err("conflicting apply without force is refused");
    assert!(
        matches!(&conflict, kube::Error::Api(s) if s.code == 409),
        "{conflict:?}"
    );
    let forced = api
        .patch(
            "api",
            &PatchParams::apply("team-b").force(),
            &Patch::Apply(&takeover),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced.data["spec"]["template"]["spec"]["containers"][0]["image"],
        "api:2"
    );
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"team-b".to_string()), "{managers:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_create_update_delete() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    // The initial list ends with InitDone before anything happens.
    wait_until_watching(&mut events).await;
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "watched"}, "data": {"v": "1"}}))
            .expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    api.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch");
    api.delete("watched", &Default::default())
        .await
        .expect("delete");

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = next_event(&mut events).await;
        match ev {
            watcher::Event::Apply(cm) => {
                seen.push(format!("apply v={}", cm.data.unwrap_or_default()["v"]))
            }
            watcher::Event::Delete(cm) => {
                seen.push(format!("delete {}", cm.metadata.name.unwrap_or_default()))
            }
            _ => {}
        }
    }
    assert_eq!(seen, ["apply v=1", "apply v=2", "delete watched"]);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_registered_then_custom_object_created_and_listed() {
    let sb = start().await;
    let client = sb.client();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                          "subresources": {"status": {}}}]
        }
    });
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let created = crds
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd).expect("crd"),
        )
        .await
        .expect("create CRD");
    let conditions = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True"),
        "{conditions:?}"
    );

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("the new kind is discoverable");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"color": "blue"}}, "spec": {"size": 3}
    }))
    .expect("widget");
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .expect("create widget");
    let listed = widgets
        .list(&ListParams::default().labels("color=blue"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].data["spec"]["size"], 3);

    // Strategic merge patch is for built-ins only, as in Kubernetes.
    let err = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await
        .expect_err("strategic merge on a custom kind");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 415),
        "{err:?}"
    );

    // Deleting the CRD removes its objects and its kind.
    crds.delete("widgets.example.com", &Default::default())
        .await
        .expect("delete CRD");
    let err = widgets.get("w1").await.expect_err("the kind is gone");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err:?}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_watch_sees_objects_enter_and_leave_the_selector() {
    let sb = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let mut events = watcher(api.clone(), watcher::Config::default().labels("team=a")).boxed();
    wait_until_watching(&mut events).await;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "mover"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create unlabelled");
    let label = |team: &str| Patch::Merge(json!({"metadata": {"labels": {"team": team}}}));
    api.patch("mover", &PatchParams::default(), &label("a"))
        .await
        .expect("enter");
    api.patch("mover", &PatchParams::default(), &label("b"))
        .await
        .expect("leave");

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = next_event(&mut events).await;
        match ev {
            watcher::Event::Apply(_) => seen.push("apply"),
            watcher::Event::Delete(_) => seen.push("delete"),
            _ => {}
        }
    }
    assert_eq!(seen, ["apply", "delete"]);
    sb.shutdown().await;
}
