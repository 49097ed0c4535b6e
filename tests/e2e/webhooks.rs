//! Every Git host end to end: a signed push of each host's shape refreshes exactly the app it
//! names; a redelivery reaching another api process queues nothing; `/metrics` counts it all.

use capstan::config::Role;
use capstan::webhook::{PROVIDERS, Provider, SamplePush, SignedRequest};
use serde_json::json;

use crate::helpers::*;

/// The secret each provider is configured with in these tests (Azure DevOps: `user:password`).
fn secret_of(provider: &str) -> String {
    match provider {
        "azure-devops" => "capstan:azure-secret".to_owned(),
        other => format!("{other}-secret"),
    }
}

/// `CAPSTAN__WEBHOOK__PROVIDERS__<NAME>__SECRET` for every provider.
fn provider_secrets_env() -> Vec<(String, String)> {
    PROVIDERS
        .iter()
        .map(|p| {
            (
                format!(
                    "CAPSTAN__WEBHOOK__PROVIDERS__{}__SECRET",
                    p.name().replace('-', "_").to_uppercase()
                ),
                secret_of(p.name()),
            )
        })
        .collect()
}

async fn send(app_address: &str, req: &SignedRequest) -> (u16, serde_json::Value) {
    let mut post = reqwest::Client::new().post(format!("{app_address}/api/webhook"));
    for (k, v) in &req.headers {
        post = post.header(k, v);
    }
    let resp = post
        .body(req.body.clone())
        .send()
        .await
        .expect("webhook request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

async fn metrics(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

/// The value of one exposition line (`name{labels} value`), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_from_every_git_host_deploys_the_commit_it_names() {
    let app = spawn_app(Options {
        extra_env: provider_secrets_env(),
        ..Default::default()
    })
    .await;
    app.repo.write("cm.yaml", &config_map("hosts", "initial"));
    app.repo.commit("initial");
    let created = app.create_app("hosts", ".", Some(true)).await;
    assert_eq!(created.status(), 201);
    app.wait_app("hosts", 60, "Synced", |a| sync_of(a).0 == "Synced")
        .await;

    for provider in PROVIDERS {
        let name = provider.name();
        app.repo.write("cm.yaml", &config_map("hosts", name));
        let commit = app.repo.commit(&format!("pushed via {name}"));
        let files = vec!["cm.yaml".to_owned()];
        let delivery = uuid::Uuid::new_v4().to_string();
        let req = provider.sample(
            &SamplePush {
                repo: &app.repo_url,
                git_ref: "refs/heads/main",
                before: Some("1111111111111111111111111111111111111111"),
                after: Some(&commit),
                files: Some(&files),
                default_branch: "main",
                delivery: &delivery,
            },
            Some(&secret_of(name)),
        );
        let (status, body) = send(&app.address, &req).await;
        assert_eq!(status, 202, "{name}: {body}");
        // The poller runs every 180 s here: only the webhook can make this happen in time.
        eventually(30, &format!("{name}'s push is deployed"), || async {
            app.config_map("hosts")
                .await
                .is_some_and(|cm| cm.pointer("/data/key").and_then(|v| v.as_str()) == Some(name))
        })
        .await;
    }
    let text = metrics(&app.address).await;
    for provider in PROVIDERS {
        let series = format!(
            "capstan_webhook_requests_total{{provider=\"{}\",outcome=\"queued\"}}",
            provider.name()
        );
        assert_eq!(metric(&text, &series), 1.0, "{series} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_reaching_another_api_process_queues_nothing() {
    let app = spawn_app(Options {
        extra_env: provider_secrets_env(),
        ..Default::default()
    })
    .await;
    // A second api process on the same broker and prefix, as behind a load balancer.
    let twin = spawn_twin(&app, Role::Api, provider_secrets_env()).await;
    for provider in PROVIDERS {
        let name = provider.name();
        let delivery = uuid::Uuid::new_v4().to_string();
        let push = SamplePush {
            repo: "https://git.example.com/nobody/tracks-this.git",
            git_ref: "refs/heads/main",
            before: Some("1111111111111111111111111111111111111111"),
            after: Some("2222222222222222222222222222222222222222"),
            files: None,
            default_branch: "main",
            delivery: &delivery,
        };
        let req = provider.sample(&push, Some(&secret_of(name)));
        let (first, body) = send(&app.address, &req).await;
        assert_eq!(first, 202, "{name}: {body}");
        let (again, body) = send(&twin.address, &req).await;
        assert_eq!(again, 200, "{name}: {body}");
        assert_eq!(body["status"], "duplicate", "{name}: {body}");
        let (third, body) = send(&app.address, &req).await;
        assert_eq!(
            (third, &body["status"]),
            (200, &json!("duplicate")),
            "{name}"
        );
        // Another delivery of the same push is new work.
        let other = uuid::Uuid::new_v4().to_string();
        let fresh = provider.sample(
            &SamplePush {
                delivery: &other,
                ..push.clone()
            },
            Some(&secret_of(name)),
        );
        let (status, body) = send(&twin.address, &fresh).await;
        // Azure DevOps carries its id in the body, generic hosts may send none: both still dedupe
        // on what identifies the delivery.
        assert_eq!(status, 202, "{name}: {body}");
    }
    let (a, b) = (metrics(&app.address).await, metrics(&twin.address).await);
    let published = |t: &str| -> f64 {
        PROVIDERS
            .iter()
            .map(|p| {
                metric(
                    t,
                    &format!("capstan_events_published_total{{source=\"{}\"}}", p.name()),
                )
            })
            .sum()
    };
    assert_eq!(
        published(&a) + published(&b),
        2.0 * PROVIDERS.len() as f64,
        "{a}\n{b}"
    );
    let dropped = |t: &str| -> f64 {
        PROVIDERS
            .iter()
            .map(|p| {
                metric(
                    t,
                    &format!(
                        "capstan_webhook_duplicates_dropped_total{{source=\"{}\"}}",
                        p.name()
                    ),
                )
            })
            .sum()
    };
    assert_eq!(dropped(&a) + dropped(&b), 2.0 * PROVIDERS.len() as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_monorepo_a_push_touching_one_apps_path_refreshes_only_that_app() {
    let app = spawn_app(Options::default()).await;
    for team in ["a", "b", "c"] {
        app.repo.write(
            &format!("apps/{team}/cm.yaml"),
            &config_map(&format!("team-{team}"), "v1"),
        );
    }
    let first = app.repo.commit("three teams");
    for team in ["a", "b", "c"] {
        let created = app
            .create_app(&format!("team-{team}"), &format!("apps/{team}"), Some(true))
            .await;
        assert_eq!(created.status(), 201);
    }
    for team in ["a", "b", "c"] {
        app.wait_app(
            &format!("team-{team}"),
            60,
            "synced at the first commit",
            |a| sync_of(a) == ("Synced".into(), first.clone()),
        )
        .await;
    }
    let before = metrics(&app.address).await;
    let routed_before = metric(&before, "capstan_events_routed_total");
    let webhook_jobs_before = metric(&before, "capstan_jobs_published_total{cause=\"webhook\"}");

    app.repo
        .write("apps/b/cm.yaml", &config_map("team-b", "v2"));
    let second = app.repo.commit("team b at v2");
    let files = vec!["apps/b/cm.yaml".to_owned()];
    let delivery = uuid::Uuid::new_v4().to_string();
    let req = capstan::webhook::github::GitHub.sample(
        &SamplePush {
            repo: &app.repo_url,
            git_ref: "refs/heads/main",
            before: Some(&first),
            after: Some(&second),
            files: Some(&files),
            default_branch: "main",
            delivery: &delivery,
        },
        Some(&app.webhook_secret),
    );
    let (status, body) = send(&app.address, &req).await;
    assert_eq!(status, 202, "{body}");
    // Wait for the router to finish this event (all its jobs published), then count.
    eventually(30, "the push is routed", || async {
        metric(&metrics(&app.address).await, "capstan_events_routed_total") > routed_before
    })
    .await;
    let after = metrics(&app.address).await;
    assert_eq!(
        metric(&after, "capstan_jobs_published_total{cause=\"webhook\"}") - webhook_jobs_before,
        1.0,
        "{after}"
    );
    app.wait_app("team-b", 30, "team b synced at the second commit", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    for team in ["a", "c"] {
        let other = app.get_app(&format!("team-{team}")).await;
        assert_eq!(
            sync_of(&other).1,
            first,
            "team {team} was refreshed by a push it does not watch"
        );
    }
}
