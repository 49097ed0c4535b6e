//! Bitbucket Data Center's REST API: `POST rest/build-status/1.0/commits/{hash}`, pull request
//! comments `POST rest/api/1.0/projects/{key}/repos/{slug}/pull-requests/{id}/comments`, found
//! again among the PR's `activities` (pages by `isLastPage`/`nextPageStart`), and edited with
//! `PUT …/comments/{id}` carrying the comment's current `version` (read first; 409 when stale).

use reqwest::Method;
use serde_json::{Value, json};

use super::bitbucket_cloud::required_url;
use super::call::Call;
use super::comment::{CommentRef, Existing, id_text};
use super::status::{CommitStatus, cut, description_limit, host_word};
use super::{ForgeError, MAX_PAGES};

/// Sets a build status (Bitbucket requires its `url`).
pub async fn set_status(
    call: &Call<'_>,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), ForgeError> {
    let kind = &call.repo.kind;
    let state = host_word(kind, status.state).ok_or_else(|| ForgeError::unsupported(kind))?;
    let body = json!({
        "state": state,
        "key": status.context,
        "name": status.context,
        "url": required_url(status)?,
        "description": cut(&status.description, description_limit(kind)),
    });
    let url = call.url(&["rest", "build-status", "1.0", "commits", sha], &[])?;
    call.send(Method::POST, url, Some(&body)).await?;
    Ok(())
}

fn pr_url(
    call: &Call<'_>,
    pr: u64,
    more: &[&str],
    query: &[(&str, &str)],
) -> Result<reqwest::Url, ForgeError> {
    let id = pr.to_string();
    let mut segments = vec![
        "rest",
        "api",
        "1.0",
        "projects",
        &call.repo.owner,
        "repos",
        &call.repo.name,
        "pull-requests",
        &id,
    ];
    segments.extend_from_slice(more);
    call.url(&segments, query)
}

/// The PR's comments, from its comment activities.
pub async fn list_comments(call: &Call<'_>, pr: u64) -> Result<Vec<Existing>, ForgeError> {
    let mut start = "0".to_owned();
    let mut comments: Vec<Existing> = Vec::new();
    for _ in 0..MAX_PAGES {
        let url = pr_url(
            call,
            pr,
            &["activities"],
            &[("start", &start), ("limit", "100")],
        )?;
        let answer = call.send(Method::GET, url, None).await?;
        let Some(values) = answer.body["values"].as_array() else {
            return Err(ForgeError::Malformed(
                "the activity page has no values".into(),
            ));
        };
        for activity in values.iter().filter(|a| a["action"] == "COMMENTED") {
            let comment = &activity["comment"];
            let Some(id) = id_text(&comment["id"]) else {
                continue;
            };
            // An edited comment appears once per activity; its text is the current one.
            if comments.iter().any(|c| c.at.id == id) {
                continue;
            }
            comments.push(Existing {
                at: CommentRef { id, thread: None },
                body: comment["text"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let next = answer.body["nextPageStart"].as_u64();
        match (answer.body["isLastPage"].as_bool(), next) {
            (Some(false), Some(next)) => start = next.to_string(),
            _ => return Ok(comments),
        }
    }
    Err(ForgeError::Malformed(format!(
        "more than {MAX_PAGES} pages of activities"
    )))
}

/// Comments on the PR.
pub async fn create_comment(
    call: &Call<'_>,
    pr: u64,
    body: &str,
) -> Result<CommentRef, ForgeError> {
    let url = pr_url(call, pr, &["comments"], &[])?;
    let answer = call
        .send(Method::POST, url, Some(&json!({ "text": body })))
        .await?;
    let id = id_text(&answer.body["id"])
        .ok_or_else(|| ForgeError::Malformed("the new comment has no id".into()))?;
    Ok(CommentRef { id, thread: None })
}

/// Replaces a comment's text at its current version; a version that moved in between (409)
/// is read again once.
pub async fn edit_comment(
    call: &Call<'_>,
    pr: u64,
    at: &CommentRef,
    body: &str,
) -> Result<(), ForgeError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let url = pr_url(call, pr, &["comments", &at.id], &[])?;
        let current = call.send(Method::GET, url.clone(), None).await?;
        let version = match &current.body["version"] {
            Value::Number(v) => v.clone(),
            _ => {
                return Err(ForgeError::Malformed(format!(
                    "comment {} has no version",
                    at.id
                )));
            }
        };
        let result = call
            .send(
                Method::PUT,
                url,
                Some(&json!({ "text": body, "version": version })),
            )
            .await;
        match result {
            Err(ForgeError::Refused { status: 409, .. }) if tries < 2 => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}
