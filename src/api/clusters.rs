//! `/api/v1/clusters`: the clusters apps can target, with their connection state; adding one
//! writes an Argo CD cluster Secret in the control namespace (what `argocd cluster add` writes),
//! so Capstan and Argo CD read the same registration.

use actix_web::{HttpResponse, web};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::cluster::credentials::SECRET_TYPE_LABEL;
use crate::cluster::registry::{ConnectionState, IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use crate::domain::names::check_subdomain;
use crate::store::cluster::ClusterObject;

/// A cluster as listed: its connection state and how many apps target it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub name: String,
    pub server: String,
    /// Where it is registered: `in-cluster`, `Secret/NAME` (Argo CD) or `Cluster/NAME`.
    pub source: String,
    /// `Successful`, `Failed` or `Unknown`.
    pub status: String,
    pub message: String,
    pub version: Option<String>,
    pub last_contact: Option<String>,
    /// Applications whose destination is this cluster.
    pub apps: usize,
}

/// The answer of `GET /api/v1/clusters`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterList {
    pub items: Vec<ClusterInfo>,
}

/// A cluster to register, with Argo CD's credential fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCluster {
    pub name: String,
    pub server: String,
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Base64 of the CA's PEM.
    #[serde(default)]
    pub ca_data: Option<String>,
    /// Base64 of the client certificate's PEM.
    #[serde(default)]
    pub cert_data: Option<String>,
    /// Base64 of the client key's PEM.
    #[serde(default)]
    pub key_data: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// Path parameter naming one cluster.
#[derive(Deserialize)]
pub struct ClusterPath {
    name: String,
}

pub(crate) fn info(state: &ApiState, s: ConnectionState) -> ClusterInfo {
    let apps = state
        .store
        .list()
        .iter()
        .filter(|a| {
            let d = &a.spec.destination;
            let server = d.server.as_deref().map(|s| s.trim_end_matches('/'));
            let in_cluster = s.name == IN_CLUSTER_NAME
                && server.is_none_or(|x| x.is_empty())
                && d.name.as_deref().is_none_or(|x| x.is_empty());
            in_cluster
                || server == Some(s.server.as_str())
                || d.name.as_deref() == Some(s.name.as_str())
        })
        .count();
    ClusterInfo {
        name: s.name,
        server: s.server,
        source: s.source,
        status: s.status,
        message: s.message,
        version: s.version,
        last_contact: s.last_contact,
        apps,
    }
}

/// Every cluster, the management cluster first.
#[utoipa::path(
    get,
    path = "/api/v1/clusters",
    tag = "clusters",
    responses((status = 200, description = "Every cluster", body = ClusterList)),
    security(("bearer" = []))
)]
pub async fn list(auth: Authenticated, state: web::Data<ApiState>) -> HttpResponse {
    let items: Vec<ClusterInfo> = state
        .clusters
        .list()
        .await
        .into_iter()
        .map(|s| info(&state, s))
        .filter(|c| auth.can(&state, "clusters", "get", &c.server))
        .collect();
    HttpResponse::Ok().json(ClusterList { items })
}

