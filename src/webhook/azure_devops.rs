//! Azure DevOps (and Azure DevOps Server) service hooks: HTTP Basic credentials, the
//! `git.push` event, whose `refUpdates` lists every ref one push moved, and the
//! `git.pullrequest.*` events.
//!
//! Azure DevOps signs nothing: the service-hook subscription's Basic user name and password are
//! the credential. Each configured secret is `user:password`; a secret without `:` is a password
//! with an empty user name. Basic credentials cover no body, so a body changed in transit cannot
//! be noticed: serve the webhook over HTTPS.

use actix_web::http::header::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{
    Credential, NULL_SHA, Outcome, Provider, PullRequestDraft, Request, SamplePullRequest,
    SamplePush, SignedRequest, WebhookError, parse_json, pull_request_event, push_event, pusher,
    ref_update, repo_urls, required, required_text, sample_owner_name, url_before,
};
use crate::event::{EventSource, ForgeRepo, PullRequestAction};
use crate::secret::{ExposeSecret, SecretString, ct_eq};

/// Azure DevOps Services and Server.
pub struct AzureDevOps;

/// A service-hook notification; only `git.push` is acted on.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    resource: Option<Resource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    #[serde(default)]
    ref_updates: Option<Vec<RefUpdate>>,
    #[serde(default)]
    repository: Option<Repository>,
    /// The identity that pushed (`uniqueName`, `displayName`).
    #[serde(default)]
    pushed_by: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefUpdate {
    name: String,
    #[serde(default)]
    old_object_id: Option<String>,
    #[serde(default)]
    new_object_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Repository {
    #[serde(default)]
    remote_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
    /// A full ref (`refs/heads/main`).
    #[serde(default)]
    default_branch: Option<String>,
}

/// A `git.pullrequest.*` notification.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestNotification {
    /// `{text, …}`: the only place that says what an update changed.
    #[serde(default)]
    message: serde_json::Value,
    #[serde(default)]
    resource: Option<PullRequest>,
    /// `{collection: {baseUrl}, account: {baseUrl}, …}`.
    #[serde(default)]
    resource_containers: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequest {
    #[serde(default)]
    pull_request_id: Option<u64>,
    /// `active`, `completed` or `abandoned`.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    title: Option<String>,
    /// `{uniqueName, displayName, …}`.
    #[serde(default)]
    created_by: serde_json::Value,
    #[serde(default)]
    source_ref_name: Option<String>,
    #[serde(default)]
    target_ref_name: Option<String>,
    #[serde(default)]
    last_merge_source_commit: Option<CommitRef>,
    #[serde(default)]
    last_merge_target_commit: Option<CommitRef>,
    #[serde(default)]
    repository: Option<PullRequestRepository>,
    /// Where the source branch lives when it is a fork (`{name, repository}`).
    #[serde(default)]
    fork_source: Option<ForkSource>,
    /// `{web: {href}, …}`.
    #[serde(rename = "_links", default)]
    links: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitRef {
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForkSource {
    #[serde(default)]
    repository: Option<PullRequestRepository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestRepository {
    #[serde(default)]
    id: Option<String>,
    /// `https://dev.azure.com/org[/project]/_apis/git/repositories/{id}`.
    #[serde(default)]
    url: Option<String>,
    /// `{id, name, …}`.
    #[serde(default)]
    project: serde_json::Value,
    #[serde(default)]
    remote_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
}

/// The notification id, which Azure DevOps keeps when it retries a delivery.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
}

/// The `user:password` a configured secret stands for.
fn expected_credentials(secret: &SecretString) -> SecretString {
    let value = secret.expose_secret();
    if value.contains(':') {
        secret.clone()
    } else {
        SecretString::from(format!(":{value}"))
    }
}

/// The `user:password` to send for a configured secret (see [`expected_credentials`]).
fn basic_header(secret: &str) -> String {
    let credentials = if secret.contains(':') {
        secret.to_owned()
    } else {
        format!(":{secret}")
    };
    format!("Basic {}", STANDARD.encode(credentials))
}

impl Provider for AzureDevOps {
    fn name(&self) -> &'static str {
        "azure-devops"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        headers.contains_key("x-vss-activityid")
    }

    /// The whole `user:password` is compared at once, in constant time, so a wrong user name
    /// fails exactly like a wrong password.
    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        let Some(value) = request.headers.get("authorization") else {
            return Credential::Absent;
        };
        if secrets.is_empty() {
            return Credential::Invalid(
                "the request carries credentials (Authorization) but no secret is configured to verify them".into(),
            );
        }
        let Some(encoded) = value.to_str().ok().and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        }) else {
            return Credential::Invalid(
                "Authorization: only Basic credentials are accepted".into(),
            );
        };
        let Some(presented) = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(SecretString::from)
        else {
            return Credential::Invalid(
                "Authorization: Basic credentials are not base64 text".into(),
            );
        };
        if secrets
            .iter()
            .any(|s| ct_eq(&expected_credentials(s), presented.expose_secret()))
        {
            Credential::Valid
        } else {
            Credential::Invalid("Authorization: the Basic credentials do not match".into())
        }
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        serde_json::from_slice::<Envelope>(request.body)
            .ok()
            .and_then(|e| e.id)
            .filter(|id| !id.trim().is_empty())
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        let notification: Notification = parse_json("Azure DevOps service hook", request.body)?;
        match notification.event_type.as_deref() {
            Some("git.push") => {}
            Some(
                kind @ ("git.pullrequest.created"
                | "git.pullrequest.updated"
                | "git.pullrequest.merged"),
            ) => return self.parse_pull_request(request, kind),
            other => {
                return Ok(Outcome::Ignored(format!(
                    "Azure DevOps event {:?} is not acted on",
                    other.unwrap_or_default()
                )));
            }
        }
        let Some(resource) = notification.resource else {
            return Ok(Outcome::Ignored(
                "git.push without a resource (set the subscription's resource details to send to All)".into(),
            ));
        };
        let Some(repo) = resource.repository else {
            return Ok(Outcome::Ignored("git.push without a repository".into()));
        };
        let updates = resource.ref_updates.unwrap_or_default();
        if updates.is_empty() {
            // CVE-2025-59538: Argo CD indexed the first entry of an empty list.
            return Ok(Outcome::Ignored(
                "git.push with no refUpdates: no ref to refresh".into(),
            ));
        }
        let urls = match repo_urls([repo.remote_url, repo.ssh_url, repo.web_url]) {
            Ok(urls) => urls,
            Err(ignored) => return Ok(ignored),
        };
        let mut refs = Vec::with_capacity(updates.len());
        for update in updates {
            if update.name.trim().is_empty() {
                return Err(WebhookError::BadPayload(
                    "Azure DevOps git.push has a refUpdate with an empty name".into(),
                ));
            }
            refs.push(ref_update(
                update.name,
                update.old_object_id,
                update.new_object_id,
            ));
        }
        let default_branch = repo
            .default_branch
            .map(|b| match b.strip_prefix("refs/heads/") {
                Some(short) => short.to_owned(),
                None => b,
            });
        Ok(Outcome::Event(push_event(
            EventSource::AzureDevops,
            self.delivery(request),
            urls,
            refs,
            // Azure DevOps lists commits without their files.
            None,
            default_branch,
            super::pusher([
                resource.pushed_by.pointer("/uniqueName"),
                resource.pushed_by.pointer("/displayName"),
            ]),
        )?))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let before = push.before.unwrap_or(NULL_SHA);
        let after = push.after.unwrap_or(NULL_SHA);
        let web = push.repo.trim_end_matches(".git");
        let name = web.rsplit('/').next().unwrap_or_default();
        let branch = push.git_ref.rsplit('/').next().unwrap_or_default();
        let project = serde_json::json!({
            "id": "a7573007-bbb3-4341-b726-0c4148a07853",
            "name": "Capstan",
            "url": "https://dev.azure.com/capstan/_apis/projects/a7573007-bbb3-4341-b726-0c4148a07853",
            "state": "wellFormed",
        });
        let pusher = serde_json::json!({
            "displayName": "Capstan",
            "id": "00ca946b-2fe9-4f2a-ae2f-40d5c48001bc",
            "uniqueName": "capstan@example.com",
        });
        let body = serde_json::json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "notificationId": 1,
            "id": push.delivery,
            "eventType": "git.push",
            "publisherId": "tfs",
            "message": {
                "text": format!("Capstan pushed updates to {name}:{branch}."),
                "html": format!("Capstan pushed updates to {name}:{branch}."),
                "markdown": format!("Capstan pushed updates to `{name}`:`{branch}`."),
            },
            "detailedMessage": {
                "text": format!("Capstan pushed a commit to {name}:{branch}."),
            },
            "resource": {
                "commits": [{
                    "commitId": after,
                    "author": {"name": "Capstan", "email": "capstan@example.com", "date": "2026-01-01T00:00:00Z"},
                    "committer": {"name": "Capstan", "email": "capstan@example.com", "date": "2026-01-01T00:00:00Z"},
                    "comment": "Update manifests",
                    "url": format!("{web}/commit/{after}"),
                }],
                "refUpdates": [{
                    "name": push.git_ref,
                    "oldObjectId": before,
                    "newObjectId": after,
                }],
                "repository": {
                    "id": "278d5cd2-584d-4b63-824a-2ba458937249",
                    "name": name,
                    "url": "https://dev.azure.com/capstan/_apis/git/repositories/278d5cd2-584d-4b63-824a-2ba458937249",
                    "project": project,
                    "defaultBranch": format!("refs/heads/{}", push.default_branch),
                    "remoteUrl": push.repo,
                },
                "pushedBy": pusher,
                "pushId": 14,
                "date": "2026-01-01T00:00:00Z",
                "url": "https://dev.azure.com/capstan/_apis/git/repositories/278d5cd2-584d-4b63-824a-2ba458937249/pushes/14",
            },
            "resourceVersion": "1.0",
            "resourceContainers": {
                "collection": {"id": "c12d0eb8-e382-443b-9f9c-c52cba5014c2"},
                "account": {"id": "f844ec47-a9db-4511-8281-8b63f4eaf94e"},
                "project": {"id": "a7573007-bbb3-4341-b726-0c4148a07853"},
            },
            "createdDate": "2026-01-01T00:00:00Z",
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-vss-activityid", uuid::Uuid::new_v4().to_string()),
                (
                    "x-vss-subscriptionid",
                    "00000000-0000-0000-0000-000000000000".to_owned(),
                ),
                ("user-agent", "VSServices/19.0 (capstan sample)".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            request.add_header("authorization", basic_header(secret));
        }
        request
    }

    fn sample_pull_request(
        &self,
        pr: &SamplePullRequest<'_>,
        secret: Option<&str>,
    ) -> SignedRequest {
        const PROJECT_ID: &str = "a7573007-bbb3-4341-b726-0c4148a07853";
        let org = pr.api_url.trim_end_matches('/');
        let repository = |url: &str, id: &str| {
            let web = url.trim_end_matches(".git");
            serde_json::json!({
                "id": id,
                "name": sample_owner_name(url).1,
                "url": format!("{org}/_apis/git/repositories/{id}"),
                "project": {
                    "id": PROJECT_ID,
                    "name": "Capstan",
                    "url": format!("{org}/_apis/projects/{PROJECT_ID}"),
                    "state": "wellFormed",
                    "visibility": "private",
                },
                "size": 1024,
                "remoteUrl": url,
                "sshUrl": "",
                "webUrl": web,
                "isDisabled": false,
            })
        };
        let repo = repository(pr.repo_url, "278d5cd2-584d-4b63-824a-2ba458937249");
        let web = repo["webUrl"].as_str().unwrap_or_default().to_owned();
        let (event, status, text) = match pr.action {
            PullRequestAction::Opened => (
                "git.pullrequest.created",
                "active",
                format!("{} created a new pull request", pr.author),
            ),
            PullRequestAction::Updated => (
                "git.pullrequest.updated",
                "active",
                format!(
                    "{} updated the source branch of pull request {} ({})",
                    pr.author, pr.number, pr.title
                ),
            ),
            PullRequestAction::Reopened => (
                "git.pullrequest.updated",
                "active",
                format!(
                    "{} reactivated pull request {} ({})",
                    pr.author, pr.number, pr.title
                ),
            ),
            PullRequestAction::Closed => (
                "git.pullrequest.merged",
                "completed",
                format!("{} has created a pull request merge commit", pr.author),
            ),
        };
        let created_by = serde_json::json!({
            "displayName": pr.author,
            "url": format!("{org}/_apis/Identities/00ca946b-2fe9-4f2a-ae2f-40d5c48001bc"),
            "id": "00ca946b-2fe9-4f2a-ae2f-40d5c48001bc",
            "uniqueName": pr.author,
            "imageUrl": format!("{org}/_api/_common/identityImage?id=00ca946b-2fe9-4f2a-ae2f-40d5c48001bc"),
        });
        let mut resource = serde_json::json!({
            "repository": repo,
            "pullRequestId": pr.number,
            "codeReviewId": pr.number,
            "status": status,
            "createdBy": created_by,
            "creationDate": "2026-01-01T00:00:00.0000000Z",
            "title": pr.title,
            "description": "",
            "sourceRefName": format!("refs/heads/{}", pr.head_ref),
            "targetRefName": format!("refs/heads/{}", pr.base_ref),
            "mergeStatus": "succeeded",
            "isDraft": false,
            "mergeId": "f5fc8381-3fb2-49fe-8a0d-27dcc2d6ef82",
            "lastMergeSourceCommit": {
                "commitId": pr.head_sha,
                "url": format!("{org}/_apis/git/repositories/278d5cd2-584d-4b63-824a-2ba458937249/commits/{}", pr.head_sha),
            },
            "lastMergeTargetCommit": {
                "commitId": pr.base_sha,
                "url": format!("{org}/_apis/git/repositories/278d5cd2-584d-4b63-824a-2ba458937249/commits/{}", pr.base_sha),
            },
            "reviewers": [],
            "url": format!("{org}/_apis/git/repositories/278d5cd2-584d-4b63-824a-2ba458937249/pullRequests/{}", pr.number),
            "_links": {
                "web": { "href": format!("{web}/pullrequest/{}", pr.number) },
                "statuses": { "href": format!("{org}/_apis/git/repositories/278d5cd2-584d-4b63-824a-2ba458937249/pullRequests/{}/statuses", pr.number) },
            },
            "supportsIterations": true,
            "artifactId": format!("vstfs:///Git/PullRequestId/{PROJECT_ID}%2f278d5cd2-584d-4b63-824a-2ba458937249%2f{}", pr.number),
        });
        if let Some(fork) = pr.fork_url {
            resource["forkSource"] = serde_json::json!({
                "name": format!("refs/heads/{}", pr.head_ref),
                "repository": repository(fork, "8f7d2a1c-0b5e-4c3d-9a6f-1e2d3c4b5a69"),
            });
        }
        let body = serde_json::json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "notificationId": 1,
            "id": uuid::Uuid::new_v4().to_string(),
            "eventType": event,
            "publisherId": "tfs",
            "message": { "text": text, "html": text, "markdown": text },
            "detailedMessage": { "text": text, "html": text, "markdown": text },
            "resource": resource,
            "resourceVersion": "1.0",
            "resourceContainers": {
                "collection": { "id": "c12d0eb8-e382-443b-9f9c-c52cba5014c2", "baseUrl": format!("{org}/") },
                "account": { "id": "f844ec47-a9db-4511-8281-8b63f4eaf94e", "baseUrl": format!("{org}/") },
                "project": { "id": PROJECT_ID, "baseUrl": format!("{org}/") },
            },
            "createdDate": "2026-01-01T00:00:00.000Z",
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-vss-activityid", uuid::Uuid::new_v4().to_string()),
                (
                    "x-vss-subscriptionid",
                    "00000000-0000-0000-0000-000000000000".to_owned(),
                ),
                ("user-agent", "VSServices/19.0 (capstan sample)".to_owned()),
            ],
        );
        if let Some(secret) = secret {
            request.add_header("authorization", basic_header(secret));
        }
        request
    }
}

