//! The glob matching of Argo CD policies: `*` matches any run of characters, `/` included
//! (`team-a/*` covers every app of project team-a), `?`, `[…]` and `{a,b}` as usual.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use globset::{GlobBuilder, GlobMatcher};

/// Compiled patterns; only policy lines (checked at load) add to it, so it stays small.
static COMPILED: LazyLock<RwLock<HashMap<String, GlobMatcher>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// More distinct patterns than any policy holds means policies were reloaded many times.
const MAX_CACHED: usize = 20_000;

/// Compiles a policy pattern.
pub fn compile(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

/// Whether `value` (from a request) matches `pattern` (from a policy line); a pattern that
/// does not compile matches nothing.
pub fn matches(value: &str, pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if !pattern.contains(['*', '?', '[', '{', '\\']) {
        return value == pattern;
    }
    if let Some(m) = read(&COMPILED).get(pattern) {
        return m.is_match(value);
    }
    let Ok(matcher) = compile(pattern) else {
        return false;
    };
    let found = matcher.is_match(value);
    let mut cache = COMPILED.write().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(pattern.to_string(), matcher);
    found
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_cross_slashes_as_in_argo_cd() {
        assert!(matches("team-a/guestbook", "team-a/*"));
        assert!(matches("team-a/ns/guestbook", "team-a/*"));
        assert!(matches("team-a/guestbook", "*/*"));
        assert!(!matches("team-b/guestbook", "team-a/*"));
        assert!(matches("action/apps/Deployment/restart", "action/*"));
        assert!(matches("default/guestbook", "default/guest?ook"));
        assert!(matches("prod/api", "{prod,staging}/*"));
        assert!(!matches("dev/api", "{prod,staging}/*"));
        assert!(matches("sync", "sync"));
        assert!(!matches("syncx", "sync"));
        assert!(!matches("anything", "[unclosed"));
    }
}
