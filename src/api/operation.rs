//! `DELETE …/operation`: asks the worker to stop the sync that is running (Argo CD's
//! `app terminate-op`).

use actix_web::{HttpResponse, web};

use super::ApiState;
use super::applications::{AppPath, authorized, manual_job, queued};
use super::auth::Authenticated;
use super::error::ApiError;
use crate::job::JobKind;
use crate::store::Application;
use crate::store::application::OperationPhase;

/// Queues a Terminate job when an operation is running.
#[utoipa::path(
    delete,
    path = "/api/v1/applications/{namespace}/{name}/operation",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    responses((status = 202, description = "Termination of the running operation was queued", body = crate::api::openapi::QueuedJob), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody), (status = 409, description = "No operation is in progress", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn terminate(
    auth: Authenticated,
    path: AppPath,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = authorized(&state, &auth, &path, "sync").await?;
    if !is_running(&app) {
        return Err(ApiError::Conflict("no operation is in progress".into()));
    }
    queued(&state, &manual_job(&auth, &path, JobKind::Terminate)).await
}

/// Whether `status.operationState.phase` is Running.
fn is_running(app: &Application) -> bool {
    app.status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .is_some_and(|o| o.phase == OperationPhase::Running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_running_operation_counts_as_in_progress() {
        let with = |status: serde_json::Value| -> Application {
            serde_json::from_value(json!({
                "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
                "metadata": {"name": "a", "namespace": "capstan"}, "spec": {}, "status": status,
            }))
            .expect("application")
        };
        let phase =
            |p: &str| json!({"operationState": {"phase": p, "startedAt": "2026-01-01T00:00:00Z"}});
        assert!(is_running(&with(phase("Running"))));
        assert!(!is_running(&with(phase("Succeeded"))));
        assert!(!is_running(&with(json!({}))));
    }
}
