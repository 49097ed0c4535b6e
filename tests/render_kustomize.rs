//! Kustomize sources render as `kubectl kustomize` renders them (Argo CD parity), overrides from
//! `source.kustomize` mean what the same fields written in the kustomization mean, the checkout
//! is never written, and anything reaching outside the repository is refused before a tool runs.

#[path = "common/tools.rs"]
mod tools;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use capstan::render::{
    KustomizeReplica, KustomizeSpec, Limits, RenderContext, RenderError, Rendered, ReplicaCount,
    SourceSpec, Tool, ToolSettings, parse_manifests, render,
};
use serde_json::{Value, json};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Settings that use `kubectl kustomize` (no kustomize binary by this name exists).
fn kubectl_settings() -> ToolSettings {
    ToolSettings {
        kustomize: "capstan-test-no-such-kustomize".into(),
        kubectl: tools::require("kubectl").to_string_lossy().into_owned(),
        ..ToolSettings::default()
    }
}

fn render_with(
    repo: &Path,
    path: &str,
    kustomize: Option<KustomizeSpec>,
    settings: &ToolSettings,
) -> Result<Rendered, RenderError> {
    let refs = BTreeMap::new();
    let ctx = RenderContext {
        checkout: repo,
        app_name: "app",
        namespace: "default",
        refs: &refs,
        tools: settings,
        limits: Limits::default(),
        kube_version: None,
        api_versions: &[],
    };
    let source = SourceSpec {
        path: path.into(),
        kustomize,
        ..SourceSpec::default()
    };
    render(&source, &ctx)
}

fn render_at(repo: &Path, path: &str, kustomize: Option<KustomizeSpec>) -> Rendered {
    render_with(repo, path, kustomize, &kubectl_settings())
        .unwrap_or_else(|e| panic!("rendering {path}: {e}"))
}

