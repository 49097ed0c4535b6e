//! GitLab: `Push Hook`, `Tag Push Hook`, system hooks' push events and `Merge Request Hook`,
//! authenticated by the
//! clear-text `X-Gitlab-Token` or by a Standard Webhooks signature (`webhook-signature`).
//!
//! A configured GitLab secret that starts with `whsec_` is the hook's signing token (as GitLab
//! shows it); any other is its secret token. Both kinds may be configured at once.

use actix_web::http::header::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{
    Credential, NULL_SHA, Outcome, Provider, PullRequestDraft, Request, SamplePullRequest,
    SamplePush, SignedRequest, WebhookError, parse_json, pull_request_event, push_event, pusher,
    ref_update, repo_urls, required, required_text, sample_action, sample_owner_name, union_files,
    url_without_path,
};
use crate::event::{EventSource, ForgeRepo, PullRequestAction};
use crate::secret::{ExposeSecret, SecretString, ct_eq};

/// Configured secrets with this prefix are Standard Webhooks signing tokens; others are tokens
/// GitLab sends in clear in `X-Gitlab-Token`.
const SIGNING_PREFIX: &str = "whsec_";

/// How far `webhook-timestamp` may be from our clock, either way, before a signed request is
/// taken for a replay.
const TIMESTAMP_TOLERANCE_SECS: u64 = 5 * 60;

/// GitLab lists at most this many commits; without `total_commits_count` a full list may be cut.
const MAX_LISTED_COMMITS: usize = 20;

/// Signing keys and signatures are standard base64; keys are accepted with or without padding,
/// as the Standard Webhooks libraries do.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The hook's own id in samples; GitLab sends the same one for every delivery of a hook.
const WEBHOOK_UUID: &str = "0f6c6bd1-7b65-4d0e-9d43-3c1b7d3c2a10";

/// GitLab.com and self-managed GitLab.
pub struct GitLab;

/// What a system hook is about; only pushes are parsed further.
#[derive(Deserialize)]
struct Kind {
    #[serde(default)]
    object_kind: Option<String>,
    #[serde(default)]
    event_name: Option<String>,
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref", default)]
    git_ref: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    project: Option<Project>,
    #[serde(default)]
    repository: Option<LegacyRepository>,
    #[serde(default)]
    commits: Option<Vec<Commit>>,
    #[serde(default)]
    total_commits_count: Option<u64>,
    /// The pusher's username; system hooks may carry only `user_name`.
    #[serde(default)]
    user_username: serde_json::Value,
    #[serde(default)]
    user_name: serde_json::Value,
}

#[derive(Deserialize)]
struct Project {
    /// The numeric project id the API takes.
    #[serde(default)]
    id: Option<u64>,
    /// `group/subgroup/project`: with `web_url`, it gives the instance's base URL.
    #[serde(default)]
    path_with_namespace: Option<String>,
    #[serde(default)]
    git_http_url: Option<String>,
    #[serde(default)]
    git_ssh_url: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    default_branch: Option<String>,
}

/// The deprecated `repository` object, still sent beside `project`.
#[derive(Deserialize)]
struct LegacyRepository {
    #[serde(default)]
    git_http_url: Option<String>,
    #[serde(default)]
    git_ssh_url: Option<String>,
    #[serde(default)]
    homepage: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// A `Merge Request Hook`.
#[derive(Deserialize)]
struct MergeRequestPayload {
    /// The target project.
    #[serde(default)]
    project: Option<Project>,
    #[serde(default)]
    object_attributes: Option<MergeRequest>,
    /// The user who acted (GitLab names the author only by id).
    #[serde(default)]
    user: serde_json::Value,
}

#[derive(Deserialize)]
struct MergeRequest {
    #[serde(default)]
    iid: Option<u64>,
    #[serde(default)]
    action: Option<String>,
    /// The head before this update; sent only when the update pushed commits.
    #[serde(default)]
    oldrev: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    target_branch: Option<String>,
    #[serde(default)]
    source_branch: Option<String>,
    #[serde(default)]
    source_project_id: Option<u64>,
    #[serde(default)]
    target_project_id: Option<u64>,
    /// Null when the source project was deleted.
    #[serde(default)]
    source: Option<Project>,
    #[serde(default)]
    target: Option<Project>,
    #[serde(default)]
    last_commit: Option<LastCommit>,
    /// `{base_sha, head_sha, start_sha}` where an instance sends it.
    #[serde(default)]
    diff_refs: serde_json::Value,
}

#[derive(Deserialize)]
struct LastCommit {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    added: Option<Vec<String>>,
    #[serde(default)]
    modified: Option<Vec<String>>,
    #[serde(default)]
    removed: Option<Vec<String>>,
}

impl Commit {
    /// System hooks and older payloads may list commits without their files.
    fn lists_files(&self) -> bool {
        self.added.is_some() || self.modified.is_some() || self.removed.is_some()
    }
}

impl Provider for GitLab {
    fn name(&self) -> &'static str {
        "gitlab"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        headers.contains_key("x-gitlab-event")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        // A signature that can be checked decides alone: a token beside it must not excuse a
        // signature that fails, and one that verifies already proves the sender. With no
        // signing key configured, the token decides, as it would if the signature were
        // stripped, so a hook with both credentials works with either configured.
        let signed = request.headers.contains_key("webhook-signature");
        let has_key = secrets
            .iter()
            .any(|s| s.expose_secret().starts_with(SIGNING_PREFIX));
        let has_token = request.headers.contains_key("x-gitlab-token");
        if signed && (has_key || !has_token) {
            signature_credential(request, secrets)
        } else {
            token_credential(request, secrets)
        }
    }

