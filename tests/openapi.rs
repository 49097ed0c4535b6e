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
    schema_errors(doc, schema, body)
}

/// Validates `body` against `schema`, one of the document's schemas: the document is the root,
/// so `#/components/schemas/…` resolves; OpenAPI's own keys are unknown keywords to the
/// validator and ignored.
fn schema_errors(doc: &Value, schema: &Value, body: &Value) -> Vec<String> {
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["allOf"] = json!([schema]);
    let validator = jsonschema::validator_for(&root).expect("the document is a usable schema");
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// One request the CLI sent: method, path with query, body.
#[derive(Clone, Debug)]
struct Sent {
    method: String,
    target: String,
    body: Option<Value>,
}

/// What the recording server answers: enough for each command to carry on and print.
fn canned(method: &str, path: &str) -> Value {
    let fixture = |name: &str| -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cli")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
    };
    let segments: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["applications"]) => json!({"items": [fixture("app-synced.json")]}),
        ("GET", ["applications", _, _]) => fixture("app-synced.json"),
        ("GET", ["projects"]) => json!({"items": [fixture("project.json")]}),
        ("GET", ["projects", _]) => fixture("project.json"),
        ("GET", ["clusters"]) => fixture("cluster-list.json"),
        ("GET", ["clusters", _]) => fixture("cluster-list.json")["items"][1].clone(),
        ("GET", ["repositories"]) => json!({"items": [
            {"name": "repo-0123abcd", "url": "https://git.example/shop.git", "type": "git"}
        ]}),
        ("GET", ["applications", _, _, "history"]) => json!({"items": []}),
        ("GET", ["applications", _, _, "resource-tree"]) => json!({"nodes": []}),
        ("GET", ["applications", _, _, "diff"]) => json!({"resources": []}),
        ("GET", ["applications", _, _, "manifests"]) => json!({"objects": []}),
        ("GET", ["previews"]) => json!({"items": [{"pr": 7, "repo": "https://git.example/shop.git",
            "headSha": "0123456789abcdef0123456789abcdef01234567", "baseRef": "main",
            "state": "Succeeded", "message": "1 of 1 app changes", "apps": []}]}),
        ("GET", ["previews", _]) => json!({"pr": 7, "repo": "https://git.example/shop.git",
            "headSha": "0123456789abcdef0123456789abcdef01234567", "baseRef": "main",
            "state": "NoApps", "message": "touches no app", "apps": []}),
        ("POST", ["session"]) => json!({"token": "recorded-session"}),
        ("GET", ["session", "userinfo"]) => {
            json!({"loggedIn": true, "username": "admin", "groups": [], "iss": "local"})
        }
        _ => json!({"status": "ok"}),
    }
}

/// A server on 127.0.0.1 that records every request and answers [`canned`]; its URL.
fn recording_server(log: std::sync::Arc<std::sync::Mutex<Vec<Sent>>>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                let log = log.clone();
                App::new().default_service(actix_web::web::to(
                    move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                        let log = log.clone();
                        async move {
                            let sent = Sent {
                                method: req.method().to_string(),
                                target: req.uri().to_string(),
                                body: (!body.is_empty()).then(|| {
                                    serde_json::from_slice(&body)
                                        .unwrap_or_else(|e| panic!("the CLI sent JSON: {e}"))
                                }),
                            };
                            let answer = canned(&sent.method, req.path());
                            log.lock().expect("log").push(sent);
                            actix_web::HttpResponse::Ok().json(answer)
                        }
                    },
                ))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .expect("bind");
            let port = server.addrs()[0].port();
            tx.send(port).expect("port");
            server.run().await.expect("server");
        });
    });
    let port = rx.recv().expect("the server started");
    format!("http://127.0.0.1:{port}")
}

/// Runs `capstan ARGS` against `server`; its exit code and stdout.
fn capstan(server: &str, home: &std::path::Path, args: &[String]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .env("CAPSTAN_SERVER", server)
        .env("CAPSTAN_TOKEN", "recorded-token")
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("capstan runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned()
            + String::from_utf8_lossy(&out.stderr).as_ref(),
    )
}

