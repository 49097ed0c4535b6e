//! Router figures (a bench binary; `cargo bench --bench router`): for APPS Applications on one
//! monorepo, each watching its own `apps/app-N`, the time to route one push touching one app's
//! path, one push touching 100 apps' paths, one push with unknown changed files, the time to
//! build the index, and the time to re-sync an unchanged index. Medians over ROUNDS runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use capstan::event::{EventSource, PushEvent, RefUpdate};
use capstan::router::RouteIndex;
use capstan::store::Application;
use capstan::store::application::{ApplicationSource, ApplicationSpec};

const APPS: usize = 10_000;
const ROUNDS: usize = 21;

fn app(i: usize) -> Application {
    let mut app = Application::new(
        &format!("app-{i}"),
        ApplicationSpec {
            source: Some(ApplicationSource {
                repo_url: "https://github.com/org/monorepo.git".into(),
                target_revision: Some("HEAD".into()),
                path: Some(format!("apps/app-{i}")),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    app.metadata.namespace = Some("capstan".into());
    app
}

fn push(files: Option<Vec<String>>) -> PushEvent {
    PushEvent {
        v: 1,
        id: "bench".into(),
        source: EventSource::Github,
        delivery: None,
        received_at: "now".into(),
        repo_urls: vec![
            "https://github.com/org/monorepo".into(),
            "git@github.com:org/monorepo.git".into(),
        ],
        refs: vec![RefUpdate {
            name: "refs/heads/main".into(),
            before: Some("a".repeat(40)),
            after: Some("b".repeat(40)),
            created: false,
            deleted: false,
            forced: false,
        }],
        changed_files: files,
        default_branch: Some("main".into()),
        pusher: None,
    }
}

/// Median duration of `ROUNDS` runs of `f`, which returns how many apps it found (checked).
fn median(expect: usize, mut f: impl FnMut() -> usize) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let found = f();
            let elapsed = start.elapsed();
            assert_eq!(found, expect, "the bench routed a wrong number of apps");
            elapsed
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let apps: Vec<Application> = (0..APPS).map(app).collect();
    println!(
        "router bench ({profile} build), {APPS} Applications on one monorepo, medians of {ROUNDS}"
    );

    let build = median(APPS, || RouteIndex::build(black_box(&apps)).len());
    println!("  index build:                      {build:>10.3?}");

    let mut index = RouteIndex::build(&apps);
    let resync = median(APPS, || {
        index.sync(black_box(&apps));
        index.len()
    });
    println!("  re-sync, nothing changed:         {resync:>10.3?}");

    let one = push(Some(vec!["apps/app-4242/deployment.yaml".into()]));
    let t = median(1, || index.route(black_box(&one)).len());
    println!("  push touching 1 app's path:       {t:>10.3?}   (target <= 5 ms)");

    let hundred = push(Some(
        (0..100)
            .map(|i| format!("apps/app-{}/values.yaml", i * 97))
            .collect(),
    ));
    let t = median(100, || index.route(black_box(&hundred)).len());
    println!("  push touching 100 apps' paths:    {t:>10.3?}");

    let unknown = push(None);
    let t = median(APPS, || index.route(black_box(&unknown)).len());
    println!("  push with unknown changed files:  {t:>10.3?}   (affects all {APPS})");
}
