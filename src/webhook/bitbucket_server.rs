//! Bitbucket Data Center (formerly Server): `repo:refs_changed` and `mirror:repo_synchronized`
//! with every entry of `changes[]`, and the `pr:*` events, signed by
//! `X-Hub-Signature: sha256=<hex>`.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, NULL_SHA, Outcome, Provider, PullRequestDraft, Request, SamplePullRequest,
    SamplePush, Signature, SignedRequest, WebhookError, hmac_credential, parse_json,
    pull_request_event, push_event, pusher, ref_update, repo_urls, required, required_text,
    sample_owner_name, url_before,
};
use crate::domain::repo_url::RepoUrl;
use crate::event::{EventSource, ForgeRepo, PullRequestAction, RefUpdate};
use crate::secret::SecretString;

/// Self-hosted Bitbucket Data Center and Server.
pub struct BitbucketServer;

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    changes: Option<Vec<Change>>,
    /// Mirrors leave `changes` empty when more refs changed than a payload may list.
    #[serde(rename = "refLimitExceeded", default)]
    ref_limit_exceeded: Option<bool>,
    /// The user who pushed (`name`, `displayName`); mirror events have none.
    #[serde(default)]
    actor: serde_json::Value,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    links: Option<Links>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    slug: Option<String>,
    /// `{key, …}`.
    #[serde(default)]
    project: serde_json::Value,
}

/// A `pr:*` event.
#[derive(Deserialize)]
struct PullRequestPayload {
    #[serde(rename = "pullRequest", default)]
    pull_request: Option<PullRequest>,
    /// `pr:modified`: the target branch before the change (`id`, `displayId`, `latestCommit`).
    #[serde(rename = "previousTarget", default)]
    previous_target: serde_json::Value,
}

#[derive(Deserialize)]
struct PullRequest {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    /// `{user: {name, displayName}, role, …}`.
    #[serde(default)]
    author: serde_json::Value,
    #[serde(rename = "fromRef", default)]
    from_ref: Option<PullRequestRef>,
    #[serde(rename = "toRef", default)]
    to_ref: Option<PullRequestRef>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Deserialize)]
struct PullRequestRef {
    /// `refs/heads/x`.
    #[serde(default)]
    id: Option<String>,
    /// `x`.
    #[serde(rename = "displayId", default)]
    display_id: Option<String>,
    #[serde(rename = "latestCommit", default)]
    latest_commit: Option<String>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    clone: Option<Vec<Link>>,
    #[serde(rename = "self", default)]
    web: Option<Vec<Link>>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    href: Option<String>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(rename = "ref", default)]
    git_ref: Option<Ref>,
    #[serde(rename = "refId", default)]
    ref_id: Option<String>,
    #[serde(rename = "fromHash", default)]
    from_hash: Option<String>,
    #[serde(rename = "toHash", default)]
    to_hash: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(default)]
    id: Option<String>,
}

