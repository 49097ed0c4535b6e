//! `/create`: a form with Argo CD's Application fields, and a YAML editor that takes a whole
//! `Application` document (`capstan.dev/v1alpha1`, or Argo CD's `argoproj.io/v1alpha1`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::layout::{Nav, page};
use crate::api::ApiError;
use crate::api::ApiState;
use crate::api::applications::{admit, parse_application};
use crate::api::auth::Authenticated;

/// The largest YAML document the editor sends.
pub const YAML_LIMIT: usize = 1024 * 1024;

const EXAMPLE: &str = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    path: guestbook
    targetRevision: HEAD
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
";

/// `GET /create`.
pub async fn show(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    let field = |id: &str, label: &str, help: &str, required: bool| {
        html! {
            div class="field" {
                label for=(id) { (label) @if required { " (required)" } }
                input id=(id) name=(id) type="text" required[required] aria-describedby={ (id) "-help" };
                p class="help" id={ (id) "-help" } { (help) }
            }
        }
    };
    let body = html! {
        h1 { "New application" }
        p id="create-result" class="error" role="alert" tabindex="-1" {}
        div class="create-grid" {
            form class="create" id="create-form" aria-labelledby="form-title" {
                h2 id="form-title" { "Fields" }
                (field("name", "Name", "A DNS-1123 name, e.g. guestbook.", true))
                (field("project", "Project", "Empty: default.", false))
                (field("repoURL", "Repository URL", "https://… or git@host:org/repo.git", true))
                (field("path", "Path", "Directory in the repository, e.g. apps/guestbook.", false))
                (field("targetRevision", "Target revision", "Branch, tag or commit; empty: HEAD.", false))
                (field("clusterServer", "Cluster server", "e.g. https://kubernetes.default.svc (or give a cluster name).", false))
                (field("clusterName", "Cluster name", "e.g. in-cluster.", false))
                (field("destNamespace", "Namespace", "Where the resources go.", true))
                fieldset {
                    legend { "Sync policy" }
                    div class="check" { input type="checkbox" id="auto" name="auto"; label for="auto" { "Automated sync" } }
                    div class="check" { input type="checkbox" id="prune" name="prune"; label for="prune" { "Prune" } }
                    div class="check" { input type="checkbox" id="selfHeal" name="selfHeal"; label for="selfHeal" { "Self-heal" } }
                    label for="syncOptions" { "Sync options" }
                    textarea id="syncOptions" name="syncOptions" rows="2" aria-describedby="syncOptions-help" {}
                    p class="help" id="syncOptions-help" { "One per line, e.g. CreateNamespace=true." }
                }
                button type="submit" class="primary" { "Create" }
            }
            form class="create" id="create-yaml" aria-labelledby="yaml-title" {
                h2 id="yaml-title" { "YAML" }
                label for="yaml" { "Application document (Capstan or Argo CD)" }
                textarea id="yaml" name="yaml" rows="20" spellcheck="false" class="code" { (EXAMPLE) }
                button type="submit" class="primary" { "Create from YAML" }
            }
        }
    };
    super::html(
        StatusCode::OK,
        page("New application", Some(&session), Nav::Create, body),
    )
}

/// `POST /create/yaml`: the editor's document, YAML read here (the page has no YAML parser),
/// then admitted and created exactly as `POST /api/v1/applications` does.
pub async fn yaml(
    auth: Authenticated,
    body: web::Bytes,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    if body.len() > YAML_LIMIT {
        return Err(ApiError::PayloadTooLarge(format!(
            "the document is larger than {YAML_LIMIT} bytes"
        )));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the document is not UTF-8".into()))?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("the document is empty".into()));
    }
    let doc: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("invalid YAML: {e}")))?;
    let app = parse_application(doc, state.tenancy.control_namespace())
        .map_err(ApiError::Unprocessable)?;
    auth.check(
        &state,
        "applications",
        "create",
        &crate::api::applications::rbac_object(&state.tenancy, &app),
    )?;
    admit(&state.tenancy, &app)?;
    let created = state.store.create(&app).await?;
    Ok(HttpResponse::Created().json(created))
}
