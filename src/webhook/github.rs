//! GitHub: `X-Hub-Signature-256` verification and `push` payloads → [`PushEvent`].

use serde::Deserialize;

use super::{Outcome, WebhookError};
use crate::event::{
    EventSource, PUSH_EVENT_VERSION, PushEvent, RefUpdate, is_null_sha, now_rfc3339,
};

/// GitHub truncates the commit list at this many commits; a full list means file lists are incomplete.
const MAX_LISTED_COMMITS: usize = 2048;

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    commits: Option<Vec<Commit>>,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    clone_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    git_url: Option<String>,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
}

/// Turns a verified GitHub delivery into an outcome; `event` is the `X-GitHub-Event` header.
pub fn parse(event: &str, delivery: Option<&str>, body: &[u8]) -> Result<Outcome, WebhookError> {
    match event {
        "ping" => return Ok(Outcome::Ignored("ping".into())),
        "push" => {}
        other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
    }
    let push: Push = serde_json::from_slice(body)
        .map_err(|e| WebhookError::BadPayload(format!("GitHub push payload: {e}")))?;
    let Some(repo) = push.repository else {
        return Ok(Outcome::Ignored("push without a repository".into()));
    };
    let repo_urls: Vec<String> = [repo.clone_url, repo.ssh_url, repo.html_url, repo.git_url]
        .into_iter()
        .flatten()
        .filter(|u| !u.trim().is_empty())
        .collect();
    if repo_urls.is_empty() {
        return Ok(Outcome::Ignored("push without a repository URL".into()));
    }
    if push.git_ref.is_empty() {
        return Err(WebhookError::BadPayload(
            "GitHub push payload has an empty ref".into(),
        ));
    }
    let created = push.created || is_null_sha(push.before.as_deref());
    let deleted = push.deleted || is_null_sha(push.after.as_deref());
    let changed_files = changed_files(push.commits.as_deref(), created || deleted);
    Ok(Outcome::Event(PushEvent {
        v: PUSH_EVENT_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        source: EventSource::Github,
        delivery: delivery.map(str::to_owned),
        received_at: now_rfc3339(),
        repo_urls,
        refs: vec![RefUpdate {
            name: push.git_ref,
            created,
            deleted,
            forced: push.forced,
            before: push.before.filter(|s| !is_null_sha(Some(s))),
            after: push.after.filter(|s| !is_null_sha(Some(s))),
        }],
        changed_files,
        default_branch: repo.default_branch.filter(|b| !b.is_empty()),
    }))
}

/// The union of the commits' file lists, or None when GitHub's list cannot be complete.
fn changed_files(commits: Option<&[Commit]>, ref_created_or_deleted: bool) -> Option<Vec<String>> {
    let commits = commits?;
    if ref_created_or_deleted || commits.len() >= MAX_LISTED_COMMITS {
        return None;
    }
    let mut files: Vec<String> = commits
        .iter()
        .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
        .cloned()
        .collect();
    files.sort();
    files.dedup();
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_body() -> Vec<u8> {
        serde_json::json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000000",
            "after": "1111111111111111111111111111111111111111",
            "created": false, "deleted": false, "forced": false,
            "repository": {
                "clone_url": "https://github.com/org/repo.git",
                "ssh_url": "git@github.com:org/repo.git",
                "html_url": "https://github.com/org/repo",
                "default_branch": "main"
            },
            "commits": [
                {"added": ["apps/a.yaml"], "removed": [], "modified": ["apps/b.yaml"]},
                {"added": [], "removed": ["apps/a.yaml"], "modified": []}
            ]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_push_becomes_a_push_event() {
        let Outcome::Event(ev) = parse("push", Some("d-1"), &push_body()).expect("parses") else {
            panic!("expected an event");
        };
        assert_eq!(ev.source, EventSource::Github);
        assert_eq!(ev.delivery.as_deref(), Some("d-1"));
        assert_eq!(ev.repo_urls.len(), 3);
        assert_eq!(ev.refs[0].name, "refs/heads/main");
        assert!(
            ev.refs[0].created,
            "all-zero before means the ref was created"
        );
        assert_eq!(ev.refs[0].before, None);
        assert_eq!(
            ev.refs[0].after.as_deref(),
            Some("1111111111111111111111111111111111111111")
        );
        assert_eq!(
            ev.changed_files, None,
            "a created ref's commit list does not describe the change"
        );
        assert_eq!(ev.default_branch.as_deref(), Some("main"));
    }

    #[test]
    fn changed_files_are_the_union_of_commit_lists() {
        let mut v: serde_json::Value = serde_json::from_slice(&push_body()).expect("json");
        v["before"] = "2222222222222222222222222222222222222222".into();
        let Outcome::Event(ev) = parse("push", None, v.to_string().as_bytes()).expect("parses")
        else {
            panic!("expected an event");
        };
        assert_eq!(
            ev.changed_files,
            Some(vec!["apps/a.yaml".to_string(), "apps/b.yaml".to_string()])
        );
    }

    #[test]
    fn ping_and_other_events_are_ignored() {
        assert!(matches!(
            parse("ping", None, b"{}"),
            Ok(Outcome::Ignored(_))
        ));
        assert!(matches!(
            parse("issues", None, b"{}"),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn hostile_payloads_never_panic() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"ref\": 5}",
            b"{\"ref\": \"refs/heads/x\"}",
            b"{\"ref\": \"refs/heads/x\", \"repository\": null}",
            b"{\"ref\": \"refs/heads/x\", \"repository\": {\"clone_url\": \"\"}}",
            b"{\"ref\": \"\", \"repository\": {\"clone_url\": \"https://h/o/r\"}}",
            b"{\"ref\": \"refs/heads/x\", \"repository\": {\"clone_url\": \"https://h/o/r\"}, \"commits\": {}}",
            b"\xff\xfe",
        ] {
            let _ = parse("push", None, body);
        }
        assert!(matches!(
            parse("push", None, b"{\"ref\": \"refs/heads/x\"}"),
            Ok(Outcome::Ignored(_))
        ));
        assert!(parse("push", None, b"[]").is_err());
    }
}
