//! GitHub: `X-Hub-Signature-256` (never the legacy SHA-1 `X-Hub-Signature`) and `push` events.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, Outcome, Provider, Request, SamplePush, Signature, SignedRequest, WebhookError,
    hmac_credential, parse_json, push_event, ref_update, repo_urls, union_files,
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
        )))
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
