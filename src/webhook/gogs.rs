//! Gogs: `X-Gogs-Signature` (bare hex HMAC-SHA256) and `push`, `create`, `delete` events.
//! Its `pull_request` events name the head branch but never its commit, so they cannot be
//! previewed and are ignored with that reason.
//!
//! Gitea and Forgejo forked Gogs and kept its payloads, so the payload parsing here is shared
//! with [`super::gitea`]; each host decides which of the ref events it acts on.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, NULL_SHA, Outcome, Provider, Request, SamplePullRequest, SamplePush, Signature,
    SignedRequest, WebhookError, hmac_credential, parse_json, push_event, pusher, ref_update,
    repo_urls, sample_action, sample_owner_name, union_files,
};
use crate::event::{EventSource, PullRequestAction, RefUpdate, is_null_sha};

/// Why Gogs pull requests are not previewed.
pub const GOGS_PULL_REQUEST_IGNORED: &str = "Gogs pull request events carry no head commit (only head_branch), so there is nothing to preview";
use crate::secret::SecretString;

/// Gogs and Gitea cut the commit list of a push to `[ui] FEED_MAX_COMMIT_NUM` (default 5).
/// Gogs does not say how many there were, so a list this long may be cut.
const FEED_MAX_COMMITS: usize = 5;

/// Gogs (gogs.io).
pub struct Gogs;

/// A `push` event of Gogs, Gitea and Forgejo.
#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    /// Only some versions send `created`/`deleted`; the zero ids say the same.
    #[serde(default)]
    created: Option<bool>,
    #[serde(default)]
    deleted: Option<bool>,
    /// Gitea's count of all pushed commits (Gogs sends none).
    #[serde(default)]
    total_commits: Option<u64>,
    #[serde(default)]
    commits: Option<Vec<Commit>>,
    #[serde(default)]
    repository: Option<Repository>,
    /// The user who pushed (`login`, `username`).
    #[serde(default)]
    pusher: serde_json::Value,
    /// The user the event is from; the pusher when a version leaves `pusher` out.
    #[serde(default)]
    sender: serde_json::Value,
}

/// A `create` or `delete` event: a short ref name and its kind.
#[derive(Deserialize)]
struct RefEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    ref_type: Option<String>,
    /// The created ref's commit (Gogs sends it for tags, Gitea for both kinds).
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    repository: Option<Repository>,
    /// The user who created or deleted the ref.
    #[serde(default)]
    sender: serde_json::Value,
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
    default_branch: Option<String>,
}

/// Gogs and Gitea send `null` rather than `[]` for an empty list, and older versions send no
/// file lists at all.
#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    added: Option<Vec<String>>,
    #[serde(default)]
    removed: Option<Vec<String>>,
    #[serde(default)]
    modified: Option<Vec<String>>,
}

/// Which sides of a `create`/`delete` event a host also reports as a `push`, so acting on the
/// ref event would only repeat it.
pub(super) struct RefEventPolicy {
    /// Created refs of these kinds (`branch`, `tag`) arrive as pushes too.
    pub created_also_pushed: &'static [&'static str],
    /// Deleted refs of these kinds arrive as pushes too.
    pub deleted_also_pushed: &'static [&'static str],
}

/// Gogs sends a push for a new branch, but tags and deletions only as `create`/`delete`.
const GOGS_REF_EVENTS: RefEventPolicy = RefEventPolicy {
    created_also_pushed: &["branch"],
    deleted_also_pushed: &[],
};

/// Turns a Gogs-family `push` body into a PushEvent of `source`.
pub(super) fn parse_push(
    host: &str,
    source: EventSource,
    delivery: Option<String>,
    body: &[u8],
) -> Result<Outcome, WebhookError> {
    let push: Push = parse_json(&format!("{host} push"), body)?;
    let Some(repo) = push.repository else {
        return Ok(Outcome::Ignored(format!(
            "{host} push without a repository"
        )));
    };
    let urls = match repo_urls([repo.clone_url, repo.ssh_url, repo.html_url]) {
        Ok(urls) => urls,
        Err(ignored) => return Ok(ignored),
    };
    if push.git_ref.trim().is_empty() {
        return Err(WebhookError::BadPayload(format!(
            "{host} push payload has an empty ref"
        )));
    }
    let mut moved = ref_update(push.git_ref, push.before, push.after);
    moved.created |= push.created.unwrap_or(false);
    moved.deleted |= push.deleted.unwrap_or(false);
    let changed_files = changed_files(&moved, push.commits.as_deref(), push.total_commits);
    Ok(Outcome::Event(push_event(
        source,
        delivery,
        urls,
        vec![moved],
        changed_files,
        repo.default_branch,
        user_of(&[&push.pusher, &push.sender]),
    )?))
}

