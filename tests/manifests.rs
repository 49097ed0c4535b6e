//! The desired manifests of Applications, from real Git repositories: one render per distinct
//! input however many apps ask, multi-source apps merged, `$ref` value files, and files read
//! recorded per repository.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use capstan::git::{GitCredentials, RepoCache};
use capstan::manifests::{Manifests, Target};
use capstan::render::{ChartCache, Limits, RenderCache, ToolSettings};
use capstan::store::application::ApplicationSource;
use common::git::TestRepo;
use serde_json::json;

fn manifests(cache: &tempfile::TempDir) -> Arc<Manifests> {
    Arc::new(Manifests {
        git: RepoCache::new(cache.path().join("git")),
        credentials: GitCredentials::new(),
        secret_credentials: Default::default(),
        charts: ChartCache::new(cache.path().join("charts")),
        renders: Arc::new(RenderCache::new(100)),
        tools: ToolSettings::default(),
        limits: Limits::default(),
    })
}

fn source(repo: &TestRepo, path: &str) -> ApplicationSource {
    ApplicationSource {
        repo_url: repo.file_url(),
        path: Some(path.into()),
        target_revision: Some("main".into()),
        ..Default::default()
    }
}

fn target<'a>(name: &'a str, hard: bool) -> Target<'a> {
    Target {
        app_name: name,
        namespace: "default",
        kube_version: None,
        api_versions: &[],
        hard,
    }
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_apps_on_one_commit_cost_one_render_per_distinct_source() {
    let repo = TestRepo::new();
    for team in 0..10 {
        repo.write(
            &format!("apps/{team}/cm.yaml"),
            &config_map(&format!("team-{team}")),
        );
    }
    repo.commit("ten teams");
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manifests(&dir);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let m = m.clone();
            let src = source(&repo, &format!("apps/{}", i % 10));
            tokio::spawn(async move {
                let name = format!("app-{i}");
                m.desired(&[&src], &target(&name, false)).await
            })
        })
        .collect();
    for task in tasks {
        let out = task.await.expect("task").expect("renders");
        assert_eq!(out.objects.len(), 1);
    }
    let stats = m.renders.stats();
    assert_eq!(stats.renders, 10, "one render per distinct path: {stats:?}");
    assert_eq!(stats.hits, 90, "{stats:?}");

    // A hard refresh renders again; a plain one is served from the cache.
    let src = source(&repo, "apps/0");
    m.desired(&[&src], &target("app-0", true))
        .await
        .expect("hard");
    m.desired(&[&src], &target("app-0", false))
        .await
        .expect("cached");
    let after = m.renders.stats();
    assert_eq!(after.renders, 11, "{after:?}");
    assert_eq!(after.hits, 91, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_source_app_merges_its_sources_and_records_what_each_read() {
    let apps = TestRepo::new();
    apps.write("a/cm.yaml", &config_map("from-a"))
        .write("b/cm.yaml", &config_map("from-b"))
        // The same object in both sources: kept once, last wins, with a warning.
        .write("b/dup.yaml", &config_map("from-a").replace("k: v", "k: b"));
    let first = apps.commit("two paths");
    let other = TestRepo::new();
    other.write("more/cm.yaml", &config_map("from-other"));
    let second = other.commit("other repo");
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manifests(&dir);
    let sources = [
        source(&apps, "a"),
        source(&apps, "b"),
        source(&other, "more"),
    ];
    let refs: Vec<&ApplicationSource> = sources.iter().collect();
    let out = m
        .desired(&refs, &target("multi", false))
        .await
        .expect("renders");
    let names: Vec<&str> = out
        .objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["from-b", "from-a", "from-other"],
        "{:?}",
        out.objects
    );
    let dup = out
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "from-a");
    assert_eq!(dup.map(|o| o["data"]["k"].clone()), Some(json!("b")));
    assert_eq!(out.revisions, [first.clone(), first, second]);
    assert!(
        out.warnings
            .iter()
            .any(|w| w.condition == "RepeatedResourceWarning" && w.message.contains("from-a")),
        "{:?}",
        out.warnings
    );
    let read = &out.files_read[&apps.file_url()];
    assert!(
        read.contains("a/cm.yaml") && read.contains("b/dup.yaml"),
        "{read:?}"
    );
    assert!(out.files_read[&other.file_url()].contains("more/cm.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_reads_its_values_from_another_sources_ref() {
    common::tools::require("helm");
    let charts = TestRepo::new();
    charts
        .write("web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
        .write("web/values.yaml", "color: grey\n")
        .write(
            "web/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  color: {{ .Values.color }}\n",
        );
    charts.commit("chart");
    let values = TestRepo::new();
    values.write("envs/prod.yaml", "color: blue\n");
    let values_commit = values.commit("prod values");
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manifests(&dir);
    let chart_source = ApplicationSource {
        helm: Some(json!({"valueFiles": ["$values/envs/prod.yaml"]})),
        ..source(&charts, "web")
    };
    let values_source = ApplicationSource {
        r#ref: Some("values".into()),
        path: None,
        ..source(&values, "")
    };
    let out = m
        .desired(&[&chart_source, &values_source], &target("shop", false))
        .await
        .expect("renders");
    assert_eq!(
        out.objects.len(),
        1,
        "the values-only source renders nothing itself"
    );
    assert_eq!(out.objects[0]["metadata"]["name"], "shop");
    assert_eq!(out.objects[0]["data"]["color"], "blue");
    assert_eq!(out.revisions[1], values_commit);
    assert!(
        out.files_read[&values.file_url()].contains("envs/prod.yaml"),
        "{:?}",
        out.files_read
    );
    // A value file naming a ref no source has is the spec's fault, said plainly.
    let dangling = ApplicationSource {
        helm: Some(json!({"valueFiles": ["$missing/prod.yaml"]})),
        ..source(&charts, "web")
    };
    let err = m
        .desired(&[&dangling], &target("shop", false))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, capstan::manifests::ManifestError::InvalidSpec(_)),
        "{err}"
    );
    assert!(err.to_string().contains("missing"), "{err}");
}
