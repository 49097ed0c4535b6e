//! Pull-request preview latency (a bench binary; `cargo bench --bench preview`, or
//! `cargo test --bench preview` for a debug build; needs RabbitMQ): from a signed GitHub
//! `pull_request` webhook to the PR comment edited with the new head, for an app of 100 objects
//! (34 Deployments, 33 Services, 33 ConfigMaps), against a local server implementing GitHub's
//! comment and status endpoints. Median and slowest of several pushes to one PR.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use capstan::event::PullRequestAction;
use capstan::webhook::{SamplePullRequest, provider_named};

use common::forge_server::ForgeServer;
use helpers::{Options, TestApp, config_map, deployment, spawn_app, sync_of};

const ROUNDS: usize = 7;

fn write_objects(app: &TestApp, image: &str) {
    for i in 0..34 {
        app.repo.write(
            &format!("app/deploy-{i:02}.yaml"),
            &deployment(&format!("web-{i:02}"), image),
        );
    }
    for i in 0..33 {
        app.repo.write(
            &format!("app/svc-{i:02}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i:02}\nspec:\n  selector:\n    app: web-{i:02}\n  ports:\n  - port: 80\n"
            ),
        );
        app.repo.write(
            &format!("app/cm-{i:02}.yaml"),
            &config_map(&format!("cm-{i:02}"), image),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let forge = ForgeServer::start();
    let app = spawn_app(Options {
        extra_toml: format!(
            "[forge.hosts.github]\nkind = \"github\"\napi_url = {:?}\ntoken = {:?}\n",
            forge.api_url("github"),
            forge.token("github")
        ),
        ..Default::default()
    })
    .await;
    write_objects(&app, "nginx:1.0");
    let main = app.repo.commit("100 objects");
    assert_eq!(app.create_app("big", "app", Some(true)).await.status(), 201);
    app.wait_app("big", 300, "synced", |a| {
        sync_of(a) == ("Synced".into(), main.clone())
    })
    .await;
    let mut times = Vec::new();
    for round in 0..=ROUNDS {
        app.repo.switch("pr");
        // Every Deployment and ConfigMap changes: 67 changed objects per push.
        write_objects(&app, &format!("nginx:1.{}", round + 1));
        let head = app.repo.commit(&format!("round {round}"));
        app.repo.switch("main");
        let request = provider_named("github")
            .expect("github")
            .sample_pull_request(
                &SamplePullRequest {
                    repo_url: &app.repo_url,
                    api_url: &forge.api_url("github"),
                    number: 1,
                    action: if round == 0 {
                        PullRequestAction::Opened
                    } else {
                        PullRequestAction::Updated
                    },
                    base_ref: "main",
                    base_sha: &main,
                    head_sha: &head,
                    head_ref: "pr",
                    fork_url: None,
                    title: "bench",
                    author: "bench",
                },
                Some(&app.webhook_secret),
            );
        let started = Instant::now();
        let mut req = app.http.post(format!("{}/api/webhook", app.address));
        for (k, v) in &request.headers {
            req = req.header(k, v);
        }
        let resp = req.body(request.body).send().await.expect("webhook");
        assert_eq!(resp.status(), 202);
        let short = &head[..12];
        loop {
            if forge.comments(1).iter().any(|c| c.body.contains(short)) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "no comment for {short}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The first round warms the Git mirror and the render cache of the base.
        if round > 0 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let body = &forge.comments(1)[0].body;
    assert!(body.contains("0 added, 67 changed, 0 removed"), "{body}");
    println!(
        "preview, app of 100 objects (67 changed per push): webhook → comment edited: median {:.0} ms, slowest {:.0} ms over {ROUNDS} pushes",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
