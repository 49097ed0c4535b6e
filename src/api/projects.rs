//! `/api/v1/projects`: list, get, create and delete AppProjects.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::ApiState;
use kube::ResourceExt;

use super::auth::Authenticated;
use super::error::ApiError;
use crate::domain::names::check_subdomain;
use crate::store::AppProject;
use crate::tenancy::project_name;

/// Path parameter naming one project.
#[derive(Deserialize)]
pub struct ProjectPath {
    name: String,
}

/// Every project of the control namespace.
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    responses((status = 200, description = "Every AppProject: `{\"items\": [AppProject]}`", body = crate::api::openapi::ProjectList)),
    security(("bearer" = []))
)]
pub async fn list(auth: Authenticated, state: web::Data<ApiState>) -> HttpResponse {
    let items: Vec<AppProject> = state
        .tenancy
        .projects()
        .list()
        .iter()
        .filter(|p| auth.can(&state, "projects", "get", &p.name_any()))
        .map(|p| p.as_ref().clone())
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "items": items }))
}

/// One project.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{name}",
    tag = "projects",
    params(("name" = String, Path, description = "Name of the AppProject")),
    responses((status = 200, description = "The AppProject", body = crate::api::openapi::ProjectDoc), (status = 404, description = "No such project", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    auth: Authenticated,
    path: web::Path<ProjectPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    check_subdomain("name", &path.name)?;
    auth.check(&state, "projects", "get", &path.name)?;
    match state.tenancy.projects().get(&path.name) {
        Some(p) => Ok(HttpResponse::Ok().json(p.as_ref())),
        None => Err(ApiError::NotFound(format!(
            "project {} not found",
            path.name
        ))),
    }
}

/// Creates a project in the control namespace; Argo CD documents (`argoproj.io/v1alpha1`) are converted.
#[utoipa::path(
    post,
    path = "/api/v1/projects",
    tag = "projects",
    request_body(content = crate::api::openapi::ProjectDoc, description = "An AppProject document", content_type = "application/json"),
    responses((status = 201, description = "The created AppProject", body = crate::api::openapi::ProjectDoc), (status = 400, description = "Malformed JSON", body = crate::api::error::ErrorBody), (status = 409, description = "It already exists", body = crate::api::error::ErrorBody), (status = 413, description = "Body too large", body = crate::api::error::ErrorBody), (status = 415, description = "Not JSON", body = crate::api::error::ErrorBody), (status = 422, description = "Not an acceptable AppProject", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<serde_json::Value>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let project = parse_project(body.into_inner()).map_err(ApiError::Unprocessable)?;
    auth.check(&state, "projects", "create", &project.name_any())?;
    let created = state.tenancy.projects().create(&project).await?;
    // Its roles apply from the next request on, not after the next periodic check.
    state.rbac.reload_if_changed(state.tenancy.projects()).await;
    Ok(HttpResponse::Created().json(created))
}

/// Deletes a project no Application uses any more (as Argo CD refuses to orphan apps).
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{name}",
    tag = "projects",
    params(("name" = String, Path, description = "Name of the AppProject")),
    responses((status = 200, description = "Deleted: `{\"status\": \"deleted\"}`", body = crate::api::openapi::StatusAnswer), (status = 404, description = "No such project", body = crate::api::error::ErrorBody), (status = 409, description = "Applications still use the project", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    auth: Authenticated,
    path: web::Path<ProjectPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    check_subdomain("name", &path.name)?;
    auth.check(&state, "projects", "delete", &path.name)?;
    let users = state
        .store
        .list()
        .iter()
        .filter(|a| project_name(a) == path.name)
        .count();
    if users > 0 {
        return Err(ApiError::Conflict(format!(
            "project {} is referenced by {users} application(s); delete or move them first",
            path.name
        )));
    }
    state.tenancy.projects().delete(&path.name).await?;
    state.rbac.reload_if_changed(state.tenancy.projects()).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "deleted" })))
}

/// An AppProject from a document, accepting Argo CD's apiVersion; its namespace is always the
/// control namespace, whatever the document says.
pub fn parse_project(mut doc: serde_json::Value) -> Result<AppProject, String> {
    super::applications::convert_api_version(&mut doc, "AppProject")?;
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("status");
    }
    let mut project: AppProject =
        serde_json::from_value(doc).map_err(|e| format!("invalid AppProject: {e}"))?;
    match project.metadata.name.as_deref() {
        None | Some("") => return Err("metadata.name is required".into()),
        Some(name) => check_subdomain("metadata.name", name).map_err(|e| e.to_string())?,
    }
    super::applications::clear_server_fields(&mut project.metadata);
    project.metadata.namespace = None;
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::parse_project;
    use serde_json::json;

    #[test]
    fn an_argo_cd_project_is_accepted_field_for_field() {
        let doc = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "team-a", "namespace": "argocd", "resourceVersion": "3"},
            "spec": {
                "description": "Team A",
                "sourceRepos": ["https://github.com/team-a/*", "!https://github.com/team-a/secret"],
                "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "team-a-*"},
                                 {"name": "in-cluster", "namespace": "!kube-system"}],
                "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
                "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
                "sourceNamespaces": ["team-a"],
                "roles": [{"name": "ci", "policies": ["p, proj:team-a:ci, applications, sync, team-a/*, allow"]}]
            }
        });
        let p = parse_project(doc).expect("converts");
        assert_eq!(p.metadata.name.as_deref(), Some("team-a"));
        assert_eq!(p.metadata.resource_version, None);
        assert_eq!(p.spec.source_repos.len(), 2);
        assert_eq!(p.spec.destinations[1].name.as_deref(), Some("in-cluster"));
        assert_eq!(p.spec.cluster_resource_whitelist[0].kind, "Namespace");
        assert_eq!(p.spec.source_namespaces, ["team-a"]);
        assert!(
            p.spec.roles.is_some(),
            "roles are kept for later enforcement"
        );
    }

    #[test]
    fn other_documents_are_refused() {
        let err = parse_project(
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "x"}}),
        )
        .expect_err("not a project");
        assert!(err.contains("AppProject"), "{err}");
    }
}
