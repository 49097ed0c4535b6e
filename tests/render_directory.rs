//! Plain directory sources through `render::render`, as Argo CD's repo-server reads them:
//! unrelated YAML skipped and named, mixed files refused, `List`s, JSON, Jsonnet (compared with
//! the reference `jsonnet` CLI) and every way a Jsonnet program could read outside the checkout.

#[path = "common/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use capstan::render::{
    DirectorySpec, JsonnetSpec, JsonnetVar, Limits, RenderContext, RenderError, Rendered,
    SourceSpec, Tool, ToolSettings, render,
};
use serde_json::{Value, json};

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

fn render_with(
    root: &Path,
    path: &str,
    directory: DirectorySpec,
    limits: Limits,
) -> Result<Rendered, RenderError> {
    let refs = BTreeMap::new();
    let tools = ToolSettings::default();
    let ctx = RenderContext {
        checkout: root,
        app_name: "app",
        namespace: "default",
        refs: &refs,
        tools: &tools,
        limits,
        kube_version: None,
        api_versions: &[],
    };
    let source = SourceSpec {
        path: path.to_string(),
        directory: Some(directory),
        ..SourceSpec::default()
    };
    render(&source, &ctx)
}

fn render_dir(root: &Path, path: &str, directory: DirectorySpec) -> Result<Rendered, RenderError> {
    render_with(root, path, directory, Limits::default())
}

