//! Notifications from a status transition to each service, through the embedded queue:
//! a local webhook receiver (HMAC checked), a Slack-compatible Web API and incoming webhook, a
//! Teams webhook, and a real SMTP server (Debian's aiosmtpd) with STARTTLS and AUTH. Retries
//! while a receiver is down, and at most one send per deduplication key.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capstan::health::HealthStatus;
use capstan::notify::email::EmailSettings;
use capstan::notify::slack::SlackSettings;
use capstan::notify::teams::TeamsSettings;
use capstan::notify::webhook::WebhookSettings;
use capstan::notify::{Notification, NotifySettings, Sender, ServiceSettings};
use capstan::queue::{EmbeddedQueue, QueueSettings, SharedQueue, Topic};
use capstan::secret::SecretString;
use capstan::store::Application;
use capstan::store::application::{
    ApplicationStatus, HealthStatusBlock, OperationPhase, OperationState, SyncOperationResult,
    SyncStatus, SyncStatusCode,
};
use capstan::webhook::Signature;
use common::receiver::{Receiver, SmtpServer, free_port};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const HOOK_SECRET: &str = "hook-secret";
const SLACK_TOKEN: &str = "xoxb-test-token";
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// The app `shop/web` with these subscription annotations.
fn app(annotations: &[(&str, &str)]) -> Application {
    let annotations: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"project": "default", "destination": {"namespace": "web"},
            "source": {"repoURL": "https://git.example/shop.git", "path": "web"}},
    }))
    .expect("application")
}

