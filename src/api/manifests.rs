//! `GET /api/v1/applications/{namespace}/{name}/manifests`: what a sync of the app would apply,
//! rendered now through the same Git and render caches the workers use.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::ApiState;
use super::applications::{AppPath, admit, authorized};
use super::auth::Authenticated;
use super::error::ApiError;
use crate::manifests::ManifestError;

/// Query of the manifests endpoint.
#[derive(Deserialize, Default)]
pub struct ManifestsQuery {
    /// Render again even when a cached render exists.
    #[serde(default)]
    hard: bool,
}

/// The connected cluster an app's destination names; a destination that cannot be used is 422
/// with the reason.
pub(crate) async fn destination(
    state: &ApiState,
    app: &crate::store::Application,
) -> Result<std::sync::Arc<crate::cluster::registry::Connected>, ApiError> {
    let dest = &app.spec.destination;
    state
        .clusters
        .resolve(dest.server.as_deref(), dest.name.as_deref())
        .await
        .map_err(|e| ApiError::Unprocessable(e.to_string()))
}

/// The rendered objects with the revisions and tools that produced them.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{namespace}/{name}/manifests",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application"), ("hard" = Option<bool>, Query, description = "Ignore the render cache")),
    responses((status = 200, description = "The rendered manifests and render warnings", body = ManifestsAnswer), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody), (status = 422, description = "The source does not render", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    auth: Authenticated,
    path: AppPath,
    query: web::Query<ManifestsQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = authorized(&state, &auth, &path, "get").await?;
    // The same admission as on create: a project that no longer allows a repository stops
    // the API from fetching it too.
    admit(&state.tenancy, &app)?;
    let rendered = state
        .manifests
        .desired_for_app(&app, &destination(&state, &app).await?.cluster, query.hard)
        .await
        .map_err(|e| match e {
            ManifestError::InvalidSpec(m) => ApiError::Unprocessable(m),
            ManifestError::Comparison(m) => ApiError::Unprocessable(m),
        })?;
    Ok(HttpResponse::Ok().json(ManifestsAnswer {
        revision: rendered.revisions.first().cloned(),
        source_types: rendered
            .tools
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        revisions: rendered.revisions,
        tool_versions: rendered.tool_versions,
        manifests: rendered.objects,
        skipped: rendered.skipped,
        warnings: rendered
            .warnings
            .into_iter()
            .map(|w| Warning {
                kind: w.condition.to_owned(),
                message: w.message,
            })
            .collect(),
    }))
}

/// The answer of `…/manifests`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestsAnswer {
    /// The first source's commit.
    pub revision: Option<String>,
    /// Each source's commit, in the order of `spec.sources`.
    pub revisions: Vec<String>,
    /// The tool per source: `Directory`, `Kustomize`, `Helm` or `Jsonnet`.
    pub source_types: Vec<String>,
    /// The versions of the tools that rendered them.
    pub tool_versions: Vec<String>,
    /// The rendered objects, as a sync would apply them.
    #[schema(value_type = Vec<Object>)]
    pub manifests: Vec<serde_json::Value>,
    /// Files skipped because they hold no Kubernetes object.
    pub skipped: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// A render warning, as the condition it becomes.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// The condition type, e.g. `RepeatedResourceWarning`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}