    fn check_secret(&self, secret: &str) -> Result<(), String> {
        if secret.starts_with(SIGNING_PREFIX) && signing_key(secret).is_none() {
            return Err(format!(
                "a {SIGNING_PREFIX} signing token must be base64 after the prefix, as GitLab shows it"
            ));
        }
        Ok(())
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        ["idempotency-key", "webhook-id", "x-gitlab-event-uuid"]
            .into_iter()
            .filter_map(|h| request.header(h))
            .map(str::trim)
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        match request.header("x-gitlab-event").unwrap_or_default() {
            "Push Hook" | "Tag Push Hook" => {}
            "Merge Request Hook" => return self.parse_merge_request(request),
            "System Hook" => {
                let kind: Kind = parse_json("GitLab system hook", request.body)?;
                let kind = kind.object_kind.or(kind.event_name).unwrap_or_default();
                if kind != "push" && kind != "tag_push" {
                    return Ok(Outcome::Ignored(format!(
                        "system hook {kind:?} is not acted on"
                    )));
                }
            }
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        }
        let push: Push = parse_json("GitLab push", request.body)?;
        if push.project.is_none() && push.repository.is_none() {
            return Ok(Outcome::Ignored(
                "push without a project or repository".into(),
            ));
        }
        let default_branch = push.project.as_ref().and_then(|p| p.default_branch.clone());
        let (project, legacy) = (push.project, push.repository);
        let project_urls = project
            .map(|p| [p.git_http_url, p.git_ssh_url, p.web_url])
            .unwrap_or_default();
        let legacy_urls = legacy
            .map(|r| [r.git_http_url, r.git_ssh_url, r.homepage, r.url])
            .unwrap_or_default();
        let urls = match repo_urls(project_urls.into_iter().chain(legacy_urls)) {
            Ok(urls) => urls,
            Err(ignored) => return Ok(ignored),
        };
        let git_ref = push.git_ref.unwrap_or_default();
        if git_ref.trim().is_empty() {
            return Err(WebhookError::BadPayload(
                "GitLab push payload has no ref".into(),
            ));
        }
        let pushed_by = pusher([Some(&push.user_username), Some(&push.user_name)]);
        let moved = ref_update(git_ref, push.before, push.after);
        let changed_files = changed_files(
            push.commits.as_deref(),
            push.total_commits_count,
            moved.created || moved.deleted,
        );
        Ok(Outcome::Event(push_event(
            EventSource::Gitlab,
            self.delivery(request),
            urls,
            vec![moved],
            changed_files,
            default_branch,
            pushed_by,
        )?))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let tag = push.git_ref.starts_with("refs/tags/");
        let kind = if tag { "tag_push" } else { "push" };
        let web_url = push.repo.strip_suffix(".git").unwrap_or(push.repo);
        let commits: Vec<serde_json::Value> = push
            .files
            .map(|files| {
                vec![serde_json::json!({
                    "id": push.after,
                    "message": "capstan webhook sample\n",
                    "title": "capstan webhook sample",
                    "added": [], "modified": files, "removed": [],
                })]
            })
            .unwrap_or_default();
        let body = serde_json::json!({
            "object_kind": kind,
            "event_name": kind,
            "before": push.before.unwrap_or(NULL_SHA),
            "after": push.after.unwrap_or(NULL_SHA),
            "ref": push.git_ref,
            "ref_protected": false,
            "checkout_sha": push.after,
            "user_name": "Capstan",
            "user_username": super::SAMPLE_PUSHER,
            "project": {
                "web_url": web_url,
                "git_http_url": push.repo,
                "default_branch": push.default_branch,
            },
            "total_commits_count": commits.len(),
            "commits": commits,
            "repository": { "url": push.repo, "homepage": web_url, "git_http_url": push.repo },
        });
        let event = if tag { "Tag Push Hook" } else { "Push Hook" };
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-gitlab-event", event.to_owned()),
                ("x-gitlab-event-uuid", push.delivery.to_owned()),
                ("x-gitlab-webhook-uuid", WEBHOOK_UUID.to_owned()),
                ("idempotency-key", push.delivery.to_owned()),
                ("user-agent", "GitLab/18.6.0".to_owned()),
            ],
        );
        match secret {
            Some(secret) if secret.starts_with(SIGNING_PREFIX) => {
                let timestamp = jiff::Timestamp::now().as_second().to_string();
                let key = signing_key(secret).unwrap_or_else(|| secret.as_bytes().to_vec());
                let signature = sign(&key, push.delivery, &timestamp, &request.body);
                request.add_header("webhook-id", push.delivery.to_owned());
                request.add_header("webhook-timestamp", timestamp);
                request.add_header("webhook-signature", signature);
            }
            Some(token) => request.add_header("x-gitlab-token", token.to_owned()),
            None => {}
        }
        request
    }

    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        const TARGET_ID: u64 = 14;
        const FORK_ID: u64 = 27;
        let base = pr.api_url.trim_end_matches('/');
        let base = base.strip_suffix("/api/v4").unwrap_or(base);
        let project = |url: &str, id: u64| {
            let (namespace, name) = sample_owner_name(url);
            let path = format!("{namespace}/{name}");
            let web = format!("{base}/{path}");
            serde_json::json!({
                "id": id,
                "name": name,
                "description": "",
                "web_url": web,
                "avatar_url": null,
                "git_ssh_url": "",
                "git_http_url": url,
                "namespace": namespace,
                "visibility_level": 0,
                "path_with_namespace": path,
                "default_branch": pr.base_ref,
                "ci_config_path": "",
                "homepage": web,
                "url": url,
                "ssh_url": "",
                "http_url": url,
            })
        };
        let target = project(pr.repo_url, TARGET_ID);
        let (source, source_id) = match pr.fork_url {
            Some(fork) => (project(fork, FORK_ID), FORK_ID),
            None => (target.clone(), TARGET_ID),
        };
        let action = sample_action(pr.action, ["open", "update", "reopen", "close"]);
        let state = match pr.action {
            PullRequestAction::Closed => "closed",
            _ => "opened",
        };
        let mut attributes = serde_json::json!({
            "id": 99,
            "iid": pr.number,
            "target_branch": pr.base_ref,
            "source_branch": pr.head_ref,
            "source_project_id": source_id,
            "author_id": 1,
            "assignee_ids": [],
            "reviewer_ids": [],
            "title": pr.title,
            "created_at": "2026-01-01 00:00:00 UTC",
            "updated_at": "2026-01-01 00:00:00 UTC",
            "state_id": 1,
            "state": state,
            "draft": false,
            "work_in_progress": false,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "target_project_id": TARGET_ID,
            "description": "",
            "url": format!("{}/-/merge_requests/{}", target["web_url"].as_str().unwrap_or_default(), pr.number),
            "source": source,
            "target": target.clone(),
            "last_commit": {
                "id": pr.head_sha,
                "message": "capstan sample\n",
                "title": "capstan sample",
                "timestamp": "2026-01-01T00:00:00+00:00",
                "url": format!("{}/-/commit/{}", target["web_url"].as_str().unwrap_or_default(), pr.head_sha),
                "author": { "name": "Capstan", "email": "capstan@example.com" },
            },
            "labels": [],
            "action": action,
            "diff_refs": { "base_sha": pr.base_sha, "head_sha": pr.head_sha, "start_sha": pr.base_sha },
        });
        if pr.action == PullRequestAction::Updated {
            // GitLab sends the previous head only when commits were pushed.
            attributes["oldrev"] = serde_json::Value::String(NULL_SHA.replace('0', "1"));
        }
        let body = serde_json::json!({
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": {
                "id": 1,
                "name": "Capstan",
                "username": pr.author,
                "avatar_url": null,
                "email": "[REDACTED]",
            },
            "project": target,
            "object_attributes": attributes,
            "labels": [],
            "changes": {},
            "repository": {
                "name": sample_owner_name(pr.repo_url).1,
                "url": pr.repo_url,
                "description": "",
                "homepage": target["web_url"].clone(),
            },
        });
        let delivery = uuid::Uuid::new_v4().to_string();
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-gitlab-event", "Merge Request Hook".to_owned()),
                ("x-gitlab-event-uuid", delivery.clone()),
                ("x-gitlab-webhook-uuid", WEBHOOK_UUID.to_owned()),
                ("x-gitlab-instance", base.to_owned()),
                ("idempotency-key", delivery.clone()),
                ("user-agent", "GitLab/18.6.0".to_owned()),
            ],
        );
        match secret {
            Some(secret) if secret.starts_with(SIGNING_PREFIX) => {
                let timestamp = jiff::Timestamp::now().as_second().to_string();
                let key = signing_key(secret).unwrap_or_else(|| secret.as_bytes().to_vec());
                let signature = sign(&key, &delivery, &timestamp, &request.body);
                request.add_header("webhook-id", delivery);
                request.add_header("webhook-timestamp", timestamp);
                request.add_header("webhook-signature", signature);
            }
            Some(token) => request.add_header("x-gitlab-token", token.to_owned()),
            None => {}
        }
        request
    }
}

