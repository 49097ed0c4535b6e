//! `/api/v1/applications`: list, get, create, delete, refresh and sync.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use kube::ResourceExt;
use serde::Deserialize;

use super::ApiState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::openapi::{ApplicationDoc, ApplicationList, QueuedJob, StatusAnswer};
use crate::domain::names::{check_label, check_subdomain};
use crate::domain::{AppKey, RepoUrl};
use crate::job::{Cause, Job, JobKind, ResourceSelector, SyncRequest};
use crate::store::{Application, StoreError};
use crate::tenancy::Tenancy;

/// The Application a path names, its namespace and name already checked (DNS-1123), so no handler
/// ever passes an unchecked name to the cluster or the queue.
pub struct AppPath {
    key: AppKey,
}

impl AppPath {
    /// Checks both names; the error says which one is wrong and what is allowed.
    pub fn parse(namespace: &str, name: &str) -> Result<AppPath, ApiError> {
        check_label("namespace", namespace)?;
        check_subdomain("name", name)?;
        let key = AppKey::new(namespace, name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(AppPath { key })
    }
}

impl FromRequest for AppPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let info = req.match_info();
        ready(match (info.get("namespace"), info.get("name")) {
            (Some(namespace), Some(name)) => AppPath::parse(namespace, name),
            _ => Err(ApiError::Internal(
                "route has no {namespace}/{name} segments".into(),
            )),
        })
    }
}

/// Query of refresh and sync.
#[derive(Deserialize, Default)]
pub struct JobQuery {
    #[serde(default)]
    hard: bool,
    #[serde(default)]
    prune: bool,
}

/// Every Application Capstan honours, with spec and status.
#[utoipa::path(
    get,
    path = "/api/v1/applications",
    tag = "applications",
    responses((status = 200, description = "Every Application Capstan honours: `{\"items\": [Application]}`", body = ApplicationList)),
    security(("bearer" = []))
)]
pub async fn list(auth: Authenticated, state: web::Data<ApiState>) -> HttpResponse {
    let items: Vec<Application> = state
        .store
        .list()
        .iter()
        .filter(|a| state.tenancy.honours(a).is_ok())
        .filter(|a| {
            auth.can(
                &state,
                "applications",
                "get",
                &rbac_object(&state.tenancy, a),
            )
        })
        .map(|a| a.as_ref().clone())
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "items": items }))
}

/// One Application, read fresh from the cluster.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{namespace}/{name}",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    responses((status = 200, description = "The Application with spec and status", body = ApplicationDoc), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    auth: Authenticated,
    path: AppPath,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = authorized(&state, &auth, &path, "get").await?;
    Ok(HttpResponse::Ok().json(app))
}

/// The RBAC object of an Application, as Argo CD names it: `project/name`, or
/// `project/namespace/name` for an Application outside the control namespace.
pub fn rbac_object(tenancy: &Tenancy, app: &Application) -> String {
    let namespace = app.namespace().unwrap_or_default();
    rbac_object_of(
        tenancy,
        crate::tenancy::project_name(app),
        &namespace,
        &app.name_any(),
    )
}

/// [`rbac_object`] from the parts, for records that name an app without holding it.
pub fn rbac_object_of(tenancy: &Tenancy, project: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() || namespace == tenancy.control_namespace() {
        format!("{project}/{name}")
    } else {
        format!("{project}/{namespace}/{name}")
    }
}

