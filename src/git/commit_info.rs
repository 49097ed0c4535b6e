//! The message and author of a commit already in a mirror, for the sync history.

use std::path::Path;

use super::GitError;
use super::fetch::read_error;

/// Longest commit message kept, in bytes: history entries live in the Application's status.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest author kept, in bytes.
pub const MAX_AUTHOR_BYTES: usize = 256;

/// What a person wants to see of a deployed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The full message, trailing whitespace removed, cut at a character boundary.
    pub message: String,
    /// `Name <email>`, as `git log` shows it.
    pub author: String,
}

/// Reads `commit` from the bare repository at `mirror` without fetching or writing anything:
/// the commit was fetched to be rendered, so it is there.
pub(crate) fn read(mirror: &Path, url: &str, commit: &str) -> Result<CommitInfo, GitError> {
    let not_found = || GitError::RevisionNotFound {
        revision: commit.to_owned(),
    };
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|_| not_found())?;
    let repo = gix::open_opts(mirror, gix::open::Options::isolated())
        .map_err(|err| read_error(url, "the mirror", err))?;
    let found = repo.find_commit(id).map_err(|_| not_found())?;
    let message = found
        .message_raw()
        .map_err(|err| read_error(url, commit, err))?;
    let author = found.author().map_err(|err| read_error(url, commit, err))?;
    let author = format!(
        "{} <{}>",
        String::from_utf8_lossy(author.name.as_ref()).trim(),
        String::from_utf8_lossy(author.email.as_ref()).trim()
    );
    Ok(CommitInfo {
        message: bounded(
            String::from_utf8_lossy(message.as_ref()).trim_end(),
            MAX_MESSAGE_BYTES,
        ),
        author: bounded(&author, MAX_AUTHOR_BYTES),
    })
}

/// `text` without control characters other than newlines and tabs, cut to `max` bytes at a
/// character boundary.
fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
    {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_a_character_boundary_and_lose_control_characters() {
        assert_eq!(
            bounded("fix\u{1b}[31m: é\n\nbody", 100),
            "fix[31m: é\n\nbody"
        );
        let cut = bounded(&"é".repeat(600), MAX_MESSAGE_BYTES);
        assert_eq!(cut.len(), MAX_MESSAGE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded("aé", 2), "a", "never half a character");
    }

    #[test]
    fn a_commit_is_read_from_a_bare_repository() {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = dir.path().join("work");
        let git = |args: &[&str], cwd: &Path| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(cwd)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", dir.path())
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        std::fs::create_dir(&work).expect("mkdir");
        git(&["init", "-q", "-b", "main"], &work);
        git(
            &[
                "-c",
                "user.name=Committer",
                "-c",
                "user.email=c@example.com",
                "commit",
                "-q",
                "--allow-empty",
                "--author",
                "Alice Author <alice@example.com>",
                "-m",
                "Roll out web 1.27\n\nWhy: CVE fix.",
            ],
            &work,
        );
        let sha = git(&["rev-parse", "HEAD"], &work);
        let mirror = dir.path().join("mirror.git");
        git(&["clone", "-q", "--bare", "work", "mirror.git"], dir.path());
        let info = read(&mirror, "file:///work", &sha).expect("read");
        assert_eq!(info.message, "Roll out web 1.27\n\nWhy: CVE fix.");
        assert_eq!(info.author, "Alice Author <alice@example.com>");
        let missing = read(&mirror, "file:///work", &"0".repeat(40));
        assert!(
            matches!(missing, Err(GitError::RevisionNotFound { .. })),
            "{missing:?}"
        );
    }
}
