//! Every common repository layout end to end: plain YAML, Kustomize overlays, a Helm chart and
//! Jsonnet side by side in one Argo CD-style repository, synced through the webhook path; a
//! change to a Kustomize base refreshes exactly the overlay that read it; a source that renders
//! nothing is a condition, never Synced.

use capstan::webhook::{Provider, SamplePush};
use serde_json::{Value, json};

use crate::common::tools;
use crate::helpers::*;

/// An Argo CD example-apps-like repository: one app per tool.
fn write_example_apps(app: &TestApp) {
    let repo = &app.repo;
    // Plain directory, with a values file beside the manifests that holds no object.
    repo.write(
        "guestbook/deploy.yaml",
        &deployment("plain-web", "nginx:1.25"),
    )
    .write("guestbook/values.yaml", "replicas: 2\nimage: {tag: x}\n");
    // Kustomize: a base and a prod overlay.
    repo.write(
        "kustomize-guestbook/base/deployment.yaml",
        &deployment("web", "nginx:1.25"),
    )
    .write(
        "kustomize-guestbook/base/kustomization.yaml",
        "resources:\n  - deployment.yaml\n",
    )
    .write(
        "kustomize-guestbook/overlays/prod/kustomization.yaml",
        "namePrefix: prod-\nresources:\n  - ../../base\n",
    );
    // Helm: a chart with a prod value file.
    repo.write(
        "helm-guestbook/Chart.yaml",
        "apiVersion: v2\nname: helm-guestbook\nversion: 0.1.0\n",
    )
    .write(
        "helm-guestbook/values.yaml",
        "replicaCount: 1\nimage:\n  repository: nginx\n  tag: \"1.25\"\n",
    )
    .write("helm-guestbook/values-prod.yaml", "replicaCount: 2\n")
    .write(
        "helm-guestbook/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n  labels:\n    release: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n    metadata:\n      labels: {app: {{ .Release.Name }}}\n    spec:\n      containers:\n        - name: web\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
    );
    // Jsonnet with a TLA and a library outside the source path.
    repo.write(
        "jsonnet-lib/names.libsonnet",
        "{ deployment(prefix):: prefix + '-web' }\n",
    )
    .write(
        "jsonnet-guestbook/guestbook.jsonnet",
        "local names = import 'names.libsonnet';\nfunction(image='nginx:1.25') {\n  apiVersion: 'apps/v1', kind: 'Deployment',\n  metadata: { name: names.deployment('jsonnet') },\n  spec: { replicas: 1, selector: { matchLabels: { app: 'jsonnet' } },\n    template: { metadata: { labels: { app: 'jsonnet' } },\n      spec: { containers: [{ name: 'web', image: image }] } } },\n}\n",
    );
}

fn spec(app: &TestApp, source: Value) -> Value {
    let mut source = source;
    source["repoURL"] = json!(app.repo_url);
    source["targetRevision"] = json!("main");
    json!({
        "project": "default",
        "source": source,
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    })
}

