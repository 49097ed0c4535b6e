//! End to end: signed webhooks, RabbitMQ, Git over smart HTTP with Basic auth, the sandbox cluster.
//! Each test gets its own sandbox, repository, queue prefix and Capstan.

mod accounts;
mod app_ops;
mod clusters;
#[path = "../common/mod.rs"]
mod common;
mod edge;
mod helpers;
mod hostile_git;
mod hostile_render;
mod job_log;
mod live_state;
mod metrics;
mod notifications;
mod openapi;
mod previews;
mod provenance;
mod render_tools;
mod scale;
mod stall;
mod sync_engine;
mod tenancy;
mod webhooks;
mod workers;

use std::time::Duration;

use capstan::config::Role;
use capstan::sandbox::{FaultAction, FaultMatch};
use serde_json::Value;

use common::tcp_proxy::TcpProxy;
use helpers::*;

fn image_of(deploy: &Value) -> &str {
    deploy
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The worker is its own process so its log shows which job did what: the sync at the pushed
/// commit is the run of the job the webhook's event caused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_deploys_the_new_image_and_the_app_is_synced_at_that_commit() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let logs = tempfile::tempdir().expect("tempdir");
    let worker_log = logs.path().join("worker.log");
    let _worker = spawn_process(&app, Role::Worker, &worker_log);
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = app.repo.commit("web at 1.25");
    assert_eq!(
        app.create_app("guestbook", "app", Some(true))
            .await
            .status(),
        201
    );
    app.wait_app("guestbook", 30, "Synced at the first commit", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    let live = app.deployment("web").await.expect("deployment applied");
    assert_eq!(image_of(&live), "nginx:1.25");
    assert_eq!(
        live.pointer("/metadata/annotations/capstan.dev~1tracking-id")
            .and_then(Value::as_str),
        Some("capstan/guestbook:apps/Deployment:default/web")
    );

    // Committed only now, so the creation's sync cannot have seen it.
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.27"));
    let second = app.repo.commit("web at 1.27");
    let resp = app.push_webhook(&second, Some(""), None).await;
    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.expect("the 202 answer is JSON");
    let event_id = answer["id"].as_str().expect("the answer names the event");

    let synced = app
        .wait_app("guestbook", 30, "Synced at the pushed commit", |a| {
            sync_of(a) == ("Synced".into(), second.clone())
        })
        .await;
    let live = app.deployment("web").await.expect("deployment");
    assert_eq!(image_of(&live), "nginx:1.27");
    // The sync itself was the run of the webhook's job; had anything else deployed the commit
    // first, that run would have found nothing to sync.
    let webhook_synced = || {
        job_log::runs(&worker_log, "capstan/guestbook")
            .into_iter()
            .find(|r| r.event_id == event_id && r.ended.is_some())
    };
    eventually(10, "the webhook's job has run", || async {
        webhook_synced().is_some()
    })
    .await;
    let run = webhook_synced().expect("the webhook's run");
    assert_eq!(run.cause, "Webhook", "{run:?}");
    assert!(run.synced(), "the webhook's job did the sync: {run:?}");
    assert_eq!(run.revision(), second, "{run:?}");
    assert_eq!(
        synced
            .pointer("/status/operationState/phase")
            .and_then(Value::as_str),
        Some("Succeeded")
    );
    let results = synced
        .pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .expect("results");
    assert!(
        results
            .iter()
            .any(|r| r["kind"] == "Deployment" && r["status"] == "Synced"),
        "{results:?}"
    );
    let history = synced
        .pointer("/status/history")
        .and_then(Value::as_array)
        .expect("history");
    assert_eq!(
        history.last().and_then(|h| h["revision"].as_str()),
        Some(second.as_str())
    );
    // The sandbox makes the Deployment available shortly after; health follows.
    app.wait_app("guestbook", 30, "Healthy", |a| {
        a.pointer("/status/health/status") == Some(&Value::from("Healthy"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_oversized_bodies_are_refused_and_enqueue_nothing() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    let router_queue = format!("{}.events.router", app.prefix);
    let sha = "2".repeat(40);

    let wrong = app
        .push_webhook(
            &sha,
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
            None,
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let missing = app.push_webhook(&sha, None, None).await;
    assert_eq!(missing.status(), 401);
    let sha1 = app
        .push_webhook(
            &sha,
            Some("sha1=0000000000000000000000000000000000000000"),
            None,
        )
        .await;
    assert_eq!(sha1.status(), 401);
    let oversized = app
        .push_webhook(&sha, Some(""), Some(vec![b' '; 1024 * 1024 + 1]))
        .await;
    assert_eq!(oversized.status(), 413);
    assert_eq!(
        queue_depth(&router_queue).await,
        0,
        "refused webhooks must not reach the broker"
    );

    // The same request, correctly signed, does reach it: the check above could have failed.
    let good = app.push_webhook(&sha, Some(""), None).await;
    assert_eq!(good.status(), 202);
    eventually(10, "the signed event is in the queue", || async {
        queue_depth(&router_queue).await == 1
    })
    .await;

    let ping = app
        .http
        .post(format!("{}/api/webhook", app.address))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header(
            "x-hub-signature-256",
            capstan::webhook::Signature::sign(app.webhook_secret.as_bytes(), b"{}"),
        )
        .body("{}")
        .send()
        .await
        .expect("ping");
    assert_eq!(ping.status(), 200);
    assert_eq!(
        queue_depth(&router_queue).await,
        1,
        "a ping enqueues nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_gets_503_not_2xx() {
    require_rabbitmq().await;
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let app = spawn_app(Options {
        role: Role::Api,
        amqp_url: url,
        ..Default::default()
    })
    .await;
    let sha = "3".repeat(40);
    assert_eq!(
        app.push_webhook(&sha, Some(""), None).await.status(),
        202,
        "works while the broker is reachable"
    );

    proxy.cut();
    let resp = app.push_webhook(&sha, Some(""), None).await;
    assert_eq!(resp.status(), 503, "{:?}", resp.text().await);
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503, "not ready without the broker");
}

/// A worker killed inside a sync: the broker redelivers the same job to the next worker, which
/// runs it again (attempt 2) and converges the app. Nothing else can converge it here: no poll at
/// start-up, none for 180 s, and the held write is the real one, so nothing was applied before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing_and_the_app_converges() {
    let app = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    app.repo
        .write("app/config.yaml", &config_map("settings", "one"));
    let commit = app.repo.commit("initial");
    let logs = tempfile::tempdir().expect("tempdir");
    let no_start_poll = || {
        vec![(
            "CAPSTAN__RECONCILE__POLL_ON_START".to_string(),
            "false".to_string(),
        )]
    };

    // Hold the worker inside the sync: the sandbox delays its real write of the Deployment (the
    // server-side dry-run before it goes through).
    app.sandbox.faults().inject(
        1,
        FaultMatch::new("/deployments/web", Some("PATCH")).writes_only(),
        FaultAction::Delay(Duration::from_secs(20)),
    );
    let first_log = logs.path().join("worker-1.log");
    let mut first = spawn_process_with(&app, Role::Worker, &first_log, no_start_poll());
    // Without a poll at start, only an app created after the worker started is refreshed at once.
    wait_listening(&first_log).await;
    assert_eq!(
        app.create_app("guestbook", "app", Some(true))
            .await
            .status(),
        201
    );
    eventually(60, "the first worker is inside the sync", || async {
        app.sandbox.faults().hits() >= 1
    })
    .await;
    let held = job_log::runs(&first_log, "capstan/guestbook");
    assert_eq!(held.len(), 1, "one job ran on the first worker: {held:?}");
    let held = held[0].clone();
    assert_eq!(held.attempt, 1, "{held:?}");
    assert!(held.ended.is_none(), "killed inside it: {held:?}");
    first.kill_and_wait();
    assert!(
        app.deployment("web").await.is_none(),
        "the held write was not applied before the crash"
    );

    let second_log = logs.path().join("worker-2.log");
    let mut second = spawn_process_with(&app, Role::Worker, &second_log, no_start_poll());
    let synced = app
        .wait_app("guestbook", 60, "Synced after the crash", |a| {
            sync_of(a) == ("Synced".into(), commit.clone())
        })
        .await;
    eventually(
        10,
        "the second worker logs the redelivered job done",
        || {
            let log = second_log.clone();
            let id = held.job_id.clone();
            async move {
                job_log::runs(&log, "capstan/guestbook")
                    .iter()
                    .any(|r| r.job_id == id && r.attempt == 2 && r.done.is_some())
            }
        },
    )
    .await;
    second.kill_and_wait();

    let live = app.deployment("web").await.expect("deployment applied");
    assert_eq!(image_of(&live), "nginx:1.25");
    assert_eq!(
        live.pointer("/metadata/generation").and_then(Value::as_i64),
        Some(1),
        "applied once, not re-created or re-specced"
    );
    let history = synced
        .pointer("/status/history")
        .and_then(Value::as_array)
        .expect("history");
    assert_eq!(history.len(), 1, "one deployment recorded: {history:?}");
    assert!(app.config_map("settings").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_removed_from_git_is_pruned_only_when_prune_is_on() {
    let app = spawn_app(Options::default()).await;
    app.repo.write("pruned/a.yaml", &config_map("keep-a", "a"));
    app.repo.write("pruned/b.yaml", &config_map("drop-b", "b"));
    app.repo.write("kept/a.yaml", &config_map("keep-c", "c"));
    app.repo.write("kept/b.yaml", &config_map("stay-d", "d"));
    let first = app.repo.commit("four config maps");
    assert_eq!(
        app.create_app("pruning", "pruned", Some(true))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_app("keeping", "kept", Some(false))
            .await
            .status(),
        201
    );
    for name in ["pruning", "keeping"] {
        app.wait_app(name, 30, "Synced", |a| {
            sync_of(a) == ("Synced".into(), first.clone())
        })
        .await;
    }
    assert!(app.config_map("drop-b").await.is_some());

    app.repo.remove("pruned/b.yaml");
    app.repo.remove("kept/b.yaml");
    let second = app.repo.commit("remove b and d");
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );

    app.wait_app("pruning", 30, "Synced without drop-b", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    assert!(app.config_map("drop-b").await.is_none(), "pruned");
    assert!(app.config_map("keep-a").await.is_some());

    let keeping = app
        .wait_app("keeping", 30, "OutOfSync at the new commit", |a| {
            sync_of(a) == ("OutOfSync".into(), second.clone())
        })
        .await;
    assert!(
        app.config_map("stay-d").await.is_some(),
        "not pruned with prune off"
    );
    let resources = keeping
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .expect("resources");
    let stay = resources
        .iter()
        .find(|r| r["name"] == "stay-d")
        .expect("stay-d listed");
    assert_eq!(stay["requiresPruning"], Value::Bool(true));
    assert_eq!(stay["status"], "OutOfSync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_manifest_is_a_readable_condition_and_nothing_is_applied() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("app/a-config.yaml", &config_map("fine", "x"));
    app.repo.write(
        "app/b-broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
    );
    let commit = app.repo.commit("one good, one broken");
    assert_eq!(
        app.create_app("broken", "app", Some(true)).await.status(),
        201
    );
    let state = app
        .wait_app("broken", 30, "a ComparisonError condition", |a| {
            a.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["type"] == "ComparisonError"))
        })
        .await;
    let conditions = state
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .expect("conditions");
    let message = conditions
        .iter()
        .find(|c| c["type"] == "ComparisonError")
        .and_then(|c| c["message"].as_str())
        .unwrap_or("");
    assert!(
        message.contains("b-broken.yaml"),
        "the condition names the file: {message}"
    );
    assert!(app.config_map("fine").await.is_none(), "no partial apply");

    // An object the cluster refuses (its namespace does not exist) stops the whole sync at dry-run.
    app.repo.write("app/b-broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: does-not-exist\n");
    let fixed = app.repo.commit("valid YAML, impossible namespace");
    assert_eq!(app.push_webhook(&fixed, Some(""), None).await.status(), 202);
    let state = app
        .wait_app("broken", 30, "a SyncError at the new commit", |a| {
            sync_of(a).1 == fixed
                && a.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "SyncError"))
        })
        .await;
    assert_eq!(
        state
            .pointer("/status/operationState/phase")
            .and_then(Value::as_str),
        Some("Failed")
    );
    assert_ne!(
        sync_of(&state).0,
        "Synced",
        "a failed sync never reports Synced"
    );
    assert!(
        app.config_map("fine").await.is_none(),
        "dry-run failure applies nothing"
    );
    let _ = commit;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_endpoint_requires_the_token() {
    let app = spawn_app(Options::default()).await;
    app.repo.write("app/config.yaml", &config_map("c", "1"));
    app.repo.commit("config");
    assert_eq!(app.create_app("manual", "app", None).await.status(), 201);
    let before = app
        .wait_app("manual", 30, "reconciled once", |a| {
            a.pointer("/status/reconciledAt").is_some()
        })
        .await;
    let url = format!(
        "{}/api/v1/applications/{APP_NAMESPACE}/manual/refresh",
        app.address
    );

    assert_eq!(
        app.http.post(&url).send().await.expect("no token").status(),
        401
    );
    assert_eq!(
        app.http
            .post(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .expect("wrong token")
            .status(),
        401
    );
    assert_eq!(
        app.http
            .get(format!("{}/api/v1/applications", app.address))
            .send()
            .await
            .expect("list")
            .status(),
        401
    );

    let reconciled_at = before.pointer("/status/reconciledAt").cloned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = app
        .http
        .post(format!("{url}?hard=true"))
        .bearer_auth(&app.api_token)
        .send()
        .await
        .expect("refresh");
    assert_eq!(resp.status(), 202);
    app.wait_app("manual", 30, "reconciled again", |a| {
        a.pointer("/status/reconciledAt").cloned() != reconciled_at
    })
    .await;
    let state = app.get_app("manual").await;
    assert_eq!(
        sync_of(&state).0,
        "OutOfSync",
        "a refresh never syncs a manual app"
    );
    assert!(app.config_map("c").await.is_none());

    let missing = app
        .http
        .post(format!(
            "{}/api/v1/applications/{APP_NAMESPACE}/nope/refresh",
            app.address
        ))
        .bearer_auth(&app.api_token)
        .send()
        .await
        .expect("refresh missing");
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_picks_up_a_commit_no_webhook_announced() {
    let app = spawn_app(Options {
        poll_interval_secs: 2,
        ..Default::default()
    })
    .await;
    app.repo
        .write("app/config.yaml", &config_map("polled", "one"));
    let first = app.repo.commit("one");
    assert_eq!(
        app.create_app("polled", "app", Some(true)).await.status(),
        201
    );
    app.wait_app("polled", 30, "Synced", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;

    app.repo
        .write("app/config.yaml", &config_map("polled", "two"));
    let second = app.repo.commit("two, with no webhook");
    app.wait_app("polled", 30, "Synced at the unannounced commit", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    let live = app.config_map("polled").await.expect("config map");
    assert_eq!(
        live.pointer("/data/key").and_then(Value::as_str),
        Some("two")
    );
    // The history says the poller caused it, and what the commit was.
    let synced = app.get_app("polled").await;
    let entry = synced
        .pointer("/status/history")
        .and_then(Value::as_array)
        .and_then(|h| h.iter().find(|e| e["revision"] == second.as_str()))
        .expect("a history entry at the polled commit");
    assert_eq!(entry["initiatedBy"]["cause"]["source"], "poll", "{entry}");
    assert_eq!(entry["initiatedBy"]["automated"], true, "{entry}");
    assert_eq!(entry["message"], "two, with no webhook", "{entry}");
}

/// The README's quick start: `capstan serve` with the committed defaults (embedded queue,
/// in-process sandbox), a file:// repository, and the push announced by `capstan webhook`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_configuration_syncs_with_the_embedded_queue_and_an_in_process_sandbox() {
    capstan::install_crypto_provider();
    let data_dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        (
            "CAPSTAN__SERVER__LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        ),
        (
            "CAPSTAN__SERVER__DATA_DIR".to_string(),
            data_dir.path().display().to_string(),
        ),
    ];
    let settings = capstan::config::Settings::load_from(None, env.clone()).expect("defaults");
    assert_eq!(settings.queue.kind, capstan::queue::QueueKind::Embedded);
    assert_eq!(
        settings.cluster.management,
        capstan::config::ManagementCluster::Sandbox
    );
    let log = data_dir.path().join("capstan.log");
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CAPSTAN")) {
        serve.env_remove(key);
    }
    // Logging only: JSON lines with the worker's job spans, read below.
    let _serve = common::child::ChildGuard::new(
        serve
            .arg("serve")
            .current_dir(data_dir.path())
            .envs(env)
            .env("CAPSTAN__LOG__FORMAT", "json")
            .env("CAPSTAN__LOG__LEVEL", "info,capstan=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("capstan serve starts"),
    );
    wait_listening(&log).await;
    let base = format!("http://127.0.0.1:{}", listening_port(&log).expect("port"));
    // Generated on first start, as the README says.
    let token =
        std::fs::read_to_string(data_dir.path().join("api-token")).expect("api token generated");
    let secret = std::fs::read_to_string(data_dir.path().join("github-webhook-secret"))
        .expect("secret generated");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(data_dir.path().join("sandbox.kubeconfig"))
            .expect("the sandbox's kubeconfig is written");
    let cluster = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig"),
    )
    .expect("client");

    let repo = common::git::TestRepo::new();
    repo.write("deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = repo.commit("web at 1.25");
    let app = serde_json::json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "demo"},
        "spec": {"project": "default", "source": {"repoURL": repo.file_url(), "path": ".", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                 "syncPolicy": {"automated": {"prune": true}}}});
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let created = http
        .post(format!("{base}/api/v1/applications"))
        .bearer_auth(&token)
        .json(&app)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let synced_at = |revision: String| {
        let get = http
            .get(format!("{base}/api/v1/applications/capstan/demo"))
            .bearer_auth(&token);
        async move {
            let Ok(resp) = get.send().await else {
                return false;
            };
            let state: Value = resp.json().await.unwrap_or(Value::Null);
            sync_of(&state) == ("Synced".to_string(), revision)
        }
    };
    // The creation's sync is over before the next commit exists, so only the push can deploy it.
    eventually(30, "the app is Synced at the first commit", || {
        synced_at(first.clone())
    })
    .await;

    repo.write("deploy.yaml", &deployment("web", "nginx:1.27"));
    let second = repo.commit("web at 1.27");
    let args = capstan::cli::webhook::WebhookArgs {
        server: base.clone(),
        provider: "github".into(),
        secret: Some(secret.clone()),
        unsigned: false,
        repo: repo.file_url(),
        branch: "main".into(),
        git_ref: None,
        after: Some(second.clone()),
        before: None,
        files: Vec::new(),
        default_branch: "main".into(),
    };
    let (status, body) = capstan::cli::webhook::send(&args, std::path::Path::new("/nonexistent"))
        .await
        .expect("send");
    assert_eq!(status, 202, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("the 202 answer is JSON");
    let event_id = answer["id"].as_str().expect("the answer names the event");

    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(cluster, "default");
    eventually(30, "the in-process sandbox runs nginx:1.27", || {
        let deployments = deployments.clone();
        async move {
            let Ok(Some(d)) = deployments.get_opt("web").await else {
                return false;
            };
            let image = d
                .spec
                .and_then(|s| s.template.spec)
                .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
            image.as_deref() == Some("nginx:1.27")
        }
    })
    .await;
    eventually(30, "the app is Synced at the pushed commit", || {
        synced_at(second.clone())
    })
    .await;
    // The push's event caused the job whose run synced the pushed commit.
    eventually(10, "the webhook's job synced the pushed commit", || {
        let done = job_log::runs(&log, "capstan/demo")
            .iter()
            .any(|r| r.event_id == event_id && r.synced() && r.revision() == second);
        async move { done }
    })
    .await;
}

/// `capstan app create -f` (an Argo CD document), `app list` and `app get` against a running server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_gets_applications_through_the_rest_api() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("app/config.yaml", &config_map("from-cli", "x"));
    let commit = app.repo.commit("config");
    let file = app.data_dir.path().join("argo-app.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: clidemo\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: {}\n    path: app\n    targetRevision: main\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: default\n  syncPolicy:\n    automated: {{prune: true}}\n",
            app.repo_url
        ),
    )
    .expect("write app file");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["app", "--server", &app.address, "--token", &app.api_token])
            .args(args)
            .env("CAPSTAN__SERVER__DATA_DIR", app.data_dir.path())
            .output()
            .expect("capstan runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = cli(&["create", "-f", &file.display().to_string()]);
    assert!(ok, "create failed: {stderr}");
    assert!(
        stdout.contains("\"apiVersion\": \"capstan.dev/v1alpha1\""),
        "{stdout}"
    );

    app.wait_app("clidemo", 30, "Synced", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    let (ok, stdout, _) = cli(&["list"]);
    assert!(ok);
    let line = stdout
        .lines()
        .find(|l| l.contains("capstan/clidemo"))
        .expect("listed");
    assert!(
        line.contains("Synced") && line.contains("Auto-Prune") && line.contains(&app.repo_url),
        "{line}"
    );
    let (ok, stdout, _) = cli(&["list", "-o", "wide"]);
    assert!(ok);
    let line = stdout
        .lines()
        .find(|l| l.contains("capstan/clidemo"))
        .expect("listed wide");
    assert!(line.contains(&commit), "wide shows the revision: {line}");
    let (ok, stdout, _) = cli(&["get", "clidemo"]);
    assert!(ok);
    assert!(
        stdout.contains("Name:               capstan/clidemo")
            && stdout.contains(&format!("Synced to main ({})", &commit[..7])),
        "{stdout}"
    );
    let (ok, stdout, _) = cli(&["get", "clidemo", "-o", "json"]);
    assert!(ok);
    let got: Value = serde_json::from_str(&stdout).expect("get -o json prints JSON");
    assert_eq!(
        got.pointer("/status/sync/revision").and_then(Value::as_str),
        Some(commit.as_str())
    );

    let (ok, _, stderr) = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["app", "--server", &app.address, "--token", "wrong", "list"])
        .output()
        .map(|o| {
            (
                o.status.success(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .expect("capstan runs");
    assert!(!ok, "a wrong token fails");
    assert!(stderr.contains("401"), "{stderr}");
}

/// `CreateNamespace=true` creates the destination namespace first; without it the sync fails
/// at dry-run with Kubernetes' own message and applies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_namespace_creates_the_destination_namespace() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("app/config.yaml", &config_map("in-shop", "x"));
    let commit = app.repo.commit("config for the shop namespace");
    let spec = |name: &str, options: Vec<&str>| {
        serde_json::json!({
            "project": "default",
            "source": { "repoURL": app.repo_url, "path": "app", "targetRevision": "main" },
            "destination": { "server": "https://kubernetes.default.svc", "namespace": name },
            "syncPolicy": { "automated": { "prune": true }, "syncOptions": options },
        })
    };
    assert_eq!(
        app.create_app_with("without", spec("nowhere", vec![]))
            .await
            .status(),
        201
    );
    let failed = app
        .wait_app("without", 30, "a SyncError", |a| {
            a.pointer("/status/operationState/phase") == Some(&Value::from("Failed"))
        })
        .await;
    let results = failed
        .pointer("/status/operationState/syncResult/resources")
        .cloned()
        .unwrap_or_default();
    assert!(
        results
            .to_string()
            .contains("namespaces \\\"nowhere\\\" not found"),
        "{results}"
    );

    assert_eq!(
        app.create_app_with("with", spec("shop", vec!["CreateNamespace=true"]))
            .await
            .status(),
        201
    );
    app.wait_app("with", 30, "Synced", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    let cm = app
        .live("v1", "ConfigMap", "configmaps", "shop", "in-shop")
        .await;
    assert!(cm.is_some(), "applied into the created namespace");
    let ns = app.live("v1", "Namespace", "namespaces", "", "shop").await;
    assert!(ns.is_some());
}

/// Health follows the cluster: a Deployment the sandbox makes fail turns the app Degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_deployment_makes_the_app_degraded_with_the_reason() {
    let app = spawn_app(Options::default()).await;
    let failing = deployment("web", "nginx:broken").replace(
        "metadata:\n  name: web\n",
        "metadata:\n  name: web\n  annotations:\n    sandbox.capstan.dev/fail: \"true\"\n",
    );
    app.repo.write("app/deploy.yaml", &failing);
    let commit = app.repo.commit("a deployment that never becomes available");
    assert_eq!(
        app.create_app("failing", "app", Some(true)).await.status(),
        201
    );
    let degraded = app
        .wait_app("failing", 30, "Degraded", |a| {
            a.pointer("/status/health/status") == Some(&Value::from("Degraded"))
        })
        .await;
    assert_eq!(
        sync_of(&degraded),
        ("Synced".to_string(), commit),
        "applied as Git says, yet unhealthy"
    );
    let message = degraded
        .pointer("/status/health/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        message.contains("progress deadline"),
        "the reason is shown: {message}"
    );
}
