//! Bitbucket Cloud: `repo:push` with every entry of `push.changes` and the `pullrequest:*`
//! events, signed by `X-Hub-Signature: sha256=<hex>` when the hook has a secret.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, Outcome, Provider, PullRequestDraft, Request, SamplePullRequest, SamplePush,
    Signature, SignedRequest, WebhookError, hmac_credential, is_fork, parse_json,
    pull_request_event, push_event, pusher, ref_update, repo_urls, required, required_text,
    sample_owner_name, url_before,
};
use crate::domain::repo_url::{RepoUrl, Scheme};
use crate::event::{EventSource, ForgeRepo, PullRequestAction, RefUpdate};

/// Bitbucket Cloud's REST API, unless the payload's own links say otherwise.
const API_URL: &str = "https://api.bitbucket.org/2.0";
use crate::secret::SecretString;

/// Where Bitbucket Cloud serves repositories when the payload names no other host.
const BITBUCKET_HOST: &str = "bitbucket.org";

/// bitbucket.org.
pub struct BitbucketCloud;

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    push: Option<Push>,
    /// The user who pushed (`nickname`, `display_name`).
    #[serde(default)]
    actor: serde_json::Value,
}

#[derive(Deserialize)]
struct Repository {
    /// `workspace/slug`.
    #[serde(default)]
    full_name: Option<String>,
    /// `{slug, …}`.
    #[serde(default)]
    workspace: serde_json::Value,
    #[serde(default)]
    links: Option<Links>,
    /// Not in the documented webhook payload; read when present (the REST API has it).
    #[serde(default)]
    mainbranch: Option<Branch>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    html: Option<Link>,
    /// The repository in the REST API: `{api}/repositories/workspace/slug`.
    #[serde(rename = "self", default)]
    api: Option<Link>,
}

