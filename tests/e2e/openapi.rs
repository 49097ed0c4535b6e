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