/// The Application at `path`, read fresh, if it lives where Capstan honours Applications and
/// the caller may `action` it. A missing app is a 404 only to those who could see it if it
/// existed (a policy over every project); others get the 403 they would get anyway, so names
/// do not leak.
pub(crate) async fn authorized(
    state: &ApiState,
    auth: &Authenticated,
    path: &AppPath,
    action: &str,
) -> Result<Application, ApiError> {
    let app = match state.store.get(path.key.namespace(), path.key.name()).await {
        Ok(app) => app,
        Err(StoreError::NotFound(what)) => {
            let anywhere = if path.key.namespace() == state.tenancy.control_namespace() {
                format!("*/{}", path.key.name())
            } else {
                format!("*/{}/{}", path.key.namespace(), path.key.name())
            };
            auth.check(state, "applications", action, &anywhere)?;
            return Err(ApiError::Store(StoreError::NotFound(what)));
        }
        Err(e) => return Err(e.into()),
    };
    state
        .tenancy
        .honours(&app)
        .map_err(|reason| ApiError::Forbidden(reason.to_string()))?;
    auth.check(
        state,
        "applications",
        action,
        &rbac_object(&state.tenancy, &app),
    )?;
    Ok(app)
}

/// Refuses an Application the control plane would not act on, with the reason a user can fix.
pub fn admit(tenancy: &Tenancy, app: &Application) -> Result<(), ApiError> {
    let forbidden = |e: &dyn std::fmt::Display| ApiError::Forbidden(e.to_string());
    tenancy.honours(app).map_err(|e| forbidden(&e))?;
    let rules = tenancy.rules_for(app).map_err(|e| forbidden(&e))?;
    for source in app.all_sources() {
        // The spec is stored in the cluster for anyone who may read Applications to see.
        if RepoUrl::parse(&source.repo_url).is_ok_and(|u| u.has_password()) {
            return Err(ApiError::Unprocessable(format!(
                "repoURL {} carries a password: credentials belong in configuration or Secrets",
                crate::git::redact_url(&source.repo_url)
            )));
        }
        rules
            .check_repo(&source.repo_url)
            .map_err(|e| forbidden(&e))?;
    }
    Ok(())
}

/// Creates an Application; Argo CD documents (`argoproj.io/v1alpha1`) are converted.
#[utoipa::path(
    post,
    path = "/api/v1/applications",
    tag = "applications",
    request_body(content = ApplicationDoc, description = "An Application document", content_type = "application/json"),
    responses((status = 201, description = "The created Application", body = ApplicationDoc), (status = 400, description = "Malformed JSON", body = crate::api::error::ErrorBody), (status = 403, description = "The project does not allow it", body = crate::api::error::ErrorBody), (status = 409, description = "It already exists", body = crate::api::error::ErrorBody), (status = 413, description = "Body too large", body = crate::api::error::ErrorBody), (status = 415, description = "Not JSON", body = crate::api::error::ErrorBody), (status = 422, description = "Not an acceptable Application", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<serde_json::Value>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = parse_application(body.into_inner(), state.tenancy.control_namespace())
        .map_err(ApiError::Unprocessable)?;
    auth.check(
        &state,
        "applications",
        "create",
        &rbac_object(&state.tenancy, &app),
    )?;
    admit(&state.tenancy, &app)?;
    let created = state.store.create(&app).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Deletes an Application (the resources it applied stay, as with Argo CD's non-cascading delete).
#[utoipa::path(
    delete,
    path = "/api/v1/applications/{namespace}/{name}",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    responses((status = 200, description = "Deleted: `{\"status\": \"deleted\"}`", body = StatusAnswer), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    auth: Authenticated,
    path: AppPath,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&state, &auth, &path, "delete").await?;
    state
        .store
        .delete(path.key.namespace(), path.key.name())
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "deleted" })))
}