impl GitLab {
    /// A `Merge Request Hook`: open, update with new commits (`oldrev` sent), reopen, close and
    /// merge; an update that changed only metadata, approvals and the like are ignored.
    fn parse_merge_request(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        const HOST: &str = "GitLab";
        let payload: MergeRequestPayload = parse_json("GitLab merge request", request.body)?;
        let mr = required(HOST, "object_attributes", payload.object_attributes)?;
        let action = match mr.action.as_deref().unwrap_or_default() {
            "open" => PullRequestAction::Opened,
            "update" if mr.oldrev.as_deref().is_some_and(|r| !r.trim().is_empty()) => {
                PullRequestAction::Updated
            }
            "update" => {
                return Ok(Outcome::Ignored(
                    "merge request update without oldrev: no new commits".into(),
                ));
            }
            "reopen" => PullRequestAction::Reopened,
            "close" | "merge" => PullRequestAction::Closed,
            other => {
                return Ok(Outcome::Ignored(format!(
                    "merge request action {other:?} is not acted on"
                )));
            }
        };
        let number = required(HOST, "object_attributes.iid", mr.iid)?;
        let head_sha = required_text(
            HOST,
            "object_attributes.last_commit.id",
            mr.last_commit.and_then(|c| c.id),
        )?;
        let base_ref = required_text(HOST, "object_attributes.target_branch", mr.target_branch)?;
        let project = required(HOST, "project", payload.project.or(mr.target))?;
        let project_id = required(HOST, "project.id", project.id.or(mr.target_project_id))?;
        let web_url = required_text(HOST, "project.web_url", project.web_url)?;
        let base_url = project
            .path_with_namespace
            .as_deref()
            .and_then(|path| url_without_path(&web_url, path))
            .ok_or_else(|| {
                WebhookError::BadPayload(
                    "GitLab merge request payload has no project.path_with_namespace ending project.web_url".into(),
                )
            })?;
        let fork = matches!(
            (mr.source_project_id, mr.target_project_id),
            (Some(source), Some(target)) if source != target
        );
        let head_repo_urls = match mr.source.filter(|_| fork) {
            Some(source) => vec![source.git_http_url, source.git_ssh_url, source.web_url],
            None => Vec::new(),
        };
        let base_sha = mr
            .diff_refs
            .pointer("/base_sha")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Ok(Outcome::PullRequest(pull_request_event(
            EventSource::Gitlab,
            self.delivery(request),
            PullRequestDraft {
                action,
                number,
                title: mr.title,
                author: pusher([
                    payload.user.pointer("/username"),
                    payload.user.pointer("/name"),
                ]),
                html_url: mr.url,
                repo_urls: vec![project.git_http_url, project.git_ssh_url, Some(web_url)],
                base_ref,
                base_sha,
                head_sha,
                head_ref: mr.source_branch,
                head_repo_urls,
                api: ForgeRepo {
                    kind: EventSource::Gitlab,
                    api_url: format!("{base_url}/api/v4"),
                    owner: String::new(),
                    name: project_id.to_string(),
                },
            },
        )?))
    }
}

