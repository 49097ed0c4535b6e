//! The sync engine end to end, in the shapes of Argo CD's own e2e suite and of
//! argocd-example-apps (`pre-post-sync`, `sync-waves`): hooks, waves, health gating, failures,
//! retries. The order things happened in is read from the sandbox's watch events, whose
//! resourceVersions come from one counter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::helpers::*;

/// One watch event: resourceVersion, kind, name, whether deleted, and the object.
#[derive(Clone, Debug)]
struct Seen {
    rv: u64,
    kind: String,
    name: String,
    deleted: bool,
    obj: Value,
}

/// Records every event of the given kinds in `default`, in resourceVersion order.
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Recorder {
    async fn start(app: &TestApp, kinds: &[(&str, &str, &str)]) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (api_version, kind, plural) in kinds {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let ar = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: (*api_version).into(),
                kind: (*kind).into(),
                plural: (*plural).into(),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(app.kube.clone(), "default", &ar);
            let seen = seen.clone();
            let kind = kind.to_string();
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
            tasks.push(tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                let mut stream = watcher(api, watcher::Config::default()).boxed();
                while let Some(ev) = stream.next().await {
                    let (obj, deleted) = match ev {
                        Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => {
                            (o, false)
                        }
                        Ok(watcher::Event::Delete(o)) => (o, true),
                        Ok(watcher::Event::InitDone) => {
                            if let Some(tx) = ready.take() {
                                let _ = tx.send(());
                            }
                            continue;
                        }
                        _ => continue,
                    };
                    let rv = obj
                        .metadata
                        .resource_version
                        .as_deref()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    let name = obj.metadata.name.clone().unwrap_or_default();
                    let obj = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    seen.lock().expect("seen").push(Seen {
                        rv,
                        kind: kind.clone(),
                        name,
                        deleted,
                        obj,
                    });
                }
            }));
            let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
        }
        Recorder { seen, tasks }
    }

    fn events(&self) -> Vec<Seen> {
        let mut all = self.seen.lock().expect("seen").clone();
        all.sort_by_key(|s| s.rv);
        all
    }

    /// The first event of `kind`/name (prefix for generated names) matching `pred`.
    fn first(&self, kind: &str, name: &str, pred: impl Fn(&Seen) -> bool) -> Option<Seen> {
        self.events()
            .into_iter()
            .find(|s| s.kind == kind && s.name.starts_with(name) && pred(s))
    }
}

fn job(name_field: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  {name_field}\n  annotations:\n{annotations}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: run\n          image: busybox\n          command: [\"true\"]\n"
    )
}

fn service(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  annotations:\n    x: \"y\"\n{annotations}spec:\n  selector: {{app: {name}}}\n  ports:\n    - port: 80\n"
    )
}

fn with_annotations(manifest: &str, name: &str, annotations: &str) -> String {
    manifest.replace(
        &format!("metadata:\n  name: {name}\n"),
        &format!("metadata:\n  name: {name}\n  annotations:\n{annotations}"),
    )
}

/// An Application spec for `path` of the test repository, into `default`, with `sync_policy`.
fn spec_of(app: &TestApp, path: &str, sync_policy: Value) -> Value {
    json!({
        "project": "default",
        "source": { "repoURL": app.repo_url, "path": path, "targetRevision": "main" },
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        "syncPolicy": sync_policy,
    })
}

async fn sync(app: &TestApp, name: &str, body: Value) {
    let resp = app
        .post(
            &format!("/api/v1/applications/{APP_NAMESPACE}/{name}/sync"),
            &body,
        )
        .await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
}

fn op_phase(a: &Value) -> &str {
    a.pointer("/status/operationState/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn results(a: &Value) -> Vec<Value> {
    a.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn is_available(s: &Seen) -> bool {
    s.obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True")
        })
}

fn is_complete(s: &Seen) -> bool {
    s.obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
        })
}

