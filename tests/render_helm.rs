//! Helm charts render as `helm template` renders them for the same inputs (Argo CD parity),
//! without writing into the checkout, without reading outside the repository, and with
//! readable errors; charts from a Helm repository are fetched, verified and cached.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use capstan::render::{
    HelmFileParameter, HelmParameter, HelmSpec, Limits, RenderContext, RenderError, Rendered,
    SourceSpec, Tool, ToolSettings, render,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A repository (at `<tmp>/repo`) holding `app/`, a chart using every kind of input, with a
/// local `file://../common` dependency, CRDs, a test hook and a normal hook; and a secret file
/// beside the repository, outside it.
fn chart_repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write(tmp.path(), "outside.yaml", "greeting: from-outside\n");
    write(tmp.path(), "outside.txt", "TOP-SECRET-OUTSIDE\n");
    write(
        &repo,
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n",
    );
    write(
        &repo,
        "app/values.yaml",
        "greeting: hello\nreplicas: 1\ntag: latest\nlist: []\ncommon:\n  colour: blue\n",
    );
    write(
        &repo,
        "app/templates/configmap.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
data:
  greeting: {{ .Values.greeting | quote }}
  replicasKind: {{ kindOf .Values.replicas | quote }}
  tag: {{ .Values.tag | quote }}
  tagKind: {{ kindOf .Values.tag | quote }}
  list: {{ .Values.list | toJson | quote }}
  inline: {{ .Values.inline | default "none" | quote }}
  fromFile: {{ .Values.fromFile | default "" | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  hasWidget: {{ .Capabilities.APIVersions.Has "example.com/v1/Widget" | quote }}
  outside: {{ .Files.Get "../../outside.txt" | quote }}
"#,
    );
    write(
        &repo,
        "app/templates/tests/test-connection.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers: [{name: t, image: busybox}]\n",
    );
    write(
        &repo,
        "app/templates/pre-install-job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n  annotations:\n    helm.sh/hook: pre-install\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n",
    );
    write(
        &repo,
        "app/crds/widget.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n",
    );
    write(
        &repo,
        "common/Chart.yaml",
        "apiVersion: v2\nname: common\nversion: 0.1.0\n",
    );
    write(&repo, "common/values.yaml", "colour: red\n");
    write(
        &repo,
        "common/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-common\ndata:\n  colour: {{ .Values.colour | quote }}\n",
    );
    write(&repo, "envs/prod.yaml", "greeting: hello-prod\nreplicas: 3\n");
    write(&repo, "files/motd.txt", "message of the day");
    (tmp, repo)
}

fn settings() -> ToolSettings {
    ToolSettings {
        helm: common::tools::require("helm").display().to_string(),
        ..ToolSettings::default()
    }
}

fn ctx<'a>(
    checkout: &'a Path,
    refs: &'a BTreeMap<String, PathBuf>,
    tools: &'a ToolSettings,
) -> RenderContext<'a> {
    RenderContext {
        checkout,
        app_name: "my-app",
        namespace: "prod",
        refs,
        tools,
        limits: Limits::default(),
        kube_version: None,
        api_versions: &[],
    }
}

fn helm_source(path: &str, helm: HelmSpec) -> SourceSpec {
    SourceSpec {
        path: path.into(),
        helm: Some(helm),
        ..SourceSpec::default()
    }
}

fn render_with(repo: &Path, source: &SourceSpec) -> Result<Rendered, RenderError> {
    let refs = BTreeMap::new();
    let tools = settings();
    render(source, &ctx(repo, &refs, &tools))
}

/// Runs the real `helm` with `args` in a copy of `repo`'s `dirs` (after `helm dependency
/// build` there) and parses its output the plain way.
fn bare_helm(repo: &Path, chart: &str, args: &[String]) -> Vec<Value> {
    let helm = common::tools::require("helm");
    let copy = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo)
        .arg(copy.path().join("repo"))
        .status()
        .unwrap();
    assert!(status.success());
    let dir = copy.path().join("repo").join(chart);
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[String]| {
        let out = Command::new(&helm)
            .args(args)
            .current_dir(&dir)
            .env("HOME", home.path())
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["dependency".into(), "build".into(), ".".into()]);
    let text = run(args);
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(|o| o.to_string());
    objects
}

