//! Queue triggers: the committed schemas agree with the parser, invalid messages are
//! dead-lettered with their reason while the router keeps routing, `capstan trigger` publishes,
//! and claims de-duplicate across processes. The RabbitMQ tests need the broker at
//! amqp://guest:guest@127.0.0.1:5672/%2f.

#[allow(dead_code)]
#[path = "queue/support.rs"]
#[macro_use]
mod support;

use std::time::Duration;

use capstan::event::{PushEvent, TriggerMessage};
use capstan::job::Job;
use capstan::queue::{
    Claim, DeadReason, EmbeddedQueue, ORIGINAL_ID_HEADER, Queue, QueueError, QueueKind,
    QueueSettings, REASON_HEADER, SharedQueue, Topic,
};
use capstan::sandbox::{Sandbox, SandboxOptions};
use capstan::store::{AppStore, Application, ProjectStore};
use capstan::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::AMQPValue;
use serde_json::{Value, json};
use support::{AMQP_URL, EVENTUALLY, Harness, assert_quiet, next};
use tokio_util::sync::CancellationToken;

const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("schema readable");
    let doc: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::meta::validate(&doc).expect("a valid draft 2020-12 schema");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .expect("schema compiles")
}

fn full(patch: Value) -> Value {
    let mut doc = json!({
        "v": 1, "id": "e-1", "source": "jenkins", "received_at": "2026-01-02T03:04:05Z",
        "repo_urls": ["https://git.example.com/org/repo.git"],
        "refs": [{"name": "refs/heads/main", "before": null, "after": SHA1}]
    });
    if let (Some(d), Some(p)) = (doc.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            d.insert(k.clone(), v.clone());
        }
    }
    doc
}

#[test]
fn the_committed_schemas_and_the_parser_accept_and_refuse_the_same_documents() {
    let trigger = schema("trigger.v1.schema.json");
    let push = schema("push-event.v1.schema.json");
    let sha256 = "a".repeat(64);
    // (document, valid?) — each message goes to the schema the parser picks: `v` ⇒ full form.
    let examples: Vec<(Value, bool)> = vec![
        (
            json!({"repo": "https://git.example.com/org/repo.git", "ref": "refs/heads/main"}),
            true,
        ),
        (
            json!({"repo": "git@git.example.com:org/repo.git", "ref": "main", "revision": SHA1,
                "paths": ["apps/a/deploy.yaml"]}),
            true,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "refs/tags/v1", "revision": sha256, "paths": null}),
            true,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "revision": null}),
            true,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "paths": []}),
            true,
        ),
        (json!({"repo": "", "ref": "main"}), false),
        (json!({"repo": "https://h/o/r"}), false),
        (json!({"ref": "main"}), false),
        (json!({"repo": "https://h/o/r", "ref": ""}), false),
        (json!({"repo": "https://h/o/r", "ref": "ma\nin"}), false),
        (json!({"repo": "https://h/o/r", "ref": " "}), false),
        (
            json!({"repo": "https://h/o/r", "ref": "refs/heads/a b"}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "refs/heads/a~1"}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "refs/heads/feature/ünïcode"}),
            true,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "x".repeat(1025)}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "revision": "abc123"}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "revision": "g".repeat(40)}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "paths": [""]}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "paths": "apps/a"}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "paths": vec!["a"; 10_001]}),
            false,
        ),
        (
            json!({"repo": "https://h/o/r", "ref": "main", "branch": "typo"}),
            false,
        ),
        (json!({"repo": 7, "ref": "main"}), false),
        (full(json!({})), true),
        (
            full(
                json!({"delivery": "d-1", "changed_files": ["a.yaml"], "default_branch": "main",
                     "refs": [{"name": "refs/heads/main", "created": true, "after": sha256}],
                     "future_field": {"ignored": true}}),
            ),
            true,
        ),
        (full(json!({"v": 2})), false),
        (full(json!({"v": "1"})), false),
        (full(json!({"id": ""})), false),
        (full(json!({"source": "two words"})), false),
        (full(json!({"received_at": "yesterday"})), false),
        (full(json!({"repo_urls": []})), false),
        (full(json!({"repo_urls": vec!["https://h/o/r"; 21]})), false),
        // A blank URL beside a good one (found by the fuzzer): both refuse it.
        (full(json!({"repo_urls": ["https://h/o/r", "  "]})), false),
        (full(json!({"refs": []})), false),
        (full(json!({"refs": [{"after": SHA1}]})), false),
        (
            full(json!({"refs": [{"name": "refs/heads/main", "before": "HEAD~1"}]})),
            false,
        ),
        (
            full(json!({"refs": [{"name": "refs/heads/main", "forced": "yes"}]})),
            false,
        ),
        (full(json!({"changed_files": vec!["a"; 10_001]})), false),
        (full(json!({"default_branch": ""})), false),
    ];
    for (doc, valid) in &examples {
        let validator = if doc.get("v").is_some() {
            &push
        } else {
            &trigger
        };
        let shown = doc.to_string();
        let shown = &shown[..shown.len().min(160)];
        assert_eq!(validator.is_valid(doc), *valid, "schema on {shown}");
        let parsed = PushEvent::from_message(doc.to_string().as_bytes());
        assert_eq!(parsed.is_ok(), *valid, "parser on {shown}: {parsed:?}");
    }
    // What a schema cannot say: the URL must be one Capstan can fetch. The schemas say so in
    // their descriptions; these pass the schema and are refused by the parser, with the reason.
    for doc in [
        json!({"repo": "   ", "ref": "main"}),
        json!({"repo": "ext::sh -c touch% /tmp/pwned", "ref": "main"}),
        json!({"repo": "relative/path", "ref": "main"}),
        full(json!({"repo_urls": ["not a url", "https://"]})),
    ] {
        let validator = if doc.get("v").is_some() {
            &push
        } else {
            &trigger
        };
        assert!(validator.is_valid(&doc), "schema on {doc}");
        let err = PushEvent::from_message(doc.to_string().as_bytes()).expect_err("refused");
        assert!(err.to_string().contains("repo"), "{doc}: {err}");
    }
}