/// One cluster by name.
#[utoipa::path(
    get,
    path = "/api/v1/clusters/{name}",
    tag = "clusters",
    params(("name" = String, Path, description = "Name of the cluster")),
    responses((status = 200, description = "The cluster", body = ClusterInfo), (status = 404, description = "No such cluster", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    auth: Authenticated,
    path: web::Path<ClusterPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let found = state
        .clusters
        .list()
        .await
        .into_iter()
        .find(|s| s.name == path.name)
        .ok_or_else(|| ApiError::NotFound(format!("cluster {} not found", path.name)))?;
    let found = info(&state, found);
    auth.check(&state, "clusters", "get", &found.server)?;
    Ok(HttpResponse::Ok().json(found))
}

fn secret_name(cluster: &str) -> String {
    format!("cluster-{cluster}")
}

/// Registers a cluster (an Argo CD cluster Secret `cluster-<name>`); 409 when the name is taken.
#[utoipa::path(
    post,
    path = "/api/v1/clusters",
    tag = "clusters",
    request_body = NewCluster,
    responses((status = 201, description = "Registered", body = ClusterInfo), (status = 409, description = "The name is taken", body = crate::api::error::ErrorBody), (status = 422, description = "Unusable", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<NewCluster>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let c = body.into_inner();
    check_subdomain("name", &c.name)?;
    auth.check(&state, "clusters", "create", c.server.trim_end_matches('/'))?;
    if c.name == IN_CLUSTER_NAME || c.server.trim_end_matches('/') == IN_CLUSTER_SERVER {
        return Err(ApiError::Conflict("in-cluster is always registered".into()));
    }
    if state.clusters.list().await.iter().any(|s| s.name == c.name) {
        return Err(ApiError::Conflict(format!("cluster {} exists", c.name)));
    }
    let mut tls = serde_json::json!({"insecure": c.insecure});
    for (k, v) in [
        ("caData", &c.ca_data),
        ("certData", &c.cert_data),
        ("keyData", &c.key_data),
    ] {
        if let Some(v) = v {
            tls[k] = v.clone().into();
        }
    }
    let mut config = serde_json::json!({"tlsClientConfig": tls});
    if let Some(t) = &c.bearer_token {
        config["bearerToken"] = t.clone().into();
    }
    let data: std::collections::BTreeMap<String, String> = [
        ("name".to_string(), c.name.clone()),
        ("server".to_string(), c.server.clone()),
        ("config".to_string(), config.to_string()),
        ("namespaces".to_string(), c.namespaces.join(",")),
    ]
    .into();
    // The same parser the worker uses: what is refused here would be refused there.
    crate::cluster::credentials::ClusterSpec::from_secret_data(&data)
        .map_err(ApiError::Unprocessable)?;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": secret_name(&c.name), "labels": {SECRET_TYPE_LABEL: "cluster"}},
        "type": "Opaque",
        "stringData": data,
    }))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .control_secrets()
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => {
                ApiError::Conflict(format!("cluster {} exists", c.name))
            }
            other => ApiError::Unprocessable(other.to_string()),
        })?;
    Ok(HttpResponse::Created().json(ClusterInfo {
        source: format!("Secret/{}", secret_name(&c.name)),
        name: c.name,
        server: c.server,
        status: "Unknown".into(),
        message: String::new(),
        version: None,
        last_contact: None,
        apps: 0,
    }))
}

/// Removes a cluster: the cluster Secrets and `Cluster` objects with that name (its apps turn
/// InvalidSpecError); the Secret a `Cluster` object names is the user's and stays.
#[utoipa::path(
    delete,
    path = "/api/v1/clusters/{name}",
    tag = "clusters",
    params(("name" = String, Path, description = "Name of the cluster")),
    responses((status = 200, description = "Removed", body = crate::api::openapi::Removed), (status = 404, description = "No such cluster", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    auth: Authenticated,
    path: web::Path<ClusterPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    // Policies name clusters by server URL, as Argo CD's do.
    let server = state
        .clusters
        .list()
        .await
        .into_iter()
        .find(|s| s.name == path.name)
        .map(|s| info(&state, s).server)
        .unwrap_or_else(|| path.name.clone());
    auth.check(&state, "clusters", "delete", &server)?;
    let api = state.control_secrets();
    let params = ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=cluster"));
    let list = api
        .list(&params)
        .await
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let mut removed = 0;
    for s in list.items {
        let secret_name = s.metadata.name.clone();
        let named = crate::cluster::credentials::secret_data(s).remove("name");
        if named.as_deref() == Some(path.name.as_str())
            && let Some(n) = secret_name
        {
            api.delete(&n, &DeleteParams::default())
                .await
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            removed += 1;
        }
    }
    let objects: Api<ClusterObject> = state.control_api();
    let listed = match objects.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(ApiError::Unprocessable(e.to_string())),
    };
    for o in listed {
        let object_name = o.metadata.name.clone().unwrap_or_default();
        if o.spec.name.as_deref().unwrap_or(&object_name) == path.name {
            objects
                .delete(&object_name, &DeleteParams::default())
                .await
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            removed += 1;
        }
    }
    if removed == 0 {
        return Err(ApiError::NotFound(format!(
            "cluster {} not found",
            path.name
        )));
    }
    Ok(HttpResponse::Ok().json(crate::api::openapi::Removed::named(&path.name)))
}
