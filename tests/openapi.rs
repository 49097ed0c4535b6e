//! The OpenAPI document against what the server mounts and what the CLI sends.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::{App, test as atest};
use capstan::api::{self, ROUTES, WebhookLimits};
use serde_json::{Value, json};

fn limits() -> WebhookLimits {
    WebhookLimits {
        max_body_bytes: 1024 * 1024,
        body_timeout: Duration::from_secs(5),
    }
}

/// (method, path) of every operation the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|k| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// A concrete path for a template, every `{param}` filled with a valid name.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_security_and_the_error_schema() {
    let doc = api::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let error = &doc["components"]["schemas"]["Error"];
    let required: BTreeSet<&str> = error["required"]
        .as_array()
        .expect("Error.required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, BTreeSet::from(["code", "error", "reason"]));
    let reasons = error["properties"]["reason"]["enum"]
        .as_array()
        .expect("reason enum");
    for r in [
        "not_found",
        "unauthorized",
        "conflict",
        "bad_request",
        "internal",
    ] {
        assert!(reasons.contains(&json!(r)), "reason {r} documented");
    }
    // The resources carry the store's schema, not a placeholder.
    let app = &doc["components"]["schemas"]["Application"];
    assert!(app["properties"]["spec"].is_object(), "{app}");
    assert!(doc["components"]["schemas"]["AppProject"]["properties"]["spec"].is_object());
}

#[test]
fn every_error_response_is_the_error_schema_and_api_routes_document_401() {
    let doc = api::openapi::document();
    let mut checked = 0;
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        for (status, response) in op["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                // /readyz answers 503 with its probe state, on purpose.
                if path == "/readyz" {
                    continue;
                }
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
                checked += 1;
            }
        }
        if path.starts_with("/api/v1/") {
            assert!(
                op["security"].is_array(),
                "{method} {path} names its security"
            );
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
        }
    }
    assert!(checked > 30, "only {checked} error responses");
}

