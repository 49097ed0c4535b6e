//! GitHub's REST API, and Gitea/Forgejo's, which copies its commit status and issue comment
//! endpoints: `POST repos/{o}/{r}/statuses/{sha}`, `GET|POST repos/{o}/{r}/issues/{n}/comments`
//! (pages linked with `Link: rel="next"`), `PATCH repos/{o}/{r}/issues/comments/{id}`.

use reqwest::{Method, header};
use serde_json::{Value, json};

use super::call::Call;
use super::comment::{CommentRef, Existing, id_text};
use super::status::{CommitStatus, cut, description_limit, host_word};
use super::{ForgeError, MAX_PAGES};
use crate::event::EventSource;

/// Sets a commit status.
pub async fn set_status(
    call: &Call<'_>,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), ForgeError> {
    let kind = &call.repo.kind;
    let state = host_word(kind, status.state).ok_or_else(|| ForgeError::unsupported(kind))?;
    let mut body = json!({
        "state": state,
        "context": status.context,
        "description": cut(&status.description, description_limit(kind)),
    });
    if let Some(url) = &status.target_url {
        body["target_url"] = url.clone().into();
    }
    let url = call.url(
        &["repos", &call.repo.owner, &call.repo.name, "statuses", sha],
        &[],
    )?;
    call.send(Method::POST, url, Some(&body)).await?;
    Ok(())
}

/// Every comment on the PR, following `Link` pages.
pub async fn list_comments(call: &Call<'_>, pr: u64) -> Result<Vec<Existing>, ForgeError> {
    let number = pr.to_string();
    // GitHub pages up to 100; Gitea caps a page at its MAX_RESPONSE_ITEMS, 50 by default.
    let page_size = match call.repo.kind {
        EventSource::Gitea => ("limit", "50"),
        _ => ("per_page", "100"),
    };
    let mut url = call.url(
        &[
            "repos",
            &call.repo.owner,
            &call.repo.name,
            "issues",
            &number,
            "comments",
        ],
        &[page_size],
    )?;
    let mut comments = Vec::new();
    for _ in 0..MAX_PAGES {
        let answer = call.send(Method::GET, url, None).await?;
        let Value::Array(page) = answer.body else {
            return Err(ForgeError::Malformed(
                "the comment list is not a list".into(),
            ));
        };
        comments.extend(page.iter().filter_map(|c| {
            Some(Existing {
                at: CommentRef {
                    id: id_text(&c["id"])?,
                    thread: None,
                },
                body: c["body"].as_str().unwrap_or_default().to_owned(),
            })
        }));
        match next_link(&answer.headers) {
            Some(next) => url = call.follow(&next)?,
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
    let number = pr.to_string();
    let url = call.url(
        &[
            "repos",
            &call.repo.owner,
            &call.repo.name,
            "issues",
            &number,
            "comments",
        ],
        &[],
    )?;
    let answer = call
        .send(Method::POST, url, Some(&json!({ "body": body })))
        .await?;
    let id = id_text(&answer.body["id"])
        .ok_or_else(|| ForgeError::Malformed("the new comment has no id".into()))?;
    Ok(CommentRef { id, thread: None })
}

/// Replaces a comment's body.
pub async fn edit_comment(call: &Call<'_>, at: &CommentRef, body: &str) -> Result<(), ForgeError> {
    let url = call.url(
        &[
            "repos",
            &call.repo.owner,
            &call.repo.name,
            "issues",
            "comments",
            &at.id,
        ],
        &[],
    )?;
    call.send(Method::PATCH, url, Some(&json!({ "body": body })))
        .await?;
    Ok(())
}

/// The `rel="next"` target of RFC 8288 `Link` headers.
pub fn next_link(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut h = HeaderMap::new();
        assert_eq!(next_link(&h), None);
        h.insert(
            header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=2>; rel=\"next\", \
                 <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=5>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=2")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static(
                "<https://x/p?page=1>; rel=\"prev\", <https://x/p?page=1>; rel=\"first\"",
            ),
        );
        assert_eq!(next_link(&h), None, "the last page has no next");
    }
}
