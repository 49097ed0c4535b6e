//! The process's Prometheus metrics, served at `/metrics` in the text exposition format.
//! Every capability registers its families here, so one scrape shows the whole process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a webhook request: which host, and what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// Provider name, or `unknown` when no provider recognised the request.
    pub provider: String,
    /// `queued`, `ignored`, `duplicate`, or the refusal (`unauthorized`, `bad_payload`, …).
    pub outcome: String,
}

/// Labels naming one provider or event source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// Every metric Capstan exports.
pub struct Metrics {
    registry: Registry,
    /// Webhook requests by provider and outcome.
    pub webhook_requests: Family<WebhookLabels, Counter>,
    /// Time from the request body's arrival to the answer, by provider.
    pub webhook_latency: Family<SourceLabels, Histogram>,
    /// PushEvents published to the events exchange, by source.
    pub events_published: Family<SourceLabels, Counter>,
    /// Redelivered webhooks dropped because their delivery id was seen within the window.
    pub duplicates_dropped: Family<SourceLabels, Counter>,
    /// Queue messages on the events exchange that were not valid and were dead-lettered.
    pub triggers_dead_lettered: Counter,
    /// Deliveries queued without a de-duplication claim because the broker could not claim in time.
    pub dedup_skipped: Family<SourceLabels, Counter>,
    /// Jobs published, by what caused them (`webhook`, `mq`, `manual`, `poll`, …).
    pub jobs_published: Family<CauseLabels, Counter>,
    /// PushEvents the router matched against the Applications, with every job published.
    pub events_routed: Counter,
}

/// Labels naming what caused a job.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered and all counts at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("capstan");
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by provider and outcome",
            webhook_requests.clone(),
        );
        // 50 µs … ~3.3 s: verification and a confirmed publish are sub-millisecond to tens of ms.
        let webhook_latency = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
        });
        registry.register(
            "webhook_request_duration_seconds",
            "Time to verify, parse and durably queue a webhook",
            webhook_latency.clone(),
        );
        let events_published = Family::<SourceLabels, Counter>::default();
        registry.register(
            "events_published",
            "PushEvents published to the events exchange",
            events_published.clone(),
        );
        let duplicates_dropped = Family::<SourceLabels, Counter>::default();
        registry.register(
            "webhook_duplicates_dropped",
            "Redelivered webhooks dropped within the de-duplication window",
            duplicates_dropped.clone(),
        );
        let triggers_dead_lettered = Counter::default();
        registry.register(
            "triggers_dead_lettered",
            "Invalid messages on the events exchange, dead-lettered with their reason",
            triggers_dead_lettered.clone(),
        );
        let jobs_published = Family::<CauseLabels, Counter>::default();
        registry.register(
            "jobs_published",
            "Jobs published to the shard queues, by cause",
            jobs_published.clone(),
        );
        let events_routed = Counter::default();
        registry.register(
            "events_routed",
            "PushEvents routed, each with all of its jobs published",
            events_routed.clone(),
        );
        let dedup_skipped = Family::<SourceLabels, Counter>::default();
        registry.register(
            "webhook_dedup_skipped",
            "Deliveries queued without a de-duplication claim (the broker could not claim in time)",
            dedup_skipped.clone(),
        );
        Metrics {
            registry,
            dedup_skipped,
            jobs_published,
            events_routed,
            webhook_requests,
            webhook_latency,
            events_published,
            duplicates_dropped,
            triggers_dead_lettered,
        }
    }

    /// Counts one webhook request.
    pub fn webhook(&self, provider: &str, outcome: &str, seconds: f64) {
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.webhook_latency
            .get_or_create(&SourceLabels {
                source: provider.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one event published from `source`.
    pub fn event_published(&self, source: &str) {
        self.events_published
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc();
    }

    /// Counts one delivery from `provider` queued without a claim.
    pub fn dedup_skipped(&self, provider: &str) {
        self.dedup_skipped
            .get_or_create(&SourceLabels {
                source: provider.to_owned(),
            })
            .inc();
    }

    /// Counts one duplicate delivery dropped from `provider`.
    pub fn duplicate_dropped(&self, provider: &str) {
        self.duplicates_dropped
            .get_or_create(&SourceLabels {
                source: provider.to_owned(),
            })
            .inc();
    }

    /// Counts one job published for `cause`.
    pub fn job_published(&self, cause: &str) {
        self.jobs_published
            .get_or_create(&CauseLabels {
                cause: cause.to_owned(),
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error would only mean a partial scrape.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition_with_their_labels() {
        let m = Metrics::new();
        m.webhook("gitlab", "queued", 0.001);
        m.webhook("gitlab", "queued", 0.002);
        m.webhook("github", "unauthorized", 0.0001);
        m.event_published("gitlab");
        m.duplicate_dropped("github");
        m.triggers_dead_lettered.inc();
        m.job_published("webhook");
        let text = m.encode();
        assert!(
            text.contains(
                r#"capstan_webhook_requests_total{provider="gitlab",outcome="queued"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"capstan_webhook_requests_total{provider="github",outcome="unauthorized"} 1"#
        ));
        assert!(
            text.contains(r#"capstan_webhook_request_duration_seconds_count{source="gitlab"} 2"#)
        );
        assert!(text.contains(r#"capstan_events_published_total{source="gitlab"} 1"#));
        assert!(text.contains(r#"capstan_webhook_duplicates_dropped_total{source="github"} 1"#));
        assert!(text.contains("capstan_triggers_dead_lettered_total 1"));
        assert!(text.contains(r#"capstan_jobs_published_total{cause="webhook"} 1"#));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
