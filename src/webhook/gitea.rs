//! Gitea and Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature` (bare hex HMAC-SHA256),
//! Gogs-shaped push payloads and GitHub-like `pull_request` events. Both hosts also send `X-Gogs-*` and `X-GitHub-*` headers, so they are
//! recognised before Gogs and GitHub.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::gogs::{RefEventPolicy, hex_signature, parse_push, parse_ref_event, sample_body};
use super::{
    Credential, Outcome, Provider, PullRequestDraft, Request, SamplePullRequest, SamplePush,
    Signature, SignedRequest, WebhookError, hmac_credential, is_fork, parse_json,
    pull_request_event, pusher, required, required_text, sample_action, sample_owner_name,
    url_before, url_without_path,
};
use crate::event::{EventSource, ForgeRepo, PullRequestAction};
use crate::secret::SecretString;

/// Gitea and Forgejo (one provider: Forgejo kept Gitea's payloads and headers).
pub struct Gitea;

/// Forgejo's headers first: Forgejo sends both families with the same values.
const EVENT_HEADERS: [&str; 2] = ["x-forgejo-event", "x-gitea-event"];
const SIGNATURE_HEADERS: [&str; 2] = ["x-forgejo-signature", "x-gitea-signature"];
const DELIVERY_HEADERS: [&str; 2] = ["x-gitea-delivery", "x-forgejo-delivery"];

/// Gitea sends a push for every created ref and for deleted tags; a deleted branch arrives
/// only as a `delete` event.
const GITEA_REF_EVENTS: RefEventPolicy = RefEventPolicy {
    created_also_pushed: &["branch", "tag"],
    deleted_also_pushed: &["tag"],
};

/// A `pull_request` event (Gitea sends its `_sync`, `_assign`, `_label`… kinds under the same
/// event name, told apart by `action`).
#[derive(Deserialize)]
struct PullRequestPayload {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    pull_request: Option<PullRequest>,
    /// The base repository.
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct PullRequest {
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    /// The author (`login`, `username`).
    #[serde(default)]
    user: serde_json::Value,
    #[serde(default)]
    head: Option<Side>,
    #[serde(default)]
    base: Option<Side>,
}

/// `head` or `base` of a pull request.
#[derive(Deserialize)]
struct Side {
    #[serde(rename = "ref", default)]
    git_ref: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    /// Null when the head's fork was deleted.
    #[serde(default)]
    repo: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    name: Option<String>,
    /// `owner/name`.
    #[serde(default)]
    full_name: Option<String>,
    /// `{login, username, …}`.
    #[serde(default)]
    owner: serde_json::Value,
    /// The repository in the API: `{ROOT_URL}api/v1/repos/owner/name`.
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    clone_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
}

impl Provider for Gitea {
    fn name(&self) -> &'static str {
        "gitea"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        EVENT_HEADERS.iter().any(|h| headers.contains_key(*h))
    }