#[test]
fn every_input_renders_as_helm_template_renders_it() {
    let (tmp, repo) = chart_repo();
    let spec = HelmSpec {
        value_files: vec!["../envs/prod.yaml".into()],
        parameters: vec![
            HelmParameter {
                name: "tag".into(),
                value: "1234".into(),
                force_string: true,
            },
            HelmParameter {
                name: "common.colour".into(),
                value: "green".into(),
                force_string: false,
            },
            HelmParameter {
                name: "greeting".into(),
                value: "a,b".into(),
                force_string: false,
            },
        ],
        file_parameters: vec![HelmFileParameter {
            name: "fromFile".into(),
            path: "../files/motd.txt".into(),
        }],
        values: Some("inline: from-values\n".into()),
        values_object: Some(json!({"inline": "from-values-object", "list": [1, 2]})),
        release_name: Some("rel".into()),
        skip_tests: true,
        kube_version: Some("1.31.0".into()),
        api_versions: vec!["example.com/v1/Widget".into()],
        ..HelmSpec::default()
    };
    let rendered = render_with(&repo, &helm_source("app", spec.clone())).expect("renders");
    assert_eq!(rendered.tool, Tool::Helm);

    let inline = tmp.path().join("inline.yaml");
    std::fs::write(&inline, r#"{"inline":"from-values-object","list":[1,2]}"#).unwrap();
    let expected = bare_helm(
        &repo,
        "app",
        &[
            "template".into(),
            "rel".into(),
            ".".into(),
            "--namespace".into(),
            "prod".into(),
            "--kube-version".into(),
            "1.31.0".into(),
            "--api-versions".into(),
            "example.com/v1/Widget".into(),
            "--values".into(),
            "../envs/prod.yaml".into(),
            "--values".into(),
            inline.display().to_string(),
            "--set-string".into(),
            "tag=1234".into(),
            "--set".into(),
            "common.colour=green".into(),
            "--set".into(),
            "greeting=a\\,b".into(),
            "--set-file".into(),
            "fromFile=../files/motd.txt".into(),
            "--include-crds".into(),
            "--skip-tests".into(),
        ],
    );
    assert_eq!(sorted(rendered.objects.clone()), sorted(expected));

    // The inputs really reached the chart: none of these are the chart's defaults.
    let cm = find(&rendered.objects, "ConfigMap", "rel-config").expect("config map");
    assert_eq!(cm["metadata"]["namespace"], "prod");
    assert_eq!(cm["data"]["greeting"], "a,b", "--set wins, commas kept");
    assert_eq!(cm["data"]["replicasKind"], "float64", "prod.yaml's replicas");
    assert_eq!(cm["data"]["tag"], "1234");
    assert_eq!(cm["data"]["tagKind"], "string", "forceString");
    assert_eq!(cm["data"]["inline"], "from-values-object", "valuesObject wins");
    assert_eq!(cm["data"]["list"], "[1,2]");
    assert_eq!(cm["data"]["fromFile"], "message of the day");
    assert_eq!(cm["data"]["kube"], "v1.31.0");
    assert_eq!(cm["data"]["hasWidget"], "true");
    let common = find(&rendered.objects, "ConfigMap", "rel-common").expect("dependency");
    assert_eq!(common["data"]["colour"], "green");
    assert!(find(&rendered.objects, "CustomResourceDefinition", "widgets.example.com").is_some());
    assert!(find(&rendered.objects, "Pod", "rel-test").is_none(), "skipTests");
    let hook = find(&rendered.objects, "Job", "rel-migrate").expect("hooks stay");
    assert_eq!(hook["metadata"]["annotations"]["helm.sh/hook"], "pre-install");

    for file in ["app", "common", "envs/prod.yaml", "files/motd.txt"] {
        assert!(rendered.files_read.contains(file), "{file}: {:?}", rendered.files_read);
    }
    assert!(rendered.tool_version.starts_with('v'), "{}", rendered.tool_version);
}

#[test]
fn defaults_come_from_the_application_and_skip_crds_drops_the_crds() {
    let (_tmp, repo) = chart_repo();
    let refs = BTreeMap::new();
    let tools = settings();
    let api = vec!["example.com/v1/Widget".to_string()];
    let mut context = ctx(&repo, &refs, &tools);
    context.kube_version = Some("1.30.2");
    context.api_versions = &api;
    let source = helm_source(
        "app",
        HelmSpec {
            values: Some("inline: from-values\n".into()),
            skip_crds: true,
            ..HelmSpec::default()
        },
    );
    let rendered = render(&source, &context).expect("renders");
    let cm = find(&rendered.objects, "ConfigMap", "my-app-config").expect("release = app name");
    assert_eq!(cm["metadata"]["namespace"], "prod");
    assert_eq!(cm["data"]["greeting"], "hello");
    assert_eq!(cm["data"]["inline"], "from-values");
    assert_eq!(cm["data"]["kube"], "v1.30.2");
    assert_eq!(cm["data"]["hasWidget"], "true");
    assert!(find(&rendered.objects, "CustomResourceDefinition", "widgets.example.com").is_none());
    assert!(find(&rendered.objects, "Pod", "my-app-test").is_some(), "tests kept");
}

#[test]
fn a_guestbook_chart_is_detected_by_its_chart_yaml() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    write(
        repo,
        "helm-guestbook/Chart.yaml",
        "apiVersion: v2\nname: helm-guestbook\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    );
    write(
        repo,
        "helm-guestbook/values.yaml",
        "replicaCount: 1\nimage:\n  repository: gcr.io/heptio-images/ks-guestbook-demo\n  tag: 0.1\nservice:\n  type: ClusterIP\n  port: 80\n",
    );
    write(
        repo,
        "helm-guestbook/templates/_helpers.tpl",
        "{{- define \"helm-guestbook.fullname\" -}}\n{{- printf \"%s-%s\" .Release.Name .Chart.Name | trunc 63 | trimSuffix \"-\" -}}\n{{- end -}}\n",
    );
    write(
        repo,
        "helm-guestbook/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"helm-guestbook.fullname\" . }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n  selector:\n    matchLabels: {app: guestbook}\n  template:\n    metadata:\n      labels: {app: guestbook}\n    spec:\n      containers:\n        - name: guestbook\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
    );
    write(
        repo,
        "helm-guestbook/templates/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"helm-guestbook.fullname\" . }}\nspec:\n  type: {{ .Values.service.type }}\n  ports: [{port: {{ .Values.service.port }}}]\n  selector: {app: guestbook}\n",
    );
    let source = SourceSpec {
        path: "helm-guestbook".into(),
        ..SourceSpec::default()
    };
    let rendered = render_with(repo, &source).expect("renders");
    assert_eq!(rendered.tool, Tool::Helm);
    let deployment =
        find(&rendered.objects, "Deployment", "my-app-helm-guestbook").expect("deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "gcr.io/heptio-images/ks-guestbook-demo:0.1"
    );
    assert!(find(&rendered.objects, "Service", "my-app-helm-guestbook").is_some());
    assert_eq!(rendered.objects.len(), 2);
    assert!(rendered.files_read.contains("helm-guestbook"));
}

/// Every path, file content and link target under `dir`, hashed.
fn tree_hash(dir: &Path) -> String {
    fn visit(dir: &Path, base: &Path, hasher: &mut Sha256) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            hasher.update(rel.as_bytes());
            if meta.file_type().is_symlink() {
                hasher.update(std::fs::read_link(&path).unwrap().to_string_lossy().as_bytes());
            } else if meta.is_dir() {
                hasher.update(b"/");
                visit(&path, base, hasher);
            } else {
                hasher.update(std::fs::read(&path).unwrap());
            }
        }
    }
    let mut hasher = Sha256::new();
    visit(dir, dir, &mut hasher);
    hex::encode(hasher.finalize())
}

