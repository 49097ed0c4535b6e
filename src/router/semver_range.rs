//! Semver ranges in `targetRevision`, written the way Argo CD (Masterminds/semver) reads them,
//! checked with the `semver` crate against the names of pushed tags.
//!
//! Masterminds joins comparators with spaces or commas (AND) and `||` (OR), and knows `!=`,
//! `=<`, `~>` and hyphen ranges; `semver::VersionReq` takes comma-joined comparators only.
//! Each `||` alternative is translated into one `VersionReq` plus the versions `!=` excludes.
//! Where the two libraries differ on partial versions (`=1` is `>=1.0.0, <2.0.0` here), the
//! wider reading is kept: a needless refresh costs little, a missed one leaves an app stale.

use semver::{Version, VersionReq};

/// Longest constraint text considered; anything longer is treated as a plain name.
const MAX_LEN: usize = 1024;

/// A parsed range: the tag matches when any alternative does.
#[derive(Debug, Clone)]
pub struct TagRange {
    alternatives: Vec<Alternative>,
}

/// Comparators that must all hold.
#[derive(Debug, Clone)]
struct Alternative {
    require: VersionReq,
    exclude: Vec<VersionReq>,
}

impl TagRange {
    /// Parses `>=1.2 <2`, `~1.4`, `^1.2.0`, `1.*`, `*`, `1.2 - 1.4`, `!=1.3.0`, `a || b`;
    /// None when the text is not a range (a branch or tag name such as `main` or `release-1`).
    pub fn parse(text: &str) -> Option<TagRange> {
        if text.len() > MAX_LEN {
            return None;
        }
        let alternatives = text
            .split("||")
            .map(parse_alternative)
            .collect::<Option<Vec<_>>>()?;
        Some(TagRange { alternatives })
    }

    /// Whether the tag (with or without a leading `v`) names a version inside the range.
    pub fn matches_tag(&self, tag: &str) -> bool {
        let Some(version) = tag_version(tag) else {
            return false;
        };
        self.alternatives.iter().any(|alt| {
            alt.require.matches(&version) && !alt.exclude.iter().any(|ex| ex.matches(&version))
        })
    }
}

/// One `||` alternative: `>= 1.2, <2`, `1.2 - 1.4`, `!=1.3`.
fn parse_alternative(text: &str) -> Option<Alternative> {
    let tokens = tokens(text)?;
    let mut require = Vec::new();
    let mut exclude = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        // `A - B` is an inclusive range.
        if tokens.get(i + 1).is_some_and(|t| t == "-") {
            let upper = tokens.get(i + 2)?;
            require.push(format!(">={}", version_text(token)?));
            require.push(format!("<={}", version_text(upper)?));
            i += 3;
            continue;
        }
        let (op, version) = split_operator(token);
        let version = version_text(version)?;
        match op {
            "!=" => exclude.push(VersionReq::parse(&format!("={version}")).ok()?),
            // A bare version is exact for Masterminds, a caret range for Cargo.
            "" | "=" | "==" if !is_wildcard_version(version) => require.push(format!("={version}")),
            "" | "=" | "==" => require.push(version.to_string()),
            "=<" | "<=" => require.push(format!("<={version}")),
            "=>" | ">=" => require.push(format!(">={version}")),
            "~>" | "~" => require.push(format!("~{version}")),
            ">" | "<" | "^" => require.push(format!("{op}{version}")),
            _ => return None,
        }
        i += 1;
    }
    // `semver` accepts `*` only on its own; next to other comparators it adds nothing.
    if require.len() > 1 {
        require.retain(|c| !c.chars().all(|ch| matches!(ch, '*' | 'x' | 'X')));
    }
    let require = if require.is_empty() {
        if exclude.is_empty() {
            return None;
        }
        VersionReq::STAR
    } else {
        VersionReq::parse(&require.join(", ")).ok()?
    };
    Some(Alternative { require, exclude })
}

/// Comparators split on spaces and commas, an operator written apart joined to its version.
fn tokens(text: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut pending_op: Option<&str> = None;
    for word in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        if word != "-" && word.chars().all(|c| "<>=!~^".contains(c)) {
            if pending_op.is_some() {
                return None;
            }
            pending_op = Some(word);
            continue;
        }
        match pending_op.take() {
            Some(op) => out.push(format!("{op}{word}")),
            None => out.push(word.to_string()),
        }
    }
    if pending_op.is_some() || out.is_empty() {
        return None;
    }
    Some(out)
}

