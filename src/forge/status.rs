//! Commit statuses as Capstan sets them, and each host's words for their states.

use crate::event::EventSource;

/// A commit status Capstan sets.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitStatus {
    /// What the status is about (`capstan/preview`, `capstan/<app>`); a new status with the same
    /// context replaces the old one. Azure DevOps gets it as genre `capstan` and the rest as name.
    pub context: String,
    pub state: StatusState,
    /// One line; cut to the host's limit (140 characters on GitHub and Gitea, 255 elsewhere).
    pub description: String,
    /// The page the status links to; Bitbucket (Cloud and Data Center) requires one.
    pub target_url: Option<String>,
}

/// A status's state, mapped to each host's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// Queued, not started.
    Pending,
    /// Being worked on.
    Running,
    Success,
    /// The check ran and found a problem.
    Failure,
    /// The check could not run.
    Error,
}

/// `state`'s word on a `kind` host, `None` for a host without a status API.
pub fn host_word(kind: &EventSource, state: StatusState) -> Option<&'static str> {
    use StatusState::*;
    Some(match kind {
        EventSource::Github | EventSource::Gitea => match state {
            Pending | Running => "pending",
            Success => "success",
            Failure => "failure",
            Error => "error",
        },
        EventSource::Gitlab => match state {
            Pending => "pending",
            Running => "running",
            Success => "success",
            Failure | Error => "failed",
        },
        EventSource::BitbucketCloud | EventSource::BitbucketServer => match state {
            Pending | Running => "INPROGRESS",
            Success => "SUCCESSFUL",
            Failure | Error => "FAILED",
        },
        EventSource::AzureDevops => match state {
            Pending | Running => "pending",
            Success => "succeeded",
            Failure => "failed",
            Error => "error",
        },
        _ => return None,
    })
}

/// The longest description `kind` takes, in characters.
pub fn description_limit(kind: &EventSource) -> usize {
    match kind {
        // GitHub answers 422 beyond 140; Gitea copies GitHub's contract.
        EventSource::Github | EventSource::Gitea => 140,
        _ => 255,
    }
}

/// `text` cut to `limit` characters, an ellipsis marking the cut.
pub fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(limit.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

/// Azure DevOps's status context: genre `capstan` and the context without a `capstan/` prefix.
pub fn azure_context(context: &str) -> (&'static str, &str) {
    (
        "capstan",
        context.strip_prefix("capstan/").unwrap_or(context),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatusState::*;

    fn words(kind: EventSource) -> Vec<&'static str> {
        [Pending, Running, Success, Failure, Error]
            .into_iter()
            .map(|s| host_word(&kind, s).expect("a status API"))
            .collect()
    }

    #[test]
    fn each_host_gets_its_own_words() {
        assert_eq!(
            words(EventSource::Github),
            ["pending", "pending", "success", "failure", "error"]
        );
        assert_eq!(
            words(EventSource::Gitea),
            ["pending", "pending", "success", "failure", "error"]
        );
        assert_eq!(
            words(EventSource::Gitlab),
            ["pending", "running", "success", "failed", "failed"]
        );
        for bitbucket in [EventSource::BitbucketCloud, EventSource::BitbucketServer] {
            assert_eq!(
                words(bitbucket),
                ["INPROGRESS", "INPROGRESS", "SUCCESSFUL", "FAILED", "FAILED"]
            );
        }
        assert_eq!(
            words(EventSource::AzureDevops),
            ["pending", "pending", "succeeded", "failed", "error"]
        );
        assert_eq!(host_word(&EventSource::Gogs, Success), None);
    }

    #[test]
    fn descriptions_are_cut_to_the_hosts_limit() {
        let long = "é".repeat(300);
        let github = cut(&long, description_limit(&EventSource::Github));
        assert_eq!(github.chars().count(), 140);
        assert!(github.ends_with('…'));
        assert_eq!(
            cut(&long, description_limit(&EventSource::Gitlab))
                .chars()
                .count(),
            255
        );
        assert_eq!(cut("short", 140), "short");
    }

    #[test]
    fn azure_contexts_split_into_genre_and_name() {
        assert_eq!(azure_context("capstan/preview"), ("capstan", "preview"));
        assert_eq!(azure_context("capstan/shop-web"), ("capstan", "shop-web"));
        assert_eq!(azure_context("deploy"), ("capstan", "deploy"));
    }
}
