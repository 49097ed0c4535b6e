//! The live state cache against the in-process sandbox: what it holds, whom it tells about
//! changes, how it recovers from a lost watch, and how kinds are started.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use capstan::cluster::cache::LiveCache;
use capstan::cluster::resource::{ObjectId, TRACKING_LABEL, set_tracking_id};
use capstan::sandbox::{Sandbox, SandboxOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long anything asynchronous may take before the test fails; generous for a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

async fn start_with(opts: SandboxOptions) -> Sandbox {
    capstan::install_crypto_provider();
    Sandbox::start(SandboxOptions {
        ready_delay: Duration::from_millis(50),
        ..opts
    })
    .await
    .expect("sandbox starts")
}

async fn start() -> Sandbox {
    start_with(SandboxOptions::default()).await
}

fn configmaps() -> ApiResource {
    ApiResource::erase::<ConfigMap>(&())
}

fn cm_id(ns: &str, name: &str) -> ObjectId {
    ("".into(), "ConfigMap".into(), ns.into(), name.into())
}

/// A ConfigMap as Capstan would apply it for `app` (unlabeled when `app` is None).
fn configmap(ns: &str, name: &str, app: Option<&str>, value: &str) -> Value {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": {"value": value}});
    if let Some(app) = app {
        set_tracking_id(&mut obj, app);
    }
    obj
}

/// Server-side apply as `manager`; returns what the server answered.
async fn apply(client: &kube::Client, manager: &str, obj: &Value) -> Value {
    let resource = if obj["kind"] == "Deployment" {
        ApiResource::erase::<Deployment>(&())
    } else {
        configmaps()
    };
    let ns = obj["metadata"]["namespace"].as_str().expect("namespace");
    let name = obj["metadata"]["name"].as_str().expect("name");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let dynamic: DynamicObject = serde_json::from_value(obj.clone()).expect("dynamic object");
    let applied = api
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&dynamic),
        )
        .await
        .expect("apply");
    serde_json::to_value(applied).expect("json")
}

/// What someone else (kubectl) does: a merge patch of a ConfigMap's data.
async fn edit(client: &kube::Client, ns: &str, name: &str, value: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"value": value}})),
    )
    .await
    .expect("merge patch");
}

/// The next app key notified, failing the test when none comes.
async fn next_app(rx: &mut UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a notification arrives")
        .expect("the channel is open")
}

/// Keys notified until every one of `wanted` was; returns them in order.
async fn until_notified(rx: &mut UnboundedReceiver<String>, wanted: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    while !wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
        seen.push(next_app(rx).await);
    }
    seen
}

