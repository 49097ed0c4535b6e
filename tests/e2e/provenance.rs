//! Sync provenance: each history entry names what caused the sync (the Git host, the delivery
//! id it sent, the pusher; a person; the poller) and the synced commit's message and author,
//! read from Git, through the REST API and `capstan app history`.

use capstan::webhook::{Provider, SamplePush, Signature, SignedRequest, github, gitlab};
use serde_json::{Value, json};

use crate::helpers::*;

const GITLAB_TOKEN: &str = "gitlab-provenance-token";

async fn send(address: &str, req: &SignedRequest) -> u16 {
    let mut post = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
        .post(format!("{address}/api/webhook"));
    for (k, v) in &req.headers {
        post = post.header(k, v);
    }
    post.body(req.body.clone())
        .send()
        .await
        .expect("webhook request")
        .status()
        .as_u16()
}

/// A sample push of `provider` for `after`, its body changed by `edit` (and signed again when
/// the host signs bodies).
fn push(
    app: &TestApp,
    provider: &dyn Provider,
    secret: &str,
    after: &str,
    delivery: &str,
    edit: impl FnOnce(&mut Value),
) -> SignedRequest {
    let files = vec!["cm.yaml".to_owned()];
    let mut req = provider.sample(
        &SamplePush {
            repo: &app.repo_url,
            git_ref: "refs/heads/main",
            before: Some("1111111111111111111111111111111111111111"),
            after: Some(after),
            files: Some(&files),
            default_branch: "main",
            delivery,
        },
        Some(secret),
    );
    let mut body: Value = serde_json::from_slice(&req.body).expect("sample body");
    edit(&mut body);
    req.body = serde_json::to_vec(&body).expect("json");
    for (name, value) in &mut req.headers {
        if name == "x-hub-signature-256" {
            *value = Signature::sign(secret.as_bytes(), &req.body);
        }
    }
    req
}

/// Commits `cm.yaml` with `value` as `author`, returning the commit.
fn commit_as(app: &TestApp, value: &str, message: &str, author: &str) -> String {
    app.repo.write("cm.yaml", &config_map("provenance", value));
    app.repo.git(&["add", "-A"]);
    app.repo
        .git(&["commit", "-q", "-m", message, "--author", author]);
    app.repo.head()
}