    /// Every Gitea or Forgejo signature sent must verify: one that does not is a forgery
    /// beside a copied genuine one.
    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        let mut verdict = Credential::Absent;
        for header in SIGNATURE_HEADERS {
            match hmac_credential(request, header, Signature::parse_hex, secrets) {
                Credential::Absent => {}
                Credential::Valid => verdict = Credential::Valid,
                invalid @ Credential::Invalid(_) => return invalid,
            }
        }
        verdict
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        DELIVERY_HEADERS
            .iter()
            .find_map(|h| request.header(h))
            .map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        let delivery = self.delivery(request);
        let event = EVENT_HEADERS
            .iter()
            .find_map(|h| request.header(h))
            .unwrap_or_default();
        match event {
            "push" => parse_push("Gitea", EventSource::Gitea, delivery, request.body),
            event @ ("create" | "delete") => parse_ref_event(
                "Gitea",
                EventSource::Gitea,
                delivery,
                event,
                &GITEA_REF_EVENTS,
                request.body,
            ),
            "pull_request" => parse_pull_request(delivery, request.body),
            other => Ok(Outcome::Ignored(format!(
                "Gitea event {other:?} is not acted on"
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
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        });
        // Gitea sends every family of headers with the same event and delivery id.
        let mut headers = Vec::new();
        for family in ["gitea", "gogs", "github"] {
            headers.push((format!("x-{family}-event"), "push".to_owned()));
            headers.push((format!("x-{family}-event-type"), "push".to_owned()));
            headers.push((format!("x-{family}-delivery"), push.delivery.to_owned()));
        }
        headers.push(("user-agent".to_owned(), "Go-http-client/1.1".to_owned()));
        let mut request = SignedRequest::json(
            &sample_body(push, repository),
            headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
        );
        if let Some(secret) = secret {
            let hex = hex_signature(secret, &request.body);
            request.add_header("x-gitea-signature", hex.clone());
            request.add_header("x-gogs-signature", hex.clone());
            request.add_header("x-hub-signature-256", format!("sha256={hex}"));
        }
        request
    }

    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        let api = pr.api_url.trim_end_matches('/');
        let user = |login: &str| {
            serde_json::json!({
                "id": 1,
                "login": login,
                "login_name": "",
                "full_name": login,
                "email": format!("{login}@noreply.example.com"),
                "avatar_url": "",
                "username": login,
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
                "empty": false,
                "private": false,
                "fork": id != 140,
                "html_url": url.strip_suffix(".git").unwrap_or(url),
                "url": format!("{api}/repos/{owner}/{name}"),
                "ssh_url": "",
                "clone_url": url,
                "default_branch": pr.base_ref,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
            })
        };
        let base_repo = repository(pr.repo_url, 140);
        let head_repo = pr
            .fork_url
            .map_or_else(|| base_repo.clone(), |f| repository(f, 141));
        let web = base_repo["html_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let closed = pr.action == PullRequestAction::Closed;
        let body = serde_json::json!({
            "action": sample_action(pr.action, ["opened", "synchronized", "reopened", "closed"]),
            "number": pr.number,
            "pull_request": {
                "id": 9,
                "url": format!("{web}/pulls/{}", pr.number),
                "number": pr.number,
                "user": user(pr.author),
                "title": pr.title,
                "body": "",
                "labels": [],
                "milestone": null,
                "assignee": null,
                "assignees": null,
                "requested_reviewers": null,
                "state": if closed { "closed" } else { "open" },
                "draft": false,
                "is_locked": false,
                "comments": 0,
                "html_url": format!("{web}/pulls/{}", pr.number),
                "diff_url": format!("{web}/pulls/{}.diff", pr.number),
                "patch_url": format!("{web}/pulls/{}.patch", pr.number),
                "mergeable": true,
                "merged": false,
                "merged_at": null,
                "merge_commit_sha": null,
                "merged_by": null,
                "allow_maintainer_edit": false,
                "base": {
                    "label": pr.base_ref,
                    "ref": pr.base_ref,
                    "sha": pr.base_sha,
                    "repo_id": 140,
                    "repo": base_repo.clone(),
                },
                "head": {
                    "label": pr.head_ref,
                    "ref": pr.head_ref,
                    "sha": pr.head_sha,
                    "repo_id": head_repo["id"].clone(),
                    "repo": head_repo,
                },
                "merge_base": pr.base_sha,
                "due_date": null,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "closed_at": null,
                "pin_order": 0,
            },
            "requested_reviewer": null,
            "repository": base_repo,
            "sender": user(pr.author),
            "commit_id": "",
            "review": null,
        });
        let kind = if pr.action == PullRequestAction::Updated {
            "pull_request_sync"
        } else {
            "pull_request"
        };
        let delivery = uuid::Uuid::new_v4().to_string();
        let mut headers = Vec::new();
        for family in ["gitea", "gogs", "github"] {
            headers.push((format!("x-{family}-event"), "pull_request".to_owned()));
            headers.push((format!("x-{family}-event-type"), kind.to_owned()));
            headers.push((format!("x-{family}-delivery"), delivery.clone()));
        }
        headers.push(("user-agent".to_owned(), "Go-http-client/1.1".to_owned()));
        let mut request = SignedRequest::json(
            &body,
            headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
        );
        if let Some(secret) = secret {
            let hex = hex_signature(secret, &request.body);
            request.add_header("x-gitea-signature", hex.clone());
            request.add_header("x-gogs-signature", hex.clone());
            request.add_header("x-hub-signature-256", format!("sha256={hex}"));
        }
        request
    }
}

/// A `pull_request` event: opened, synchronized (new head commit), reopened and closed (merged
/// or not); edits, labels, assignments and reviews are ignored.
fn parse_pull_request(delivery: Option<String>, body: &[u8]) -> Result<Outcome, WebhookError> {
    const HOST: &str = "Gitea";
    let payload: PullRequestPayload = parse_json("Gitea pull_request", body)?;
    let action = match payload.action.as_deref().unwrap_or_default() {
        "opened" => PullRequestAction::Opened,
        "synchronized" => PullRequestAction::Updated,
        "reopened" => PullRequestAction::Reopened,
        "closed" => PullRequestAction::Closed,
        other => {
            return Ok(Outcome::Ignored(format!(
                "Gitea pull_request action {other:?} is not acted on"
            )));
        }
    };
    let pr = required(HOST, "pull_request", payload.pull_request)?;
    let number = required(HOST, "number", payload.number.or(pr.number))?;
    let head = required(HOST, "pull_request.head", pr.head)?;
    let base = required(HOST, "pull_request.base", pr.base)?;
    let head_sha = required_text(HOST, "pull_request.head.sha", head.sha)?;
    let base_ref = required_text(HOST, "pull_request.base.ref", base.git_ref)?;
    let repo = required(HOST, "repository", payload.repository.or(base.repo))?;
    let api = forge_repo(&repo)?;
    let head_repo_urls = match head.repo {
        Some(fork) if is_fork(fork.full_name.as_deref(), repo.full_name.as_deref()) => {
            vec![fork.clone_url, fork.ssh_url, fork.html_url]
        }
        _ => Vec::new(),
    };
    Ok(Outcome::PullRequest(pull_request_event(
        EventSource::Gitea,
        delivery,
        PullRequestDraft {
            action,
            number,
            title: pr.title,
            author: pusher([pr.user.pointer("/login"), pr.user.pointer("/username")]),
            html_url: pr.html_url,
            repo_urls: vec![repo.clone_url, repo.ssh_url, repo.html_url],
            base_ref,
            base_sha: base.sha,
            head_sha,
            head_ref: head.git_ref,
            head_repo_urls,
            api,
        },
    )?))
}

/// The base repository in Gitea's API: `repository.url` (`{root}/api/v1/repos/owner/name`)
/// before `/repos/`, else the web link without `owner/name` plus `/api/v1`.
fn forge_repo(repo: &Repository) -> Result<ForgeRepo, WebhookError> {
    let full_name = repo.full_name.as_deref().unwrap_or_default();
    let api_url = repo
        .url
        .as_deref()
        .filter(|u| u.contains("/repos/"))
        .and_then(|u| url_before(u, "/repos/"))
        .or_else(|| {
            let html = repo.html_url.as_deref()?;
            Some(format!("{}/api/v1", url_without_path(html, full_name)?))
        })
        .ok_or_else(|| {
            WebhookError::BadPayload(
                "Gitea pull request payload has neither repository.url ({root}/api/v1/repos/…) nor repository.html_url with full_name".into(),
            )
        })?;
    let (full_owner, full_repo) = full_name.split_once('/').unwrap_or_default();
    let owner = pusher([
        repo.owner.pointer("/login"),
        repo.owner.pointer("/username"),
    ])
    .unwrap_or_else(|| full_owner.to_owned());
    Ok(ForgeRepo {
        kind: EventSource::Gitea,
        api_url,
        owner,
        name: repo.name.clone().unwrap_or_else(|| full_repo.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PushEvent, RefUpdate};
    use crate::webhook::{WebhookSecrets, detect, receive};

    const SECRET: &str = "gitea-secret";
    const DELIVERY: &str = "f6266f16-1bf3-46a5-9ea4-602e06ead473";

    /// A request as Gitea (`forgejo: false`) or Forgejo sends it, signed with `secret`.
    fn request(event: &str, body: &[u8], forgejo: bool, secret: &str) -> SignedRequest {
        let hex = hex_signature(secret, body);
        let mut families = vec!["gitea", "gogs", "github"];
        if forgejo {
            families.insert(0, "forgejo");
        }
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        for family in families {
            headers.push((format!("x-{family}-event"), event.to_owned()));
            headers.push((format!("x-{family}-delivery"), DELIVERY.to_owned()));
            if family != "github" {
                headers.push((format!("x-{family}-signature"), hex.clone()));
            }
        }
        headers.push(("x-hub-signature-256".to_owned(), format!("sha256={hex}")));
        SignedRequest {
            headers,
            body: body.to_vec(),
        }
    }

    fn secrets() -> WebhookSecrets {
        WebhookSecrets::new()
            .with_secret("gitea", SecretString::from(SECRET))
            .expect("known provider")
    }

    fn run(req: &SignedRequest) -> Result<Outcome, WebhookError> {
        let headers = req.header_map();
        receive(&Request::new(&headers, &req.body), &secrets())
            .map(|r| r.outcome)
            .map_err(|(_, e)| e)
    }

    fn event(event: &str, body: &[u8]) -> PushEvent {
        match run(&request(event, body, false, SECRET)) {
            Ok(Outcome::Event(ev)) => ev,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn ignored(event: &str, body: &[u8]) -> String {
        match run(&request(event, body, false, SECRET)) {
            Ok(Outcome::Ignored(reason)) => reason,
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    const URLS: [&str; 3] = [
        "https://gitea.example.com/gitea/webhooks.git",
        "git@gitea.example.com:gitea/webhooks.git",
        "https://gitea.example.com/gitea/webhooks",
    ];

    #[test]
    fn a_branch_push_lists_its_files_urls_and_default_branch() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gitea/push-branch.json"),
        );
        assert_eq!(ev.source, EventSource::Gitea);
        assert_eq!(ev.delivery.as_deref(), Some(DELIVERY));
        assert_eq!(ev.repo_urls, URLS);
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/develop".into(),
                before: Some("28e1879d029cb852e4844d9c718537df08844e03".into()),
                after: Some("bffeb74224043ba2feb48d137756c8a9331c449a".into()),
                created: false,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(
            ev.changed_files,
            Some(vec![
                "apps/api/deployment.yaml".to_owned(),
                "apps/api/legacy.yaml".to_owned(),
                "apps/api/values.yaml".to_owned(),
            ])
        );
        assert_eq!(ev.default_branch.as_deref(), Some("main"));
    }

    #[test]
    fn the_pusher_is_the_pushers_login() {
        let push = include_bytes!("../../tests/fixtures/webhooks/gitea/push-branch.json");
        assert_eq!(event("push", push).pusher.as_deref(), Some("gitea"));
        let mut v: serde_json::Value = serde_json::from_slice(push).expect("json");
        v.as_object_mut().expect("object").remove("pusher");
        v.as_object_mut().expect("object").remove("sender");
        let body = v.to_string();
        let ev = event("push", body.as_bytes());
        assert_eq!(ev.pusher, None, "absent is unknown, not a refusal");
        assert_eq!(ev.refs.len(), 1);
    }

    #[test]
    fn a_cut_commit_list_leaves_the_files_unknown() {
        // Gitea lists at most FEED_MAX_COMMIT_NUM commits; total_commits says 7 were pushed.
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gitea/push-truncated.json"),
        );
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn a_tag_push_is_a_created_tag_without_flags_in_the_payload() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gitea/push-tag.json"),
        );
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/tags/v2.0.0".into(),
                before: None,
                after: Some("bffeb74224043ba2feb48d137756c8a9331c449a".into()),
                created: true,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn a_new_branch_is_created_and_its_create_event_is_not_acted_on_twice() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gitea/push-branch-created.json"),
        );
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.refs[0].name, "refs/heads/feature/x");
        assert!(ev.refs[0].created && !ev.refs[0].deleted);
        assert_eq!(ev.refs[0].before, None);
        assert_eq!(ev.changed_files, None);
        let reason = ignored(
            "create",
            include_bytes!("../../tests/fixtures/webhooks/gitea/create-branch.json"),
        );
        assert!(reason.contains("push event"), "{reason}");
    }

    #[test]
    fn a_deleted_tag_comes_as_a_push_and_its_delete_event_is_ignored() {
        let ev = event(
            "push",
            include_bytes!("../../tests/fixtures/webhooks/gitea/push-tag-deleted.json"),
        );
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/tags/v2.0.0".into(),
                before: Some("bffeb74224043ba2feb48d137756c8a9331c449a".into()),
                after: None,
                created: false,
                deleted: true,
                forced: false,
            }]
        );
        let reason = ignored(
            "delete",
            include_bytes!("../../tests/fixtures/webhooks/gitea/delete-tag.json"),
        );
        assert!(reason.contains("push event"), "{reason}");
    }

    #[test]
    fn a_deleted_branch_comes_only_as_a_delete_event_and_is_acted_on() {
        let ev = event(
            "delete",
            include_bytes!("../../tests/fixtures/webhooks/gitea/delete-branch.json"),
        );
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/feature/x".into(),
                before: None,
                after: None,
                created: false,
                deleted: true,
                forced: false,
            }]
        );
        assert_eq!(ev.repo_urls, URLS);
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn other_events_are_ignored() {
        let reason = ignored(
            "issues",
            include_bytes!("../../tests/fixtures/webhooks/gitea/pull-request.json"),
        );
        assert!(reason.contains("issues"), "{reason}");
    }

    #[test]
    fn forgejo_is_recognised_as_gitea_before_gogs_and_github() {
        let body = include_bytes!("../../tests/fixtures/webhooks/gitea/push-branch.json");
        let req = request("push", body, true, SECRET);
        assert_eq!(detect(&req.header_map()).map(|p| p.name()), Some("gitea"));
        let Ok(Outcome::Event(ev)) = run(&req) else {
            panic!("Forgejo push refused");
        };
        assert_eq!(ev.refs[0].name, "refs/heads/develop");
        assert_eq!(ev.delivery.as_deref(), Some(DELIVERY));
        // Forgejo alone (no Gitea headers) is still Gitea-shaped.
        let only_forgejo = SignedRequest {
            headers: req
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with("x-gitea-"))
                .cloned()
                .collect(),
            body: req.body.clone(),
        };
        let headers = only_forgejo.header_map();
        let r = receive(&Request::new(&headers, &only_forgejo.body), &secrets());
        let Ok(received) = r else {
            panic!("Forgejo-only push refused: {r:?}");
        };
        assert_eq!(received.provider.name(), "gitea");
        assert_eq!(received.delivery.as_deref(), Some(DELIVERY));
    }

    #[test]
    fn both_signatures_must_verify_when_both_are_sent() {
        let body = include_bytes!("../../tests/fixtures/webhooks/gitea/push-branch.json");
        let genuine = hex_signature(SECRET, body);
        let forged = hex_signature("guessed", body);
        for (forgejo_sig, gitea_sig) in [(&forged, &genuine), (&genuine, &forged)] {
            let mut req = request("push", body, true, SECRET);
            for (k, v) in req.headers.iter_mut() {
                match k.as_str() {
                    "x-forgejo-signature" => *v = forgejo_sig.clone(),
                    "x-gitea-signature" => *v = gitea_sig.clone(),
                    _ => {}
                }
            }
            assert!(
                matches!(run(&req), Err(WebhookError::Unauthorized(_))),
                "forged {}",
                if forgejo_sig == &forged {
                    "Forgejo"
                } else {
                    "Gitea"
                }
            );
        }
    }

    #[test]
    fn github_and_gogs_style_signatures_alone_are_not_a_gitea_credential() {
        let body = include_bytes!("../../tests/fixtures/webhooks/gitea/push-branch.json");
        let mut req = request("push", body, false, SECRET);
        req.headers.retain(|(k, _)| k != "x-gitea-signature");
        let r = run(&req);
        assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{r:?}");
    }

    #[test]
    fn regression_shapes_never_panic_nor_become_events() {
        // Missing or null repository (CVE-2025-59537's shape), empty URLs.
        for body in [
            &br#"{"ref": "refs/heads/main", "before": "", "after": ""}"#[..],
            br#"{"ref": "refs/heads/main", "repository": null}"#,
            br#"{"ref": "refs/heads/main", "repository": {"clone_url": "", "html_url": ""}}"#,
        ] {
            let reason = ignored("push", body);
            assert!(reason.contains("repository"), "{reason}");
        }
        for bad in [
            &br#"{"ref": 5, "repository": {"clone_url": "https://h/o/r.git"}}"#[..],
            br#"{"ref": ["refs/heads/main"], "repository": {}}"#,
            br#"{"ref": "refs/heads/x", "total_commits": "many", "repository": {}}"#,
            br#"{"ref": " ", "repository": {"clone_url": "https://h/o/r.git"}}"#,
            b"\"push\"",
        ] {
            let r = run(&request("push", bad, false, SECRET));
            assert!(
                matches!(r, Err(WebhookError::BadPayload(_))),
                "{}: {r:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    mod pull_requests {
        use super::*;
        use crate::event::PullRequestEvent;
        use crate::webhook::test_support::edited;

        const OPENED: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/gitea/pull-request-opened.json");
        const FORK: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/gitea/pull-request-synchronized-fork.json"
        );
        const LABELED: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/gitea/pull-request-label-updated.json");

        fn pull_request(body: &[u8], forgejo: bool) -> PullRequestEvent {
            match run(&request("pull_request", body, forgejo, SECRET)) {
                Ok(Outcome::PullRequest(pr)) => pr,
                other => panic!("expected a pull request, got {other:?}"),
            }
        }

        fn refused(body: &[u8]) -> String {
            match run(&request("pull_request", body, false, SECRET)) {
                Err(WebhookError::BadPayload(message)) => message,
                other => panic!("expected BadPayload, got {other:?}"),
            }
        }

        #[test]
        fn an_opened_pull_request_carries_everything_a_preview_needs() {
            let pr = pull_request(OPENED, false);
            assert_eq!(pr.source, EventSource::Gitea);
            assert_eq!(pr.action, PullRequestAction::Opened);
            assert_eq!(pr.number, 3);
            assert_eq!(pr.delivery.as_deref(), Some(DELIVERY));
            assert_eq!(pr.title, "Bump api to 4 replicas");
            assert_eq!(pr.author.as_deref(), Some("jdoe"));
            assert_eq!(
                pr.html_url.as_deref(),
                Some("https://gitea.example.com/gitea/webhooks/pulls/3")
            );
            assert_eq!(pr.repo_urls, URLS);
            assert_eq!(pr.base_ref, "main");
            assert_eq!(
                pr.base_sha.as_deref(),
                Some("28e1879d029cb852e4844d9c718537df08844e03")
            );
            assert_eq!(pr.head_sha, "bffeb74224043ba2feb48d137756c8a9331c449a");
            assert_eq!(pr.head_ref.as_deref(), Some("feature/x"));
            assert!(pr.head_repo_urls.is_empty());
            assert_eq!(
                pr.api,
                ForgeRepo {
                    kind: EventSource::Gitea,
                    api_url: "https://gitea.example.com/api/v1".into(),
                    owner: "gitea".into(),
                    name: "webhooks".into(),
                }
            );
            // Forgejo sends the same payload under its own headers.
            assert_eq!(pull_request(OPENED, true).number, 3);
        }

        #[test]
        fn each_action_maps_and_labels_and_edits_are_ignored() {
            for (action, want) in [
                ("opened", PullRequestAction::Opened),
                ("synchronized", PullRequestAction::Updated),
                ("reopened", PullRequestAction::Reopened),
                ("closed", PullRequestAction::Closed),
            ] {
                let body = edited(OPENED, "/action", Some(serde_json::json!(action)));
                assert_eq!(pull_request(&body, false).action, want, "{action}");
            }
            assert!(ignored("pull_request", LABELED).contains("label_updated"));
            for action in ["edited", "assigned", "review_requested"] {
                let body = edited(OPENED, "/action", Some(serde_json::json!(action)));
                assert!(ignored("pull_request", &body).contains(action));
            }
        }

        #[test]
        fn a_fork_s_urls_are_the_head_repository() {
            let pr = pull_request(FORK, false);
            assert_eq!(pr.action, PullRequestAction::Updated);
            assert_eq!(
                pr.head_repo_urls,
                [
                    "https://gitea.example.com/jdoe/webhooks.git",
                    "git@gitea.example.com:jdoe/webhooks.git",
                    "https://gitea.example.com/jdoe/webhooks"
                ]
            );
            assert_eq!(pr.api.owner, "gitea");
        }

        #[test]
        fn without_an_api_link_the_api_is_beside_the_web_pages_path_prefix_kept() {
            let body = edited(OPENED, "/repository/url", None);
            let body = edited(
                &body,
                "/repository/html_url",
                Some(serde_json::json!("https://example.com/git/gitea/webhooks")),
            );
            assert_eq!(
                pull_request(&body, false).api.api_url,
                "https://example.com/git/api/v1"
            );
        }

        #[test]
        fn missing_essentials_are_refused_naming_the_field() {
            for (pointer, field) in [
                ("/pull_request/head/sha", "pull_request.head.sha"),
                ("/pull_request/base/ref", "pull_request.base.ref"),
            ] {
                let message = refused(&edited(OPENED, pointer, None));
                assert!(message.contains(field), "{pointer}: {message}");
            }
            let body = edited(
                &edited(OPENED, "/number", None),
                "/pull_request/number",
                None,
            );
            assert!(refused(&body).contains("number"));
        }
    }
}
