//! `PushEvent`: what every source signal (webhook or published message) becomes (docs/architecture.md, Contracts).

use serde::{Deserialize, Serialize};

/// Schema version of [`PushEvent`] documents.
pub const PUSH_EVENT_VERSION: u32 = 1;

/// A normalised "these refs moved in this repository" signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushEvent {
    pub v: u32,
    pub id: String,
    /// Who sent it.
    pub source: EventSource,
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

/// Who sent a PushEvent; `source` on the wire. Senders Capstan does not know keep their name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventSource {
    Github,
    Gitlab,
    BitbucketCloud,
    BitbucketServer,
    Gitea,
    Gogs,
    AzureDevops,
    /// A message another system published on the queue.
    Mq,
    /// Any other sender's own name.
    Other(String),
}

impl EventSource {
    /// The wire name (`github`, `bitbucket-server`, …).
    pub fn as_str(&self) -> &str {
        match self {
            EventSource::Github => "github",
            EventSource::Gitlab => "gitlab",
            EventSource::BitbucketCloud => "bitbucket-cloud",
            EventSource::BitbucketServer => "bitbucket-server",
            EventSource::Gitea => "gitea",
            EventSource::Gogs => "gogs",
            EventSource::AzureDevops => "azure-devops",
            EventSource::Mq => "mq",
            EventSource::Other(name) => name,
        }
    }

    /// The source a wire name stands for.
    pub fn from_name(name: &str) -> EventSource {
        match name {
            "github" => EventSource::Github,
            "gitlab" => EventSource::Gitlab,
            "bitbucket-cloud" => EventSource::BitbucketCloud,
            "bitbucket-server" => EventSource::BitbucketServer,
            "gitea" => EventSource::Gitea,
            "gogs" => EventSource::Gogs,
            "azure-devops" => EventSource::AzureDevops,
            "mq" => EventSource::Mq,
            other => EventSource::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(EventSource::from_name(&name))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_keep_their_wire_names_and_unknown_senders_keep_theirs() {
        for name in [
            "github",
            "gitlab",
            "bitbucket-cloud",
            "bitbucket-server",
            "gitea",
            "gogs",
            "azure-devops",
            "mq",
            "jenkins",
        ] {
            let json = format!("\"{name}\"");
            let source: EventSource = serde_json::from_str(&json).expect("parses");
            assert_eq!(serde_json::to_string(&source).expect("serialises"), json);
        }
        assert_eq!(EventSource::from_name("mq"), EventSource::Mq);
        assert_eq!(
            EventSource::from_name("jenkins"),
            EventSource::Other("jenkins".into())
        );
    }
}