/// Enqueues a refresh (`?hard=true` bypasses caches). A refresh never syncs by itself.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{namespace}/{name}/refresh",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application"), ("hard" = Option<bool>, Query, description = "Ignore the render cache"), ("prune" = Option<bool>, Query, description = "Also delete tracked objects that left Git")),
    responses((status = 202, description = "A refresh was queued", body = QueuedJob), (status = 400, description = "Bad name or query", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody), (status = 503, description = "Nothing was queued; retry", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn refresh(
    auth: Authenticated,
    path: AppPath,
    query: web::Query<JobQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    enqueue(&auth, path, query.into_inner(), state, JobKind::Refresh).await
}

/// The largest sync body: selectors for a few thousand resources.
const SYNC_BODY_LIMIT: usize = 1024 * 1024;

/// The optional body of a sync, as `argocd app sync` sends its options.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncBody {
    /// Also delete tracked objects that left Git.
    #[serde(default)]
    prune: bool,
    /// Compute and report, change nothing.
    #[serde(default)]
    dry_run: bool,
    /// A commit, tag or branch to sync to instead of the target revision.
    #[serde(default)]
    revision: Option<String>,
    /// Only these resources (a selective sync); empty means all.
    #[serde(default)]
    #[schema(value_type = Vec<crate::api::openapi::SyncResource>)]
    resources: Vec<ResourceSelector>,
}

impl SyncBody {
    /// Reads an optional JSON body: an empty one, or `null`, means no options.
    fn parse(body: &[u8]) -> Result<Option<SyncBody>, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let invalid = |e: serde_json::Error| ApiError::BadRequest(format!("invalid JSON: {e}"));
        match serde_json::from_slice(body).map_err(invalid)? {
            serde_json::Value::Null => Ok(None),
            doc => serde_json::from_value(doc).map(Some).map_err(invalid),
        }
    }

    /// The sync request it asks for, refusing selectors and revisions no sync could act on.
    fn into_request(self) -> Result<SyncRequest, ApiError> {
        for r in &self.resources {
            if r.kind.is_empty() || r.name.is_empty() {
                return Err(ApiError::BadRequest(
                    "every resource needs a kind and a name".into(),
                ));
            }
        }
        let revision = self
            .revision
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if let Some(r) = &revision {
            check_revision(r)?;
        }
        Ok(SyncRequest {
            revision,
            resources: self.resources,
            dry_run: self.dry_run,
            rollback_id: None,
        })
    }
}

/// Refuses revisions Git could read as an option or that no ref name can hold.
pub(super) fn check_revision(revision: &str) -> Result<(), ApiError> {
    if revision.starts_with('-')
        || revision.len() > 255
        || revision
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::BadRequest(format!(
            "revision {revision:?} is not a commit, tag or branch name"
        )));
    }
    Ok(())
}

/// Enqueues a sync (`?prune=true` also deletes tracked objects that left Git); an optional
/// JSON body carries `prune`, `dryRun`, `revision` and `resources` (a selective sync).
#[utoipa::path(
    post,
    path = "/api/v1/applications/{namespace}/{name}/sync",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application"), ("hard" = Option<bool>, Query, description = "Ignore the render cache"), ("prune" = Option<bool>, Query, description = "Also delete tracked objects that left Git")),
    request_body(content = Option<SyncBody>, description = "Optional sync options; an empty body or `null` means none", content_type = "application/json"),
    responses((status = 202, description = "A sync was queued", body = QueuedJob), (status = 400, description = "Bad name, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody), (status = 409, description = "Another operation is in progress", body = crate::api::error::ErrorBody), (status = 413, description = "Body too large", body = crate::api::error::ErrorBody), (status = 503, description = "Nothing was queued; retry", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn sync(
    auth: Authenticated,
    path: AppPath,
    query: web::Query<JobQuery>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.into_inner();
    // Read here rather than by an extractor, so a bad or missing body answers in ApiError's shape.
    let body = payload
        .to_bytes_limited(SYNC_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "request body is larger than the limit of {SYNC_BODY_LIMIT} bytes"
            ))
        })?
        .map_err(|e| ApiError::BadRequest(format!("cannot read request body: {e}")))?;
    let request = match SyncBody::parse(&body)? {
        Some(body) => {
            query.prune |= body.prune;
            Some(body.into_request()?)
        }
        None => None,
    };
    let app = authorized(&state, &auth, &path, "sync").await?;
    if app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .is_some_and(|o| o.phase == crate::store::application::OperationPhase::Running)
    {
        // As Argo CD: one operation at a time; terminate the running one first.
        return Err(ApiError::Conflict(
            "another operation is already in progress".into(),
        ));
    }
    let mut job = manual_job(&auth, &path, JobKind::Sync);
    job.prune = query.prune;
    job.sync = request;
    queued(&state, &job).await
}

