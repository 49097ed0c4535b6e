//! The worker's hook: after a status write, the triggers that fired become notifications on the
//! queue. It never waits for the queue and never fails the reconcile that called it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::{debug, warn};

use super::notification::{self, NOTIFICATION_VERSION, Notification};
use super::settings::NotifySettings;
use super::{subscriptions, triggers};
use crate::metrics::Metrics;
use crate::queue::SharedQueue;
use crate::store::ProjectStore;
use crate::store::application::{Application, ApplicationStatus};

/// Turns status transitions into queued notifications; cheap to clone. Disabled (does nothing)
/// when no service is configured.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: SharedQueue,
    projects: ProjectStore,
    /// Configured service names and types: a subscription to any other is logged and skipped.
    services: BTreeMap<String, &'static str>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// A notifier that never notifies.
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// A notifier publishing to `queue`, reading project subscriptions from `projects`.
    pub fn new(
        settings: &NotifySettings,
        commit_statuses: bool,
        queue: SharedQueue,
        projects: ProjectStore,
        metrics: Arc<Metrics>,
    ) -> Notifier {
        if settings.services.is_empty() && !commit_statuses {
            return Notifier::disabled();
        }
        let mut services: BTreeMap<String, &'static str> = settings
            .services
            .iter()
            .map(|(name, s)| (name.clone(), s.kind()))
            .collect();
        if commit_statuses {
            services.insert(
                super::commit_status::SERVICE.to_owned(),
                super::commit_status::SERVICE,
            );
        }
        Notifier {
            inner: Some(Arc::new(Inner {
                queue,
                projects,
                services,
                metrics,
            })),
        }
    }

    /// Called once `after` was written over `before`: queues what fired, in the background.
    pub fn status_written(
        &self,
        app: &Application,
        before: Option<&ApplicationStatus>,
        after: &ApplicationStatus,
    ) {
        let Some(inner) = &self.inner else { return };
        let project = inner.projects.get(crate::tenancy::project_name(app));
        let project_annotations = project
            .as_ref()
            .and_then(|p| p.metadata.annotations.as_ref());
        let names: BTreeSet<String> = inner.services.keys().cloned().collect();
        let queued = notifications(app, before, after, project_annotations, &names);
        if queued.is_empty() {
            return;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            for n in queued {
                let kind = inner.services.get(&n.service).copied().unwrap_or("unknown");
                match notification::publish(&inner.queue, &n).await {
                    Ok(()) => {
                        debug!(app = %n.app, trigger = n.trigger.name(), service = %n.service, "notification queued");
                        inner.metrics.notification(kind, "queued");
                    }
                    // The status is written and the sync done; only this message is lost.
                    Err(e) => {
                        warn!(app = %n.app, trigger = n.trigger.name(), service = %n.service, error = %e, "notification could not be queued");
                        inner.metrics.notification(kind, "not_queued");
                    }
                }
            }
        });
    }
}

/// The notifications `after` causes: one per fired trigger and subscribed (service, recipient).
pub fn notifications(
    app: &Application,
    before: Option<&ApplicationStatus>,
    after: &ApplicationStatus,
    project_annotations: Option<&BTreeMap<String, String>>,
    services: &BTreeSet<String>,
) -> Vec<Notification> {
    let fired = triggers::fired(before, after);
    if fired.is_empty() {
        return Vec::new();
    }
    let (subscribed, unknown) =
        subscriptions::for_app(app.metadata.annotations.as_ref(), project_annotations);
    let key = app.key();
    for bad in unknown {
        debug!(app = %key, annotation = %bad, "not a subscription: no such trigger");
    }
    let snapshot = notification::snapshot(app, after);
    let now = crate::event::now_rfc3339();
    let mut out = Vec::new();
    for f in &fired {
        for s in subscribed.iter().filter(|s| s.trigger == f.trigger) {
            if !services.contains(&s.service) {
                warn!(app = %key, service = %s.service, "subscribed to a service that is not in [notify.services]");
                continue;
            }
            out.push(Notification {
                v: NOTIFICATION_VERSION,
                id: uuid::Uuid::new_v4().to_string(),
                app: key.clone(),
                trigger: f.trigger,
                revision: f.revision.clone(),
                occurrence: f.occurrence.clone(),
                service: s.service.clone(),
                recipient: s.recipient.clone(),
                app_snapshot: snapshot.clone(),
                fired_at: now.clone(),
            });
        }
    }
    out
}
