//! The render budget covers the whole source: many small files that each expand (YAML aliases)
//! to ~60 MB fail together, and the peak memory of the render stays bounded.
//!
//! Peak memory is measured in a child process (this test binary re-executed for one test), so
//! the figure is the render's alone and a regression cannot exhaust the machine: the child runs
//! under an address-space limit and dies instead.

use std::path::Path;
use std::process::Command;

use capstan::render::{DirectoryOptions, render_directory};

/// Set in the child's environment to the directory it renders.
const CHILD_DIR: &str = "CAPSTAN_RENDER_BUDGET_CHILD_DIR";
const CHILD_TEST: &str = "child_renders_a_directory_and_reports_its_peak_memory";
/// Files in each source: the 300 hostile files, and as many legitimate ones.
const FILES: usize = 300;
/// The hostile render's peak must stay below this. The default budget admits 128 MiB of
/// expanded scalars; the 512 MiB bound leaves room for the nodes holding them, the file text
/// and the test harness, and is far below the ~18 GB that 300 unbounded files would take.
const PEAK_BOUND_KIB: u64 = 512 * 1024;
/// The child's address-space limit: a render that ignores the budget runs into it and dies
/// instead of exhausting the machine.
const CHILD_ADDRESS_SPACE: u64 = 4 * 1024 * 1024 * 1024;

/// A ~2 KB file whose aliases expand to 37,449 copies of a 1,600-byte string (~60 MB), under
/// serde-saphyr's own per-file limits (40 aliases, ~150k replayed events).
fn alias_bomb(i: usize) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb-{i}\ndata:\n  s: &l0 {}\n",
        "x".repeat(1600)
    );
    for level in 1..=5 {
        let prev = format!("*l{}", level - 1);
        let items = vec![prev; 8].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{items}]\n"));
    }
    text
}

/// A realistic manifest that also uses an anchor, as real repositories do for shared labels.
fn legitimate(i: usize) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  labels: &labels\n    app: web\n    team: payments\n  annotations: *labels\ndata:\n"
    );
    for key in 0..60 {
        text.push_str(&format!("  key-{key}: \"value {key} of config map {i}\"\n"));
    }
    text
}

fn write_source(dir: &Path, name: &str, content: impl Fn(usize) -> String) {
    for i in 0..FILES {
        std::fs::write(dir.join(format!("{name}-{i:03}.yaml")), content(i)).expect("write");
    }
}

/// What the child printed: its render outcome line and its peak resident memory in KiB.
struct ChildReport {
    outcome: String,
    peak_kib: u64,
}

fn render_in_child(dir: &Path) -> ChildReport {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={CHILD_ADDRESS_SPACE}"))
            .arg("--")
            .arg(exe);
        c
    } else {
        Command::new(exe)
    };
    let output = command
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child died ({}): {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no {prefix} line in: {stdout}"))
            .to_string()
    };
    ChildReport {
        outcome: line("OUTCOME "),
        peak_kib: line("PEAK_KIB ").trim().parse().expect("a number"),
    }
}

/// Peak resident set size of this process so far, from `VmHWM` in /proc/self/status.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Not a test on its own: the body of the child process (does nothing unless `CHILD_DIR` is
/// set). It renders the directory with the worker's default budget and prints the outcome.
#[test]
fn child_renders_a_directory_and_reports_its_peak_memory() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let outcome = match render_directory(Path::new(&dir), "", &DirectoryOptions::default()) {
        Ok(objects) => format!("ok {}", objects.len()),
        Err(err) => format!("error {err:?}"),
    };
    println!("OUTCOME {outcome}");
    println!("PEAK_KIB {}", peak_rss_kib());
}

#[test]
fn many_small_alias_bombs_exhaust_one_budget_and_peak_memory_stays_bounded() {
    let legit = tempfile::tempdir().expect("tempdir");
    write_source(legit.path(), "cm", legitimate);
    let control = render_in_child(legit.path());
    assert_eq!(
        control.outcome,
        format!("ok {FILES}"),
        "a legitimate source of {FILES} files renders"
    );

    let hostile = tempfile::tempdir().expect("tempdir");
    write_source(hostile.path(), "bomb", alias_bomb);
    let size: usize = (0..FILES).map(|i| alias_bomb(i).len()).sum();
    assert!(size < FILES * 2100, "the files are small: {size} bytes");
    let report = render_in_child(hostile.path());
    assert!(
        report.outcome.starts_with("error TooLarge")
            && report.outcome.contains("aliases expanded")
            && report.outcome.contains("bomb-"),
        "the render fails on the source budget, naming the file: {}",
        report.outcome
    );
    assert!(
        report.peak_kib < PEAK_BOUND_KIB,
        "peak RSS {} KiB exceeds {PEAK_BOUND_KIB} KiB",
        report.peak_kib
    );
    eprintln!(
        "peak RSS: legitimate source {} KiB, hostile source {} KiB",
        control.peak_kib, report.peak_kib
    );
}

/// One CustomResourceDefinition of ~20 KB, shaped like real ones (a schema with long
/// descriptions and patterns).
fn crd(i: usize) -> String {
    let mut text = format!(
        "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets{i}.example.com\nspec:\n  group: example.com\n  names: {{kind: Widget{i}, plural: widgets{i}}}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n"
    );
    for field in 0..60 {
        text.push_str(&format!(
            "          field{field}:\n            type: string\n            pattern: '^[a-z]*$'\n            description: {}\n",
            "Describes what this field of the widget does, at some length. ".repeat(4)
        ));
    }
    text
}

#[test]
fn a_five_megabyte_bundle_of_hundreds_of_crds_fits_the_default_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle: String = (0..250).map(crd).collect();
    assert!(bundle.len() > 5_000_000, "{} bytes", bundle.len());
    std::fs::write(dir.path().join("bundle.yaml"), &bundle).expect("write");
    let objects = render_directory(dir.path(), "", &DirectoryOptions::default()).expect("renders");
    assert_eq!(objects.len(), 250);
}