/// The files a push changed, when the payload lists all of them. Unknown when the ref was
/// created or deleted (nothing to compare with), when no commit is listed (a rewind or a force
/// push lists none, yet files changed), when the list may be cut, or when a commit carries no
/// file lists.
fn changed_files(
    moved: &RefUpdate,
    commits: Option<&[Commit]>,
    total_commits: Option<u64>,
) -> Option<Vec<String>> {
    if moved.created || moved.deleted {
        return None;
    }
    let commits = commits.filter(|c| !c.is_empty())?;
    let listed = commits.len();
    let complete = match total_commits {
        Some(total) => usize::try_from(total).is_ok_and(|t| t <= listed),
        None => listed < FEED_MAX_COMMITS,
    };
    let every_commit_has_files = commits
        .iter()
        .all(|c| c.added.is_some() || c.removed.is_some() || c.modified.is_some());
    if !complete || !every_commit_has_files {
        return None;
    }
    Some(union_files(
        commits
            .iter()
            .flat_map(|c| [&c.added, &c.removed, &c.modified])
            .flatten(),
    ))
}

/// Turns a Gogs-family `create` or `delete` body into a PushEvent, unless `policy` says the
/// host reports the same change as a push too.
pub(super) fn parse_ref_event(
    host: &str,
    source: EventSource,
    delivery: Option<String>,
    event: &str,
    policy: &RefEventPolicy,
    body: &[u8],
) -> Result<Outcome, WebhookError> {
    let created = event == "create";
    let parsed: RefEvent = parse_json(&format!("{host} {event}"), body)?;
    let kind = parsed.ref_type.unwrap_or_default();
    let also_pushed = if created {
        policy.created_also_pushed
    } else {
        policy.deleted_also_pushed
    };
    if also_pushed.contains(&kind.as_str()) {
        return Ok(Outcome::Ignored(format!(
            "{host} {event} of a {kind}: the push event {host} sends for it is acted on"
        )));
    }
    let prefix = match kind.as_str() {
        "branch" => "refs/heads/",
        "tag" => "refs/tags/",
        other => {
            return Ok(Outcome::Ignored(format!(
                "{host} {event} of ref type {other:?} is not acted on"
            )));
        }
    };
    let Some(repo) = parsed.repository else {
        return Ok(Outcome::Ignored(format!(
            "{host} {event} without a repository"
        )));
    };
    let urls = match repo_urls([repo.clone_url, repo.ssh_url, repo.html_url]) {
        Ok(urls) => urls,
        Err(ignored) => return Ok(ignored),
    };
    let short = parsed.git_ref.trim();
    if short.is_empty() {
        return Err(WebhookError::BadPayload(format!(
            "{host} {event} payload has an empty ref"
        )));
    }
    let name = if short.starts_with("refs/") {
        short.to_owned()
    } else {
        format!("{prefix}{short}")
    };
    // A delete event carries no commit id, and a create event may not either: the flags come
    // from the event, never from missing ids.
    let moved = RefUpdate {
        name,
        before: None,
        after: parsed.sha.filter(|s| created && !is_null_sha(Some(s))),
        created,
        deleted: !created,
        forced: false,
    };
    Ok(Outcome::Event(push_event(
        source,
        delivery,
        urls,
        vec![moved],
        None,
        repo.default_branch,
        user_of(&[&parsed.sender]),
    )?))
}

/// The first of `users` that names itself (`login`, else `username`).
fn user_of(users: &[&serde_json::Value]) -> Option<String> {
    pusher(
        users
            .iter()
            .flat_map(|u| [u.pointer("/login"), u.pointer("/username")]),
    )
}

/// The body of a Gogs-family push for `push`, as Gogs and Gitea lay it out.
pub(super) fn sample_body(
    push: &SamplePush<'_>,
    repository: serde_json::Value,
) -> serde_json::Value {
    let after = push.after.unwrap_or(NULL_SHA);
    let commits = match push.files {
        Some(files) => vec![serde_json::json!({
            "id": after,
            "message": "Update manifests\n",
            "url": format!("{}/commit/{after}", push.repo.trim_end_matches(".git")),
            "author": {"name": "Capstan", "email": "capstan@example.com", "username": "capstan"},
            "committer": {"name": "Capstan", "email": "capstan@example.com", "username": "capstan"},
            "added": [],
            "removed": [],
            "modified": files,
            "timestamp": "2026-01-01T00:00:00Z",
        })],
        None => vec![],
    };
    let total = commits.len();
    serde_json::json!({
        "ref": push.git_ref,
        "before": push.before.unwrap_or(NULL_SHA),
        "after": after,
        "compare_url": "",
        "commits": commits,
        "total_commits": total,
        "repository": repository,
        "pusher": {"id": 1, "login": super::SAMPLE_PUSHER, "username": super::SAMPLE_PUSHER},
        "sender": {"id": 1, "login": super::SAMPLE_PUSHER, "username": super::SAMPLE_PUSHER},
    })
}

