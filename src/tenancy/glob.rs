//! Globs as Argo CD projects write them: `*` alone matches anything, a leading `!` denies.

use globset::{GlobBuilder, GlobMatcher};

/// One compiled pattern of a project rule.
#[derive(Debug, Clone)]
pub struct Pattern {
    deny: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Any,
    Glob(GlobMatcher),
    /// A pattern globset refuses is compared literally, so a typo never matches more than it says.
    Literal(String),
}

impl Pattern {
    /// Compiles `pattern`; `slash_is_separator` makes `*` stop at `/` (repository URLs), `**` crosses it.
    pub fn new(pattern: &str, slash_is_separator: bool) -> Pattern {
        let (deny, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let matcher = if body == "*" {
            Matcher::Any
        } else {
            match GlobBuilder::new(body)
                .literal_separator(slash_is_separator)
                .build()
            {
                Ok(glob) => Matcher::Glob(glob.compile_matcher()),
                Err(_) => Matcher::Literal(body.to_owned()),
            }
        };
        Pattern { deny, matcher }
    }

    /// Whether the pattern was written with a leading `!`.
    pub fn is_deny(&self) -> bool {
        self.deny
    }

    /// Whether `value` matches the pattern's body (the `!` is the caller's to interpret).
    pub fn matches(&self, value: &str) -> bool {
        match &self.matcher {
            Matcher::Any => true,
            Matcher::Glob(glob) => glob.is_match(value),
            Matcher::Literal(text) => text == value,
        }
    }
}

/// Allowed when some allow pattern matches and no deny pattern does; deny patterns alone allow nothing.
pub fn allowed_by(patterns: &[Pattern], value: &str) -> bool {
    let mut allowed = false;
    for p in patterns {
        if p.matches(value) {
            if p.is_deny() {
                return false;
            }
            allowed = true;
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(patterns: &[&str], slash: bool) -> Vec<Pattern> {
        patterns.iter().map(|p| Pattern::new(p, slash)).collect()
    }

    #[test]
    fn a_deny_wins_and_a_deny_alone_allows_nothing() {
        let repos = compile(
            &["https://github.com/org/*", "!https://github.com/org/secret"],
            true,
        );
        assert!(allowed_by(&repos, "https://github.com/org/app"));
        assert!(!allowed_by(&repos, "https://github.com/org/secret"));
        assert!(!allowed_by(&repos, "https://github.com/other/app"));
        assert!(
            !allowed_by(&repos, "https://github.com/org/app/nested"),
            "* stops at / in repository URLs, as in Argo CD"
        );
        let only_deny = compile(&["!https://github.com/org/secret"], true);
        assert!(!allowed_by(&only_deny, "https://github.com/org/app"));
        assert!(allowed_by(
            &compile(&["*"], true),
            "https://any/where/at/all"
        ));
        assert!(allowed_by(
            &compile(&["https://github.com/**"], true),
            "https://github.com/a/b/c"
        ));
    }

    #[test]
    fn a_broken_glob_matches_only_itself() {
        let p = Pattern::new("team-[a", false);
        assert!(p.matches("team-[a"));
        assert!(!p.matches("team-a"));
    }
}