impl Provider for BitbucketServer {
    fn name(&self) -> &'static str {
        "bitbucket-server"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        // Bitbucket Cloud sends X-Event-Key too, always with its X-Hook-UUID.
        headers.contains_key("x-event-key") && !headers.contains_key("x-hook-uuid")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        hmac_credential(request, "x-hub-signature", Signature::parse, secrets)
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        request.header("x-request-id").map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        match request.header("x-event-key").unwrap_or_default() {
            // "Test connection": answered once authenticated, never acted on.
            "diagnostics:ping" => return Ok(Outcome::Ignored("ping".into())),
            "repo:refs_changed" | "mirror:repo_synchronized" => {}
            key if key.starts_with("pr:") => return self.parse_pull_request(request, key),
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        }
        let payload: Payload = parse_json("Bitbucket Data Center push", request.body)?;
        let Some(repo) = payload.repository else {
            return Ok(Outcome::Ignored("push without a repository".into()));
        };
        let links = repo.links.map(|l| {
            let clone = l.clone.unwrap_or_default().into_iter();
            clone.chain(l.web.unwrap_or_default()).map(|link| link.href)
        });
        let urls = match repo_urls(links.into_iter().flatten()) {
            Ok(urls) => urls,
            Err(ignored) => return Ok(ignored),
        };
        let Some(changes) = payload.changes else {
            return Err(WebhookError::BadPayload(
                "Bitbucket Data Center push payload has no changes".into(),
            ));
        };
        let refs: Vec<RefUpdate> = changes.into_iter().filter_map(ref_change).collect();
        if refs.is_empty() {
            let reason = if payload.ref_limit_exceeded == Some(true) {
                "the mirror changed more refs than a webhook lists; the periodic refresh picks them up"
            } else {
                "the push lists no ref change"
            };
            return Ok(Outcome::Ignored(reason.into()));
        }
        Ok(Outcome::Event(push_event(
            EventSource::BitbucketServer,
            self.delivery(request),
            urls,
            refs,
            // Bitbucket Data Center lists neither files nor commits.
            None,
            None,
            pusher([
                payload.actor.pointer("/name"),
                payload.actor.pointer("/displayName"),
            ]),
        )?))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let segments: Vec<String> = RepoUrl::parse(push.repo)
            .map(|u| u.path_segments().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let slug = segments.last().cloned().unwrap_or_default();
        let project = segments
            .iter()
            .rev()
            .nth(1)
            .cloned()
            .unwrap_or_default()
            .to_uppercase();
        let (ref_type, display) = match push.git_ref.strip_prefix("refs/tags/") {
            Some(tag) => ("TAG", tag),
            None => (
                "BRANCH",
                push.git_ref
                    .strip_prefix("refs/heads/")
                    .unwrap_or(push.git_ref),
            ),
        };
        let change_type = match (push.before, push.after) {
            (None, _) => "ADD",
            (_, None) => "DELETE",
            _ => "UPDATE",
        };
        let body = serde_json::json!({
            "eventKey": "repo:refs_changed",
            "date": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S+0000").to_string(),
            "actor": { "name": super::SAMPLE_PUSHER, "displayName": "Capstan", "type": "NORMAL" },
            "repository": {
                "slug": slug,
                "name": slug,
                "scmId": "git",
                "state": "AVAILABLE",
                "forkable": true,
                "public": false,
                "project": { "key": project, "type": "NORMAL" },
                "links": {
                    "clone": [{ "href": push.repo, "name": "http" }],
                    "self": [{ "href": push.repo.strip_suffix(".git").unwrap_or(push.repo) }],
                },
            },
            "changes": [{
                "ref": { "id": push.git_ref, "displayId": display, "type": ref_type },
                "refId": push.git_ref,
                "fromHash": push.before.unwrap_or(NULL_SHA),
                "toHash": push.after.unwrap_or(NULL_SHA),
                "type": change_type,
            }],
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-event-key", "repo:refs_changed".to_owned()),
                ("x-request-id", push.delivery.to_owned()),
                (
                    "user-agent",
                    "Atlassian HttpClient 4.2.0 / Bitbucket-9.4.0 (9004000) / Default".to_owned(),
                ),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature", signature);
        }
        request
    }

    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        let base = pr.api_url.trim_end_matches('/');
        let repository = |url: &str, id: u64| {
            let (project, slug) = sample_owner_name(url);
            let key = project.to_uppercase();
            serde_json::json!({
                "slug": slug,
                "id": id,
                "name": slug,
                "hierarchyId": "e3c939f9ef4a7fae272e",
                "scmId": "git",
                "state": "AVAILABLE",
                "statusMessage": "Available",
                "forkable": true,
                "project": {
                    "key": key,
                    "id": id,
                    "name": project,
                    "public": false,
                    "type": "NORMAL",
                    "links": { "self": [{ "href": format!("{base}/projects/{key}") }] },
                },
                "public": false,
                "archived": false,
                "links": {
                    "clone": [{ "href": url, "name": "http" }],
                    "self": [{ "href": format!("{base}/projects/{key}/repos/{slug}/browse") }],
                },
            })
        };
        let to_repo = repository(pr.repo_url, 84);
        let from_repo = pr
            .fork_url
            .map_or_else(|| to_repo.clone(), |f| repository(f, 85));
        let (key, state) = match pr.action {
            PullRequestAction::Opened => ("pr:opened", "OPEN"),
            PullRequestAction::Updated => ("pr:from_ref_updated", "OPEN"),
            PullRequestAction::Reopened => ("pr:reopened", "OPEN"),
            PullRequestAction::Closed => ("pr:merged", "MERGED"),
        };
        let user = serde_json::json!({
            "name": pr.author,
            "emailAddress": "capstan@example.com",
            "active": true,
            "displayName": pr.author,
            "id": 101,
            "slug": pr.author,
            "type": "NORMAL",
        });
        let project_key = to_repo["project"]["key"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let slug = to_repo["slug"].as_str().unwrap_or_default().to_owned();
        let mut body = serde_json::json!({
            "eventKey": key,
            "date": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S+0000").to_string(),
            "actor": user.clone(),
            "pullRequest": {
                "id": pr.number,
                "version": 1,
                "title": pr.title,
                "state": state,
                "open": state == "OPEN",
                "closed": state != "OPEN",
                "draft": false,
                "createdDate": 1_767_225_600_000_u64,
                "updatedDate": 1_767_225_600_000_u64,
                "fromRef": {
                    "id": format!("refs/heads/{}", pr.head_ref),
                    "displayId": pr.head_ref,
                    "latestCommit": pr.head_sha,
                    "type": "BRANCH",
                    "repository": from_repo,
                },
                "toRef": {
                    "id": format!("refs/heads/{}", pr.base_ref),
                    "displayId": pr.base_ref,
                    "latestCommit": pr.base_sha,
                    "type": "BRANCH",
                    "repository": to_repo,
                },
                "locked": false,
                "author": { "user": user, "role": "AUTHOR", "approved": false, "status": "UNAPPROVED" },
                "reviewers": [],
                "participants": [],
                "links": { "self": [{
                    "href": format!("{base}/projects/{project_key}/repos/{slug}/pull-requests/{}", pr.number),
                }] },
            },
        });
        if pr.action == PullRequestAction::Updated {
            body["previousFromHash"] = serde_json::Value::String(NULL_SHA.replace('0', "1"));
        }
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-event-key", key.to_owned()),
                ("x-request-id", uuid::Uuid::new_v4().to_string()),
                (
                    "user-agent",
                    "Atlassian HttpClient 4.2.0 / Bitbucket-9.4.0 (9004000) / Default".to_owned(),
                ),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature", signature);
        }
        request
    }
}

