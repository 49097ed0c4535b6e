//! Argo CD style include/exclude globs, matched against paths relative to the source directory.

use globset::{Glob, GlobMatcher};

use super::RenderError;

/// A compiled include or exclude pattern (`*` also crosses `/`, as in Argo CD).
pub(crate) struct Pattern(GlobMatcher);

impl Pattern {
    /// Compiles `pattern`; `{a,b}` brace sets are supported.
    pub(crate) fn new(pattern: &str) -> Result<Pattern, RenderError> {
        Glob::new(pattern)
            .map(|glob| Pattern(glob.compile_matcher()))
            .map_err(|err| RenderError::InvalidGlob {
                pattern: pattern.to_string(),
                message: err.kind().to_string(),
            })
    }

    /// Whether the `/`-separated relative path matches.
    pub(crate) fn matches(&self, relative: &str) -> bool {
        self.0.is_match(relative)
    }
}

/// Parses an optional pattern, treating an empty string as absent (as Argo CD does).
pub(crate) fn optional(pattern: Option<&str>) -> Result<Option<Pattern>, RenderError> {
    match pattern.map(str::trim) {
        None | Some("") => Ok(None),
        Some(pattern) => Pattern::new(pattern).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_argo_cd() {
        let yaml = Pattern::new("*.yaml").unwrap();
        assert!(yaml.matches("a.yaml"));
        assert!(yaml.matches("sub/a.yaml"));
        assert!(!yaml.matches("a.json"));
        let set = Pattern::new("{a.yaml,b.yaml}").unwrap();
        assert!(set.matches("a.yaml") && set.matches("b.yaml"));
        assert!(!set.matches("c.yaml"));
        assert!(optional(Some("")).unwrap().is_none());
        assert!(matches!(
            Pattern::new("{a"),
            Err(RenderError::InvalidGlob { .. })
        ));
    }
}