fn names(rendered: &Rendered) -> Vec<String> {
    rendered
        .objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn recurse() -> DirectorySpec {
    DirectorySpec {
        recurse: true,
        ..DirectorySpec::default()
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  selector: {matchLabels: {app: guestbook-ui}}
  template:
    metadata: {labels: {app: guestbook-ui}}
    spec: {containers: [{name: ui, image: 'gcr.io/heptio-images/ks-guestbook-demo:0.2'}]}
";

#[test]
fn a_guestbook_directory_renders_its_manifests_and_names_the_files_it_skipped() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "guestbook/guestbook-ui-deployment.yaml", DEPLOYMENT);
    write(
        root,
        "guestbook/guestbook-ui-svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: guestbook-ui\nspec:\n  ports: [{port: 80}]\n",
    );
    // Helm-style values, a docs file, a JSON-patch fragment and an unparsable notes file that
    // does not look like a manifest: Argo CD ignores all four.
    write(
        root,
        "guestbook/values.yaml",
        "replicaCount: 1\nimage:\n  repository: nginx\n  tag: stable\n",
    );
    write(
        root,
        "guestbook/README.yaml",
        "title: Guestbook\nsections:\n  - deploy it with kubectl\n",
    );
    write(
        root,
        "guestbook/patch.yaml",
        "- op: replace\n  path: /spec/replicas\n  value: 3\n",
    );
    write(root, "guestbook/notes.yml", "todo: [unclosed\n");
    write(root, "guestbook/README.md", "# not read at all\n");

    let rendered = render_dir(root, "guestbook", DirectorySpec::default()).unwrap();
    assert_eq!(
        names(&rendered),
        ["Deployment/guestbook-ui", "Service/guestbook-ui"]
    );
    assert_eq!(rendered.tool, Tool::Directory);
    assert_eq!(rendered.tool_version, "");
    assert_eq!(
        rendered.skipped,
        [
            "guestbook/README.yaml",
            "guestbook/notes.yml",
            "guestbook/patch.yaml",
            "guestbook/values.yaml"
        ]
    );
    let read: Vec<&str> = rendered.files_read.iter().map(String::as_str).collect();
    assert_eq!(
        read,
        [
            "guestbook",
            "guestbook/README.yaml",
            "guestbook/guestbook-ui-deployment.yaml",
            "guestbook/guestbook-ui-svc.yaml",
            "guestbook/notes.yml",
            "guestbook/patch.yaml",
            "guestbook/values.yaml"
        ]
    );
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
}

#[test]
fn a_file_mixing_objects_with_anything_else_is_an_error_naming_file_and_document() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "ok/a.yaml", &cm("a"));

    // An object, then a document that is not one.
    write(root, "m1/a.yaml", &format!("{}---\nfoo: bar\n", cm("x")));
    match render_dir(root, "m1", DirectorySpec::default()) {
        Err(RenderError::NotAnObject { file, index, .. }) => {
            assert_eq!((file.as_str(), index), ("m1/a.yaml", 1));
        }
        other => panic!("{other:?}"),
    }
    // A non-object first, then an object: still mixed.
    write(root, "m2/a.yaml", &format!("foo: bar\n---\n{}", cm("x")));
    match render_dir(root, "m2", DirectorySpec::default()) {
        Err(RenderError::NotAnObject { file, index, .. }) => {
            assert_eq!((file.as_str(), index), ("m2/a.yaml", 0));
        }
        other => panic!("{other:?}"),
    }
    // An object, then a document that does not parse.
    write(
        root,
        "m3/a.yaml",
        &format!("{}---\nkey: [unclosed\n", cm("x")),
    );
    let err = render_dir(root, "m3", DirectorySpec::default()).unwrap_err();
    match &err {
        RenderError::Parse { file, message } => {
            assert_eq!(file, "m3/a.yaml");
            assert!(message.contains("document 1"), "{message}");
            assert!(message.contains("line"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A lone broken document that looks like a manifest is an error, not a skip.
    write(
        root,
        "m4/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
    );
    assert!(matches!(
        render_dir(root, "m4", DirectorySpec::default()),
        Err(RenderError::Parse { file, .. }) if file == "m4/a.yaml"
    ));
    // So is an object missing its name.
    write(
        root,
        "m5/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
    );
    match render_dir(root, "m5", DirectorySpec::default()) {
        Err(RenderError::NotAnObject { file, message, .. }) => {
            assert_eq!(file, "m5/a.yaml");
            assert!(message.contains("metadata.name"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The good file alone renders: the failures above come from the bad files.
    assert_eq!(
        names(&render_dir(root, "ok", DirectorySpec::default()).unwrap()),
        ["ConfigMap/a"]
    );
}

#[test]
fn lists_are_flattened_and_a_list_with_null_items_is_dropped() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "l/a.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s1}\n- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c1}}\n",
    );
    write(
        root,
        "l/b.yaml",
        &format!(
            "apiVersion: v1\nkind: List\nitems:\n---\n{}",
            cm("after-null-list")
        ),
    );
    let rendered = render_dir(root, "l", DirectorySpec::default()).unwrap();
    assert_eq!(
        names(&rendered),
        ["Secret/s1", "ConfigMap/c1", "ConfigMap/after-null-list"]
    );
    assert!(rendered.skipped.is_empty(), "{:?}", rendered.skipped);
}

#[test]
fn json_files_hold_one_object_a_list_or_an_array_of_objects() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "j/a.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"one"}}"#,
    );
    write(
        root,
        "j/b.json",
        r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"arr1"}},
            {"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"arr2"}}]}]"#,
    );
    write(
        root,
        "j/c.json",
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"listed"}}]}"#,
    );
    let rendered = render_dir(root, "j", DirectorySpec::default()).unwrap();
    assert_eq!(
        names(&rendered),
        [
            "ConfigMap/one",
            "ConfigMap/arr1",
            "Secret/arr2",
            "Service/listed"
        ]
    );

    for (text, expect) in [
        (
            r#"{"name": "my-package", "version": "1.0.0"}"#,
            "missing apiVersion",
        ),
        (
            r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}, 1]"#,
            "only objects",
        ),
        (r#""just a string""#, "not a string"),
        (
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}} {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}"#,
            "more than one JSON value",
        ),
        ("{\"a\": ", "invalid JSON"),
    ] {
        write(root, "bad/x.json", text);
        let err = render_dir(root, "bad", DirectorySpec::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("bad/x.json: "), "{message}");
        assert!(message.contains(expect), "{text}: {message}");
    }
}

