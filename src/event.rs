//! `PushEvent`: what every source signal (webhook or published message) becomes (DESIGN.md).

use serde::{Deserialize, Serialize};

/// Schema version of [`PushEvent`] documents.
pub const PUSH_EVENT_VERSION: u32 = 1;

/// A normalised "these refs moved in this repository" signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushEvent {
    pub v: u32,
    pub id: String,
    /// Who sent it: `github`, `gitlab`, … or `mq` for messages other systems publish.
    pub source: String,
    /// The Git host's delivery id, if it sent one.
    #[serde(default)]
    pub delivery: Option<String>,
    pub received_at: String,
    /// Every URL the sender gave for the repository (https, ssh, web).
    pub repo_urls: Vec<String>,
    pub refs: Vec<RefUpdate>,
    /// Changed paths; `None` means unknown, so every path counts as affected.
    #[serde(default)]
    pub changed_files: Option<Vec<String>>,
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// One ref that moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefUpdate {
    /// Full ref name, e.g. `refs/heads/main`.
    pub name: String,
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
}

/// A queue message that is not a valid PushEvent.
#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    #[error("not a PushEvent document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported PushEvent version {0}")]
    Version(u32),
}

impl PushEvent {
    /// Parses a PushEvent from a queue message, refusing unknown versions.
    pub fn parse(body: &[u8]) -> Result<Self, EventParseError> {
        let event: PushEvent = serde_json::from_slice(body)?;
        if event.v != PUSH_EVENT_VERSION {
            return Err(EventParseError::Version(event.v));
        }
        Ok(event)
    }
}

/// The current time in RFC 3339, as every document Capstan writes uses.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// True when `sha` is absent or Git's all-zero id (the missing side of a create or delete).
pub fn is_null_sha(sha: Option<&str>) -> bool {
    sha.is_none_or(|s| s.is_empty() || s.bytes().all(|b| b == b'0'))
}