/// Every client command of the CLI, run for real against a recording server: each request it
/// sends is a documented operation with documented query parameters and a body that validates
/// against the document, and together they use every REST operation but those no command needs.
#[test]
fn every_request_the_cli_sends_is_documented_and_validates() {
    let doc = api::openapi::document();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("file");
        path.display().to_string()
    };
    let app_yaml = file(
        "app.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: https://git.example/shop.git\n    path: web\n    targetRevision: main\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: shop\n  syncPolicy:\n    automated: {prune: true, selfHeal: true}\n    syncOptions: [CreateNamespace=true]\n",
    );
    let proj_yaml = file(
        "proj.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: shop\nspec:\n  sourceRepos: ['https://git.example/*']\n  destinations:\n    - {server: https://kubernetes.default.svc, namespace: shop}\n",
    );
    let token = file("token", "t0k3n\n");
    let ca = file("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    let password = file("password", "hunter2\n");
    let commands: Vec<Vec<&str>> = vec![
        vec!["app", "create", "-f", &app_yaml],
        vec!["app", "list", "-o", "wide"],
        vec!["app", "get", "web"],
        vec!["app", "refresh", "web"],
        vec!["app", "refresh", "web", "--hard"],
        vec!["app", "sync", "web", "--prune"],
        vec!["app", "sync", "web", "--dry-run", "--revision", "v1.2.0"],
        vec![
            "app",
            "sync",
            "web",
            "--prune",
            "--resource",
            "apps:Deployment:shop/web",
        ],
        vec![
            "preview",
            "--repo",
            "https://git.example/shop.git",
            "--pr",
            "7",
        ],
        vec!["preview", "--id", "0123abcd"],
        vec!["app", "history", "web"],
        vec!["app", "rollback", "web", "3", "--dry-run"],
        vec!["app", "wait", "web", "--sync", "--health", "--timeout", "5"],
        vec!["app", "resources", "web"],
        vec!["app", "terminate-op", "web"],
        vec!["app", "diff", "web"],
        vec!["app", "manifests", "web", "-n", "team-a"],
        vec!["app", "delete", "web"],
        vec!["proj", "create", "-f", &proj_yaml],
        vec!["proj", "list"],
        vec!["proj", "get", "shop"],
        vec!["proj", "delete", "shop"],
        vec![
            "cluster",
            "add",
            "prod",
            "https://10.0.0.1:6443",
            "--token-file",
            &token,
            "--ca",
            &ca,
        ],
        vec!["cluster", "list"],
        vec!["cluster", "get", "prod"],
        vec!["cluster", "rm", "prod"],
        vec![
            "repo",
            "add",
            "https://git.example/shop.git",
            "--username",
            "ci",
            "--password-file",
            &password,
        ],
        vec![
            "repo",
            "add",
            "https://git.example/",
            "--token-file",
            &token,
            "--template",
        ],
        vec!["repo", "list"],
        vec!["repo", "rm", "https://git.example/shop.git"],
        vec![
            "proj",
            "role",
            "create-token",
            "shop",
            "deployer",
            "-e",
            "1h",
        ],
        vec!["proj", "role", "delete-token", "shop", "deployer", "0a1b"],
        vec!["account", "list"],
        vec!["account", "get", "-a", "ci"],
        vec!["account", "get-user-info"],
        vec!["account", "generate-token", "-a", "ci", "-e", "24h"],
        vec!["account", "delete-token", "0a1b", "-a", "ci"],
        vec![
            "account",
            "update-password",
            "--current-password-file",
            &password,
            "--new-password-file",
            &password,
        ],
        vec!["account", "can-i", "sync", "applications", "default/web"],
    ];
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = recording_server(log.clone());
    // `login` names its server; `logout` then revokes what `login` saved.
    let mut commands: Vec<Vec<String>> = commands
        .into_iter()
        .map(|c| c.into_iter().map(String::from).collect())
        .collect();
    for command in [
        vec![
            "login",
            server.as_str(),
            "--username",
            "admin",
            "--password",
            "pw",
        ],
        vec!["logout"],
    ] {
        commands.push(command.into_iter().map(String::from).collect());
    }
    let mut used = BTreeSet::new();
    for command in &commands {
        let before = log.lock().expect("log").len();
        let args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let (code, output) = capstan(&server, dir.path(), &args);
        let sent: Vec<Sent> = log.lock().expect("log")[before..].to_vec();
        assert!(
            !sent.is_empty(),
            "`capstan {}` sent nothing (exit {code:?}): {output}",
            command.join(" ")
        );
        for Sent {
            method,
            target,
            body,
        } in sent
        {
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let template = template_of(&doc, &method, path).unwrap_or_else(|| {
                panic!(
                    "`capstan {}` sent {method} {path}, which is not documented",
                    command.join(" ")
                )
            });
            used.insert((method.clone(), template.to_owned()));
            let op = &doc["paths"][template][method.to_lowercase()];
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let name = pair.split('=').next().unwrap_or(pair);
                let known = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query" && p["name"] == name));
                assert!(
                    known,
                    "{method} {template}: query parameter {name} is not documented"
                );
            }
            if let Some(body) = body {
                let errors = body_errors(&doc, &method, template, &body);
                assert!(
                    errors.is_empty(),
                    "`capstan {}`: {method} {target}: {errors:?}",
                    command.join(" ")
                );
            }
        }
    }
    // What no client command sends: probes, metrics, the document itself and the Git hosts'
    // webhooks (`capstan webhook` imitates a host, checked by the webhook tests); and what
    // `capstan login --sso` sends only after a browser login (tests/auth_oidc.rs drives it).
    let not_for_the_cli = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/api/webhook",
        "/api/v1/session/exchange",
    ];
    let unused: Vec<String> = documented(&doc)
        .into_iter()
        .filter(|(m, p)| {
            !used.contains(&(m.clone(), p.clone())) && !not_for_the_cli.contains(&p.as_str())
        })
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(unused.is_empty(), "no CLI command sends {unused:?}");
}