/// What `kubectl kustomize` prints for `dir`, parsed.
fn kubectl_kustomize(dir: &Path) -> Vec<Value> {
    let out = std::process::Command::new(tools::require("kubectl"))
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_manifests("kubectl output", &String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef:
            name: web-config
      - name: sidecar
        image: busybox:1.35
"#;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
"#;

/// A repository with a base, a component and prod/staging overlays using strategic-merge and
/// JSON 6902 patches (current and deprecated fields), generators and components.
fn overlay_repo(base_kustomization: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "base/kustomization.yaml", base_kustomization);
    write(root, "base/deployment.yaml", DEPLOYMENT);
    write(root, "base/service.yaml", SERVICE);
    write(root, "base/config/app.properties", "greeting=hello\n");
    write(root, "base/config/extra.env", "LEVEL=info\n");
    write(
        root,
        "components/monitoring/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- monitor.yaml\n\
         patches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /metadata/annotations\n      value: {monitored: \"true\"}\n",
    );
    write(
        root,
        "components/monitoring/monitor.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: monitor\ndata:\n  scrape: /metrics\n",
    );
    write(
        root,
        "overlays/prod/kustomization.yaml",
        r#"resources:
- ../../base
components:
- ../../components/monitoring
namePrefix: prod-
namespace: prod
images:
- name: nginx
  newTag: "1.10"
patches:
- path: replicas.yaml
- path: port.json
  target:
    kind: Service
    name: web
secretGenerator:
- name: db
  literals:
  - password=s3cret
"#,
    );
    write(
        root,
        "overlays/prod/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
    );
    write(
        root,
        "overlays/prod/port.json",
        r#"[{"op": "replace", "path": "/spec/ports/0/port", "value": 8080}]"#,
    );
    write(
        root,
        "overlays/staging/kustomization.yml",
        r#"bases:
- ../../base
nameSuffix: -staging
patchesStrategicMerge:
- replicas.yaml
patchesJson6902:
- target:
    group: apps
    version: v1
    kind: Deployment
    name: web
  path: json-patch.yaml
configMapGenerator:
- name: web-config
  behavior: merge
  literals:
  - MODE=staging
"#,
    );
    write(
        root,
        "overlays/staging/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
    );
    write(
        root,
        "overlays/staging/json-patch.yaml",
        "- op: add\n  path: /spec/template/spec/containers/0/args\n  value: [\"--staging\"]\n",
    );
    write(
        root,
        "unrelated/notes.txt",
        "not part of any kustomization\n",
    );
    repo
}

const BASE: &str = r#"resources:
- deployment.yaml
- service.yaml
commonLabels:
  app: web
configMapGenerator:
- name: web-config
  files:
  - config/app.properties
  envs:
  - config/extra.env
"#;

#[test]
fn overlays_render_exactly_as_kubectl_kustomize_does() {
    let repo = overlay_repo(BASE);
    let root = repo.path();

    let prod = render_at(root, "overlays/prod", None);
    assert_eq!(prod.tool, Tool::Kustomize);
    assert_eq!(prod.objects, kubectl_kustomize(&root.join("overlays/prod")));
    // Rule out two equally broken outputs: the overlay's patches, generators and component
    // all took effect.
    let deployment = find(&prod.objects, "Deployment", "prod-web");
    assert_eq!(deployment["metadata"]["namespace"], "prod");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["metadata"]["annotations"]["monitored"], "true");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.10"
    );
    assert_eq!(
        find(&prod.objects, "Service", "prod-web")["spec"]["ports"][0]["port"],
        8080
    );
    assert!(prod.objects.iter().any(|o| o["kind"] == "Secret"));
    assert!(find(&prod.objects, "ConfigMap", "prod-monitor")["data"]["scrape"] == "/metrics");

    let staging = render_at(root, "overlays/staging", None);
    assert_eq!(
        staging.objects,
        kubectl_kustomize(&root.join("overlays/staging"))
    );
    let deployment = find(&staging.objects, "Deployment", "web-staging");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--staging"])
    );
    let config = staging
        .objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .unwrap();
    assert_eq!(config["data"]["MODE"], "staging");
    assert_eq!(config["data"]["LEVEL"], "info");
    assert_eq!(config["data"]["app.properties"], "greeting=hello\n");
}

#[test]
fn files_read_names_every_file_the_overlay_uses_and_nothing_else() {
    let repo = overlay_repo(BASE);
    let prod = render_at(repo.path(), "overlays/prod", None);
    let read: BTreeSet<&str> = prod.files_read.iter().map(String::as_str).collect();
    for expected in [
        "overlays/prod/kustomization.yaml",
        "overlays/prod/replicas.yaml",
        "overlays/prod/port.json",
        "base",
        "base/kustomization.yaml",
        "base/deployment.yaml",
        "base/service.yaml",
        "base/config/app.properties",
        "base/config/extra.env",
        "components/monitoring",
        "components/monitoring/kustomization.yaml",
        "components/monitoring/monitor.yaml",
    ] {
        assert!(read.contains(expected), "{expected} missing from {read:?}");
    }
    assert!(
        !read
            .iter()
            .any(|f| f.starts_with("overlays/staging") || f.starts_with("unrelated")),
        "{read:?}"
    );
    assert!(
        !prod.tool_version.is_empty(),
        "the kustomize version is reported"
    );
    assert!(prod.tool_version.starts_with('v'), "{}", prod.tool_version);
}

/// Every file under `root` with its bytes (symlinks as their targets).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, target.to_string_lossy().as_bytes().to_vec());
            } else if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                pending.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn every_override() -> KustomizeSpec {
    KustomizeSpec {
        name_prefix: Some("pre-".into()),
        name_suffix: Some("-suf".into()),
        images: vec![
            "nginx=registry.example/nginx:1.10".into(),
            "busybox:1.36".into(),
        ],
        common_labels: BTreeMap::from([("team".into(), "payments".into())]),
        common_annotations: BTreeMap::from([("owner".into(), "sre".into())]),
        namespace: Some("ovr".into()),
        replicas: vec![KustomizeReplica {
            name: "web".into(),
            count: ReplicaCount::Text("4".into()),
        }],
        patches: vec![json!({
            "target": {"kind": "Service"},
            "patch": "- op: add\n  path: /metadata/annotations/patched\n  value: \"yes\"\n",
        })],
        components: vec!["../components/monitoring".into()],
        ..KustomizeSpec::default()
    }
}