#[test]
fn building_dependencies_leaves_the_checkout_untouched() {
    let (_tmp, repo) = chart_repo();
    let before = tree_hash(&repo);
    let rendered = render_with(&repo, &helm_source("app", HelmSpec::default())).expect("renders");
    assert!(
        find(&rendered.objects, "ConfigMap", "my-app-common").is_some(),
        "the dependency was built and rendered"
    );
    assert_eq!(tree_hash(&repo), before, "the checkout was written to");
    assert!(!repo.join("app/charts").exists());
    assert!(!repo.join("app/Chart.lock").exists());
}

#[test]
fn a_vendored_dependency_renders_and_a_remote_one_that_is_not_is_named() {
    let (_tmp, repo) = chart_repo();
    // Vendored in charts/: no build needed, even though the repository URL is remote.
    write(
        &repo,
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: https://charts.example.com\n",
    );
    std::fs::create_dir(repo.join("app/charts")).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo.join("common"))
        .arg(repo.join("app/charts/common"))
        .status()
        .unwrap();
    assert!(status.success());
    let rendered = render_with(&repo, &helm_source("app", HelmSpec::default())).expect("renders");
    assert!(find(&rendered.objects, "ConfigMap", "my-app-common").is_some());

    std::fs::remove_dir_all(repo.join("app/charts")).unwrap();
    let err = render_with(&repo, &helm_source("app", HelmSpec::default())).expect_err("remote");
    let message = err.to_string();
    assert!(matches!(err, RenderError::Unsupported { .. }), "{err:?}");
    assert!(
        message.contains("\"common\"") && message.contains("https://charts.example.com"),
        "{message}"
    );
}