/// argocd-example-apps `pre-post-sync`: a PreSync and a PostSync `generateName` Job around the
/// app, both deleted when they succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_and_post_sync_hooks_run_around_the_app_and_are_gone_after() {
    let app = spawn_app(Options::default()).await;
    let policy = "    argocd.argoproj.io/hook-delete-policy: HookSucceeded\n";
    app.repo.write(
        "pre-post-sync/upgrade-sql-schema.yaml",
        &job(
            "generateName: upgrade-sql-schema-",
            &format!("    argocd.argoproj.io/hook: PreSync\n{policy}"),
        ),
    );
    app.repo.write(
        "pre-post-sync/deployment.yaml",
        &deployment("guestbook-ui", "gcr.io/heptio-images/ks-guestbook-demo:0.2"),
    );
    app.repo
        .write("pre-post-sync/service.yaml", &service("guestbook-ui", ""));
    app.repo.write(
        "pre-post-sync/slack-notification.yaml",
        &job(
            "generateName: app-slack-notification-",
            &format!("    argocd.argoproj.io/hook: PostSync\n{policy}"),
        ),
    );
    let commit = app.repo.commit("pre-post-sync");
    let rec = Recorder::start(
        &app,
        &[
            ("batch/v1", "Job", "jobs"),
            ("apps/v1", "Deployment", "deployments"),
        ],
    )
    .await;
    assert_eq!(
        app.create_app("hooks", "pre-post-sync", None)
            .await
            .status(),
        201
    );
    sync(&app, "hooks", json!({})).await;
    let done = app
        .wait_app("hooks", 60, "the sync succeeded, Synced and Healthy", |a| {
            op_phase(a) == "Succeeded"
                && sync_of(a) == ("Synced".into(), commit.clone())
                && a.pointer("/status/health/status") == Some(&Value::from("Healthy"))
        })
        .await;
    let hooks: Vec<Value> = results(&done)
        .into_iter()
        .filter(|r| r.get("hookType").is_some())
        .collect();
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    for h in &hooks {
        assert_eq!(h["hookPhase"], "Succeeded", "{h}");
    }
    // Order: the PreSync Job completed before the Deployment existed; the PostSync Job was created
    // only once the Deployment was available.
    let pre_done = rec
        .first("Job", "upgrade-sql-schema-", is_complete)
        .expect("PreSync job completed");
    let deploy_created = rec
        .first("Deployment", "guestbook-ui", |_| true)
        .expect("deployment created");
    let available = rec
        .first("Deployment", "guestbook-ui", is_available)
        .expect("deployment available");
    let post_created = rec
        .first("Job", "app-slack-notification-", |_| true)
        .expect("PostSync job created");
    assert!(
        pre_done.rv < deploy_created.rv,
        "PreSync {} before the Deployment {}",
        pre_done.rv,
        deploy_created.rv
    );
    assert!(
        available.rv < post_created.rv,
        "PostSync {} after available {}",
        post_created.rv,
        available.rv
    );
    // HookSucceeded: both Jobs are gone, and their names were generated.
    eventually(30, "the hooks are deleted", || async {
        rec.events()
            .iter()
            .filter(|s| s.kind == "Job" && s.deleted)
            .count()
            == 2
    })
    .await;
    let jobs = rec.events();
    assert!(
        jobs.iter()
            .any(|s| s.name.len() == "upgrade-sql-schema-".len() + 5)
    );
    // Hooks are not resources of the app: not listed, never pruned.
    let resources = done
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(
        resources.iter().all(|r| r["kind"] != "Job"),
        "{resources:?}"
    );
}

/// Argo CD's `TestPreSyncHookFailure`: a failing PreSync hook stops the sync; nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_sync_hook_stops_the_sync_and_creates_nothing() {
    let app = spawn_app(Options::default()).await;
    app.repo.write(
        "app/migrate.yaml",
        &job(
            "name: migrate",
            "    argocd.argoproj.io/hook: PreSync\n    sandbox.capstan.dev/fail: \"true\"\n",
        ),
    );
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    app.repo
        .write("app/config.yaml", &config_map("settings", "x"));
    app.repo.commit("a migration that fails");
    assert_eq!(
        app.create_app("failing-hook", "app", None).await.status(),
        201
    );
    sync(&app, "failing-hook", json!({})).await;
    let failed = app
        .wait_app("failing-hook", 60, "the sync failed", |a| {
            op_phase(a) == "Failed"
        })
        .await;
    let message = failed
        .pointer("/status/operationState/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        message.contains("migrate"),
        "the failure names the hook: {message}"
    );
    assert!(
        app.deployment("web").await.is_none(),
        "nothing of the Sync phase was created"
    );
    assert!(app.config_map("settings").await.is_none());
    assert_ne!(sync_of(&failed).0, "Synced");
    let hook = results(&failed)
        .into_iter()
        .find(|r| r["name"] == "migrate")
        .expect("hook result");
    assert_eq!(hook["hookPhase"], "Failed");
    // BeforeHookCreation (the default) keeps the failed Job for inspection.
    assert!(
        app.live("batch/v1", "Job", "jobs", "default", "migrate")
            .await
            .is_some()
    );
}

