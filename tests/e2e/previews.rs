//! Pull-request previews end to end: a signed GitHub pull_request webhook for a branch that
//! changes an image yields one comment naming the change and a success status on the head
//! commit, through a local server implementing GitHub's documented endpoints; a second push
//! edits the same comment; a PR whose Helm chart does not render gets a failure status naming
//! the file; a PR into a branch no app follows gets a status saying so. Nothing is ever applied.

use std::time::Duration;

use capstan::event::PullRequestAction;
use capstan::webhook::{SamplePullRequest, provider_named};
use serde_json::Value;

use super::common::forge_server::ForgeServer;
use super::helpers::*;

const CAPSTAN_URL: &str = "https://capstan.test";

async fn spawn_with_forge(forge: &ForgeServer) -> TestApp {
    spawn_app(Options {
        extra_env: vec![("CAPSTAN__NOTIFY__URL".into(), CAPSTAN_URL.into())],
        extra_toml: format!(
            "[forge]\nretry_initial_ms = 100\n[forge.hosts.github]\nkind = \"github\"\napi_url = {:?}\ntoken = {:?}\n",
            forge.api_url("github"),
            forge.token("github")
        ),
        ..Default::default()
    })
    .await
}

/// Sends a signed GitHub `pull_request` webhook of PR `number` from `head_ref` into `base_ref`.
async fn pr_webhook(
    app: &TestApp,
    forge: &ForgeServer,
    number: u64,
    action: PullRequestAction,
    (base_ref, head_ref): (&str, &str),
    head_sha: &str,
) -> reqwest::Response {
    let base_sha = app
        .repo
        .git(&["rev-parse", &format!("refs/heads/{base_ref}")]);
    let request = provider_named("github")
        .expect("github")
        .sample_pull_request(
            &SamplePullRequest {
                repo_url: &app.repo_url,
                api_url: &forge.api_url("github"),
                number,
                action,
                base_ref,
                base_sha: base_sha.trim(),
                head_sha,
                head_ref,
                fork_url: None,
                title: "Bump the image",
                author: "octocat",
            },
            Some(&app.webhook_secret),
        );
    let mut req = app
        .http
        .post(format!("{}/api/webhook", app.address))
        .timeout(Duration::from_secs(30));
    for (k, v) in &request.headers {
        req = req.header(k, v);
    }
    req.body(request.body).send().await.expect("webhook")
}

/// A host's state word as GitHub spells it (Bitbucket's `SUCCESSFUL`, Azure's `succeeded` …).
fn word(state: &str) -> &'static str {
    match state.to_ascii_lowercase().as_str() {
        "success" | "successful" | "succeeded" => "success",
        "failure" | "failed" => "failure",
        "pending" | "inprogress" | "running" => "pending",
        _ => "other",
    }
}

/// Commits `image` for the web Deployment on `branch` (main stays checked out); the commit.
fn on_branch(app: &TestApp, branch: &str, image: &str, message: &str) -> String {
    app.repo.switch(branch);
    app.repo.write("app/deploy.yaml", &deployment("web", image));
    let head = app.repo.commit(message);
    app.repo.switch("main");
    head
}

/// Opens PR `number` at `head`, checks it was queued, and waits for its final status.
async fn opened_and_reported(
    app: &TestApp,
    forge: &ForgeServer,
    number: u64,
    refs: (&str, &str),
    head: &str,
) -> super::common::forge_server::Status {
    let resp = pr_webhook(app, forge, number, PullRequestAction::Opened, refs, head).await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    final_status(forge, head).await
}

