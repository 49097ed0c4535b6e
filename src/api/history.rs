//! `…/history` and `…/rollback`: the revisions an Application was synced to, newest first, and
//! a sync back to one of them (Argo CD's `app history` and `app rollback`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::applications::{AppPath, authorized, manual_job, queued};
use super::auth::Authenticated;
use super::error::ApiError;
use crate::job::{JobKind, SyncRequest};
use crate::store::Application;
use crate::store::application::{RecentOperation, RevisionHistory};

/// The deployments of an Application, newest first, as `argocd app history` lists them.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{namespace}/{name}/history",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    responses((status = 200, description = "Deployment history, newest first", body = HistoryAnswer), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    auth: Authenticated,
    path: AppPath,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = authorized(&state, &auth, &path, "get").await?;
    Ok(HttpResponse::Ok().json(HistoryAnswer {
        history: newest_first(&app),
        operations: operations_newest_first(&app),
    }))
}

/// The answer of `…/history`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryAnswer {
    /// `status.history` (successful deployments), newest first.
    #[schema(value_type = Vec<crate::api::openapi::RevisionHistoryDoc>)]
    pub history: Vec<RevisionHistory>,
    /// `status.recentOperations` (the last finished syncs, failed ones too), newest first.
    #[schema(value_type = Vec<crate::api::openapi::RecentOperationDoc>)]
    pub operations: Vec<RecentOperation>,
}

/// `status.history` is kept oldest first; people read it the other way round.
fn newest_first(app: &Application) -> Vec<RevisionHistory> {
    let mut history = app
        .status
        .as_ref()
        .map(|s| s.history.clone())
        .unwrap_or_default();
    history.sort_by_key(|h| std::cmp::Reverse(h.id));
    history
}

/// `status.recentOperations`, newest first.
fn operations_newest_first(app: &Application) -> Vec<RecentOperation> {
    let mut operations = app
        .status
        .as_ref()
        .map(|s| s.recent_operations.clone())
        .unwrap_or_default();
    operations.reverse();
    operations
}

/// The body of a rollback.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackBody {
    /// The history entry whose revision to return to.
    id: i64,
    /// Also delete tracked objects that left Git.
    #[serde(default)]
    prune: bool,
    /// Compute and report, change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Queues a sync back to the revision of history entry `id`.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{namespace}/{name}/rollback",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    request_body(content = RollbackBody, content_type = "application/json"),
    responses((status = 202, description = "A sync to the entry's revision was queued", body = crate::api::openapi::QueuedJob), (status = 400, description = "Bad name or body", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application or history entry", body = crate::api::error::ErrorBody), (status = 409, description = "Rollback refused (automated sync on, or an operation running)", body = crate::api::error::ErrorBody), (status = 503, description = "Nothing was queued; retry", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn rollback(
    auth: Authenticated,
    path: AppPath,
    body: web::Json<RollbackBody>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let app = authorized(&state, &auth, &path, "sync").await?;
    let entry = rollback_target(&app, body.id)?;
    let mut job = manual_job(&auth, &path, JobKind::Sync);
    job.prune = body.prune;
    job.sync = Some(SyncRequest {
        revision: Some(entry.revision.clone()),
        resources: Vec::new(),
        dry_run: body.dry_run,
        rollback_id: Some(entry.id),
    });
    queued(&state, &job).await
}

/// The history entry to roll back to, refused while automation would sync straight back to Git
/// (Argo CD's rule).
fn rollback_target(app: &Application, id: i64) -> Result<&RevisionHistory, ApiError> {
    if app.automated().is_some() {
        return Err(ApiError::Conflict(
            "rollback is not allowed while automated sync is enabled".into(),
        ));
    }
    app.status
        .as_ref()
        .and_then(|s| s.history.iter().find(|h| h.id == id))
        .ok_or_else(|| ApiError::NotFound(format!("application has no history entry {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(automated: serde_json::Value, ids: &[i64]) -> Application {
        let history: Vec<_> = ids
            .iter()
            .map(|id| json!({"id": id, "revision": format!("rev{id}"), "deployedAt": "2026-01-01T00:00:00Z"}))
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "capstan"},
            "spec": {"syncPolicy": {"automated": automated}},
            "status": {"history": history},
        }))
        .expect("application")
    }

    #[test]
    fn history_is_listed_newest_first() {
        let ids: Vec<i64> = newest_first(&app(json!(null), &[0, 1, 2]))
            .iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(ids, [2, 1, 0]);
    }

    #[test]
    fn rollback_is_refused_under_automation_unless_it_is_disabled() {
        let on = app(json!({"prune": true}), &[1]);
        assert!(matches!(
            rollback_target(&on, 1),
            Err(ApiError::Conflict(_))
        ));
        let off = app(json!({"enabled": false}), &[1]);
        assert_eq!(rollback_target(&off, 1).expect("allowed").revision, "rev1");
        let manual = app(json!(null), &[1]);
        assert!(matches!(
            rollback_target(&manual, 7),
            Err(ApiError::NotFound(_))
        ));
    }
}
