//! Real failing requests answer in the documented `Error` shape, and the document the server
//! serves describes the operations that failed.

use serde_json::{Value, json};

use crate::helpers::*;

/// Checks one error answer against the served document: the operation documents this status
/// with the `Error` schema, and the body validates against that schema. Returns the reason.
async fn documented_error(
    doc: &Value,
    method: &str,
    template: &str,
    resp: reqwest::Response,
) -> String {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("an error body in JSON");
    assert_eq!(body["code"], status, "{method} {template}: {body}");
    let response = &doc["paths"][template][method]["responses"][status.to_string()];
    assert_eq!(
        response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
        "{method} {template} documents {status}"
    );
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!("#/components/schemas/Error");
    let validator = jsonschema::validator_for(&root).expect("the document is a usable schema");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{method} {template} {body}: {errors:?}");
    body["reason"].as_str().expect("a reason").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_requests_answer_in_the_documented_error_shape() {
    let test = spawn_app(Options::default()).await;
    let resp = test
        .http
        .get(format!("{}/api/openapi.json", test.address))
        .send()
        .await
        .expect("document request");
    assert_eq!(resp.status(), 200, "the document needs no token");
    let doc: Value = resp.json().await.expect("the document is JSON");
    let app = "/api/v1/applications/{namespace}/{name}";
    let rollback = "/api/v1/applications/{namespace}/{name}/rollback";

    let missing = test
        .get(&format!("/api/v1/applications/{APP_NAMESPACE}/missing"))
        .await;
    assert_eq!(
        documented_error(&doc, "get", app, missing).await,
        "not_found"
    );

    let anonymous = test
        .http
        .get(format!("{}/api/v1/applications", test.address))
        .send()
        .await
        .expect("API request");
    let reason = documented_error(&doc, "get", "/api/v1/applications", anonymous).await;
    assert_eq!(reason, "unauthorized");
    let wrong = test
        .http
        .get(format!("{}/api/v1/projects", test.address))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("API request");
    let reason = documented_error(&doc, "get", "/api/v1/projects", wrong).await;
    assert_eq!(reason, "unauthorized");

    assert_eq!(
        test.create_app("auto", "app", Some(false)).await.status(),
        201
    );
    let refused = test
        .post(
            &format!("/api/v1/applications/{APP_NAMESPACE}/auto/rollback"),
            &json!({"id": 0}),
        )
        .await;
    assert_eq!(
        documented_error(&doc, "post", rollback, refused).await,
        "conflict"
    );

    let not_json = test
        .http
        .post(format!("{}/api/v1/applications", test.address))
        .bearer_auth(&test.api_token)
        .header("content-type", "application/json")
        .body("{\"apiVersion\": ")
        .send()
        .await
        .expect("API request");
    let reason = documented_error(&doc, "post", "/api/v1/applications", not_json).await;
    assert_eq!(reason, "bad_request");
    let typo = test
        .post(
            &format!("/api/v1/applications/{APP_NAMESPACE}/auto/sync"),
            &json!({"prunne": true}),
        )
        .await;
    let sync = "/api/v1/applications/{namespace}/{name}/sync";
    assert_eq!(
        documented_error(&doc, "post", sync, typo).await,
        "bad_request"
    );

    let forged = test
        .push_webhook(&"a".repeat(40), Some("sha256=00"), None)
        .await;
    let reason = documented_error(&doc, "post", "/api/webhook", forged).await;
    assert_eq!(reason, "webhook_unauthorized");
}

/// Validates a successful answer against the schema the document gives its status; the body.
async fn documented_answer(
    doc: &Value,
    method: &str,
    template: &str,
    resp: reqwest::Response,
) -> Value {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON answer");
    assert!(
        (200..300).contains(&status),
        "{method} {template} answered {status}: {body}"
    );
    let schema = &doc["paths"][template][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} documents a JSON body for {status}"
    );
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["allOf"] = json!([schema]);
    let validator = jsonschema::validator_for(&root).expect("the document is a usable schema");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: {errors:?}"
    );
    body
}

