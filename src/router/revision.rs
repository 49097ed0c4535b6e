//! Which pushed refs can change what an Application's `targetRevision` resolves to.

use super::semver_range::TagRange;

/// What a `targetRevision` follows, parsed once when the Application is indexed.
#[derive(Debug, Clone)]
pub enum TargetRevision {
    /// Empty or `HEAD`: the repository's default branch.
    DefaultBranch,
    /// `refs/heads/X`: only the branch X.
    Branch(String),
    /// `refs/tags/X`: only the tag X.
    Tag(String),
    /// Any other full ref (`refs/pull/1/head`), matched as written.
    Ref(String),
    /// A short name: a branch or tag of that name, or a tag inside the range it spells.
    Name {
        /// The name as written.
        name: String,
        /// Set when the name also reads as a semver range (`^1.2`, `1.*`).
        range: Option<TagRange>,
    },
    /// A commit id: a push never changes what it names.
    Commit,
}

/// A ref as a push names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushedRef<'a> {
    /// `refs/heads/X`
    Branch(&'a str),
    /// `refs/tags/X`
    Tag(&'a str),
    /// Another full ref (`refs/pull/1/head`).
    Other(&'a str),
    /// A short name without `refs/` (the trigger form), branch or tag unknown; `HEAD` is the
    /// default branch.
    Bare(&'a str),
}

impl PushedRef<'_> {
    /// Classifies a pushed ref name.
    pub fn parse(name: &str) -> PushedRef<'_> {
        let name = name.trim();
        if let Some(branch) = name.strip_prefix("refs/heads/") {
            PushedRef::Branch(branch)
        } else if let Some(tag) = name.strip_prefix("refs/tags/") {
            PushedRef::Tag(tag)
        } else if name.starts_with("refs/") {
            PushedRef::Other(name)
        } else {
            PushedRef::Bare(name)
        }
    }

    /// Whether this is a tag push, whose changed-file list does not describe what it moved.
    pub fn is_tag(self) -> bool {
        matches!(self, PushedRef::Tag(_))
    }
}

impl TargetRevision {
    /// Parses an Application source's `targetRevision` (None or empty = `HEAD`).
    pub fn parse(target: Option<&str>) -> TargetRevision {
        let target = target.unwrap_or_default().trim();
        if target.is_empty() || target == "HEAD" {
            TargetRevision::DefaultBranch
        } else if let Some(branch) = target.strip_prefix("refs/heads/") {
            TargetRevision::Branch(branch.to_string())
        } else if let Some(tag) = target.strip_prefix("refs/tags/") {
            TargetRevision::Tag(tag.to_string())
        } else if target.starts_with("refs/") {
            TargetRevision::Ref(target.to_string())
        } else if is_commit_id(target) {
            TargetRevision::Commit
        } else {
            TargetRevision::Name {
                name: target.to_string(),
                range: TagRange::parse(target),
            }
        }
    }

    /// Whether a push to `pushed` can change what this revision resolves to.
    ///
    /// `default_branch` is None when the sender did not say; then every branch push counts for
    /// `HEAD` targets, and the worker finds out cheaply whether HEAD really moved.
    pub fn matches(&self, pushed: PushedRef<'_>, default_branch: Option<&str>) -> bool {
        let is_default = |name: &str| default_branch == Some(name);
        match (self, pushed) {
            (TargetRevision::DefaultBranch, PushedRef::Branch(b)) => {
                default_branch.is_none_or(|d| d == b)
            }
            (TargetRevision::DefaultBranch, PushedRef::Bare(n)) => {
                n == "HEAD" || default_branch.is_none_or(|d| d == n)
            }
            (TargetRevision::Branch(x), PushedRef::Branch(b)) => x == b,
            (TargetRevision::Branch(x), PushedRef::Bare(n)) => {
                x == n || (n == "HEAD" && is_default(x))
            }
            (TargetRevision::Tag(x), PushedRef::Tag(t) | PushedRef::Bare(t)) => x == t,
            (TargetRevision::Ref(x), PushedRef::Other(o)) => x == o,
            (TargetRevision::Name { name, .. }, PushedRef::Branch(b)) => name == b,
            (TargetRevision::Name { name, range }, PushedRef::Tag(t)) => {
                name == t || range.as_ref().is_some_and(|r| r.matches_tag(t))
            }
            (TargetRevision::Name { name, range }, PushedRef::Bare(n)) => {
                name == n
                    || (n == "HEAD" && is_default(name))
                    || range.as_ref().is_some_and(|r| r.matches_tag(n))
            }
            // Argo CD compares the ref with `refs/` cut off: `pull/1/head`.
            (TargetRevision::Name { name, .. }, PushedRef::Other(o)) => {
                o.strip_prefix("refs/") == Some(name.as_str())
            }
            _ => false,
        }
    }
}

/// A full SHA-1 or SHA-256 object id; shorter hex strings may be branch names, so they are names.
fn is_commit_id(target: &str) -> bool {
    matches!(target.len(), 40 | 64) && target.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_revisions_against_pushed_refs() {
        let sha = "a".repeat(40);
        // (targetRevision, pushed ref, default branch, matches)
        let cases: &[(&str, &str, Option<&str>, bool)] = &[
            ("", "refs/heads/main", Some("main"), true),
            ("HEAD", "refs/heads/main", Some("main"), true),
            ("HEAD", "refs/heads/dev", Some("main"), false),
            ("HEAD", "refs/heads/dev", None, true),
            ("HEAD", "refs/tags/v1", None, false),
            ("HEAD", "main", Some("main"), true),
            ("HEAD", "dev", Some("main"), false),
            ("HEAD", "dev", None, true),
            ("HEAD", "HEAD", Some("main"), true),
            ("main", "refs/heads/main", None, true),
            ("main", "refs/tags/main", None, true),
            ("main", "main", None, true),
            ("main", "HEAD", Some("main"), true),
            ("main", "HEAD", None, false),
            ("main", "refs/heads/maint", None, false),
            ("refs/heads/main", "refs/heads/main", None, true),
            ("refs/heads/main", "refs/tags/main", None, false),
            ("refs/heads/main", "main", None, true),
            ("refs/heads/main", "HEAD", Some("main"), true),
            ("refs/tags/main", "refs/heads/main", None, false),
            ("refs/tags/v1", "refs/tags/v1", None, true),
            ("refs/tags/v1", "v1", None, true),
            ("refs/tags/v1", "refs/tags/v1.0", None, false),
            ("v1", "refs/tags/v1", None, true),
            ("feature/x", "refs/heads/feature/x", None, true),
            ("three/part/rev", "refs/heads/rev", None, false),
            ("rev", "refs/heads/three/part/rev", None, false),
            ("refs/pull/7/head", "refs/pull/7/head", None, true),
            ("pull/7/head", "refs/pull/7/head", None, true),
            ("refs/pull/7/head", "refs/pull/8/head", None, false),
            (&sha, "refs/heads/main", Some("main"), false),
            (&sha, &format!("refs/heads/{sha}"), None, false),
            ("abc1234", "refs/heads/abc1234", None, true),
            (">=1.2 <2", "refs/tags/v1.4.0", None, true),
            (">=1.2 <2", "refs/tags/v2.0.0", None, false),
            (">=1.2 <2", "refs/heads/v1.4.0", None, false),
            (">=1.2 <2", "v1.4.0", None, true),
            ("~1.4", "refs/tags/1.4.3", None, true),
            ("^1.2.0", "refs/tags/v1.3.0", None, true),
            ("1.*", "refs/tags/v1.0.1", None, true),
            ("1.*", "refs/tags/v2.0.1", None, false),
            ("*", "refs/tags/v3.2.1", None, true),
            ("*", "refs/heads/main", None, false),
            ("1.2.3", "refs/tags/v1.2.3", None, true),
            ("1.2.3", "refs/tags/v1.2.4", None, false),
        ];
        for (target, pushed, default, want) in cases {
            assert_eq!(
                TargetRevision::parse(Some(target)).matches(PushedRef::parse(pushed), *default),
                *want,
                "target {target:?}, pushed {pushed:?}, default {default:?}"
            );
        }
    }

    #[test]
    fn missing_target_is_head() {
        assert!(matches!(
            TargetRevision::parse(None),
            TargetRevision::DefaultBranch
        ));
        assert!(matches!(
            TargetRevision::parse(Some("  ")),
            TargetRevision::DefaultBranch
        ));
    }
}
