//! `GET …/resource-tree`: the app's managed resources read live, with the objects they own
//! (Deployment → ReplicaSet → Pod, CronJob → Job → Pod …), in Argo CD's resource-tree shape.

use std::collections::{BTreeSet, HashSet};

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use super::ApiState;
use super::applications::{AppPath, authorized};
use super::auth::Authenticated;
use super::error::ApiError;
use crate::cluster::{Cluster, ResourceKey};
use crate::health::{Health, HealthStatus};
use crate::store::application::{ResourceStatus, SyncStatusCode};

/// The kinds that own the workloads' children: every owned object the tree shows is one of these.
const CHILD_KINDS: [(&str, &str, &str); 3] = [
    ("apps", "v1", "ReplicaSet"),
    ("batch", "v1", "Job"),
    ("", "v1", "Pod"),
];

/// The answer of `…/resource-tree`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TreeAnswer {
    /// The Application's resources, then the objects they own, each once.
    pub nodes: Vec<Node>,
}

/// One object of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    pub parent_refs: Vec<ParentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::api::openapi::HealthDoc>)]
    pub health: Option<Health>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::api::openapi::SyncStatusCodeDoc>)]
    pub sync_status: Option<SyncStatusCode>,
}

/// The owner of a node, as its ownerReference names it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ParentRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// The tree of the Application at `path`.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{namespace}/{name}/resource-tree",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    responses((status = 200, description = "The live objects the Application owns and their children", body = TreeAnswer), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    auth: Authenticated,
    path: AppPath,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = authorized(&state, &auth, &path, "get").await?;
    let target = super::manifests::destination(&state, &app).await?;
    let resources = app.status.map(|s| s.resources).unwrap_or_default();
    let nodes = tree(&target.cluster, &resources).await?;
    Ok(HttpResponse::Ok().json(TreeAnswer { nodes }))
}

/// The managed resources, then the objects they own, found by listing the child kinds in the
/// namespaces the managed resources live in.
pub(crate) async fn tree(
    cluster: &Cluster,
    resources: &[ResourceStatus],
) -> Result<Vec<Node>, ApiError> {
    let mut nodes = Vec::with_capacity(resources.len());
    for r in resources {
        let key = ResourceKey {
            group: r.group.clone(),
            version: r.version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        };
        let mut node = match cluster.get(&key).await {
            Ok(Some(live)) => node_of(&key, &live),
            Ok(None) => missing(&key, "the object does not exist"),
            // One kind the cluster does not serve must not hide the rest of the tree.
            Err(e) => unknown(&key, &e.to_string()),
        };
        node.sync_status = Some(r.status);
        nodes.push(node);
    }
    let namespaces: BTreeSet<&str> = resources
        .iter()
        .map(|r| r.namespace.as_str())
        .filter(|ns| !ns.is_empty())
        .collect();
    let mut candidates = Vec::new();
    for ns in namespaces {
        for (group, version, kind) in CHILD_KINDS {
            let listed = cluster
                .list(group, version, kind, ns)
                .await
                .map_err(|e| ApiError::Internal(format!("listing {kind}s in {ns}: {e}")))?;
            candidates.extend(listed);
        }
    }
    nodes.extend(owned_children(&nodes, candidates));
    Ok(nodes)
}

/// The candidates owned, directly or through other candidates, by a node of `roots`; a parent
/// always comes before its children.
fn owned_children(roots: &[Node], mut candidates: Vec<Value>) -> Vec<Node> {
    let mut uids: HashSet<String> = roots
        .iter()
        .filter(|n| !n.uid.is_empty())
        .map(|n| n.uid.clone())
        .collect();
    let mut children = Vec::new();
    loop {
        let (owned, rest): (Vec<Value>, Vec<Value>) = candidates
            .into_iter()
            .partition(|c| owner_refs(c).iter().any(|p| uids.contains(&p.uid)));
        candidates = rest;
        if owned.is_empty() {
            return children;
        }
        let mut level: Vec<Node> = owned
            .iter()
            .filter_map(|live| {
                let key = ResourceKey::of(live)?;
                let mut node = node_of(&key, live);
                node.parent_refs.retain(|p| uids.contains(&p.uid));
                Some(node)
            })
            .collect();
        level.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        uids.extend(level.iter().map(|n| n.uid.clone()));
        children.extend(level);
    }
}

