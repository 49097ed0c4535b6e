//! One trace from webhook delivery to applied resources: the webhook request's trace id reaches
//! the router through the PushEvent's AMQP headers, and the syncer through the Job's, so the
//! reconcile (and its sync) belong to the webhook's trace. Spans are collected in memory.
//!
//! Its own test binary: it installs the process-wide subscriber.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use helpers::*;

fn spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().expect("finished spans")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_and_the_reconcile_it_causes_share_one_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .init();

    let app = spawn_app(Options::default()).await;
    app.synced_then_pushed("traced").await;

    let mut webhook_trace = None;
    eventually(10, "the webhook request's span is finished", || {
        let found = spans(&exporter)
            .into_iter()
            .find(|s| s.name == "POST /api/webhook")
            .map(|s| s.span_context.trace_id());
        webhook_trace = found;
        async move { found.is_some() }
    })
    .await;
    let trace = webhook_trace.expect("webhook span");
    // Spans close when their work ends; the sync's reconcile closes after its status write.
    eventually(
        10,
        "a reconcile that ran a sync in the webhook's trace",
        || {
            let in_trace: Vec<SpanData> = spans(&exporter)
                .into_iter()
                .filter(|s| s.span_context.trace_id() == trace)
                .collect();
            let has = |name: &str| in_trace.iter().any(|s| s.name == name);
            let done = has("route") && has("job") && has("reconcile") && has("sync");
            async move { done }
        },
    )
    .await;
    // The first sync came from the poller, not the webhook: a trace of its own.
    let first_job = spans(&exporter)
        .into_iter()
        .filter(|s| s.name == "reconcile")
        .map(|s| s.span_context.trace_id())
        .find(|t| *t != trace);
    assert!(
        first_job.is_some(),
        "the poller's reconcile is not in the webhook's trace"
    );

    // A caller that is traced itself (a CI job, a proxy) sends `traceparent`: the webhook's
    // request span, and so the reconcile, join the caller's trace instead of starting one.
    app.repo
        .write("app/deploy.yaml", &deployment("web", "nginx:1.29"));
    let third = app.repo.commit("web at 1.29");
    let callers_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "after": third,
        "repository": { "clone_url": app.repo_url, "default_branch": "main" }
    }))
    .expect("json");
    let sent = app
        .http
        .post(format!("{}/api/webhook", app.address))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            capstan::webhook::Signature::sign(app.webhook_secret.as_bytes(), &body),
        )
        .header(
            "traceparent",
            format!("00-{callers_trace}-00f067aa0ba902b7-01"),
        )
        .body(body)
        .send()
        .await
        .expect("webhook request");
    assert_eq!(sent.status(), 202);
    eventually(
        10,
        "the webhook request and its reconcile in the caller's trace",
        || {
            let in_trace: Vec<String> = spans(&exporter)
                .into_iter()
                .filter(|s| s.span_context.trace_id().to_string() == callers_trace)
                .map(|s| s.name.to_string())
                .collect();
            let has = |name: &str| in_trace.iter().any(|s| s == name);
            let done = has("POST /api/webhook") && has("job") && has("reconcile");
            async move { done }
        },
    )
    .await;
}
