//! `PushEvent`: what every source signal (webhook or published message) becomes (docs/architecture.md, Contracts).

use serde::{Deserialize, Serialize};

use crate::domain::RepoUrl;

mod pull_request;
pub use pull_request::{
    ForgeRepo, PULL_REQUEST_EVENT_VERSION, PullRequestAction, PullRequestEvent,
};

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
    /// Who caused it: the user the Git host says pushed, or the publisher a trigger names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher: Option<String>,
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

/// A queue message that is not a valid PushEvent or trigger; the text is the dead-letter reason.
#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    /// Not JSON, or JSON of the wrong shape (missing or unknown field, wrong type).
    #[error("not a PushEvent or trigger document: {0}")]
    Json(#[from] serde_json::Error),
    /// A full PushEvent of a version this Capstan does not read.
    #[error("unsupported PushEvent version {0} (this Capstan reads version {PUSH_EVENT_VERSION})")]
    Version(u64),
    /// Well-formed JSON whose content breaks the contract (see `schemas/`).
    #[error("{field}: {problem}")]
    Invalid {
        /// Where, e.g. `refs[0].after`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// At most this many repository URLs in one PushEvent.
pub const MAX_REPO_URLS: usize = 20;
/// At most this many refs in one PushEvent.
pub const MAX_REFS: usize = 100;
/// At most this many changed files; a producer with more should send `null` (unknown) instead.
pub const MAX_CHANGED_FILES: usize = 10_000;
/// Longest repository URL or changed path, in characters.
pub const MAX_PATH_CHARS: usize = 4096;
/// Longest ref or branch name, in characters.
pub const MAX_REF_CHARS: usize = 1024;
/// Longest event id, in characters (an AMQP message id holds 255 bytes).
pub const MAX_ID_CHARS: usize = 255;
/// Longest host delivery id, in characters.
pub const MAX_DELIVERY_CHARS: usize = 1024;
/// Longest pusher or publisher name, in characters.
pub const MAX_PUSHER_CHARS: usize = 255;

/// The short form other systems publish (`schemas/trigger.v1.schema.json`): "this ref of this
/// repository moved", optionally to which commit and touching which files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerMessage {
    /// The repository URL, in any form Git accepts.
    pub repo: String,
    /// `refs/heads/x`, `refs/tags/v1`, or a bare name (matches a `targetRevision` of that name).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit the ref now points at (40 or 64 hex digits), if the sender knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The changed files; absent or null means unknown, so every path counts as affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Who or what published it (a CI job, a registry, a person), shown in the sync history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

impl TriggerMessage {
    /// Checks the contract beyond the JSON shape: a usable URL, a sane ref, a full SHA, bounds.
    pub fn validate(&self) -> Result<(), EventParseError> {
        repo_url("repo", &self.repo)?;
        ref_name("ref", &self.git_ref)?;
        if let Some(sha) = &self.revision {
            full_sha("revision", sha)?;
        }
        if let Some(paths) = &self.paths {
            changed_paths("paths", paths)?;
        }
        if let Some(publisher) = &self.publisher {
            text("publisher", publisher, MAX_PUSHER_CHARS)?;
        }
        Ok(())
    }

    /// The PushEvent this trigger stands for, from `source`, with a fresh id and the time now.
    pub fn into_event(self, source: EventSource) -> Result<PushEvent, EventParseError> {
        self.validate()?;
        Ok(PushEvent {
            v: PUSH_EVENT_VERSION,
            id: uuid::Uuid::new_v4().to_string(),
            source,
            delivery: None,
            received_at: now_rfc3339(),
            repo_urls: vec![self.repo],
            refs: vec![RefUpdate {
                name: self.git_ref,
                before: None,
                after: self.revision.map(|r| r.to_ascii_lowercase()),
                created: false,
                deleted: false,
                forced: false,
            }],
            changed_files: self.paths,
            default_branch: None,
            pusher: self.publisher,
        })
    }
}

/// Parses the short trigger form (queue messages, the generic webhook) into a PushEvent.
pub fn parse_trigger(body: &[u8], source: EventSource) -> Result<PushEvent, EventParseError> {
    let trigger: TriggerMessage = serde_json::from_slice(body)?;
    trigger.into_event(source)
}

impl PushEvent {
    /// Parses a message from the events exchange: a full PushEvent (it has a `v` field) or the
    /// short trigger form (source `mq`). Anything else is refused with a reason.
    pub fn from_message(body: &[u8]) -> Result<Self, EventParseError> {
        let doc: serde_json::Value = serde_json::from_slice(body)?;
        let Some(object) = doc.as_object() else {
            return Err(invalid("message", "must be a JSON object"));
        };
        if object.contains_key("v") {
            Self::from_value(doc)
        } else {
            let trigger: TriggerMessage = serde_json::from_value(doc)?;
            trigger.into_event(EventSource::Mq)
        }
    }

    /// Parses a full PushEvent only, refusing unknown versions and broken content.
    pub fn parse(body: &[u8]) -> Result<Self, EventParseError> {
        Self::from_value(serde_json::from_slice(body)?)
    }

    fn from_value(mut doc: serde_json::Value) -> Result<Self, EventParseError> {
        // The version is read first, so a v2 document is named as such rather than as a
        // shape error about fields v1 does not know.
        match doc.get("v") {
            // JSON does not tell 1 from 1.0, and neither does the schema.
            Some(serde_json::Value::Number(n)) => match n.as_f64() {
                Some(v) if v == f64::from(PUSH_EVENT_VERSION) => {}
                Some(v) if v.fract() == 0.0 && v >= 0.0 => {
                    return Err(EventParseError::Version(v as u64));
                }
                _ => return Err(invalid("v", "must be the integer 1")),
            },
            Some(_) => return Err(invalid("v", "must be the integer 1")),
            None => return Err(invalid("v", "is missing")),
        }
        if let Some(object) = doc.as_object_mut() {
            object.insert("v".to_owned(), PUSH_EVENT_VERSION.into());
        }
        let event: PushEvent = serde_json::from_value(doc)?;
        event.validate()?;
        Ok(event)
    }

    /// Checks the contract beyond the JSON shape (`schemas/push-event.v1.schema.json`, plus at
    /// least one repository URL Capstan can parse). Producers call it before publishing.
    pub fn validate(&self) -> Result<(), EventParseError> {
        if self.v != PUSH_EVENT_VERSION {
            return Err(EventParseError::Version(u64::from(self.v)));
        }
        text("id", &self.id, MAX_ID_CHARS)?;
        let source = self.source.as_str();
        let source_ok = (1..=64).contains(&source.len())
            && source
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !source_ok {
            return Err(invalid(
                "source",
                "must be 1-64 characters of [A-Za-z0-9._-]",
            ));
        }
        if let Some(d) = &self.delivery
            && d.chars().count() > MAX_DELIVERY_CHARS
        {
            return Err(invalid(
                "delivery",
                &format!("is longer than {MAX_DELIVERY_CHARS} characters"),
            ));
        }
        if self.received_at.parse::<jiff::Timestamp>().is_err() {
            return Err(invalid("received_at", "must be an RFC 3339 date-time"));
        }
        count("repo_urls", self.repo_urls.len(), MAX_REPO_URLS)?;
        let mut parsed_one = false;
        let mut problem = String::new();
        for (i, url) in self.repo_urls.iter().enumerate() {
            let field = format!("repo_urls[{i}]");
            text(&field, url, MAX_PATH_CHARS)?;
            // A blank entry is a sender's bug even beside a good one; the schema refuses it too.
            if url.trim().is_empty() {
                return Err(invalid(&field, "is blank"));
            }
            match RepoUrl::parse(url) {
                Ok(_) => parsed_one = true,
                Err(e) => problem = format!("{field}: {e}"),
            }
        }
        // The router ignores URLs it cannot parse; with none left it could match nothing.
        if !parsed_one {
            return Err(invalid(
                "repo_urls",
                &format!("no URL Capstan can parse ({problem})"),
            ));
        }
        count("refs", self.refs.len(), MAX_REFS)?;
        for (i, r) in self.refs.iter().enumerate() {
            ref_name(&format!("refs[{i}].name"), &r.name)?;
            if let Some(sha) = &r.before {
                full_sha(&format!("refs[{i}].before"), sha)?;
            }
            if let Some(sha) = &r.after {
                full_sha(&format!("refs[{i}].after"), sha)?;
            }
        }
        if let Some(files) = &self.changed_files {
            changed_paths("changed_files", files)?;
        }
        if let Some(branch) = &self.default_branch {
            ref_name("default_branch", branch)?;
        }
        if let Some(pusher) = &self.pusher {
            text("pusher", pusher, MAX_PUSHER_CHARS)?;
        }
        Ok(())
    }
}

fn invalid(field: &str, problem: &str) -> EventParseError {
    EventParseError::Invalid {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

/// Between 1 and `max` entries.
fn count(field: &str, n: usize, max: usize) -> Result<(), EventParseError> {
    if n == 0 {
        return Err(invalid(field, "is empty"));
    }
    if n > max {
        return Err(invalid(
            field,
            &format!("has {n} entries; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// Non-empty, at most `max` characters, no control characters.
fn text(field: &str, s: &str, max: usize) -> Result<(), EventParseError> {
    if s.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, &format!("is longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// A Git ref name as `git check-ref-format` allows its characters: no control characters, space,
/// `~ ^ : ? * [` or backslash, so a blank or mangled ref cannot match a target revision by accident.
fn ref_name(field: &str, s: &str) -> Result<(), EventParseError> {
    text(field, s, MAX_REF_CHARS)?;
    if s.chars()
        .any(|c| c == ' ' || c == '\u{7f}' || "~^:?*[\\".contains(c))
    {
        return Err(invalid(
            field,
            "is not a Git ref name (space, ~ ^ : ? * [ or backslash)",
        ));
    }
    Ok(())
}

fn repo_url(field: &str, s: &str) -> Result<(), EventParseError> {
    text(field, s, MAX_PATH_CHARS)?;
    RepoUrl::parse(s)
        .map(|_| ())
        .map_err(|e| invalid(field, &e.to_string()))
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits; abbreviations are ambiguous.
fn full_sha(field: &str, s: &str) -> Result<(), EventParseError> {
    if matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be a full commit SHA (40 or 64 hex digits)",
        ))
    }
}

fn changed_paths(field: &str, paths: &[String]) -> Result<(), EventParseError> {
    if paths.len() > MAX_CHANGED_FILES {
        return Err(invalid(
            field,
            &format!(
                "lists {} files; at most {MAX_CHANGED_FILES} are allowed (send null for \"unknown\")",
                paths.len()
            ),
        ));
    }
    for (i, p) in paths.iter().enumerate() {
        if p.is_empty() {
            return Err(invalid(&format!("{field}[{i}]"), "is empty"));
        }
        if p.chars().count() > MAX_PATH_CHARS {
            return Err(invalid(
                &format!("{field}[{i}]"),
                &format!("is longer than {MAX_PATH_CHARS} characters"),
            ));
        }
    }
    Ok(())
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

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn reason(body: &str) -> String {
        PushEvent::from_message(body.as_bytes())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn the_short_form_becomes_a_push_event_from_mq() {
        let body = format!(
            r#"{{"repo":"https://git.example.com/org/repo.git","ref":"refs/heads/main","revision":"{}","paths":["apps/a/x.yaml"]}}"#,
            SHA.to_ascii_uppercase()
        );
        let ev = PushEvent::from_message(body.as_bytes()).expect("valid");
        assert_eq!(ev.v, 1);
        assert_eq!(ev.source, EventSource::Mq);
        assert_eq!(ev.repo_urls, ["https://git.example.com/org/repo.git"]);
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.refs[0].name, "refs/heads/main");
        assert_eq!(ev.refs[0].after.as_deref(), Some(SHA), "lower-cased");
        assert_eq!(ev.refs[0].before, None);
        assert_eq!(ev.changed_files, Some(vec!["apps/a/x.yaml".to_owned()]));
        assert!(uuid::Uuid::parse_str(&ev.id).is_ok(), "{}", ev.id);
        assert!(ev.received_at.parse::<jiff::Timestamp>().is_ok());
        let other = PushEvent::from_message(body.as_bytes()).expect("valid");
        assert_ne!(ev.id, other.id, "every trigger is a new event");
    }

    #[test]
    fn without_paths_every_path_counts_and_the_webhook_keeps_its_source() {
        let body = br#"{"repo":"git@git.example.com:org/repo.git","ref":"main","paths":null}"#;
        let ev = parse_trigger(body, EventSource::Other("generic".into())).expect("valid");
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.refs[0].name, "main", "a bare name stays bare");
        assert_eq!(ev.refs[0].after, None);
        assert_eq!(ev.source, EventSource::Other("generic".into()));
    }

    #[test]
    fn a_full_push_event_is_read_as_written() {
        let body = format!(
            r#"{{"v":1,"id":"e-1","source":"github","delivery":"d-1","received_at":"2026-01-02T03:04:05Z",
               "repo_urls":["https://github.com/o/r.git","git@github.com:o/r.git"],
               "refs":[{{"name":"refs/heads/main","before":null,"after":"{SHA}","forced":true}}],
               "changed_files":null,"default_branch":"main","extra":"ignored"}}"#
        );
        let ev = PushEvent::from_message(body.as_bytes()).expect("valid");
        assert_eq!(ev.id, "e-1");
        assert_eq!(ev.source, EventSource::Github);
        assert_eq!(ev.delivery.as_deref(), Some("d-1"));
        assert!(ev.refs[0].forced);
        assert_eq!(PushEvent::parse(body.as_bytes()).expect("valid"), ev);
    }

    #[test]
    fn refusals_name_the_field_and_the_problem() {
        let cases = [
            (r#"{"repo":"","ref":"main"}"#, "repo: is empty"),
            (
                r#"{"repo":"   ","ref":"main"}"#,
                "repo: the repository URL is empty",
            ),
            (
                r#"{"repo":"ext::sh -c x","ref":"main"}"#,
                "repo: unsupported URL scheme",
            ),
            (r#"{"repo":"https://h/o/r","ref":""}"#, "ref: is empty"),
            (
                r#"{"repo":"https://h/o/r","ref":"ma\u0000in"}"#,
                "ref: contains control characters",
            ),
            (
                r#"{"repo":"https://h/o/r","ref":"main","revision":"abc123"}"#,
                "revision: must be a full commit SHA",
            ),
            (
                r#"{"repo":"https://h/o/r","ref":"main","paths":[""]}"#,
                "paths[0]: is empty",
            ),
            (
                r#"{"repo":"https://h/o/r","ref":"main","path":["a"]}"#,
                "unknown field `path`",
            ),
            (r#"{"ref":"main"}"#, "missing field `repo`"),
            (
                r#"{"v":2,"repo":"https://h/o/r"}"#,
                "unsupported PushEvent version 2",
            ),
            (r#"{"v":"1"}"#, "v: must be the integer 1"),
            (r#"[1,2]"#, "message: must be a JSON object"),
            (r#"{"repo":"#, "not a PushEvent or trigger document"),
        ];
        for (body, expected) in cases {
            let got = reason(body);
            assert!(got.contains(expected), "{body}: {got}");
        }
    }

    #[test]
    fn full_events_are_held_to_the_same_contract() {
        let event = |patch: &str| {
            format!(
                r#"{{"v":1,"id":"e","source":"mq","received_at":"2026-01-02T03:04:05Z",
                   "repo_urls":["https://h/o/r"],"refs":[{{"name":"refs/heads/main"}}]{patch}}}"#
            )
        };
        assert!(PushEvent::from_message(event("").as_bytes()).is_ok());
        let bad = [
            (r#","refs":[]"#, "refs: is empty"),
            (
                r#","repo_urls":["not a url"]"#,
                "repo_urls: no URL Capstan can parse",
            ),
            (
                r#","received_at":"yesterday""#,
                "received_at: must be an RFC 3339",
            ),
            (
                r#","source":"has space""#,
                "source: must be 1-64 characters",
            ),
            (
                r#","refs":[{"name":"refs/heads/main","after":"HEAD"}]"#,
                "refs[0].after: must be a full commit SHA",
            ),
        ];
        for (patch, expected) in bad {
            // Later keys win in a JSON object for serde_json::Value, so the patch replaces.
            let got = reason(&event(patch));
            assert!(got.contains(expected), "{patch}: {got}");
        }
        let many_refs: Vec<String> = (0..=MAX_REFS)
            .map(|i| format!(r#"{{"name":"refs/heads/b{i}"}}"#))
            .collect();
        let got = reason(&event(&format!(r#","refs":[{}]"#, many_refs.join(","))));
        assert!(got.contains("refs: has 101 entries; at most 100"), "{got}");
    }

    #[test]
    fn a_triggers_publisher_is_the_events_pusher_and_both_are_bounded() {
        let body = br#"{"repo":"https://h/o/r","ref":"main","publisher":"ci/deploy-42"}"#;
        let ev = PushEvent::from_message(body).expect("valid");
        assert_eq!(ev.pusher.as_deref(), Some("ci/deploy-42"));
        let without =
            PushEvent::from_message(br#"{"repo":"https://h/o/r","ref":"main"}"#).expect("valid");
        assert_eq!(without.pusher, None);
        let long = "p".repeat(MAX_PUSHER_CHARS + 1);
        let body = serde_json::json!({"repo": "https://h/o/r", "ref": "main", "publisher": long});
        assert!(reason(&body.to_string()).contains("publisher: is longer than 255"));
        let body = serde_json::json!({"v": 1, "id": "e", "source": "jenkins",
            "received_at": "2026-01-02T03:04:05Z", "repo_urls": ["https://h/o/r"],
            "refs": [{"name": "refs/heads/main"}], "pusher": "bad\u{7}name"});
        assert!(reason(&body.to_string()).contains("pusher: contains control characters"));
    }

    #[test]
    fn oversized_lists_are_refused_with_their_size() {
        let paths = vec!["a"; MAX_CHANGED_FILES + 1];
        let body = serde_json::json!({"repo": "https://h/o/r", "ref": "main", "paths": paths});
        let got = reason(&body.to_string());
        assert!(got.contains("lists 10001 files; at most 10000"), "{got}");
        let body =
            serde_json::json!({"repo": "https://h/o/r", "ref": "x".repeat(MAX_REF_CHARS + 1)});
        assert!(reason(&body.to_string()).contains("ref: is longer than 1024 characters"));
    }

    #[test]
    fn hostile_bytes_are_refused_without_panicking() {
        const ALPHABET: &[u8] = b"{}[]\\\":,0123456789abcdefvrepo\\u\x00\xff ";
        // A fixed pseudo-random sequence: reproducible, and no dependency for it.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let mut body = Vec::with_capacity(len % 97);
            for _ in 0..len % 97 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push(ALPHABET[(x % ALPHABET.len() as u64) as usize]);
            }
            let _ = PushEvent::from_message(&body);
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(PushEvent::from_message(deep.as_bytes()).is_err());
    }

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
