//! The one PR comment Capstan owns per marker: edited in place when known, found again by its
//! marker when not, created only when there is none; bodies capped at each host's limit.

use serde::{Deserialize, Serialize};

use super::call::Call;
use super::{ForgeError, azure_devops, bitbucket_cloud, bitbucket_server, github, gitlab};
use crate::event::EventSource;

/// Where a PR comment Capstan owns lives (kept between updates).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CommentRef {
    /// The comment's id (GitHub, Gitea, Bitbucket, Azure DevOps) or note id (GitLab).
    pub id: String,
    /// The thread holding it (Azure DevOps only).
    #[serde(default)]
    pub thread: Option<String>,
}

/// A comment already on the PR.
#[derive(Debug, Clone)]
pub struct Existing {
    pub at: CommentRef,
    pub body: String,
}

/// The longest comment body `kind` takes, in characters.
pub fn body_limit(kind: &EventSource) -> usize {
    match kind {
        EventSource::Github | EventSource::Gitea => 65_536,
        EventSource::Gitlab => 1_000_000,
        // Bitbucket documents no figure; 32k stays under what both editions accept.
        EventSource::BitbucketCloud | EventSource::BitbucketServer => 32_000,
        EventSource::AzureDevops => 150_000,
        _ => 65_536,
    }
}

/// `body` within `limit` characters: cut at a line end where one is near, an open code fence
/// closed, and a note saying so.
pub fn cap_body(body: &str, limit: usize) -> String {
    if body.chars().count() <= limit {
        return body.to_owned();
    }
    let note = format!("\n\n_… cut: the comment was longer than {limit} characters._");
    // Room for the note and a closing fence.
    let room = limit.saturating_sub(note.chars().count() + 5);
    let end = body.char_indices().nth(room).map_or(body.len(), |(i, _)| i);
    let mut kept = &body[..end];
    if let Some(line_end) = kept.rfind('\n').filter(|&i| i + 2000 >= end) {
        kept = &kept[..line_end];
    }
    let mut capped = kept.to_owned();
    if kept.matches("```").count() % 2 == 1 {
        capped.push_str("\n```");
    }
    capped.push_str(&note);
    capped
}

/// The comment to reuse: the first starting with `marker`, else the first containing it.
pub fn find_marked<'a>(comments: &'a [Existing], marker: &str) -> Option<&'a Existing> {
    comments
        .iter()
        .find(|c| c.body.trim_start().starts_with(marker))
        .or_else(|| comments.iter().find(|c| c.body.contains(marker)))
}

/// Creates or updates the one comment carrying `marker`.
pub async fn upsert(
    call: &Call<'_>,
    pr: u64,
    marker: &str,
    body: &str,
    known: Option<&CommentRef>,
) -> Result<CommentRef, ForgeError> {
    if marker.trim().is_empty() {
        return Err(ForgeError::Invalid(
            "a comment marker cannot be empty".into(),
        ));
    }
    // Without its marker the comment could not be found again: a second one would follow.
    let body = if body.contains(marker) {
        body.to_owned()
    } else {
        format!("{marker}\n{body}")
    };
    let body = cap_body(&body, body_limit(&call.repo.kind));
    if let Some(known) = known
        && edit(call, pr, known, &body).await?
    {
        return Ok(known.clone());
    }
    let existing = list(call, pr).await?;
    if let Some(found) = find_marked(&existing, marker)
        && edit(call, pr, &found.at, &body).await?
    {
        return Ok(found.at.clone());
    }
    create(call, pr, &body).await
}

