//! Many Applications on one monorepo commit (a bench binary; `cargo bench --bench render_apps`):
//! APPS apps over PATHS distinct paths of one repository served over smart HTTP, all asking for
//! their desired manifests at once, as after one push. Prints, per round, the wall time, the ref
//! listings and pack fetches the Git cache made and the renders the render cache ran; then the
//! medians over ROUNDS rounds, each with a fresh cache (cold) and again warm (one more commit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan::git::{GitCredentials, RepoCache};
use capstan::manifests::{Manifests, Target};
use capstan::render::{ChartCache, Limits, RenderCache, ToolSettings};
use capstan::store::application::ApplicationSource;

#[path = "../tests/common/git.rs"]
mod git;
#[path = "../tests/common/git_http.rs"]
mod git_http;

const APPS: usize = 100;
const PATHS: usize = 10;
const OBJECTS_PER_PATH: usize = 20;
const ROUNDS: usize = 3;

fn config_map(name: &str, value: usize) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{value}\"\n")
}

struct Round {
    wall: Duration,
    listings: u64,
    pack_fetches: u64,
    renders: u64,
}

async fn all_apps(m: &Arc<Manifests>, url: &str) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..APPS)
        .map(|i| {
            let m = m.clone();
            let source = ApplicationSource {
                repo_url: url.to_string(),
                path: Some(format!("apps/{}", i % PATHS)),
                target_revision: Some("main".into()),
                ..Default::default()
            };
            tokio::spawn(async move {
                let name = format!("app-{i}");
                let target = Target {
                    app_name: &name,
                    namespace: "default",
                    kube_version: None,
                    api_versions: &[],
                    hard: false,
                };
                m.desired(&[&source], &target)
                    .await
                    .map(|d| d.objects.len())
            })
        })
        .collect();
    for task in tasks {
        let objects = task.await.expect("task").expect("renders");
        assert_eq!(objects, OBJECTS_PER_PATH);
    }
    started.elapsed()
}

fn write_commit(repo: &git::TestRepo, generation: usize) -> String {
    for p in 0..PATHS {
        for o in 0..OBJECTS_PER_PATH {
            repo.write(
                &format!("apps/{p}/cm-{o}.yaml"),
                &config_map(&format!("cm-{p}-{o}"), generation),
            );
        }
    }
    repo.commit(&format!("generation {generation}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    capstan::install_crypto_provider();
    let repo = git::TestRepo::new();
    let server = git_http::GitHttpServer::start(repo.root(), None);
    let url = server.url_for(&repo.name());
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for round in 0..ROUNDS {
        write_commit(&repo, round * 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Arc::new(Manifests {
            git: RepoCache::new(dir.path().join("git")),
            credentials: GitCredentials::new(),
            secret_credentials: Default::default(),
            charts: ChartCache::new(dir.path().join("charts")),
            renders: Arc::new(RenderCache::new(1000)),
            tools: ToolSettings::default(),
            limits: Limits::default(),
        });
        for (phase, out) in [("cold", &mut cold), ("warm", &mut warm)] {
            if phase == "warm" {
                write_commit(&repo, round * 2 + 1);
            }
            let (git_before, renders_before) = (m.git.stats(), m.renders.stats());
            let wall = all_apps(&m, &url).await;
            let (git_after, renders_after) = (m.git.stats(), m.renders.stats());
            let r = Round {
                wall,
                listings: git_after.listings - git_before.listings,
                pack_fetches: git_after.pack_fetches - git_before.pack_fetches,
                renders: renders_after.renders - renders_before.renders,
            };
            println!(
                "round {round} {phase}: {APPS} apps on {PATHS} paths in {:.1} ms: {} ref listings, {} pack fetches, {} renders",
                r.wall.as_secs_f64() * 1e3,
                r.listings,
                r.pack_fetches,
                r.renders
            );
            out.push(r);
        }
    }
    for (phase, rounds) in [("cold (empty cache)", &cold), ("warm (next commit)", &warm)] {
        println!(
            "median {phase}: {:.1} ms for {APPS} apps, {} listings, {} pack fetches, {} renders",
            median(rounds.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect()),
            median(rounds.iter().map(|r| r.listings as f64).collect()),
            median(rounds.iter().map(|r| r.pack_fetches as f64).collect()),
            median(rounds.iter().map(|r| r.renders as f64).collect()),
        );
    }
}
