//! Azure DevOps's REST API (7.1): `POST {project}/_apis/git/repositories/{repo}/commits/{sha}/statuses`,
//! pull request threads `GET|POST …/pullRequests/{id}/threads` (Capstan's comment is the first
//! of a thread of its own), and `PATCH …/threads/{thread}/comments/{comment}`.

use reqwest::Method;
use serde_json::{Value, json};

use super::ForgeError;
use super::call::Call;
use super::comment::{CommentRef, Existing, id_text};
use super::status::{CommitStatus, azure_context, cut, description_limit, host_word};

const API_VERSION: (&str, &str) = ("api-version", "7.1");

/// Sets a commit status: genre `capstan`, named by the context without `capstan/`.
pub async fn set_status(
    call: &Call<'_>,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), ForgeError> {
    let kind = &call.repo.kind;
    let state = host_word(kind, status.state).ok_or_else(|| ForgeError::unsupported(kind))?;
    let (genre, name) = azure_context(&status.context);
    let mut body = json!({
        "state": state,
        "description": cut(&status.description, description_limit(kind)),
        "context": { "name": name, "genre": genre },
    });
    if let Some(url) = &status.target_url {
        body["targetUrl"] = url.clone().into();
    }
    let url = call.url(
        &[
            &call.repo.owner,
            "_apis",
            "git",
            "repositories",
            &call.repo.name,
            "commits",
            sha,
            "statuses",
        ],
        &[API_VERSION],
    )?;
    call.send(Method::POST, url, Some(&body)).await?;
    Ok(())
}

fn threads_url(call: &Call<'_>, pr: u64, more: &[&str]) -> Result<reqwest::Url, ForgeError> {
    let id = pr.to_string();
    let mut segments = vec![
        &call.repo.owner as &str,
        "_apis",
        "git",
        "repositories",
        &call.repo.name,
        "pullRequests",
        &id,
        "threads",
    ];
    segments.extend_from_slice(more);
    call.url(&segments, &[API_VERSION])
}

/// The first comment of every thread that is not deleted (Capstan's comment opens its thread).
pub async fn list_comments(call: &Call<'_>, pr: u64) -> Result<Vec<Existing>, ForgeError> {
    let answer = call
        .send(Method::GET, threads_url(call, pr, &[])?, None)
        .await?;
    let Some(threads) = answer.body["value"].as_array() else {
        return Err(ForgeError::Malformed("the thread list has no value".into()));
    };
    Ok(threads
        .iter()
        .filter(|t| t["isDeleted"] != Value::Bool(true))
        .filter_map(|t| {
            let thread = id_text(&t["id"])?;
            let first = t["comments"]
                .as_array()?
                .iter()
                .find(|c| c["parentCommentId"].as_u64().unwrap_or(0) == 0)?;
            if first["isDeleted"] == Value::Bool(true) {
                return None;
            }
            Some(Existing {
                at: CommentRef {
                    id: id_text(&first["id"])?,
                    thread: Some(thread),
                },
                body: first["content"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// Opens a thread holding the comment.
pub async fn create_comment(
    call: &Call<'_>,
    pr: u64,
    body: &str,
) -> Result<CommentRef, ForgeError> {
    let request = json!({
        // commentType 1: text; status 1: active.
        "comments": [{ "parentCommentId": 0, "content": body, "commentType": 1 }],
        "status": 1,
    });
    let answer = call
        .send(Method::POST, threads_url(call, pr, &[])?, Some(&request))
        .await?;
    let thread = id_text(&answer.body["id"])
        .ok_or_else(|| ForgeError::Malformed("the new thread has no id".into()))?;
    let id = id_text(&answer.body["comments"][0]["id"])
        .ok_or_else(|| ForgeError::Malformed("the new thread has no comment".into()))?;
    Ok(CommentRef {
        id,
        thread: Some(thread),
    })
}

/// Replaces a comment's content; one recorded without its thread cannot be found (404).
pub async fn edit_comment(
    call: &Call<'_>,
    pr: u64,
    at: &CommentRef,
    body: &str,
) -> Result<(), ForgeError> {
    let Some(thread) = at.thread.as_deref() else {
        return Err(ForgeError::Refused {
            status: 404,
            message: "an Azure DevOps comment is addressed by its thread".into(),
        });
    };
    let url = threads_url(call, pr, &[thread, "comments", &at.id])?;
    call.send(Method::PATCH, url, Some(&json!({ "content": body })))
        .await?;
    Ok(())
}
