//! `Job`: one unit of work for one Application (docs/architecture.md, Contracts).

use serde::{Deserialize, Serialize};

use crate::domain::AppKey;
use crate::queue::{QueueError, SharedQueue, Topic};

/// Schema version of [`Job`] documents.
pub const JOB_VERSION: u32 = 1;

/// Refresh compares Git with the cluster; sync also applies; terminate stops a running sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Refresh,
    Sync,
    Terminate,
}

/// What caused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CauseSource {
    Webhook,
    Mq,
    Manual,
    Poll,
    Drift,
}

impl CauseSource {
    /// The wire name (`webhook`, `mq`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CauseSource::Webhook => "webhook",
            CauseSource::Mq => "mq",
            CauseSource::Manual => "manual",
            CauseSource::Poll => "poll",
            CauseSource::Drift => "drift",
        }
    }
}

/// Why the job exists, for status, history and logs. Fields added after version 1 of the
/// contract are optional, so jobs queued by an older Capstan still parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub source: CauseSource,
    /// The PushEvent behind a webhook or mq job.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Who: the person (manual), the pusher the Git host named (webhook), or the publisher a
    /// trigger message named (mq).
    #[serde(default)]
    pub by: Option<String>,
    /// The event's sender: the Git host (`github`, …) for a webhook, `mq` or the publishing
    /// system's own name for a published event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The Git host's delivery id, or the queue message id of a published event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

impl From<CauseSource> for Cause {
    /// A cause with no event and no person (the poller, drift).
    fn from(source: CauseSource) -> Cause {
        Cause {
            source,
            event_id: None,
            by: None,
            provider: None,
            delivery: None,
        }
    }
}

impl Cause {
    /// A person's request (API, CLI, web UI) as `user`.
    pub fn by_person(user: String) -> Cause {
        Cause {
            by: Some(user),
            ..Cause::from(CauseSource::Manual)
        }
    }
}

/// One unit of work for one Application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub v: u32,
    pub id: String,
    /// The Application, `<namespace>/<name>` on the wire.
    pub app: AppKey,
    pub kind: JobKind,
    /// Bypass render and revision caches.
    #[serde(default)]
    pub hard: bool,
    /// The commit that triggered it, if known; the worker still resolves the revision itself.
    #[serde(default)]
    pub revision: Option<String>,
    /// For a sync: also delete tracked objects that left Git (automated prune applies regardless).
    #[serde(default)]
    pub prune: bool,
    /// For a sync: what a person asked for beyond prune (revision, resources, dry run, rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncRequest>,
    pub cause: Cause,
    pub enqueued_at: String,
}

/// The options of a requested sync, as `argocd app sync` and `argocd app rollback` take them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// Sync this revision (a commit, tag or branch) instead of the source's targetRevision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Sync only these resources (selective sync: hooks do not run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceSelector>,
    /// Compare and dry-run only; nothing is applied or pruned.
    #[serde(default)]
    pub dry_run: bool,
    /// Roll back to this `status.history[].id`: its revision and sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_id: Option<i64>,
}

/// One resource of a selective sync (`GROUP:KIND:NAMESPACE/NAME` on the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSelector {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
}

