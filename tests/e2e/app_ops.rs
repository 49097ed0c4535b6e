//! The day-2 surface: sync options, history, rollback, terminate, the resource tree and
//! `capstan app wait`, through the REST API and the CLI.

use capstan::config::Role;
use capstan::job::{Job, JobKind, ResourceSelector};
use capstan::queue::{QueueSettings, shard_for};
use capstan::store::Application;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::helpers::*;

/// The next job queued for `app` (in the control namespace), taken off its shard queue. Jobs
/// queues have a single active consumer (no `basic.get`); with no worker running, this one is it.
async fn next_job(test: &TestApp, app: &str) -> Job {
    use futures::StreamExt;
    let shard = shard_for(
        &format!("{APP_NAMESPACE}/{app}"),
        QueueSettings::default().shards,
    );
    let queue = format!("{}.jobs.{shard}", test.prefix);
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("amqp connect");
    let channel = conn.create_channel().await.expect("channel");
    channel.basic_qos(1, Default::default()).await.expect("qos");
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "app-ops-test".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .expect("consume");
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), consumer.next())
        .await
        .unwrap_or_else(|_| panic!("no job in {queue}"))
        .expect("a delivery")
        .expect("delivery ok");
    delivery.ack(Default::default()).await.expect("ack");
    let _ = conn.close(0, "".into()).await;
    Job::parse(&delivery.data).expect("a job")
}

/// Messages waiting on `app`'s shard queue.
async fn jobs_waiting(test: &TestApp, app: &str) -> u32 {
    let shard = shard_for(
        &format!("{APP_NAMESPACE}/{app}"),
        QueueSettings::default().shards,
    );
    queue_depth(&format!("{}.jobs.{shard}", test.prefix)).await
}

fn app_path(app: &str, rest: &str) -> String {
    format!("/api/v1/applications/{APP_NAMESPACE}/{app}{rest}")
}