/// A `pullrequest:*` event.
#[derive(Deserialize)]
struct PullRequestPayload {
    #[serde(default)]
    pullrequest: Option<PullRequest>,
    /// The destination repository.
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct PullRequest {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    /// `{nickname, display_name, …}`.
    #[serde(default)]
    author: serde_json::Value,
    #[serde(default)]
    source: Option<Endpoint>,
    #[serde(default)]
    destination: Option<Endpoint>,
    #[serde(default)]
    links: Option<Links>,
}

/// `source` or `destination` of a pull request.
#[derive(Deserialize)]
struct Endpoint {
    #[serde(default)]
    branch: Option<Branch>,
    #[serde(default)]
    commit: Option<Target>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    href: Option<String>,
}

#[derive(Deserialize)]
struct Branch {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Push {
    #[serde(default)]
    changes: Option<Vec<Change>>,
}

#[derive(Deserialize)]
struct Change {
    /// The ref after the push; null when it was deleted.
    #[serde(default)]
    new: Option<RefState>,
    /// The ref before the push; null when it was created.
    #[serde(default)]
    old: Option<RefState>,
    #[serde(default)]
    forced: Option<bool>,
}

#[derive(Deserialize)]
struct RefState {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    target: Option<Target>,
}

#[derive(Deserialize)]
struct Target {
    #[serde(default)]
    hash: Option<String>,
}

impl Provider for BitbucketCloud {
    fn name(&self) -> &'static str {
        "bitbucket-cloud"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        headers.contains_key("x-hook-uuid")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        hmac_credential(request, "x-hub-signature", Signature::parse, secrets)
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        request.header("x-request-uuid").map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        match request.header("x-event-key").unwrap_or_default() {
            "repo:push" => {}
            key if key.starts_with("pullrequest:") => return self.parse_pull_request(request, key),
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        }
        let payload: Payload = parse_json("Bitbucket Cloud push", request.body)?;
        let Some(repo) = payload.repository else {
            return Ok(Outcome::Ignored("push without a repository".into()));
        };
        let html = repo
            .links
            .and_then(|l| l.html)
            .and_then(|h| h.href)
            .filter(|h| !h.trim().is_empty());
        let (https, ssh) = clone_urls(html.as_deref(), repo.full_name.as_deref());
        let urls = match repo_urls([https, ssh, html]) {
            Ok(urls) => urls,
            Err(ignored) => return Ok(ignored),
        };
        let Some(changes) = payload.push.and_then(|p| p.changes) else {
            return Err(WebhookError::BadPayload(
                "Bitbucket Cloud repo:push payload has no push.changes".into(),
            ));
        };
        let refs: Vec<RefUpdate> = changes.into_iter().filter_map(ref_change).collect();
        if refs.is_empty() {
            return Ok(Outcome::Ignored(
                "the push lists no branch or tag change".into(),
            ));
        }
        Ok(Outcome::Event(push_event(
            EventSource::BitbucketCloud,
            self.delivery(request),
            urls,
            refs,
            // Bitbucket Cloud never lists files (only the diffstat API has them).
            None,
            repo.mainbranch.and_then(|b| b.name),
            pusher([
                payload.actor.pointer("/nickname"),
                payload.actor.pointer("/display_name"),
            ]),
        )?))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let (html, full_name) = web_location(push.repo);
        let state = |hash: Option<&str>| {
            hash.map(|hash| {
                let (kind, name) = match push.git_ref.strip_prefix("refs/tags/") {
                    Some(tag) => ("tag", tag),
                    None => (
                        "branch",
                        push.git_ref
                            .strip_prefix("refs/heads/")
                            .unwrap_or(push.git_ref),
                    ),
                };
                serde_json::json!({
                    "type": kind,
                    "name": name,
                    "target": { "type": "commit", "hash": hash },
                })
            })
        };
        let body = serde_json::json!({
            "actor": { "type": "user", "display_name": "Capstan", "nickname": super::SAMPLE_PUSHER },
            "repository": {
                "type": "repository",
                "full_name": full_name,
                "name": full_name.rsplit('/').next().unwrap_or_default(),
                "scm": "git",
                "is_private": true,
                "links": { "html": { "href": html } },
            },
            "push": { "changes": [{
                "new": state(push.after),
                "old": state(push.before),
                "created": push.before.is_none(),
                "closed": push.after.is_none(),
                "forced": false,
                "truncated": false,
                "commits": [],
            }] },
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-event-key", "repo:push".to_owned()),
                (
                    "x-hook-uuid",
                    "2d7a9c4e-5b1f-4c3a-8e6d-0a9b8c7d6e5f".to_owned(),
                ),
                ("x-request-uuid", push.delivery.to_owned()),
                ("x-attempt-number", "1".to_owned()),
                ("user-agent", "Bitbucket-Webhooks/2.0".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature", signature);
        }
        request
    }

    /// Bitbucket Cloud has no reopening (a declined pull request stays declined): a sample
    /// `Reopened` is sent as `pullrequest:updated`.
    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        let api = pr.api_url.trim_end_matches('/');
        let repository = |url: &str| {
            let (html, mut full_name) = web_location(url);
            if full_name.is_empty() {
                let (owner, name) = sample_owner_name(url);
                full_name = format!("{owner}/{name}");
            }
            let (workspace, slug) = full_name.split_once('/').unwrap_or_default();
            serde_json::json!({
                "type": "repository",
                "full_name": full_name,
                "name": slug,
                "uuid": "{9c1e7a52-2b34-4d6f-8e90-1a2b3c4d5e6f}",
                "links": {
                    "self": { "href": format!("{api}/repositories/{full_name}") },
                    "html": { "href": html },
                    "avatar": { "href": "https://bytebucket.org/ravatar/%7B9c1e7a52%7D?ts=default" },
                },
                "workspace": { "type": "workspace", "slug": workspace, "name": workspace },
            })
        };
        let destination = repository(pr.repo_url);
        let source = pr.fork_url.map_or_else(|| destination.clone(), repository);
        let author = serde_json::json!({
            "type": "user",
            "display_name": pr.author,
            "nickname": pr.author,
            "uuid": "{3a8b2c1d-4e5f-6789-abcd-ef0123456789}",
            "account_id": "557058:1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
        });
        let (key, state) = match pr.action {
            PullRequestAction::Opened => ("pullrequest:created", "OPEN"),
            PullRequestAction::Updated | PullRequestAction::Reopened => {
                ("pullrequest:updated", "OPEN")
            }
            PullRequestAction::Closed => ("pullrequest:fulfilled", "MERGED"),
        };
        let short = |sha: &str| sha.chars().take(12).collect::<String>();
        let html = destination["links"]["html"]["href"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let full_name = destination["full_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let body = serde_json::json!({
            "actor": author.clone(),
            "repository": destination.clone(),
            "pullrequest": {
                "type": "pullrequest",
                "id": pr.number,
                "title": pr.title,
                "description": "",
                "state": state,
                "author": author,
                "source": {
                    "branch": { "name": pr.head_ref },
                    "commit": { "type": "commit", "hash": short(pr.head_sha) },
                    "repository": source,
                },
                "destination": {
                    "branch": { "name": pr.base_ref },
                    "commit": { "type": "commit", "hash": short(pr.base_sha) },
                    "repository": destination,
                },
                "merge_commit": null,
                "participants": [],
                "reviewers": [],
                "close_source_branch": false,
                "closed_by": null,
                "reason": "",
                "created_on": "2026-01-01T00:00:00.000000+00:00",
                "updated_on": "2026-01-01T00:00:00.000000+00:00",
                "comment_count": 0,
                "task_count": 0,
                "links": {
                    "self": { "href": format!("{api}/repositories/{full_name}/pullrequests/{}", pr.number) },
                    "html": { "href": format!("{html}/pull-requests/{}", pr.number) },
                },
            },
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-event-key", key.to_owned()),
                (
                    "x-hook-uuid",
                    "2d7a9c4e-5b1f-4c3a-8e6d-0a9b8c7d6e5f".to_owned(),
                ),
                ("x-request-uuid", uuid::Uuid::new_v4().to_string()),
                ("x-attempt-number", "1".to_owned()),
                ("user-agent", "Bitbucket-Webhooks/2.0".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature", signature);
        }
        request
    }
}

impl BitbucketCloud {
    /// `pullrequest:created`, `:updated` (Bitbucket Cloud sends it for new commits and for edits
    /// alike), `:fulfilled` (merged) and `:rejected` (declined); comments, approvals and change
    /// requests are ignored.
    fn parse_pull_request(
        &self,
        request: &Request<'_>,
        key: &str,
    ) -> Result<Outcome, WebhookError> {
        const HOST: &str = "Bitbucket Cloud";
        let action = match key {
            "pullrequest:created" => PullRequestAction::Opened,
            "pullrequest:updated" => PullRequestAction::Updated,
            "pullrequest:fulfilled" | "pullrequest:rejected" => PullRequestAction::Closed,
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        };
        let payload: PullRequestPayload = parse_json("Bitbucket Cloud pull request", request.body)?;
        let pr = required(HOST, "pullrequest", payload.pullrequest)?;
        let number = required(HOST, "pullrequest.id", pr.id)?;
        let source = required(HOST, "pullrequest.source", pr.source)?;
        let destination = required(HOST, "pullrequest.destination", pr.destination)?;
        let head_sha = required_text(
            HOST,
            "pullrequest.source.commit.hash",
            source.commit.and_then(|c| c.hash),
        )?;
        let base_ref = required_text(
            HOST,
            "pullrequest.destination.branch.name",
            destination.branch.and_then(|b| b.name),
        )?;
        let repo = required(
            HOST,
            "repository",
            payload.repository.or(destination.repository),
        )?;
        let api = forge_repo(&repo)?;
        let head_repo_urls = match source.repository {
            Some(fork) if is_fork(fork.full_name.as_deref(), repo.full_name.as_deref()) => {
                let (https, ssh, html) = repository_urls(fork);
                vec![https, ssh, html]
            }
            _ => Vec::new(),
        };
        let html_url = pr.links.and_then(|l| l.html).and_then(|h| h.href);
        let (https, ssh, html) = repository_urls(repo);
        Ok(Outcome::PullRequest(pull_request_event(
            EventSource::BitbucketCloud,
            self.delivery(request),
            PullRequestDraft {
                action,
                number,
                title: pr.title,
                author: pusher([
                    pr.author.pointer("/nickname"),
                    pr.author.pointer("/display_name"),
                ]),
                html_url,
                repo_urls: vec![https, ssh, html],
                base_ref,
                base_sha: destination.commit.and_then(|c| c.hash),
                head_sha,
                head_ref: source.branch.and_then(|b| b.name),
                head_repo_urls,
                api,
            },
        )?))
    }
}

/// The https and ssh clone URLs and the web link of a repository, as push events name it.
fn repository_urls(repo: Repository) -> (Option<String>, Option<String>, Option<String>) {
    let html = repo
        .links
        .and_then(|l| l.html)
        .and_then(|h| h.href)
        .filter(|h| !h.trim().is_empty());
    let (https, ssh) = clone_urls(html.as_deref(), repo.full_name.as_deref());
    (https, ssh, html)
}

/// The repository in Bitbucket Cloud's API: the base is `https://api.bitbucket.org/2.0` unless
/// `links.self` names another; owner the workspace, name the repository slug.
fn forge_repo(repo: &Repository) -> Result<ForgeRepo, WebhookError> {
    let api_url = repo
        .links
        .as_ref()
        .and_then(|l| l.api.as_ref())
        .and_then(|l| l.href.as_deref())
        .and_then(|href| url_before(href, "/repositories/"))
        .unwrap_or_else(|| API_URL.to_owned());
    let (full_workspace, slug) = repo
        .full_name
        .as_deref()
        .and_then(|f| f.split_once('/'))
        .ok_or_else(|| {
            WebhookError::BadPayload(
                "Bitbucket Cloud pull request payload has no repository.full_name (workspace/slug)"
                    .into(),
            )
        })?;
    let workspace = repo
        .workspace
        .pointer("/slug")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(full_workspace);
    Ok(ForgeRepo {
        kind: EventSource::BitbucketCloud,
        api_url,
        owner: workspace.to_owned(),
        name: slug.to_owned(),
    })
}

/// One entry of `push.changes` as a ref update; None when it names no ref (or a Mercurial
/// bookmark or named branch, which Git never has).
fn ref_change(change: Change) -> Option<RefUpdate> {
    let created = change.old.is_none();
    let deleted = change.new.is_none();
    let state = change.new.as_ref().or(change.old.as_ref())?;
    let name = state.name.as_deref().filter(|n| !n.trim().is_empty())?;
    let prefix = match state.kind.as_deref() {
        Some("branch") => "refs/heads/",
        Some("tag") => "refs/tags/",
        _ => return None,
    };
    let hash = |s: Option<RefState>| s.and_then(|s| s.target).and_then(|t| t.hash);
    let mut update = ref_update(
        format!("{prefix}{name}"),
        hash(change.old),
        hash(change.new),
    );
    // The change says itself what happened; a missing hash does not make a ref new or gone.
    update.created = created;
    update.deleted = deleted;
    update.forced = change.forced.unwrap_or(false);
    Some(update)
}

/// The https and ssh clone URLs of `full_name`, which the payload does not carry. They are on
/// the host of the web link when that is not bitbucket.org (a proxy or a test double).
fn clone_urls(html: Option<&str>, full_name: Option<&str>) -> (Option<String>, Option<String>) {
    let web = html.and_then(|h| RepoUrl::parse(h).ok());
    let full_name = full_name
        .map(str::trim)
        .filter(|n| is_full_name(n))
        .map(str::to_owned)
        .or_else(|| {
            let web = web.as_ref().filter(|w| web_base(w).is_some())?;
            let segments = web.path_segments().join("/");
            is_full_name(&segments).then_some(segments)
        });
    let Some(full_name) = full_name else {
        return (None, None);
    };
    let (base, host) = web
        .as_ref()
        .and_then(|w| Some((web_base(w)?, w.origin()?.host)))
        .unwrap_or_else(|| {
            (
                format!("https://{BITBUCKET_HOST}"),
                BITBUCKET_HOST.to_owned(),
            )
        });
    (
        Some(format!("{base}/{full_name}.git")),
        Some(format!("git@{host}:{full_name}.git")),
    )
}

/// `scheme://host[:port]` of a web URL; None for ssh and local URLs.
fn web_base(url: &RepoUrl) -> Option<String> {
    let origin = url.origin()?;
    if !matches!(origin.scheme, Scheme::Http | Scheme::Https) {
        return None;
    }
    let port = match origin.scheme.default_port() {
        Some(default) if default != origin.port => format!(":{}", origin.port),
        _ => String::new(),
    };
    Some(format!(
        "{}://{}{port}",
        origin.scheme.as_str(),
        origin.host
    ))
}

/// Whether `name` is a plain `workspace/repository` pair, safe to put in a URL.
fn is_full_name(name: &str) -> bool {
    let mut parts = name.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// The web link and `workspace/repository` name Bitbucket Cloud would send for `repo`. A local
/// repository (tests, demos) keeps its path as the link, the only name that can match it.
fn web_location(repo: &str) -> (String, String) {
    let Some(url) = RepoUrl::parse(repo).ok().filter(|u| u.origin().is_some()) else {
        return (repo.to_owned(), String::new());
    };
    let full_name = url.path_segments().join("/");
    let base = web_base(&url).unwrap_or_else(|| match url.origin() {
        Some(o) => format!("https://{}", o.host),
        None => format!("https://{BITBUCKET_HOST}"),
    });
    (format!("{base}/{full_name}"), full_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_support::{expect_event as event, moved as update};

    const PUSH: &[u8] = include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud/push.json");
    const TAG: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud/tag_push.json");
    const CREATED: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud/branch_created.json");
    const DELETED: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud/branch_deleted.json");
    const MULTI: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud/multi_ref.json");
    const PULL_REQUEST: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud/pullrequest_created.json");

    const OLD: &str = "95790bf891e76fee5e1747ab589903a6a1f80f22";
    const NEW: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    const TAG_COMMIT: &str = "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7";

    fn parse(event_key: &str, body: &[u8]) -> Result<Outcome, WebhookError> {
        let headers = SignedRequest {
            headers: vec![
                ("x-event-key".into(), event_key.into()),
                ("x-hook-uuid".into(), "hook-1".into()),
                ("x-request-uuid".into(), "req-1".into()),
            ],
            body: Vec::new(),
        }
        .header_map();
        BitbucketCloud.parse(&Request::new(&headers, body))
    }

    #[test]
    fn a_branch_push_derives_clone_urls_and_leaves_files_unknown() {
        let ev = event(parse("repo:push", PUSH));
        assert_eq!(ev.source, EventSource::BitbucketCloud);
        assert_eq!(ev.delivery.as_deref(), Some("req-1"));
        assert_eq!(
            ev.repo_urls,
            vec![
                "https://bitbucket.org/acme/deploy.git".to_owned(),
                "git@bitbucket.org:acme/deploy.git".to_owned(),
                "https://bitbucket.org/acme/deploy".to_owned(),
            ]
        );
        assert_eq!(
            ev.refs,
            vec![update("refs/heads/main", Some(OLD), Some(NEW))]
        );
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.default_branch, None);
    }

    #[test]
    fn the_pusher_is_the_actors_nickname_else_display_name() {
        assert_eq!(
            event(parse("repo:push", PUSH)).pusher.as_deref(),
            Some("jdoe")
        );
        let mut v: serde_json::Value = serde_json::from_slice(PUSH).expect("json");
        v["actor"] = serde_json::json!({"type": "user", "display_name": "Jane Doe"});
        let body = v.to_string();
        assert_eq!(
            event(parse("repo:push", body.as_bytes())).pusher.as_deref(),
            Some("Jane Doe")
        );
        v["actor"] = serde_json::json!("not an object");
        let body = v.to_string();
        let ev = event(parse("repo:push", body.as_bytes()));
        assert_eq!((ev.pusher, ev.refs.len()), (None, 1));
    }

    #[test]
    fn tags_created_and_deleted_branches_are_marked() {
        let tag = event(parse("repo:push", TAG));
        assert_eq!(
            tag.refs,
            vec![update("refs/tags/v1.4.0", None, Some(TAG_COMMIT))]
        );
        let created = event(parse("repo:push", CREATED));
        assert_eq!(
            created.refs,
            vec![update("refs/heads/feature/login", None, Some(NEW))]
        );
        let deleted = event(parse("repo:push", DELETED));
        assert_eq!(
            deleted.refs,
            vec![update("refs/heads/feature/login", Some(OLD), None)]
        );
        for ev in [tag, created, deleted] {
            assert_eq!(ev.changed_files, None);
        }
    }

    #[test]
    fn every_change_of_a_push_becomes_a_ref_with_its_force_flag() {
        let ev = event(parse("repo:push", MULTI));
        let mut forced_main = update("refs/heads/main", Some(OLD), Some(NEW));
        forced_main.forced = true;
        assert_eq!(
            ev.refs,
            vec![
                forced_main,
                update("refs/heads/feature/login", Some(OLD), None),
                update("refs/tags/v1.4.0", None, Some(TAG_COMMIT)),
            ]
        );
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn other_events_are_ignored() {
        assert!(matches!(
            parse("pullrequest:comment_created", PULL_REQUEST),
            Ok(Outcome::Ignored(_))
        ));
        assert!(matches!(
            parse("repo:commit_status_updated", b"{"),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn a_self_hosted_looking_web_link_keeps_its_host_and_a_main_branch_is_read() {
        let body = br#"{"repository": {"full_name": "team/app",
            "links": {"html": {"href": "http://bb.internal:7990/team/app"}},
            "mainbranch": {"name": "trunk", "type": "branch"}},
            "push": {"changes": [{"new": {"type": "branch", "name": "trunk",
            "target": {"hash": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
            "old": {"type": "branch", "name": "trunk",
            "target": {"hash": "95790bf891e76fee5e1747ab589903a6a1f80f22"}}}]}}"#;
        let ev = event(parse("repo:push", body));
        assert_eq!(
            ev.repo_urls,
            vec![
                "http://bb.internal:7990/team/app.git".to_owned(),
                "git@bb.internal:team/app.git".to_owned(),
                "http://bb.internal:7990/team/app".to_owned(),
            ]
        );
        assert_eq!(ev.default_branch.as_deref(), Some("trunk"));
    }

    #[test]
    fn a_missing_full_name_is_read_from_the_web_link_and_a_strange_one_is_not_used() {
        let body =
            br#"{"repository": {"links": {"html": {"href": "https://bitbucket.org/acme/deploy"}}},
            "push": {"changes": [{"new": {"type": "branch", "name": "main"}, "old": null}]}}"#;
        let ev = event(parse("repo:push", body));
        assert_eq!(
            ev.repo_urls.first().map(String::as_str),
            Some("https://bitbucket.org/acme/deploy.git")
        );
        let body = br#"{"repository": {"full_name": "../../evil x",
            "links": {"html": {"href": "https://bitbucket.org/acme/deploy"}}},
            "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]}}"#;
        let ev = event(parse("repo:push", body));
        assert!(
            ev.repo_urls.iter().all(|u| !u.contains("evil")),
            "{:?}",
            ev.repo_urls
        );
    }

    #[test]
    fn regression_shapes_are_ignored_or_refused_never_events_without_repository_or_refs() {
        let ignored: &[&[u8]] = &[
            br#"{"push": {"changes": []}}"#,
            br#"{"repository": null, "push": {"changes": [{"new": {"type": "branch", "name": "m"}}]}}"#,
            br#"{"repository": {"full_name": "a/b"}, "push": {"changes": []}}"#,
            br#"{"repository": {"links": {"html": {"href": ""}}}, "push": {"changes": []}}"#,
            br#"{"repository": {"full_name": "a/b"}, "push": {"changes": [{"new": null, "old": null}]}}"#,
            br#"{"repository": {"full_name": "a/b"}, "push": {"changes": [{"new": {"type": "bookmark", "name": "m"}}]}}"#,
            br#"{"repository": {"full_name": "a/b"}, "push": {"changes": [{"new": {"type": "branch", "name": ""}}]}}"#,
        ];
        for body in ignored {
            assert!(
                matches!(parse("repo:push", body), Ok(Outcome::Ignored(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let refused: &[&[u8]] = &[
            br#"{"repository": {"full_name": "a/b"}}"#,
            br#"{"repository": {"full_name": "a/b"}, "push": {"changes": {}}}"#,
            br#"{"repository": {"full_name": "a/b", "links": {"html": "x"}}, "push": {"changes": []}}"#,
            br#"{"repository": {"full_name": "a/b"}, "push": {"changes": [{"new": {"name": 5}}]}}"#,
            b"\"x\"",
        ];
        for body in refused {
            assert!(
                matches!(parse("repo:push", body), Err(WebhookError::BadPayload(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_sample_for_a_local_repository_names_its_path() {
        let push = SamplePush {
            repo: "/srv/git/deploy.git",
            git_ref: "refs/heads/main",
            before: Some(OLD),
            after: Some(NEW),
            files: None,
            default_branch: "main",
            delivery: "d-1",
        };
        let request = BitbucketCloud.sample(&push, None);
        let headers = request.header_map();
        let ev = event(BitbucketCloud.parse(&Request::new(&headers, &request.body)));
        assert_eq!(ev.repo_urls, vec!["/srv/git/deploy.git".to_owned()]);
    }

    #[test]
    fn the_sample_has_bitbucket_cloud_headers_and_signs_the_body() {
        let push = SamplePush {
            repo: "git@bitbucket.org:acme/deploy.git",
            git_ref: "refs/tags/v2",
            before: None,
            after: Some(NEW),
            files: None,
            default_branch: "main",
            delivery: "d-9",
        };
        let request = BitbucketCloud.sample(&push, Some("s"));
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-event-key"), Some("repo:push"));
        assert_eq!(header("user-agent"), Some("Bitbucket-Webhooks/2.0"));
        assert_eq!(
            header("x-hub-signature"),
            Some(Signature::sign(b"s", &request.body).as_str())
        );
        let headers = request.header_map();
        let ev = event(BitbucketCloud.parse(&Request::new(&headers, &request.body)));
        assert_eq!(ev.refs, vec![update("refs/tags/v2", None, Some(NEW))]);
        assert_eq!(
            ev.repo_urls,
            vec![
                "https://bitbucket.org/acme/deploy.git".to_owned(),
                "git@bitbucket.org:acme/deploy.git".to_owned(),
                "https://bitbucket.org/acme/deploy".to_owned(),
            ]
        );
    }

    mod pull_requests {
        use super::*;
        use crate::webhook::test_support::{
            edited, expect_bad_payload, expect_ignored, expect_pull_request,
        };

        const CREATED: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/bitbucket-cloud/pullrequest_created_full.json"
        );
        const FORK: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/bitbucket-cloud/pullrequest_updated_fork.json"
        );
        const FULFILLED: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/bitbucket-cloud/pullrequest_fulfilled.json"
        );

        #[test]
        fn a_created_pull_request_carries_short_commits_and_the_workspace_api() {
            let pr = expect_pull_request(parse("pullrequest:created", CREATED));
            assert_eq!(pr.source, EventSource::BitbucketCloud);
            assert_eq!(pr.action, PullRequestAction::Opened);
            assert_eq!(pr.number, 7);
            assert_eq!(pr.delivery.as_deref(), Some("req-1"));
            assert_eq!(pr.title, "Raise the API replicas to 4");
            assert_eq!(pr.author.as_deref(), Some("jdoe"));
            assert_eq!(
                pr.html_url.as_deref(),
                Some("https://bitbucket.org/acme/deploy/pull-requests/7")
            );
            assert_eq!(
                pr.repo_urls,
                [
                    "https://bitbucket.org/acme/deploy.git",
                    "git@bitbucket.org:acme/deploy.git",
                    "https://bitbucket.org/acme/deploy"
                ]
            );
            assert_eq!(pr.base_ref, "main");
            assert_eq!(pr.base_sha.as_deref(), Some("95790bf891e7"));
            assert_eq!(
                pr.head_sha, "da1560886d4f",
                "Bitbucket Cloud sends 12 hex digits"
            );
            assert_eq!(pr.head_ref.as_deref(), Some("feature/replicas"));
            assert!(pr.head_repo_urls.is_empty());
            assert_eq!(
                pr.api,
                ForgeRepo {
                    kind: EventSource::BitbucketCloud,
                    api_url: "https://api.bitbucket.org/2.0".into(),
                    owner: "acme".into(),
                    name: "deploy".into(),
                }
            );
            // The shorter payload without links still parses, against the default API.
            let short = expect_pull_request(parse("pullrequest:created", PULL_REQUEST));
            assert_eq!(short.api.api_url, "https://api.bitbucket.org/2.0");
        }

        #[test]
        fn each_event_maps_and_comments_and_approvals_are_ignored() {
            for (key, body, want) in [
                ("pullrequest:created", CREATED, PullRequestAction::Opened),
                ("pullrequest:updated", FORK, PullRequestAction::Updated),
                (
                    "pullrequest:fulfilled",
                    FULFILLED,
                    PullRequestAction::Closed,
                ),
                ("pullrequest:rejected", CREATED, PullRequestAction::Closed),
            ] {
                assert_eq!(expect_pull_request(parse(key, body)).action, want, "{key}");
            }
            for key in [
                "pullrequest:approved",
                "pullrequest:unapproved",
                "pullrequest:comment_created",
                "pullrequest:changes_request_created",
            ] {
                assert!(expect_ignored(parse(key, CREATED)).contains(key));
            }
        }

        #[test]
        fn a_fork_is_another_full_name_and_its_clone_urls_are_the_head() {
            let pr = expect_pull_request(parse("pullrequest:updated", FORK));
            assert_eq!(
                pr.head_repo_urls,
                [
                    "https://bitbucket.org/jdoe/deploy.git",
                    "git@bitbucket.org:jdoe/deploy.git",
                    "https://bitbucket.org/jdoe/deploy"
                ]
            );
            assert_eq!(pr.api.owner, "acme");
        }

        #[test]
        fn another_api_base_in_the_self_link_is_followed() {
            let body = edited(
                CREATED,
                "/repository/links/self/href",
                Some(serde_json::json!(
                    "http://127.0.0.1:7990/2.0/repositories/acme/deploy"
                )),
            );
            let pr = expect_pull_request(parse("pullrequest:created", &body));
            assert_eq!(pr.api.api_url, "http://127.0.0.1:7990/2.0");
        }

        #[test]
        fn missing_or_short_commits_are_refused_naming_the_field() {
            for (pointer, field) in [
                (
                    "/pullrequest/source/commit",
                    "pullrequest.source.commit.hash",
                ),
                (
                    "/pullrequest/destination/branch",
                    "pullrequest.destination.branch.name",
                ),
                ("/pullrequest/id", "pullrequest.id"),
            ] {
                let message = expect_bad_payload(parse(
                    "pullrequest:created",
                    &edited(CREATED, pointer, None),
                ));
                assert!(message.contains(field), "{pointer}: {message}");
            }
            let short = edited(
                CREATED,
                "/pullrequest/source/commit/hash",
                Some(serde_json::json!("da15608")),
            );
            let message = expect_bad_payload(parse("pullrequest:created", &short));
            assert!(message.contains("head_sha"), "{message}");
        }
    }
}
