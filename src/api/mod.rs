//! The HTTP surface: webhooks, the REST API and health endpoints (actix-web).

pub mod accounts;
pub mod applications;
pub mod auth;
pub mod clusters;
pub mod diff;
pub mod error;
pub mod health;
pub mod history;
pub mod manifests;
pub mod metrics;
pub mod openapi;
pub mod operation;
pub mod previews;
pub mod project_tokens;
pub mod projects;
pub mod repositories;
pub mod session;
pub mod tree;
pub mod webhook;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web;

use crate::cluster::Cluster;
use crate::queue::SharedQueue;
use crate::secret::SecretString;
use crate::store::AppStore;
use crate::tenancy::Tenancy;
use crate::webhook::WebhookSecrets;
pub use error::ApiError;
pub use health::Readiness;
pub use webhook::WebhookLimits;

/// Shared state of the HTTP handlers.
pub struct ApiState {
    pub queue: SharedQueue,
    pub store: AppStore,
    pub tenancy: Tenancy,
    pub cluster: Arc<Cluster>,
    /// Every target cluster, for what reads an app's destination (manifests, diff, tree).
    pub clusters: crate::cluster::registry::Registry,
    pub api_token: SecretString,
    pub webhook_secrets: WebhookSecrets,
    /// Redelivery de-duplication (claims in the broker).
    pub dedup: webhook::Dedup,
    /// The cached answer of `/readyz`.
    pub readiness: Readiness,
    /// The process's metrics, served at `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Git, render cache and tools, for `…/manifests`.
    pub manifests: Arc<crate::manifests::Manifests>,
    /// Accounts, session signing and login backoff.
    pub auth: Arc<crate::auth::Auth>,
    /// The RBAC policy in force.
    pub rbac: Arc<crate::rbac::LivePolicy>,
    /// Pull-request webhooks queue previews (`[previews] enabled`).
    pub previews_enabled: bool,
}

/// One route the server mounts: the single table both [`configure`] and the OpenAPI checks read.
pub struct RouteSpec {
    /// The HTTP method.
    pub method: Method,
    /// The full path as actix matches it (`{name}` segments), which is also the OpenAPI path.
    pub path: &'static str,
    /// The scope whose extractor limits apply to it.
    pub scope: RouteScope,
    /// Attaches the handler to a route that already carries the method guard.
    pub to: fn(actix_web::Route) -> actix_web::Route,
}

/// Where a route is mounted; each scope has its own body limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteScope {
    /// Health and metrics, served by worker-only processes too.
    Probes,
    /// `/api/openapi.json`.
    Document,
    /// `/api/webhook`, with the webhook body limits.
    Webhook,
    /// `/api/v1/applications…`.
    Applications,
    /// `/api/v1/projects…`.
    Projects,
    /// `/api/v1/clusters…`.
    Clusters,
    /// `/api/v1/repositories…`.
    Repositories,
    /// `/api/v1/session…` and `/api/v1/account…`.
    Accounts,
    /// `/api/v1/previews…`.
    Previews,
}

const APPLICATIONS: &str = "/api/v1/applications";
const PROJECTS: &str = "/api/v1/projects";
const CLUSTERS: &str = "/api/v1/clusters";
const REPOSITORIES: &str = "/api/v1/repositories";
const PREVIEWS: &str = "/api/v1/previews";

impl ApiState {
    /// The Secrets of the control namespace, where clusters and repositories are registered
    /// as Argo CD keeps them.
    pub fn control_secrets(&self) -> kube::Api<k8s_openapi::api::core::v1::Secret> {
        self.control_api()
    }

    /// Objects of kind `K` in the control namespace.
    pub fn control_api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(
            self.cluster.client().clone(),
            self.tenancy.control_namespace(),
        )
    }
}

