//! Live state is read by the tracking label: a compare costs what the app owns, not what the
//! cluster holds, and the tracking annotation still decides what may be pruned.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use capstan::cluster::cache::LiveCache;
use capstan::cluster::{Cluster, ResourceKey, TRACKING_LABEL};
use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::sync::{self, prepare::prepare};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const APP: &str = "capstan/owner";

/// Secret objects in the bodies of GET (get and list) responses the client received.
#[derive(Clone, Default)]
struct SecretReads(Arc<AtomicUsize>);

impl SecretReads {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

/// A client that sends everything through `inner` and counts the Secrets read back.
fn counting_client(inner: kube::Client, reads: SecretReads) -> kube::Client {
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let reads = reads.clone();
        async move {
            let counted = req.method() == http::Method::GET
                && req
                    .uri()
                    .path()
                    .split('/')
                    .any(|segment| segment == "secrets");
            let resp = inner.send(req).await?;
            if !counted {
                return Ok::<_, kube::Error>(resp);
            }
            let (parts, body) = resp.into_parts();
            let bytes = body.collect_bytes().await?;
            reads.0.fetch_add(secrets_in(&bytes), Ordering::SeqCst);
            Ok(http::Response::from_parts(
                parts,
                kube::client::Body::from(bytes),
            ))
        }
    });
    kube::Client::new(service, "default")
}

fn secrets_in(body: &[u8]) -> usize {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    match doc.get("items").and_then(Value::as_array) {
        Some(items) => items.len(),
        None => usize::from(doc.get("kind").and_then(Value::as_str) == Some("Secret")),
    }
}

fn secret(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"token": "not-a-real-secret"}})
}

async fn sandbox() -> Sandbox {
    capstan::install_crypto_provider();
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts")
}

/// Creates `n` Secrets nobody manages, spread over two namespaces.
async fn unrelated_secrets(client: &kube::Client, n: usize) {
    futures::stream::iter(0..n)
        .map(|i| {
            let namespace = if i % 2 == 0 { "default" } else { "kube-system" };
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            async move {
                let obj: Secret = serde_json::from_value(secret(namespace, &format!("noise-{i}")))
                    .expect("secret json");
                api.create(&PostParams::default(), &obj).await
            }
        })
        .buffer_unordered(32)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("unrelated secrets created");
}

/// Applies `objects` as the app would, returning the objects as desired.
async fn applied(cluster: &Cluster, objects: Vec<Value>) -> Vec<Value> {
    let desired = prepare(cluster, objects, APP, "default")
        .await
        .expect("prepare");
    for obj in &desired {
        cluster.apply(obj, false).await.expect("apply");
    }
    desired
}

fn keys(objects: &[Value]) -> Vec<ResourceKey> {
    objects
        .iter()
        .map(|o| ResourceKey::of(o).expect("key"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compare_reads_only_the_apps_objects_among_five_thousand_secrets() {
    let sandbox = sandbox().await;
    unrelated_secrets(&sandbox.client(), 5_000).await;
    let reads = SecretReads::default();
    let cluster = Cluster::connect(counting_client(sandbox.client(), reads.clone()))
        .await
        .expect("cluster");
    let desired = applied(&cluster, vec![secret("default", "owned")]).await;
    let inventory = keys(&desired);

    reads.take();
    let compared = sync::compare(
        &cluster,
        &LiveCache::new(cluster.client().clone()).0,
        APP,
        &desired,
        &inventory,
        &sync::Verdicts::default(),
        &sync::Rules::default(),
    )
    .await
    .expect("compare");
    let read = reads.take();

    assert_eq!(compared.len(), 1, "{compared:?}");
    let own = &compared[0];
    assert_eq!(own.key.name, "owned");
    assert!(own.live.is_some(), "the app's own Secret is found");
    assert!(own.in_sync());
    assert_eq!(read, 1, "Secret objects read by one compare");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_applied_before_the_tracking_label_is_still_found_for_pruning() {
    let sandbox = sandbox().await;
    let cluster = Cluster::connect(sandbox.client()).await.expect("cluster");
    let mut desired = applied(&cluster, vec![secret("default", "kept")]).await;
    // As an earlier release applied it: the tracking annotation, no label.
    let mut legacy = prepare(&cluster, vec![secret("default", "legacy")], APP, "default")
        .await
        .expect("prepare");
    if let Some(labels) = legacy[0]
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(TRACKING_LABEL);
    }
    cluster
        .apply(&legacy[0], false)
        .await
        .expect("apply legacy");
    let mut inventory = keys(&desired);
    inventory.extend(keys(&legacy));
    desired.truncate(1);

    let compared = sync::compare(
        &cluster,
        &LiveCache::new(cluster.client().clone()).0,
        APP,
        &desired,
        &inventory,
        &sync::Verdicts::default(),
        &sync::Rules::default(),
    )
    .await
    .expect("compare");
    let prunable = prunable_names(&compared);
    assert_eq!(prunable, ["legacy"], "{compared:?}");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_tracking_label_never_makes_another_object_prunable() {
    let sandbox = sandbox().await;
    let cluster = Cluster::connect(sandbox.client()).await.expect("cluster");
    let desired = applied(&cluster, vec![secret("default", "kept")]).await;
    // Still tracked but gone from Git: the control that pruning is detected at all.
    applied(&cluster, vec![secret("default", "orphan")]).await;
    // Someone else's object carrying our label: another app's annotation, or none.
    let label = desired[0]
        .pointer("/metadata/labels")
        .cloned()
        .expect("tracking label");
    for (name, annotations) in [
        (
            "theirs",
            json!({"capstan.dev/tracking-id": "capstan/other:/Secret:default/theirs"}),
        ),
        ("unannotated", json!({})),
    ] {
        let mut obj = secret("default", name);
        obj["metadata"]["labels"] = label.clone();
        obj["metadata"]["annotations"] = annotations;
        cluster.apply(&obj, false).await.expect("apply foreign");
    }

    let compared = sync::compare(
        &cluster,
        &LiveCache::new(cluster.client().clone()).0,
        APP,
        &desired,
        &keys(&desired),
        &sync::Verdicts::default(),
        &sync::Rules::default(),
    )
    .await
    .expect("compare");
    let prunable = prunable_names(&compared);
    assert_eq!(prunable, ["orphan"], "{compared:?}");
    sandbox.shutdown().await;
}

/// Names of the compared objects found to require pruning.
fn prunable_names(compared: &[sync::Compared]) -> Vec<&str> {
    compared
        .iter()
        .filter(|c| c.requires_pruning)
        .map(|c| c.key.name.as_str())
        .collect()
}
