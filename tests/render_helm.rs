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
    write(
        &repo,
        "envs/prod.yaml",
        "greeting: hello-prod\nreplicas: 3\n",
    );
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
    assert_eq!(
        cm["data"]["replicasKind"], "float64",
        "prod.yaml's replicas"
    );
    assert_eq!(cm["data"]["tag"], "1234");
    assert_eq!(cm["data"]["tagKind"], "string", "forceString");
    assert_eq!(
        cm["data"]["inline"], "from-values-object",
        "valuesObject wins"
    );
    assert_eq!(cm["data"]["list"], "[1,2]");
    assert_eq!(cm["data"]["fromFile"], "message of the day");
    assert_eq!(cm["data"]["kube"], "v1.31.0");
    assert_eq!(cm["data"]["hasWidget"], "true");
    let common = find(&rendered.objects, "ConfigMap", "rel-common").expect("dependency");
    assert_eq!(common["data"]["colour"], "green");
    assert!(
        find(
            &rendered.objects,
            "CustomResourceDefinition",
            "widgets.example.com"
        )
        .is_some()
    );
    assert!(
        find(&rendered.objects, "Pod", "rel-test").is_none(),
        "skipTests"
    );
    let hook = find(&rendered.objects, "Job", "rel-migrate").expect("hooks stay");
    assert_eq!(
        hook["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install"
    );

    for file in ["app", "common", "envs/prod.yaml", "files/motd.txt"] {
        assert!(
            rendered.files_read.contains(file),
            "{file}: {:?}",
            rendered.files_read
        );
    }
    assert!(
        rendered.tool_version.starts_with('v'),
        "{}",
        rendered.tool_version
    );
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
    assert!(
        find(
            &rendered.objects,
            "CustomResourceDefinition",
            "widgets.example.com"
        )
        .is_none()
    );
    assert!(
        find(&rendered.objects, "Pod", "my-app-test").is_some(),
        "tests kept"
    );
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
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            hasher.update(rel.as_bytes());
            if meta.file_type().is_symlink() {
                hasher.update(
                    std::fs::read_link(&path)
                        .unwrap()
                        .to_string_lossy()
                        .as_bytes(),
                );
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

    // A Chart.lock out of sync with Chart.yaml stops `helm dependency build`; the render still
    // succeeds, and the committed lock stays as it was.
    write(
        &repo,
        "app/Chart.lock",
        "dependencies:\n- name: other\n  repository: file://../other\n  version: 0.1.0\ndigest: sha256:0000000000000000000000000000000000000000000000000000000000000000\ngenerated: \"2024-01-01T00:00:00Z\"\n",
    );
    let before = tree_hash(&repo);
    let rendered = render_with(&repo, &helm_source("app", HelmSpec::default())).expect("renders");
    assert!(find(&rendered.objects, "ConfigMap", "my-app-common").is_some());
    assert_eq!(tree_hash(&repo), before, "the checkout was written to");
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
    assert!(
        err.to_string().contains("https://example.com/values.yaml"),
        "{err}"
    );

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
    assert!(
        rendered.files_read.contains("$values/envs/prod.yaml"),
        "{:?}",
        rendered.files_read
    );
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
    assert_eq!(
        cm["data"]["outside"], "",
        "the outside file must not be readable"
    );
    // The file is there: only confinement keeps it out.
    assert!(repo.join("app").join("../../outside.txt").is_file());
    assert!(
        !serde_json::to_string(&rendered.objects)
            .unwrap()
            .contains("TOP-SECRET")
    );
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
    std::os::unix::fs::symlink(
        tmp.path().join("outside.txt"),
        repo.join("common/secret.txt"),
    )
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
    assert_eq!(
        cm["data"]["greeting"], "hello-prod",
        "the present file still applies"
    );
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
    write(
        &repo,
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\n",
    );
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
    let err = render(
        &helm_source("app", HelmSpec::default()),
        &ctx(&repo, &refs, &tools),
    )
    .expect_err("times out");
    assert!(matches!(err, RenderError::ToolTimeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A chart repository on 127.0.0.1 serving `dir` over HTTP/1.1, requiring Basic credentials
/// (when given) and counting the requests it answers and those carrying credentials.
struct ChartServer {
    url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    with_credentials: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ChartServer {
    fn start(dir: PathBuf, user: &str, pass: &str) -> ChartServer {
        ChartServer::serve(dir, Some((user, pass)))
    }

    fn serve(dir: PathBuf, creds: Option<(&str, &str)>) -> ChartServer {
        use base64::Engine;
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/charts", listener.local_addr().unwrap());
        let expected = creds.map(|(user, pass)| {
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        });
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let with_credentials = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        let credentials_counter = with_credentials.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorised = expected.is_none();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        credentials_counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        authorised = value.trim().split_once(' ').is_some_and(|(scheme, token)| {
                            scheme.eq_ignore_ascii_case("basic")
                                && expected.as_deref().is_none_or(|e| token == e)
                        });
                    }
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                let file = path.strip_prefix("/charts/").unwrap_or("");
                let (status, body) = if !authorised {
                    ("401 Unauthorized", b"unauthorised".to_vec())
                } else if file.contains("..") || file.is_empty() {
                    ("404 Not Found", b"not found".to_vec())
                } else {
                    match std::fs::read(dir.join(file)) {
                        Ok(bytes) => ("200 OK", bytes),
                        Err(_) => ("404 Not Found", b"not found".to_vec()),
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\nWWW-Authenticate: Basic realm=\"charts\"\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        ChartServer {
            url,
            requests,
            with_credentials,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `helm package` of chart `web` at each version, and `helm repo index` (relative URLs).
fn packaged_repository(versions: &[&str]) -> tempfile::TempDir {
    let helm = common::tools::require("helm");
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&helm)
            .args(args)
            .env("HOME", tmp.path())
            .env("HELM_CACHE_HOME", tmp.path().join("cache"))
            .env("HELM_CONFIG_HOME", tmp.path().join("config"))
            .env("HELM_DATA_HOME", tmp.path().join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for version in versions {
        let chart = tmp.path().join(format!("src-{version}/web"));
        write(
            &chart,
            "Chart.yaml",
            &format!("apiVersion: v2\nname: web\nversion: {version}\n"),
        );
        write(
            &chart,
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-web\ndata:\n  version: {{ .Chart.Version | quote }}\n",
        );
        run(&[
            "package",
            chart.to_str().unwrap(),
            "-d",
            served.to_str().unwrap(),
        ]);
    }
    run(&["repo", "index", served.to_str().unwrap()]);
    tmp
}

#[tokio::test]
async fn charts_are_fetched_from_a_repository_by_version_or_range_and_cached() {
    let repository = packaged_repository(&["1.0.0", "1.2.0", "1.5.0", "2.0.0", "2.1.0-rc.1"]);
    let server = ChartServer::start(repository.path().join("served"), "ci", "s3cret");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = capstan::render::ChartCache::new(cache_dir.path());
    let creds = Some(("ci", "s3cret"));

    let exact = cache
        .fetch(&server.url, "web", "1.2.0", creds)
        .await
        .expect("exact");
    assert_eq!(exact.version, "1.2.0");
    let chart_yaml =
        std::fs::read_to_string(exact.dir.join(&exact.chart_path).join("Chart.yaml")).unwrap();
    assert!(chart_yaml.contains("version: 1.2.0"), "{chart_yaml}");
    assert_eq!(server.requests(), 2, "index.yaml and the archive");
    let again = cache
        .fetch(&server.url, "web", "1.2.0", creds)
        .await
        .expect("cached");
    assert_eq!(again, exact);
    assert_eq!(
        server.requests(),
        2,
        "a cached exact version makes no request"
    );

    let ranged = cache
        .fetch(&server.url, "web", "^1.0", creds)
        .await
        .expect("range");
    assert_eq!(ranged.version, "1.5.0");
    assert_eq!(server.requests(), 4);
    let ranged_again = cache
        .fetch(&server.url, "web", ">=1.0 <2", creds)
        .await
        .expect("range");
    assert_eq!(ranged_again, ranged);
    assert_eq!(
        server.requests(),
        5,
        "only the index is read again to resolve the range"
    );
    let latest = cache
        .fetch(&server.url, "web", "*", creds)
        .await
        .expect("latest");
    assert_eq!(latest.version, "2.0.0", "the latest stable version");

    // The fetched chart renders as a Helm source.
    let source = SourceSpec {
        path: latest.chart_path.clone(),
        chart: Some("web".into()),
        ..SourceSpec::default()
    };
    let rendered = render_with(&latest.dir, &source).expect("renders");
    let cm = find(&rendered.objects, "ConfigMap", "my-app-web").expect("rendered");
    assert_eq!(cm["data"]["version"], "2.0.0");

    let err = cache
        .fetch(&server.url, "web", "1.0.0", Some(("ci", "wrong-password")))
        .await
        .expect_err("wrong password");
    let message = err.to_string();
    assert!(matches!(err, RenderError::ChartFetch { .. }), "{err:?}");
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
    // The cached 1.2.0 is not handed to a caller with other credentials either.
    let before = server.requests();
    let err = cache
        .fetch(&server.url, "web", "1.2.0", Some(("ci", "wrong-password")))
        .await
        .expect_err("cache is per credentials");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(server.requests() > before);

    let err = cache
        .fetch(&server.url, "web", "3.0.0", creds)
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("3.0.0"), "{err}");
    let err = cache
        .fetch(&server.url, "nope", "1.0.0", creds)
        .await
        .expect_err("no chart");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn an_archive_not_matching_the_index_digest_is_refused() {
    let repository = packaged_repository(&["1.0.0", "2.0.0"]);
    let served = repository.path().join("served");
    // Replace 2.0.0's archive after indexing: the index's digest no longer matches.
    std::fs::copy(served.join("web-1.0.0.tgz"), served.join("web-2.0.0.tgz")).unwrap();
    let server = ChartServer::start(served, "ci", "s3cret");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = capstan::render::ChartCache::new(cache_dir.path());
    let err = cache
        .fetch(&server.url, "web", "2.0.0", Some(("ci", "s3cret")))
        .await
        .expect_err("digest mismatch");
    assert!(err.to_string().contains("digest"), "{err}");
    // Nothing was cached: the next fetch asks the server again.
    let before = server.requests();
    assert!(
        cache
            .fetch(&server.url, "web", "2.0.0", Some(("ci", "s3cret")))
            .await
            .is_err()
    );
    assert_eq!(server.requests(), before + 2);
    // The untouched version still fetches.
    let ok = cache
        .fetch(&server.url, "web", "1.0.0", Some(("ci", "s3cret")))
        .await
        .expect("good archive");
    assert_eq!(ok.version, "1.0.0");
}

#[test]
fn a_local_dependency_outside_the_repository_is_refused() {
    let (tmp, repo) = chart_repo();
    write(
        tmp.path(),
        "outside-chart/Chart.yaml",
        "apiVersion: v2\nname: common\nversion: 0.1.0\n",
    );
    write(
        &repo,
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../../outside-chart\n",
    );
    let err = render_with(&repo, &helm_source("app", HelmSpec::default())).expect_err("outside");
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err:?}");
    assert!(err.to_string().contains("outside-chart"), "{err}");

    // A missing local dependency beside a remote one: the build would need the network.
    write(
        &repo,
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n  - name: redis\n    version: 1.0.0\n    repository: https://charts.example.com\n",
    );
    write(
        &repo,
        "app/charts/redis/Chart.yaml",
        "apiVersion: v2\nname: redis\nversion: 1.0.0\n",
    );
    let err = render_with(&repo, &helm_source("app", HelmSpec::default())).expect_err("network");
    assert!(matches!(err, RenderError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("\"redis\""), "{err}");
}

#[tokio::test]
async fn credentials_are_sent_only_to_the_repositorys_own_origin() {
    let repository = packaged_repository(&["1.0.0"]);
    let served = repository.path().join("served");
    // The archive lives on another origin (another port), which needs no credentials.
    let elsewhere = ChartServer::serve(served.clone(), None);
    let index = std::fs::read_to_string(served.join("index.yaml")).unwrap();
    assert!(index.contains("- web-1.0.0.tgz"), "{index}");
    let index = index.replace("- web-", &format!("- {}/web-", elsewhere.url));
    let own = tempfile::tempdir().unwrap();
    std::fs::write(own.path().join("index.yaml"), index).unwrap();
    let server = ChartServer::start(own.path().to_path_buf(), "ci", "s3cret");

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = capstan::render::ChartCache::new(cache_dir.path());
    let fetched = cache
        .fetch(&server.url, "web", "1.0.0", Some(("ci", "s3cret")))
        .await
        .expect("fetched from the other origin");
    assert_eq!(fetched.version, "1.0.0");
    assert_eq!(
        server
            .with_credentials
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        elsewhere.requests(),
        1,
        "the archive came from the other origin"
    );
    assert_eq!(
        elsewhere
            .with_credentials
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "credentials leaked to another origin"
    );
}
