//! The process's Prometheus metrics, served at `/metrics` in the text exposition format.
//! Every capability registers its families here, so one scrape shows the whole process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    /// Notifications by service type and what became of them.
    pub notifications: Family<NotificationLabels, Counter>,
    /// Deliveries queued without a de-duplication claim because the broker could not claim in time.
    pub dedup_skipped: Family<SourceLabels, Counter>,
    /// Jobs published, by what caused them (`webhook`, `mq`, `manual`, `poll`, …).
    pub jobs_published: Family<CauseLabels, Counter>,
    /// PushEvents the router matched against the Applications, with every job published.
    pub events_routed: Counter,
    /// Time spent in each reconcile stage (`fetch`, `render`, `compare`, `sync`).
    pub stage_duration: Family<StageLabels, Histogram>,
    /// Time of whole reconciles, status write included.
    pub reconcile_duration: Histogram,
    /// Reconciles by outcome.
    pub reconciles: Family<OutcomeLabels, Counter>,
    /// Messages waiting in each queue, sampled from the broker.
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// Jobs delivered again after an earlier delivery was not acknowledged.
    pub job_redeliveries: Counter,
    /// Applications by sync and health status, counted from the watch cache at each scrape.
    pub apps: Family<AppStatusLabels, Gauge>,
    /// Time of Git fetches (ref listing plus pack transfer).
    pub git_fetch_duration: Histogram,
    /// Bytes of packs received by Git fetches.
    pub git_fetch_bytes: Counter,
    /// Kubernetes API requests by cluster, verb and status code.
    pub cluster_requests: Family<ClusterRequestLabels, Counter>,
    /// Job shard queues this process consumes.
    pub shards_owned: Gauge,
}

/// Labels naming a reconcile stage.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: String,
}

/// Labels naming what became of a reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// Labels naming one broker queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

/// Labels of the Applications gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppStatusLabels {
    pub sync_status: String,
    pub health_status: String,
}

/// Labels of one Kubernetes API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterRequestLabels {
    /// The cluster's name (`in-cluster` for the management cluster).
    pub cluster: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The HTTP status code, or `error` when no answer came.
    pub code: String,
}

/// A reconcile stage, as the `stage` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resolving revisions and fetching Git.
    Fetch,
    /// Rendering and preparing manifests.
    Render,
    /// Comparing desired with live state.
    Compare,
    /// Running the sync operation.
    Sync,
}

impl Stage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Render => "render",
            Stage::Compare => "compare",
            Stage::Sync => "sync",
        }
    }
}

/// Labels of a notification outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub service: String,
    pub outcome: String,
}

/// Labels naming what caused a job.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: String,
}