/// The union of the commits' files, or None when the list cannot be complete: a created or
/// deleted ref, no commits listed (a force push back, a branch created at an old commit), more
/// commits pushed than listed, or commits listed without their files.
fn changed_files(
    commits: Option<&[Commit]>,
    total: Option<u64>,
    created_or_deleted: bool,
) -> Option<Vec<String>> {
    let commits = commits.filter(|c| !c.is_empty())?;
    let complete = match total {
        Some(total) => u64::try_from(commits.len()).is_ok_and(|listed| total <= listed),
        None => commits.len() < MAX_LISTED_COMMITS,
    };
    if created_or_deleted || !complete || !commits.iter().all(Commit::lists_files) {
        return None;
    }
    Some(union_files(commits.iter().flat_map(|c| {
        [&c.added, &c.modified, &c.removed].into_iter().flatten()
    })))
}

/// `X-Gitlab-Token`: the configured token itself, compared in constant time.
fn token_credential(request: &Request<'_>, secrets: &[SecretString]) -> Credential {
    let Some(token) = request.headers.get("x-gitlab-token") else {
        return Credential::Absent;
    };
    let tokens: Vec<&SecretString> = secrets
        .iter()
        .filter(|s| !s.expose_secret().starts_with(SIGNING_PREFIX))
        .collect();
    if tokens.is_empty() {
        return Credential::Invalid(
            "the request carries X-Gitlab-Token but no GitLab token is configured to check it"
                .into(),
        );
    }
    // A header that is not text cannot equal any configured token.
    let presented = token.to_str().unwrap_or_default();
    if tokens.iter().any(|s| ct_eq(s, presented)) {
        Credential::Valid
    } else {
        Credential::Invalid("X-Gitlab-Token does not match".into())
    }
}

/// Standard Webhooks: `webhook-signature` lists `v1,<base64 HMAC-SHA256>` entries over
/// `{webhook-id}.{webhook-timestamp}.{body}`; any entry verified by any signing key passes.
fn signature_credential(request: &Request<'_>, secrets: &[SecretString]) -> Credential {
    let (Some(id), Some(timestamp), Some(header)) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
    ) else {
        return Credential::Invalid(
            "webhook-signature needs text webhook-id and webhook-timestamp headers beside it"
                .into(),
        );
    };
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .filter_map(|s| signing_key(s.expose_secret()))
        .collect();
    if keys.is_empty() {
        return Credential::Invalid(
            "the request is signed (webhook-signature) but no GitLab whsec_ signing token is configured"
                .into(),
        );
    }
    let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
        return Credential::Invalid("webhook-timestamp is not a Unix time in seconds".into());
    };
    if request.now.as_second().abs_diff(sent_at) > TIMESTAMP_TOLERANCE_SECS {
        return Credential::Invalid(
            "webhook-timestamp is more than 5 minutes away from this server's clock".into(),
        );
    }
    let mut signatures = Vec::new();
    for entry in header.split_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else {
            return Credential::Invalid("webhook-signature entry is not `v1,<base64>`".into());
        };
        // Other versions (asymmetric `v1a`) may sit beside ours; they are not ours to check.
        if version != "v1" {
            continue;
        }
        match BASE64.decode(encoded) {
            Ok(bytes) => signatures.push(bytes),
            Err(_) => {
                return Credential::Invalid("webhook-signature entry is not valid base64".into());
            }
        }
    }
    if signatures.is_empty() {
        return Credential::Invalid("webhook-signature carries no v1 signature".into());
    }
    let verified = keys.iter().any(|key| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(request.body);
        signatures
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
    });
    if verified {
        Credential::Valid
    } else {
        Credential::Invalid("webhook-signature does not match the body".into())
    }
}

/// The HMAC key of a `whsec_<base64>` signing token; None for tokens and undecodable values.
fn signing_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SIGNING_PREFIX)?;
    BASE64.decode(encoded.trim()).ok().filter(|k| !k.is_empty())
}