impl BitbucketServer {
    /// `pr:opened`, `pr:from_ref_updated` (new head commits), `pr:modified` when the target
    /// branch changed, `pr:reopened`, and `pr:merged` / `pr:declined` / `pr:deleted`; reviews,
    /// comments and edits of the title or description are ignored.
    fn parse_pull_request(
        &self,
        request: &Request<'_>,
        key: &str,
    ) -> Result<Outcome, WebhookError> {
        const HOST: &str = "Bitbucket Data Center";
        let action = match key {
            "pr:opened" => PullRequestAction::Opened,
            "pr:from_ref_updated" | "pr:modified" => PullRequestAction::Updated,
            "pr:reopened" => PullRequestAction::Reopened,
            "pr:merged" | "pr:declined" | "pr:deleted" => PullRequestAction::Closed,
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        };
        let payload: PullRequestPayload =
            parse_json("Bitbucket Data Center pull request", request.body)?;
        let pr = required(HOST, "pullRequest", payload.pull_request)?;
        let number = required(HOST, "pullRequest.id", pr.id)?;
        let from = required(HOST, "pullRequest.fromRef", pr.from_ref)?;
        let to = required(HOST, "pullRequest.toRef", pr.to_ref)?;
        let head_sha = required_text(HOST, "pullRequest.fromRef.latestCommit", from.latest_commit)?;
        let base_ref = required_text(
            HOST,
            "pullRequest.toRef.displayId",
            to.display_id.or(to.id.clone()),
        )?;
        if key == "pr:modified" {
            // pr:modified says what the target was before; without a change there, only the
            // title, description or reviewers changed.
            let before = &payload.previous_target;
            let text = |v: &serde_json::Value, p: &str| {
                v.pointer(p)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let target_moved = before.is_object()
                && (text(before, "/id") != to.id
                    || text(before, "/latestCommit") != to.latest_commit);
            if !target_moved {
                return Ok(Outcome::Ignored(
                    "pr:modified without a new target branch or commit: nothing to preview again"
                        .into(),
                ));
            }
        }
        let repo = required(HOST, "pullRequest.toRef.repository", to.repository)?;
        let api = forge_repo(&repo)?;
        let head_repo_urls = match from.repository {
            Some(fork) if !same_repository(&fork, &repo) => links_of(fork),
            _ => Vec::new(),
        };
        let html_url = pr
            .links
            .and_then(|l| l.web)
            .and_then(|l| l.into_iter().next())
            .and_then(|l| l.href);
        Ok(Outcome::PullRequest(pull_request_event(
            EventSource::BitbucketServer,
            self.delivery(request),
            PullRequestDraft {
                action,
                number,
                title: pr.title,
                author: pusher([
                    pr.author.pointer("/user/name"),
                    pr.author.pointer("/user/displayName"),
                ]),
                html_url,
                repo_urls: links_of(repo),
                base_ref,
                base_sha: to.latest_commit,
                head_sha,
                head_ref: from.display_id.or(from.id),
                head_repo_urls,
                api,
            },
        )?))
    }
}

/// Whether two repositories of a payload are one: by id, else by project key and slug.
fn same_repository(a: &Repository, b: &Repository) -> bool {
    match (a.id, b.id) {
        (Some(a), Some(b)) => a == b,
        _ => a.slug == b.slug && a.project.pointer("/key") == b.project.pointer("/key"),
    }
}

/// A repository's clone links, then its web link, as push events name it.
fn links_of(repo: Repository) -> Vec<Option<String>> {
    repo.links
        .map(|l| {
            let clone = l.clone.unwrap_or_default().into_iter();
            clone
                .chain(l.web.unwrap_or_default())
                .map(|link| link.href)
                .collect()
        })
        .unwrap_or_default()
}

/// The repository in Bitbucket Data Center's API: the server's base URL (its web link before
/// `/projects/`), the project key and the repository slug.
fn forge_repo(repo: &Repository) -> Result<ForgeRepo, WebhookError> {
    let api_url = repo
        .links
        .as_ref()
        .and_then(|l| l.web.as_ref())
        .and_then(|links| links.first())
        .and_then(|l| l.href.as_deref())
        .and_then(|href| url_before(href, "/projects/"))
        .ok_or_else(|| {
            WebhookError::BadPayload(
                "Bitbucket Data Center pull request payload has no toRef.repository.links.self (…/projects/KEY/repos/SLUG)".into(),
            )
        })?;
    let owner = repo
        .project
        .pointer("/key")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    Ok(ForgeRepo {
        kind: EventSource::BitbucketServer,
        api_url,
        owner: owner.to_owned(),
        name: repo.slug.clone().unwrap_or_default(),
    })
}

/// One entry of `changes[]` as a ref update; None when it names no ref.
fn ref_change(change: Change) -> Option<RefUpdate> {
    let name = change
        .git_ref
        .and_then(|r| r.id)
        .or(change.ref_id)
        .filter(|n| !n.trim().is_empty())?;
    let mut update = ref_update(name, change.from_hash, change.to_hash);
    // The change type says what happened; the all-zero hashes only echo it.
    match change.kind.as_deref() {
        Some("ADD") => (update.created, update.deleted) = (true, false),
        Some("DELETE") => (update.created, update.deleted) = (false, true),
        Some("UPDATE") => (update.created, update.deleted) = (false, false),
        _ => {}
    }
    Some(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_support::{expect_event as event, moved as update};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                "../../tests/fixtures/webhooks/bitbucket-server/",
                $name
            ))
        };
    }

    const OLD: &str = "95790bf891e76fee5e1747ab589903a6a1f80f22";
    const NEW: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    const TAG_COMMIT: &str = "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7";

    fn headers(event_key: &str, extra: &[(&str, &str)]) -> HeaderMap {
        let mut pairs = vec![
            ("x-event-key".to_owned(), event_key.to_owned()),
            ("x-request-id".to_owned(), "req-1".to_owned()),
        ];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        SignedRequest {
            headers: pairs,
            body: Vec::new(),
        }
        .header_map()
    }

    fn parse(event_key: &str, body: &[u8]) -> Result<Outcome, WebhookError> {
        let headers = headers(event_key, &[]);
        BitbucketServer.parse(&Request::new(&headers, body))
    }

    fn urls() -> Vec<String> {
        [
            "ssh://git@bitbucket.example.com:7999/ops/deploy.git",
            "https://bitbucket.example.com/scm/ops/deploy.git",
            "https://bitbucket.example.com/projects/OPS/repos/deploy/browse",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[test]
    fn a_branch_update_carries_every_link_and_no_files_or_default_branch() {
        let ev = event(parse("repo:refs_changed", fixture!("refs_changed.json")));
        assert_eq!(ev.source, EventSource::BitbucketServer);
        assert_eq!(ev.delivery.as_deref(), Some("req-1"));
        assert_eq!(ev.repo_urls, urls());
        assert_eq!(
            ev.refs,
            vec![update("refs/heads/main", Some(OLD), Some(NEW))]
        );
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.default_branch, None);
    }

    #[test]
    fn the_pusher_is_the_actors_name_and_mirrors_have_none() {
        let ev = event(parse("repo:refs_changed", fixture!("refs_changed.json")));
        assert_eq!(ev.pusher.as_deref(), Some("jdoe"));
        let mut v: serde_json::Value =
            serde_json::from_slice(fixture!("refs_changed.json")).expect("json");
        v["actor"] = serde_json::json!({"displayName": "Jane Doe", "name": 101});
        let body = v.to_string();
        assert_eq!(
            event(parse("repo:refs_changed", body.as_bytes()))
                .pusher
                .as_deref(),
            Some("Jane Doe")
        );
        let mirror = event(parse(
            "mirror:repo_synchronized",
            fixture!("mirror_synchronized.json"),
        ));
        assert_eq!(mirror.pusher, None);
    }

    #[test]
    fn added_and_deleted_refs_are_marked() {
        let tag = event(parse("repo:refs_changed", fixture!("tag_created.json")));
        assert_eq!(
            tag.refs,
            vec![update("refs/tags/v1.4.0", None, Some(TAG_COMMIT))]
        );
        let created = event(parse("repo:refs_changed", fixture!("branch_created.json")));
        assert_eq!(
            created.refs,
            vec![update("refs/heads/feature/login", None, Some(NEW))]
        );
        let deleted = event(parse("repo:refs_changed", fixture!("branch_deleted.json")));
        assert_eq!(
            deleted.refs,
            vec![update("refs/heads/feature/login", Some(OLD), None)]
        );
    }

    #[test]
    fn every_change_becomes_a_ref_not_only_the_first() {
        let ev = event(parse("repo:refs_changed", fixture!("multi_ref.json")));
        assert_eq!(
            ev.refs,
            vec![
                update("refs/heads/main", Some(OLD), Some(NEW)),
                update("refs/heads/feature/login", Some(OLD), None),
                update("refs/tags/v1.4.0", None, Some(TAG_COMMIT)),
            ]
        );
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn a_mirror_synchronisation_is_a_push_unless_its_refs_were_left_out() {
        let ev = event(parse(
            "mirror:repo_synchronized",
            fixture!("mirror_synchronized.json"),
        ));
        assert_eq!(
            ev.refs,
            vec![update("refs/heads/main", Some(OLD), Some(NEW))]
        );
        assert_eq!(ev.repo_urls, urls());
        assert!(matches!(
            parse("mirror:repo_synchronized", fixture!("mirror_ref_limit_exceeded.json")),
            Ok(Outcome::Ignored(reason)) if reason.contains("more refs")
        ));
    }

    #[test]
    fn a_push_without_links_names_no_repository_and_is_ignored() {
        assert!(matches!(
            parse(
                "repo:refs_changed",
                fixture!("refs_changed_without_links.json")
            ),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn ping_and_other_events_are_ignored() {
        assert!(matches!(
            parse("diagnostics:ping", fixture!("ping.json")),
            Ok(Outcome::Ignored(reason)) if reason == "ping"
        ));
        assert!(matches!(
            parse("pr:comment:added", fixture!("pr_opened.json")),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn a_ping_is_authenticated_like_any_other_delivery() {
        let body = fixture!("ping.json");
        let secrets = super::super::WebhookSecrets::new()
            .with_secret("bitbucket-server", SecretString::from("s".to_owned()))
            .expect("known provider");
        let receive = |extra: &[(&str, &str)]| {
            let headers = headers("diagnostics:ping", extra);
            super::super::receive(&Request::new(&headers, body), &secrets)
                .map(|r| r.outcome)
                .map_err(|(_, e)| e)
        };
        let json = ("content-type", "application/json");
        assert!(matches!(
            receive(&[json]),
            Err(WebhookError::Unauthorized(_))
        ));
        let forged = Signature::sign(b"other", body);
        assert!(matches!(
            receive(&[json, ("x-hub-signature", &forged)]),
            Err(WebhookError::Unauthorized(_))
        ));
        let signed = Signature::sign(b"s", body);
        assert!(matches!(
            receive(&[json, ("x-hub-signature", &signed)]),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn bitbucket_cloud_requests_are_not_claimed() {
        assert!(BitbucketServer.recognises(&headers("repo:refs_changed", &[])));
        assert!(!BitbucketServer.recognises(&headers("repo:push", &[("x-hook-uuid", "h")])));
    }

    #[test]
    fn regression_shapes_are_ignored_or_refused_never_events_without_repository_or_refs() {
        let ignored: &[&[u8]] = &[
            br#"{"changes": [], "eventKey": "repo:refs_changed"}"#,
            br#"{"repository": null, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": null}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": null}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": ""}, {"name": "ssh"}]}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": []}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": [{"ref": {"id": ""}}, {"type": "ADD"}]}"#,
        ];
        for body in ignored {
            assert!(
                matches!(parse("repo:refs_changed", body), Ok(Outcome::Ignored(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // CVE-2025-59531: `links.clone` that is not a list of objects.
        let refused: &[&[u8]] = &[
            br#"{"repository": {"links": {"clone": {"href": "x"}}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": "x"}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [1, null, "x"]}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": 5}]}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": {}}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": [{"ref": {"id": 7}}]}"#,
        ];
        for body in refused {
            assert!(
                matches!(
                    parse("repo:refs_changed", body),
                    Err(WebhookError::BadPayload(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_sample_describes_created_deleted_and_tag_refs_as_bitbucket_does() {
        let push = |git_ref, before, after| SamplePush {
            repo: "https://bitbucket.example.com/scm/ops/deploy.git",
            git_ref,
            before,
            after,
            files: None,
            default_branch: "main",
            delivery: "d-3",
        };
        for (sample, expected) in [
            (
                push("refs/tags/v1", None, Some(NEW)),
                update("refs/tags/v1", None, Some(NEW)),
            ),
            (
                push("refs/heads/old", Some(OLD), None),
                update("refs/heads/old", Some(OLD), None),
            ),
        ] {
            let request = BitbucketServer.sample(&sample, None);
            let headers = request.header_map();
            let ev = event(BitbucketServer.parse(&Request::new(&headers, &request.body)));
            assert_eq!(ev.refs, vec![expected]);
            assert_eq!(ev.delivery.as_deref(), Some("d-3"));
            assert_eq!(
                ev.repo_urls.first().map(String::as_str),
                Some("https://bitbucket.example.com/scm/ops/deploy.git")
            );
        }
    }

    mod pull_requests {
        use super::*;
        use crate::webhook::test_support::{
            edited, expect_bad_payload, expect_ignored, expect_pull_request,
        };

        #[test]
        fn an_opened_pull_request_carries_everything_a_preview_needs() {
            let pr = expect_pull_request(parse("pr:opened", fixture!("pr_opened_full.json")));
            assert_eq!(pr.source, EventSource::BitbucketServer);
            assert_eq!(pr.action, PullRequestAction::Opened);
            assert_eq!(pr.number, 7);
            assert_eq!(pr.delivery.as_deref(), Some("req-1"));
            assert_eq!(pr.title, "Raise the API replicas");
            assert_eq!(pr.author.as_deref(), Some("jdoe"));
            assert_eq!(
                pr.html_url.as_deref(),
                Some("https://bitbucket.example.com/projects/OPS/repos/deploy/pull-requests/7")
            );
            assert_eq!(pr.repo_urls, urls());
            assert_eq!(pr.base_ref, "main");
            assert_eq!(pr.base_sha.as_deref(), Some(OLD));
            assert_eq!(pr.head_sha, NEW);
            assert_eq!(pr.head_ref.as_deref(), Some("feature/login"));
            assert!(pr.head_repo_urls.is_empty());
            assert_eq!(
                pr.api,
                ForgeRepo {
                    kind: EventSource::BitbucketServer,
                    api_url: "https://bitbucket.example.com".into(),
                    owner: "OPS".into(),
                    name: "deploy".into(),
                }
            );
            // The shorter payload (no author, no links) still parses.
            let short = expect_pull_request(parse("pr:opened", fixture!("pr_opened.json")));
            assert_eq!((short.author, short.html_url), (None, None));
        }

        #[test]
        fn each_event_maps_and_reviews_and_comments_are_ignored() {
            let opened = fixture!("pr_opened_full.json");
            for (key, want) in [
                ("pr:opened", PullRequestAction::Opened),
                ("pr:from_ref_updated", PullRequestAction::Updated),
                ("pr:reopened", PullRequestAction::Reopened),
                ("pr:merged", PullRequestAction::Closed),
                ("pr:declined", PullRequestAction::Closed),
                ("pr:deleted", PullRequestAction::Closed),
            ] {
                assert_eq!(
                    expect_pull_request(parse(key, opened)).action,
                    want,
                    "{key}"
                );
            }
            let merged = expect_pull_request(parse("pr:merged", fixture!("pr_merged.json")));
            assert_eq!(merged.action, PullRequestAction::Closed);
            for key in [
                "pr:reviewer:approved",
                "pr:comment:added",
                "pr:reviewer:needs_work",
            ] {
                assert!(expect_ignored(parse(key, opened)).contains(key));
            }
        }

        #[test]
        fn a_modification_counts_only_when_the_target_moved() {
            let reason = expect_ignored(parse("pr:modified", fixture!("pr_modified_title.json")));
            assert!(reason.contains("pr:modified"), "{reason}");
            let pr = expect_pull_request(parse("pr:modified", fixture!("pr_modified_target.json")));
            assert_eq!(pr.action, PullRequestAction::Updated);
            assert_eq!(pr.base_ref, "main");
            // The same branch with a new commit is a move too.
            let body = edited(
                fixture!("pr_modified_title.json"),
                "/previousTarget/latestCommit",
                Some(serde_json::json!(TAG_COMMIT)),
            );
            assert_eq!(
                expect_pull_request(parse("pr:modified", &body)).action,
                PullRequestAction::Updated
            );
        }

        #[test]
        fn a_fork_is_another_repository_and_its_clone_links_are_the_head() {
            let pr = expect_pull_request(parse(
                "pr:from_ref_updated",
                fixture!("pr_from_ref_updated_fork.json"),
            ));
            assert_eq!(pr.action, PullRequestAction::Updated);
            assert_eq!(pr.head_sha, "bffeb74224043ba2feb48d137756c8a9331c449a");
            assert_eq!(
                pr.head_repo_urls,
                [
                    "ssh://git@bitbucket.example.com:7999/~jdoe/deploy.git",
                    "https://bitbucket.example.com/scm/~jdoe/deploy.git",
                    "https://bitbucket.example.com/users/jdoe/repos/deploy/browse"
                ]
            );
            assert_eq!(pr.repo_urls, urls());
            assert_eq!(pr.api.owner, "OPS");
        }

        #[test]
        fn missing_essentials_are_refused_naming_the_field() {
            let opened = fixture!("pr_opened_full.json");
            for (pointer, field) in [
                (
                    "/pullRequest/fromRef/latestCommit",
                    "pullRequest.fromRef.latestCommit",
                ),
                (
                    "/pullRequest/toRef/displayId",
                    "pullRequest.toRef.displayId",
                ),
                ("/pullRequest/id", "pullRequest.id"),
                (
                    "/pullRequest/toRef/repository/links",
                    "toRef.repository.links.self",
                ),
            ] {
                let mut body = edited(opened, pointer, None);
                if pointer.ends_with("displayId") {
                    body = edited(&body, "/pullRequest/toRef/id", None);
                }
                let message = expect_bad_payload(parse("pr:opened", &body));
                assert!(message.contains(field), "{pointer}: {message}");
            }
        }
    }
}