#[test]
fn recurse_include_and_exclude_select_files_of_every_kind() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "s/a.yaml", &cm("a"));
    write(
        root,
        "s/b.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}"#,
    );
    write(
        root,
        "s/c.jsonnet",
        "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'c'}}",
    );
    write(root, "s/sub/d.yaml", &cm("d"));
    write(
        root,
        "s/sub/e.jsonnet",
        "[{apiVersion: 'v1', kind: 'Secret', metadata: {name: 'e'}}]",
    );
    // Extensions are case-sensitive, as in Argo CD.
    write(root, "s/F.YAML", &cm("upper"));

    let flat = render_dir(root, "s", DirectorySpec::default()).unwrap();
    assert_eq!(names(&flat), ["ConfigMap/a", "ConfigMap/b", "ConfigMap/c"]);
    let deep = render_dir(root, "s", recurse()).unwrap();
    assert_eq!(
        names(&deep),
        [
            "ConfigMap/a",
            "ConfigMap/b",
            "ConfigMap/c",
            "ConfigMap/d",
            "Secret/e"
        ]
    );
    let only_jsonnet = render_dir(
        root,
        "s",
        DirectorySpec {
            include: Some("*.jsonnet".into()),
            ..recurse()
        },
    )
    .unwrap();
    assert_eq!(names(&only_jsonnet), ["ConfigMap/c", "Secret/e"]);
    assert_eq!(only_jsonnet.tool_version, "jrsonnet 0.5.0-pre98");
    let excluded = render_dir(
        root,
        "s",
        DirectorySpec {
            exclude: Some("{sub/*,*.jsonnet}".into()),
            ..recurse()
        },
    )
    .unwrap();
    assert_eq!(names(&excluded), ["ConfigMap/a", "ConfigMap/b"]);
    assert_eq!(excluded.tool_version, "", "no Jsonnet file was evaluated");
}

#[test]
fn a_repeated_object_is_kept_once_with_a_warning() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "d/a.yaml",
        &format!("{}data:\n  v: first\n---\n{}", cm("dup"), cm("other")),
    );
    write(
        root,
        "d/b.yaml",
        &format!("{}data:\n  v: second\n", cm("dup")),
    );
    let rendered = render_dir(root, "d", DirectorySpec::default()).unwrap();
    assert_eq!(names(&rendered), ["ConfigMap/other", "ConfigMap/dup"]);
    assert_eq!(rendered.objects[1]["data"]["v"], "second");
    assert_eq!(rendered.warnings.len(), 1);
    assert_eq!(rendered.warnings[0].condition, "RepeatedResourceWarning");
    assert!(
        rendered.warnings[0].message.contains("/ConfigMap//dup"),
        "{}",
        rendered.warnings[0].message
    );
}

#[test]
fn zero_objects_is_not_an_error_and_the_skipped_files_are_named() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "only-values/values.yaml", "replicaCount: 2\n");
    write(root, "only-values/empty.yaml", "# nothing yet\n");
    let rendered = render_dir(root, "only-values", DirectorySpec::default()).unwrap();
    assert!(rendered.objects.is_empty());
    assert_eq!(
        rendered.skipped,
        ["only-values/empty.yaml", "only-values/values.yaml"]
    );
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let rendered = render_dir(root, "empty", DirectorySpec::default()).unwrap();
    assert!(rendered.objects.is_empty() && rendered.skipped.is_empty());
}

// ---- Jsonnet -------------------------------------------------------------------------------

fn var(name: &str, value: &str, code: bool) -> JsonnetVar {
    JsonnetVar {
        name: name.into(),
        value: value.into(),
        code,
    }
}

fn jsonnet_dir(jsonnet: JsonnetSpec) -> DirectorySpec {
    DirectorySpec {
        jsonnet: Some(jsonnet),
        ..DirectorySpec::default()
    }
}