/// Every route the server can mount, in the order it mounts them.
pub static ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::GET,
        path: "/healthz",
        scope: RouteScope::Probes,
        to: |r| r.to(health::healthz),
    },
    RouteSpec {
        method: Method::GET,
        path: "/readyz",
        scope: RouteScope::Probes,
        to: |r| r.to(health::readyz),
    },
    RouteSpec {
        method: Method::GET,
        path: "/metrics",
        scope: RouteScope::Probes,
        to: |r| r.to(metrics::scrape),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/openapi.json",
        scope: RouteScope::Document,
        to: |r| r.to(openapi::serve),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/webhook",
        scope: RouteScope::Webhook,
        to: |r| r.to(webhook::receive),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/session",
        scope: RouteScope::Accounts,
        to: |r| r.to(session::create),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/session",
        scope: RouteScope::Accounts,
        to: |r| r.to(session::delete),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/session/exchange",
        scope: RouteScope::Accounts,
        to: |r| r.to(session::exchange),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/session/userinfo",
        scope: RouteScope::Accounts,
        to: |r| r.to(session::userinfo),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/account",
        scope: RouteScope::Accounts,
        to: |r| r.to(accounts::list),
    },
    RouteSpec {
        method: Method::PUT,
        path: "/api/v1/account/password",
        scope: RouteScope::Accounts,
        to: |r| r.to(accounts::update_password),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/account/can-i/{resource}/{action}/{object}",
        scope: RouteScope::Accounts,
        to: |r| r.to(accounts::can_i),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/account/{name}",
        scope: RouteScope::Accounts,
        to: |r| r.to(accounts::get),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/account/{name}/token",
        scope: RouteScope::Accounts,
        to: |r| r.to(accounts::create_token),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/account/{name}/token/{id}",
        scope: RouteScope::Accounts,
        to: |r| r.to(accounts::delete_token),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/applications",
        scope: RouteScope::Applications,
        to: |r| r.to(applications::list),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/applications",
        scope: RouteScope::Applications,
        to: |r| r.to(applications::create),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/applications/{namespace}/{name}",
        scope: RouteScope::Applications,
        to: |r| r.to(applications::get),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/applications/{namespace}/{name}",
        scope: RouteScope::Applications,
        to: |r| r.to(applications::delete),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/applications/{namespace}/{name}/refresh",
        scope: RouteScope::Applications,
        to: |r| r.to(applications::refresh),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/applications/{namespace}/{name}/sync",
        scope: RouteScope::Applications,
        to: |r| r.to(applications::sync),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/applications/{namespace}/{name}/manifests",
        scope: RouteScope::Applications,
        to: |r| r.to(manifests::get),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/applications/{namespace}/{name}/diff",
        scope: RouteScope::Applications,
        to: |r| r.to(diff::get),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/applications/{namespace}/{name}/history",
        scope: RouteScope::Applications,
        to: |r| r.to(history::list),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/applications/{namespace}/{name}/rollback",
        scope: RouteScope::Applications,
        to: |r| r.to(history::rollback),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/applications/{namespace}/{name}/operation",
        scope: RouteScope::Applications,
        to: |r| r.to(operation::terminate),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/applications/{namespace}/{name}/resource-tree",
        scope: RouteScope::Applications,
        to: |r| r.to(tree::get),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/projects",
        scope: RouteScope::Projects,
        to: |r| r.to(projects::list),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/projects",
        scope: RouteScope::Projects,
        to: |r| r.to(projects::create),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/projects/{name}",
        scope: RouteScope::Projects,
        to: |r| r.to(projects::get),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/projects/{name}",
        scope: RouteScope::Projects,
        to: |r| r.to(projects::delete),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/projects/{project}/roles/{role}/token",
        scope: RouteScope::Projects,
        to: |r| r.to(project_tokens::create),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/projects/{project}/roles/{role}/token/{id}",
        scope: RouteScope::Projects,
        to: |r| r.to(project_tokens::delete),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/previews",
        scope: RouteScope::Previews,
        to: |r| r.to(previews::list),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/previews/{id}",
        scope: RouteScope::Previews,
        to: |r| r.to(previews::get),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/clusters",
        scope: RouteScope::Clusters,
        to: |r| r.to(clusters::list),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/clusters",
        scope: RouteScope::Clusters,
        to: |r| r.to(clusters::create),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/clusters/{name}",
        scope: RouteScope::Clusters,
        to: |r| r.to(clusters::get),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/clusters/{name}",
        scope: RouteScope::Clusters,
        to: |r| r.to(clusters::delete),
    },
    RouteSpec {
        method: Method::GET,
        path: "/api/v1/repositories",
        scope: RouteScope::Repositories,
        to: |r| r.to(repositories::list),
    },
    RouteSpec {
        method: Method::POST,
        path: "/api/v1/repositories",
        scope: RouteScope::Repositories,
        to: |r| r.to(repositories::create),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/api/v1/repositories/{name}",
        scope: RouteScope::Repositories,
        to: |r| r.to(repositories::delete),
    },
];