async fn history(app: &TestApp, name: &str) -> Vec<Value> {
    let resp = app
        .get(&format!(
            "/api/v1/applications/{APP_NAMESPACE}/{name}/history"
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("history json");
    body["history"].as_array().cloned().expect("a history list")
}

/// Waits for a history entry at `revision` and returns it.
async fn entry_for(app: &TestApp, name: &str, revision: &str) -> Value {
    app.wait_app(name, 30, &format!("a history entry at {revision}"), |a| {
        a.pointer("/status/history")
            .and_then(Value::as_array)
            .is_some_and(|h| h.iter().any(|e| e["revision"] == revision))
    })
    .await;
    history(app, name)
        .await
        .into_iter()
        .find(|e| e["revision"] == revision)
        .expect("the entry")
}

fn cli_history(app: &TestApp, name: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["app", "--server", &app.address, "--token", &app.api_token])
        .args(["history", name])
        .env("CAPSTAN__SERVER__DATA_DIR", app.data_dir.path())
        .output()
        .expect("capstan runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sync_names_the_delivery_pusher_or_person_behind_it_and_the_commit() {
    let app = spawn_app(Options {
        extra_env: vec![(
            "CAPSTAN__WEBHOOK__PROVIDERS__GITLAB__SECRET".into(),
            GITLAB_TOKEN.into(),
        )],
        ..Default::default()
    })
    .await;
    let first = commit_as(&app, "initial", "initial", "Init <init@example.com>");
    assert_eq!(
        app.create_app("traced", ".", Some(true)).await.status(),
        201
    );
    app.wait_app("traced", 60, "Synced at the first commit", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;

    // A GitHub push: the pusher is not the commit's author, so each is read from its own place.
    let by_github = commit_as(
        &app,
        "from github",
        "Roll out web 1.27\n\nThe body is not the headline.",
        "Alice Author <alice@example.com>",
    );
    let github_delivery = uuid::Uuid::new_v4().to_string();
    let req = push(
        &app,
        &github::GitHub,
        &app.webhook_secret,
        &by_github,
        &github_delivery,
        |b| b["pusher"] = json!({"name": "octo-pusher", "email": "p@example.com"}),
    );
    assert_eq!(send(&app.address, &req).await, 202);
    let entry = entry_for(&app, "traced", &by_github).await;
    let cause = &entry["initiatedBy"]["cause"];
    assert_eq!(cause["source"], "webhook", "{entry}");
    assert_eq!(cause["provider"], "github", "{entry}");
    assert_eq!(cause["deliveryId"], github_delivery.as_str(), "{entry}");
    assert_eq!(cause["pusher"], "octo-pusher", "{entry}");
    assert!(
        cause["eventId"].as_str().is_some_and(|id| !id.is_empty()),
        "{entry}"
    );
    assert_eq!(entry["initiatedBy"]["automated"], true, "{entry}");
    assert_eq!(
        entry["message"], "Roll out web 1.27\n\nThe body is not the headline.",
        "{entry}"
    );
    assert_eq!(
        entry["author"], "Alice Author <alice@example.com>",
        "{entry}"
    );

    // A GitLab push, authenticated by its token.
    let by_gitlab = commit_as(
        &app,
        "from gitlab",
        "Scale the workers",
        "Bob Author <bob@example.com>",
    );
    let gitlab_delivery = uuid::Uuid::new_v4().to_string();
    let req = push(
        &app,
        &gitlab::GitLab,
        GITLAB_TOKEN,
        &by_gitlab,
        &gitlab_delivery,
        |b| {
            b["user_username"] = json!("gl-pusher");
            b["user_name"] = json!("GitLab Pusher");
        },
    );
    assert_eq!(send(&app.address, &req).await, 202);
    let entry = entry_for(&app, "traced", &by_gitlab).await;
    let cause = &entry["initiatedBy"]["cause"];
    assert_eq!(cause["source"], "webhook", "{entry}");
    assert_eq!(cause["provider"], "gitlab", "{entry}");
    assert_eq!(cause["deliveryId"], gitlab_delivery.as_str(), "{entry}");
    assert_eq!(cause["pusher"], "gl-pusher", "{entry}");
    assert_eq!(entry["message"], "Scale the workers", "{entry}");
    assert_eq!(entry["author"], "Bob Author <bob@example.com>", "{entry}");

    // A person's sync of the same commit: a new entry naming the token's account.
    let before = history(&app, "traced").await.len();
    let resp = app
        .post(
            &format!("/api/v1/applications/{APP_NAMESPACE}/traced/sync"),
            &json!(null),
        )
        .await;
    assert_eq!(resp.status(), 202);
    app.wait_app("traced", 30, "a history entry for the manual sync", |a| {
        a.pointer("/status/history")
            .and_then(Value::as_array)
            .is_some_and(|h| h.len() > before)
    })
    .await;
    let newest = history(&app, "traced").await.remove(0);
    assert_eq!(newest["revision"], by_gitlab.as_str(), "{newest}");
    assert_eq!(newest["initiatedBy"]["username"], "admin", "{newest}");
    assert_eq!(newest["initiatedBy"]["automated"], false, "{newest}");
    assert_eq!(
        newest["initiatedBy"]["cause"]["source"], "manual",
        "{newest}"
    );
    assert_eq!(newest["initiatedBy"]["cause"]["user"], "admin", "{newest}");
    assert!(
        newest["initiatedBy"]["cause"].get("pusher").is_none(),
        "{newest}"
    );

    // A failed sync never enters the (Argo CD) history, but its result and cause are listed.
    let deployed = history(&app, "traced").await.len();
    let resp = app
        .post(
            &format!("/api/v1/applications/{APP_NAMESPACE}/traced/sync"),
            &json!({"revision": "no-such-branch"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let failed = |a: &Value| {
        a.pointer("/status/recentOperations")
            .and_then(Value::as_array)
            .and_then(|ops| ops.last())
            .is_some_and(|op| op["phase"] == "Failed")
    };
    app.wait_app("traced", 30, "the failed sync listed", failed)
        .await;
    let answer: Value = app
        .get(&format!(
            "/api/v1/applications/{APP_NAMESPACE}/traced/history"
        ))
        .await
        .json()
        .await
        .expect("history json");
    assert_eq!(answer["history"].as_array().map(Vec::len), Some(deployed));
    let last = &answer["operations"][0];
    assert_eq!(last["phase"], "Failed", "{answer}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-branch")),
        "{answer}"
    );
    assert_eq!(last["initiatedBy"]["username"], "admin", "{answer}");
    let succeeded = &answer["operations"][1];
    assert_eq!(succeeded["phase"], "Succeeded", "{answer}");
    assert_eq!(succeeded["revision"], by_gitlab.as_str(), "{answer}");

    let table = cli_history(&app, "traced");
    let row = |revision: &str, by: &str, message: &str| {
        table
            .lines()
            .any(|l| l.contains(revision) && l.contains(by) && l.trim_end().ends_with(message))
    };
    assert!(
        row(
            &by_github,
            &format!("webhook github delivery {github_delivery} by octo-pusher"),
            "Roll out web 1.27"
        ),
        "{table}"
    );
    assert!(
        row(
            &by_gitlab,
            &format!("webhook gitlab delivery {gitlab_delivery} by gl-pusher"),
            "Scale the workers"
        ),
        "{table}"
    );
    let newest = table.lines().nth(1).expect("the newest row");
    assert!(
        newest.contains(&by_gitlab)
            && newest.split_whitespace().nth(3) == Some("admin")
            && newest.ends_with("Scale the workers"),
        "{table}"
    );
}
