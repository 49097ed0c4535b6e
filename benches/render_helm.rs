//! Helm render overhead (a bench binary; `cargo bench --bench render_helm`): the median time
//! of Capstan's Helm render (`render::render`: confinement checks, `helm template` under
//! `tool::run`, budgeted parsing) against a bare `helm template` process on the same chart,
//! for a small chart with a handful of templates and for a no-op chart (the fixed cost).
//! Medians over ROUNDS runs, after one warm-up (which also caches `helm version`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use capstan::render::{Limits, RenderContext, SourceSpec, ToolSettings, find_program, render};

const ROUNDS: usize = 9;

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

fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
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
        let capstan = median(|| {
            let rendered = render(&source, &ctx).expect("renders");
            assert_eq!(rendered.objects.len(), objects);
        });
        let bare = median(|| {
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
        });
        println!(
            "{chart:>6}: capstan {:>8.1} ms  bare helm template {:>8.1} ms  overhead {:>+7.1} ms",
            capstan.as_secs_f64() * 1e3,
            bare.as_secs_f64() * 1e3,
            (capstan.as_secs_f64() - bare.as_secs_f64()) * 1e3
        );
    }
}