/// The routes of one scope, with paths relative to `prefix`.
fn scoped(
    scope: RouteScope,
    prefix: &str,
) -> impl Iterator<Item = (&'static str, actix_web::Route)> {
    ROUTES
        .iter()
        .filter(move |r| r.scope == scope)
        .map(move |r| {
            let rel = r.path.strip_prefix(prefix).unwrap_or(r.path);
            (rel, (r.to)(web::route().method(r.method.clone())))
        })
}

/// Mounts every route of [`ROUTES`]; `with_api` is false for a worker-only process (health
/// endpoints only).
pub fn configure(cfg: &mut web::ServiceConfig, webhook_limits: WebhookLimits, with_api: bool) {
    cfg.app_data(web::JsonConfig::default().error_handler(error::json_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .default_service(web::to(error::not_found));
    for (path, route) in scoped(RouteScope::Probes, "") {
        cfg.route(path, route);
    }
    if !with_api {
        return;
    }
    for (path, route) in scoped(RouteScope::Document, "") {
        cfg.route(path, route);
    }
    let mut webhook = web::resource("/api/webhook")
        .app_data(web::PayloadConfig::new(webhook_limits.max_body_bytes))
        .app_data(webhook_limits);
    for (_, route) in scoped(RouteScope::Webhook, "/api/webhook") {
        webhook = webhook.route(route);
    }
    let mut apps = web::scope(APPLICATIONS).app_data(
        web::JsonConfig::default()
            .limit(4 * 1024 * 1024)
            .error_handler(error::json_error),
    );
    for (path, route) in scoped(RouteScope::Applications, APPLICATIONS) {
        apps = apps.route(path, route);
    }
    let mut projects = web::scope(PROJECTS).app_data(
        web::JsonConfig::default()
            .limit(1024 * 1024)
            .error_handler(error::json_error),
    );
    for (path, route) in scoped(RouteScope::Projects, PROJECTS) {
        projects = projects.route(path, route);
    }
    let mut clusters = web::scope(CLUSTERS).app_data(
        web::JsonConfig::default()
            .limit(1024 * 1024)
            .error_handler(error::json_error),
    );
    for (path, route) in scoped(RouteScope::Clusters, CLUSTERS) {
        clusters = clusters.route(path, route);
    }
    let mut repositories = web::scope(REPOSITORIES).app_data(
        web::JsonConfig::default()
            .limit(1024 * 1024)
            .error_handler(error::json_error),
    );
    for (path, route) in scoped(RouteScope::Repositories, REPOSITORIES) {
        repositories = repositories.route(path, route);
    }
    let mut previews = web::scope(PREVIEWS);
    for (path, route) in scoped(RouteScope::Previews, PREVIEWS) {
        previews = previews.route(path, route);
    }
    // Two prefixes (session, account), so a resource per path rather than a scope; one resource
    // holds every method of its path, as a second resource at the same path is never reached
    // (DELETE /api/v1/session answered 405 behind the POST's resource).
    let mut by_path: Vec<(&str, Vec<actix_web::Route>)> = Vec::new();
    for (path, route) in scoped(RouteScope::Accounts, "") {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push(route),
            None => by_path.push((path, vec![route])),
        }
    }
    for (path, routes) in by_path {
        let mut resource = web::resource(path).app_data(
            web::JsonConfig::default()
                .limit(64 * 1024)
                .error_handler(error::json_error),
        );
        for route in routes {
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
    cfg.service(webhook)
        .service(apps)
        .service(projects)
        .service(clusters)
        .service(repositories)
        .service(previews);
}
