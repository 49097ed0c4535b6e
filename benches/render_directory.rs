//! Directory render figures (a bench binary; `cargo bench --bench render_directory`): the render
//! of a 1,000-object directory (ms and objects/s), and in-process jrsonnet against Debian's
//! `jsonnet` CLI on the same program: a realistic one (200 Deployments and Services built with
//! std functions), where the CLI's process start-up counts as Argo CD pays it, and the same
//! program generating 600 of each, where evaluation dominates; the CLI's bare start-up is
//! printed too. Medians over ROUNDS runs (the C++ CLI takes seconds per run here).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use capstan::render::{
    DirectorySpec, JsonnetSpec, JsonnetVar, Limits, RenderContext, SourceSpec, ToolSettings,
    find_program, render,
};
use serde_json::Value;

const ROUNDS: usize = 3;
const OBJECTS: usize = 1_000;

/// 200 Deployments and their Services, parameterised by a TLA, with the std functions real
/// libraries use (format, map, join, objectFields, mergePatch, manifestJsonEx).
const REALISTIC: &str = r#"
function(count=200, image='nginx')
  local labels(n) = { app: 'svc-%03d' % n, tier: if n % 2 == 0 then 'front' else 'back' };
  local deployment(n) = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'svc-%03d' % n, labels: labels(n), annotations: { config: std.manifestJsonEx({ n: n }, ' ') } },
    spec: std.mergePatch({
      replicas: 1 + n % 3,
      selector: { matchLabels: labels(n) },
      template: {
        metadata: { labels: labels(n) },
        spec: { containers: [{
          name: 'main',
          image: '%s:1.%d' % [image, n % 30],
          env: [{ name: std.asciiUpper(k), value: std.toString(labels(n)[k]) } for k in std.objectFields(labels(n))],
          args: std.map(function(i) '--flag-%d' % i, std.range(1, 5)),
        }] },
      },
    }, { template: { metadata: { annotations: { joined: std.join(',', std.objectFields(labels(n))) } } } }),
  };
  local service(n) = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'svc-%03d' % n, labels: labels(n) },
    spec: { selector: labels(n), ports: [{ port: 80, targetPort: 8080 + (n % 4) }] },
  };
  std.flattenArrays([[deployment(n), service(n)] for n in std.range(1, count)])
"#;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn render_source(root: &Path, path: &str, directory: DirectorySpec) -> Vec<Value> {
    let refs = BTreeMap::new();
    let tools = ToolSettings::default();
    let ctx = RenderContext {
        checkout: root,
        app_name: "bench",
        namespace: "default",
        refs: &refs,
        tools: &tools,
        limits: Limits::default(),
        kube_version: None,
        api_versions: &[],
    };
    let source = SourceSpec {
        path: path.into(),
        directory: Some(directory),
        ..SourceSpec::default()
    };
    match render(&source, &ctx) {
        Ok(rendered) => rendered.objects,
        Err(err) => panic!("render of {path} failed: {err}"),
    }
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create directory");
    }
    std::fs::write(path, text).expect("write file");
}

/// 100 files of 10 objects each: Deployments, Services and ConfigMaps as they are written.
fn directory_of_objects(root: &Path) {
    for file in 0..OBJECTS / 10 {
        let mut text = String::new();
        for i in 0..10 {
            let n = file * 10 + i;
            text.push_str(&match n % 3 {
                0 => format!(
                    "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{n}\n  labels: {{app: web-{n}}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web-{n}}}\n  template:\n    metadata:\n      labels: {{app: web-{n}}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        ports:\n        - containerPort: 8080\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n"
                ),
                1 => format!(
                    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web-{n}\nspec:\n  selector: {{app: web-{n}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
                ),
                _ => format!(
                    "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{n}\ndata:\n  LOG_LEVEL: info\n  FEATURE_FLAGS: \"a,b,c\"\n  config.json: '{{\"n\": {n}}}'\n"
                ),
            });
        }
        write(&root.join(format!("plain/file-{file:03}.yaml")), &text);
    }
}

fn jsonnet_spec(count: usize) -> JsonnetSpec {
    JsonnetSpec {
        tlas: vec![JsonnetVar {
            name: "count".into(),
            value: count.to_string(),
            code: true,
        }],
        ..JsonnetSpec::default()
    }
}

/// Times `jsonnet` as Argo CD would pay for it: one process per evaluation.
fn time_cli(cli: &Path, root: &Path, file: &str, count: usize) -> (Duration, Value) {
    let start = Instant::now();
    let output = Command::new(cli)
        .current_dir(root)
        .args(["-J", "js", "--tla-code", &format!("count={count}"), file])
        .output()
        .expect("run jsonnet");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "jsonnet: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        elapsed,
        serde_json::from_slice(&output.stdout).expect("jsonnet printed JSON"),
    )
}

fn compare(cli: &Path, root: &Path, label: &str, count: usize) {
    let mut ours = Vec::new();
    let mut objects = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        objects = render_source(
            root,
            "js",
            DirectorySpec {
                jsonnet: Some(jsonnet_spec(count)),
                ..DirectorySpec::default()
            },
        );
        ours.push(start.elapsed());
    }
    let mut theirs = Vec::new();
    let mut expected = Value::Null;
    for _ in 0..ROUNDS {
        let (elapsed, value) = time_cli(cli, root, "js/realistic.jsonnet", count);
        theirs.push(elapsed);
        expected = value;
    }
    assert_eq!(
        Value::Array(objects.clone()),
        expected,
        "{label}: jrsonnet and the jsonnet CLI disagree"
    );
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "{label}: {} objects; jrsonnet in process {:.1} ms, jsonnet CLI (process) {:.1} ms; CLI/jrsonnet = {:.1}x",
        objects.len(),
        ms(ours),
        ms(theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

fn main() {
    let repo = tempfile::tempdir().expect("temporary directory");
    let root = repo.path();
    directory_of_objects(root);
    write(&root.join("js/realistic.jsonnet"), REALISTIC);

    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let objects = render_source(root, "plain", DirectorySpec::default());
        samples.push(start.elapsed());
        assert_eq!(objects.len(), OBJECTS);
    }
    let took = median(samples);
    println!(
        "directory of {OBJECTS} objects in {} files: {:.1} ms, {:.0} objects/s (median of {ROUNDS})",
        OBJECTS / 10,
        ms(took),
        OBJECTS as f64 / took.as_secs_f64()
    );

    let Some(cli) = find_program("jsonnet") else {
        println!("jsonnet CLI not installed (scripts/install-tools jsonnet): comparison skipped");
        return;
    };
    let mut startup = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let status = Command::new(&cli)
            .args(["-e", "{}"])
            .output()
            .expect("run jsonnet");
        startup.push(start.elapsed());
        assert!(status.status.success());
    }
    println!(
        "jsonnet CLI start-up alone (jsonnet -e '{{}}'): {:.1} ms",
        ms(median(startup))
    );
    compare(
        &cli,
        root,
        "realistic (200 Deployments + 200 Services)",
        200,
    );
    compare(&cli, root, "heavier (600 Deployments + 600 Services)", 600);
}