impl ResourceSelector {
    /// Parses `GROUP:KIND:NAME` or `GROUP:KIND:NAMESPACE/NAME` (group empty for the core group),
    /// as `argocd app sync --resource` takes it.
    pub fn parse(text: &str) -> Result<ResourceSelector, String> {
        let mut parts = text.splitn(3, ':');
        let (Some(group), Some(kind), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{text:?}: expected GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME"
            ));
        };
        let (namespace, name) = rest.split_once('/').unwrap_or(("", rest));
        if kind.is_empty() || name.is_empty() || name.contains('/') {
            return Err(format!("{text:?}: kind and name are required"));
        }
        Ok(ResourceSelector {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// A queue message that is not a valid Job.
#[derive(Debug, thiserror::Error)]
pub enum JobParseError {
    #[error("not a Job document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported Job version {0}")]
    Version(u32),
}

impl Job {
    /// A new job for `app`.
    pub fn new(app: &AppKey, kind: JobKind, cause: Cause) -> Self {
        Job {
            v: JOB_VERSION,
            id: uuid::Uuid::new_v4().to_string(),
            app: app.clone(),
            kind,
            hard: false,
            revision: None,
            prune: false,
            sync: None,
            cause,
            enqueued_at: crate::event::now_rfc3339(),
        }
    }

    /// Parses a Job from a queue message.
    pub fn parse(body: &[u8]) -> Result<Self, JobParseError> {
        let job: Job = serde_json::from_slice(body)?;
        if job.v != JOB_VERSION {
            return Err(JobParseError::Version(job.v));
        }
        Ok(job)
    }
}

/// Publishes a Job to its app's shard, confirmed: the one way any part of Capstan enqueues work.
pub async fn publish(queue: &SharedQueue, job: &Job) -> Result<(), QueueError> {
    let body = serde_json::to_vec(job)
        .map_err(|e| QueueError::Unavailable(format!("serialising job: {e}")))?;
    queue
        .publish(Topic::Jobs, &job.app.to_string(), &job.id, body)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_names_are_the_wire_names() {
        for c in [
            CauseSource::Webhook,
            CauseSource::Mq,
            CauseSource::Manual,
            CauseSource::Poll,
            CauseSource::Drift,
        ] {
            let wire = serde_json::to_value(c).expect("serialises");
            assert_eq!(wire.as_str(), Some(c.as_str()));
        }
    }

    #[test]
    fn a_job_round_trips_through_json() {
        let job = Job::new(
            &AppKey::parse("apps/guestbook").expect("key"),
            JobKind::Sync,
            Cause::by_person("alice".into()),
        );
        let body = serde_json::to_vec(&job).expect("serialize");
        assert_eq!(Job::parse(&body).expect("parse"), job);
        let text = String::from_utf8(body).expect("utf8");
        assert!(
            text.contains(r#""kind":"sync""#) && text.contains(r#""source":"manual""#),
            "{text}"
        );
    }

    #[test]
    fn a_job_queued_before_provenance_still_parses_and_new_fields_round_trip() {
        let old = br#"{"v":1,"id":"j","app":"apps/web","kind":"refresh",
            "cause":{"source":"webhook","event_id":"e-1","by":null},"enqueued_at":"2026-01-01T00:00:00Z"}"#;
        let job = Job::parse(old).expect("an old job parses");
        assert_eq!(job.cause.source, CauseSource::Webhook);
        assert_eq!(job.cause.event_id.as_deref(), Some("e-1"));
        assert_eq!((job.cause.provider, job.cause.delivery), (None, None));

        let mut job = Job::new(
            &AppKey::parse("apps/web").expect("key"),
            JobKind::Refresh,
            CauseSource::Webhook.into(),
        );
        job.cause.provider = Some("gitlab".into());
        job.cause.delivery = Some("d-9".into());
        job.cause.by = Some("jdoe".into());
        let body = serde_json::to_vec(&job).expect("serialize");
        let wire: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(wire["cause"]["provider"], "gitlab");
        assert_eq!(wire["cause"]["delivery"], "d-9");
        assert_eq!(Job::parse(&body).expect("parse"), job);
    }

    #[test]
    fn resource_selectors_parse_as_argocd_takes_them() {
        let s = ResourceSelector::parse("apps:Deployment:shop/web").expect("parse");
        assert_eq!(
            (
                s.group.as_str(),
                s.kind.as_str(),
                s.namespace.as_str(),
                s.name.as_str()
            ),
            ("apps", "Deployment", "shop", "web")
        );
        let core = ResourceSelector::parse(":Namespace:shop").expect("parse");
        assert_eq!((core.group.as_str(), core.namespace.as_str()), ("", ""));
        for bad in ["Deployment/web", "apps:Deployment:", "apps::x", "a:b:c/d/e"] {
            assert!(ResourceSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_and_bad_app_keys_are_refused() {
        assert!(Job::parse(b"\xff\x00").is_err());
        let job = Job::new(
            &AppKey::parse("a/b").expect("key"),
            JobKind::Refresh,
            CauseSource::Poll.into(),
        );
        let mut doc = serde_json::to_value(&job).expect("serialize");
        for bad in ["no-namespace", "a/b/c", "Upper/x"] {
            doc["app"] = bad.into();
            let body = serde_json::to_vec(&doc).expect("serialize");
            assert!(
                matches!(Job::parse(&body), Err(JobParseError::Json(_))),
                "{bad}"
            );
        }
    }
}