async fn delete(test: &TestApp, path: &str) -> reqwest::Response {
    test.http
        .delete(format!("{}{path}", test.address))
        .bearer_auth(&test.api_token)
        .send()
        .await
        .expect("API request")
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error json");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Runs `capstan app ARGS…` against `test`'s server: exit code, stdout, stderr.
fn cli(test: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["app", "--server", &test.address, "--token", &test.api_token])
        .args(args)
        .env("CAPSTAN__SERVER__DATA_DIR", test.data_dir.path())
        .output()
        .expect("capstan runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// With no worker, every job the API queues stays on the queue to be read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_two_endpoints_queue_what_was_asked_and_refuse_what_argo_cd_refuses() {
    let test = spawn_app(Options {
        role: Role::Api,
        ..Default::default()
    })
    .await;
    assert_eq!(test.create_app("manual", "app", None).await.status(), 201);
    assert_eq!(
        test.create_app("auto", "app", Some(true)).await.status(),
        201
    );

    let selector =
        json!({"group": "apps", "kind": "Deployment", "namespace": "default", "name": "web"});
    let resp = test
        .post(
            &app_path("manual", "/sync"),
            &json!({"prune": true, "dryRun": true, "revision": "v1.2", "resources": [selector]}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.expect("json");
    let job = next_job(&test, "manual").await;
    assert_eq!(answer["job"], job.id.as_str());
    assert_eq!(job.kind, JobKind::Sync);
    assert!(job.prune);
    let sync = job.sync.expect("sync options travel with the job");
    assert_eq!(
        sync.resources,
        [ResourceSelector::parse("apps:Deployment:default/web").expect("selector")]
    );
    assert_eq!(sync.revision.as_deref(), Some("v1.2"));
    assert!(sync.dry_run);

    // A body no sync could act on is refused before anything is queued.
    for bad in [
        json!({"resources": [{"kind": "Deployment", "name": ""}]}),
        json!({"revision": "--upload-pack=touch /tmp/x"}),
        json!({"prunne": true}),
    ] {
        let (status, _) = error_of(test.post(&app_path("manual", "/sync"), &bad).await).await;
        assert_eq!(status, 400, "{bad}");
    }

    let (status, message) = error_of(
        test.post(&app_path("auto", "/rollback"), &json!({"id": 0}))
            .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (
            409,
            "rollback is not allowed while automated sync is enabled"
        )
    );
    let (status, _) = error_of(
        test.post(&app_path("manual", "/rollback"), &json!({"id": 99}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, message) = error_of(delete(&test, &app_path("manual", "/operation")).await).await;
    assert_eq!(
        (status, message.as_str()),
        (409, "no operation is in progress")
    );
    assert_eq!(
        jobs_waiting(&test, "manual").await,
        0,
        "refusals queue nothing"
    );
    assert_eq!(
        jobs_waiting(&test, "auto").await,
        0,
        "refusals queue nothing"
    );

    // Two deployments and a sync running, as a worker would have recorded them.
    let (first, second) = ("a".repeat(40), "b".repeat(40));
    Api::<Application>::namespaced(test.kube.clone(), APP_NAMESPACE)
        .patch_status(
            "manual",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "history": [
                    {"id": 0, "revision": first, "deployedAt": "2026-12-01T10:00:00Z",
                     "initiatedBy": {"username": "alice"}},
                    {"id": 1, "revision": second, "deployedAt": "2026-12-01T11:00:00Z",
                     "initiatedBy": {"automated": true}},
                ],
                "operationState": {"phase": "Running", "startedAt": "2026-12-01T12:00:00Z"},
            }})),
        )
        .await
        .expect("status written");

    let history: Value = test
        .get(&app_path("manual", "/history"))
        .await
        .json()
        .await
        .expect("history json");
    let listed: Vec<(i64, &str)> = history["history"]
        .as_array()
        .expect("history list")
        .iter()
        .map(|h| {
            (
                h["id"].as_i64().unwrap_or(-1),
                h["revision"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(1, second.as_str()), (0, first.as_str())],
        "newest first"
    );
    assert_eq!(history["history"][1]["deployedAt"], "2026-12-01T10:00:00Z");
    assert_eq!(history["history"][1]["initiatedBy"]["username"], "alice");

    let resp = test
        .post(
            &app_path("manual", "/rollback"),
            &json!({"id": 0, "dryRun": true}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let job = next_job(&test, "manual").await;
    assert_eq!(job.kind, JobKind::Sync);
    let sync = job.sync.expect("rollback options");
    assert_eq!(sync.rollback_id, Some(0));
    assert_eq!(sync.revision.as_deref(), Some(first.as_str()));
    assert!(sync.dry_run);

    assert_eq!(
        delete(&test, &app_path("manual", "/operation"))
            .await
            .status(),
        202
    );
    assert_eq!(next_job(&test, "manual").await.kind, JobKind::Terminate);

    let anonymous = test
        .http
        .get(format!(
            "{}{}",
            test.address,
            app_path("manual", "/history")
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
}

/// The node of `kind` whose parent has `parent_uid`.
fn child_of<'a>(tree: &'a Value, kind: &str, parent_uid: &str) -> &'a Value {
    tree["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["kind"] == kind && n["parentRefs"][0]["uid"] == parent_uid)
        .unwrap_or_else(|| panic!("no {kind} owned by {parent_uid} in the tree: {tree}"))
}

fn node<'a>(tree: &'a Value, kind: &str, name: &str) -> &'a Value {
    tree["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["kind"] == kind && n["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the tree: {tree}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_app_has_history_a_resource_tree_and_can_be_waited_for() {
    let test = spawn_app(Options::default()).await;
    test.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"))
        .write("app/config.yaml", &config_map("web-config", "x"));
    let commit = test.repo.commit("web");
    assert_eq!(test.create_app("shop", "app", None).await.status(), 201);
    assert_eq!(test.create_app("idle", "app", None).await.status(), 201);
    let resp = test.post(&app_path("shop", "/sync"), &json!(null)).await;
    assert_eq!(resp.status(), 202);
    test.wait_app("shop", 60, "Synced, Healthy, with history", |a| {
        sync_of(a) == ("Synced".into(), commit.clone())
            && a.pointer("/status/health/status") == Some(&Value::from("Healthy"))
            && a.pointer("/status/history/0").is_some()
    })
    .await;

    let history: Value = test
        .get(&app_path("shop", "/history"))
        .await
        .json()
        .await
        .expect("history json");
    assert_eq!(
        history["history"][0]["revision"],
        commit.as_str(),
        "{history}"
    );
    let (code, stdout, stderr) = cli(&test, &["history", "shop"]);
    assert_eq!(code, 0, "{stderr}");
    let row = stdout.lines().nth(1).expect("a history row");
    assert!(row.contains(&commit), "{stdout}");

    // The tree: the Deployment, the ReplicaSet it owns and that ReplicaSet's Pod, as the
    // sandbox's controllers create them.
    let deploy = test.deployment("web").await.expect("deployment applied");
    let deploy_uid = deploy["metadata"]["uid"].as_str().expect("uid").to_owned();
    let tree: Value = test
        .get(&app_path("shop", "/resource-tree"))
        .await
        .json()
        .await
        .expect("tree json");
    let d = node(&tree, "Deployment", "web");
    assert_eq!(d["uid"], deploy_uid.as_str());
    assert_eq!(d["group"], "apps");
    assert_eq!(d["health"]["status"], "Healthy");
    assert_eq!(d["syncStatus"], "Synced");
    assert_eq!(d["parentRefs"], json!([]));
    let rs = child_of(&tree, "ReplicaSet", &deploy_uid);
    assert_eq!(rs["parentRefs"][0]["kind"], "Deployment");
    let rs_uid = rs["uid"].as_str().expect("uid").to_owned();
    let pod = child_of(&tree, "Pod", &rs_uid);
    assert_eq!(pod["parentRefs"][0]["kind"], "ReplicaSet");
    assert!(pod["health"]["status"].is_string(), "{tree}");

    let (code, stdout, stderr) = cli(&test, &["resources", "shop"]);
    assert_eq!(code, 0, "{stderr}");
    let line_of = |name: &str| {
        stdout
            .lines()
            .position(|l| l.split_whitespace().any(|c| c == name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{stdout}"))
    };
    let lines: Vec<&str> = stdout.lines().collect();
    let rs_name = rs["name"].as_str().expect("name").to_owned();
    let pod_name = pod["name"].as_str().expect("name").to_owned();
    let (d, rs, pod) = (line_of("web"), line_of(&rs_name), line_of(&pod_name));
    assert!(
        d < rs && rs < pod,
        "children under their parents:\n{stdout}"
    );
    // Each child's KIND starts further right than its parent's.
    let kind_at = |i: usize, kind: &str| {
        let byte = lines[i].find(kind).expect("kind printed");
        lines[i][..byte].chars().count()
    };
    assert!(
        kind_at(d, "Deployment") < kind_at(rs, "ReplicaSet")
            && kind_at(rs, "ReplicaSet") < kind_at(pod, "Pod"),
        "{stdout}"
    );
    assert!(lines[d].contains("Healthy"), "{stdout}");

    let (code, stdout, stderr) = cli(
        &test,
        &["wait", "shop", "--sync", "--health", "--timeout", "60"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("Synced") && stdout.contains("Healthy"),
        "{stdout}"
    );
    // `idle` was never synced, so it is not healthy: a short wait gives up with exit 1.
    let (code, _, stderr) = cli(&test, &["wait", "idle", "--timeout", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("timed out") && stderr.contains("health"),
        "{stderr}"
    );
    // Refusals and usage errors have their own codes.
    let (code, _, stderr) = cli(&test, &["terminate-op", "shop"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no operation is in progress"), "{stderr}");
    let (code, _, stderr) = cli(&test, &["sync", "shop", "--resource", "Deployment/web"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["app", "--server", "http://127.0.0.1:9", "--token", "t"])
        .args(["wait", "shop", "--timeout", "5"])
        .output()
        .map(|o| (o.status.code().unwrap_or(-1), (), ()))
        .expect("capstan runs");
    assert_eq!(code, 2, "an unreachable server is a connection error");

    // A managed object deleted behind Capstan's back is a Missing node.
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(test.kube.clone(), "default")
        .delete("web-config", &Default::default())
        .await
        .expect("config map deleted");
    let tree: Value = test
        .get(&app_path("shop", "/resource-tree"))
        .await
        .json()
        .await
        .expect("tree json");
    assert_eq!(
        node(&tree, "ConfigMap", "web-config")["health"]["status"],
        "Missing"
    );
}
