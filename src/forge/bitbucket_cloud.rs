//! Bitbucket Cloud's REST API (2.0): `POST repositories/{ws}/{slug}/commit/{hash}/statuses/build`,
//! pull request comments `GET|POST repositories/{ws}/{slug}/pullrequests/{id}/comments` (pages
//! linked by `next`), and `PUT …/comments/{comment_id}`.

use reqwest::Method;
use serde_json::{Value, json};

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
        "key": status.context,
        "state": state,
        "name": status.context,
        "url": required_url(status)?,
        "description": cut(&status.description, description_limit(kind)),
    });
    let url = call.url(
        &[
            "repositories",
            &call.repo.owner,
            &call.repo.name,
            "commit",
            sha,
            "statuses",
            "build",
        ],
        &[],
    )?;
    call.send(Method::POST, url, Some(&body)).await?;
    Ok(())
}

/// The status's link, which both Bitbucket editions require.
pub fn required_url(status: &CommitStatus) -> Result<&str, ForgeError> {
    status
        .target_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            ForgeError::Invalid(format!(
                "Bitbucket requires a target_url for status {:?}",
                status.context
            ))
        })
}

fn comments_url(
    call: &Call<'_>,
    pr: u64,
    more: &[&str],
    query: &[(&str, &str)],
) -> Result<reqwest::Url, ForgeError> {
    let id = pr.to_string();
    let mut segments = vec![
        "repositories",
        &call.repo.owner,
        &call.repo.name,
        "pullrequests",
        &id,
        "comments",
    ];
    segments.extend_from_slice(more);
    call.url(&segments, query)
}

/// The PR's comments that are not deleted, following `next` pages.
pub async fn list_comments(call: &Call<'_>, pr: u64) -> Result<Vec<Existing>, ForgeError> {
    let mut url = comments_url(call, pr, &[], &[("pagelen", "100")])?;
    let mut comments = Vec::new();
    for _ in 0..MAX_PAGES {
        let answer = call.send(Method::GET, url, None).await?;
        let Some(values) = answer.body["values"].as_array() else {
            return Err(ForgeError::Malformed(
                "the comment page has no values".into(),
            ));
        };
        comments.extend(
            values
                .iter()
                .filter(|c| c["deleted"] != Value::Bool(true))
                .filter_map(|c| {
                    Some(Existing {
                        at: CommentRef {
                            id: id_text(&c["id"])?,
                            thread: None,
                        },
                        body: c["content"]["raw"].as_str().unwrap_or_default().to_owned(),
                    })
                }),
        );
        match answer.body["next"].as_str() {
            Some(next) => url = call.follow(next)?,
            None => return Ok(comments),
        }
    }
    Err(ForgeError::Malformed(format!(
        "more than {MAX_PAGES} pages of comments"
    )))
}

/// Comments on the PR.
pub async fn create_comment(
    call: &Call<'_>,
    pr: u64,
    body: &str,
) -> Result<CommentRef, ForgeError> {
    let url = comments_url(call, pr, &[], &[])?;
    let answer = call
        .send(
            Method::POST,
            url,
            Some(&json!({ "content": { "raw": body } })),
        )
        .await?;
    let id = id_text(&answer.body["id"])
        .ok_or_else(|| ForgeError::Malformed("the new comment has no id".into()))?;
    Ok(CommentRef { id, thread: None })
}

/// Replaces a comment's text.
pub async fn edit_comment(
    call: &Call<'_>,
    pr: u64,
    at: &CommentRef,
    body: &str,
) -> Result<(), ForgeError> {
    let url = comments_url(call, pr, &[&at.id], &[])?;
    call.send(
        Method::PUT,
        url,
        Some(&json!({ "content": { "raw": body } })),
    )
    .await?;
    Ok(())
}