impl AzureDevOps {
    /// `git.pullrequest.created`; `git.pullrequest.updated`, which Azure DevOps sends for every
    /// change (votes, title, status…) and whose message alone says what changed: a completed or
    /// abandoned status closes, "updated the source branch" (or no message at all: the
    /// subscription sends none) updates, "reactivated" reopens, anything else is ignored; and
    /// `git.pullrequest.merged` ("merge attempted", also sent while the pull request is still
    /// active), which closes only once the pull request is completed.
    fn parse_pull_request(
        &self,
        request: &Request<'_>,
        kind: &str,
    ) -> Result<Outcome, WebhookError> {
        const HOST: &str = "Azure DevOps";
        let notification: PullRequestNotification =
            parse_json("Azure DevOps pull request", request.body)?;
        let pr = required(HOST, "resource", notification.resource)?;
        let finished = matches!(pr.status.as_deref(), Some("completed" | "abandoned"));
        let text = notification
            .message
            .pointer("/text")
            .and_then(serde_json::Value::as_str)
            .map(str::to_ascii_lowercase);
        let action = match (kind, finished, text.as_deref()) {
            (_, true, _) => PullRequestAction::Closed,
            ("git.pullrequest.created", false, _) => PullRequestAction::Opened,
            ("git.pullrequest.updated", false, None) => PullRequestAction::Updated,
            ("git.pullrequest.updated", false, Some(t))
                if t.contains("updated the source branch") =>
            {
                PullRequestAction::Updated
            }
            ("git.pullrequest.updated", false, Some(t)) if t.contains("reactivated") => {
                PullRequestAction::Reopened
            }
            (kind, false, _) => {
                return Ok(Outcome::Ignored(format!(
                    "Azure DevOps {kind} of an active pull request without new source commits is not acted on"
                )));
            }
        };
        let number = required(HOST, "resource.pullRequestId", pr.pull_request_id)?;
        let head_sha = required_text(
            HOST,
            "resource.lastMergeSourceCommit.commitId",
            pr.last_merge_source_commit.and_then(|c| c.commit_id),
        )?;
        let base_ref = required_text(HOST, "resource.targetRefName", pr.target_ref_name)?;
        let repo = required(HOST, "resource.repository", pr.repository)?;
        let api = forge_repo(&repo, &notification.resource_containers)?;
        let head_repo_urls = match pr.fork_source.and_then(|f| f.repository) {
            Some(fork) if fork.id.is_some() && fork.id != repo.id => {
                vec![fork.remote_url, fork.ssh_url, fork.web_url]
            }
            _ => Vec::new(),
        };
        let html_url = pr
            .links
            .pointer("/web/href")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                let web = repo.web_url.as_deref()?.trim_end_matches('/');
                Some(format!("{web}/pullrequest/{number}"))
            });
        Ok(Outcome::PullRequest(pull_request_event(
            EventSource::AzureDevops,
            self.delivery(request),
            PullRequestDraft {
                action,
                number,
                title: pr.title,
                author: pusher([
                    pr.created_by.pointer("/uniqueName"),
                    pr.created_by.pointer("/displayName"),
                ]),
                html_url,
                repo_urls: vec![repo.remote_url, repo.ssh_url, repo.web_url],
                base_ref,
                base_sha: pr.last_merge_target_commit.and_then(|c| c.commit_id),
                head_sha,
                head_ref: pr.source_ref_name,
                head_repo_urls,
                api,
            },
        )?))
    }
}

