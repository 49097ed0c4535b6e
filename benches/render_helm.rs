//! Helm render overhead (a bench binary; `cargo bench --bench render_helm`): the median time
//! of Capstan's Helm render (`render::render`: confinement checks, `helm template` under
//! `tool::run`, budgeted parsing) against a bare `helm template` process on the same chart,
//! for a small chart with a handful of templates and for a no-op chart (the fixed cost).
//! The two are timed alternately, ROUNDS times each after a warm-up (which also caches
//! `helm version`), so a loaded machine slows both alike.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use capstan::render::{Limits, RenderContext, SourceSpec, ToolSettings, find_program, render};

const ROUNDS: usize = 11;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// `small/`: six templates (a deployment, a service and four config maps); `noop/`: a chart
/// with no templates.
fn charts(root: &Path) {
    write(
        root,
        "small/Chart.yaml",
        "apiVersion: v2\nname: small\nversion: 0.1.0\n",
    );
    write(
        root,
        "small/values.yaml",
        "replicas: 2\nimage: nginx:1.27\nport: 80\n",
    );
    write(
        root,
        "small/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: {{ .Release.Name }}}}\n  template:\n    metadata: {labels: {app: {{ .Release.Name }}}}\n    spec:\n      containers: [{name: web, image: {{ .Values.image | quote }}}]\n",
    );
    write(
        root,
        "small/templates/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  ports: [{port: {{ .Values.port }}}]\n  selector: {app: {{ .Release.Name }}}\n",
    );
    for i in 0..4 {
        write(
            root,
            &format!("small/templates/cm-{i}.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-{i}\ndata:\n{}",
                (0..20)
                    .map(|k| format!("  key{k}: value-{k}\n"))
                    .collect::<String>()
            ),
        );
    }
    write(
        root,
        "noop/Chart.yaml",
        "apiVersion: v2\nname: noop\nversion: 0.1.0\n",
    );
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Times `a` and `b` alternately, ROUNDS times each after one warm-up of both, so load on a
/// shared machine hits both alike; returns their medians and the median paired difference.
fn paired(mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration, f64) {
    a();
    b();
    let (mut ta, mut tb, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        a();
        let da = start.elapsed();
        let start = Instant::now();
        b();
        let db = start.elapsed();
        diffs.push(da.as_secs_f64() - db.as_secs_f64());
        ta.push(da);
        tb.push(db);
    }
    diffs.sort_by(f64::total_cmp);
    (median(ta), median(tb), diffs[ROUNDS / 2])
}

fn main() {
    let helm = find_program("helm").expect("helm on PATH (scripts/install-tools helm)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    charts(&repo);
    let home = tmp.path().join("home");
    let tools = ToolSettings::default();
    let refs = BTreeMap::new();
    let ctx = RenderContext {
        checkout: &repo,
        app_name: "bench",
        namespace: "default",
        refs: &refs,
        tools: &tools,
        limits: Limits::default(),
        kube_version: None,
        api_versions: &[],
    };
    println!("helm render overhead, median of {ROUNDS} runs");
    for (chart, objects) in [("small", 6), ("noop", 0)] {
        let source = SourceSpec {
            path: chart.into(),
            ..SourceSpec::default()
        };
        let (capstan, bare, overhead) = paired(
            || {
                let rendered = render(&source, &ctx).expect("renders");
                assert_eq!(rendered.objects.len(), objects);
            },
            || {
                let out = Command::new(&helm)
                    .args([
                        "template",
                        "bench",
                        ".",
                        "--namespace",
                        "default",
                        "--include-crds",
                    ])
                    .current_dir(repo.join(chart))
                    .env("HOME", &home)
                    .output()
                    .expect("helm runs");
                assert!(out.status.success());
            },
        );
        println!(
            "{chart:>6}: capstan {:>8.1} ms  bare helm template {:>8.1} ms  overhead (median of paired differences) {:>+7.1} ms",
            capstan.as_secs_f64() * 1e3,
            bare.as_secs_f64() * 1e3,
            overhead * 1e3
        );
    }
}
