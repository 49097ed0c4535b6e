//! The CLI as a user meets it: golden files for the human renderers (`app get`, `app list`,
//! `proj get`), and the binary's completion, man pages, config file and exit codes.
//!
//! Expected text lives in tests/fixtures/cli/*.txt; `CAPSTAN_BLESS=1 cargo test --test cli`
//! rewrites it from the renderers (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use capstan::cli::app_view::{AppFilter, Selector, app_list_table, app_summary};
use capstan::cli::project_view::project_summary;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli")
}

fn fixture(name: &str) -> Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Compares `actual` with the golden file `name`, or rewrites it under CAPSTAN_BLESS=1.
fn golden(name: &str, actual: &str) {
    let path = fixtures().join(name);
    if std::env::var_os("CAPSTAN_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("golden file written");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).expect("golden file exists (CAPSTAN_BLESS=1 creates it)");
    assert_eq!(
        actual, expected,
        "{name} differs from the renderer's output"
    );
}

#[test]
fn app_get_summarises_a_synced_healthy_app_with_its_resources_and_hooks() {
    golden(
        "app-get-synced.txt",
        &app_summary(&fixture("app-synced.json")),
    );
}

#[test]
fn app_get_shows_a_failed_operation_its_conditions_and_per_resource_errors() {
    let text = app_summary(&fixture("app-failed.json"));
    golden("app-get-failed.txt", &text);
    // What a user reads first when a sync failed, whatever the layout.
    assert!(text.contains("Phase:              Failed"), "{text}");
    assert!(
        text.contains("must be greater than or equal to 0"),
        "{text}"
    );
}

#[test]
fn app_get_lists_every_source_of_a_multi_source_app() {
    golden(
        "app-get-multi.txt",
        &app_summary(&fixture("app-multi.json")),
    );
}

#[test]
fn app_list_prints_argocd_columns_and_wide_adds_revision_and_operation() {
    let list = fixture("app-list.json");
    let all = AppFilter::default().apply(&list);
    golden("app-list.txt", &app_list_table(&all, false));
    golden("app-list-wide.txt", &app_list_table(&all, true));
}

#[test]
fn app_list_filters_by_project_cluster_and_labels() {
    let list = fixture("app-list.json");
    let names = |filter: AppFilter| -> Vec<String> {
        filter
            .apply(&list)
            .iter()
            .map(|a| capstan::cli::app_view::qualified_name(a))
            .collect()
    };
    let selector = |s: &str| Some(Selector::parse(s).expect("selector parses"));
    assert_eq!(
        names(AppFilter {
            project: Some("shop".into()),
            ..Default::default()
        }),
        ["capstan/payments", "team-a/batch"]
    );
    // A cluster matches by destination name as well as by server URL.
    assert_eq!(
        names(AppFilter {
            cluster: Some("prod-eu".into()),
            ..Default::default()
        }),
        ["capstan/payments"]
    );
    assert_eq!(
        names(AppFilter {
            cluster: Some("https://kubernetes.default.svc".into()),
            ..Default::default()
        }),
        ["capstan/guestbook", "capstan/monitoring"]
    );
    assert_eq!(
        names(AppFilter {
            selector: selector("team=shop,tier!=backend"),
            ..Default::default()
        }),
        ["team-a/batch"]
    );
    assert_eq!(
        names(AppFilter {
            project: Some("shop".into()),
            selector: selector("tier"),
            ..Default::default()
        }),
        ["capstan/payments"]
    );
    let filtered = AppFilter {
        selector: selector("team"),
        ..Default::default()
    };
    golden(
        "app-list-selector-team.txt",
        &app_list_table(&filtered.apply(&list), false),
    );
}

#[test]
fn proj_get_summarises_a_project() {
    golden("proj-get.txt", &project_summary(&fixture("project.json")));
    golden(
        "proj-get-default.txt",
        &project_summary(&fixture("project-default.json")),
    );
}

/// Runs the binary with no server, token or config inherited from whoever runs the tests.
fn capstan(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .env_remove("CAPSTAN_SERVER")
        .env_remove("CAPSTAN_TOKEN")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg"))
        .env("CAPSTAN__SERVER__DATA_DIR", home.join("data"))
        .output()
        .expect("capstan runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn completion_prints_a_script_for_the_shell() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = capstan(&["completion", "bash"], home.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("_capstan"), "{script}");
    assert!(script.contains("terminate-op"), "subcommands are completed");
    let out = capstan(&["completion", "tcsh"], home.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_writes_a_page_per_subcommand_and_prints_the_top_one() {
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path().join("man/man1");
    let out = capstan(&["man", "--out", &dir.display().to_string()], home.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.join("capstan-app-sync.1")).expect("app sync page");
    assert!(page.contains(".TH capstan-app-sync"), "{page}");
    assert!(
        page.contains("prune"),
        "the page documents the flags: {page}"
    );
    assert!(dir.join("capstan.1").exists());
    assert!(dir.join("capstan-proj-get.1").exists());
    let page = std::fs::read_to_string(dir.join("capstan-queue-migrate.1")).expect("queue page");
    assert!(page.contains("max_attempts"), "{page}");
    let out = capstan(&["man"], home.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH capstan"));
}

#[test]
fn an_unreachable_server_and_bad_usage_exit_2() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = capstan(
        &[
            "app",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "list",
        ],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );

    let out = capstan(&["app", "list", "--no-such-flag"], home.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = capstan(&["app", "get", "x", "-o", "xml"], home.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = capstan(&["app", "list", "--selector", "a=b=c"], home.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("selector"), "{}", stderr(&out));
}

#[test]
fn the_client_config_file_supplies_server_and_token_unless_flags_or_env_do() {
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path().join("xdg/capstan");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(
        dir.join("config.yaml"),
        "server: http://127.0.0.1:7/from-config\ntoken: from-config\n",
    )
    .expect("config written");
    // The token comes from the file too: without it the CLI would stop at the missing token file.
    let out = capstan(&["app", "list"], home.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("http://127.0.0.1:7/from-config"),
        "{}",
        stderr(&out)
    );
    let out = capstan(
        &["proj", "--server", "http://127.0.0.1:9/from-flag", "list"],
        home.path(),
    );
    assert!(stderr(&out).contains("from-flag"), "{}", stderr(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["app", "list"])
        .env("CAPSTAN_SERVER", "http://127.0.0.1:9/from-env")
        .env_remove("CAPSTAN_TOKEN")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("xdg"))
        .output()
        .expect("capstan runs");
    assert!(stderr(&out).contains("from-env"), "{}", stderr(&out));

    std::fs::write(dir.join("config.yaml"), "server: [not, a, url\n").expect("config written");
    let out = capstan(&["app", "list"], home.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("config.yaml"), "{}", stderr(&out));
    // Flags that name both server and token do not need the file, broken or not.
    let out = capstan(
        &[
            "app",
            "--server",
            "http://127.0.0.1:9/flags",
            "--token",
            "t",
            "list",
        ],
        home.path(),
    );
    assert!(
        stderr(&out).contains("cannot reach http://127.0.0.1:9/flags"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn queue_migrate_refuses_the_embedded_queue_which_has_nothing_to_migrate() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = capstan(&["queue", "migrate"], home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("embedded"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing reported as done");
}