fn image_of(deployment: &Value) -> String {
    deployment
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn send_push(app: &TestApp, before: &str, after: &str, files: &[&str]) {
    let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let delivery = uuid::Uuid::new_v4().to_string();
    let req = capstan::webhook::github::GitHub.sample(
        &SamplePush {
            repo: &app.repo_url,
            git_ref: "refs/heads/main",
            before: Some(before),
            after: Some(after),
            files: Some(&files),
            default_branch: "main",
            delivery: &delivery,
        },
        Some(&app.webhook_secret),
    );
    let mut post = reqwest::Client::new().post(format!("{}/api/webhook", app.address));
    for (k, v) in &req.headers {
        post = post.header(k, v);
    }
    let resp = post.body(req.body.clone()).send().await.expect("webhook");
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argo_cd_style_repository_with_every_tool_syncs_and_a_base_change_reaches_its_overlay() {
    tools::require("helm");
    let app = spawn_app(Options::default()).await;
    write_example_apps(&app);
    let first = app.repo.commit("example apps");
    let apps = [
        ("plain", json!({"path": "guestbook"}), "Directory"),
        (
            "kustomize-prod",
            json!({"path": "kustomize-guestbook/overlays/prod",
                   "kustomize": {"commonLabels": {"env": "prod"}}}),
            "Kustomize",
        ),
        (
            "helm-guestbook",
            json!({"path": "helm-guestbook",
                   "helm": {"valueFiles": ["values-prod.yaml"],
                            "parameters": [{"name": "image.tag", "value": "1.27"}]}}),
            "Helm",
        ),
        (
            "jsonnet",
            json!({"path": "jsonnet-guestbook",
                   "directory": {"jsonnet": {"libs": ["jsonnet-lib"],
                                              "tlas": [{"name": "image", "value": "nginx:1.26"}]}}}),
            "Directory",
        ),
    ];
    for (name, source, _) in &apps {
        let created = app.create_app_with(name, spec(&app, source.clone())).await;
        assert_eq!(created.status(), 201, "{name}");
    }
    for (name, _, source_type) in &apps {
        let synced = app
            .wait_app(name, 90, "Synced and Healthy at the first commit", |a| {
                sync_of(a) == ("Synced".into(), first.clone())
                    && a.pointer("/status/health/status") == Some(&json!("Healthy"))
            })
            .await;
        assert_eq!(
            synced.pointer("/status/sourceType"),
            Some(&json!(source_type)),
            "{name}"
        );
    }
    // What each tool made, as Argo CD would have applied it.
    let plain = app
        .deployment("plain-web")
        .await
        .expect("plain-web applied");
    assert_eq!(image_of(&plain), "nginx:1.25");
    let prod = app.deployment("prod-web").await.expect("prod-web applied");
    assert_eq!(prod.pointer("/metadata/labels/env"), Some(&json!("prod")));
    let helm = app
        .deployment("helm-guestbook-web")
        .await
        .expect("helm release applied with the app name as release name");
    assert_eq!(image_of(&helm), "nginx:1.27", "the parameter wins");
    assert_eq!(
        helm.pointer("/spec/replicas"),
        Some(&json!(2)),
        "value file"
    );
    let jsonnet = app
        .deployment("jsonnet-web")
        .await
        .expect("jsonnet applied");
    assert_eq!(image_of(&jsonnet), "nginx:1.26", "the TLA");
    let kustomize_app = app.get_app("kustomize-prod").await;
    let inputs = kustomize_app
        .pointer("/status/renderInputs/0/paths")
        .cloned()
        .unwrap_or_default();
    assert!(
        inputs.to_string().contains("kustomize-guestbook/base"),
        "the overlay's render read its base: {inputs}"
    );

    // Only the base changes; the push names only that file.
    app.repo.write(
        "kustomize-guestbook/base/deployment.yaml",
        &deployment("web", "nginx:1.27"),
    );
    let second = app.repo.commit("base at 1.27");
    send_push(
        &app,
        &first,
        &second,
        &["kustomize-guestbook/base/deployment.yaml"],
    )
    .await;
    app.wait_app(
        "kustomize-prod",
        60,
        "the overlay synced the base change",
        |a| sync_of(a) == ("Synced".into(), second.clone()),
    )
    .await;
    let prod = app.deployment("prod-web").await.expect("prod-web");
    assert_eq!(image_of(&prod), "nginx:1.27");
    for (name, ..) in apps.iter().filter(|(n, ..)| *n != "kustomize-prod") {
        let other = app.get_app(name).await;
        assert_eq!(
            sync_of(&other).1,
            first,
            "{name} was refreshed by a push to a file it never read"
        );
    }

    // The API shows what a sync applies.
    let answer: Value = app
        .get(&format!(
            "/api/v1/applications/{APP_NAMESPACE}/helm-guestbook/manifests"
        ))
        .await
        .json()
        .await
        .expect("manifests json");
    assert_eq!(answer["revision"], json!(second));
    assert_eq!(answer["sourceTypes"], json!(["Helm"]));
    let objects = answer["manifests"].as_array().expect("manifests");
    assert_eq!(objects.len(), 1, "{answer}");
    assert_eq!(image_of(&objects[0]), "nginx:1.27");
    // The CLI prints the same objects as YAML.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["app", "manifests", "kustomize-prod"])
        .args(["--server", &app.address, "--token", &app.api_token])
        .env("CAPSTAN__SERVER__DATA_DIR", app.data_dir.path())
        .output()
        .expect("capstan runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<Value> = serde_saphyr::from_multiple(&stdout).expect("YAML output");
    assert_eq!(printed.len(), 1, "{stdout}");
    assert_eq!(printed[0]["metadata"]["name"], "prod-web");
    assert_eq!(printed[0]["metadata"]["labels"]["env"], "prod");
    assert_eq!(image_of(&printed[0]), "nginx:1.27");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_renders_nothing_is_a_condition_never_synced() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("chart-values/values.yaml", "replicas: 2\n")
        .write("chart-values/README.md", "values only\n");
    app.repo.commit("values only");
    let created = app
        .create_app_with("empty", spec(&app, json!({"path": "chart-values"})))
        .await;
    assert_eq!(created.status(), 201);
    let status = app
        .wait_app("empty", 60, "a ComparisonError about no objects", |a| {
            a.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["type"] == "ComparisonError"
                            && c["message"]
                                .as_str()
                                .is_some_and(|m| m.contains("rendered no Kubernetes objects"))
                    })
                })
        })
        .await;
    let message = status.to_string();
    assert!(message.contains("chart-values/values.yaml"), "{message}");
    assert_ne!(sync_of(&status).0, "Synced");
    assert_ne!(
        status.pointer("/status/health/status"),
        Some(&json!("Healthy"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capstan_render_prints_an_overlay_with_no_server_running() {
    let repo = crate::common::git::TestRepo::new();
    repo.write("base/deployment.yaml", &deployment("web", "nginx:1.25"))
        .write("base/kustomization.yaml", "resources: [deployment.yaml]\n")
        .write(
            "overlays/staging/kustomization.yaml",
            "nameSuffix: -staging\nresources: [../../base]\n",
        );
    repo.commit("overlay");
    let data = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args([
            "render",
            "--repo",
            &repo.file_url(),
            "--path",
            "overlays/staging",
            "--kustomize-image",
            "nginx=nginx:1.29",
        ])
        .env("CAPSTAN__SERVER__DATA_DIR", data.path())
        .output()
        .expect("capstan render runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> = serde_saphyr::from_multiple(&stdout).expect("YAML output");
    assert_eq!(objects.len(), 1, "{stdout}");
    assert_eq!(objects[0]["metadata"]["name"], "web-staging");
    assert_eq!(image_of(&objects[0]), "nginx:1.29");
}
