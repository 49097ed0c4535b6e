//! `GET /api/v1/previews…`: the pull-request previews workers computed (the whole diff the PR
//! comment links to). Each app in a preview is shown only to those who may `get` it.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::ApiState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::preview::{Preview, Records};

/// The list's filters.
#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    /// The repository, in any spelling Git accepts.
    #[serde(default)]
    pub repo: Option<String>,
    /// The pull request's number.
    #[serde(default)]
    pub pr: Option<u64>,
}

/// The answer of the list.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PreviewList {
    pub items: Vec<Preview>,
}

fn records(state: &ApiState) -> Records {
    Records::new(
        state.store.client().clone(),
        state.tenancy.control_namespace(),
    )
}

/// The preview with only the apps `auth` may read; a preview of apps hidden from the caller is
/// answered as if it did not exist.
fn visible(state: &ApiState, auth: &Authenticated, mut preview: Preview) -> Option<Preview> {
    let had_apps = !preview.apps.is_empty();
    preview.apps.retain(|a| {
        let (namespace, name) = a.app.split_once('/').unwrap_or(("", a.app.as_str()));
        let object =
            super::applications::rbac_object_of(&state.tenancy, &a.project, namespace, name);
        auth.can(state, "applications", "get", &object)
    });
    if had_apps && preview.apps.is_empty() {
        return None;
    }
    Some(preview)
}

/// `GET /api/v1/previews[?repo=URL&pr=N]`: previews, newest first.
#[utoipa::path(get, path = "/api/v1/previews", tag = "previews", security(("bearer" = [])),
    params(("repo" = Option<String>, Query, description = "The repository, in any spelling Git accepts"), ("pr" = Option<u64>, Query, description = "The pull request's number")),
    responses((status = 200, description = "Previews, newest first", body = PreviewList), (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody)))]
pub async fn list(
    auth: Authenticated,
    query: web::Query<PreviewQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let all = records(&state)
        .list()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let items = all
        .into_iter()
        .filter(|p| query.pr.is_none_or(|n| p.pr == n))
        .filter(|p| {
            query.repo.as_deref().is_none_or(|r| {
                crate::preview::compute::same_repo(r, std::slice::from_ref(&p.repo))
            })
        })
        .filter_map(|p| visible(&state, &auth, p))
        .collect();
    Ok(HttpResponse::Ok().json(PreviewList { items }))
}

/// `GET /api/v1/previews/{id}`: one preview with its whole diff.
#[utoipa::path(get, path = "/api/v1/previews/{id}", tag = "previews", security(("bearer" = [])),
    params(("id" = String, Path, description = "The preview's id (one per repository and PR)")),
    responses((status = 200, description = "The preview", body = Preview), (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody), (status = 404, description = "No such preview", body = crate::api::error::ErrorBody)))]
pub async fn get(
    auth: Authenticated,
    id: web::Path<String>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound(format!("no preview {id:?}")));
    }
    let preview = records(&state)
        .get(&id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .and_then(|p| visible(&state, &auth, p))
        .ok_or_else(|| ApiError::NotFound(format!("no preview {id}")))?;
    Ok(HttpResponse::Ok().json(preview))
}