impl Provider for Gogs {
    fn name(&self) -> &'static str {
        "gogs"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        headers.contains_key("x-gogs-event")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        hmac_credential(request, "x-gogs-signature", Signature::parse_hex, secrets)
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        request.header("x-gogs-delivery").map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        let delivery = self.delivery(request);
        match request.header("x-gogs-event").unwrap_or_default() {
            "push" => parse_push("Gogs", EventSource::Gogs, delivery, request.body),
            event @ ("create" | "delete") => parse_ref_event(
                "Gogs",
                EventSource::Gogs,
                delivery,
                event,
                &GOGS_REF_EVENTS,
                request.body,
            ),
            "pull_request" => Ok(Outcome::Ignored(GOGS_PULL_REQUEST_IGNORED.into())),
            other => Ok(Outcome::Ignored(format!(
                "Gogs event {other:?} is not acted on"
            ))),
        }
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let web = push.repo.trim_end_matches(".git");
        let repository = serde_json::json!({
            "id": 1,
            "name": web.rsplit('/').next().unwrap_or_default(),
            "html_url": web,
            "clone_url": push.repo,
            "ssh_url": "",
            "default_branch": push.default_branch,
            // Gogs sends Unix seconds where Gitea sends RFC 3339 text.
            "created_at": 1_767_225_600,
            "updated_at": 1_767_225_600,
        });
        let mut request = SignedRequest::json(
            &sample_body(push, repository),
            vec![
                ("x-gogs-event", "push".to_owned()),
                ("x-gogs-delivery", push.delivery.to_owned()),
                ("user-agent", "GogsServer".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            let signature = hex_signature(secret, &request.body);
            request.add_header("x-gogs-signature", signature);
        }
        request
    }

    /// Gogs's own shape (`head_branch`, `base_branch`, no commit ids): the parse ignores it.
    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        let user = |login: &str| {
            serde_json::json!({
                "id": 1, "login": login, "full_name": login,
                "email": format!("{login}@example.com"), "avatar_url": "", "username": login,
            })
        };
        let repository = |url: &str, id: u64| {
            let (owner, name) = sample_owner_name(url);
            serde_json::json!({
                "id": id,
                "owner": user(&owner),
                "name": name,
                "full_name": format!("{owner}/{name}"),
                "description": "",
                "private": false,
                "fork": id != 1,
                "html_url": url.strip_suffix(".git").unwrap_or(url),
                "ssh_url": "",
                "clone_url": url,
                "default_branch": pr.base_ref,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
            })
        };
        let base_repo = repository(pr.repo_url, 1);
        let head_repo = pr
            .fork_url
            .map_or_else(|| base_repo.clone(), |f| repository(f, 2));
        let web = pr.repo_url.strip_suffix(".git").unwrap_or(pr.repo_url);
        let closed = pr.action == PullRequestAction::Closed;
        let body = serde_json::json!({
            "action": sample_action(pr.action, ["opened", "synchronized", "reopened", "closed"]),
            "number": pr.number,
            "pull_request": {
                "id": 4,
                "number": pr.number,
                "user": user(pr.author),
                "title": pr.title,
                "body": "",
                "labels": [],
                "milestone": null,
                "assignee": null,
                "state": if closed { "closed" } else { "open" },
                "comments": 0,
                "head_branch": pr.head_ref,
                "head_repo": head_repo,
                "base_branch": pr.base_ref,
                "base_repo": base_repo.clone(),
                "html_url": format!("{web}/pulls/{}", pr.number),
                "mergeable": true,
                "merged": false,
                "merged_at": null,
                "merge_commit_sha": null,
                "merged_by": null,
            },
            "repository": base_repo,
            "sender": user(pr.author),
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-gogs-event", "pull_request".to_owned()),
                ("x-gogs-delivery", uuid::Uuid::new_v4().to_string()),
                ("user-agent", "GogsServer".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            let signature = hex_signature(secret, &request.body);
            request.add_header("x-gogs-signature", signature);
        }
        request
    }
}

/// The bare hex HMAC-SHA256 Gogs and Gitea send.
pub(super) fn hex_signature(secret: &str, body: &[u8]) -> String {
    let signed = Signature::sign(secret.as_bytes(), body);
    signed
        .strip_prefix("sha256=")
        .map(str::to_owned)
        .unwrap_or(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PushEvent;
    use crate::webhook::{WebhookSecrets, receive};

    const SECRET: &str = "gogs-secret";

    fn request(event: &str, body: &[u8]) -> SignedRequest {
        let mut all = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-gogs-event".to_owned(), event.to_owned()),
            (
                "x-gogs-delivery".to_owned(),
                "f6266f16-1bf3-46a5-9ea4-602e06ead473".to_owned(),
            ),
        ];
        all.push(("x-gogs-signature".to_owned(), hex_signature(SECRET, body)));
        SignedRequest {
            headers: all,
            body: body.to_vec(),
        }
    }

    fn outcome(event: &str, body: &[u8]) -> Result<Outcome, WebhookError> {
        let req = request(event, body);
        let headers = req.header_map();
        let secrets = WebhookSecrets::new()
            .with_secret("gogs", SecretString::from(SECRET))
            .expect("known provider");
        receive(&Request::new(&headers, &req.body), &secrets)
            .map(|r| r.outcome)
            .map_err(|(_, e)| e)
    }

    fn event(event: &str, body: &[u8]) -> PushEvent {
        match outcome(event, body) {
            Ok(Outcome::Event(ev)) => ev,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn ignored(event: &str, body: &[u8]) -> String {
        match outcome(event, body) {
            Ok(Outcome::Ignored(reason)) => reason,
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    const URLS: [&str; 3] = [
        "https://try.gogs.io/unknwon/webhooks.git",
        "git@try.gogs.io:unknwon/webhooks.git",
        "https://try.gogs.io/unknwon/webhooks",
    ];

    #[test]
    fn a_branch_push_lists_its_files_urls_and_default_branch() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gogs/push-branch.json"),
        );
        assert_eq!(ev.source, EventSource::Gogs);
        assert_eq!(
            ev.delivery.as_deref(),
            Some("f6266f16-1bf3-46a5-9ea4-602e06ead473")
        );
        assert_eq!(ev.repo_urls, URLS);
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/master".into(),
                before: Some("8c9a2e0b4d05d0bc6bdc23f8ac0c0e5fbaf5f5b1".into()),
                after: Some("2c8e2ec3d1fc4d3d4b8ba4d4e77d7e5fc2f0a1f0".into()),
                created: false,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(
            ev.changed_files,
            Some(vec![
                "README.md".to_owned(),
                "apps/web/deployment.yaml".to_owned(),
                "apps/web/old.yaml".to_owned(),
                "apps/web/service.yaml".to_owned(),
            ])
        );
        assert_eq!(ev.default_branch.as_deref(), Some("master"));
    }

    #[test]
    fn the_pusher_is_the_pushers_login_and_a_created_tags_sender() {
        let push = include_bytes!("../../tests/fixtures/webhooks/gogs/push-branch.json");
        assert_eq!(event("push", push).pusher.as_deref(), Some("unknwon"));
        let mut v: serde_json::Value = serde_json::from_slice(push).expect("json");
        v["pusher"] = serde_json::json!({"id": 2, "username": "jdoe"});
        let body = v.to_string();
        assert_eq!(
            event("push", body.as_bytes()).pusher.as_deref(),
            Some("jdoe")
        );
        v["pusher"] = serde_json::json!(null);
        v["sender"] = serde_json::json!({"login": "bot"});
        let body = v.to_string();
        assert_eq!(
            event("push", body.as_bytes()).pusher.as_deref(),
            Some("bot")
        );
        v["sender"] = serde_json::json!([1, 2]);
        let body = v.to_string();
        assert_eq!(event("push", body.as_bytes()).pusher, None);
        let tag = include_bytes!("../../tests/fixtures/webhooks/gogs/create-tag.json");
        assert_eq!(event("create", tag).pusher.as_deref(), Some("unknwon"));
    }

    #[test]
    fn five_listed_commits_may_be_a_cut_list_so_the_files_are_unknown() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gogs/push-five-commits.json"),
        );
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn a_new_branch_is_a_created_ref_with_unknown_files() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gogs/push-branch-created.json"),
        );
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.refs[0].name, "refs/heads/feature/login");
        assert!(ev.refs[0].created && !ev.refs[0].deleted);
        assert_eq!(ev.refs[0].before, None);
        assert_eq!(
            ev.refs[0].after.as_deref(),
            Some("5b1c4f1a2d8e9f0a7b6c5d4e3f2a1b0c9d8e7f6a")
        );
        assert_eq!(ev.changed_files, None);
        // Its `create` event repeats the push and is not acted on twice.
        let reason = ignored(
            "create",
            include_bytes!("../../tests/fixtures/webhooks/gogs/create-branch.json"),
        );
        assert!(reason.contains("push event"), "{reason}");
    }

