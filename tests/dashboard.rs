//! The Grafana dashboard (`deploy/grafana/capstan-dashboard.json`) asks only for series a real
//! scrape of Capstan's registry has, and shows every family, so the two cannot drift apart.

use std::collections::BTreeSet;

use capstan::metrics::{Metrics, Stage};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../deploy/grafana/capstan-dashboard.json");

/// A registry where every family has at least one sample.
fn touched() -> Metrics {
    let m = Metrics::new();
    m.webhook("github", "queued", 0.01);
    m.event_published("github");
    m.duplicate_dropped("github");
    m.dedup_skipped("github");
    m.triggers_dead_lettered.inc();
    m.job_published("webhook");
    m.events_routed.inc();
    for stage in [Stage::Fetch, Stage::Render, Stage::Compare, Stage::Sync] {
        m.stage(stage, 0.01);
    }
    m.reconciled("synced", 0.1);
    m.set_queue_depth("capstan.jobs.0", 3);
    m.job_redeliveries.inc();
    m.set_apps([(("Synced".to_owned(), "Healthy".to_owned()), 1)]);
    m.git_fetch(0.2, 1024);
    m.cluster_request("in-cluster", "patch", "200");
    m.set_shards_owned(4);
    m.notification("webhook", "sent");
    m
}

/// Sample names (`capstan_x_total`, `capstan_y_bucket`, …) and family names (from `# TYPE`).
fn names(exposition: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut samples = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().unwrap_or("").to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_owned());
        }
    }
    (samples, families)
}

/// Every PromQL expression of every panel (rows' nested panels included).
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = stack.pop() {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {} must use the dashboard's Prometheus input",
            panel["title"]
        );
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().expect("expr").to_owned());
        }
        stack.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// The metric names an expression reads: identifiers starting `capstan_` (label values are
/// quoted and PromQL functions never start so).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut current = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            current.push(c);
        } else {
            if current.starts_with("capstan_") {
                out.push(current.clone());
            }
            current.clear();
        }
    }
    out
}

#[test]
fn every_dashboard_series_exists_in_a_real_scrape_and_every_family_has_a_panel() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let (samples, families) = names(&touched().encode());
    let exprs = expressions(&dashboard);
    assert!(!exprs.is_empty());
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let read = metric_names(expr);
        assert!(!read.is_empty(), "reads no Capstan metric: {expr}");
        for name in read {
            assert!(
                samples.contains(&name),
                "{name} (in `{expr}`) is not in a scrape: {samples:?}"
            );
            used.insert(name);
        }
    }
    for family in &families {
        assert!(
            used.iter()
                .any(|n| n == family || n.starts_with(&format!("{family}_"))),
            "no panel shows {family}"
        );
    }
    // The stage histogram is charted per stage, as the four stages a reconcile has.
    assert!(families.contains("capstan_reconcile_stage_duration_seconds"));
}

#[test]
fn metric_names_are_read_from_promql_and_not_from_label_values() {
    assert_eq!(
        metric_names(r#"sum by (le) (rate(capstan_a_bucket{q="capstan_b"}[5m])) / capstan_c"#),
        ["capstan_a_bucket", "capstan_c"]
    );
}
