//! `/api/v1/projects/{project}/roles/{role}/token…`: tokens for a project role, as
//! `argocd proj role create-token` issues them. A token is a session token whose subject is
//! `proj:<project>:<role>`; the role's `jwtTokens` in the AppProject lists the tokens still
//! valid (id, issued and expiry times, never the token), so deleting an entry revokes it.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::auth::{Identity, Source};
use crate::rbac::project_roles;

/// The `{project}/roles/{role}` segments.
#[derive(Deserialize)]
pub struct RolePath {
    project: String,
    role: String,
}

/// A token request.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleTokenRequest {
    /// Seconds until the token expires; absent or 0: it does not expire.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The token's id; a random one when absent.
    #[serde(default)]
    pub id: Option<String>,
}

/// The role `name` of `roles` (the AppProject's `spec.roles`), mutably.
fn role_mut<'a>(roles: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    roles.as_array_mut()?.iter_mut().find(|r| r["name"] == name)
}

/// `POST /api/v1/projects/{project}/roles/{role}/token`: a token acting as the role.
#[utoipa::path(post, path = "/api/v1/projects/{project}/roles/{role}/token", tag = "projects", security(("bearer" = [])),
    params(("project" = String, Path, description = "AppProject name"), ("role" = String, Path, description = "Role name")),
    request_body = RoleTokenRequest,
    responses((status = 200, description = "The token, shown once: `{\"token\": …, \"id\": …, \"iat\": …, \"exp\": …}`"), (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody), (status = 403, description = "Not allowed", body = crate::api::error::ErrorBody), (status = 404, description = "No such project or role", body = crate::api::error::ErrorBody)))]
pub async fn create(
    auth: Authenticated,
    path: web::Path<RolePath>,
    state: web::Data<ApiState>,
    body: Option<web::Json<RoleTokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    auth.check(&state, "projects", "update", &path.project)?;
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    let id = body
        .id
        .filter(|i| !i.trim().is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let lifetime = body
        .expires_in
        .filter(|s| *s > 0)
        .map(std::time::Duration::from_secs);
    let subject = project_roles::subject(&path.project, &path.role);
    let (token, claims) = state
        .auth
        .sessions
        .issue_for(&Identity::new(&subject, Source::Project), lifetime, &id)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let entry = json!({
        "iat": claims.iat,
        "exp": lifetime.map(|_| claims.exp),
        "id": id,
    });
    state
        .tenancy
        .projects()
        .update(&path.project, |project| {
            let roles = project.spec.roles.get_or_insert_with(|| json!([]));
            let role = role_mut(roles, &path.role).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "project {} has no role {}",
                    path.project, path.role
                ))
            })?;
            let tokens = role
                .as_object_mut()
                .ok_or_else(|| ApiError::Unprocessable("a role is not an object".into()))?
                .entry("jwtTokens")
                .or_insert_with(|| json!([]));
            if let Some(list) = tokens.as_array_mut() {
                if list.iter().any(|t| t["id"] == id.as_str()) {
                    return Err(ApiError::Conflict(format!("token id {id} is taken")));
                }
                list.push(entry.clone());
            }
            Ok(())
        })
        .await?;
    tracing::info!(project = %path.project, role = %path.role, token_id = %id, by = %auth.user(), "project role token issued");
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "id": id,
        "iat": claims.iat,
        "exp": lifetime.map(|_| claims.exp),
    })))
}

/// The `{project}/roles/{role}/token/{id}` segments.
#[derive(Deserialize)]
pub struct RoleTokenPath {
    project: String,
    role: String,
    id: String,
}

/// `DELETE /api/v1/projects/{project}/roles/{role}/token/{id}`: revokes the token whose id (or,
/// as Argo CD names them, issued-at time) is `id`.
#[utoipa::path(delete, path = "/api/v1/projects/{project}/roles/{role}/token/{id}", tag = "projects", security(("bearer" = [])),
    params(("project" = String, Path, description = "AppProject name"), ("role" = String, Path, description = "Role name"), ("id" = String, Path, description = "Token id, or its issued-at time")),
    responses((status = 200, description = "Revoked"), (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody), (status = 403, description = "Not allowed", body = crate::api::error::ErrorBody), (status = 404, description = "No such project, role or token", body = crate::api::error::ErrorBody)))]
pub async fn delete(
    auth: Authenticated,
    path: web::Path<RoleTokenPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    auth.check(&state, "projects", "update", &path.project)?;
    state
        .tenancy
        .projects()
        .update(&path.project, |project| {
            let missing =
                || ApiError::NotFound(format!("no token {} for role {}", path.id, path.role));
            let roles = project.spec.roles.as_mut().ok_or_else(missing)?;
            let role = role_mut(roles, &path.role).ok_or_else(missing)?;
            let list = role["jwtTokens"].as_array_mut().ok_or_else(missing)?;
            let before = list.len();
            list.retain(|t| t["id"] != path.id.as_str() && t["iat"].to_string() != path.id);
            if list.len() == before {
                return Err(missing());
            }
            Ok(())
        })
        .await?;
    tracing::info!(project = %path.project, role = %path.role, token_id = %path.id, by = %auth.user(), "project role token revoked");
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Whether a project role token is still listed in its role's `jwtTokens`.
pub fn still_listed(state: &ApiState, subject: &str, id: &str) -> bool {
    let Some((project, role)) = subject
        .strip_prefix("proj:")
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    let Some(found) = state.tenancy.projects().get(project) else {
        return false;
    };
    found
        .spec
        .roles
        .as_ref()
        .and_then(|roles| roles.as_array())
        .into_iter()
        .flatten()
        .filter(|r| r["name"] == role)
        .flat_map(|r| r["jwtTokens"].as_array().into_iter().flatten())
        .any(|t| t["id"] == id)
}
