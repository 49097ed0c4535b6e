//! Notifications end to end: an app subscribed by annotation syncs after a signed push, and the
//! rendered notifications reach a local webhook receiver (HMAC checked) and a Slack-compatible
//! Web API; a broken manifest sends on-sync-failed; a receiver that is down is retried until it
//! is up, gets each notification once, and slows no sync.

use std::time::Instant;

use capstan::config::Role;
use capstan::webhook::Signature;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::common::receiver::{Receiver, free_port};
use super::helpers::*;

const HOOK_SECRET: &str = "e2e-hook-secret";
const SLACK_TOKEN: &str = "xoxb-e2e";

fn notify_env(receiver: &Receiver, late_port: u16) -> Vec<(String, String)> {
    [
        ("CAPSTAN__NOTIFY__URL", "https://capstan.test".to_owned()),
        ("CAPSTAN__NOTIFY__RETRY_INITIAL_MS", "200".to_owned()),
        ("CAPSTAN__NOTIFY__RETRY_MAX_MS", "500".to_owned()),
        (
            "CAPSTAN__NOTIFY__SERVICES__HOOK__TYPE",
            "webhook".to_owned(),
        ),
        (
            "CAPSTAN__NOTIFY__SERVICES__HOOK__URL",
            receiver.url("/hook"),
        ),
        (
            "CAPSTAN__NOTIFY__SERVICES__HOOK__SECRET",
            HOOK_SECRET.to_owned(),
        ),
        ("CAPSTAN__NOTIFY__SERVICES__SLACK__TYPE", "slack".to_owned()),
        (
            "CAPSTAN__NOTIFY__SERVICES__SLACK__TOKEN",
            SLACK_TOKEN.to_owned(),
        ),
        (
            "CAPSTAN__NOTIFY__SERVICES__SLACK__API_URL",
            receiver.url("/api"),
        ),
        (
            "CAPSTAN__NOTIFY__SERVICES__LATE__TYPE",
            "webhook".to_owned(),
        ),
        (
            "CAPSTAN__NOTIFY__SERVICES__LATE__URL",
            format!("http://127.0.0.1:{late_port}/late"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The webhook notifications received so far as (trigger, revision), each signature checked.
fn signed_triggers(receiver: &Receiver, path: &str, secret: Option<&str>) -> Vec<(String, String)> {
    receiver
        .on(path)
        .iter()
        .map(|r| {
            if let Some(secret) = secret {
                Signature::parse(&r.headers["x-capstan-signature-256"])
                    .expect("signature header")
                    .verify(secret.as_bytes(), &r.body)
                    .expect("the signature verifies");
            }
            let body = r.json();
            (
                body["trigger"].as_str().unwrap_or_default().to_owned(),
                body["revision"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(got: &[(String, String)], trigger: &str, revision: &str) -> bool {
    got.iter().any(|(t, r)| t == trigger && r == revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_follow_syncs_and_a_down_receiver_slows_none() {
    let receiver = Receiver::start();
    let late_port = free_port();
    let app = spawn_app(Options {
        role: Role::All,
        extra_env: notify_env(&receiver, late_port),
        ..Options::default()
    })
    .await;

    // The project subscribes its apps' failures to Slack's #oncall, beside the app's own subscriptions.
    Api::<capstan::store::AppProject>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "notifications.capstan.dev/subscribe.on-sync-failed.slack": "oncall"
            }}})),
        )
        .await
        .expect("project annotated");
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.25"));
    let first = app.repo.commit("web at 1.25");
    let doc = json!({"apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
    "metadata": {"name": "notified", "namespace": APP_NAMESPACE, "annotations": {
        "notifications.capstan.dev/subscribe.on-sync-succeeded.hook": "",
        "notifications.argoproj.io/subscribe.on-deployed.hook": "",
        "notifications.capstan.dev/subscribe.on-sync-failed.hook": "",
        "notifications.capstan.dev/subscribe.on-sync-succeeded.slack": "deploys",
        "notifications.capstan.dev/subscribe.on-deployed.late": "",
    }},
    "spec": {
        "project": "default",
        "source": { "repoURL": app.repo_url, "path": "app", "targetRevision": "main" },
        "destination": { "server": "https://kubernetes.default.svc", "namespace": "default" },
        "syncPolicy": { "automated": { "prune": true } },
    }});
    let obj: capstan::store::Application = serde_json::from_value(doc).expect("application");
    Api::<capstan::store::Application>::namespaced(app.kube.clone(), APP_NAMESPACE)
        .create(&PostParams::default(), &obj)
        .await
        .expect("application created");
    let healthy_at = |rev: String| {
        move |a: &Value| {
            sync_of(a) == ("Synced".into(), rev.clone())
                && a.pointer("/status/health/status") == Some(&"Healthy".into())
        }
    };
    app.wait_app(
        "notified",
        60,
        "Synced and Healthy at the first commit",
        healthy_at(first.clone()),
    )
    .await;

    // The first sync's notifications, signed and rendered.
    receiver
        .wait_for("/hook", 30, "on-sync-succeeded and on-deployed", |_| {
            let got = signed_triggers(&receiver, "/hook", Some(HOOK_SECRET));
            has(&got, "on-sync-succeeded", &first) && has(&got, "on-deployed", &first)
        })
        .await;
    let deployed = receiver
        .on("/hook")
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["trigger"] == "on-deployed")
        .expect("on-deployed");
    let message = deployed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Application notified is now running new version")
            && message.contains(&format!("Revision: {first}"))
            && message.contains("https://capstan.test/applications/capstan/notified"),
        "{message}"
    );
    assert_eq!(deployed["healthStatus"], "Healthy");
    let slack = receiver
        .wait_for("/api/chat.postMessage", 30, "the Slack message", |r| {
            !r.is_empty()
        })
        .await;
    assert_eq!(
        slack[0].headers["authorization"],
        format!("Bearer {SLACK_TOKEN}")
    );
    assert_eq!(slack[0].json()["channel"], "deploys");

    // While `late` is down (nothing listens on its port), a push syncs as fast as ever.
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.27"));
    let second = app.repo.commit("web at 1.27");
    let pushed = Instant::now();
    assert_eq!(
        app.push_webhook(&second, Some(""), None).await.status(),
        202
    );
    app.wait_app(
        "notified",
        60,
        "Synced and Healthy at the second commit",
        healthy_at(second.clone()),
    )
    .await;
    eprintln!(
        "push to Synced+Healthy with a notification receiver down: {} ms",
        pushed.elapsed().as_millis()
    );
    receiver
        .wait_for("/hook", 30, "the second deploy", |_| {
            has(
                &signed_triggers(&receiver, "/hook", Some(HOOK_SECRET)),
                "on-deployed",
                &second,
            )
        })
        .await;

    // `late` comes up: both deploys it missed arrive, each once.
    let late = Receiver::start_on(late_port);
    late.wait_for("/late", 30, "both deploys", |r| r.len() >= 2)
        .await;
    // A third sync's notification arrives after the retried ones; by then no repeat is pending.
    app.repo.write(
        "app/b-broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: does-not-exist\n",
    );
    let third = app.repo.commit("valid YAML, impossible namespace");
    assert_eq!(app.push_webhook(&third, Some(""), None).await.status(), 202);
    let failed = app
        .wait_app("notified", 60, "the sync failed at the third commit", |a| {
            sync_of(a).1 == third
                && a.pointer("/status/operationState/phase") == Some(&"Failed".into())
        })
        .await;
    let failure = receiver
        .wait_for("/hook", 30, "on-sync-failed", |r| {
            r.iter().any(|r| r.json()["trigger"] == "on-sync-failed")
        })
        .await
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["trigger"] == "on-sync-failed")
        .expect("on-sync-failed");
    assert_eq!(failure["revision"], third.as_str());
    let oncall = receiver
        .wait_for("/api/chat.postMessage", 30, "the project's #oncall", |r| {
            r.iter().any(|r| r.json()["channel"] == "oncall")
        })
        .await;
    let oncall: Vec<Value> = oncall
        .iter()
        .map(|r| r.json())
        .filter(|b| b["channel"] == "oncall")
        .collect();
    assert_eq!(oncall.len(), 1, "{oncall:?}");
    assert!(
        oncall[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("The sync operation of application notified has failed")),
        "{}",
        oncall[0]
    );
    let op_message = failed
        .pointer("/status/operationState/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        !op_message.is_empty()
            && failure["message"]
                .as_str()
                .is_some_and(|m| m.contains(op_message)),
        "the failure names the operation's message {op_message:?}: {failure}"
    );

    let late_got = signed_triggers(&late, "/late", None);
    let mut revisions: Vec<&str> = late_got.iter().map(|(_, r)| r.as_str()).collect();
    revisions.sort();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(
        revisions, expected,
        "each missed deploy exactly once: {late_got:?}"
    );
    // Each (trigger, revision) reached the hook once.
    let hook = signed_triggers(&receiver, "/hook", Some(HOOK_SECRET));
    for (i, a) in hook.iter().enumerate() {
        assert!(!hook[i + 1..].contains(a), "{a:?} sent twice: {hook:?}");
    }
}
