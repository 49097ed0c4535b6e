//! What a preview found, kept as a ConfigMap `capstan-preview-<id>` in the control namespace so
//! every api replica serves it and a restart keeps the PR comment's id (one comment per PR).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{ForgeRepo, PullRequestEvent};
use crate::forge::CommentRef;

/// The label every preview ConfigMap carries, to list them.
pub const PREVIEW_LABEL: &str = "capstan.dev/preview";
/// Diff text kept per preview, across its apps; beyond it each app's diff is cut (the lists of
/// added, changed and removed objects are always whole).
pub const MAX_STORED_DIFF: usize = 400 * 1024;

/// One preview of one pull request (the latest head commit's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Stable per repository and PR number.
    pub id: String,
    /// The base repository, as the host named it first.
    pub repo: String,
    pub pr: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// The Git host (`github`, `gitlab` …).
    pub provider: String,
    /// The repository as the host's API names it: where comments and statuses go.
    #[schema(value_type = Object)]
    pub forge: ForgeRepo,
    #[serde(default)]
    pub delivery: Option<String>,
    pub head_sha: String,
    pub base_ref: String,
    /// The base commit rendered, once resolved.
    #[serde(default)]
    pub base_sha: Option<String>,
    pub state: PreviewState,
    /// One line for people: what the status on the commit says.
    pub message: String,
    pub apps: Vec<AppPreview>,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The PR comment Capstan keeps up to date, once written.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub comment: Option<CommentRef>,
    /// Why the result could not be posted to the Git host, if it could not.
    #[serde(default)]
    pub report_error: Option<String>,
}

/// Where a preview stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum PreviewState {
    Running,
    /// Every app rendered; some may change.
    Succeeded,
    /// An app failed to render, or broke a project rule.
    Failed,
    /// No Application follows the PR's base branch of this repository.
    NoApps,
}

/// The preview of one Application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPreview {
    /// `namespace/name`.
    pub app: String,
    pub project: String,
    /// `server-or-name/namespace`.
    pub destination: String,
    /// Why the head could not be rendered or is refused (render error naming the file, project
    /// rule); then nothing else is filled.
    #[serde(default)]
    pub error: Option<String>,
    /// Head against base: what the PR changes in Git's rendering.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Head against the live objects: what a sync after the merge would change in the cluster
    /// (drift included), as `Kind/namespace/name`.
    pub cluster_changes: Vec<String>,
    /// Unified diff, head against base, Secrets masked.
    pub diff: String,
    /// The diff was cut to keep the record small.
    #[serde(default)]
    pub diff_truncated: bool,
}

impl AppPreview {
    /// Whether the PR changes what this app renders.
    pub fn changes(&self) -> bool {
        !(self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty())
    }
}

/// The id of the preview of `pr` in `repo`: the same for every push to the PR.
pub fn preview_id(repo: &ForgeRepo, pr: u64) -> String {
    let mut h = Sha256::new();
    for part in [repo.kind.as_str(), &repo.api_url, &repo.owner, &repo.name] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(pr.to_string().as_bytes());
    hex::encode(&h.finalize()[..10])
}

/// A fresh, running preview of `event`.
pub fn started(event: &PullRequestEvent) -> Preview {
    Preview {
        id: preview_id(&event.api, event.number),
        repo: event.repo_urls.first().cloned().unwrap_or_default(),
        pr: event.number,
        title: event.title.clone(),
        author: event.author.clone(),
        html_url: event.html_url.clone(),
        provider: event.source.as_str().to_owned(),
        forge: event.api.clone(),
        delivery: event.delivery.clone(),
        head_sha: event.head_sha.clone(),
        base_ref: event.base_ref.clone(),
        base_sha: event.base_sha.clone(),
        state: PreviewState::Running,
        message: "rendering the pull request".into(),
        apps: Vec::new(),
        started_at: crate::event::now_rfc3339(),
        finished_at: None,
        comment: None,
        report_error: None,
    }
}

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("previews store: {0}")]
    Kube(#[from] kube::Error),
    #[error("preview record {0} is not readable: {1}")]
    Corrupt(String, serde_json::Error),
}

fn config_map_name(id: &str) -> String {
    format!("capstan-preview-{id}")
}

/// The preview ConfigMaps of the control namespace.
#[derive(Clone)]
pub struct Records {
    api: Api<ConfigMap>,
}

impl Records {
    /// Records kept in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Records {
        Records {
            api: Api::namespaced(client, namespace),
        }
    }

    /// Writes `preview` (server-side apply: the whole record replaces the last one).
    pub async fn save(&self, preview: &Preview) -> Result<(), RecordError> {
        let body = serde_json::to_string(preview)
            .map_err(|e| RecordError::Corrupt(preview.id.clone(), e))?;
        let cm = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map_name(&preview.id), "labels": {PREVIEW_LABEL: "true"}},
            "data": {"preview.json": body},
        });
        self.api
            .patch(
                &config_map_name(&preview.id),
                &PatchParams::apply("capstan-preview").force(),
                &Patch::Apply(&cm),
            )
            .await?;
        Ok(())
    }

    /// The preview with `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<Preview>, RecordError> {
        match self.api.get_opt(&config_map_name(id)).await? {
            Some(cm) => parse(id, &cm).map(Some),
            None => Ok(None),
        }
    }

    /// Every preview, newest first.
    pub async fn list(&self) -> Result<Vec<Preview>, RecordError> {
        let cms = self
            .api
            .list(&ListParams::default().labels(&format!("{PREVIEW_LABEL}=true")))
            .await?;
        let mut out: Vec<Preview> = cms
            .items
            .iter()
            .filter_map(|cm| {
                let id = cm
                    .metadata
                    .name
                    .as_deref()?
                    .strip_prefix("capstan-preview-")?;
                parse(id, cm).ok()
            })
            .collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        Ok(out)
    }
}

fn parse(id: &str, cm: &ConfigMap) -> Result<Preview, RecordError> {
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("preview.json"))
        .map(String::as_str)
        .unwrap_or("");
    serde_json::from_str(text).map_err(|e| RecordError::Corrupt(id.to_owned(), e))
}

/// Cuts the apps' diffs so the record stays under [`MAX_STORED_DIFF`].
pub fn bound(preview: &mut Preview) {
    let mut left = MAX_STORED_DIFF;
    for app in &mut preview.apps {
        if app.diff.len() > left {
            let mut cut = left;
            while !app.diff.is_char_boundary(cut) {
                cut -= 1;
            }
            app.diff.truncate(cut);
            app.diff_truncated = true;
        }
        left -= app.diff.len();
    }
}
