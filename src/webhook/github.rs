//! GitHub: `X-Hub-Signature-256` (never the legacy SHA-1 `X-Hub-Signature`) and `push` events.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, Outcome, Provider, Request, SamplePush, Signature, SignedRequest, WebhookError,
    hmac_credential, parse_json, push_event, pusher, ref_update, repo_urls, union_files,
};
use crate::event::EventSource;
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
        for other in ["package", "issues", "pull_request", "create", ""] {
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
}
