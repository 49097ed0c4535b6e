//! GitHub: `X-Hub-Signature-256` (never the legacy SHA-1 `X-Hub-Signature`), `push` and
//! `pull_request` events.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, Outcome, Provider, PullRequestDraft, Request, SamplePullRequest, SamplePush,
    Signature, SignedRequest, WebhookError, hmac_credential, is_fork, parse_json,
    pull_request_event, push_event, pusher, ref_update, repo_urls, required, required_text,
    sample_action, sample_owner_name, union_files, url_before,
};
use crate::event::{EventSource, ForgeRepo, PullRequestAction};
use crate::secret::SecretString;

/// GitHub truncates the commit list at this many commits; a full list means file lists are incomplete.
const MAX_LISTED_COMMITS: usize = 2048;

/// GitHub.com and GitHub Enterprise Server.
pub struct GitHub;

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    commits: Option<Vec<Commit>>,
    /// `{name, email}`: `name` is the pusher's login.
    #[serde(default)]
    pusher: serde_json::Value,
    /// The account that triggered the event (`login`).
    #[serde(default)]
    sender: serde_json::Value,
}

#[derive(Deserialize)]
struct Repository {
    /// `OWNER/REPO`.
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// `{login, …}`.
    #[serde(default)]
    owner: serde_json::Value,
    /// The repository in the REST API: `https://api.github.com/repos/OWNER/REPO`.
    #[serde(default)]
    url: Option<String>,
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

/// A `pull_request` event.
#[derive(Deserialize)]
struct PullRequestPayload {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    pull_request: Option<PullRequest>,
    /// The base repository, as `pull_request.base.repo`.
    #[serde(default)]
    repository: Option<Repository>,
    /// What an `edited` event changed (`base` when the base branch moved).
    #[serde(default)]
    changes: serde_json::Value,
}

#[derive(Deserialize)]
struct PullRequest {
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    /// The author (`login`).
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
struct Commit {
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
}

impl Provider for GitHub {
    fn name(&self) -> &'static str {
        "github"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        headers.contains_key("x-github-event")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        hmac_credential(request, "x-hub-signature-256", Signature::parse, secrets)
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        request.header("x-github-delivery").map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        match request.header("x-github-event").unwrap_or_default() {
            "ping" => return Ok(Outcome::Ignored("ping".into())),
            "push" => {}
            "pull_request" => return self.parse_pull_request(request),
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        }
        let push: Push = parse_json("GitHub push", request.body)?;
        let Some(repo) = push.repository else {
            return Ok(Outcome::Ignored("push without a repository".into()));
        };
        let urls = match repo_urls([repo.clone_url, repo.ssh_url, repo.html_url, repo.git_url]) {
            Ok(urls) => urls,
            Err(ignored) => return Ok(ignored),
        };
        if push.git_ref.trim().is_empty() {
            return Err(WebhookError::BadPayload(
                "GitHub push payload has an empty ref".into(),
            ));
        }
        let mut moved = ref_update(push.git_ref, push.before, push.after);
        moved.forced = push.forced;
        let changed_files = match push.commits {
            Some(commits)
                if !moved.created && !moved.deleted && commits.len() < MAX_LISTED_COMMITS =>
            {
                Some(union_files(
                    commits
                        .iter()
                        .flat_map(|c| [&c.added, &c.removed, &c.modified]),
                ))
            }
            _ => None,
        };
        Ok(Outcome::Event(push_event(
            EventSource::Github,
            self.delivery(request),
            urls,
            vec![moved],
            changed_files,
            repo.default_branch,
            pusher([push.pusher.pointer("/name"), push.sender.pointer("/login")]),
        )?))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let body = serde_json::json!({
            "ref": push.git_ref,
            "before": push.before.unwrap_or(super::NULL_SHA),
            "after": push.after.unwrap_or(super::NULL_SHA),
            "created": push.before.is_none(),
            "deleted": push.after.is_none(),
            "forced": false,
            "repository": {
                "clone_url": push.repo,
                "html_url": push.repo,
                "default_branch": push.default_branch,
            },
            "commits": push.files.map(|files| vec![serde_json::json!({
                "id": push.after, "added": [], "removed": [], "modified": files,
            })]),
            "head_commit": null,
            "pusher": { "name": super::SAMPLE_PUSHER, "email": "capstan@example.com" },
            "sender": { "login": super::SAMPLE_PUSHER, "type": "User" },
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-github-event", "push".to_owned()),
                ("x-github-delivery", push.delivery.to_owned()),
                ("user-agent", "GitHub-Hookshot/capstan".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature-256", signature);
        }
        request
    }

    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        let (owner, name) = sample_owner_name(pr.repo_url);
        let api = pr.api_url.trim_end_matches('/');
        let web = pr.repo_url.strip_suffix(".git").unwrap_or(pr.repo_url);
        let user = |login: &str| {
            serde_json::json!({
                "login": login,
                "id": 1,
                "node_id": "MDQ6VXNlcjE=",
                "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
                "url": format!("{api}/users/{login}"),
                "html_url": format!("https://github.com/{login}"),
                "type": "User",
                "site_admin": false,
            })
        };
        let repository = |owner: &str, name: &str, clone: &str| {
            let web = clone.strip_suffix(".git").unwrap_or(clone);
            serde_json::json!({
                "id": 35129377,
                "node_id": "MDEwOlJlcG9zaXRvcnkzNTEyOTM3Nw==",
                "name": name,
                "full_name": format!("{owner}/{name}"),
                "private": false,
                "owner": user(owner),
                "html_url": web,
                "fork": false,
                "url": format!("{api}/repos/{owner}/{name}"),
                "pulls_url": format!("{api}/repos/{owner}/{name}/pulls{{/number}}"),
                "git_url": "",
                "ssh_url": "",
                "clone_url": clone,
                "default_branch": pr.base_ref,
                "visibility": "public",
            })
        };
        let base_repo = repository(&owner, &name, pr.repo_url);
        let head_repo = match pr.fork_url {
            Some(fork) => {
                let (fork_owner, fork_name) = sample_owner_name(fork);
                let mut repo = repository(&fork_owner, &fork_name, fork);
                repo["fork"] = serde_json::Value::Bool(true);
                repo
            }
            None => base_repo.clone(),
        };
        let closed = pr.action == PullRequestAction::Closed;
        let body = serde_json::json!({
            "action": sample_action(pr.action, ["opened", "synchronize", "reopened", "closed"]),
            "number": pr.number,
            "pull_request": {
                "url": format!("{api}/repos/{owner}/{name}/pulls/{}", pr.number),
                "id": 279147437,
                "node_id": "MDExOlB1bGxSZXF1ZXN0Mjc5MTQ3NDM3",
                "html_url": format!("{web}/pull/{}", pr.number),
                "number": pr.number,
                "state": if closed { "closed" } else { "open" },
                "locked": false,
                "title": pr.title,
                "user": user(pr.author),
                "body": null,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "closed_at": null,
                "merged_at": null,
                "merge_commit_sha": null,
                "draft": false,
                "head": {
                    "label": format!("{}:{}", head_repo["owner"]["login"].as_str().unwrap_or_default(), pr.head_ref),
                    "ref": pr.head_ref,
                    "sha": pr.head_sha,
                    "user": head_repo["owner"].clone(),
                    "repo": head_repo,
                },
                "base": {
                    "label": format!("{owner}:{}", pr.base_ref),
                    "ref": pr.base_ref,
                    "sha": pr.base_sha,
                    "user": user(&owner),
                    "repo": base_repo.clone(),
                },
                "author_association": "OWNER",
                "merged": false,
                "commits": 1,
                "additions": 1,
                "deletions": 1,
                "changed_files": 1,
            },
            "repository": base_repo,
            "sender": user(pr.author),
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-github-event", "pull_request".to_owned()),
                ("x-github-delivery", uuid::Uuid::new_v4().to_string()),
                ("x-github-hook-id", "292430182".to_owned()),
                ("user-agent", "GitHub-Hookshot/capstan".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature-256", signature);
        }
        request
    }
}

impl GitHub {
    /// A `pull_request` event: opened, synchronize (new head commit), reopened, closed, and an
    /// `edited` that moved the base branch; every other action is ignored.
    fn parse_pull_request(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        const HOST: &str = "GitHub";
        let payload: PullRequestPayload = parse_json("GitHub pull_request", request.body)?;
        let action = match payload.action.as_deref().unwrap_or_default() {
            "opened" => PullRequestAction::Opened,
            "synchronize" => PullRequestAction::Updated,
            "reopened" => PullRequestAction::Reopened,
            "closed" => PullRequestAction::Closed,
            // A new base branch changes what the preview compares against.
            "edited" if payload.changes.pointer("/base").is_some() => PullRequestAction::Updated,
            other => {
                return Ok(Outcome::Ignored(format!(
                    "pull_request action {other:?} is not acted on"
                )));
            }
        };
        let pr = required(HOST, "pull_request", payload.pull_request)?;
        let number = required(HOST, "number", payload.number.or(pr.number))?;
        let head = required(HOST, "pull_request.head", pr.head)?;
        let base = required(HOST, "pull_request.base", pr.base)?;
        let head_sha = required_text(HOST, "pull_request.head.sha", head.sha)?;
        let base_ref = required_text(HOST, "pull_request.base.ref", base.git_ref)?;
        let repo = required(
            HOST,
            "pull_request.base.repo",
            base.repo.or(payload.repository),
        )?;
        let api = forge_repo(&repo)?;
        let head_repo_urls = match head.repo {
            Some(fork) if is_fork(fork.full_name.as_deref(), repo.full_name.as_deref()) => {
                vec![fork.clone_url, fork.ssh_url, fork.html_url, fork.git_url]
            }
            _ => Vec::new(),
        };
        Ok(Outcome::PullRequest(pull_request_event(
            EventSource::Github,
            self.delivery(request),
            PullRequestDraft {
                action,
                number,
                title: pr.title,
                author: pusher([pr.user.pointer("/login")]),
                html_url: pr.html_url,
                repo_urls: vec![repo.clone_url, repo.ssh_url, repo.html_url, repo.git_url],
                base_ref,
                base_sha: base.sha,
                head_sha,
                head_ref: head.git_ref,
                head_repo_urls,
                api,
            },
        )?))
    }
}

/// The base repository in GitHub's API: `repository.url` is `{api}/repos/OWNER/REPO`
/// (`https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server).
fn forge_repo(repo: &Repository) -> Result<ForgeRepo, WebhookError> {
    let api_url = repo
        .url
        .as_deref()
        .and_then(|u| url_before(u, "/repos/"))
        .ok_or_else(|| {
            WebhookError::BadPayload(
                "GitHub pull request payload has no usable repository.url ({api}/repos/OWNER/REPO)"
                    .into(),
            )
        })?;
    let (full_owner, full_name) = repo
        .full_name
        .as_deref()
        .and_then(|f| f.split_once('/'))
        .unwrap_or_default();
    let owner = repo
        .owner
        .pointer("/login")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(full_owner);
    let name = repo.name.as_deref().unwrap_or(full_name);
    Ok(ForgeRepo {
        kind: EventSource::Github,
        api_url,
        owner: owner.to_owned(),
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;
    use crate::event::PushEvent;

    fn parse_fixture(event: &str, body: &[u8]) -> Result<Outcome, WebhookError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-github-event"),
            HeaderValue::from_str(event).expect("header"),
        );
        headers.insert(
            HeaderName::from_static("x-github-delivery"),
            HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        );
        GitHub.parse(&Request::new(&headers, body))
    }

    fn event(body: &[u8]) -> PushEvent {
        match parse_fixture("push", body) {
            Ok(Outcome::Event(ev)) => ev,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn a_branch_push_lists_every_changed_file_and_url() {
        let ev = event(include_bytes!(
            "../../tests/fixtures/webhooks/github/push.json"
        ));
        assert_eq!(ev.source, EventSource::Github);
        assert_eq!(
            ev.delivery.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(
            ev.repo_urls,
            [
                "https://github.com/octo-org/gitops.git",
                "git@github.com:octo-org/gitops.git",
                "https://github.com/octo-org/gitops",
                "git://github.com/octo-org/gitops.git"
            ]
        );
        assert_eq!(ev.refs.len(), 1);
        let r = &ev.refs[0];
        assert_eq!(r.name, "refs/heads/main");
        assert_eq!(
            r.before.as_deref(),
            Some("4544205a385319fd846d5df4ed2e3b8173529d78")
        );
        assert_eq!(
            r.after.as_deref(),
            Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
        );
        assert!(!r.created && !r.deleted && !r.forced);
        assert_eq!(
            ev.changed_files.as_deref(),
            Some(
                &[
                    "apps/old/cm.yaml".to_owned(),
                    "apps/web/deployment.yaml".to_owned(),
                    "apps/worker/deployment.yaml".to_owned(),
                    "apps/worker/service.yaml".to_owned()
                ][..]
            )
        );
        assert_eq!(ev.default_branch.as_deref(), Some("main"));
    }

    #[test]
    fn tags_created_and_deleted_refs_carry_no_file_list() {
        let tag = event(include_bytes!(
            "../../tests/fixtures/webhooks/github/push-tag.json"
        ));
        assert_eq!(tag.refs[0].name, "refs/tags/v1.4.0");
        assert!(tag.refs[0].created && tag.refs[0].before.is_none());
        assert_eq!(tag.changed_files, None);

        let created = event(include_bytes!(
            "../../tests/fixtures/webhooks/github/push-branch-created.json"
        ));
        assert!(created.refs[0].created);
        assert_eq!(
            created.changed_files, None,
            "a new branch's commits are not the change"
        );

        let deleted = event(include_bytes!(
            "../../tests/fixtures/webhooks/github/push-branch-deleted.json"
        ));
        let r = &deleted.refs[0];
        assert!(r.deleted && r.after.is_none());
        assert_eq!(
            r.before.as_deref(),
            Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
        );
        assert_eq!(deleted.changed_files, None);

        let forced = event(include_bytes!(
            "../../tests/fixtures/webhooks/github/push-forced.json"
        ));
        assert!(forced.refs[0].forced);
    }

    #[test]
    fn ping_and_other_events_are_answered_without_work() {
        let ping = include_bytes!("../../tests/fixtures/webhooks/github/ping.json");
        assert!(matches!(
            parse_fixture("ping", ping),
            Ok(Outcome::Ignored(_))
        ));
        for other in ["package", "issues", "pull_request_review", "create", ""] {
            assert!(
                matches!(parse_fixture(other, b"{}"), Ok(Outcome::Ignored(_))),
                "{other}"
            );
        }
    }

    #[test]
    fn a_full_commit_list_means_the_file_list_is_incomplete() {
        let mut v: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../../tests/fixtures/webhooks/github/push.json"
        ))
        .expect("json");
        let one = v["commits"][0].clone();
        v["commits"] = serde_json::Value::Array(vec![one; MAX_LISTED_COMMITS]);
        assert_eq!(event(v.to_string().as_bytes()).changed_files, None);
    }

    #[test]
    fn the_pusher_is_the_pushers_login_else_the_sender() {
        let fixture: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../../tests/fixtures/webhooks/github/push.json"
        ))
        .expect("json");
        assert_eq!(
            event(fixture.to_string().as_bytes()).pusher.as_deref(),
            Some("Codertocat")
        );
        let mut v = fixture.clone();
        v["pusher"] = serde_json::json!({"email": "x@example.com"});
        v["sender"] = serde_json::json!({"login": "octo-bot"});
        assert_eq!(
            event(v.to_string().as_bytes()).pusher.as_deref(),
            Some("octo-bot")
        );
        // Odd shapes leave the pusher unknown; the push itself still counts.
        for (pusher, sender) in [
            (serde_json::Value::Null, serde_json::Value::Null),
            (serde_json::json!("alice"), serde_json::json!(7)),
            (
                serde_json::json!({"name": "  "}),
                serde_json::json!({"login": ["x"]}),
            ),
        ] {
            let mut v = fixture.clone();
            v["pusher"] = pusher;
            v["sender"] = sender;
            let ev = event(v.to_string().as_bytes());
            assert_eq!(ev.pusher, None, "{v}");
            assert_eq!(ev.refs[0].name, "refs/heads/main");
        }
        let mut v = fixture;
        v.as_object_mut().expect("object").remove("pusher");
        v.as_object_mut().expect("object").remove("sender");
        assert_eq!(event(v.to_string().as_bytes()).pusher, None);
    }

    #[test]
    fn crash_shapes_are_ignored_or_refused() {
        for (body, ignored) in [
            (&b"{\"ref\": \"refs/heads/x\"}"[..], true),
            (b"{\"ref\": \"refs/heads/x\", \"repository\": null}", true),
            (b"{\"ref\": \"refs/heads/x\", \"repository\": {\"clone_url\": \"\"}}", true),
            (b"{\"ref\": \"refs/heads/x\", \"repository\": {\"clone_url\": \" \", \"html_url\": null}}", true),
            (b"{\"ref\": 5, \"repository\": {\"clone_url\": \"https://h/o/r\"}}", false),
            (b"{\"ref\": \"\", \"repository\": {\"clone_url\": \"https://h/o/r\"}}", false),
            (b"{\"ref\": \"refs/heads/x\", \"repository\": {\"clone_url\": \"https://h/o/r\"}, \"commits\": {}}", false),
            (b"[]", false),
        ] {
            let r = parse_fixture("push", body);
            if ignored {
                assert!(matches!(r, Ok(Outcome::Ignored(_))), "{r:?}");
            } else {
                assert!(matches!(r, Err(WebhookError::BadPayload(_))), "{r:?}");
            }
        }
    }

    mod pull_requests {
        use super::*;
        use crate::webhook::test_support::{
            edited, expect_bad_payload, expect_ignored, expect_pull_request,
        };

        const OPENED: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/github/pull_request-opened.json");
        const FORK: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/github/pull_request-synchronize-fork.json"
        );
        const LABELED: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/github/pull_request-labeled.json");
        const HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

        fn parse(body: &[u8]) -> Result<Outcome, WebhookError> {
            parse_fixture("pull_request", body)
        }

        fn with_action(action: &str) -> Vec<u8> {
            edited(OPENED, "/action", Some(serde_json::json!(action)))
        }

        #[test]
        fn an_opened_pull_request_carries_everything_a_preview_needs() {
            let pr = expect_pull_request(parse(OPENED));
            assert_eq!(pr.source, EventSource::Github);
            assert_eq!(pr.action, PullRequestAction::Opened);
            assert_eq!(pr.number, 42);
            assert_eq!(
                pr.delivery.as_deref(),
                Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
            );
            assert_eq!(pr.title, "Raise the API replicas to 4");
            assert_eq!(pr.author.as_deref(), Some("Codertocat"));
            assert_eq!(
                pr.html_url.as_deref(),
                Some("https://github.com/octo-org/gitops/pull/42")
            );
            assert_eq!(
                pr.repo_urls,
                [
                    "https://github.com/octo-org/gitops.git",
                    "git@github.com:octo-org/gitops.git",
                    "https://github.com/octo-org/gitops",
                    "git://github.com/octo-org/gitops.git"
                ]
            );
            assert_eq!(pr.base_ref, "main");
            assert_eq!(
                pr.base_sha.as_deref(),
                Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
            );
            assert_eq!(pr.head_sha, HEAD);
            assert_eq!(pr.head_ref.as_deref(), Some("feature/replicas"));
            assert!(pr.head_repo_urls.is_empty(), "same repository: no fork");
            assert_eq!(pr.changed_files, None);
            assert_eq!(
                pr.api,
                ForgeRepo {
                    kind: EventSource::Github,
                    api_url: "https://api.github.com".into(),
                    owner: "octo-org".into(),
                    name: "gitops".into(),
                }
            );
        }

        #[test]
        fn each_action_maps_and_the_others_are_ignored_with_their_name() {
            for (action, want) in [
                ("opened", PullRequestAction::Opened),
                ("synchronize", PullRequestAction::Updated),
                ("reopened", PullRequestAction::Reopened),
                ("closed", PullRequestAction::Closed),
            ] {
                assert_eq!(
                    expect_pull_request(parse(&with_action(action))).action,
                    want
                );
            }
            let reason = expect_ignored(parse(LABELED));
            assert!(reason.contains("labeled"), "{reason}");
            for action in ["edited", "assigned", "ready_for_review", "review_requested"] {
                let reason = expect_ignored(parse(&with_action(action)));
                assert!(reason.contains(action), "{reason}");
            }
        }

        #[test]
        fn an_edit_that_moves_the_base_branch_is_an_update() {
            let body = edited(
                &with_action("edited"),
                "/changes",
                Some(
                    serde_json::json!({"base": {"ref": {"from": "develop"}, "sha": {"from": HEAD}}}),
                ),
            );
            let pr = expect_pull_request(parse(&body));
            assert_eq!(pr.action, PullRequestAction::Updated);
            assert_eq!(pr.base_ref, "main");
        }

        #[test]
        fn a_fork_s_urls_are_the_head_repository() {
            let pr = expect_pull_request(parse(FORK));
            assert_eq!(pr.action, PullRequestAction::Updated);
            assert_eq!(
                pr.head_repo_urls,
                [
                    "https://github.com/Codertocat/gitops.git",
                    "git@github.com:Codertocat/gitops.git",
                    "https://github.com/Codertocat/gitops",
                    "git://github.com/Codertocat/gitops.git"
                ]
            );
            assert_eq!(pr.repo_urls[0], "https://github.com/octo-org/gitops.git");
            assert_eq!(
                pr.api.owner, "octo-org",
                "comments go to the base repository"
            );
            // A deleted fork leaves `head.repo` null: the head commit is still previewed.
            let gone = edited(
                FORK,
                "/pull_request/head/repo",
                Some(serde_json::Value::Null),
            );
            let pr = expect_pull_request(parse(&gone));
            assert!(pr.head_repo_urls.is_empty());
            assert_eq!(pr.head_sha, HEAD);
        }

        #[test]
        fn github_enterprise_serves_its_api_under_api_v3() {
            let mut body = OPENED.to_vec();
            for pointer in ["/repository/url", "/pull_request/base/repo/url"] {
                body = edited(
                    &body,
                    pointer,
                    Some(serde_json::json!(
                        "https://github.example.com/api/v3/repos/octo-org/gitops"
                    )),
                );
            }
            let pr = expect_pull_request(parse(&body));
            assert_eq!(pr.api.api_url, "https://github.example.com/api/v3");
            assert_eq!(
                (pr.api.owner.as_str(), pr.api.name.as_str()),
                ("octo-org", "gitops")
            );
        }

        #[test]
        fn missing_or_malformed_essentials_are_refused_naming_the_field() {
            for (pointer, field) in [
                ("/pull_request/head/sha", "pull_request.head.sha"),
                ("/pull_request/base/ref", "pull_request.base.ref"),
                ("/number", "number"),
                ("/pull_request", "pull_request"),
            ] {
                let mut body = edited(OPENED, pointer, None);
                if pointer == "/number" {
                    body = edited(&body, "/pull_request/number", None);
                }
                let message = expect_bad_payload(parse(&body));
                assert!(message.contains(field), "{pointer}: {message}");
            }
            for (pointer, value, field) in [
                (
                    "/pull_request/head/sha",
                    serde_json::json!("6dcb09b"),
                    "head_sha",
                ),
                (
                    "/pull_request/head/sha",
                    serde_json::json!(""),
                    "pull_request.head.sha",
                ),
                (
                    "/pull_request/base/ref",
                    serde_json::json!("a b"),
                    "base_ref",
                ),
                (
                    "/pull_request/base/sha",
                    serde_json::json!("xyz"),
                    "base_sha",
                ),
                ("/number", serde_json::json!(0), "number"),
                ("/number", serde_json::json!("42"), "payload"),
                (
                    "/pull_request/base/repo/url",
                    serde_json::json!("https://github.com/octo-org/gitops"),
                    "repository.url",
                ),
            ] {
                let mut body = edited(OPENED, pointer, Some(value));
                if pointer == "/pull_request/base/repo/url" {
                    body = edited(&body, "/repository/url", Some(serde_json::json!("x")));
                }
                let message = expect_bad_payload(parse(&body));
                assert!(message.contains(field), "{pointer}: {message}");
            }
            // Without any repository URL no Application could match: refused, not dropped.
            let mut body = OPENED.to_vec();
            for key in ["clone_url", "ssh_url", "html_url", "git_url"] {
                body = edited(&body, &format!("/pull_request/base/repo/{key}"), None);
            }
            let message = expect_bad_payload(parse(&body));
            assert!(message.contains("repo_urls"), "{message}");
        }

        #[test]
        fn free_text_is_cut_and_cleaned_not_refused() {
            let long = format!("a\u{7}b{}", "x".repeat(5000));
            let body = edited(OPENED, "/pull_request/title", Some(serde_json::json!(long)));
            let pr = expect_pull_request(parse(&body));
            assert_eq!(pr.title.chars().count(), crate::webhook::MAX_TITLE_CHARS);
            assert!(pr.title.starts_with("abx"));
            let body = edited(
                OPENED,
                "/pull_request/html_url",
                Some(serde_json::json!("javascript:alert(1)")),
            );
            assert_eq!(expect_pull_request(parse(&body)).html_url, None);
        }
    }
}