/// The repository in Azure DevOps's API: the organisation (collection) URL from
/// `resourceContainers`, else `repository.url` before `/_apis/` without a project segment;
/// owner the project id (else name), name the repository id.
fn forge_repo(
    repo: &PullRequestRepository,
    containers: &serde_json::Value,
) -> Result<ForgeRepo, WebhookError> {
    let text = |v: &serde_json::Value, p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let project_id = text(&repo.project, "/id");
    let project_name = text(&repo.project, "/name");
    let from_containers = ["/collection/baseUrl", "/account/baseUrl"]
        .into_iter()
        .find_map(|p| text(containers, p))
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|u| u.trim_end_matches('/').to_owned());
    let from_repository = || {
        let base = url_before(repo.url.as_deref()?, "/_apis/")?;
        let (parent, last) = base.rsplit_once('/')?;
        let is_project = [&project_id, &project_name]
            .into_iter()
            .flatten()
            .any(|p| p.eq_ignore_ascii_case(last));
        Some(if is_project { parent.to_owned() } else { base })
    };
    let api_url = from_containers.or_else(from_repository).ok_or_else(|| {
        WebhookError::BadPayload(
            "Azure DevOps pull request payload has neither resourceContainers.collection.baseUrl nor resource.repository.url".into(),
        )
    })?;
    Ok(ForgeRepo {
        kind: EventSource::AzureDevops,
        api_url,
        owner: project_id.or(project_name).unwrap_or_default(),
        name: repo.id.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PushEvent, RefUpdate};
    use crate::webhook::{WebhookSecrets, receive};

    const CREDENTIALS: &str = "capstan:correct horse: battery";

    fn request(body: &[u8], authorization: Option<&str>) -> SignedRequest {
        let mut headers = vec![
            (
                "content-type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            ),
            (
                "x-vss-activityid".to_owned(),
                "9b4c7b4d-1b0e-4d23-a1d3-7e1f2a8d0c11".to_owned(),
            ),
        ];
        if let Some(a) = authorization {
            headers.push(("authorization".to_owned(), a.to_owned()));
        }
        SignedRequest {
            headers,
            body: body.to_vec(),
        }
    }

    fn run(req: &SignedRequest, secret: &str) -> Result<Outcome, WebhookError> {
        let headers = req.header_map();
        let secrets = WebhookSecrets::new()
            .with_secret("azure-devops", SecretString::from(secret))
            .expect("known provider");
        receive(&Request::new(&headers, &req.body), &secrets)
            .map(|r| r.outcome)
            .map_err(|(_, e)| e)
    }

    fn outcome(body: &[u8]) -> Result<Outcome, WebhookError> {
        run(
            &request(body, Some(&basic_header(CREDENTIALS))),
            CREDENTIALS,
        )
    }

    fn event(body: &[u8]) -> PushEvent {
        match outcome(body) {
            Ok(Outcome::Event(ev)) => ev,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn ignored(body: &[u8]) -> String {
        match outcome(body) {
            Ok(Outcome::Ignored(reason)) => reason,
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    const PUSH: &[u8] =
        include_bytes!("../../tests/fixtures/webhooks/azure-devops/push-branch.json");
    const REMOTE: &str =
        "https://fabrikam-fiber-inc.visualstudio.com/DefaultCollection/_git/Fabrikam-Fiber-Git";

    #[test]
    fn a_branch_push_becomes_its_ref_with_unknown_files() {
        let req = request(PUSH, Some(&basic_header(CREDENTIALS)));
        let headers = req.header_map();
        let secrets = WebhookSecrets::new()
            .with_secret("azure-devops", SecretString::from(CREDENTIALS))
            .expect("known provider");
        let received =
            receive(&Request::new(&headers, &req.body), &secrets).expect("accepted push");
        assert_eq!(
            received.delivery.as_deref(),
            Some("03c164c2-8912-4d5e-8009-3707d5f83734")
        );
        let Outcome::Event(ev) = received.outcome else {
            panic!("not an event");
        };
        assert_eq!(ev.source, EventSource::AzureDevops);
        assert_eq!(ev.repo_urls, [REMOTE]);
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/master".into(),
                before: Some("aad331d8d3b131fa9ae03cf5e53965b51942618a".into()),
                after: Some("33b55f7cb7e7e245323987634f960cf4a6e6bc74".into()),
                created: false,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.default_branch.as_deref(), Some("master"));
        assert_eq!(
            ev.delivery.as_deref(),
            Some("03c164c2-8912-4d5e-8009-3707d5f83734")
        );
    }

    #[test]
    fn the_pusher_is_the_pushed_by_unique_name_else_display_name() {
        let push = include_bytes!("../../tests/fixtures/webhooks/azure-devops/push-branch.json");
        assert_eq!(
            event(push).pusher.as_deref(),
            Some("Windows Live ID\\fabrikamfiber4@hotmail.com")
        );
        let mut v: serde_json::Value = serde_json::from_slice(push).expect("json");
        v["resource"]["pushedBy"] = serde_json::json!({"displayName": "Jamal Hartnett"});
        let body = v.to_string();
        assert_eq!(
            event(body.as_bytes()).pusher.as_deref(),
            Some("Jamal Hartnett")
        );
        v["resource"]["pushedBy"] = serde_json::json!(42);
        let body = v.to_string();
        let ev = event(body.as_bytes());
        assert_eq!((ev.pusher, ev.refs.len()), (None, 1));
    }

    #[test]
    fn every_ref_of_a_multi_ref_push_is_kept() {
        let ev = event(include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/push-multi-ref.json"
        ));
        let names: Vec<(&str, bool, bool)> = ev
            .refs
            .iter()
            .map(|r| (r.name.as_str(), r.created, r.deleted))
            .collect();
        assert_eq!(
            names,
            [
                ("refs/heads/main", false, false),
                ("refs/heads/release/2.0", true, false),
                ("refs/tags/v2.0.0", true, false),
                ("refs/heads/old-feature", false, true),
            ]
        );
        assert_eq!(ev.refs[3].after, None);
        assert_eq!(
            ev.refs[3].before.as_deref(),
            Some("5f8b3c2a1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a")
        );
        // Every URL the repository offers, and a default branch that is not a full ref.
        assert_eq!(
            ev.repo_urls,
            [
                "https://fabrikam@dev.azure.com/fabrikam/Fabrikam/_git/platform",
                "git@ssh.dev.azure.com:v3/fabrikam/Fabrikam/platform",
                "https://dev.azure.com/fabrikam/Fabrikam/_git/platform",
            ]
        );
        assert_eq!(ev.default_branch.as_deref(), Some("main"));
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn tag_creation_and_branch_deletion_are_flagged() {
        let tag = event(include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/push-tag.json"
        ));
        assert_eq!(tag.refs.len(), 1);
        assert_eq!(tag.refs[0].name, "refs/tags/v1.0.0");
        assert!(tag.refs[0].created && !tag.refs[0].deleted);
        assert_eq!(tag.refs[0].before, None);
        let created = event(include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/push-branch-created.json"
        ));
        assert!(created.refs[0].created);
        assert_eq!(created.refs[0].name, "refs/heads/feature/login");
        let deleted = event(include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/push-branch-deleted.json"
        ));
        assert!(deleted.refs[0].deleted && !deleted.refs[0].created);
        assert_eq!(deleted.refs[0].after, None);
    }

    #[test]
    fn other_events_and_empty_pushes_are_ignored() {
        let reason = ignored(br#"{"eventType": "workitem.updated", "resource": {}}"#);
        assert!(reason.contains("workitem.updated"), "{reason}");
        // CVE-2025-59538's shape.
        let reason = ignored(include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/push-empty-refupdates.json"
        ));
        assert!(reason.contains("refUpdates"), "{reason}");
        // Resource details "None"/"Minimal", or no repository at all.
        for body in [
            &br#"{"id": "x", "eventType": "git.push"}"#[..],
            br#"{"eventType": "git.push", "resource": {"refUpdates": [{"name": "refs/heads/main"}]}}"#,
            br#"{"eventType": "git.push", "resource": {"refUpdates": [{"name": "refs/heads/main"}], "repository": null}}"#,
            br#"{"eventType": "git.push", "resource": {"refUpdates": [{"name": "refs/heads/main"}], "repository": {"remoteUrl": ""}}}"#,
        ] {
            let reason = ignored(body);
            assert!(
                reason.contains("resource") || reason.contains("repository"),
                "{reason}"
            );
        }
    }

    #[test]
    fn wrong_types_are_bad_payloads() {
        for bad in [
            &br#"{"eventType": "git.push", "resource": {"refUpdates": [{"name": 5}], "repository": {"remoteUrl": "https://h/o/r"}}}"#[..],
            br#"{"eventType": "git.push", "resource": {"refUpdates": [{"oldObjectId": "a"}], "repository": {"remoteUrl": "https://h/o/r"}}}"#,
            br#"{"eventType": "git.push", "resource": {"refUpdates": [{"name": ""}], "repository": {"remoteUrl": "https://h/o/r"}}}"#,
            br#"{"eventType": "git.push", "resource": {"refUpdates": {"name": "refs/heads/main"}}}"#,
            br#"{"eventType": 1}"#,
        ] {
            let r = outcome(bad);
            assert!(
                matches!(r, Err(WebhookError::BadPayload(_))),
                "{}: {r:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn basic_credentials_must_match_user_and_password_exactly() {
        let unauthorized =
            |r: Result<Outcome, WebhookError>| matches!(r, Err(WebhookError::Unauthorized(_)));
        // Right password, wrong user; right user, wrong password; neither.
        for presented in [
            "someone:correct horse: battery",
            "capstan:correct horse:",
            ":correct horse: battery",
            "capstan",
        ] {
            let req = request(PUSH, Some(&format!("Basic {}", STANDARD.encode(presented))));
            assert!(unauthorized(run(&req, CREDENTIALS)), "{presented}");
        }
        // Not Basic, not base64, not text.
        for header in [
            "Bearer abc".to_owned(),
            "Basic not*base64".to_owned(),
            format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', b'x'])),
            "Basic".to_owned(),
        ] {
            let req = request(PUSH, Some(&header));
            assert!(unauthorized(run(&req, CREDENTIALS)), "{header}");
        }
        // The scheme name is case-insensitive.
        let lower = basic_header(CREDENTIALS).replacen("Basic", "basic", 1);
        assert!(matches!(
            run(&request(PUSH, Some(&lower)), CREDENTIALS),
            Ok(Outcome::Event(_))
        ));
        // No Authorization header at all is an absent credential, refused when a secret is set.
        assert!(unauthorized(run(&request(PUSH, None), CREDENTIALS)));
    }

    #[test]
    fn a_secret_without_a_colon_is_a_password_with_an_empty_user_name() {
        let colon_less = "only-a-password";
        let empty_user = format!("Basic {}", STANDARD.encode(":only-a-password"));
        assert_eq!(basic_header(colon_less), empty_user);
        assert!(matches!(
            run(&request(PUSH, Some(&empty_user)), colon_less),
            Ok(Outcome::Event(_))
        ));
        let with_user = format!("Basic {}", STANDARD.encode("capstan:only-a-password"));
        assert!(matches!(
            run(&request(PUSH, Some(&with_user)), colon_less),
            Err(WebhookError::Unauthorized(_))
        ));
    }

    mod pull_requests {
        use super::*;
        use crate::webhook::test_support::{
            edited, expect_bad_payload, expect_ignored, expect_pull_request,
        };

        const CREATED: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/pull-request-created-full.json"
        );
        const SOURCE_UPDATED: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/pull-request-updated-source.json"
        );
        const VOTED: &[u8] = include_bytes!(
            "../../tests/fixtures/webhooks/azure-devops/pull-request-updated-vote.json"
        );
        const MERGED: &[u8] =
            include_bytes!("../../tests/fixtures/webhooks/azure-devops/pull-request-merged.json");
        const ORG: &str = "https://dev.azure.com/fabrikam";

        #[test]
        fn a_created_pull_request_carries_everything_a_preview_needs() {
            let pr = expect_pull_request(outcome(CREATED));
            assert_eq!(pr.source, EventSource::AzureDevops);
            assert_eq!(pr.action, PullRequestAction::Opened);
            assert_eq!(pr.number, 1);
            assert_eq!(
                pr.delivery.as_deref(),
                Some("2ab4e3d3-b7a6-425e-92b1-5a9982c1269e")
            );
            assert_eq!(pr.title, "my first pull request");
            assert_eq!(pr.author.as_deref(), Some("fabrikamfiber4@hotmail.com"));
            assert_eq!(
                pr.html_url.as_deref(),
                Some("https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam/pullrequest/1")
            );
            assert_eq!(
                pr.repo_urls,
                [
                    "https://fabrikam@dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam",
                    "git@ssh.dev.azure.com:v3/fabrikam/Fabrikam/Fabrikam",
                    "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam"
                ]
            );
            assert_eq!(pr.base_ref, "master", "refs/heads/ is dropped");
            assert_eq!(
                pr.base_sha.as_deref(),
                Some("a511f535b1ea495ee0c903badb68fbc83772c882")
            );
            assert_eq!(pr.head_sha, "53d54ac915144006c2c9e90d2c7d3880920db49c");
            assert_eq!(pr.head_ref.as_deref(), Some("mytopic"));
            assert!(pr.head_repo_urls.is_empty());
            assert_eq!(
                pr.api,
                ForgeRepo {
                    kind: EventSource::AzureDevops,
                    api_url: ORG.into(),
                    owner: "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c".into(),
                    name: "4bc14d40-c903-45e2-872e-0462c7748079".into(),
                }
            );
        }

        #[test]
        fn updates_count_when_the_source_moved_or_the_status_closed() {
            let pr = expect_pull_request(outcome(SOURCE_UPDATED));
            assert_eq!(pr.action, PullRequestAction::Updated);
            assert_eq!(pr.head_sha, "b3c8a8a3e8d5e2b4f6c9d0e1f2a3b4c5d6e7f809");
            let reason = expect_ignored(outcome(VOTED));
            assert!(reason.contains("git.pullrequest.updated"), "{reason}");
            for status in ["completed", "abandoned"] {
                let body = edited(VOTED, "/resource/status", Some(serde_json::json!(status)));
                assert_eq!(
                    expect_pull_request(outcome(&body)).action,
                    PullRequestAction::Closed
                );
            }
            let reactivated = edited(
                VOTED,
                "/message/text",
                Some(serde_json::json!(
                    "Jamal Hartnett reactivated pull request 1 (my first pull request)"
                )),
            );
            assert_eq!(
                expect_pull_request(outcome(&reactivated)).action,
                PullRequestAction::Reopened
            );
            // A subscription that sends no messages: any update may carry new commits.
            let silent = edited(VOTED, "/message", None);
            assert_eq!(
                expect_pull_request(outcome(&silent)).action,
                PullRequestAction::Updated
            );
        }

        #[test]
        fn a_merge_closes_only_once_completed() {
            assert_eq!(
                expect_pull_request(outcome(MERGED)).action,
                PullRequestAction::Closed
            );
            let attempted = edited(
                MERGED,
                "/resource/status",
                Some(serde_json::json!("active")),
            );
            let reason = expect_ignored(outcome(&attempted));
            assert!(reason.contains("git.pullrequest.merged"), "{reason}");
        }

        #[test]
        fn a_fork_source_is_the_head_repository() {
            let fork = serde_json::json!({
                "name": "refs/heads/mytopic",
                "repository": {
                    "id": "0e0a2d26-61c8-4a44-9b0a-9fb1a4e2c3d1",
                    "name": "Fabrikam-fork",
                    "remoteUrl": "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam-fork",
                    "webUrl": "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam-fork",
                },
            });
            let pr = expect_pull_request(outcome(&edited(
                CREATED,
                "/resource/forkSource",
                Some(fork),
            )));
            assert_eq!(
                pr.head_repo_urls,
                ["https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam-fork"]
            );
        }

        #[test]
        fn without_containers_the_org_is_the_repository_url_before_apis_without_the_project() {
            let body = edited(CREATED, "/resourceContainers", None);
            assert_eq!(expect_pull_request(outcome(&body)).api.api_url, ORG);
            // Azure DevOps Server: the collection keeps its path.
            let server = edited(
                &body,
                "/resource/repository/url",
                Some(serde_json::json!(
                    "https://tfs.example.com/tfs/DefaultCollection/_apis/git/repositories/4bc14d40-c903-45e2-872e-0462c7748079"
                )),
            );
            assert_eq!(
                expect_pull_request(outcome(&server)).api.api_url,
                "https://tfs.example.com/tfs/DefaultCollection"
            );
        }

        #[test]
        fn missing_essentials_are_refused_naming_the_field() {
            // The documentation's short sample leaves the head commit out.
            let message = expect_bad_payload(outcome(include_bytes!(
                "../../tests/fixtures/webhooks/azure-devops/pull-request-created.json"
            )));
            assert!(message.contains("lastMergeSourceCommit"), "{message}");
            for (pointer, field) in [
                ("/resource/targetRefName", "resource.targetRefName"),
                ("/resource/pullRequestId", "resource.pullRequestId"),
                ("/resource", "resource"),
            ] {
                let message = expect_bad_payload(outcome(&edited(CREATED, pointer, None)));
                assert!(message.contains(field), "{pointer}: {message}");
            }
        }
    }
}
