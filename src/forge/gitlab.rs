//! GitLab's REST API (v4): `POST projects/{id}/statuses/{sha}`, merge request notes
//! `GET|POST projects/{id}/merge_requests/{iid}/notes` (pages by `X-Next-Page`), and
//! `PUT …/notes/{note_id}`.

use reqwest::Method;
use serde_json::{Value, json};

use super::call::Call;
use super::comment::{CommentRef, Existing, id_text};
use super::status::{CommitStatus, cut, description_limit, host_word};
use super::{ForgeError, MAX_PAGES};

/// Sets a commit status. GitLab refuses to move a status to the state it is already in (400
/// "Cannot transition status"); the status is then what was asked, so that is success.
pub async fn set_status(
    call: &Call<'_>,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), ForgeError> {
    let kind = &call.repo.kind;
    let state = host_word(kind, status.state).ok_or_else(|| ForgeError::unsupported(kind))?;
    let mut body = json!({
        "state": state,
        "name": status.context,
        "description": cut(&status.description, description_limit(kind)),
    });
    if let Some(url) = &status.target_url {
        body["target_url"] = url.clone().into();
    }
    let url = call.url(&["projects", &call.repo.name, "statuses", sha], &[])?;
    match call.send(Method::POST, url, Some(&body)).await {
        Ok(_) => Ok(()),
        Err(ForgeError::Refused {
            status: 400,
            message,
        }) if message.contains("Cannot transition status") => Ok(()),
        Err(e) => Err(e),
    }
}

fn notes_path<'a>(call: &'a Call<'_>, iid: &'a str) -> [&'a str; 5] {
    ["projects", &call.repo.name, "merge_requests", iid, "notes"]
}

/// The merge request's notes written by people (system notes left out), oldest first.
pub async fn list_notes(call: &Call<'_>, pr: u64) -> Result<Vec<Existing>, ForgeError> {
    let iid = pr.to_string();
    let mut page = "1".to_owned();
    let mut notes = Vec::new();
    for _ in 0..MAX_PAGES {
        let url = call.url(
            &notes_path(call, &iid),
            &[
                ("sort", "asc"),
                ("order_by", "created_at"),
                ("per_page", "100"),
                ("page", &page),
            ],
        )?;
        let answer = call.send(Method::GET, url, None).await?;
        let Value::Array(items) = &answer.body else {
            return Err(ForgeError::Malformed("the note list is not a list".into()));
        };
        notes.extend(
            items
                .iter()
                .filter(|n| n["system"] != Value::Bool(true))
                .filter_map(|n| {
                    Some(Existing {
                        at: CommentRef {
                            id: id_text(&n["id"])?,
                            thread: None,
                        },
                        body: n["body"].as_str().unwrap_or_default().to_owned(),
                    })
                }),
        );
        let next = answer
            .headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match next {
            Some(next) => page = next.to_owned(),
            None => return Ok(notes),
        }
    }
    Err(ForgeError::Malformed(format!(
        "more than {MAX_PAGES} pages of notes"
    )))
}

/// Adds a note to the merge request.
pub async fn create_note(call: &Call<'_>, pr: u64, body: &str) -> Result<CommentRef, ForgeError> {
    let iid = pr.to_string();
    let url = call.url(&notes_path(call, &iid), &[])?;
    let answer = call
        .send(Method::POST, url, Some(&json!({ "body": body })))
        .await?;
    let id = id_text(&answer.body["id"])
        .ok_or_else(|| ForgeError::Malformed("the new note has no id".into()))?;
    Ok(CommentRef { id, thread: None })
}

/// Replaces a note's body.
pub async fn edit_note(
    call: &Call<'_>,
    pr: u64,
    at: &CommentRef,
    body: &str,
) -> Result<(), ForgeError> {
    let iid = pr.to_string();
    let [a, b, c, d, e] = notes_path(call, &iid);
    let url = call.url(&[a, b, c, d, e, &at.id], &[])?;
    call.send(Method::PUT, url, Some(&json!({ "body": body })))
        .await?;
    Ok(())
}