/// A `v1,<base64>` Standard Webhooks signature.
fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error arm cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RefUpdate;
    use crate::webhook::test_support::expect_event as event;

    const PUSH: &[u8] = include_bytes!("../../tests/fixtures/webhooks/gitlab/push.json");
    const TRUNCATED: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/gitlab/push_truncated.json");
    const CREATED: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/gitlab/branch_created.json");
    const DELETED: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/gitlab/branch_deleted.json");
    const TAG: &[u8] = include_bytes!("../../tests/fixtures/webhooks/gitlab/tag_push.json");
    const SYSTEM_PUSH: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/gitlab/system_push.json");
    const SYSTEM_OTHER: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/gitlab/system_project_create.json");
    const MERGE_REQUEST: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/gitlab/merge_request.json");

    const BEFORE: &str = "95790bf891e76fee5e1747ab589903a6a1f80f22";
    const AFTER: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    /// `whsec_` + base64 of 32 bytes, as GitLab generates signing tokens.
    const KEY: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const OTHER_KEY: &str = "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const NOW: i64 = 1_800_000_000;

    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        SignedRequest {
            headers: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
        }
        .header_map()
    }

    fn parse(event: &str, body: &[u8]) -> Result<Outcome, WebhookError> {
        let headers = header_map(&[
            ("x-gitlab-event", event),
            ("x-gitlab-event-uuid", "event-uuid-1"),
            ("idempotency-key", "idem-1"),
        ]);
        GitLab.parse(&Request::new(&headers, body))
    }

    fn urls() -> Vec<String> {
        [
            "https://gitlab.example.com/platform/deploy.git",
            "git@gitlab.example.com:platform/deploy.git",
            "https://gitlab.example.com/platform/deploy",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values
            .iter()
            .map(|v| SecretString::from((*v).to_owned()))
            .collect()
    }

    /// The verdict on a body signed with `key` at `sent_at`, judged at `NOW`.
    fn signed_verdict(key: &str, sent_at: i64, configured: &[&str], tamper: bool) -> Credential {
        let body = PUSH.to_vec();
        let timestamp = sent_at.to_string();
        let signature = sign(&signing_key(key).expect("key"), "msg-1", &timestamp, &body);
        let headers = header_map(&[
            ("x-gitlab-event", "Push Hook"),
            ("webhook-id", "msg-1"),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
        ]);
        let mut received = body;
        if tamper && let Some(b) = received.iter_mut().find(|b| **b == b'9') {
            *b = b'8';
        }
        let request = Request {
            headers: &headers,
            body: &received,
            now: jiff::Timestamp::from_second(NOW).expect("valid time"),
        };
        GitLab.authenticate(&request, &secrets(configured))
    }

    fn verdict(pairs: &[(&str, &str)], configured: &[&str]) -> Credential {
        let headers = header_map(pairs);
        let request = Request {
            headers: &headers,
            body: PUSH,
            now: jiff::Timestamp::from_second(NOW).expect("valid time"),
        };
        GitLab.authenticate(&request, &secrets(configured))
    }

    #[test]
    fn a_branch_push_carries_its_ref_every_url_the_files_and_the_default_branch() {
        let ev = event(parse("Push Hook", PUSH));
        assert_eq!(ev.source, EventSource::Gitlab);
        assert_eq!(ev.delivery.as_deref(), Some("idem-1"));
        assert_eq!(ev.repo_urls, urls());
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/main".into(),
                before: Some(BEFORE.into()),
                after: Some(AFTER.into()),
                created: false,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(
            ev.changed_files,
            Some(vec![
                "apps/api/deployment.yaml".to_owned(),
                "apps/api/hpa.yaml".to_owned(),
                "apps/worker/deployment.yaml".to_owned(),
            ])
        );
        assert_eq!(ev.default_branch.as_deref(), Some("main"));
    }

    #[test]
    fn the_pusher_is_the_username_else_the_display_name() {
        let fixture: serde_json::Value = serde_json::from_slice(PUSH).expect("json");
        assert_eq!(
            event(parse("Push Hook", PUSH)).pusher.as_deref(),
            Some("jdoe")
        );
        let system = include_bytes!("../../tests/fixtures/webhooks/gitlab/system_push.json");
        assert_eq!(
            event(parse("System Hook", system)).pusher.as_deref(),
            Some("jdoe")
        );
        let mut v = fixture.clone();
        v.as_object_mut().expect("object").remove("user_username");
        assert_eq!(
            event(parse("Push Hook", v.to_string().as_bytes()))
                .pusher
                .as_deref(),
            Some("Jane Doe")
        );
        let mut v = fixture;
        v["user_username"] = serde_json::json!({"odd": true});
        v["user_name"] = serde_json::Value::Null;
        let ev = event(parse("Push Hook", v.to_string().as_bytes()));
        assert_eq!(ev.pusher, None, "an odd shape is unknown, not a refusal");
        assert_eq!(ev.refs[0].after.as_deref(), Some(AFTER));
    }

    #[test]
    fn more_commits_pushed_than_listed_means_the_files_are_unknown() {
        let ev = event(parse("Push Hook", TRUNCATED));
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn created_and_deleted_branches_are_marked_and_their_files_unknown() {
        let created = event(parse("Push Hook", CREATED));
        assert_eq!(
            created.refs,
            vec![RefUpdate {
                name: "refs/heads/feature/login".into(),
                before: None,
                after: Some(AFTER.into()),
                created: true,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(created.changed_files, None);

        let deleted = event(parse("Push Hook", DELETED));
        assert_eq!(
            deleted.refs,
            vec![RefUpdate {
                name: "refs/heads/feature/login".into(),
                before: Some(BEFORE.into()),
                after: None,
                created: false,
                deleted: true,
                forced: false,
            }]
        );
        assert_eq!(deleted.changed_files, None);
    }

    #[test]
    fn a_tag_push_is_a_created_tag_ref() {
        let ev = event(parse("Tag Push Hook", TAG));
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.refs[0].name, "refs/tags/v1.4.0");
        assert!(ev.refs[0].created && !ev.refs[0].deleted);
        assert_eq!(
            ev.refs[0].after.as_deref(),
            Some("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")
        );
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.repo_urls, urls());
    }

    #[test]
    fn system_hook_pushes_are_events_and_other_system_events_are_ignored() {
        let ev = event(parse("System Hook", SYSTEM_PUSH));
        assert_eq!(ev.refs.len(), 1);
        assert_eq!(ev.refs[0].name, "refs/heads/main");
        assert_eq!(ev.repo_urls, urls());
        // System hooks list commits without their files.
        assert_eq!(ev.changed_files, None);
        assert!(matches!(
            parse("System Hook", SYSTEM_OTHER),
            Ok(Outcome::Ignored(reason)) if reason.contains("project_create")
        ));
    }

    #[test]
    fn other_events_are_ignored_not_refused() {
        assert!(matches!(parse("Note Hook", b"{}"), Ok(Outcome::Ignored(_))));
        assert!(matches!(
            parse("Pipeline Hook", b"not even json"),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn the_delivery_is_the_idempotency_key_then_webhook_id_then_event_uuid() {
        let delivery = |pairs: &[(&str, &str)]| {
            let headers = header_map(pairs);
            GitLab.delivery(&Request::new(&headers, b""))
        };
        let all = [
            ("x-gitlab-event-uuid", "event-uuid"),
            ("webhook-id", "webhook-id"),
            ("idempotency-key", "idem"),
        ];
        assert_eq!(delivery(&all).as_deref(), Some("idem"));
        assert_eq!(delivery(&all[..2]).as_deref(), Some("webhook-id"));
        assert_eq!(delivery(&all[..1]).as_deref(), Some("event-uuid"));
        assert_eq!(delivery(&[]), None);
    }

    #[test]
    fn regression_shapes_are_ignored_or_refused_never_events_without_a_repository() {
        let ignored: &[&[u8]] = &[
            br#"{"ref": "refs/heads/main", "after": "1"}"#,
            br#"{"ref": "refs/heads/main", "project": null, "repository": null}"#,
            br#"{"ref": "refs/heads/main", "project": {"web_url": "", "git_http_url": "  "}}"#,
            br#"{"ref": "refs/heads/main", "project": {}, "repository": {}}"#,
            b"[]",
        ];
        for body in ignored {
            assert!(
                matches!(parse("Push Hook", body), Ok(Outcome::Ignored(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let refused: &[&[u8]] = &[
            br#"{"ref": 5, "project": {"web_url": "https://x/y"}}"#,
            br#"{"ref": "", "project": {"web_url": "https://x/y"}}"#,
            br#"{"project": {"web_url": "https://x/y"}}"#,
            br#"{"ref": "refs/heads/a", "project": {"web_url": "https://x/y"}, "commits": {}}"#,
            br#"{"ref": "refs/heads/a", "project": "https://x/y"}"#,
            b"null",
        ];
        for body in refused {
            assert!(
                matches!(parse("Push Hook", body), Err(WebhookError::BadPayload(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn standard_webhooks_published_vector_is_reproduced_and_verifies() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("decodes");
        let body = br#"{"test": 2432232314}"#;
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body),
            expected
        );
        let headers = header_map(&[
            ("x-gitlab-event", "Push Hook"),
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", expected),
        ]);
        let request = Request {
            headers: &headers,
            body,
            now: jiff::Timestamp::from_second(1_614_265_330).expect("valid"),
        };
        assert_eq!(
            GitLab.authenticate(
                &request,
                &secrets(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
            ),
            Credential::Valid
        );
    }

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        assert_eq!(signed_verdict(KEY, NOW, &[KEY], false), Credential::Valid);
        assert!(matches!(
            signed_verdict(KEY, NOW, &[KEY], true),
            Credential::Invalid(_)
        ));
        assert!(matches!(
            signed_verdict(OTHER_KEY, NOW, &[KEY], false),
            Credential::Invalid(_)
        ));
        // Rotation: either configured key may verify.
        assert_eq!(
            signed_verdict(KEY, NOW, &["a-token", OTHER_KEY, KEY], false),
            Credential::Valid
        );
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_either_way_are_refused() {
        for sent_at in [NOW - 6 * 60, NOW + 6 * 60] {
            let Credential::Invalid(reason) = signed_verdict(KEY, sent_at, &[KEY], false) else {
                panic!("{sent_at} accepted");
            };
            assert!(reason.contains("webhook-timestamp"), "{reason}");
        }
        for sent_at in [NOW - 4 * 60, NOW + 4 * 60] {
            assert_eq!(
                signed_verdict(KEY, sent_at, &[KEY], false),
                Credential::Valid
            );
        }
    }

    #[test]
    fn any_v1_signature_in_the_list_may_match() {
        let timestamp = NOW.to_string();
        let good = sign(&signing_key(KEY).expect("key"), "msg-1", &timestamp, PUSH);
        let wrong = sign(
            &signing_key(OTHER_KEY).expect("key"),
            "msg-1",
            &timestamp,
            PUSH,
        );
        let list = format!("{wrong} v1a,c29tZXRoaW5nZWxzZQ== {good}");
        let base = [
            ("x-gitlab-event", "Push Hook"),
            ("webhook-id", "msg-1"),
            ("webhook-timestamp", timestamp.as_str()),
        ];
        let with = |signature: &str| {
            let mut pairs = base.to_vec();
            pairs.push(("webhook-signature", signature));
            verdict(&pairs, &[KEY])
        };
        assert_eq!(with(&list), Credential::Valid);
        assert!(matches!(with(&wrong), Credential::Invalid(_)));
        assert!(matches!(with("v1,not*base64"), Credential::Invalid(_)));
        assert!(matches!(with("v1a,c29tZQ=="), Credential::Invalid(_)));
        assert!(matches!(with("garbage"), Credential::Invalid(_)));
        assert!(matches!(with(""), Credential::Invalid(_)));
    }

    #[test]
    fn malformed_or_missing_signature_companions_are_refused() {
        let timestamp = NOW.to_string();
        let good = sign(&signing_key(KEY).expect("key"), "msg-1", &timestamp, PUSH);
        for bad_time in ["soon", "", "1.8e9", "99999999999999999999999"] {
            let pairs = [
                ("webhook-id", "msg-1"),
                ("webhook-timestamp", bad_time),
                ("webhook-signature", good.as_str()),
            ];
            assert!(
                matches!(verdict(&pairs, &[KEY]), Credential::Invalid(_)),
                "{bad_time:?}"
            );
        }
        let no_id = [
            ("webhook-timestamp", timestamp.as_str()),
            ("webhook-signature", good.as_str()),
        ];
        assert!(matches!(verdict(&no_id, &[KEY]), Credential::Invalid(_)));
    }

    #[test]
    fn a_correct_token_does_not_excuse_a_bad_signature() {
        let timestamp = NOW.to_string();
        let wrong = sign(
            &signing_key(OTHER_KEY).expect("key"),
            "msg-1",
            &timestamp,
            PUSH,
        );
        let pairs = [
            ("x-gitlab-token", "the-token"),
            ("webhook-id", "msg-1"),
            ("webhook-timestamp", timestamp.as_str()),
            ("webhook-signature", wrong.as_str()),
        ];
        assert!(matches!(
            verdict(&pairs, &["the-token", KEY]),
            Credential::Invalid(_)
        ));
    }

    #[test]
    fn without_a_signing_key_the_token_beside_a_signature_decides() {
        let timestamp = NOW.to_string();
        let unverifiable = sign(
            &signing_key(OTHER_KEY).expect("key"),
            "msg-1",
            &timestamp,
            PUSH,
        );
        let with_token = |token: &str| {
            let pairs = [
                ("x-gitlab-token", token),
                ("webhook-id", "msg-1"),
                ("webhook-timestamp", timestamp.as_str()),
                ("webhook-signature", unverifiable.as_str()),
            ];
            verdict(&pairs, &["the-token"])
        };
        assert_eq!(with_token("the-token"), Credential::Valid);
        assert!(matches!(with_token("guess"), Credential::Invalid(_)));
    }

    #[test]
    fn tokens_and_signing_keys_are_kept_apart() {
        let token = [("x-gitlab-token", "the-token")];
        assert_eq!(verdict(&token, &["the-token"]), Credential::Valid);
        assert_eq!(verdict(&token, &["old", "the-token"]), Credential::Valid);
        assert!(matches!(
            verdict(&token, &["other"]),
            Credential::Invalid(_)
        ));
        // A signing key is never compared as a token, even when the token equals it.
        assert!(matches!(
            verdict(&[("x-gitlab-token", KEY)], &[KEY]),
            Credential::Invalid(_)
        ));
        // A signed request needs a signing key; a token secret cannot verify it.
        assert!(matches!(
            signed_verdict(KEY, NOW, &["the-token"], false),
            Credential::Invalid(_)
        ));
        assert_eq!(verdict(&[], &["the-token", KEY]), Credential::Absent);
    }

    #[test]
    fn the_sample_signs_with_a_signing_key_and_is_received() {
        let files = vec!["apps/a.yaml".to_owned()];
        let push = SamplePush {
            repo: "https://gitlab.example.com/platform/deploy.git",
            git_ref: "refs/heads/main",
            before: Some(BEFORE),
            after: Some(AFTER),
            files: Some(&files),
            default_branch: "main",
            delivery: "d-7",
        };
        let request = GitLab.sample(&push, Some(KEY));
        assert!(
            !request.headers.iter().any(|(k, _)| k == "x-gitlab-token"),
            "a signing key must never be sent in clear"
        );
        let configured = super::super::WebhookSecrets::new()
            .with_secret("gitlab", SecretString::from(KEY.to_owned()))
            .expect("known provider");
        let headers = request.header_map();
        let received = super::super::receive(&Request::new(&headers, &request.body), &configured)
            .map_err(|(_, e)| e)
            .expect("accepted");
        let Outcome::Event(ev) = received.outcome else {
            panic!("not an event");
        };
        assert_eq!(received.delivery.as_deref(), Some("d-7"));
        assert_eq!(ev.changed_files, Some(files));
        assert_eq!(ev.default_branch.as_deref(), Some("main"));
    }

    mod merge_requests {
        use super::*;
        use crate::webhook::test_support::{
            edited, expect_bad_payload, expect_ignored, expect_pull_request,
        };

        const OPEN: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/gitlab/merge_request_open.json");
        const FORK: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/gitlab/merge_request_update_fork.json");
        const TITLE_ONLY: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/gitlab/merge_request_update_title.json");
        const APPROVED: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/gitlab/merge_request_approved.json");

        fn mr(body: &[u8]) -> Result<Outcome, WebhookError> {
            parse("Merge Request Hook", body)
        }

        #[test]
        fn an_opened_merge_request_carries_everything_a_preview_needs() {
            let pr = expect_pull_request(mr(OPEN));
            assert_eq!(pr.source, EventSource::Gitlab);
            assert_eq!(pr.action, PullRequestAction::Opened);
            assert_eq!(pr.number, 7, "the iid people see, not the global id");
            assert_eq!(pr.delivery.as_deref(), Some("idem-1"));
            assert_eq!(pr.title, "Raise the API replicas to 4");
            assert_eq!(pr.author.as_deref(), Some("jdoe"));
            assert_eq!(
                pr.html_url.as_deref(),
                Some("https://gitlab.example.com/platform/deploy/-/merge_requests/7")
            );
            assert_eq!(pr.repo_urls, urls());
            assert_eq!(pr.base_ref, "main");
            assert_eq!(
                pr.base_sha, None,
                "oldrev is not the base; no diff_refs sent"
            );
            assert_eq!(pr.head_sha, AFTER);
            assert_eq!(pr.head_ref.as_deref(), Some("feature/replicas"));
            assert!(pr.head_repo_urls.is_empty());
            assert_eq!(
                pr.api,
                ForgeRepo {
                    kind: EventSource::Gitlab,
                    api_url: "https://gitlab.example.com/api/v4".into(),
                    owner: String::new(),
                    name: "14".into(),
                }
            );
            // The older, shorter shape still parses.
            let old = expect_pull_request(mr(MERGE_REQUEST));
            assert_eq!((old.number, old.api.name.as_str()), (1, "15"));
        }

        #[test]
        fn each_action_maps_and_metadata_updates_and_approvals_are_ignored() {
            for (action, want) in [
                ("open", PullRequestAction::Opened),
                ("reopen", PullRequestAction::Reopened),
                ("close", PullRequestAction::Closed),
                ("merge", PullRequestAction::Closed),
            ] {
                let body = edited(
                    OPEN,
                    "/object_attributes/action",
                    Some(serde_json::json!(action)),
                );
                assert_eq!(expect_pull_request(mr(&body)).action, want, "{action}");
            }
            assert_eq!(
                expect_pull_request(mr(FORK)).action,
                PullRequestAction::Updated
            );
            let reason = expect_ignored(mr(TITLE_ONLY));
            assert!(reason.contains("oldrev"), "{reason}");
            let reason = expect_ignored(mr(APPROVED));
            assert!(reason.contains("approved"), "{reason}");
            for action in ["unapproved", "approval", "unapproval"] {
                let body = edited(
                    OPEN,
                    "/object_attributes/action",
                    Some(serde_json::json!(action)),
                );
                assert!(expect_ignored(mr(&body)).contains(action));
            }
        }

        #[test]
        fn a_fork_is_a_different_source_project_and_its_urls_are_the_head() {
            let pr = expect_pull_request(mr(FORK));
            assert_eq!(
                pr.head_repo_urls,
                [
                    "https://gitlab.example.com/jdoe/deploy.git",
                    "git@gitlab.example.com:jdoe/deploy.git",
                    "https://gitlab.example.com/jdoe/deploy"
                ]
            );
            assert_eq!(pr.repo_urls, urls());
            assert_eq!(
                pr.api.name, "14",
                "the target project hosts the merge request"
            );
            // A deleted source project: the head commit is still there in the target.
            let gone = edited(
                FORK,
                "/object_attributes/source",
                Some(serde_json::Value::Null),
            );
            assert!(expect_pull_request(mr(&gone)).head_repo_urls.is_empty());
        }

        #[test]
        fn self_managed_gitlab_under_a_path_prefix_keeps_the_prefix_in_its_api() {
            let mut body = edited(
                OPEN,
                "/project/web_url",
                Some(serde_json::json!(
                    "https://example.com/gitlab/platform/deploy"
                )),
            );
            body = edited(
                &body,
                "/project/git_http_url",
                Some(serde_json::json!(
                    "https://example.com/gitlab/platform/deploy.git"
                )),
            );
            let pr = expect_pull_request(mr(&body));
            assert_eq!(pr.api.api_url, "https://example.com/gitlab/api/v4");
            // A nested group: only the namespace path is dropped.
            let nested = edited(
                OPEN,
                "/project/web_url",
                Some(serde_json::json!(
                    "https://gitlab.example.com/platform/team/deploy"
                )),
            );
            let nested = edited(
                &nested,
                "/project/path_with_namespace",
                Some(serde_json::json!("platform/team/deploy")),
            );
            assert_eq!(
                expect_pull_request(mr(&nested)).api.api_url,
                "https://gitlab.example.com/api/v4"
            );
        }

        #[test]
        fn diff_refs_give_the_base_commit_when_sent() {
            let body = edited(
                OPEN,
                "/object_attributes/diff_refs",
                Some(
                    serde_json::json!({"base_sha": BEFORE, "head_sha": AFTER, "start_sha": BEFORE}),
                ),
            );
            assert_eq!(
                expect_pull_request(mr(&body)).base_sha.as_deref(),
                Some(BEFORE)
            );
        }

        #[test]
        fn missing_essentials_are_refused_naming_the_field() {
            for (pointer, field) in [
                (
                    "/object_attributes/last_commit",
                    "object_attributes.last_commit.id",
                ),
                (
                    "/object_attributes/last_commit/id",
                    "object_attributes.last_commit.id",
                ),
                (
                    "/object_attributes/target_branch",
                    "object_attributes.target_branch",
                ),
                ("/object_attributes/iid", "object_attributes.iid"),
                ("/object_attributes", "object_attributes"),
            ] {
                let message = expect_bad_payload(mr(&edited(OPEN, pointer, None)));
                assert!(message.contains(field), "{pointer}: {message}");
            }
            let short = edited(
                OPEN,
                "/object_attributes/last_commit/id",
                Some(serde_json::json!("da15608")),
            );
            assert!(expect_bad_payload(mr(&short)).contains("head_sha"));
            let unrelated = edited(
                OPEN,
                "/project/path_with_namespace",
                Some(serde_json::json!("other/project")),
            );
            assert!(expect_bad_payload(mr(&unrelated)).contains("path_with_namespace"));
        }

        #[test]
        fn the_sample_round_trips_with_a_token_and_with_a_signing_key() {
            let sample = crate::webhook::SamplePullRequest {
                repo_url: "https://gitlab.example.com/platform/deploy.git",
                api_url: "http://127.0.0.1:8929/api/v4",
                number: 12,
                action: PullRequestAction::Updated,
                base_ref: "main",
                base_sha: BEFORE,
                head_sha: AFTER,
                head_ref: "feature/x",
                fork_url: Some("https://gitlab.example.com/jdoe/deploy.git"),
                title: "Sample",
                author: "jdoe",
            };
            for secret in ["a-token", KEY] {
                let req = GitLab.sample_pull_request(&sample, Some(secret));
                let headers = req.header_map();
                let request = Request::new(&headers, &req.body);
                assert_eq!(
                    GitLab.authenticate(&request, &secrets(&[secret])),
                    Credential::Valid
                );
                let pr = expect_pull_request(GitLab.parse(&request));
                assert_eq!(pr.api.api_url, "http://127.0.0.1:8929/api/v4");
                assert_eq!(pr.action, PullRequestAction::Updated);
                assert_eq!(
                    pr.head_repo_urls[0],
                    "https://gitlab.example.com/jdoe/deploy.git"
                );
                assert_eq!(pr.base_sha.as_deref(), Some(BEFORE));
            }
        }
    }
}