#[test]
fn value_files_leaving_the_repository_are_refused_and_ref_files_are_read_from_their_source() {
    let (_tmp, repo) = chart_repo();
    let spec = HelmSpec {
        value_files: vec!["../../outside.yaml".into()],
        ..HelmSpec::default()
    };
    let err = render_with(&repo, &helm_source("app", spec)).expect_err("escapes");
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err:?}");

    let file_param = HelmSpec {
        file_parameters: vec![HelmFileParameter {
            name: "fromFile".into(),
            path: "../../outside.txt".into(),
        }],
        ..HelmSpec::default()
    };
    let err = render_with(&repo, &helm_source("app", file_param)).expect_err("escapes");
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err:?}");

    let url = HelmSpec {
        value_files: vec!["https://example.com/values.yaml".into()],
        ..HelmSpec::default()
    };
    let err = render_with(&repo, &helm_source("app", url)).expect_err("no network");
    assert!(err.to_string().contains("https://example.com/values.yaml"), "{err}");

    // Multi-source: `$values/...` comes from the other source's checkout and is named so.
    let other = tempfile::tempdir().unwrap();
    write(other.path(), "envs/prod.yaml", "greeting: from-ref\n");
    let refs = BTreeMap::from([("$values".to_string(), other.path().to_path_buf())]);
    let tools = settings();
    let source = helm_source(
        "app",
        HelmSpec {
            value_files: vec!["$values/envs/prod.yaml".into()],
            ..HelmSpec::default()
        },
    );
    let rendered = render(&source, &ctx(&repo, &refs, &tools)).expect("renders");
    let cm = find(&rendered.objects, "ConfigMap", "my-app-config").unwrap();
    assert_eq!(cm["data"]["greeting"], "from-ref");
    assert!(rendered.files_read.contains("$values/envs/prod.yaml"), "{:?}", rendered.files_read);
    let escaping = helm_source(
        "app",
        HelmSpec {
            value_files: vec!["$values/../outside.yaml".into()],
            ..HelmSpec::default()
        },
    );
    let err = render(&escaping, &ctx(&repo, &refs, &tools)).expect_err("escapes the ref");
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err:?}");
}