/// argocd-example-apps `sync-waves`: each wave starts only when the previous one is healthy, and
/// Argo CD's `TestSyncWaves…Degraded`: a degraded wave stops the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_apply_in_order_and_a_degraded_wave_stops_the_next() {
    let app = spawn_app(Options::default()).await;
    let wave = |n: i32| format!("    argocd.argoproj.io/sync-wave: \"{n}\"\n");
    app.repo.write(
        "waves/0-config.yaml",
        &with_annotations(&config_map("settings", "x"), "settings", &wave(0)),
    );
    app.repo.write(
        "waves/1-backend.yaml",
        &with_annotations(
            &deployment("backend", "nginx:1.25"),
            "backend",
            &format!("{}    sandbox.capstan.dev/ready-delay: 1s\n", wave(1)),
        ),
    );
    app.repo
        .write("waves/2-frontend.yaml", &service("frontend", &wave(2)));
    let commit = app.repo.commit("three waves");
    let rec = Recorder::start(
        &app,
        &[
            ("v1", "ConfigMap", "configmaps"),
            ("apps/v1", "Deployment", "deployments"),
            ("v1", "Service", "services"),
        ],
    )
    .await;
    assert_eq!(app.create_app("waves", "waves", None).await.status(), 201);
    sync(&app, "waves", json!({})).await;
    app.wait_app("waves", 60, "Succeeded and Synced", |a| {
        op_phase(a) == "Succeeded" && sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;
    let config = rec
        .first("ConfigMap", "settings", |_| true)
        .expect("config created");
    let backend = rec
        .first("Deployment", "backend", |_| true)
        .expect("backend created");
    let ready = rec
        .first("Deployment", "backend", is_available)
        .expect("backend available");
    let frontend = rec
        .first("Service", "frontend", |_| true)
        .expect("frontend created");
    assert!(config.rv < backend.rv, "wave 0 before wave 1");
    assert!(
        ready.rv < frontend.rv,
        "wave 2 ({}) only after wave 1 is healthy ({})",
        frontend.rv,
        ready.rv
    );

    // A degraded wave 1 stops wave 2: the sync fails, wave 2 is never created.
    app.repo.write(
        "waves/1-backend.yaml",
        &with_annotations(
            &deployment("backend", "nginx:broken"),
            "backend",
            &format!("{}    sandbox.capstan.dev/fail: \"true\"\n    sandbox.capstan.dev/ready-delay: 200ms\n", wave(1)),
        ),
    );
    app.repo
        .write("waves/2-frontend.yaml", &service("frontend-v2", &wave(2)));
    app.repo.commit("a broken backend");
    app.refresh_app("waves").await;
    sync(&app, "waves", json!({})).await;
    let failed = app
        .wait_app("waves", 60, "the sync failed on the degraded wave", |a| {
            op_phase(a) == "Failed"
        })
        .await;
    let message = failed
        .pointer("/status/operationState/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        message.contains("backend") && message.contains("Degraded"),
        "{message}"
    );
    assert!(
        app.live("v1", "Service", "services", "default", "frontend-v2")
            .await
            .is_none(),
        "wave 2 was never applied"
    );
    assert_eq!(sync_of(&failed).0, "OutOfSync");
}

/// `retry.limit` bounds the attempts on a failing revision, and then automation leaves it be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_revision_is_retried_up_to_the_limit_and_no_further() {
    let app = spawn_app(Options {
        poll_interval_secs: 2,
        ..Default::default()
    })
    .await;
    app.repo.write(
        "app/check.yaml",
        &job("name: check", "    argocd.argoproj.io/hook: PreSync\n    sandbox.capstan.dev/fail: \"true\"\n    sandbox.capstan.dev/ready-delay: 100ms\n"),
    );
    app.repo
        .write("app/config.yaml", &config_map("settings", "x"));
    app.repo.commit("a check that always fails");
    let rec = Recorder::start(&app, &[("batch/v1", "Job", "jobs")]).await;
    let spec = spec_of(
        &app,
        "app",
        json!({
            "automated": { "prune": true },
            "retry": { "limit": 2, "backoff": { "duration": "1s", "factor": 1, "maxDuration": "1s" } }
        }),
    );
    assert_eq!(app.create_app_with("retried", spec).await.status(), 201);
    let failed = app
        .wait_app("retried", 60, "Failed after the retries", |a| {
            op_phase(a) == "Failed"
        })
        .await;
    assert_eq!(
        failed
            .pointer("/status/operationState/retryCount")
            .and_then(Value::as_i64),
        Some(2)
    );
    let attempts = || {
        let mut uids: Vec<String> = rec
            .events()
            .iter()
            .filter(|s| s.kind == "Job" && !s.deleted)
            .filter_map(|s| {
                s.obj
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        uids.sort();
        uids.dedup();
        uids.len()
    };
    assert_eq!(attempts(), 3, "the first attempt and two retries");
    // Several polls later: no further attempt at this revision.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = app.get_app("retried").await;
    assert_eq!(op_phase(&later), "Failed");
    assert_eq!(attempts(), 3, "not retried past the limit");
    assert!(app.config_map("settings").await.is_none());
}

/// argocd-example-apps `helm-hooks`: Helm's hook annotations drive the phases, `hook-weight` the
/// waves (of a plain Service too), and `hook-succeeded` deletes the hooks after they ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_with_helm_hooks_reaches_synced_and_healthy_with_its_hooks_run_and_gone() {
    crate::common::tools::require("helm");
    let app = spawn_app(Options::default()).await;
    app.repo.write(
        "helm-hooks/Chart.yaml",
        "apiVersion: v2\nname: helm-hooks\nversion: 0.1.0\n",
    );
    app.repo.write(
        "helm-hooks/templates/pre-install.yaml",
        &job(
            "name: {{ .Release.Name }}-pre-install",
            "    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-weight: \"-1\"\n    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded\n",
        ),
    );
    app.repo.write(
        "helm-hooks/templates/post-install.yaml",
        &job(
            "name: {{ .Release.Name }}-post-install",
            "    helm.sh/hook: post-install,post-upgrade\n    helm.sh/hook-delete-policy: hook-succeeded\n",
        ),
    );
    app.repo.write(
        "helm-hooks/templates/deployment.yaml",
        &deployment("helm-guestbook", "nginx:1.25"),
    );
    app.repo.write(
        "helm-hooks/templates/service.yaml",
        &service("helm-guestbook", "    helm.sh/hook-weight: \"2\"\n"),
    );
    let commit = app.repo.commit("helm hooks chart");
    let rec = Recorder::start(
        &app,
        &[
            ("batch/v1", "Job", "jobs"),
            ("apps/v1", "Deployment", "deployments"),
            ("v1", "Service", "services"),
        ],
    )
    .await;
    let spec = spec_of(
        &app,
        "helm-hooks",
        json!({ "automated": { "prune": true } }),
    );
    assert_eq!(app.create_app_with("helm-hooks", spec).await.status(), 201);
    let done = app
        .wait_app(
            "helm-hooks",
            90,
            "Synced and Healthy after its hooks",
            |a| {
                op_phase(a) == "Succeeded"
                    && sync_of(a) == ("Synced".into(), commit.clone())
                    && a.pointer("/status/health/status") == Some(&Value::from("Healthy"))
            },
        )
        .await;
    assert_eq!(
        done.pointer("/status/sourceType").and_then(Value::as_str),
        Some("Helm")
    );
    let hooks: Vec<Value> = results(&done)
        .into_iter()
        .filter(|r| r.get("hookType").is_some())
        .collect();
    let phases: Vec<(&str, &str)> = hooks
        .iter()
        .map(|h| {
            (
                h["hookType"].as_str().unwrap_or(""),
                h["hookPhase"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [("PreSync", "Succeeded"), ("PostSync", "Succeeded")],
        "{hooks:?}"
    );
    let pre = rec
        .first("Job", "helm-hooks-pre-install", is_complete)
        .expect("pre-install completed");
    let deploy = rec
        .first("Deployment", "helm-guestbook", |_| true)
        .expect("deployment");
    let ready = rec
        .first("Deployment", "helm-guestbook", is_available)
        .expect("available");
    let svc = rec
        .first("Service", "helm-guestbook", |_| true)
        .expect("service");
    let post = rec
        .first("Job", "helm-hooks-post-install", |_| true)
        .expect("post-install");
    assert!(pre.rv < deploy.rv, "pre-install before the chart's objects");
    assert!(
        ready.rv < svc.rv,
        "hook-weight 2 puts the Service in a later wave"
    );
    assert!(svc.rv < post.rv, "post-install last");
    eventually(30, "hook-succeeded deleted both hooks", || async {
        rec.events()
            .iter()
            .filter(|s| s.kind == "Job" && s.deleted)
            .count()
            == 2
    })
    .await;
}

/// Self-heal from the watches: a Deployment scaled by hand is put back in seconds, long before
/// the next poll (180 s here), and a heal is recorded as an automated sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manually_scaled_deployment_is_restored_by_self_heal_without_waiting_for_the_poller() {
    let app = spawn_app(Options::default()).await;
    app.repo.write(
        "app/deploy.yaml",
        &deployment("web", "nginx:1.25").replace("replicas: 1", "replicas: 2"),
    );
    let commit = app.repo.commit("two replicas");
    let spec = spec_of(
        &app,
        "app",
        json!({ "automated": { "prune": true, "selfHeal": true } }),
    );
    assert_eq!(app.create_app_with("healing", spec).await.status(), 201);
    let synced = app
        .wait_app("healing", 60, "Synced and Healthy", |a| {
            sync_of(a) == ("Synced".into(), commit.clone())
                && a.pointer("/status/health/status") == Some(&Value::from("Healthy"))
        })
        .await;
    let history_before = synced
        .pointer("/status/history")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);

    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(app.kube.clone(), "default");
    let scale = json!({"spec": {"replicas": 5}});
    deployments
        .patch(
            "web",
            &kube::api::PatchParams {
                field_manager: Some("kubectl-scale".into()),
                ..Default::default()
            },
            &kube::api::Patch::Merge(&scale),
        )
        .await
        .expect("scaled by hand");
    let replicas = || async {
        deployments
            .get("web")
            .await
            .ok()
            .and_then(|d| d.spec.and_then(|s| s.replicas))
    };
    assert_eq!(replicas().await, Some(5), "the manual change landed");
    eventually(30, "self-heal restores 2 replicas", || async {
        replicas().await == Some(2)
    })
    .await;
    let healed = app
        .wait_app("healing", 30, "a heal in the history", |a| {
            a.pointer("/status/history")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                > history_before
        })
        .await;
    let last = healed
        .pointer("/status/history")
        .and_then(Value::as_array)
        .and_then(|h| h.last().cloned())
        .expect("entry");
    assert_eq!(last["revision"], Value::from(commit.as_str()));
    assert_eq!(
        last.pointer("/initiatedBy/automated"),
        Some(&Value::Bool(true))
    );
}

/// One server-side dry-run and one apply per object in a sync, none again for an object whose
/// verdict the compare just got, and no call at all to compare an unchanged app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_makes_one_dry_run_and_one_apply_per_object_and_a_resync_makes_none() {
    let app = spawn_app(Options::default()).await;
    for i in 0..5 {
        app.repo.write(
            &format!("app/cm-{i}.yaml"),
            &config_map(&format!("cm-{i}"), "one"),
        );
    }
    let first = app.repo.commit("five config maps");
    // Counts every PATCH (dry-run or not) of a named ConfigMap; delays nothing.
    app.sandbox.faults().delay_next(
        100_000,
        "/namespaces/default/configmaps/",
        Some("PATCH"),
        Duration::ZERO,
    );
    let patches = || app.sandbox.faults().hits();
    assert_eq!(app.create_app("counted", "app", None).await.status(), 201);
    app.wait_app("counted", 30, "compared", |a| sync_of(a).1 == first)
        .await;
    assert_eq!(
        patches(),
        0,
        "nothing exists yet: comparing needs no dry-run"
    );
    sync(&app, "counted", json!({})).await;
    app.wait_app("counted", 30, "Synced", |a| {
        op_phase(a) == "Succeeded" && sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    assert_eq!(patches(), 10, "5 dry-runs and 5 applies");

    for _ in 0..2 {
        let before = app.get_app("counted").await["status"]["reconciledAt"].clone();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(app.refresh_app("counted").await.status(), 202);
        app.wait_app("counted", 30, "reconciled again", |a| {
            a["status"]["reconciledAt"] != before
        })
        .await;
    }
    assert_eq!(patches(), 10, "an unchanged app is compared from memory");

    app.repo.write("app/cm-0.yaml", &config_map("cm-0", "two"));
    let second = app.repo.commit("one changed");
    app.push_webhook(&second, Some(""), None).await;
    app.wait_app("counted", 30, "OutOfSync at the new commit", |a| {
        sync_of(a) == ("OutOfSync".into(), second.clone())
    })
    .await;
    assert_eq!(patches(), 11, "only the changed object is dry-run");
    sync(&app, "counted", json!({})).await;
    app.wait_app("counted", 30, "Synced again", |a| {
        sync_of(a) == ("Synced".into(), second.clone())
    })
    .await;
    assert_eq!(
        patches(),
        16,
        "five applies; no dry-run repeats the compare's"
    );
}

/// Rollback: a history entry's revision is synced again, the objects return to what it deployed,
/// and the app shows OutOfSync against its target until the next sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_restores_the_previous_objects() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("app/config.yaml", &config_map("settings", "one"));
    app.repo
        .write("app/extra.yaml", &config_map("only-in-one", "x"));
    let first = app.repo.commit("one");
    assert_eq!(app.create_app("rolling", "app", None).await.status(), 201);
    app.wait_app("rolling", 30, "compared", |a| sync_of(a).1 == first)
        .await;
    sync(&app, "rolling", json!({})).await;
    app.wait_app("rolling", 30, "Synced at one", |a| {
        op_phase(a) == "Succeeded" && sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;

    app.repo
        .write("app/config.yaml", &config_map("settings", "two"));
    app.repo.remove("app/extra.yaml");
    let second = app.repo.commit("two");
    app.push_webhook(&second, Some(""), None).await;
    app.wait_app("rolling", 30, "OutOfSync at two", |a| {
        sync_of(a).1 == second
    })
    .await;
    sync(&app, "rolling", json!({"prune": true})).await;
    let at_two = app
        .wait_app("rolling", 30, "Synced at two", |a| {
            op_phase(a) == "Succeeded" && sync_of(a) == ("Synced".into(), second.clone())
        })
        .await;
    assert!(app.config_map("only-in-one").await.is_none());
    let history = at_two["status"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first_id = history
        .iter()
        .find(|h| h["revision"] == first.as_str())
        .and_then(|h| h["id"].as_i64())
        .expect("the first sync is in the history");

    let resp = app
        .post(
            &format!("/api/v1/applications/{APP_NAMESPACE}/rolling/rollback"),
            &json!({"id": first_id}),
        )
        .await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    let rolled = app
        .wait_app("rolling", 30, "rolled back", |a| {
            op_phase(a) == "Succeeded"
                && a.pointer("/status/operationState/syncResult/revision")
                    == Some(&Value::from(first.as_str()))
        })
        .await;
    let live = app.config_map("settings").await.expect("settings");
    assert_eq!(live.pointer("/data/key"), Some(&Value::from("one")));
    assert!(
        app.config_map("only-in-one").await.is_some(),
        "the object only the old revision had is back"
    );
    assert_eq!(
        sync_of(&rolled),
        ("OutOfSync".into(), second.clone()),
        "compared with its target, the rolled-back app is OutOfSync"
    );
    let last = rolled["status"]["history"]
        .as_array()
        .and_then(|h| h.last().cloned())
        .expect("entry");
    assert_eq!(last["revision"], Value::from(first.as_str()));
}

/// An operator's Lua check from a ConfigMap (Argo CD's `argocd-cm` key, unchanged) decides the
/// health of a custom resource, and through it the app's, with the script's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lua_health_check_from_a_config_map_marks_a_custom_resource_degraded() {
    let app = spawn_app(Options {
        extra_env: vec![
            ("CAPSTAN__HEALTH__CONFIGMAP".into(), "capstan-cm".into()),
            ("CAPSTAN__HEALTH__CONFIGMAP_RELOAD_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let script = "hs = {}\nif obj.status ~= nil and obj.status.phase == \"Failed\" then\n  hs.status = \"Degraded\"\n  hs.message = \"widget failed: \" .. obj.status.reason\n  return hs\nend\nhs.status = \"Healthy\"\nhs.message = \"widget ready\"\nreturn hs\n";
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "capstan-cm", "namespace": APP_NAMESPACE},
        "data": {"resource.customizations.health.example.com_Widget": script, "url": "ignored"},
    }))
    .expect("configmap");
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .create(&kube::api::PostParams::default(), &cm)
        .await
        .expect("configmap created");
    app.repo.write(
        "widgets/crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      subresources: {status: {}}\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n",
    );
    app.repo.write(
        "widgets/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gear\nspec:\n  size: 3\n",
    );
    app.repo.commit("a widget");
    // Let the reload pick the ConfigMap up before the first compare.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.create_app("widgets", "widgets", Some(true))
            .await
            .status(),
        201
    );
    let widget_health = |a: &Value| {
        a["status"]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["kind"] == "Widget").cloned())
            .map(|w| w["health"].clone())
            .unwrap_or(Value::Null)
    };
    let healthy = app
        .wait_app("widgets", 60, "Healthy by the Lua check", |a| {
            widget_health(a)["message"] == "widget ready"
        })
        .await;
    assert_eq!(
        healthy.pointer("/status/health/status"),
        Some(&Value::from("Healthy"))
    );
    // The widget's controller reports a failure; the watch brings it to the app.
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        app.kube.clone(),
        "default",
        &ApiResource {
            group: "example.com".into(),
            version: "v1".into(),
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
        },
    );
    widgets
        .patch_status(
            "gear",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                &json!({"status": {"phase": "Failed", "reason": "out of cogs"}}),
            ),
        )
        .await
        .expect("status written");
    let degraded = app
        .wait_app("widgets", 60, "Degraded by the Lua check", |a| {
            a.pointer("/status/health/status") == Some(&Value::from("Degraded"))
        })
        .await;
    assert_eq!(
        degraded
            .pointer("/status/health/message")
            .and_then(Value::as_str),
        Some("widget failed: out of cogs")
    );
    let widget = degraded["status"]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["kind"] == "Widget").cloned())
        .expect("widget listed");
    assert_eq!(
        widget.pointer("/health/status"),
        Some(&Value::from("Degraded"))
    );
}