    #[test]
    fn a_tag_arrives_only_as_a_create_event_and_becomes_a_created_tag() {
        let ev = event(
            "create",
            include_bytes!("../../tests/fixtures/webhooks/gogs/create-tag.json"),
        );
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/tags/v1.2.0".into(),
                before: None,
                after: Some("2c8e2ec3d1fc4d3d4b8ba4d4e77d7e5fc2f0a1f0".into()),
                created: true,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.repo_urls, URLS);
        assert_eq!(ev.default_branch.as_deref(), Some("master"));
    }

    #[test]
    fn a_deleted_branch_arrives_only_as_a_delete_event_and_becomes_a_deleted_ref() {
        let ev = event(
            "delete",
            include_bytes!("../../tests/fixtures/webhooks/gogs/delete-branch.json"),
        );
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/feature/login".into(),
                before: None,
                after: None,
                created: false,
                deleted: true,
                forced: false,
            }]
        );
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn other_events_are_ignored() {
        let reason = ignored(
            "issues",
            include_bytes!("../../tests/fixtures/webhooks/gogs/issues.json"),
        );
        assert!(reason.contains("issues"), "{reason}");
    }

    #[test]
    fn a_push_without_a_repository_is_ignored_not_a_crash() {
        // CVE-2025-59537: Argo CD dereferenced the missing repository.
        for body in [
            &include_bytes!("../../tests/fixtures/webhooks/gogs/push-null-repository.json")[..],
            br#"{"ref": "refs/heads/master", "before": "", "after": ""}"#,
        ] {
            let reason = ignored("push", body);
            assert!(reason.contains("repository"), "{reason}");
        }
        let reason = ignored(
            "delete",
            br#"{"ref": "x", "ref_type": "branch", "repository": null}"#,
        );
        assert!(reason.contains("repository"), "{reason}");
    }

    #[test]
    fn empty_urls_wrong_types_and_odd_ref_types_never_become_events() {
        let empty_urls =
            br#"{"ref": "refs/heads/master", "after": "2c8e2ec3d1fc4d3d4b8ba4d4e77d7e5fc2f0a1f0",
            "repository": {"clone_url": "", "ssh_url": "  ", "html_url": null}}"#;
        assert!(ignored("push", empty_urls).contains("URL"));
        for bad in [
            &br#"{"ref": 5, "repository": {"clone_url": "https://h/o/r.git"}}"#[..],
            br#"{"ref": "refs/heads/x", "commits": {"added": []}, "repository": {}}"#,
            br#"{"ref": "", "repository": {"clone_url": "https://h/o/r.git"}}"#,
            b"[1, 2]",
        ] {
            assert!(
                matches!(outcome("push", bad), Err(WebhookError::BadPayload(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let odd = br#"{"ref": "x", "ref_type": "repository", "repository": {"clone_url": "https://h/o/r.git"}}"#;
        assert!(ignored("create", odd).contains("ref type"));
        assert!(matches!(
            outcome("delete", br#"{"ref": null}"#),
            Err(WebhookError::BadPayload(_))
        ));
    }

    #[test]
    fn the_signature_is_bare_hex_over_the_exact_body() {
        let body = include_bytes!("../../tests/fixtures/webhooks/gogs/push-branch.json");
        let mut req = request("push", body);
        for (k, v) in req.headers.iter_mut() {
            if k == "x-gogs-signature" {
                *v = format!("sha256={v}");
            }
        }
        let headers = req.header_map();
        let secrets = WebhookSecrets::new()
            .with_secret("gogs", SecretString::from(SECRET))
            .expect("known provider");
        let r = receive(&Request::new(&headers, &req.body), &secrets);
        assert!(
            matches!(r, Err((_, WebhookError::Unauthorized(_)))),
            "{r:?}"
        );
    }

    #[test]
    fn pull_requests_are_ignored_because_they_name_no_head_commit() {
        let reason = ignored(
            "pull_request",
            include_bytes!("../../tests/fixtures/webhooks/gogs/pull-request-opened.json"),
        );
        assert_eq!(reason, GOGS_PULL_REQUEST_IGNORED);
        assert!(reason.contains("no head commit"), "{reason}");
    }
}
