//! The preview consumer: takes PR events off the previews queue (beside the jobs, so a slow
//! render or Git host holds up no sync), computes each preview, keeps its record and reports it
//! on the pull request.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use super::compute::{self, Commits};
use super::record::{self, AppPreview, Preview, PreviewState, Records};
use super::report;
use crate::event::PullRequestEvent;
use crate::forge::{ForgeError, Forges};
use crate::queue::{Delivery, QueueError, SharedQueue, Topic};
use crate::worker::reconcile::Context;

/// How long the pending status may take before the preview goes on without it.
const PENDING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything a preview needs; cheap to clone.
#[derive(Clone)]
pub struct Previewer {
    pub ctx: Arc<Context>,
    pub records: Records,
    pub forges: Forges,
    /// Capstan's external URL, for the links in comments and statuses.
    pub base_url: String,
}

/// Consumes previews until `shutdown`; at most `concurrency` run at once.
pub async fn run(
    previewer: Previewer,
    queue: SharedQueue,
    concurrency: usize,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let mut subscription = queue.subscribe(Topic::Previews).await?;
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let delivery = tokio::select! {
            d = subscription.next() => d,
            _ = shutdown.cancelled() => break,
        };
        let Some(delivery) = delivery else { break };
        let previewer = previewer.clone();
        tokio::spawn(async move {
            handle(&previewer, delivery).await;
            drop(permit);
        });
    }
    subscription.stop_taking();
    Ok(())
}

async fn handle(previewer: &Previewer, delivery: Delivery) {
    let event: PullRequestEvent = match serde_json::from_slice(&delivery.body) {
        Ok(e) => e,
        Err(e) => {
            warn!(message_id = %delivery.id, error = %e, "dead-lettering an invalid preview request");
            let _ = delivery
                .dead_letter(&format!("not a PullRequestEvent: {e}"))
                .await;
            return;
        }
    };
    let span = tracing::info_span!("preview", pr = event.number, head = %event.head_sha,
        provider = %event.source, delivery = event.delivery.as_deref().unwrap_or(""));
    let lost = delivery.lost();
    let done = tokio::select! {
        p = previewer.preview(&event).instrument(span) => Some(p),
        // Another process has the message now: it computes the preview again.
        _ = lost.cancelled() => None,
    };
    if done.is_some()
        && let Err(e) = delivery.ack().await
    {
        warn!(error = %e, "ack of a finished preview failed; it may run again");
    }
}

impl Previewer {
    /// Computes, records and reports the preview of one PR event.
    pub async fn preview(&self, event: &PullRequestEvent) -> Preview {
        let mut preview = record::started(event);
        match self.records.get(&preview.id).await {
            // The comment of an earlier push is edited, not doubled.
            Ok(Some(earlier)) => preview.comment = earlier.comment,
            Ok(None) => {}
            Err(e) => warn!(error = %e, "earlier preview not readable"),
        }
        self.keep(&preview).await;
        // "Pending" is a courtesy: a host that is down must not hold up the preview itself.
        if tokio::time::timeout(PENDING_WAIT, self.report_status(&mut preview))
            .await
            .is_err()
        {
            warn!("the pending status was not set in time; computing the preview anyway");
        }

        let apps = compute::affected(&self.ctx, event).await;
        let mut commits: HashMap<String, Result<Commits, String>> = HashMap::new();
        let mut results = Vec::with_capacity(apps.len());
        for app in &apps {
            let url = app
                .all_sources()
                .into_iter()
                .map(|s| s.repo_url.clone())
                .find(|u| compute::same_repo(u, &event.repo_urls))
                .unwrap_or_default();
            if !commits.contains_key(&url) {
                let found = compute::commits(&self.ctx, &url, event).await;
                commits.insert(url.clone(), found);
            }
            let result = match commits.get(&url) {
                Some(Ok(c)) => {
                    preview.base_sha = Some(c.base.clone());
                    // Bitbucket Cloud names the head by 12 digits; the status goes on the commit.
                    preview.head_sha = c.head.clone();
                    compute::preview_app(&self.ctx, app, event, c).await
                }
                Some(Err(e)) => failed_app(app, e),
                None => failed_app(app, "no repository"),
            };
            results.push(result);
        }
        let (state, message) = report::summary(&results);
        preview.apps = results;
        preview.state = state;
        preview.message = message;
        preview.finished_at = Some(crate::event::now_rfc3339());
        record::bound(&mut preview);
        info!(state = ?preview.state, apps = preview.apps.len(), message = %preview.message, "preview computed");
        // The comment first: once the status turns, the comment it sums up is there to read.
        // No comment on a PR that touches no app, unless an earlier push left one to correct.
        if preview.state != PreviewState::NoApps || preview.comment.is_some() {
            self.report_comment(&mut preview, event).await;
        }
        self.report_status(&mut preview).await;
        self.keep(&preview).await;
        preview
    }

    async fn keep(&self, preview: &Preview) {
        if let Err(e) = self.records.save(preview).await {
            warn!(error = %e, "preview record not written");
        }
    }

    /// Sets the status; a Git host that fails is recorded on the preview, never retried forever.
    async fn report_status(&self, preview: &mut Preview) {
        let Some(repo) = self.repo_of(preview) else {
            return;
        };
        let status = report::status(preview, &self.base_url);
        if let Err(e) = self
            .forges
            .set_status(&repo, &preview.head_sha, &status)
            .await
        {
            self.report_failed(preview, "status", e);
        }
    }

    async fn report_comment(&self, preview: &mut Preview, event: &PullRequestEvent) {
        let Some(repo) = self.repo_of(preview) else {
            return;
        };
        let body = report::comment(preview, &self.base_url);
        match self
            .forges
            .upsert_comment(
                &repo,
                event.number,
                report::COMMENT_MARKER,
                &body,
                preview.comment.as_ref(),
            )
            .await
        {
            Ok(comment) => preview.comment = Some(comment),
            Err(e) => self.report_failed(preview, "comment", e),
        }
    }

    fn report_failed(&self, preview: &mut Preview, what: &str, e: ForgeError) {
        warn!(error = %e, "preview {what} not posted to the Git host");
        preview.report_error = Some(format!("{what}: {e}"));
    }

    /// The repository on the Git host, when credentials for it are configured; otherwise the
    /// record says why nothing was posted.
    fn repo_of(&self, preview: &mut Preview) -> Option<crate::event::ForgeRepo> {
        let repo = preview.forge.clone();
        if self.forges.configured_for(&repo) {
            Some(repo)
        } else {
            preview.report_error = Some(format!(
                "no credentials for the {} API at {} in [forge.hosts]: the preview is only served by the API",
                repo.kind, repo.api_url
            ));
            None
        }
    }
}

fn failed_app(app: &crate::store::Application, error: &str) -> AppPreview {
    AppPreview {
        app: app.key().to_string(),
        project: app.spec.project.clone(),
        destination: String::new(),
        error: Some(error.to_owned()),
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        cluster_changes: Vec::new(),
        diff: String::new(),
        diff_truncated: false,
    }
}