/// What Debian's jsonnet CLI prints for `file` with the same variables, as Argo CD passes them
/// (the source directory and then the libraries as `-J`), parsed.
fn reference(root: &Path, source: &str, file: &str, spec: &JsonnetSpec) -> Value {
    let cli = tools::require("jsonnet");
    let mut command = Command::new(cli);
    command.current_dir(root).args(["-J", source]);
    for lib in &spec.libs {
        command.args(["-J", lib]);
    }
    for (flag, vars) in [("ext", &spec.ext_vars), ("tla", &spec.tlas)] {
        for v in vars {
            let kind = if v.code { "code" } else { "str" };
            command.arg(format!("--{flag}-{kind}"));
            command.arg(format!("{}={}", v.name, v.value));
        }
    }
    let output = command.arg(format!("{source}/{file}")).output().unwrap();
    assert!(
        output.status.success(),
        "jsonnet CLI: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Renders `source` (holding one `*.jsonnet` file, `file`) and checks the objects equal the
/// reference CLI's output for the same program.
fn assert_parity(root: &Path, source: &str, file: &str, spec: JsonnetSpec) -> Rendered {
    let expected = reference(root, source, file, &spec);
    let rendered = render_dir(root, source, jsonnet_dir(spec)).unwrap();
    let expected = match expected {
        Value::Array(items) => items,
        object => vec![object],
    };
    assert_eq!(rendered.objects, expected);
    rendered
}

const UTIL_LIB: &str = r#"
{
  labels(name, extra):: { app: name } + extra,
  deployment(name, replicas, extra):: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: name, labels: $.labels(name, extra) },
    spec: {
      replicas: replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: $.labels(name, extra) },
        spec: { containers: [{ name: name, image: 'nginx:%s' % std.extVar('tag'), ports: [{ containerPort: 8080 + i } for i in std.range(0, 1)] }] },
      },
    },
  },
}
"#;

fn jsonnet_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "lib/util.libsonnet", UTIL_LIB);
    write(
        root,
        "apps/web/helpers/names.libsonnet",
        "{ full(prefix, n):: std.asciiLower(prefix) + '-' + n }\n",
    );
    write(root, "apps/web/banner.txt", "Welcome to the guestbook\n");
    write(
        root,
        "apps/web/main.jsonnet",
        r#"
local util = import 'util.libsonnet';
local names = import 'helpers/names.libsonnet';
local banner = importstr 'banner.txt';
function(replicas, env='dev', extra={})
  local prefix = std.extVar('prefix');
  local cfg = std.extVar('cfg');
  [util.deployment(names.full(prefix, n), replicas, cfg.labels + extra) for n in ['web', 'api']] + [{
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: names.full(prefix, 'settings'), namespace: env },
    data: {
      banner: std.stripChars(banner, '\n'),
      env: std.asciiUpper(env),
      sorted: std.join(',', std.sort(['b', 'c', 'a'])),
      formatted: std.format('%s-%03d', ['build', 7]),
      encoded: std.base64('guestbook'),
      fields: std.join(',', std.objectFields(cfg.labels)),
      filtered: std.toString(std.filter(function(x) x % 2 == 0, std.range(1, 9))),
      mapped: std.manifestJsonEx(std.mapWithKey(function(k, v) v * 2, { a: 1, b: 2 }), '  '),
      yaml: std.manifestYamlDoc({ key: ['x', 'y'] }),
      parsed: std.toString(std.parseJson('{"n": [1, 2]}').n),
      split: std.toString(std.split('a/b/c', '/')),
      count: std.toString(std.length(std.set([3, 1, 3, 2]))),
    },
  }]
"#,
    );
    repo
}

fn web_spec() -> JsonnetSpec {
    JsonnetSpec {
        ext_vars: vec![
            var("prefix", "Guestbook", false),
            var("tag", "1.27", false),
            var("cfg", "{ labels: { team: 'web', tier: 'front' } }", true),
        ],
        tlas: vec![
            var("replicas", "3", true),
            var("env", "prod", false),
            var("extra", "{ release: 'r' + std.toString(1 + 1) }", true),
        ],
        libs: vec!["lib".into()],
    }
}