/// A status after a sync that ended in `phase`, with the app's health.
fn synced(phase: OperationPhase, health: HealthStatus, message: &str) -> ApplicationStatus {
    ApplicationStatus {
        sync: Some(SyncStatus {
            status: SyncStatusCode::Synced,
            revision: Some(REVISION.into()),
            ..Default::default()
        }),
        health: Some(HealthStatusBlock {
            status: health,
            message: None,
        }),
        operation_state: Some(OperationState {
            phase,
            message: message.into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: Some("2026-01-01T00:00:05Z".into()),
            sync_result: Some(SyncOperationResult {
                revision: REVISION.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        reconciled_at: Some("2026-01-01T00:00:05Z".into()),
        ..Default::default()
    }
}

fn webhook(url: String) -> ServiceSettings {
    ServiceSettings::Webhook(WebhookSettings {
        url,
        method: None,
        headers: BTreeMap::from([("x-team".to_owned(), "shop".to_owned())]),
        body: None,
        secret: Some(SecretString::from(HOOK_SECRET)),
        secret_file: None,
        signature_header: None,
    })
}

fn settings(services: Vec<(&str, ServiceSettings)>) -> NotifySettings {
    NotifySettings {
        url: "https://cd.example".into(),
        retry_initial_ms: 100,
        retry_max_ms: 300,
        timeout_ms: 5_000,
        services: services
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        ..NotifySettings::default()
    }
}

/// An embedded queue with delivery running on it, stopped when the token is dropped.
struct Running {
    queue: Arc<EmbeddedQueue>,
    shared: SharedQueue,
    metrics: Arc<capstan::metrics::Metrics>,
    _stop: tokio_util::sync::DropGuard,
}

impl Running {
    /// `capstan_notifications_total{service, outcome}`, 0 when never counted.
    fn counted(&self, service: &str, outcome: &str) -> u64 {
        let text = self.metrics.encode();
        let line =
            format!("capstan_notifications_total{{service=\"{service}\",outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

fn run(settings: NotifySettings) -> Running {
    let queue = EmbeddedQueue::new(&QueueSettings::default()).expect("queue");
    let shared = queue.shared();
    let stop = CancellationToken::new();
    let sender = Sender::new(Arc::new(settings)).expect("sender");
    let metrics = Arc::new(capstan::metrics::Metrics::new());
    tokio::spawn(capstan::notify::run(
        sender,
        shared.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    Running {
        queue,
        shared,
        metrics,
        _stop: stop.drop_guard(),
    }
}

async fn publish_all(queue: &SharedQueue, notifications: &[Notification]) {
    for n in notifications {
        capstan::notify::notification::publish(queue, n)
            .await
            .expect("published");
    }
}

fn notifications_for(
    app: &Application,
    before: &ApplicationStatus,
    after: &ApplicationStatus,
    settings: &NotifySettings,
) -> Vec<Notification> {
    let services = settings.services.keys().cloned().collect();
    capstan::notify::notifications(app, Some(before), after, None, &services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_receives_the_rendered_notification() {
    capstan::install_crypto_provider();
    let receiver = Receiver::start();
    let smtp = SmtpServer::start().await;
    let settings = settings(vec![
        ("hook", webhook(receiver.url("/hook"))),
        (
            "slack",
            ServiceSettings::Slack(SlackSettings {
                token: Some(SecretString::from(SLACK_TOKEN)),
                token_file: None,
                webhook_url: None,
                webhook_url_file: None,
                api_url: Some(receiver.url("/api")),
                username: Some("capstan".into()),
                icon_emoji: None,
            }),
        ),
        (
            "slack-hook",
            ServiceSettings::Slack(SlackSettings {
                token: None,
                token_file: None,
                webhook_url: Some(SecretString::from(receiver.url("/services/T0/B0/secret"))),
                webhook_url_file: None,
                api_url: None,
                username: None,
                icon_emoji: None,
            }),
        ),
        (
            "teams",
            ServiceSettings::Teams(TeamsSettings {
                webhook_url: Some(SecretString::from(receiver.url("/teams"))),
                webhook_url_file: None,
                card: Default::default(),
            }),
        ),
        (
            "mail",
            ServiceSettings::Email(EmailSettings {
                host: "127.0.0.1".into(),
                port: smtp.port,
                from: "Capstan <cd@example.com>".into(),
                username: Some(smtp.user.clone()),
                password: Some(SecretString::from(smtp.password.clone())),
                password_file: None,
                ca_file: Some(smtp.ca_file.clone()),
            }),
        ),
    ]);
    let app = app(&[
        (
            "notifications.capstan.dev/subscribe.on-sync-failed.hook",
            "",
        ),
        (
            "notifications.argoproj.io/subscribe.on-sync-failed.slack",
            "deploys;oncall",
        ),
        (
            "notifications.capstan.dev/subscribe.on-sync-failed.slack-hook",
            "",
        ),
        (
            "notifications.capstan.dev/subscribe.on-sync-failed.teams",
            "",
        ),
        (
            "notifications.capstan.dev/subscribe.on-sync-failed.mail",
            "ops@example.com",
        ),
        // Not fired by this transition: nothing may arrive for it.
        ("notifications.capstan.dev/subscribe.on-deployed.hook", ""),
    ]);
    let before = synced(OperationPhase::Running, HealthStatus::Healthy, "");
    let after = synced(
        OperationPhase::Failed,
        HealthStatus::Healthy,
        "one or more objects failed to apply",
    );
    let queued = notifications_for(&app, &before, &after, &settings);
    assert_eq!(
        queued.len(),
        6,
        "hook, two slack channels, slack hook, teams, mail"
    );
    let running = run(settings);
    publish_all(&running.shared, &queued).await;

    let hook = receiver
        .wait_for("/hook", 20, "the webhook", |r| !r.is_empty())
        .await;
    let signature = Signature::parse(&hook[0].headers["x-capstan-signature-256"]).expect("sig");
    signature
        .verify(HOOK_SECRET.as_bytes(), &hook[0].body)
        .expect("the HMAC-SHA256 signature verifies over the exact body");
    assert_eq!(hook[0].headers["x-team"], "shop");
    let body = hook[0].json();
    assert_eq!(
        (
            &body["app"],
            &body["namespace"],
            &body["trigger"],
            &body["revision"]
        ),
        (
            &json!("web"),
            &json!("shop"),
            &json!("on-sync-failed"),
            &json!(REVISION)
        )
    );
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("has failed at 2026-01-01T00:00:05Z with the following error: one or more objects failed to apply")
            && message.contains("https://cd.example/applications/shop/web?operation=true"),
        "{message}"
    );

    let slack = receiver
        .wait_for("/api/chat.postMessage", 20, "two channels", |r| {
            r.len() == 2
        })
        .await;
    let mut channels: Vec<String> = slack
        .iter()
        .map(|r| {
            assert_eq!(r.headers["authorization"], format!("Bearer {SLACK_TOKEN}"));
            let body = r.json();
            assert!(
                body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("application web has failed")),
                "{body}"
            );
            body["channel"].as_str().expect("channel").to_owned()
        })
        .collect();
    channels.sort();
    assert_eq!(channels, ["deploys", "oncall"]);
    let incoming = receiver
        .wait_for("/services/T0/B0/secret", 20, "the incoming webhook", |r| {
            !r.is_empty()
        })
        .await;
    assert!(
        incoming[0].json()["text"]
            .as_str()
            .is_some_and(|t| t.contains("web"))
    );

    let teams = receiver
        .wait_for("/teams", 20, "the Teams card", |r| !r.is_empty())
        .await;
    let card = teams[0].json();
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["title"], "Failed to sync application web.");
    assert_eq!(
        card["potentialAction"][0]["targets"][0]["uri"],
        "https://cd.example/applications/shop/web"
    );

    let mails = smtp.wait_mails(1, 30).await;
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: Failed to sync application web."),
        "{mail}"
    );
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(
        mail.contains("one or more objects failed to apply"),
        "{mail}"
    );

    // Everything fired was sent once; nothing was dead-lettered.
    assert_eq!(receiver.on("/hook").len(), 1);
    assert!(
        running.queue.dead_letters().is_empty(),
        "{:?}",
        running.queue.dead_letters()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_receiver_gets_retries_then_exactly_one_delivery() {
    let port = free_port();
    let settings = settings(vec![(
        "hook",
        webhook(format!("http://127.0.0.1:{port}/hook")),
    )]);
    let app = app(&[("notifications.capstan.dev/subscribe.on-deployed.hook", "")]);
    let before = synced(OperationPhase::Succeeded, HealthStatus::Progressing, "");
    let after = synced(OperationPhase::Succeeded, HealthStatus::Healthy, "");
    let queued = notifications_for(&app, &before, &after, &settings);
    assert_eq!(queued.len(), 1);
    let running = run(settings);
    publish_all(&running.shared, &queued).await;
    // Refused connections for a while: at 100, 200, 300 ms backoff that is several attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        running.queue.dead_letters().is_empty(),
        "still retrying, not given up"
    );
    let receiver = Receiver::start_on(port);
    let got = receiver
        .wait_for("/hook", 20, "the retried notification", |r| !r.is_empty())
        .await;
    assert_eq!(got[0].json()["trigger"], "on-deployed");
    // A marker sent after it arrives only once the queue moved on: still one delivery.
    capstan::notify::notification::publish(&running.shared, &{
        let mut marker = queued[0].clone();
        marker.id = "marker".into();
        marker.recipient = "marker".into();
        marker
    })
    .await
    .expect("marker");
    let got = receiver
        .wait_for("/hook", 20, "the marker", |r| r.len() >= 2)
        .await;
    assert_eq!(got.len(), 2, "the retried one once, then the marker");
    assert!(
        running.counted("webhook", "retried") >= 2,
        "refused connections were retried"
    );
    assert_eq!(running.counted("webhook", "sent"), 2);
    assert_eq!(got[1].json()["recipient"], "marker");
    assert_eq!(running.queue.pending(Topic::Notifications), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_notification_is_not_sent_twice() {
    let receiver = Receiver::start();
    let mut settings = settings(vec![("hook", webhook(receiver.url("/hook")))]);
    // One at a time, in order: when the marker arrives, both copies before it were handled.
    settings.concurrency = 1;
    let app = app(&[(
        "notifications.capstan.dev/subscribe.on-sync-succeeded.hook",
        "",
    )]);
    let before = synced(OperationPhase::Running, HealthStatus::Healthy, "");
    let after = synced(OperationPhase::Succeeded, HealthStatus::Healthy, "");
    let queued = notifications_for(&app, &before, &after, &settings);
    assert_eq!(queued.len(), 1);
    // The same message twice (a broker redelivery), and the same trigger firing again for the
    // same operation from another worker (a new message id, the same deduplication key).
    let mut again = queued[0].clone();
    again.id = "another-message".into();
    let mut marker = queued[0].clone();
    marker.id = "marker".into();
    marker.recipient = "marker".into();
    let running = run(settings);
    publish_all(
        &running.shared,
        &[queued[0].clone(), queued[0].clone(), again, marker],
    )
    .await;
    let got = receiver
        .wait_for("/hook", 20, "the marker", |r| {
            r.iter().any(|r| r.json()["recipient"] == "marker")
        })
        .await;
    assert_eq!(got.len(), 2, "one notification and the marker: {got:?}");
    assert_eq!(running.counted("webhook", "duplicate"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_is_not_retried_and_the_notification_is_dead_lettered() {
    let settings = settings(vec![(
        "slack",
        ServiceSettings::Slack(SlackSettings {
            token: None,
            token_file: None,
            webhook_url: None,
            webhook_url_file: None,
            api_url: None,
            username: None,
            icon_emoji: None,
        }),
    )]);
    let app = app(&[(
        "notifications.capstan.dev/subscribe.on-sync-succeeded.slack",
        "x",
    )]);
    let before = synced(OperationPhase::Running, HealthStatus::Healthy, "");
    let after = synced(OperationPhase::Succeeded, HealthStatus::Healthy, "");
    let queued = notifications_for(&app, &before, &after, &settings);
    let running = run(settings);
    publish_all(&running.shared, &queued).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while running.queue.dead_letters().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = running.queue.dead_letters();
    assert_eq!(dead[0].attempts, 1, "a misconfiguration is not retried");
    assert_eq!(running.counted("slack", "dead_lettered"), 1);
    assert_eq!(running.counted("slack", "retried"), 0);
    assert!(
        matches!(&dead[0].reason, capstan::queue::DeadReason::Invalid(r) if r.contains("needs token or webhook_url")),
        "{:?}",
        dead[0].reason
    );
}