both!(dead_letter_keeps_the_reason);
async fn dead_letter_keeps_the_reason(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    let mut sub = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    h.queue
        .publish(Topic::Events, "", "bad-1", b"{not json".to_vec())
        .await
        .expect("publish");
    let d = next(&mut sub).await;
    d.dead_letter("not JSON: expected value at line 1")
        .await
        .expect("dead-lettered");
    assert_quiet(&mut sub, "a dead-lettered message is not redelivered").await;
    let dead = dead_letters(&h, 1).await;
    assert_eq!(
        dead,
        [(
            "bad-1".to_owned(),
            "not JSON: expected value at line 1".to_owned(),
            b"{not json".to_vec()
        )]
    );
}

/// (original id, reason, body) of the first `n` dead letters; RabbitMQ's are read with basic.get.
async fn dead_letters(h: &Harness, n: usize) -> Vec<(String, String, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    let mut found = Vec::new();
    let conn = match h.settings.kind {
        QueueKind::Rabbitmq => Some(
            lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
                .await
                .expect("RabbitMQ must be running"),
        ),
        QueueKind::Embedded => None,
    };
    while found.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {found:?} were dead-lettered"
        );
        match &conn {
            None => {
                found = embedded_dead(h);
                if found.len() < n {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Some(conn) => {
                let ch = conn.create_channel().await.expect("channel");
                let queue = format!("{}.dead", h.settings.prefix);
                match ch
                    .basic_get(queue.as_str().into(), BasicGetOptions::default())
                    .await
                    .expect("basic.get on the dead queue")
                {
                    Some(m) => {
                        let headers = m.delivery.properties.headers().clone().unwrap_or_default();
                        let text = |name: &str| match headers.inner().get(name) {
                            Some(AMQPValue::LongString(s)) => s.to_string(),
                            other => panic!("header {name}: {other:?}"),
                        };
                        found.push((
                            text(ORIGINAL_ID_HEADER),
                            text(REASON_HEADER),
                            m.delivery.data.clone(),
                        ));
                        m.delivery
                            .acker
                            .ack(BasicAckOptions::default())
                            .await
                            .expect("ack");
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    }
    found
}

fn embedded_dead(h: &Harness) -> Vec<(String, String, Vec<u8>)> {
    h.embedded()
        .dead_letters()
        .into_iter()
        .map(|d| match d.reason {
            DeadReason::Invalid(reason) => (d.id, reason, d.body),
            other => panic!("{}: dead for {other:?}, not as invalid", d.id),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_dead_letters_invalid_events_with_their_reason_and_keeps_routing() {
    capstan::install_crypto_provider();
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let client = sandbox.client();
    capstan::store::install_crds(&client).await.expect("CRDs");
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("capstan".to_owned());
    namespaces
        .create(&Default::default(), &ns)
        .await
        .expect("namespace");
    let store = AppStore::start(client.clone()).await.expect("app store");
    let projects = ProjectStore::start(client.clone(), "capstan")
        .await
        .expect("project store");
    projects.ensure_default().await.expect("default project");
    let tenancy = Tenancy::new(projects, &[]);
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": "capstan"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.example.com/org/repo.git", "path": "guestbook",
                            "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}
    }))
    .expect("an Application");
    store.create(&app).await.expect("created");
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !store.list().iter().any(|a| tenancy.honours(a).is_ok()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the app never showed up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let h = Harness::new(QueueKind::Rabbitmq, |_| {}).await;
    let shutdown = CancellationToken::new();
    let router = tokio::spawn(capstan::worker::route_events::run(
        store,
        tenancy,
        h.queue.clone(),
        std::sync::Arc::new(capstan::metrics::Metrics::new()),
        shutdown.clone(),
    ));
    let mut jobs = h.queue.subscribe(Topic::Jobs).await.expect("subscribe");
    let v2 = full(json!({"v": 2}));
    let messages: [(&str, Vec<u8>); 4] = [
        ("garbage", b"\x00\xff{{not json".to_vec()),
        ("v2", v2.to_string().into_bytes()),
        (
            "empty-repo",
            br#"{"repo":"","ref":"refs/heads/main"}"#.to_vec(),
        ),
        (
            "valid",
            json!({"repo": "https://git.example.com/org/repo.git", "ref": "refs/heads/main",
                   "revision": SHA1, "publisher": "ci/deploy-42"})
            .to_string()
            .into_bytes(),
        ),
    ];
    for (id, body) in messages {
        h.queue
            .publish(Topic::Events, "", id, body)
            .await
            .expect("publish");
    }
    let delivery = next(&mut jobs).await;
    let job = Job::parse(&delivery.body).expect("a Job");
    assert_eq!(job.app.to_string(), "capstan/guestbook");
    assert_eq!(job.revision.as_deref(), Some(SHA1));
    // The history will name the trigger by its message id and its publisher.
    assert_eq!(job.cause.source, capstan::job::CauseSource::Mq);
    assert_eq!(job.cause.provider.as_deref(), Some("mq"));
    assert_eq!(job.cause.delivery.as_deref(), Some("valid"));
    assert_eq!(job.cause.by.as_deref(), Some("ci/deploy-42"));
    delivery.ack().await.expect("ack");
    assert_quiet(&mut jobs, "only the valid trigger routes").await;

    let dead = dead_letters(&h, 3).await;
    let summary: Vec<(&str, &str)> = dead
        .iter()
        .map(|(id, reason, _)| (id.as_str(), reason.as_str()))
        .collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    for ((id, reason), (want_id, want_reason)) in summary.iter().zip([
        ("garbage", "not a PushEvent or trigger document"),
        ("v2", "unsupported PushEvent version 2"),
        ("empty-repo", "repo: is empty"),
    ]) {
        assert_eq!(*id, want_id);
        assert!(reason.contains(want_reason), "{id}: {reason}");
    }
    shutdown.cancel();
    router
        .await
        .expect("router task")
        .expect("the router ends cleanly");
}

both!(one_claim_wins_across_processes_until_its_window_ends_or_it_is_released);
async fn one_claim_wins_across_processes_until_its_window_ends_or_it_is_released(kind: QueueKind) {
    let h = Harness::new(kind, |_| {}).await;
    let other: SharedQueue = h.second_process().await;
    let long = Duration::from_secs(60);
    for round in 0..10 {
        let key = format!("github:{}:{round}", uuid::Uuid::new_v4());
        let (a, b) = tokio::join!(h.queue.claim(&key, long), other.claim(&key, long));
        let mut outcomes = [a.expect("claim"), b.expect("claim")];
        outcomes.sort_by_key(|c| *c == Claim::Duplicate);
        assert_eq!(outcomes, [Claim::First, Claim::Duplicate], "round {round}");
        assert_eq!(
            h.queue.claim(&key, long).await.expect("claim"),
            Claim::Duplicate
        );
    }

    let released = format!("gitlab:{}", uuid::Uuid::new_v4());
    assert_eq!(
        h.queue.claim(&released, long).await.expect("claim"),
        Claim::First
    );
    // The publish after the claim failed: the host's redelivery must get through.
    h.queue.release(&released).await;
    assert_eq!(
        other.claim(&released, long).await.expect("claim"),
        Claim::First
    );
    assert_eq!(
        h.queue.claim(&released, long).await.expect("claim"),
        Claim::Duplicate
    );

    let short = Duration::from_millis(800);
    let expiring = format!("gitea:{}", uuid::Uuid::new_v4());
    assert_eq!(
        h.queue.claim(&expiring, short).await.expect("claim"),
        Claim::First
    );
    assert_eq!(
        other.claim(&expiring, short).await.expect("claim"),
        Claim::Duplicate
    );
    tokio::time::sleep(short).await;
    // The broker drops the marker on its own clock; wait for it rather than guess.
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        match other.claim(&expiring, short).await.expect("claim") {
            Claim::First => break,
            Claim::Duplicate => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the window never ended"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(
        h.queue.claim(&expiring, short).await.expect("claim"),
        Claim::Duplicate
    );

    let never = format!("azure:{}", uuid::Uuid::new_v4());
    for _ in 0..2 {
        assert_eq!(
            h.queue.claim(&never, Duration::ZERO).await.expect("claim"),
            Claim::First,
            "a zero window turns de-duplication off"
        );
    }
}

#[tokio::test]
async fn claims_on_a_closed_embedded_queue_fail() {
    let q = EmbeddedQueue::new(&QueueSettings::default()).expect("queue");
    let window = Duration::from_secs(600);
    assert_eq!(q.claim("d-1", window).await.expect("claim"), Claim::First);
    q.close().await;
    assert!(matches!(
        q.claim("d-2", window).await,
        Err(QueueError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capstan_trigger_publishes_the_short_form_to_the_events_exchange() {
    let h = Harness::new(QueueKind::Rabbitmq, |_| {}).await;
    let mut events = h.queue.subscribe(Topic::Events).await.expect("subscribe");
    let message = TriggerMessage {
        repo: "https://git.example.com/org/repo.git".to_owned(),
        git_ref: "refs/heads/main".to_owned(),
        revision: Some(SHA1.to_owned()),
        paths: Some(vec!["apps/a/deploy.yaml".to_owned()]),
        publisher: Some("ci/deploy-42".to_owned()),
    };
    let id = capstan::cli::trigger::publish(&h.settings, &message)
        .await
        .expect("published");
    let d = next(&mut events).await;
    assert_eq!(d.id, id);
    let sent: Value = serde_json::from_slice(&d.body).expect("JSON");
    assert!(schema("trigger.v1.schema.json").is_valid(&sent), "{sent}");
    let event = PushEvent::from_message(&d.body).expect("the router accepts it");
    assert_eq!(event.repo_urls, std::slice::from_ref(&message.repo));
    assert_eq!(event.refs[0].after.as_deref(), Some(SHA1));
    assert_eq!(event.changed_files, message.paths);
    assert_eq!(event.pusher, message.publisher, "the publisher is carried");
    d.ack().await.expect("ack");

    let bad = TriggerMessage {
        revision: Some("main~1".to_owned()),
        ..message.clone()
    };
    let err = capstan::cli::trigger::publish(&h.settings, &bad)
        .await
        .expect_err("refused before publishing");
    assert!(format!("{err:#}").contains("revision"), "{err:#}");
    assert_quiet(&mut events, "an invalid trigger is never published").await;

    let embedded = QueueSettings {
        kind: QueueKind::Embedded,
        ..h.settings.clone()
    };
    let err = capstan::cli::trigger::publish(&embedded, &message)
        .await
        .expect_err("nothing would consume it");
    assert!(format!("{err:#}").contains("embedded"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_configured_with_different_windows_still_agree_on_duplicates() {
    let h = Harness::new(QueueKind::Rabbitmq, |_| {}).await;
    let other = h.second_process().await;
    let key = format!("github:{}", uuid::Uuid::new_v4());
    let ten_minutes = Duration::from_secs(600);
    let five_minutes = Duration::from_secs(300);
    assert_eq!(
        h.queue.claim(&key, ten_minutes).await.expect("claim"),
        Claim::First
    );
    for _ in 0..3 {
        assert_eq!(
            other.claim(&key, five_minutes).await.expect("claim"),
            Claim::Duplicate
        );
    }
    // The broker refused the second window's declaration on a channel: later claims of that
    // process still work.
    let fresh = format!("github:{}", uuid::Uuid::new_v4());
    assert_eq!(
        other.claim(&fresh, five_minutes).await.expect("claim"),
        Claim::First
    );
    h.queue.release(&key).await;
    other.release(&fresh).await;
}