#[test]
fn jsonnet_with_tlas_ext_vars_libs_and_imports_matches_the_jsonnet_cli() {
    let repo = jsonnet_repo();
    let root = repo.path();
    let rendered = assert_parity(root, "apps/web", "main.jsonnet", web_spec());
    assert_eq!(
        names(&rendered),
        [
            "Deployment/guestbook-web",
            "Deployment/guestbook-api",
            "ConfigMap/guestbook-settings"
        ]
    );
    // The variables really reached the program (so parity is not two empty outputs agreeing).
    assert_eq!(rendered.objects[0]["spec"]["replicas"], 3);
    assert_eq!(
        rendered.objects[0]["metadata"]["labels"],
        json!({"app": "guestbook-web", "team": "web", "tier": "front", "release": "r2"})
    );
    assert_eq!(rendered.objects[2]["metadata"]["namespace"], "prod");
    assert_eq!(
        rendered.objects[2]["data"]["banner"],
        "Welcome to the guestbook"
    );
    assert_eq!(rendered.tool_version, "jrsonnet 0.5.0-pre98");
    let read: Vec<&str> = rendered.files_read.iter().map(String::as_str).collect();
    assert_eq!(
        read,
        [
            "apps/web",
            "apps/web/banner.txt",
            "apps/web/helpers/names.libsonnet",
            "apps/web/main.jsonnet",
            "lib/util.libsonnet"
        ]
    );
}

#[test]
fn jsonnet_defaults_lists_and_objects_match_the_jsonnet_cli() {
    let repo = jsonnet_repo();
    let root = repo.path();
    // Default TLAs and a single object of kind List as the output.
    write(
        root,
        "apps/list/main.jsonnet",
        r#"
local util = import 'util.libsonnet';
function(count=2, prefix='svc')
  {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: '%s-%d' % [prefix, i], annotations: { index: std.toString(i) } },
        spec: { ports: [{ port: 80 + i, targetPort: 8080 }], selector: util.labels(prefix, {}) },
      }
      for i in std.range(1, count)
    ],
  }
"#,
    );
    let spec = JsonnetSpec {
        ext_vars: vec![var("tag", "unused", false)],
        libs: vec!["lib".into()],
        ..JsonnetSpec::default()
    };
    let expected = reference(root, "apps/list", "main.jsonnet", &spec);
    let rendered = render_dir(root, "apps/list", jsonnet_dir(spec.clone())).unwrap();
    assert_eq!(
        rendered.objects,
        expected["items"].as_array().unwrap().clone()
    );
    assert_eq!(names(&rendered), ["Service/svc-1", "Service/svc-2"]);

    // A TLA given as a string where the program has a default, with a lone object output.
    write(
        root,
        "apps/one/main.jsonnet",
        "function(name='default-name') { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: { n: std.md5(name) } }\n",
    );
    let spec = JsonnetSpec {
        tlas: vec![var("name", "given", false)],
        ..JsonnetSpec::default()
    };
    let rendered = assert_parity(root, "apps/one", "main.jsonnet", spec);
    assert_eq!(names(&rendered), ["ConfigMap/given"]);
}

#[test]
fn importbin_is_read_inside_the_checkout_and_recorded() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    std::fs::create_dir_all(root.join("b")).unwrap();
    std::fs::write(root.join("b/blob.bin"), [0u8, 159, 146, 150]).unwrap();
    write(
        root,
        "b/main.jsonnet",
        "{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bin' }, data: { blob: std.base64(importbin 'blob.bin') } }",
    );
    let rendered = render_dir(root, "b", DirectorySpec::default()).unwrap();
    assert_eq!(rendered.objects[0]["data"]["blob"], "AJ+Slg==");
    assert!(rendered.files_read.contains("b/blob.bin"));
}

/// Asserts the render fails (nothing rendered) with an error naming `path` as leaving the
/// checkout, and that nothing of the outside file shows in the message.
fn assert_escapes(result: Result<Rendered, RenderError>, path: &str) {
    match result {
        Err(RenderError::PathEscapes { path: named }) => assert_eq!(named, path),
        Err(other) => panic!("expected PathEscapes for {path}, got: {other}"),
        Ok(rendered) => panic!(
            "expected PathEscapes for {path}, rendered {:?}",
            rendered.objects
        ),
    }
}