#[test]
fn the_route_table_and_the_document_name_the_same_routes() {
    let doc = api::openapi::document();
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let documented = documented(&doc);
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    for required in [
        ("POST", "/api/webhook"),
        (
            "DELETE",
            "/api/v1/applications/{namespace}/{name}/operation",
        ),
        (
            "GET",
            "/api/v1/applications/{namespace}/{name}/resource-tree",
        ),
        ("DELETE", "/api/v1/projects/{name}"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
    ] {
        assert!(
            table.contains(&(required.0.to_owned(), required.1.to_owned())),
            "{required:?}"
        );
    }
}

/// Whether the server's fallback (not a mounted route) answered.
async fn is_fallback(resp: actix_web::dev::ServiceResponse) -> bool {
    if resp.status() != 404 {
        return false;
    }
    let body: Value = atest::read_body_json(resp).await;
    body["error"]
        .as_str()
        .is_some_and(|m| m.ends_with("route at this path"))
}

#[actix_web::test]
async fn configure_serves_exactly_the_table() {
    let app =
        atest::init_service(App::new().configure(|cfg| api::configure(cfg, limits(), true))).await;
    for route in ROUTES {
        let req = atest::TestRequest::default()
            .method(route.method.clone())
            .uri(&concrete(route.path))
            .to_request();
        let resp = atest::call_service(&app, req).await;
        assert!(
            !is_fallback(resp).await,
            "{} {} is mounted",
            route.method,
            route.path
        );
    }
    // The probe can tell: a method the table lacks on a known path, and an unknown path, fall back.
    for (method, path) in [("PUT", "/api/v1/projects/x"), ("GET", "/api/v1/nothing")] {
        let req = atest::TestRequest::default()
            .method(method.parse().expect("method"))
            .uri(path)
            .to_request();
        assert!(
            is_fallback(atest::call_service(&app, req).await).await,
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn the_document_is_served_without_a_token() {
    let app =
        atest::init_service(App::new().configure(|cfg| api::configure(cfg, limits(), true))).await;
    let req = atest::TestRequest::get()
        .uri("/api/openapi.json")
        .to_request();
    let resp = atest::call_service(&app, req).await;
    assert_eq!(resp.status(), 200);
    let doc: Value = atest::read_body_json(resp).await;
    assert_eq!(doc, api::openapi::document());
}

/// The template of the document matching a concrete path, if any.
fn template_of<'a>(doc: &'a Value, method: &str, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .iter()
        .find_map(|(template, item)| {
            let t: Vec<&str> = template.split('/').collect();
            let matches = t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(t, s)| t.starts_with('{') || t == s);
            (matches && item.get(method.to_lowercase()).is_some()).then_some(template.as_str())
        })
}

/// Validates `body` against the operation's JSON request schema, resolving `$ref`s in the document.
fn body_errors(doc: &Value, method: &str, template: &str, body: &Value) -> Vec<String> {
    let schema = &doc["paths"][template][method.to_lowercase()]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} documents a JSON body"
    );
    // The document is the root, so `#/components/schemas/…` resolves; OpenAPI's own keys are
    // unknown keywords to the validator and ignored.
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["allOf"] = json!([schema]);
    let validator = jsonschema::validator_for(&root).expect("the document is a usable schema");
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// What `capstan::cli::ApiClient` sends (src/cli/mod.rs, src/cli/app.rs), call by call:
/// (method, path with query, JSON body).
fn cli_calls() -> Vec<(&'static str, &'static str, Option<Value>)> {
    let application = json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "web", "namespace": "capstan"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/shop.git", "path": "web", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": false}}
        }
    });
    let project = json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "shop", "namespace": "capstan"},
        "spec": {
            "sourceRepos": ["https://git.example/*"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "shop"}]
        }
    });
    // What `capstan cluster add` really sends (files read, base64 as Argo CD keeps it).
    let dir = tempfile::tempdir().expect("tempdir");
    let (token, ca) = (dir.path().join("token"), dir.path().join("ca.pem"));
    std::fs::write(&token, "t0k3n\n").expect("token");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("ca");
    let cluster = capstan::cli::cluster::NewCluster {
        name: "prod",
        server: "https://10.0.0.1:6443",
        token_file: Some(&token),
        cert: None,
        key: None,
        ca: Some(&ca),
        insecure: false,
    }
    .body()
    .expect("cluster add body");
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").expect("password");
    let repository = capstan::cli::repo::new_repository(
        "https://git.example/shop.git",
        Some("ci"),
        Some(&password),
        None,
        false,
    )
    .expect("repo add body");
    vec![
        ("GET", "/api/v1/clusters", None),                  // list_clusters
        ("GET", "/api/v1/clusters/prod", None),             // get_cluster
        ("POST", "/api/v1/clusters", Some(cluster)),        // add_cluster
        ("DELETE", "/api/v1/clusters/prod", None),          // remove_cluster
        ("GET", "/api/v1/repositories", None),              // list_repositories
        ("POST", "/api/v1/repositories", Some(repository)), // add_repository
        ("DELETE", "/api/v1/repositories/repo-0123abcd", None), // remove_repository
        ("POST", "/api/v1/applications", Some(application)), // create
        ("POST", "/api/v1/projects", Some(project)),        // create_project
        ("GET", "/api/v1/projects", None),                  // list_projects
        ("GET", "/api/v1/projects/shop", None),             // get_project
        ("DELETE", "/api/v1/projects/shop", None),          // delete_project
        ("GET", "/api/v1/applications", None),              // list
        ("GET", "/api/v1/applications/capstan/web", None),  // get, wait
        ("POST", "/api/v1/applications/capstan/web/refresh", None), // action "refresh"
        (
            "POST",
            "/api/v1/applications/capstan/web/refresh?hard=true",
            None,
        ),
        ("GET", "/api/v1/applications/capstan/web/manifests", None),
        ("DELETE", "/api/v1/applications/capstan/web", None),
        // sync: only `prune` set goes in the query, anything more makes SyncOptions::body.
        (
            "POST",
            "/api/v1/applications/capstan/web/sync?prune=true",
            None,
        ),
        (
            "POST",
            "/api/v1/applications/capstan/web/sync",
            Some(json!({"prune": false, "dryRun": true, "resources": [], "revision": "v1.2.0"})),
        ),
        (
            "POST",
            "/api/v1/applications/capstan/web/sync?prune=true",
            Some(json!({"prune": true, "dryRun": false,
                "resources": [{"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web"}]})),
        ),
        ("GET", "/api/v1/applications/capstan/web/history", None),
        (
            "POST",
            "/api/v1/applications/capstan/web/rollback",
            Some(json!({"id": 3, "prune": false, "dryRun": true})),
        ),
        (
            "GET",
            "/api/v1/applications/capstan/web/resource-tree",
            None,
        ),
        ("GET", "/api/v1/applications/capstan/web/diff", None),
        ("DELETE", "/api/v1/applications/capstan/web/operation", None),
    ]
}

#[test]
fn every_cli_request_is_a_documented_operation_with_a_valid_body() {
    let doc = api::openapi::document();
    for (method, target, body) in cli_calls() {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let template = template_of(&doc, method, path)
            .unwrap_or_else(|| panic!("{method} {path} is not documented"));
        let op = &doc["paths"][template][method.to_lowercase()];
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or(pair);
            let known = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query" && p["name"] == name));
            assert!(
                known,
                "{method} {template}: query parameter {name} is documented"
            );
        }
        if let Some(body) = body {
            let errors = body_errors(&doc, method, template, &body);
            assert!(errors.is_empty(), "{method} {target}: {errors:?}");
        }
    }
}

#[test]
fn bodies_the_server_refuses_do_not_validate() {
    let doc = api::openapi::document();
    let sync = "/api/v1/applications/{namespace}/{name}/sync";
    let rollback = "/api/v1/applications/{namespace}/{name}/rollback";
    for (template, body) in [
        (sync, json!({"prunne": true})),
        (sync, json!({"resources": [{"kind": "Deployment"}]})),
        (rollback, json!({"prune": true})),
        (rollback, json!({"id": "three"})),
    ] {
        assert!(
            !body_errors(&doc, "POST", template, &body).is_empty(),
            "{template} accepts {body}"
        );
    }
    let spec = json!({"project": "default",
        "source": {"repoURL": "https://git.example/shop.git"},
        "destination": {"namespace": "shop"}});
    for doc_body in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": spec}),
        json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application", "spec": spec}),
        json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application", "metadata": {"name": "x"}}),
    ] {
        let errors = body_errors(&doc, "POST", "/api/v1/applications", &doc_body);
        assert!(
            !errors.is_empty(),
            "the Application schema accepts {doc_body}"
        );
    }
}