/// ignoreDifferences: replicas an HPA owns (here written by `kube-controller-manager`) make the
/// app OutOfSync until the app ignores them, by JSON pointer or by manager; then it is Synced and
/// a sync with RespectIgnoreDifferences leaves the HPA's value alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_differences_hides_replicas_an_hpa_owns() {
    let app = spawn_app(Options::default()).await;
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    let commit = app.repo.commit("web");
    let spec = |ignore: Value, options: Vec<&str>| {
        let mut spec = spec_of(&app, "app", json!({ "syncOptions": options }));
        spec["ignoreDifferences"] = ignore;
        spec
    };
    assert_eq!(
        app.create_app_with("scaled", spec(json!([]), vec![]))
            .await
            .status(),
        201
    );
    app.wait_app("scaled", 30, "compared", |a| sync_of(a).1 == commit)
        .await;
    sync(&app, "scaled", json!({})).await;
    app.wait_app("scaled", 30, "Synced", |a| {
        op_phase(a) == "Succeeded" && sync_of(a) == ("Synced".into(), commit.clone())
    })
    .await;

    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(app.kube.clone(), "default");
    deployments
        .patch(
            "web",
            &kube::api::PatchParams {
                field_manager: Some("kube-controller-manager".into()),
                ..Default::default()
            },
            &kube::api::Patch::Merge(&json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("the HPA scales");
    app.wait_app("scaled", 30, "OutOfSync: the drift is seen", |a| {
        sync_of(a).0 == "OutOfSync"
    })
    .await;

    let apps: Api<capstan::store::Application> = Api::namespaced(app.kube.clone(), APP_NAMESPACE);
    for ignore in [
        json!([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]),
        json!([{"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["kube-controller-manager"]}]),
    ] {
        let patch = json!({"spec": spec(ignore.clone(), vec!["RespectIgnoreDifferences=true"])});
        apps.patch(
            "scaled",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("app updated");
        app.wait_app("scaled", 30, "Synced with the replicas ignored", |a| {
            a.pointer("/spec/ignoreDifferences") == Some(&ignore) && sync_of(a).0 == "Synced"
        })
        .await;
    }
    sync(&app, "scaled", json!({})).await;
    app.wait_app("scaled", 30, "a second sync succeeded", |a| {
        a["status"]["history"].as_array().map_or(0, Vec::len) == 2
    })
    .await;
    let live = deployments.get("web").await.expect("web");
    assert_eq!(
        live.spec.and_then(|s| s.replicas),
        Some(4),
        "RespectIgnoreDifferences keeps the HPA's replicas"
    );
}

/// `GET …/diff` and `capstan app diff`: what a sync would change, Secrets masked, and the exit
/// codes `argocd app diff` has (0 none, 1 differences, 2 error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_shows_what_a_sync_would_change_with_secrets_masked() {
    let app = spawn_app(Options::default()).await;
    let secret = |password: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: {password}\n"
        )
    };
    app.repo
        .write("app/config.yaml", &config_map("settings", "one"));
    app.repo.write("app/secret.yaml", &secret("hunter2"));
    let first = app.repo.commit("config and secret");
    assert_eq!(app.create_app("diffed", "app", None).await.status(), 201);
    app.wait_app("diffed", 30, "compared", |a| sync_of(a).1 == first)
        .await;
    sync(&app, "diffed", json!({})).await;
    app.wait_app("diffed", 30, "Synced", |a| {
        sync_of(a) == ("Synced".into(), first.clone())
    })
    .await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args([
                "app",
                "--server",
                &app.address,
                "--token",
                &app.api_token,
                "diff",
            ])
            .args(args)
            .output()
            .expect("capstan runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = cli(&["diffed"]);
    assert_eq!(code, Some(0), "no differences: {stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    app.repo
        .write("app/config.yaml", &config_map("settings", "two"));
    app.repo.write("app/secret.yaml", &secret("correct-horse"));
    let second = app.repo.commit("new values");
    app.push_webhook(&second, Some(""), None).await;
    app.wait_app("diffed", 30, "OutOfSync", |a| {
        sync_of(a) == ("OutOfSync".into(), second.clone())
    })
    .await;
    let answer: Value = app
        .get(&format!("/api/v1/applications/{APP_NAMESPACE}/diffed/diff"))
        .await
        .json()
        .await
        .expect("diff json");
    assert_eq!(answer["modified"], Value::Bool(true));
    let item = |kind: &str| {
        answer["items"]
            .as_array()
            .and_then(|i| i.iter().find(|i| i["kind"] == kind).cloned())
            .unwrap_or_else(|| panic!("{kind} in {answer}"))
    };
    let config = item("ConfigMap");
    assert_eq!(config["change"], "modified");
    let text = config["diff"].as_str().unwrap_or("");
    assert!(
        text.contains("-  key: one") && text.contains("+  key: two"),
        "{text}"
    );
    let everything = answer.to_string();
    for plain in ["hunter2", "correct-horse", "aHVudGVyMg", "Y29ycmVjdC1ob3Jz"] {
        assert!(!everything.contains(plain), "{plain} leaked: {everything}");
    }
    assert_eq!(
        item("Secret")["change"],
        "modified",
        "masks still show that it changed"
    );

    let (code, stdout, _) = cli(&["diffed"]);
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains("===== /ConfigMap default/settings ======"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("correct-horse"),
        "{stdout}"
    );
    let (code, _, stderr) = cli(&["no-such-app"]);
    assert_eq!(code, Some(2), "{stderr}");
}