#[test]
fn every_override_means_what_the_same_fields_written_in_the_kustomization_mean() {
    let repo = overlay_repo(BASE);
    let before = snapshot(repo.path());
    let rendered = render_at(repo.path(), "base", Some(every_override()));
    // The same fields written literally, as `kustomize edit` would leave them.
    let literal = overlay_repo(&format!(
        "{BASE}namePrefix: pre-\nnameSuffix: -suf\nimages:\n- name: busybox\n  newTag: \"1.36\"\n\
         - name: nginx\n  newName: registry.example/nginx\n  newTag: \"1.10\"\n\
         replicas:\n- name: web\n  count: 4\n\
         commonAnnotations:\n  owner: sre\nnamespace: ovr\n\
         patches:\n- target:\n    kind: Service\n  patch: |\n    - op: add\n      path: /metadata/annotations/patched\n      value: \"yes\"\n\
         components:\n- ../components/monitoring\n"
    ));
    let mut literal_text =
        std::fs::read_to_string(literal.path().join("base/kustomization.yaml")).unwrap();
    literal_text = literal_text.replace(
        "commonLabels:\n  app: web\n",
        "commonLabels:\n  app: web\n  team: payments\n",
    );
    write(literal.path(), "base/kustomization.yaml", &literal_text);
    let expected = kubectl_kustomize(&literal.path().join("base"));
    assert_eq!(rendered.objects, expected);

    let deployment = find(&rendered.objects, "Deployment", "pre-web-suf");
    assert_eq!(deployment["metadata"]["namespace"], "ovr");
    assert_eq!(deployment["spec"]["replicas"], 4);
    assert_eq!(deployment["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["team"],
        "payments"
    );
    assert_eq!(deployment["metadata"]["annotations"]["owner"], "sre");
    assert_eq!(deployment["metadata"]["annotations"]["monitored"], "true");
    let containers = &deployment["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "registry.example/nginx:1.10");
    assert_eq!(containers[1]["image"], "busybox:1.36");
    assert_eq!(
        find(&rendered.objects, "Service", "pre-web-suf")["metadata"]["annotations"]["patched"],
        "yes"
    );

    assert_eq!(
        snapshot(repo.path()),
        before,
        "rendering with overrides changed the checkout"
    );
}

#[test]
fn labels_without_selector_and_forced_labels_and_annotations_match_their_literal_form() {
    let base = format!("{BASE}commonAnnotations:\n  owner: dev\n");
    let repo = overlay_repo(&base);
    let spec = KustomizeSpec {
        common_labels: BTreeMap::from([("tier".into(), "front".into())]),
        label_without_selector: true,
        label_include_templates: true,
        common_annotations: BTreeMap::from([("owner".into(), "sre".into())]),
        force_common_annotations: true,
        ..KustomizeSpec::default()
    };
    let rendered = render_at(repo.path(), "base", Some(spec.clone()));
    let literal = overlay_repo(&format!(
        "{BASE}commonAnnotations:\n  owner: sre\nlabels:\n- pairs:\n    tier: front\n  includeTemplates: true\n"
    ));
    assert_eq!(
        rendered.objects,
        kubectl_kustomize(&literal.path().join("base"))
    );
    let deployment = find(&rendered.objects, "Deployment", "web");
    assert_eq!(deployment["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["tier"],
        "front"
    );
    assert!(
        deployment["spec"]["selector"]["matchLabels"]
            .get("tier")
            .is_none()
    );
    assert_eq!(deployment["metadata"]["annotations"]["owner"], "sre");

    // Without force, replacing an annotation the kustomization sets is refused, as Argo CD's
    // `kustomize edit add annotation` refuses it.
    let unforced = KustomizeSpec {
        force_common_annotations: false,
        ..spec
    };
    let err = render_with(repo.path(), "base", Some(unforced), &kubectl_settings()).unwrap_err();
    assert!(
        err.to_string().contains("owner") && err.to_string().contains("forceCommonAnnotations"),
        "{err}"
    );
}

#[test]
fn each_kustomization_file_name_is_detected_through_render() {
    for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
        let repo = tempfile::tempdir().unwrap();
        write(
            repo.path(),
            &format!("app/{name}"),
            "resources:\n- svc.yaml\nnamePrefix: k-\n",
        );
        write(repo.path(), "app/svc.yaml", SERVICE);
        let rendered = render_at(repo.path(), "app", None);
        assert_eq!(rendered.tool, Tool::Kustomize, "{name}");
        assert_eq!(
            rendered.objects,
            kubectl_kustomize(&repo.path().join("app")),
            "{name}"
        );
        assert_eq!(rendered.objects[0]["metadata"]["name"], "k-web", "{name}");
        assert!(
            rendered.files_read.contains(&format!("app/{name}")),
            "{name}"
        );
    }
}

/// Settings whose `kustomize` is a script that leaves a mark when run.
fn marking_settings(marker: &Path, dir: &Path) -> ToolSettings {
    let script = dir.join("kustomize");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    ToolSettings {
        kustomize: script.to_string_lossy().into_owned(),
        ..ToolSettings::default()
    }
}

/// Renders `overlays/app` whose kustomization is `kustomization`, expecting an error before any
/// tool runs.
fn refused(setup: impl Fn(&Path), kustomization: &str) -> RenderError {
    let sandbox = tempfile::tempdir().unwrap();
    let repo = sandbox.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    // A valid kustomization outside the repository, which a tool would happily render.
    write(
        sandbox.path(),
        "outside/kustomization.yaml",
        "resources:\n- secret.yaml\n",
    );
    write(
        sandbox.path(),
        "outside/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n",
    );
    write(&repo, "overlays/app/kustomization.yaml", kustomization);
    setup(sandbox.path());
    let marker = sandbox.path().join("tool-ran");
    let settings = marking_settings(&marker, sandbox.path());
    let err = render_with(&repo, "overlays/app", None, &settings).expect_err("refused");
    assert!(!marker.exists(), "a tool ran before the refusal: {err}");
    err
}

#[test]
fn paths_leaving_the_repository_and_remote_bases_are_refused_before_any_tool_runs() {
    let err = refused(|_| {}, "resources:\n- ../../../outside\n");
    let text = err.to_string();
    assert!(
        text.contains("overlays/app/kustomization.yaml")
            && text.contains("../../../outside")
            && text.contains("leaves the repository"),
        "{text}"
    );

    let err = refused(|_| {}, "resources:\n- /etc/passwd\n");
    assert!(
        err.to_string().contains("\"/etc/passwd\"") && err.to_string().contains("absolute"),
        "{err}"
    );

    let err = refused(
        |sandbox| {
            std::os::unix::fs::symlink(
                sandbox.join("outside"),
                sandbox.join("repo/overlays/app/base"),
            )
            .unwrap();
        },
        "resources:\n- base\n",
    );
    assert!(
        err.to_string().contains("\"base\"") && err.to_string().contains("symbolic link"),
        "{err}"
    );

    // A file inside a base may not leave the repository either.
    let err = refused(
        |sandbox| {
            write(
                &sandbox.join("repo"),
                "base/kustomization.yaml",
                "configMapGenerator:\n- name: c\n  files:\n  - ../../outside/secret.yaml\n",
            );
        },
        "resources:\n- ../../base\n",
    );
    assert!(
        err.to_string().contains("base/kustomization.yaml")
            && err.to_string().contains("configMapGenerator"),
        "{err}"
    );

    for remote in [
        "github.com/kubernetes-sigs/kustomize/examples/helloWorld?ref=v3.3.1",
        "https://github.com/org/repo//deploy?ref=main",
        "git@github.com:org/repo.git",
        "github.com/org/repo/deploy",
    ] {
        let err = refused(|_| {}, &format!("resources:\n- {remote}\n"));
        assert!(
            matches!(err, RenderError::Unsupported { .. }),
            "{remote}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(remote) && text.contains("remote") && text.contains("vendor"),
            "{text}"
        );
    }

    let err = refused(
        |_| {},
        "helmCharts:\n- name: x\n  repo: https://charts.example\n",
    );
    assert!(err.to_string().contains("helmCharts"), "{err}");
}

#[test]
fn a_broken_kustomization_fails_with_kubectls_message() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "app/kustomization.yaml",
        "resources:\n- svc.yaml\npatches:\n- path: patch.yaml\n",
    );
    write(repo.path(), "app/svc.yaml", SERVICE);
    write(
        repo.path(),
        "app/patch.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: missing\nspec:\n  type: NodePort\n",
    );
    let err = render_with(repo.path(), "app", None, &kubectl_settings()).unwrap_err();
    assert!(matches!(err, RenderError::ToolFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("no resource matches"), "{err}");

    write(
        repo.path(),
        "app/kustomization.yaml",
        "resources:\n- absent.yaml\n",
    );
    let err = render_with(repo.path(), "app", None, &kubectl_settings()).unwrap_err();
    assert!(
        err.to_string().contains("app/kustomization.yaml")
            && err.to_string().contains("\"absent.yaml\"")
            && err.to_string().contains("does not exist"),
        "{err}"
    );
}

#[test]
fn a_missing_override_component_fails_unless_ignored() {
    let repo = overlay_repo(BASE);
    let spec = KustomizeSpec {
        components: vec!["../components/absent".into()],
        ..KustomizeSpec::default()
    };
    let err =
        render_with(repo.path(), "base", Some(spec.clone()), &kubectl_settings()).unwrap_err();
    assert!(
        err.to_string().contains("../components/absent")
            && err.to_string().contains("ignoreMissingComponents"),
        "{err}"
    );

    let ignored = KustomizeSpec {
        components: vec![
            "../components/absent".into(),
            "../components/monitoring".into(),
        ],
        ignore_missing_components: true,
        ..spec
    };
    let rendered = render_at(repo.path(), "base", Some(ignored));
    // The existing component applied, the missing one skipped.
    let literal = overlay_repo(&format!("{BASE}components:\n- ../components/monitoring\n"));
    assert_eq!(
        rendered.objects,
        kubectl_kustomize(&literal.path().join("base"))
    );
    assert!(
        rendered
            .objects
            .iter()
            .any(|o| o["metadata"]["name"] == "monitor")
    );
}

#[test]
fn a_symlinked_base_inside_the_repository_renders_with_and_without_overrides() {
    let repo = overlay_repo(BASE);
    let root = repo.path();
    write(
        root,
        "overlays/linked/kustomization.yaml",
        "resources:\n- base-link\n",
    );
    std::os::unix::fs::symlink("../../base", root.join("overlays/linked/base-link")).unwrap();

    let plain = render_at(root, "overlays/linked", None);
    assert_eq!(
        plain.objects,
        kubectl_kustomize(&root.join("overlays/linked"))
    );
    assert!(plain.files_read.contains("overlays/linked/base-link"));
    assert!(plain.files_read.contains("base/deployment.yaml"));

    let spec = KustomizeSpec {
        name_prefix: Some("l-".into()),
        ..KustomizeSpec::default()
    };
    let before = snapshot(root);
    let prefixed = render_at(root, "overlays/linked", Some(spec));
    write(
        root,
        "overlays/literal/kustomization.yaml",
        "resources:\n- ../linked/base-link\nnamePrefix: l-\n",
    );
    assert_eq!(
        prefixed.objects,
        kubectl_kustomize(&root.join("overlays/literal"))
    );
    assert!(
        prefixed
            .objects
            .iter()
            .any(|o| o["metadata"]["name"] == "l-web")
    );
    let mut after = snapshot(root);
    after.retain(|path, _| !path.starts_with("overlays/literal"));
    assert_eq!(after, before);
}

#[test]
fn without_kustomize_or_kubectl_the_error_says_how_to_install_them() {
    let repo = overlay_repo(BASE);
    let settings = ToolSettings {
        kustomize: "capstan-test-no-such-kustomize".into(),
        kubectl: "capstan-test-no-such-kubectl".into(),
        ..ToolSettings::default()
    };
    let err = render_with(repo.path(), "base", None, &settings).unwrap_err();
    assert!(matches!(err, RenderError::ToolMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("install kubectl"), "{err}");
}

#[test]
fn an_override_patch_file_is_used_from_the_repository_and_confined_to_it() {
    let repo = overlay_repo(BASE);
    write(
        repo.path(),
        "base/patches/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n",
    );
    let spec = KustomizeSpec {
        patches: vec![json!({"path": "patches/replicas.yaml"})],
        ..KustomizeSpec::default()
    };
    let rendered = render_at(repo.path(), "base", Some(spec));
    assert_eq!(
        find(&rendered.objects, "Deployment", "web")["spec"]["replicas"],
        5
    );
    assert!(rendered.files_read.contains("base/patches/replicas.yaml"));

    let escaping = KustomizeSpec {
        patches: vec![json!({"path": "../../etc/passwd"})],
        ..KustomizeSpec::default()
    };
    let err = render_with(repo.path(), "base", Some(escaping), &kubectl_settings()).unwrap_err();
    assert!(
        err.to_string().contains("source.kustomize") && err.to_string().contains("leaves"),
        "{err}"
    );
}

#[test]
fn overrides_copy_only_the_files_the_graph_names_and_remove_the_copy_afterwards() {
    let repo = overlay_repo(BASE);
    let sandbox = tempfile::tempdir().unwrap();
    let listing = sandbox.path().join("listing");
    let cwd = sandbox.path().join("cwd");
    // A stand-in kustomize that records the tree it was run in.
    let script = sandbox.path().join("kustomize");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = build ]; then pwd > '{}'; find . -type f | sort > '{}'; fi\n\
             printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: fake\\n'\n",
            cwd.display(),
            listing.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let settings = ToolSettings {
        kustomize: script.to_string_lossy().into_owned(),
        ..ToolSettings::default()
    };
    let spec = KustomizeSpec {
        name_prefix: Some("p-".into()),
        components: vec!["../components/monitoring".into()],
        ..KustomizeSpec::default()
    };
    let rendered = render_with(repo.path(), "base", Some(spec), &settings).unwrap();
    assert_eq!(rendered.objects[0]["metadata"]["name"], "fake");
    let listed = std::fs::read_to_string(&listing).unwrap();
    let files: Vec<&str> = listed.lines().collect();
    assert_eq!(
        files,
        [
            "./base/config/app.properties",
            "./base/config/extra.env",
            "./base/deployment.yaml",
            "./base/kustomization.yaml",
            "./base/service.yaml",
            "./components/monitoring/kustomization.yaml",
            "./components/monitoring/monitor.yaml",
        ]
    );
    let copy = std::fs::read_to_string(&cwd).unwrap();
    assert!(
        !Path::new(copy.trim()).exists(),
        "the private copy {copy} is left behind"
    );
    assert!(
        !Path::new(copy.trim()).starts_with(repo.path()),
        "the copy is outside the checkout"
    );
}