/// Polls `check` until it holds, failing the test when it never does.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(objects: &[std::sync::Arc<Value>]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_separates_apps_and_ignores_unlabeled_objects() {
    let sb = start().await;
    let client = sb.client();
    apply(
        &client,
        "capstan",
        &configmap("default", "a1", Some("apps/one"), "x"),
    )
    .await;
    apply(
        &client,
        "capstan",
        &configmap("kube-public", "a2", Some("apps/one"), "x"),
    )
    .await;
    apply(
        &client,
        "capstan",
        &configmap("default", "b1", Some("apps/two"), "x"),
    )
    .await;
    apply(
        &client,
        "capstan",
        &configmap("default", "plain", None, "x"),
    )
    .await;

    let (cache, _rx) = LiveCache::new(client.clone());
    cache.ensure(&configmaps()).await.expect("ensure");

    assert_eq!(
        names(&cache.objects_of("apps/one")),
        BTreeSet::from(["a1".to_owned(), "a2".to_owned()]),
        "both namespaces are watched"
    );
    assert_eq!(
        names(&cache.objects_of("apps/two")),
        BTreeSet::from(["b1".to_owned()])
    );
    assert!(cache.objects_of("apps/three").is_empty());
    assert!(cache.get(&cm_id("default", "plain")).is_none());
    let a1 = cache.get(&cm_id("default", "a1")).expect("a1 is cached");
    assert_eq!(a1["apiVersion"], "v1");
    assert_eq!(a1["kind"], "ConfigMap");
    assert_eq!(a1["data"]["value"], "x");
    assert!(
        a1["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.iter().any(|f| f["manager"] == "capstan")),
        "managedFields are kept for the diff: {a1}"
    );
    let stats = cache.stats();
    assert_eq!((stats.kinds, stats.objects, stats.notified), (1, 3, 0));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_others_notify_and_capstans_own_do_not() {
    let sb = start().await;
    let client = sb.client();
    apply(
        &client,
        "capstan",
        &configmap("default", "a", Some("t/alpha"), "1"),
    )
    .await;
    apply(
        &client,
        "capstan",
        &configmap("default", "b", Some("t/beta"), "1"),
    )
    .await;
    apply(
        &client,
        "capstan",
        &configmap("default", "c", Some("t/gamma"), "1"),
    )
    .await;
    let (cache, mut rx) = LiveCache::new(client.clone());
    cache.ensure(&configmaps()).await.expect("ensure");

    // Capstan's apply of `a` (noted), then someone else's edit of `b`: one watch delivers both
    // in order, so were `a` notified it would come first.
    let write = cache.begin_write(&cm_id("default", "a"));
    let ours = apply(
        &client,
        "capstan",
        &configmap("default", "a", Some("t/alpha"), "2"),
    )
    .await;
    write.written(&ours);
    assert_eq!(
        cache.get(&cm_id("default", "a")).expect("a")["data"]["value"],
        "2",
        "the cache reads its own write at once"
    );
    edit(&client, "default", "b", "edited").await;
    assert_eq!(next_app(&mut rx).await, "t/beta");
    assert!(cache.stats().suppressed >= 1, "{:?}", cache.stats());
    eventually("the cache sees the edit", || async {
        cache.get(&cm_id("default", "b")).expect("b")["data"]["value"] == "edited"
    })
    .await;

    // A later write by someone else to the written object is news again.
    edit(&client, "default", "a", "theirs").await;
    assert_eq!(next_app(&mut rx).await, "t/alpha");

    // Someone else deletes `a`: notified and gone from the cache.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    assert_eq!(next_app(&mut rx).await, "t/alpha");
    assert!(cache.get(&cm_id("default", "a")).is_none());
    assert!(cache.objects_of("t/alpha").is_empty());

    // Capstan deletes `b`, then someone edits `c`: only `c`'s app hears of it.
    let write = cache.begin_write(&cm_id("default", "b"));
    api.delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    write.deleted();
    assert!(cache.get(&cm_id("default", "b")).is_none());
    edit(&client, "default", "c", "edited").await;
    assert_eq!(next_app(&mut rx).await, "t/gamma");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_deployment_notifies_its_app() {
    let sb = start().await;
    let client = sb.client();
    let mut deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}});
    set_tracking_id(&mut deploy, "shop/web");
    apply(&client, "capstan", &deploy).await;
    let (cache, mut rx) = LiveCache::new(client.clone());
    let resource = ApiResource::erase::<Deployment>(&());
    cache.ensure(&resource).await.expect("ensure");
    let id: ObjectId = (
        "apps".into(),
        "Deployment".into(),
        "default".into(),
        "web".into(),
    );
    // Status changes notify too; wait until the simulated controller is done with it.
    eventually("the deployment is ready", || async {
        cache.get(&id).is_some_and(|d| {
            d["status"]["readyReplicas"] == 1
                && d["status"]["observedGeneration"] == d["metadata"]["generation"]
        })
    })
    .await;
    while rx.try_recv().is_ok() {}

    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("scale");
    assert_eq!(next_app(&mut rx).await, "shop/web");
    assert_eq!(
        cache.get(&id).expect("cached")["spec"]["replicas"],
        3,
        "the cache holds the change before it is notified"
    );
    sb.shutdown().await;
}