/// Every operation a client reads or triggers, on a real synced app: each answer validates
/// against the schema the served document gives its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_answers_match_the_documented_schemas() {
    let test = spawn_app(Options::default()).await;
    let doc: Value = test
        .http
        .get(format!("{}/api/openapi.json", test.address))
        .send()
        .await
        .expect("document request")
        .json()
        .await
        .expect("JSON");
    test.repo
        .write("web/deploy.yaml", &deployment("web", "nginx:1.27"));
    let commit = test.repo.commit("web");
    let created = test.create_app("web", "web", Some(true)).await;
    documented_answer(&doc, "post", "/api/v1/applications", created).await;
    test.wait_app("web", 60, "Synced and Healthy", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
            && a["status"]["health"]["status"] == "Healthy"
    })
    .await;
    let app = format!("/api/v1/applications/{APP_NAMESPACE}/web");
    let template = "/api/v1/applications/{namespace}/{name}";
    for (path, template) in [
        ("/healthz".to_owned(), "/healthz".to_owned()),
        ("/readyz".to_owned(), "/readyz".to_owned()),
        (
            "/api/v1/applications".to_owned(),
            "/api/v1/applications".to_owned(),
        ),
        (app.clone(), template.to_owned()),
        (format!("{app}/manifests"), format!("{template}/manifests")),
        (format!("{app}/diff"), format!("{template}/diff")),
        (format!("{app}/history"), format!("{template}/history")),
        (
            format!("{app}/resource-tree"),
            format!("{template}/resource-tree"),
        ),
        ("/api/v1/projects".to_owned(), "/api/v1/projects".to_owned()),
        (
            "/api/v1/projects/default".to_owned(),
            "/api/v1/projects/{name}".to_owned(),
        ),
        ("/api/v1/clusters".to_owned(), "/api/v1/clusters".to_owned()),
        (
            "/api/v1/clusters/in-cluster".to_owned(),
            "/api/v1/clusters/{name}".to_owned(),
        ),
        (
            "/api/v1/repositories".to_owned(),
            "/api/v1/repositories".to_owned(),
        ),
    ] {
        let body = documented_answer(&doc, "get", &template, test.get(&path).await).await;
        if template.ends_with("/history") {
            assert!(
                body["history"].as_array().is_some_and(|h| !h.is_empty()),
                "the synced app has history: {body}"
            );
        }
        if template.ends_with("/resource-tree") {
            let kinds: Vec<&str> = body["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["kind"].as_str())
                .collect();
            assert!(
                kinds.contains(&"Pod"),
                "the tree reaches the Pods: {kinds:?}"
            );
        }
    }
    for (path, template, body) in [
        (
            format!("{app}/refresh"),
            format!("{template}/refresh"),
            json!({}),
        ),
        (
            format!("{app}/sync"),
            format!("{template}/sync"),
            json!({"dryRun": true}),
        ),
        (
            "/api/v1/repositories".to_owned(),
            "/api/v1/repositories".to_owned(),
            json!({"url": "https://git.example.com/org/app.git", "username": "ci", "password": "pw"}),
        ),
    ] {
        documented_answer(&doc, "post", &template, test.post(&path, &body).await).await;
    }
    let pushed = test.push_webhook(&commit, Some(""), None).await;
    documented_answer(&doc, "post", "/api/webhook", pushed).await;
    let listed = test
        .get("/api/v1/repositories")
        .await
        .json::<Value>()
        .await
        .expect("JSON");
    let name = listed["items"][0]["name"]
        .as_str()
        .expect("the registered Secret")
        .to_owned();
    let removed = test
        .http
        .delete(format!("{}/api/v1/repositories/{name}", test.address))
        .bearer_auth(&test.api_token)
        .send()
        .await
        .expect("delete");
    documented_answer(&doc, "delete", "/api/v1/repositories/{name}", removed).await;
}