/// Edits a comment; `false` when it is no longer there.
async fn edit(call: &Call<'_>, pr: u64, at: &CommentRef, body: &str) -> Result<bool, ForgeError> {
    let result = match call.repo.kind {
        EventSource::Github | EventSource::Gitea => github::edit_comment(call, at, body).await,
        EventSource::Gitlab => gitlab::edit_note(call, pr, at, body).await,
        EventSource::BitbucketCloud => bitbucket_cloud::edit_comment(call, pr, at, body).await,
        EventSource::BitbucketServer => bitbucket_server::edit_comment(call, pr, at, body).await,
        EventSource::AzureDevops => azure_devops::edit_comment(call, pr, at, body).await,
        _ => return Err(ForgeError::unsupported(&call.repo.kind)),
    };
    match result {
        Ok(()) => Ok(true),
        Err(ForgeError::Refused {
            status: 404 | 410, ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn list(call: &Call<'_>, pr: u64) -> Result<Vec<Existing>, ForgeError> {
    match call.repo.kind {
        EventSource::Github | EventSource::Gitea => github::list_comments(call, pr).await,
        EventSource::Gitlab => gitlab::list_notes(call, pr).await,
        EventSource::BitbucketCloud => bitbucket_cloud::list_comments(call, pr).await,
        EventSource::BitbucketServer => bitbucket_server::list_comments(call, pr).await,
        EventSource::AzureDevops => azure_devops::list_comments(call, pr).await,
        _ => Err(ForgeError::unsupported(&call.repo.kind)),
    }
}

async fn create(call: &Call<'_>, pr: u64, body: &str) -> Result<CommentRef, ForgeError> {
    match call.repo.kind {
        EventSource::Github | EventSource::Gitea => github::create_comment(call, pr, body).await,
        EventSource::Gitlab => gitlab::create_note(call, pr, body).await,
        EventSource::BitbucketCloud => bitbucket_cloud::create_comment(call, pr, body).await,
        EventSource::BitbucketServer => bitbucket_server::create_comment(call, pr, body).await,
        EventSource::AzureDevops => azure_devops::create_comment(call, pr, body).await,
        _ => Err(ForgeError::unsupported(&call.repo.kind)),
    }
}

/// A JSON id (number or string) as text.
pub fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_are_left_alone() {
        let body = "<!-- capstan-preview -->\n## Preview\n";
        assert_eq!(cap_body(body, 65_536), body);
    }

    #[test]
    fn long_bodies_are_cut_within_the_limit_with_a_note() {
        let marker = "<!-- capstan-preview -->";
        let body = format!("{marker}\n{}", "line of diff ☃\n".repeat(10_000));
        for kind in [
            EventSource::Github,
            EventSource::BitbucketCloud,
            EventSource::AzureDevops,
        ] {
            let limit = body_limit(&kind);
            let capped = cap_body(&body, limit);
            assert!(capped.chars().count() <= limit, "{kind}: over the limit");
            assert!(capped.starts_with(marker), "{kind}: the marker survives");
            assert!(
                capped.ends_with(&format!("longer than {limit} characters._")),
                "{kind}: a note says it was cut"
            );
            let (before_note, _) = capped.rsplit_once("\n\n_…").expect("a note");
            assert!(
                before_note.ends_with("line of diff ☃"),
                "{kind}: cut at the end of a line"
            );
        }
        assert_eq!(cap_body(&body, body_limit(&EventSource::Gitlab)), body);
    }

    #[test]
    fn a_cut_inside_a_code_block_closes_it() {
        let body = format!("<!-- m -->\n```diff\n{}```\n", "+ added\n".repeat(10_000));
        let capped = cap_body(&body, 32_000);
        assert!(capped.chars().count() <= 32_000);
        assert_eq!(
            capped.matches("```").count() % 2,
            0,
            "the fence is closed, so the note is not shown as code"
        );
        let (before_note, _) = capped.rsplit_once("\n\n_…").expect("a note");
        assert!(before_note.ends_with("\n```"));
    }

    #[test]
    fn the_marked_comment_is_found_preferring_one_that_starts_with_it() {
        let c = |id: &str, body: &str| Existing {
            at: CommentRef {
                id: id.into(),
                thread: None,
            },
            body: body.into(),
        };
        let comments = [
            c("1", "LGTM"),
            c("2", "> quoting <!-- capstan-preview --> in a reply"),
            c("3", "  <!-- capstan-preview -->\n## Preview"),
        ];
        let found = find_marked(&comments, "<!-- capstan-preview -->").expect("found");
        assert_eq!(found.at.id, "3");
        assert_eq!(
            find_marked(&comments[..2], "<!-- capstan-preview -->").map(|c| c.at.id.as_str()),
            Some("2")
        );
        assert!(find_marked(&comments[..1], "<!-- capstan-preview -->").is_none());
    }

    #[test]
    fn comment_refs_read_back_without_a_thread() {
        let r: CommentRef = serde_json::from_str(r#"{"id":"42"}"#).expect("reads");
        assert_eq!(
            r,
            CommentRef {
                id: "42".into(),
                thread: None
            }
        );
    }
}