/// What the server holds under the tracking label: name → resourceVersion.
async fn server_view(client: &kube::Client) -> BTreeMap<String, String> {
    let api: Api<ConfigMap> = Api::all(client.clone());
    match api
        .list(&ListParams::default().labels(TRACKING_LABEL))
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .map(|c| {
                (
                    c.metadata.name.unwrap_or_default(),
                    c.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

fn cache_view(cache: &LiveCache, apps: &[&str]) -> BTreeMap<String, String> {
    apps.iter()
        .flat_map(|a| cache.objects_of(a))
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_after_410_gone_makes_the_cache_equal_to_the_server_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let sb = start_with(SandboxOptions {
        state_file: Some(state.clone()),
        ..Default::default()
    })
    .await;
    let listen = sb
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("the sandbox's address");
    let client = sb.client();
    for (name, app) in [
        ("keep", "r/keep"),
        ("change", "r/change"),
        ("drop", "r/drop"),
    ] {
        apply(
            &client,
            "capstan",
            &configmap("default", name, Some(app), "1"),
        )
        .await;
    }
    let (cache, mut rx) = LiveCache::new(client.clone());
    cache.ensure(&configmaps()).await.expect("ensure");
    let apps = ["r/keep", "r/change", "r/drop", "r/added"];
    assert_eq!(cache_view(&cache, &apps), server_view(&client).await);
    sb.shutdown().await;

    // While the server is down its state changes behind the watch's back, and its history is
    // gone: resuming the watch gets 410 Gone and the cache has to relist.
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("state json");
    let rv: u64 = doc["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("counter");
    let objects = doc["objects"].as_array_mut().expect("objects");
    objects.retain(|e| e["object"]["metadata"]["name"] != "drop");
    for e in objects.iter_mut() {
        if e["object"]["metadata"]["name"] == "change" {
            e["object"]["data"]["value"] = json!("changed offline");
            e["object"]["metadata"]["resourceVersion"] = json!((rv + 10).to_string());
        }
    }
    let mut added = configmap("default", "added", Some("r/added"), "1");
    added["metadata"]["resourceVersion"] = json!((rv + 20).to_string());
    added["metadata"]["uid"] = json!("5f0c4c64-2b39-4a52-8f5a-0d6f4a1b2c3d");
    objects.push(json!({"group": "", "plural": "configmaps", "object": added}));
    doc["resourceVersion"] = json!((rv + 100).to_string());
    std::fs::write(&state, serde_json::to_vec(&doc).expect("json")).expect("write state");

    let sb = start_with(SandboxOptions {
        state_file: Some(state.clone()),
        listen,
        ..Default::default()
    })
    .await;
    let client = sb.client();
    let seen = until_notified(&mut rx, &["r/change", "r/drop", "r/added"]).await;
    assert!(
        !seen.iter().any(|s| s == "r/keep"),
        "an object the relist found unchanged is not news: {seen:?}"
    );
    let want = server_view(&client).await;
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        ["added", "change", "keep"],
        "the restarted server holds the edited state"
    );
    eventually("the cache equals the server", || async {
        cache_view(&cache, &apps) == want
    })
    .await;
    assert_eq!(
        cache.get(&cm_id("default", "change")).expect("change")["data"]["value"],
        "changed offline"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_of_an_unknown_kind_fails_until_it_is_served_and_concurrent_ensures_share_a_watch() {
    let sb = start().await;
    let client = sb.client();
    let (cache, _rx) = LiveCache::new(client.clone());
    let widgets = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let err = cache.ensure(&widgets).await.expect_err("not served");
    assert!(err.to_string().contains("Widget.example.com"), "{err}");
    assert_eq!(cache.stats().kinds, 0, "a failed kind is not kept");

    let cms = configmaps();
    let (a, b) = tokio::join!(cache.ensure(&cms), cache.ensure(&cms));
    a.expect("first ensure");
    b.expect("second ensure");
    cache.ensure(&configmaps()).await.expect("third ensure");
    assert_eq!(cache.stats().kinds, 1);

    // Once the kind exists, a later ensure starts it.
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let crds = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &crds);
    api.patch(
        "widgets.example.com",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&serde_json::from_value::<DynamicObject>(crd).expect("crd")),
    )
    .await
    .expect("create CRD");
    let mut widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"}, "spec": {"size": 1}});
    set_tracking_id(&mut widget, "w/app");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &widgets);
    api.patch(
        "w",
        &PatchParams::apply("capstan").force(),
        &Patch::Apply(&serde_json::from_value::<DynamicObject>(widget).expect("widget")),
    )
    .await
    .expect("create widget");
    cache.ensure(&widgets).await.expect("served now");
    assert_eq!(
        names(&cache.objects_of("w/app")),
        BTreeSet::from(["w".to_owned()])
    );
    assert_eq!(cache.stats().kinds, 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_cache_ends_its_watches() {
    let sb = start().await;
    let (cache, mut rx) = LiveCache::new(sb.client());
    cache.ensure(&configmaps()).await.expect("ensure");
    let other = cache.clone();
    drop(cache);
    // A clone keeps the watch alive.
    apply(
        &sb.client(),
        "kubectl",
        &configmap("default", "x", Some("d/app"), "1"),
    )
    .await;
    assert_eq!(next_app(&mut rx).await, "d/app");
    drop(other);
    // With the last handle gone the watch task ends, and with it the only sender.
    let end = tokio::time::timeout(WAIT, async { while rx.recv().await.is_some() {} }).await;
    assert!(end.is_ok(), "the notification channel closes");
    sb.shutdown().await;
}