#[test]
fn jsonnet_cannot_read_outside_the_checkout() {
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "secret.libsonnet",
        "{ stolen: 'TOP-SECRET' }",
    );
    write(
        outside.path(),
        "lib/x.libsonnet",
        "{ stolen: 'TOP-SECRET' }",
    );
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    let object = |expr: &str| {
        format!(
            "{{ apiVersion: 'v1', kind: 'ConfigMap', metadata: {{ name: 'x' }}, data: {{ v: std.toString({expr}) }} }}"
        )
    };

    write(
        root,
        "up/main.jsonnet",
        &object("importstr '../../../../../../../../etc/passwd'"),
    );
    assert_escapes(
        render_dir(root, "up", DirectorySpec::default()),
        "../../../../../../../../etc/passwd",
    );
    write(
        root,
        "up2/main.jsonnet",
        &object("import '../../x.libsonnet'"),
    );
    assert_escapes(
        render_dir(root, "up2", DirectorySpec::default()),
        "../../x.libsonnet",
    );

    let absolute = outside
        .path()
        .join("secret.libsonnet")
        .display()
        .to_string();
    write(
        root,
        "abs/main.jsonnet",
        &object(&format!("import '{absolute}'")),
    );
    assert_escapes(render_dir(root, "abs", DirectorySpec::default()), &absolute);
    write(
        root,
        "etc/main.jsonnet",
        &object("importstr '/etc/hostname'"),
    );
    assert_escapes(
        render_dir(root, "etc", DirectorySpec::default()),
        "/etc/hostname",
    );

    // A symlink inside the repository pointing outside it.
    write(
        root,
        "link/main.jsonnet",
        &object("import 'leak.libsonnet'"),
    );
    std::os::unix::fs::symlink(
        outside.path().join("secret.libsonnet"),
        root.join("link/leak.libsonnet"),
    )
    .unwrap();
    assert_escapes(
        render_dir(root, "link", DirectorySpec::default()),
        "leak.libsonnet",
    );

    // Libraries outside the repository, by path or through a symlink.
    write(root, "libs/main.jsonnet", &object("import 'x.libsonnet'"));
    for lib in ["../outside", "/etc", "lib/../.."] {
        let spec = jsonnet_dir(JsonnetSpec {
            libs: vec![lib.into()],
            ..JsonnetSpec::default()
        });
        assert_escapes(render_dir(root, "libs", spec), lib);
    }
    std::os::unix::fs::symlink(outside.path().join("lib"), root.join("outside-lib")).unwrap();
    let spec = jsonnet_dir(JsonnetSpec {
        libs: vec!["outside-lib".into()],
        ..JsonnetSpec::default()
    });
    assert_escapes(render_dir(root, "libs", spec), "outside-lib");

    // Code in a TLA or an extVar is confined too.
    write(
        root,
        "tla/main.jsonnet",
        &format!("function(v) {}", object("v")),
    );
    let spec = jsonnet_dir(JsonnetSpec {
        tlas: vec![var("v", "import '../x.libsonnet'", true)],
        ..JsonnetSpec::default()
    });
    assert_escapes(render_dir(root, "tla", spec), "../x.libsonnet");

    // The same programs read files inside the repository (so the refusals above are about
    // leaving it, not about imports failing in general).
    write(root, "inside/lib/x.libsonnet", "{ ok: 'inside' }");
    write(
        root,
        "inside/app/main.jsonnet",
        &object("(import '../lib/x.libsonnet').ok"),
    );
    let rendered = render_dir(root, "inside/app", DirectorySpec::default()).unwrap();
    assert_eq!(rendered.objects[0]["data"]["v"], "inside");
    write(root, "inside/lib2/x.libsonnet", "{ ok: 'from lib' }");
    std::os::unix::fs::symlink(
        root.join("inside/lib2/x.libsonnet"),
        root.join("inside/link.libsonnet"),
    )
    .unwrap();
    write(
        root,
        "inside/app2/main.jsonnet",
        &object("(import 'x.libsonnet').ok + (import '../link.libsonnet').ok"),
    );
    let spec = jsonnet_dir(JsonnetSpec {
        libs: vec!["inside/lib2".into()],
        ..JsonnetSpec::default()
    });
    let rendered = render_dir(root, "inside/app2", spec).unwrap();
    assert_eq!(rendered.objects[0]["data"]["v"], "from libfrom lib");
}