#[test]
fn a_template_cannot_read_files_outside_the_chart() {
    let (_tmp, repo) = chart_repo();
    let rendered = render_with(&repo, &helm_source("app", HelmSpec::default())).expect("renders");
    let cm = find(&rendered.objects, "ConfigMap", "my-app-config").unwrap();
    assert_eq!(cm["data"]["outside"], "", "the outside file must not be readable");
    // The file is there: only confinement keeps it out.
    assert!(repo.join("app").join("../../outside.txt").is_file());
    assert!(!serde_json::to_string(&rendered.objects).unwrap().contains("TOP-SECRET"));
}

#[test]
fn symlinks_leaving_the_repository_are_refused_before_helm_runs() {
    for (link, target_is_dir) in [("app/templates/evil.yaml", false), ("app/files", true)] {
        let (tmp, repo) = chart_repo();
        let target = if target_is_dir {
            tmp.path().to_path_buf()
        } else {
            tmp.path().join("outside.txt")
        };
        std::os::unix::fs::symlink(&target, repo.join(link)).unwrap();
        let err = render_with(&repo, &helm_source("app", HelmSpec::default())).expect_err(link);
        match err {
            RenderError::PathEscapes { path } => assert_eq!(path, link),
            other => panic!("{link}: {other:?}"),
        }
    }
    // A link leaving the repository inside a local dependency is refused as well.
    let (tmp, repo) = chart_repo();
    std::os::unix::fs::symlink(tmp.path().join("outside.txt"), repo.join("common/secret.txt"))
        .unwrap();
    let err = render_with(&repo, &helm_source("app", HelmSpec::default())).expect_err("dep");
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err:?}");
}

#[test]
fn a_missing_value_file_fails_unless_ignored() {
    let (_tmp, repo) = chart_repo();
    let mut spec = HelmSpec {
        value_files: vec!["missing.yaml".into(), "../envs/prod.yaml".into()],
        ..HelmSpec::default()
    };
    let err = render_with(&repo, &helm_source("app", spec.clone())).expect_err("missing");
    assert!(matches!(err, RenderError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.yaml"), "{err}");

    spec.ignore_missing_value_files = true;
    let rendered = render_with(&repo, &helm_source("app", spec)).expect("ignored");
    let cm = find(&rendered.objects, "ConfigMap", "my-app-config").unwrap();
    assert_eq!(cm["data"]["greeting"], "hello-prod", "the present file still applies");
    assert!(!rendered.files_read.contains("app/missing.yaml"));
}

#[test]
fn a_broken_template_fails_with_helms_message() {
    let (_tmp, repo) = chart_repo();
    write(
        &repo,
        "app/templates/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.greeting | nosuchfunction }}\n",
    );
    let err = render_with(&repo, &helm_source("app", HelmSpec::default())).expect_err("broken");
    assert!(matches!(err, RenderError::ToolFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("nosuchfunction"), "{err}");
}

#[test]
fn a_hanging_helm_is_stopped_at_the_deadline() {
    let (tmp, repo) = chart_repo();
    std::fs::remove_file(repo.join("app/Chart.yaml")).unwrap();
    write(&repo, "app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n");
    let script = tmp.path().join("fake-helm");
    std::fs::write(&script, "#!/bin/sh\nsleep 30\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tools = ToolSettings {
        helm: script.display().to_string(),
        timeout: Duration::from_millis(500),
        ..ToolSettings::default()
    };
    let refs = BTreeMap::new();
    let started = Instant::now();
    let err = render(&helm_source("app", HelmSpec::default()), &ctx(&repo, &refs, &tools))
        .expect_err("times out");
    assert!(matches!(err, RenderError::ToolTimeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