async fn enqueue(
    auth: &Authenticated,
    path: AppPath,
    query: JobQuery,
    state: web::Data<ApiState>,
    kind: JobKind,
) -> Result<HttpResponse, ApiError> {
    // Argo CD counts a refresh as reading the app.
    authorized(&state, auth, &path, "get").await?;
    let mut job = manual_job(auth, &path, kind);
    job.hard = query.hard;
    job.prune = query.prune;
    queued(&state, &job).await
}

/// A job a person asked for through the API, naming them as its cause.
pub(super) fn manual_job(auth: &Authenticated, path: &AppPath, kind: JobKind) -> Job {
    Job::new(&path.key, kind, Cause::by_person(auth.user().to_owned()))
}

/// Publishes `job` and answers 202 with its id.
pub(super) async fn queued(state: &ApiState, job: &Job) -> Result<HttpResponse, ApiError> {
    crate::job::publish(&state.queue, job).await?;
    Ok(
        HttpResponse::Accepted().json(crate::api::openapi::QueuedJob {
            status: "queued".into(),
            job: job.id.clone(),
        }),
    )
}

/// The namespace Argo CD keeps its Applications in; documents from there land in the control namespace.
const ARGO_CD_NAMESPACE: &str = "argocd";

/// An Application from a document, accepting Argo CD's apiVersion; documents without a namespace,
/// or in Argo CD's `argocd`, land in `control_namespace`.
pub fn parse_application(
    mut doc: serde_json::Value,
    control_namespace: &str,
) -> Result<Application, String> {
    convert_api_version(&mut doc, "Application")?;
    if let Some(status) = doc.as_object_mut() {
        // Status is Capstan's to write, and Argo CD exports carry `operation` too.
        status.remove("status");
        status.remove("operation");
    }
    let mut app: Application =
        serde_json::from_value(doc).map_err(|e| format!("invalid Application: {e}"))?;
    match app.metadata.name.as_deref() {
        None | Some("") => return Err("metadata.name is required".into()),
        Some(name) => check_subdomain("metadata.name", name).map_err(|e| e.to_string())?,
    }
    match app.metadata.namespace.as_deref() {
        None | Some("") | Some(ARGO_CD_NAMESPACE) => {
            app.metadata.namespace = Some(control_namespace.into())
        }
        Some(ns) => check_label("metadata.namespace", ns).map_err(|e| e.to_string())?,
    }
    clear_server_fields(&mut app.metadata);
    Ok(app)
}

/// Checks `kind` and accepts Argo CD's `argoproj.io/v1alpha1` by rewriting it to Capstan's group.
pub fn convert_api_version(doc: &mut serde_json::Value, kind: &str) -> Result<(), String> {
    match doc.get("apiVersion").and_then(|v| v.as_str()) {
        Some("capstan.dev/v1alpha1") => {}
        Some("argoproj.io/v1alpha1") => doc["apiVersion"] = "capstan.dev/v1alpha1".into(),
        other => {
            return Err(format!(
                "apiVersion must be capstan.dev/v1alpha1 or argoproj.io/v1alpha1, not {other:?}"
            ));
        }
    }
    if doc.get("kind").and_then(|v| v.as_str()) != Some(kind) {
        return Err(format!("kind must be {kind}"));
    }
    Ok(())
}

/// Drops metadata the server owns, so exported documents can be created again.
pub fn clear_server_fields(meta: &mut kube::api::ObjectMeta) {
    meta.resource_version = None;
    meta.uid = None;
    meta.managed_fields = None;
    meta.creation_timestamp = None;
}

#[cfg(test)]
mod tests {
    use super::{SyncBody, parse_application};
    use serde_json::json;