/// A node for a live object, its health assessed as the app's health is.
fn node_of(key: &ResourceKey, live: &Value) -> Node {
    let text = |pointer: &str| {
        live.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Node {
        uid: text("/metadata/uid"),
        resource_version: text("/metadata/resourceVersion"),
        created_at: text("/metadata/creationTimestamp"),
        parent_refs: owner_refs(live),
        health: crate::health::assess(live),
        ..bare(key)
    }
}

/// The ownerReferences of an object, in its namespace.
fn owner_refs(live: &Value) -> Vec<ParentRef> {
    let namespace = live
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    live.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let text = |field: &str| o.get(field).and_then(Value::as_str);
            let api_version = text("apiVersion")?;
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            Some(ParentRef {
                group: group.to_owned(),
                kind: text("kind")?.to_owned(),
                namespace: namespace.to_owned(),
                name: text("name")?.to_owned(),
                uid: text("uid")?.to_owned(),
            })
        })
        .collect()
}

/// A managed resource the cluster does not have.
fn missing(key: &ResourceKey, message: &str) -> Node {
    Node {
        health: Some(Health::new(HealthStatus::Missing, message)),
        ..bare(key)
    }
}

/// A managed resource that could not be read.
fn unknown(key: &ResourceKey, message: &str) -> Node {
    Node {
        health: Some(Health::new(HealthStatus::Unknown, message)),
        ..bare(key)
    }
}

fn bare(key: &ResourceKey) -> Node {
    Node {
        group: key.group.clone(),
        version: key.version.clone(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        uid: String::new(),
        resource_version: String::new(),
        created_at: String::new(),
        parent_refs: Vec::new(),
        health: None,
        sync_status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(
        api_version: &str,
        kind: &str,
        name: &str,
        uid: &str,
        owner: Option<(&str, &str, &str)>,
    ) -> Value {
        let mut o = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "uid": uid}});
        if let Some((av, k, owner_uid)) = owner {
            o["metadata"]["ownerReferences"] =
                json!([{"apiVersion": av, "kind": k, "name": "owner", "uid": owner_uid}]);
        }
        o
    }

    #[test]
    fn children_are_found_through_owner_references_at_any_depth() {
        let deploy = obj("apps/v1", "Deployment", "web", "d1", None);
        let root = node_of(&ResourceKey::of(&deploy).expect("key"), &deploy);
        let candidates = vec![
            // Listed before its owner: the tree must still find it.
            obj(
                "v1",
                "Pod",
                "web-abc-1",
                "p1",
                Some(("apps/v1", "ReplicaSet", "r1")),
            ),
            obj(
                "apps/v1",
                "ReplicaSet",
                "web-abc",
                "r1",
                Some(("apps/v1", "Deployment", "d1")),
            ),
            obj(
                "apps/v1",
                "ReplicaSet",
                "other",
                "r2",
                Some(("apps/v1", "Deployment", "d9")),
            ),
            obj("v1", "Pod", "loose", "p2", None),
        ];
        let children = owned_children(&[root], candidates);
        let names: Vec<_> = children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["web-abc", "web-abc-1"]);
        assert_eq!(children[0].parent_refs[0].uid, "d1");
        assert_eq!(children[0].parent_refs[0].group, "apps");
        assert_eq!(children[1].parent_refs[0].kind, "ReplicaSet");
    }

    #[test]
    fn a_missing_resource_is_a_missing_node() {
        let key = ResourceKey::of(&obj("apps/v1", "Deployment", "web", "", None)).expect("key");
        let doc = serde_json::to_value(missing(&key, "gone")).expect("json");
        assert_eq!(doc["health"]["status"], "Missing");
        assert_eq!(doc["parentRefs"], json!([]));
        assert!(doc.get("uid").is_none(), "{doc}");
    }
}