/// 1 ms … ~65 s: a cached render takes about a millisecond, a cold fetch or a long sync seconds.
fn stage_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 17)
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
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
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications by service type and outcome (queued, not_queued, sent, duplicate, retried, dead_lettered)",
            notifications.clone(),
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
        let stage_duration = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(stage_buckets())
        });
        registry.register(
            "reconcile_stage_duration_seconds",
            "Time spent in each reconcile stage (fetch, render, compare, sync)",
            stage_duration.clone(),
        );
        let reconcile_duration = Histogram::new(stage_buckets());
        registry.register(
            "reconcile_duration_seconds",
            "Time of whole reconciles, status write included",
            reconcile_duration.clone(),
        );
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by outcome (synced, out_of_sync, error, gone, requeued, dead_lettered)",
            reconciles.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Messages waiting in each queue, sampled from the broker",
            queue_depth.clone(),
        );
        let job_redeliveries = Counter::default();
        registry.register(
            "job_redeliveries",
            "Jobs delivered again after an earlier delivery was not acknowledged",
            job_redeliveries.clone(),
        );
        let apps = Family::<AppStatusLabels, Gauge>::default();
        registry.register(
            "apps",
            "Applications by sync and health status",
            apps.clone(),
        );
        let git_fetch_duration = Histogram::new(stage_buckets());
        registry.register(
            "git_fetch_duration_seconds",
            "Time of Git fetches, ref listing and pack transfer",
            git_fetch_duration.clone(),
        );
        let git_fetch_bytes = Counter::default();
        registry.register(
            "git_fetch_bytes",
            "Bytes of packs received by Git fetches",
            git_fetch_bytes.clone(),
        );
        let cluster_requests = Family::<ClusterRequestLabels, Counter>::default();
        registry.register(
            "cluster_requests",
            "Kubernetes API requests by cluster, verb and status code",
            cluster_requests.clone(),
        );
        let shards_owned = Gauge::default();
        registry.register(
            "shards_owned",
            "Job shard queues this process consumes",
            shards_owned.clone(),
        );
        Metrics {
            registry,
            stage_duration,
            reconcile_duration,
            reconciles,
            queue_depth,
            job_redeliveries,
            apps,
            git_fetch_duration,
            git_fetch_bytes,
            cluster_requests,
            shards_owned,
            dedup_skipped,
            jobs_published,
            events_routed,
            webhook_requests,
            webhook_latency,
            events_published,
            duplicates_dropped,
            triggers_dead_lettered,
            notifications,
        }
    }

    /// Counts one notification outcome for a service type (`webhook`, `slack`, …).
    pub fn notification(&self, service: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                service: service.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
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

    /// Records the time one reconcile stage took.
    pub fn stage(&self, stage: Stage, seconds: f64) {
        self.stage_duration
            .get_or_create(&StageLabels {
                stage: stage.as_str().to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one finished reconcile and records how long it took.
    pub fn reconciled(&self, outcome: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    /// Counts a reconcile outcome decided outside a reconcile (e.g. a job dead-lettered).
    pub fn reconcile_outcome(&self, outcome: &str) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the sampled depth of one queue.
    pub fn set_queue_depth(&self, queue: &str, messages: u64) {
        self.queue_depth
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
    }

    /// Replaces the Applications gauge with `counts` of (sync status, health status).
    pub fn set_apps(&self, counts: impl IntoIterator<Item = ((String, String), i64)>) {
        // Cleared first, so a status no app has any more reads as absent, not as its last count.
        self.apps.clear();
        for ((sync_status, health_status), n) in counts {
            self.apps
                .get_or_create(&AppStatusLabels {
                    sync_status,
                    health_status,
                })
                .set(n);
        }
    }

    /// Records one Git fetch.
    pub fn git_fetch(&self, seconds: f64, bytes: u64) {
        self.git_fetch_duration.observe(seconds);
        self.git_fetch_bytes.inc_by(bytes);
    }

    /// Counts one Kubernetes API request.
    pub fn cluster_request(&self, cluster: &str, verb: &str, code: &str) {
        self.cluster_requests
            .get_or_create(&ClusterRequestLabels {
                cluster: cluster.to_owned(),
                verb: verb.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    /// Sets how many job shard queues this process consumes.
    pub fn set_shards_owned(&self, n: usize) {
        self.shards_owned.set(i64::try_from(n).unwrap_or(i64::MAX));
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

    #[test]
    fn reconcile_git_cluster_and_queue_families_carry_their_labels() {
        let m = Metrics::new();
        m.stage(Stage::Fetch, 0.2);
        m.stage(Stage::Fetch, 0.3);
        m.stage(Stage::Sync, 1.5);
        m.reconciled("synced", 2.0);
        m.reconciled("error", 0.1);
        m.git_fetch(0.4, 2048);
        m.git_fetch(0.1, 0);
        m.cluster_request("prod", "patch", "200");
        m.cluster_request("prod", "patch", "200");
        m.cluster_request("prod", "get", "error");
        m.set_queue_depth("capstan.jobs.1", 7);
        m.set_shards_owned(3);
        m.job_redeliveries.inc();
        let text = m.encode();
        for line in [
            r#"capstan_reconcile_stage_duration_seconds_count{stage="fetch"} 2"#,
            r#"capstan_reconcile_stage_duration_seconds_sum{stage="fetch"} 0.5"#,
            r#"capstan_reconcile_stage_duration_seconds_count{stage="sync"} 1"#,
            r#"capstan_reconciles_total{outcome="synced"} 1"#,
            r#"capstan_reconciles_total{outcome="error"} 1"#,
            "capstan_reconcile_duration_seconds_count 2",
            "capstan_git_fetch_duration_seconds_count 2",
            "capstan_git_fetch_bytes_total 2048",
            r#"capstan_cluster_requests_total{cluster="prod",verb="patch",code="200"} 2"#,
            r#"capstan_cluster_requests_total{cluster="prod",verb="get",code="error"} 1"#,
            r#"capstan_queue_depth{queue="capstan.jobs.1"} 7"#,
            "capstan_shards_owned 3",
            "capstan_job_redeliveries_total 1",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing:\n{text}"
            );
        }
        // A 1.5 s sync lands in the 2.048 s bucket, not the 1.024 s one.
        let bucket = |le: &str, n: u32| {
            format!(
                r#"capstan_reconcile_stage_duration_seconds_bucket{{le="{le}",stage="sync"}} {n}"#
            )
        };
        assert!(text.contains(&bucket("1.024", 0)), "{text}");
        assert!(text.contains(&bucket("2.048", 1)), "{text}");
    }

    #[test]
    fn the_apps_gauge_is_replaced_so_statuses_no_app_has_disappear() {
        let m = Metrics::new();
        let key = |s: &str, h: &str| (s.to_owned(), h.to_owned());
        m.set_apps([
            (key("OutOfSync", "Missing"), 2),
            (key("Synced", "Healthy"), 1),
        ]);
        m.set_apps([(key("Synced", "Healthy"), 3)]);
        let text = m.encode();
        assert!(
            text.contains(r#"capstan_apps{sync_status="Synced",health_status="Healthy"} 3"#),
            "{text}"
        );
        assert!(!text.contains("OutOfSync"), "{text}");
    }
}
