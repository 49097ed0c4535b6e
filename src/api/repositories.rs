//! `/api/v1/repositories`: repository credentials, kept as Argo CD `repository` (one repository)
//! and `repo-creds` (a URL prefix) Secrets in the control namespace, as `argocd repo add` and
//! `argocd repocreds add` keep them. Listing never shows a password or token.

use actix_web::{HttpResponse, web};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::cluster::credentials::{SECRET_TYPE_LABEL, secret_data};
use crate::git::secrets::{KNOWN_HOSTS_CONFIG_MAP, credentials_of};

/// One registered repository or credential template, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryInfo {
    /// The Secret's name (what `DELETE` takes).
    pub name: String,
    pub url: String,
    /// `repository`, or `repo-creds` for a template matching every URL under `url`.
    pub kind: String,
    pub username: Option<String>,
    /// Whether a password, token or SSH key is set (never the value).
    pub has_secret: bool,
}

/// The answer of `GET /api/v1/repositories`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RepositoryList {
    pub items: Vec<RepositoryInfo>,
}

/// Credentials to register.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRepository {
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// An unencrypted SSH private key (PEM or OpenSSH) for ssh:// and scp-style URLs.
    #[serde(default)]
    pub ssh_private_key: Option<String>,
    /// Accept any SSH host key instead of those of the known-hosts ConfigMap.
    #[serde(default)]
    pub insecure: bool,
    /// A `repo-creds` template: `url` is a prefix.
    #[serde(default)]
    pub template: bool,
}

/// Path parameter naming one Secret.
#[derive(Deserialize)]
pub struct RepositoryPath {
    name: String,
}

/// Every repository Secret and credential template.
#[utoipa::path(
    get,
    path = "/api/v1/repositories",
    tag = "repositories",
    responses((status = 200, description = "Every repository Secret and template", body = RepositoryList)),
    security(("bearer" = []))
)]
pub async fn list(
    auth: Authenticated,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let params =
        ListParams::default().labels(&format!("{SECRET_TYPE_LABEL} in (repository,repo-creds)"));
    let list = state
        .control_secrets()
        .list(&params)
        .await
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let mut items: Vec<RepositoryInfo> = list
        .items
        .into_iter()
        .map(|s| {
            let name = s.metadata.name.clone().unwrap_or_default();
            let kind = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SECRET_TYPE_LABEL))
                .cloned()
                .unwrap_or_default();
            let data = secret_data(s);
            RepositoryInfo {
                name,
                url: data.get("url").cloned().unwrap_or_default(),
                kind,
                username: data.get("username").cloned().filter(|u| !u.is_empty()),
                has_secret: ["password", "bearerToken", "sshPrivateKey"]
                    .iter()
                    .any(|k| data.get(*k).is_some_and(|v| !v.is_empty())),
            }
        })
        .collect();
    items.retain(|r| auth.can(&state, "repositories", "get", &r.url));
    items.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(HttpResponse::Ok().json(RepositoryList { items }))
}

/// Registers credentials as an Argo CD Secret; 409 when that URL already has one of that kind.
#[utoipa::path(
    post,
    path = "/api/v1/repositories",
    tag = "repositories",
    request_body = NewRepository,
    responses((status = 201, description = "Registered", body = RepositoryInfo), (status = 409, description = "Already registered", body = crate::api::error::ErrorBody), (status = 422, description = "Unusable", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<NewRepository>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner();
    auth.check(&state, "repositories", "create", r.url.trim())?;
    let kind = if r.template {
        "repo-creds"
    } else {
        "repository"
    };
    let mut data = std::collections::BTreeMap::new();
    data.insert("url".to_string(), r.url.trim().to_string());
    data.insert("type".to_string(), "git".to_string());
    for (k, v) in [
        ("username", &r.username),
        ("password", &r.password),
        ("bearerToken", &r.bearer_token),
        ("sshPrivateKey", &r.ssh_private_key),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            data.insert(k.to_string(), v.clone());
        }
    }
    if r.insecure {
        data.insert("insecure".to_string(), "true".to_string());
    }
    let known_hosts = state
        .control_api::<ConfigMap>()
        .get_opt(KNOWN_HOSTS_CONFIG_MAP)
        .await
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?
        .and_then(|cm| cm.data)
        .and_then(|mut d| d.remove("ssh_known_hosts"))
        .unwrap_or_default();
    // The parser the worker uses: what it would refuse is refused here.
    credentials_of(&data, &known_hosts)
        .map_err(ApiError::Unprocessable)?
        .ok_or_else(|| {
            ApiError::Unprocessable("no password, bearerToken or sshPrivateKey given".into())
        })?;
    let digest = hex::encode(Sha256::digest(data["url"].as_bytes()));
    let name = format!(
        "{}-{}",
        if r.template { "creds" } else { "repo" },
        &digest[..16]
    );
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {SECRET_TYPE_LABEL: kind}},
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
                ApiError::Conflict(format!("{} is registered already", data["url"]))
            }
            other => ApiError::Unprocessable(other.to_string()),
        })?;
    Ok(HttpResponse::Created().json(RepositoryInfo {
        name,
        url: data["url"].clone(),
        kind: kind.into(),
        username: data.get("username").cloned(),
        has_secret: true,
    }))
}

/// Removes one repository Secret by name.
#[utoipa::path(
    delete,
    path = "/api/v1/repositories/{name}",
    tag = "repositories",
    params(("name" = String, Path, description = "The Secret's name, as listed")),
    responses((status = 200, description = "Removed", body = crate::api::openapi::Removed), (status = 404, description = "No such repository Secret", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    auth: Authenticated,
    path: web::Path<RepositoryPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    crate::domain::names::check_subdomain("name", &path.name)?;
    let api = state.control_secrets();
    let found = api
        .get_opt(&path.name)
        .await
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let is_repo = found.as_ref().is_some_and(|s| {
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SECRET_TYPE_LABEL))
            .is_some_and(|t| t == "repository" || t == "repo-creds")
    });
    if !is_repo {
        // Never a way to delete other Secrets of the namespace.
        return Err(ApiError::NotFound(format!(
            "repository {} not found",
            path.name
        )));
    }
    let url = found
        .map(|s| secret_data(s).remove("url").unwrap_or_default())
        .unwrap_or_default();
    auth.check(&state, "repositories", "delete", &url)?;
    api.delete(&path.name, &DeleteParams::default())
        .await
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(crate::api::openapi::Removed::named(&path.name)))
}