#[test]
fn jsonnet_errors_are_readable_and_render_nothing() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    let root_text = root.canonicalize().unwrap().display().to_string();
    write(root, "ok/a.yaml", &cm("fine"));

    // Runaway recursion hits the stack depth limit instead of crashing the worker.
    write(root, "ok/z.jsonnet", "local f(x) = f(x + 1) + 1; f(0)");
    match render_dir(root, "ok", DirectorySpec::default()) {
        Err(RenderError::Jsonnet { file, message }) => {
            assert_eq!(file, "ok/z.jsonnet");
            assert!(message.contains("stack overflow"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    write(root, "ok/z.jsonnet", "local o = { a: o.a + 1 }; o.a");
    assert!(matches!(
        render_dir(root, "ok", DirectorySpec::default()),
        Err(RenderError::Jsonnet { .. })
    ));

    // A runtime error names the file and the line, with paths relative to the checkout.
    write(
        root,
        "ok/z.jsonnet",
        "{\n  a: error 'boom: replicas must be set',\n}",
    );
    match render_dir(root, "ok", DirectorySpec::default()) {
        Err(RenderError::Jsonnet { file, message }) => {
            assert_eq!(file, "ok/z.jsonnet");
            assert!(message.contains("boom: replicas must be set"), "{message}");
            assert!(message.contains("ok/z.jsonnet:2"), "{message}");
            assert!(!message.contains(&root_text), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A missing import and a syntax error.
    write(root, "ok/z.jsonnet", "import 'nope.libsonnet'");
    let err = render_dir(root, "ok", DirectorySpec::default()).unwrap_err();
    assert!(err.to_string().contains("nope.libsonnet"), "{err}");
    assert!(!err.to_string().contains(&root_text), "{err}");
    write(root, "ok/z.jsonnet", "{ a: }");
    assert!(matches!(
        render_dir(root, "ok", DirectorySpec::default()),
        Err(RenderError::Jsonnet { file, .. }) if file == "ok/z.jsonnet"
    ));

    // Outputs that are not objects.
    for (program, expect) in [
        ("'just a string'", "not a string"),
        ("42", "not a number"),
        (
            "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }, 'x']",
            "only objects",
        ),
        (
            "{ apiVersion: 'v1', kind: 'ConfigMap' }",
            "missing metadata",
        ),
    ] {
        write(root, "ok/z.jsonnet", program);
        let err = render_dir(root, "ok", DirectorySpec::default()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("ok/z.jsonnet: "),
            "{program}: {message}"
        );
        assert!(message.contains(expect), "{program}: {message}");
    }

    // Imports are charged to the source's file-size budget.
    write(
        root,
        "ok/z.jsonnet",
        "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big' }, data: { v: importstr 'big.txt' } }",
    );
    write(root, "ok/big.txt", &"x".repeat(4096));
    let limits = Limits {
        max_file_bytes: 2048,
        ..Limits::default()
    };
    match render_with(root, "ok", DirectorySpec::default(), limits) {
        Err(RenderError::TooLarge { what, limit }) => {
            assert!(what.contains("ok/big.txt"), "{what}");
            assert_eq!(limit, 2048);
        }
        other => panic!("{other:?}"),
    }
    // The same program with the import within the limit renders.
    let rendered = render_dir(root, "ok", DirectorySpec::default()).unwrap();
    assert_eq!(names(&rendered), ["ConfigMap/fine", "ConfigMap/big"]);
}
