//! Tenancy: Applications honoured only in the control namespace (or allowed ones), and AppProjects
//! confining repositories, destinations and kinds before anything is applied.

use std::time::Duration;

use capstan::store::{AppProject, Application};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::helpers::*;

const IN_CLUSTER: &str = "https://kubernetes.default.svc";

async fn create_namespace(app: &TestApp, name: &str) {
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::all(app.kube.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
}

/// An Argo CD AppProject document, created through the REST API.
async fn create_project(app: &TestApp, name: &str, spec: Value) {
    let doc = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": name, "namespace": "argocd"}, "spec": spec});
    let resp = app.post("/api/v1/projects", &doc).await;
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
}

fn spec(app: &TestApp, project: &str, path: &str, namespace: &str) -> Value {
    json!({
        "project": project,
        "source": {"repoURL": app.repo_url, "path": path, "targetRevision": "main"},
        "destination": {"server": IN_CLUSTER, "namespace": namespace},
        "syncPolicy": {"automated": {"prune": true}},
    })
}

fn condition(app: &Value, type_: &str) -> Option<String> {
    app.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["message"].as_str())
        .map(str::to_owned)
}

fn config_map_in(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  k: v\n"
    )
}

const CLUSTER_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: escalate\nrules:\n- apiGroups: ['*']\n  resources: ['*']\n  verbs: ['*']\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_confines_repositories_destinations_and_kinds_before_anything_is_applied() {
    let app = spawn_app(Options::default()).await;
    create_namespace(&app, "team-a").await;
    app.repo.write("ok/cm.yaml", &config_map("team-ok", "1"));
    app.repo.write(
        "clusterwide/all.yaml",
        &format!("{CLUSTER_ROLE}---\n{}", config_map("beside-role", "1")),
    );
    app.repo.write(
        "foreign/all.yaml",
        &format!(
            "{}---\n{}",
            config_map_in("planted", "kube-system"),
            config_map("beside-planted", "1")
        ),
    );
    app.repo.commit("manifests for team a");
    create_project(
        &app,
        "team-a",
        json!({"sourceRepos": [app.repo_url], "destinations": [{"server": IN_CLUSTER, "namespace": "team-a"}]}),
    )
    .await;

    app.apply_app(APP_NAMESPACE, "ok", spec(&app, "team-a", "ok", "team-a"))
        .await;
    app.apply_app(
        APP_NAMESPACE,
        "role",
        spec(&app, "team-a", "clusterwide", "team-a"),
    )
    .await;
    app.apply_app(
        APP_NAMESPACE,
        "foreign",
        spec(&app, "team-a", "foreign", "team-a"),
    )
    .await;
    app.apply_app(
        APP_NAMESPACE,
        "elsewhere",
        spec(&app, "team-a", "ok", "default"),
    )
    .await;
    let mut other_repo = spec(&app, "team-a", "ok", "team-a");
    other_repo["source"]["repoURL"] = "https://github.com/someone-else/repo.git".into();
    app.apply_app(APP_NAMESPACE, "other-repo", other_repo.clone())
        .await;
    app.apply_app(APP_NAMESPACE, "ghost", spec(&app, "ghost", "ok", "team-a"))
        .await;

    app.wait_app("ok", 30, "Synced", |a| sync_of(a).0 == "Synced")
        .await;
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "team-a", "team-ok")
            .await
            .is_some()
    );

    let role = app
        .wait_app("role", 30, "a SyncError", |a| {
            condition(a, "SyncError").is_some()
        })
        .await;
    let message = condition(&role, "SyncError").unwrap_or_default();
    assert!(
        message.contains(
            "resource rbac.authorization.k8s.io:ClusterRole is not permitted in project team-a"
        ),
        "{message}"
    );
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "team-a", "beside-role")
            .await
            .is_none(),
        "nothing of the app is applied, not even its allowed objects"
    );
    assert!(
        app.live(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "clusterroles",
            "",
            "escalate"
        )
        .await
        .is_none()
    );

    let foreign = app
        .wait_app("foreign", 30, "a SyncError", |a| {
            condition(a, "SyncError").is_some()
        })
        .await;
    let message = condition(&foreign, "SyncError").unwrap_or_default();
    assert!(
        message.contains("ConfigMap/kube-system/planted") && message.contains("'kube-system'"),
        "{message}"
    );
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "kube-system", "planted")
            .await
            .is_none()
    );
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "team-a", "beside-planted")
            .await
            .is_none()
    );

    for (name, expected) in [
        (
            "elsewhere",
            "application destination server 'https://kubernetes.default.svc' and namespace 'default' do not match any of the allowed destinations in project 'team-a'",
        ),
        (
            "other-repo",
            "application repo https://github.com/someone-else/repo.git is not permitted in project 'team-a'",
        ),
        (
            "ghost",
            "Application referencing project ghost which does not exist",
        ),
    ] {
        let state = app
            .wait_app(name, 30, "an InvalidSpecError", |a| {
                condition(a, "InvalidSpecError").is_some()
            })
            .await;
        assert_eq!(
            condition(&state, "InvalidSpecError").as_deref(),
            Some(expected)
        );
        assert_ne!(sync_of(&state).0, "Synced");
    }
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "default", "team-ok")
            .await
            .is_none(),
        "the app aimed at a forbidden namespace applied nothing"
    );

    let refused = app
        .create_app_in(APP_NAMESPACE, "other-repo-2", other_repo)
        .await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("is not permitted in project 'team-a'"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_outside_allowed_namespaces_are_ignored_by_the_worker_and_refused_by_the_api()
{
    let app = spawn_app(Options {
        extra_env: vec![("CAPSTAN__APPLICATIONS__NAMESPACES".into(), "team-*".into())],
        ..Default::default()
    })
    .await;
    for ns in ["team-a", "team-b"] {
        create_namespace(&app, ns).await;
    }
    app.repo.write("a/cm.yaml", &config_map("from-team-a", "1"));
    app.repo.write("b/cm.yaml", &config_map("from-team-b", "1"));
    app.repo
        .write("d/cm.yaml", &config_map("from-default", "1"));
    app.repo
        .write("c/cm.yaml", &config_map("from-control", "1"));
    app.repo.commit("one directory per app");

    let default_project: Value = app
        .get("/api/v1/projects/default")
        .await
        .json()
        .await
        .expect("the default project exists");
    assert_eq!(default_project["spec"]["sourceRepos"], json!(["*"]));
    create_project(
        &app,
        "teams",
        json!({"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
               "sourceNamespaces": ["team-a"]}),
    )
    .await;

    let resp = app
        .create_app_in("default", "x", spec(&app, "default", "d", "default"))
        .await;
    assert_eq!(resp.status(), 403);
    let text = resp.text().await.unwrap_or_default();
    assert!(
        text.contains("namespace 'default' is not one where Applications are honoured"),
        "{text}"
    );
    let resp = app
        .create_app_in("team-b", "x", spec(&app, "teams", "b", "default"))
        .await;
    assert_eq!(resp.status(), 403);
    let text = resp.text().await.unwrap_or_default();
    assert!(
        text.contains("not in the sourceNamespaces of project 'teams'"),
        "{text}"
    );

    // Created behind the API's back: the worker must leave them alone.
    app.apply_app("default", "sneaky", spec(&app, "default", "d", "default"))
        .await;
    app.apply_app("team-b", "sneaky", spec(&app, "teams", "b", "default"))
        .await;

    let resp = app
        .create_app_in("team-a", "allowed", spec(&app, "teams", "a", "default"))
        .await;
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    assert_eq!(
        app.create_app_with("control", spec(&app, "default", "c", "default"))
            .await
            .status(),
        201
    );
    eventually(30, "the team-a app is Synced", || async {
        let resp = app.get("/api/v1/applications/team-a/allowed").await;
        let state: Value = resp.json().await.unwrap_or_default();
        sync_of(&state).0 == "Synced"
    })
    .await;
    app.wait_app("control", 30, "Synced", |a| sync_of(a).0 == "Synced")
        .await;
    // The ignored apps were created first, so their jobs were due before these two finished.
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert!(app.config_map("from-team-a").await.is_some());
    assert!(app.config_map("from-control").await.is_some());
    assert!(
        app.config_map("from-default").await.is_none(),
        "default/sneaky was acted on"
    );
    assert!(
        app.config_map("from-team-b").await.is_none(),
        "team-b/sneaky was acted on"
    );
    for ns in ["default", "team-b"] {
        let live = Api::<Application>::namespaced(app.kube.clone(), ns)
            .get("sneaky")
            .await
            .expect("still there");
        assert!(
            live.status.is_none(),
            "{ns}/sneaky got a status: {:?}",
            live.status
        );
        let resp = app.get(&format!("/api/v1/applications/{ns}/sneaky")).await;
        assert_eq!(resp.status(), 403);
    }
    let list: Value = app
        .get("/api/v1/applications")
        .await
        .json()
        .await
        .expect("list");
    let names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{}/{}",
                a["metadata"]["namespace"].as_str().unwrap_or(""),
                a["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(names, ["capstan/control", "team-a/allowed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_never_reaches_outside_the_projects_destinations() {
    let app = spawn_app(Options::default()).await;
    create_namespace(&app, "extra").await;
    app.repo.write("app/keep.yaml", &config_map("keep", "1"));
    app.repo
        .write("app/also-gone.yaml", &config_map("also-gone", "1"));
    app.repo
        .write("app/extra.yaml", &config_map_in("gone-later", "extra"));
    app.repo.commit("three config maps");
    let both = json!([{"server": IN_CLUSTER, "namespace": "default"}, {"server": IN_CLUSTER, "namespace": "extra"}]);
    create_project(
        &app,
        "p",
        json!({"sourceRepos": ["*"], "destinations": both}),
    )
    .await;
    assert_eq!(
        app.create_app_with("pruner", spec(&app, "p", "app", "default"))
            .await
            .status(),
        201
    );
    app.wait_app("pruner", 30, "Synced", |a| sync_of(a).0 == "Synced")
        .await;
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "extra", "gone-later")
            .await
            .is_some()
    );

    // The project shrinks; then both config maps leave Git.
    let projects: Api<AppProject> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    projects
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"destinations": [{"server": IN_CLUSTER, "namespace": "default"}]}}),
            ),
        )
        .await
        .expect("project narrowed");
    eventually(10, "the project change reached Capstan", || async {
        let p: Value = app
            .get("/api/v1/projects/p")
            .await
            .json()
            .await
            .unwrap_or_default();
        p["spec"]["destinations"]
            .as_array()
            .is_some_and(|d| d.len() == 1)
    })
    .await;
    app.repo.remove("app/extra.yaml");
    app.repo.remove("app/also-gone.yaml");
    let second = app.repo.commit("drop two");
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );

    let state = app
        .wait_app("pruner", 30, "Synced at the second commit", |a| {
            sync_of(a) == ("Synced".into(), second.clone())
        })
        .await;
    assert!(
        app.config_map("also-gone").await.is_none(),
        "pruning inside the project's destinations still works"
    );
    assert!(
        app.live("v1", "ConfigMap", "configmaps", "extra", "gone-later")
            .await
            .is_some(),
        "an object outside the project's destinations is never pruned"
    );
    let warning = condition(&state, "ExcludedResourceWarning").unwrap_or_default();
    assert!(warning.contains("ConfigMap/extra/gone-later"), "{warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proj_cli_creates_lists_and_shows_argo_cd_projects() {
    let app = spawn_app(Options::default()).await;
    let file = app.data_dir.path().join("project.yaml");
    std::fs::write(
        &file,
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: payments\n  namespace: argocd\nspec:\n  description: Payments team\n  sourceRepos: ['https://git.example.com/payments/*']\n  destinations:\n  - server: https://kubernetes.default.svc\n    namespace: payments-*\n",
    )
    .expect("write project");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .arg("proj")
            .args(["--server", &app.address, "--token", &app.api_token])
            .args(args)
            .output()
            .expect("capstan runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, stderr) = cli(&["create", "-f", &file.display().to_string()]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = cli(&["list"]);
    assert!(ok);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("payments"))
        .expect("listed");
    assert!(
        line.contains("https://git.example.com/payments/*") && line.contains("Payments team"),
        "{line}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("default ")),
        "{stdout}"
    );
    let (ok, stdout, _) = cli(&["get", "payments"]);
    assert!(ok);
    assert!(
        stdout.contains("Description:                  Payments team")
            && stdout.contains("https://kubernetes.default.svc,payments-*"),
        "{stdout}"
    );
    let (ok, stdout, _) = cli(&["get", "payments", "-o", "json"]);
    assert!(ok);
    let got: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(got["apiVersion"], "capstan.dev/v1alpha1");
    assert_eq!(got["metadata"]["namespace"], APP_NAMESPACE);
    let (ok, _, stderr) = cli(&["get", "nope"]);
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");
}