/// Waits for a final (non-pending) `capstan/preview` status on `sha`.
async fn final_status(forge: &ForgeServer, sha: &str) -> super::common::forge_server::Status {
    for _ in 0..600 {
        if let Some(s) = forge
            .statuses(sha)
            .into_iter()
            .rfind(|s| s.context == "capstan/preview" && word(&s.state) != "pending")
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no final capstan/preview status on {sha}: {:#?}",
        forge.statuses(sha)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_one_comment_with_its_changes_and_a_status_and_nothing_is_applied() {
    let forge = ForgeServer::start();
    let app = spawn_with_forge(&forge).await;
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    app.repo.write("app/cm.yaml", &config_map("settings", "a"));
    let main = app.repo.commit("web");
    assert_eq!(app.create_app("web", "app", Some(true)).await.status(), 201);
    app.wait_app("web", 60, "Synced and Healthy at main", |a| {
        sync_of(a) == ("Synced".into(), main.clone())
            && a.pointer("/status/health/status") == Some(&Value::from("Healthy"))
    })
    .await;

    // A PR that bumps the image.
    let head = on_branch(&app, "bump", "nginx:1.27", "bump nginx");
    let resp = pr_webhook(
        &app,
        &forge,
        7,
        PullRequestAction::Opened,
        ("main", "bump"),
        &head,
    )
    .await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);

    let status = final_status(&forge, &head).await;
    assert_eq!(status.state, "success", "{status:#?}");
    assert!(
        status.description.contains("1 of 1 app changes"),
        "{status:#?}"
    );
    let preview_url = status.target_url.clone().expect("a link to the preview");
    assert!(
        preview_url.starts_with(&format!("{CAPSTAN_URL}/api/v1/previews/")),
        "{preview_url}"
    );
    assert!(
        forge.statuses(&head).iter().any(|s| s.state == "pending"),
        "no pending status while the preview ran"
    );
    let comments = forge.comments(7);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let body = &comments[0].body;
    assert!(body.starts_with("<!-- capstan-preview -->"), "{body}");
    assert!(body.contains("`Deployment/default/web`"), "{body}");
    assert!(body.contains("0 added, 1 changed, 0 removed"), "{body}");
    assert!(
        body.contains("-") && body.contains("nginx:1.25") && body.contains("nginx:1.27"),
        "{body}"
    );
    assert!(
        !body.contains("ConfigMap/default/settings"),
        "an unchanged object is listed: {body}"
    );
    // The credential went where it was configured, as GitHub documents it.
    let calls = forge.requests();
    assert!(
        calls.iter().all(|r| r.headers.get("authorization")
            == Some(&format!("Bearer {}", forge.token("github"))))
    );

    // The preview is served by the API with its whole diff; the cluster was not touched.
    let id = preview_url.rsplit('/').next().expect("id");
    let preview: Value = app
        .get(&format!("/api/v1/previews/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(preview["state"], "Succeeded", "{preview:#}");
    assert_eq!(preview["apps"][0]["changed"][0], "Deployment/default/web");
    assert!(
        preview["apps"][0]["clusterChanges"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{preview:#}"
    );
    let listed: Value = app
        .get(&format!(
            "/api/v1/previews?repo={}&pr=7",
            urlencode(&app.repo_url)
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed:#}"
    );
    let live = app.deployment("web").await.expect("deployment");
    assert_eq!(
        live.pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str),
        Some("nginx:1.25"),
        "a preview applied the PR"
    );
    let synced = app.get_app("web").await;
    assert_eq!(
        synced
            .pointer("/status/sync/revision")
            .and_then(Value::as_str),
        Some(main.as_str())
    );

    // A second push to the PR edits the same comment.
    let second = on_branch(&app, "bump", "nginx:1.29", "bump again");
    let resp = pr_webhook(
        &app,
        &forge,
        7,
        PullRequestAction::Updated,
        ("main", "bump"),
        &second,
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(final_status(&forge, &second).await.state, "success");
    let comments = forge.comments(7);
    assert_eq!(
        comments.len(),
        1,
        "a second comment was written: {comments:#?}"
    );
    assert!(comments[0].edits >= 1, "{comments:#?}");
    assert!(
        comments[0].body.contains("nginx:1.29"),
        "{}",
        comments[0].body
    );
    // A closed PR asks for nothing.
    let resp = pr_webhook(
        &app,
        &forge,
        7,
        PullRequestAction::Closed,
        ("main", "bump"),
        &second,
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_that_breaks_a_chart_fails_naming_the_file_and_one_touching_no_app_says_so() {
    super::common::tools::require("helm");
    let forge = ForgeServer::start();
    let app = spawn_with_forge(&forge).await;
    app.repo
        .write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("chart/values.yaml", "image: nginx:1.25\n")
        .write(
            "chart/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  image: {{ .Values.image | quote }}\n",
        );
    app.repo.commit("chart");
    app.repo.branch("docs");
    assert_eq!(app.create_app("web", "chart", None).await.status(), 201);
    app.wait_app("web", 60, "OutOfSync", |a| sync_of(a).0 == "OutOfSync")
        .await;

    // A template that no longer parses: helm names the file, and so does the status.
    app.repo.switch("broken");
    app.repo.write(
        "chart/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }-settings\n",
    );
    let head = app.repo.commit("break it");
    app.repo.switch("main");
    let status = opened_and_reported(&app, &forge, 8, ("main", "broken"), &head).await;
    assert_eq!(status.state, "failure", "{status:#?}");
    assert!(
        status.description.contains("templates/configmap.yaml"),
        "{status:#?}"
    );
    let comments = forge.comments(8);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("templates/configmap.yaml"),
        "{}",
        comments[0].body
    );

    // A PR into a branch no Application follows: a status says so, and no comment is written.
    app.repo.switch("readme");
    app.repo.write("README.md", "words\n");
    let head = app.repo.commit("docs");
    app.repo.switch("main");
    let status = opened_and_reported(&app, &forge, 9, ("docs", "readme"), &head).await;
    assert_eq!(status.state, "success", "{status:#?}");
    assert!(status.description.contains("touches no app"), "{status:#?}");
    assert!(forge.comments(9).is_empty(), "{:#?}", forge.comments(9));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_annotated_for_commit_statuses_reports_pending_then_success_on_the_synced_commit() {
    use kube::api::{Api, PostParams};

    let forge = ForgeServer::start();
    // A self-hosted Gitea: its API and its Git server share the host (127.0.0.1), so the
    // configured entry names the app's repository; the repository lives at /octo/shop.
    let app = spawn_app(Options {
        extra_env: vec![("CAPSTAN__NOTIFY__URL".into(), CAPSTAN_URL.into())],
        extra_toml: format!(
            "[forge]\nretry_initial_ms = 100\n[forge.hosts.gitea]\nkind = \"gitea\"\napi_url = {:?}\ntoken = {:?}\n",
            forge.api_url("gitea"),
            forge.token("gitea")
        ),
        ..Default::default()
    })
    .await;
    let (_served, repo_url) = served_as_owner_and_name(&app);
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = app.repo.commit("web");
    let doc = serde_json::json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
    "metadata": {"name": "statused", "namespace": APP_NAMESPACE,
                 "annotations": {"capstan.dev/commit-status": "true"}},
    "spec": {
        "project": "default",
        "source": { "repoURL": repo_url, "path": "app", "targetRevision": "main" },
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    }});
    let obj: capstan::store::Application = serde_json::from_value(doc).expect("application");
    Api::<capstan::store::Application>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .create(&PostParams::default(), &obj)
        .await
        .expect("application created");
    let mut states = Vec::new();
    for _ in 0..600 {
        states = forge
            .statuses(&first)
            .iter()
            .filter(|s| s.context == "capstan/statused")
            .map(|s| s.state.clone())
            .collect();
        if states.last().map(String::as_str) == Some("success") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        states,
        ["pending", "success"],
        "{:#?}",
        forge.statuses(&first)
    );
    let success = forge
        .statuses(&first)
        .into_iter()
        .rfind(|s| s.state == "success")
        .expect("success");
    assert_eq!(
        success.target_url.as_deref(),
        Some(format!("{CAPSTAN_URL}/applications/{APP_NAMESPACE}/statused").as_str())
    );
    // The status went to the repository the clone URL names, with Gitea's token header.
    let call = forge
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.contains("/statuses/"))
        .expect("a status call");
    assert!(
        call.path.contains("/repos/octo/shop/statuses/"),
        "{call:#?}"
    );
    assert_eq!(
        call.headers.get("authorization"),
        Some(&format!("token {}", forge.token("gitea")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_host_api_that_is_down_holds_up_no_sync() {
    let forge = ForgeServer::start();
    // Every call fails for a long while, and the preview keeps retrying it.
    forge.fail_next(100_000, super::common::forge_server::Failure::Unavailable);
    let app = spawn_app(Options {
        extra_toml: format!(
            "[forge]\nmax_attempts = 50\nretry_initial_ms = 2000\nretry_max_ms = 5000\n[forge.hosts.github]\nkind = \"github\"\napi_url = {:?}\ntoken = {:?}\n",
            forge.api_url("github"),
            forge.token("github")
        ),
        ..Default::default()
    })
    .await;
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = app.repo.commit("web");
    assert_eq!(app.create_app("web", "app", Some(true)).await.status(), 201);
    app.wait_app("web", 60, "synced", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    let head = on_branch(&app, "bump", "nginx:1.27", "bump");
    let resp = pr_webhook(
        &app,
        &forge,
        3,
        PullRequestAction::Opened,
        ("main", "bump"),
        &head,
    )
    .await;
    assert_eq!(resp.status(), 202);
    // The preview is stuck on the host's API …
    eventually(30, "the preview calls the failing API", || async {
        !forge.requests().is_empty()
    })
    .await;
    // … while a push to main syncs as ever.
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.26"));
    let second = app.repo.commit("main moves");
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );
    app.wait_app("web", 30, "synced to the push", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    let previews: Value = app
        .get("/api/v1/previews?pr=3")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        previews["items"][0]["state"], "Running",
        "the preview was not held up by the host API, so this proves nothing: {previews:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_git_host_gets_its_comment_and_status_in_its_own_api() {
    use super::common::forge_server::HOSTS;

    let forge = ForgeServer::start();
    let hosts: String = HOSTS
        .iter()
        .map(|h| {
            format!(
                "[forge.hosts.{}]\nkind = {h:?}\napi_url = {:?}\ntoken = {:?}\n{}",
                h.replace('-', "_"),
                forge.api_url(h),
                forge.token(h),
                // Basic auth where the host documents it (app password, PAT).
                match *h {
                    "bitbucket-cloud" => "username = \"capstan-bot\"\n",
                    "azure-devops" => "username = \"\"\n",
                    _ => "",
                }
            )
        })
        .collect();
    let mut env: Vec<(String, String)> = HOSTS
        .iter()
        .map(|h| {
            (
                format!(
                    "CAPSTAN__WEBHOOK__PROVIDERS__{}__SECRET",
                    h.replace('-', "_").to_uppercase()
                ),
                webhook_secret_for(h),
            )
        })
        .collect();
    env.push(("CAPSTAN__NOTIFY__URL".into(), CAPSTAN_URL.into()));
    let app = spawn_app(Options {
        extra_env: env,
        extra_toml: format!("[forge]\nretry_initial_ms = 100\n{hosts}"),
        ..Default::default()
    })
    .await;
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    app.repo.commit("web");
    let (_served, repo_url) = served_as_owner_and_name(&app);
    let spec = serde_json::json!({
        "project": "default",
        "source": { "repoURL": repo_url, "path": "app", "targetRevision": "main" },
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
    });
    assert_eq!(app.create_app_with("web", spec).await.status(), 201);
    app.wait_app("web", 60, "OutOfSync", |a| sync_of(a).0 == "OutOfSync")
        .await;
    for (i, host) in HOSTS.iter().enumerate() {
        let number = 20 + i as u64;
        let branch = format!("pr-{host}");
        let head = on_branch(
            &app,
            &branch,
            &format!("nginx:2.{number}"),
            &format!("bump for {host}"),
        );
        let base_sha = app.repo.git(&["rev-parse", "refs/heads/main"]);
        // Bitbucket Cloud names commits by 12 digits.
        let sent_sha = if *host == "bitbucket-cloud" {
            &head[..12]
        } else {
            head.as_str()
        };
        let request = provider_named(host).expect("provider").sample_pull_request(
            &SamplePullRequest {
                repo_url: &repo_url,
                api_url: &forge.api_url(host),
                number,
                action: PullRequestAction::Opened,
                base_ref: "main",
                base_sha: base_sha.trim(),
                head_sha: sent_sha,
                head_ref: &branch,
                fork_url: None,
                title: "Bump",
                author: "dev",
            },
            Some(&webhook_secret_for(host)),
        );
        let mut req = app.http.post(format!("{}/api/webhook", app.address));
        for (k, v) in &request.headers {
            req = req.header(k, v);
        }
        let resp = req.body(request.body).send().await.expect("webhook");
        assert_eq!(resp.status(), 202, "{host}: {:?}", resp.text().await);
        let status = final_status(&forge, &head).await;
        assert_eq!(
            (status.host, word(&status.state)),
            (*host, "success"),
            "{status:#?}"
        );
        let comments = forge.comments(number);
        assert_eq!(comments.len(), 1, "{host}: {comments:#?}");
        assert_eq!(comments[0].host, *host);
        assert!(
            comments[0].body.contains(&format!("nginx:2.{number}")),
            "{host}: {}",
            comments[0].body
        );
    }
}

/// The test repository served (without credentials) at `/octo/shop`, as hosts name
/// repositories (owner and name); its URL.
fn served_as_owner_and_name(
    app: &TestApp,
) -> (
    (super::common::git_http::GitHttpServer, tempfile::TempDir),
    String,
) {
    let served = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(served.path().join("octo")).expect("dir");
    std::os::unix::fs::symlink(app.repo.path(), served.path().join("octo/shop")).expect("link");
    let git = super::common::git_http::GitHttpServer::start(served.path(), None);
    let url = git.url_for("octo/shop");
    ((git, served), url)
}

/// The webhook secret each host signs with here (Azure DevOps: `user:password`).
fn webhook_secret_for(host: &str) -> String {
    match host {
        "azure-devops" => "capstan:azure-pr-secret".to_owned(),
        other => format!("{other}-pr-secret"),
    }
}