/// `capstan cluster list` through the binary, table and wide, against golden files.
#[test]
fn cluster_list_prints_argocd_columns_and_wide_adds_the_source() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = recording_server(log);
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, golden) in [
        (vec!["cluster", "list"], "cluster-list.txt"),
        (
            vec!["cluster", "list", "-o", "wide"],
            "cluster-list-wide.txt",
        ),
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (code, stdout) = capstan(&server, dir.path(), &args);
        assert_eq!(code, Some(0), "{stdout}");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cli")
            .join(golden);
        if std::env::var_os("CAPSTAN_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &stdout).expect("golden written");
            continue;
        }
        let expected =
            std::fs::read_to_string(&path).expect("golden file (CAPSTAN_BLESS=1 writes it)");
        assert_eq!(stdout, expected, "{golden}");
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

/// The answers are typed, not bare objects: a wrong shape does not validate.
#[test]
fn answers_have_typed_schemas_that_refuse_wrong_shapes() {
    let doc = api::openapi::document();
    let app = "/api/v1/applications/{namespace}/{name}";
    for (method, template, status, body) in [
        (
            "get",
            format!("{app}/resource-tree"),
            "200",
            json!({"nodes": [{"kind": 1}]}),
        ),
        (
            "get",
            format!("{app}/diff"),
            "200",
            json!({"items": [{"change": "modified"}]}),
        ),
        (
            "get",
            format!("{app}/history"),
            "200",
            json!({"history": [{"id": "one"}]}),
        ),
        (
            "get",
            format!("{app}/manifests"),
            "200",
            json!({"manifests": "apiVersion: v1"}),
        ),
        (
            "post",
            format!("{app}/operation"),
            "202",
            json!({"status": "queued"}),
        ),
        (
            "get",
            "/api/v1/clusters".to_owned(),
            "200",
            json!({"items": [{"name": "x"}]}),
        ),
        (
            "get",
            "/api/v1/repositories".to_owned(),
            "200",
            json!({"items": [{"url": 3}]}),
        ),
        ("post", "/api/webhook".to_owned(), "202", json!({"id": "x"})),
    ] {
        let method = if template.ends_with("/operation") {
            "delete"
        } else {
            method
        };
        let schema = &doc["paths"][template.as_str()][method]["responses"][status]["content"]["application/json"]
            ["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {status} has a schema"
        );
        assert!(
            !schema_errors(&doc, schema, &body).is_empty(),
            "{method} {template} {status} accepts {body}"
        );
    }
}
