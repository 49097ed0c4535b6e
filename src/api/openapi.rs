//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every route, generated from the
//! handlers' `#[utoipa::path]` annotations. The Application and AppProject schemas come from the
//! same Rust types the CRDs are generated from, so the document cannot drift from the store.

use std::borrow::Cow;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use kube::Resource;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::error::{ErrorBody, REASONS};
use super::{
    accounts, applications, clusters, diff, health, history, manifests, metrics, operation,
    previews, project_tokens, projects, repositories, session, tree, webhook,
};
use crate::store::{AppProject, Application};

/// The annotated handlers and shared schemas; [`document`] finishes it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Capstan API",
        description = "GitOps continuous delivery for Kubernetes. Every error answers with the `Error` schema.",
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::scrape,
        serve,
        webhook::receive,
        session::create,
        session::delete,
        session::userinfo,
        accounts::list,
        accounts::get,
        accounts::update_password,
        accounts::create_token,
        accounts::delete_token,
        accounts::can_i,
        applications::list,
        applications::create,
        applications::get,
        applications::delete,
        applications::refresh,
        applications::sync,
        manifests::get,
        diff::get,
        history::list,
        history::rollback,
        operation::terminate,
        tree::get,
        projects::list,
        projects::create,
        projects::get,
        projects::delete,
        project_tokens::create,
        project_tokens::delete,
        clusters::list,
        clusters::create,
        clusters::get,
        clusters::delete,
        repositories::list,
        repositories::create,
        repositories::delete,
        previews::list,
        previews::get,
        crate::api::session::exchange,
    ),
    components(schemas(
        ErrorBody,
        ApplicationDoc,
        ProjectDoc,
        RevisionHistoryDoc,
        RecentOperationDoc,
        HealthDoc,
        SyncStatusCodeDoc
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "applications", description = "Applications: CRUD and operations"),
        (name = "projects", description = "AppProjects"),
        (name = "clusters", description = "Target clusters (Argo CD cluster Secrets)"),
        (name = "repositories", description = "Repository credentials (Argo CD repository Secrets)"),
        (name = "webhooks", description = "Git host push events"),
        (name = "previews", description = "Pull-request previews"),
        (name = "health", description = "Probes and metrics"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// Declares the `bearer` scheme the API routes name in their `security`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Declares a type standing in the handlers' annotations for a schema of the store's types,
/// whose real schema (schemars, from the Rust types) replaces it in [`document`].
macro_rules! store_schema {
    ($(#[$doc:meta])* $ty:ident => $name:literal) => {
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

store_schema!(
    /// An Application (`capstan.dev/v1alpha1`).
    ApplicationDoc => "Application"
);
store_schema!(
    /// An AppProject (`capstan.dev/v1alpha1`).
    ProjectDoc => "AppProject"
);
store_schema!(
    /// One entry of `status.history`.
    RevisionHistoryDoc => "RevisionHistory"
);
store_schema!(
    /// One entry of `status.recentOperations`.
    RecentOperationDoc => "RecentOperation"
);
store_schema!(
    /// A health status and its message.
    HealthDoc => "HealthStatusBlock"
);
store_schema!(
    /// `Synced`, `OutOfSync` or `Unknown`.
    SyncStatusCodeDoc => "SyncStatusCode"
);

/// The names [`store_schema!`] stands in for: their schemas always come from the store's types.
const STORE_SCHEMAS: &[&str] = &[
    "Application",
    "AppProject",
    "RevisionHistory",
    "RecentOperation",
    "HealthStatusBlock",
    "SyncStatusCode",
];

#[derive(ToSchema)]
pub struct ApplicationList {
    /// The Applications Capstan honours.
    pub items: Vec<ApplicationDoc>,
}

/// The answer of `GET /api/v1/projects`.
#[derive(ToSchema)]
pub struct ProjectList {
    /// Every AppProject.
    pub items: Vec<ProjectDoc>,
}

/// The answer of a request that queued a job.
#[derive(ToSchema, serde::Serialize)]
pub struct QueuedJob {
    /// Always `queued`.
    #[schema(example = "queued")]
    pub status: String,
    /// The queued job's id.
    pub job: String,
}

/// The answer of a delete.
#[derive(ToSchema, serde::Serialize)]
pub struct StatusAnswer {
    /// Always `deleted`.
    #[schema(example = "deleted")]
    pub status: String,
}

/// One resource of a selective sync (as `argocd app sync --resource`).
/// What `DELETE` of a cluster or repository answers.
#[derive(ToSchema, serde::Serialize)]
pub struct Removed {
    #[schema(example = "removed")]
    pub status: String,
    /// The cluster or Secret removed.
    pub name: String,
}

impl Removed {
    /// `{"status": "removed", "name": NAME}`.
    pub fn named(name: &str) -> Removed {
        Removed {
            status: "removed".into(),
            name: name.to_owned(),
        }
    }
}

#[derive(ToSchema)]
pub struct SyncResource {
    /// API group; empty or absent for the core group.
    #[schema(default = "")]
    pub group: Option<String>,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; empty or absent for cluster-scoped objects.
    #[schema(default = "")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

/// The finished document as JSON: the annotations plus the resource schemas, the error reasons
/// and a 401 on every route that needs the token.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    add_resource_schemas(&mut doc);
    if let Some(reason) = doc.pointer_mut("/components/schemas/Error/properties/reason") {
        reason["enum"] = json!(REASONS);
    }
    let unauthorized = json!({
        "description": "Missing or wrong bearer token (reason `unauthorized`)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|m| m.values_mut())
        {
            if op.get("security").is_some()
                && let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut)
            {
                responses
                    .entry("401")
                    .or_insert_with(|| unauthorized.clone());
            }
        }
    }
    doc
}

/// Replaces the placeholders with the schemas of the store's types (and the types they use).
fn add_resource_schemas(doc: &mut Value) {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let application = generator.subschema_for::<Application>();
    let project = generator.subschema_for::<AppProject>();
    let definitions = generator.take_definitions(true);
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in definitions {
        if STORE_SCHEMAS.contains(&name.as_str()) || !schemas.contains_key(&name) {
            schemas.insert(name, schema);
        }
    }
    // Where schemars inlined rather than referenced, the inline schema is the resource's.
    for (name, sub) in [("Application", application), ("AppProject", project)] {
        let sub = sub.to_value();
        if sub.get("$ref").is_none() {
            schemas.insert(name.to_owned(), sub);
        }
    }
    // The derived schemas describe spec and status only; the API also reads the type and the
    // object's name from the document.
    let resources = [
        (
            "Application",
            Application::api_version(&()),
            Application::kind(&()),
        ),
        (
            "AppProject",
            AppProject::api_version(&()),
            AppProject::kind(&()),
        ),
    ];
    for (name, api_version, kind) in resources {
        let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        let properties = schema.entry("properties").or_insert_with(|| json!({}));
        // Argo CD's group is accepted on create and converted (what `argocd` users have).
        properties["apiVersion"] = json!({
            "enum": [api_version, "argoproj.io/v1alpha1"],
            "description": format!("{api_version}; argoproj.io/v1alpha1 is accepted on create and converted."),
        });
        properties["kind"] = json!({"const": kind});
        properties["metadata"] = json!({
            "type": "object",
            "description": "Kubernetes object metadata; `name` is required, `namespace` defaults to the control namespace.",
            "properties": {
                "name": {"type": "string", "maxLength": 253},
                "namespace": {"type": "string", "maxLength": 63},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
            },
            "required": ["name"]
        });
        schema.insert(
            "required".to_owned(),
            json!(["apiVersion", "kind", "metadata", "spec"]),
        );
    }
}

/// The document, built once.
fn document_bytes() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default())
}

/// Serves the OpenAPI document; it needs no token, as it holds nothing secret.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_bytes())
}