    #[test]
    fn a_sync_body_carries_selectors_and_refuses_what_no_sync_can_use() {
        assert!(SyncBody::parse(b"").expect("empty").is_none());
        assert!(SyncBody::parse(b"null").expect("null").is_none());
        let body = SyncBody::parse(
            br#"{"dryRun": true, "revision": " v2 ", "resources": [{"kind": "ConfigMap", "name": "c"}]}"#,
        )
        .expect("parses")
        .expect("a body");
        let request = body.into_request().expect("valid");
        assert_eq!(request.revision.as_deref(), Some("v2"));
        assert!(request.dry_run);
        assert_eq!(request.resources[0].kind, "ConfigMap");
        assert_eq!(request.resources[0].group, "");
        for bad in [
            &br#"{"resources": [{"kind": "", "name": "c"}]}"#[..],
            br#"{"revision": "-c core.sshCommand=x"}"#,
        ] {
            let body = SyncBody::parse(bad).expect("json").expect("body");
            assert!(
                body.into_request().is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            SyncBody::parse(br#"{"prnue": true}"#).is_err(),
            "typos are refused"
        );
        assert!(SyncBody::parse(b"{").is_err());
    }

    #[test]
    fn an_argo_cd_application_is_accepted_with_its_api_version_converted() {
        let doc = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": "argocd", "resourceVersion": "7"},
            "spec": {"project": "default",
                     "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                                "targetRevision": "HEAD", "path": "guestbook"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
                     "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}},
            "status": {"sync": {"status": "Synced"}},
            "operation": {"sync": {}}
        });
        let app = parse_application(doc, "capstan").expect("converts");
        assert_eq!(
            app.metadata.namespace.as_deref(),
            Some("capstan"),
            "Argo CD's namespace maps to the control namespace"
        );
        assert_eq!(
            app.metadata.resource_version, None,
            "server-owned metadata is dropped"
        );
        assert!(app.status.is_none(), "status is Capstan's to write");
        assert!(app.sync_option("CreateNamespace"));
        assert!(app.automated().is_some_and(|a| a.prune && a.self_heal));
        assert_eq!(
            app.primary_source().map(|s| s.path.as_deref()),
            Some(Some("guestbook"))
        );
    }

    #[test]
    fn documents_without_a_namespace_land_in_the_control_namespace_and_others_keep_theirs() {
        let doc = |ns: Option<&str>| {
            let mut d = json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
                "metadata": {"name": "a"}, "spec": {}});
            if let Some(ns) = ns {
                d["metadata"]["namespace"] = ns.into();
            }
            d
        };
        let ns = |d| {
            parse_application(d, "cd")
                .expect("parses")
                .metadata
                .namespace
        };
        assert_eq!(ns(doc(None)).as_deref(), Some("cd"));
        assert_eq!(ns(doc(Some(""))).as_deref(), Some("cd"));
        assert_eq!(ns(doc(Some("team-a"))).as_deref(), Some("team-a"));
    }

    #[test]
    fn other_documents_are_refused_with_a_reason() {
        let err = parse_application(json!({"apiVersion": "v1", "kind": "ConfigMap"}), "capstan")
            .expect_err("not an app");
        assert!(err.contains("apiVersion"), "{err}");
        let err = parse_application(
            json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {}, "spec": {}}),
            "capstan",
        )
        .expect_err("no name");
        assert!(err.contains("metadata.name"), "{err}");
        let err = parse_application(
            json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "x"}, "spec": {"source": "not an object"}}),
            "capstan",
        )
        .expect_err("bad spec");
        assert!(err.contains("invalid Application"), "{err}");
        let err = parse_application(
            json!({"apiVersion": "capstan.dev/v1alpha1",
            "kind": "Application", "metadata": {"name": "Guest_Book"}, "spec": {}}),
            "capstan",
        )
        .expect_err("bad name");
        assert!(
            err.contains("metadata.name") && err.contains("DNS-1123"),
            "{err}"
        );
        let err = parse_application(
            json!({"apiVersion": "capstan.dev/v1alpha1",
            "kind": "Application", "metadata": {"name": "ok", "namespace": "../x"}, "spec": {}}),
            "capstan",
        )
        .expect_err("bad namespace");
        assert!(err.contains("metadata.namespace"), "{err}");
    }
}