/// The leading operator of a comparator and the rest.
fn split_operator(token: &str) -> (&str, &str) {
    let split = token
        .find(|c: char| !"<>=!~^".contains(c))
        .unwrap_or(token.len());
    token.split_at(split)
}

/// The version part with a leading `v` dropped; None when it does not start like a version.
fn version_text(text: &str) -> Option<&str> {
    let text = text
        .strip_prefix(['v', 'V'])
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(text);
    text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '*' | 'x' | 'X'))
        .then_some(text)
}

/// Whether a version text has a wildcard part (`1.*`, `1.2.x`, `*`).
fn is_wildcard_version(version: &str) -> bool {
    version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .any(|part| matches!(part, "*" | "x" | "X"))
}

/// The version a tag names: `v1.2.3`, `1.2.3-rc.1`, and the partial `v1.2` / `1` Masterminds
/// also accepts (missing parts are 0).
fn tag_version(tag: &str) -> Option<Version> {
    let tag = tag.trim();
    if tag.len() > MAX_LEN {
        return None;
    }
    let tag = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let core_end = tag.find(['-', '+']).unwrap_or(tag.len());
    let (core, suffix) = tag.split_at(core_end);
    let parts = core.split('.').count();
    if parts > 3
        || !core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let padding = ".0".repeat(3 - parts);
    Version::parse(&format!("{core}{padding}{suffix}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_against_tags() {
        // (range, tag, matches)
        let cases = [
            (">=1.2 <2", "v1.2.0", true),
            (">=1.2 <2", "1.9.9", true),
            (">=1.2 <2", "v2.0.0", false),
            (">=1.2 <2", "v1.1.9", false),
            (">= 1.2, < 2", "v1.5.0", true),
            (">=1.2,<2", "v1.5.0", true),
            ("~1.4", "v1.4.7", true),
            ("~1.4", "v1.5.0", false),
            ("~>1.4", "v1.4.1", true),
            ("^1.2.0", "v1.9.0", true),
            ("^1.2.0", "v2.0.0", false),
            ("^1.2.0", "v1.1.0", false),
            ("1.*", "v1.7.3", true),
            ("1.*", "v2.0.0", false),
            ("1.2.x", "v1.2.9", true),
            ("1.2.x", "v1.3.0", false),
            ("*", "v0.0.1", true),
            ("*", "v10.2.3", true),
            ("*", "latest", false),
            ("1.2.3", "v1.2.3", true),
            ("1.2.3", "v1.2.4", false),
            ("v1.2.3", "1.2.3", true),
            ("=1.2.3", "v1.2.3", true),
            ("1.2 - 1.4", "v1.3.5", true),
            ("1.2 - 1.4", "v1.4.9", true),
            ("1.2 - 1.4", "v1.5.0", false),
            ("!=1.3.0", "v1.3.0", false),
            ("!=1.3.0", "v1.3.1", true),
            (">=1 !=1.3.0 <2", "v1.3.0", false),
            ("^1.0 || ^3.0", "v3.1.0", true),
            ("^1.0 || ^3.0", "v2.1.0", false),
            ("=<1.2", "v1.2.5", true),
            ("=<1.2", "v1.3.0", false),
            ("* >=1.1", "v1.0.0", false),
            ("* >=1.1", "v1.1.0", true),
            (">=1.2 <2", "v1.5", true),
            (">=1.2 <2", "v1.5.0-rc.1", false),
            (">=1.5.0-rc.0", "v1.5.0-rc.1", true),
            (">=1.2 <2", "1.5.0.1", false),
        ];
        for (range, tag, want) in cases {
            let parsed = TagRange::parse(range).expect("a range");
            assert_eq!(parsed.matches_tag(tag), want, "{range:?} vs {tag:?}");
        }
    }

    #[test]
    fn names_that_are_not_ranges() {
        for text in [
            "main",
            "feature/x",
            "release-1.2",
            "",
            "||",
            ">=",
            ">= <2",
            "1.2 -",
            "1.2.3.4.5",
            "HEAD",
            "@@",
        ] {
            assert!(
                TagRange::parse(text).is_none(),
                "{text:?} parsed as a range"
            );
        }
        assert!(TagRange::parse(&"1 ".repeat(2000)).is_none());
    }
}
