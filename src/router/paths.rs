//! Which changed files affect one source of an Application: its `path`, or the entries of
//! `argocd.argoproj.io/manifest-generate-paths`, plus the files its last render read.

use globset::{GlobBuilder, GlobMatcher};

/// App annotation listing the paths whose changes affect it (`;`-separated, Argo CD compatible).
pub const MANIFEST_GENERATE_PATHS: &str = "argocd.argoproj.io/manifest-generate-paths";

/// Longest path considered; longer ones are not paths a Git host reports.
const MAX_PATH_LEN: usize = 4096;

/// The repository paths whose changes affect one source of an Application.
#[derive(Debug, Clone)]
pub struct WatchedPaths {
    rules: Vec<PathRule>,
}

/// One watched path.
#[derive(Debug, Clone)]
enum PathRule {
    /// The path itself and everything under it; `""` is the whole repository.
    Under(String),
    /// A glob (`*` stays within a segment); a file counts when it or a directory above it matches.
    Glob {
        matcher: GlobMatcher,
        /// The segments before the first one with a glob character.
        anchor: String,
    },
}

impl WatchedPaths {
    /// The paths of one source.
    ///
    /// Without the annotation, the source's `path` ("" or "." is the whole repository). With it,
    /// its entries replace the source path as in Argo CD, so an app can narrow a whole-repository
    /// source to what really feeds it (`.` re-adds the source path): `/x` is from the repository
    /// root, `x` and `../x` from the source path, globs allowed. An annotation with no usable
    /// entry counts as absent. `render_inputs` (repository-root paths the last render read,
    /// `status.renderInputs`) always add to the set.
    pub fn for_source(
        source_path: Option<&str>,
        annotation: Option<&str>,
        render_inputs: &[String],
    ) -> WatchedPaths {
        let base = clean(source_path.unwrap_or_default());
        let mut rules: Vec<PathRule> = annotation
            .into_iter()
            .flat_map(|a| a.split(';'))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .filter_map(|entry| {
                if let Some(root_relative) = entry.strip_prefix('/') {
                    clean(root_relative)
                } else {
                    let base = base.as_deref()?;
                    clean(&format!("{base}/{entry}"))
                }
            })
            .map(|path| PathRule::new(&path))
            .collect();
        if rules.is_empty()
            && let Some(base) = base
        {
            // A source path that climbs out of the repository names nothing a push can change.
            rules.push(PathRule::Under(base));
        }
        rules.extend(
            render_inputs
                .iter()
                .filter_map(|p| clean(p))
                .map(PathRule::Under),
        );
        WatchedPaths { rules }
    }

    /// Whether a change to `file` (a path from [`clean`]) affects the source.
    pub fn matches(&self, file: &str) -> bool {
        self.rules.iter().any(|rule| rule.matches(file))
    }

    /// The directory each rule sits under, so an index can find the rule from a file's ancestors.
    pub fn anchors(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| match rule {
            PathRule::Under(path) => path.as_str(),
            PathRule::Glob { anchor, .. } => anchor.as_str(),
        })
    }
}

impl PathRule {
    fn new(path: &str) -> PathRule {
        if !path.contains(['*', '?', '[', '{']) {
            return PathRule::Under(path.to_string());
        }
        match GlobBuilder::new(path).literal_separator(true).build() {
            Ok(glob) => {
                let anchor = path
                    .split('/')
                    .take_while(|segment| !segment.contains(['*', '?', '[', '{']))
                    .collect::<Vec<_>>()
                    .join("/");
                PathRule::Glob {
                    matcher: glob.compile_matcher(),
                    anchor,
                }
            }
            // Not a valid glob: the characters are taken literally.
            Err(_) => PathRule::Under(path.to_string()),
        }
    }

    fn matches(&self, file: &str) -> bool {
        match self {
            PathRule::Under(path) => is_under(file, path),
            PathRule::Glob { matcher, .. } => {
                matcher.is_match(file) || ancestors(file).any(|dir| matcher.is_match(dir))
            }
        }
    }
}

/// Whether `file` is `dir` or lies under it; everything lies under `""`.
pub fn is_under(file: &str, dir: &str) -> bool {
    dir.is_empty()
        || file
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The directories above a path, deepest first (`a/b/c` → `a/b`, `a`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.rmatch_indices('/').map(|(i, _)| &path[..i])
}

/// A repository path in one spelling: no leading `/` or `./`, no empty or `.` segments, `..`
/// resolved; `""` is the root. None when it climbs above the root or is absurdly long.
pub fn clean(path: &str) -> Option<String> {
    if path.len() > MAX_PATH_LEN {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            other => segments.push(other),
        }
    }
    Some(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_paths() {
        for (raw, want) in [
            ("apps/a", Some("apps/a")),
            ("/apps/a/", Some("apps/a")),
            ("./apps//a/.", Some("apps/a")),
            ("apps/a/../b", Some("apps/b")),
            (".", Some("")),
            ("", Some("")),
            ("/", Some("")),
            ("..", None),
            ("apps/../../x", None),
        ] {
            assert_eq!(clean(raw).as_deref(), want, "{raw:?}");
        }
        assert_eq!(clean(&"a/".repeat(3000)), None);
    }

    #[test]
    fn watched_paths_table() {
        // (source path, annotation, changed file, affected)
        let cases: &[(Option<&str>, Option<&str>, &str, bool)] = &[
            // No annotation: the source path.
            (Some("apps/a"), None, "apps/a/deploy.yaml", true),
            (Some("apps/a"), None, "apps/a", true),
            (Some("apps/a"), None, "apps/a/deep/er/x.yaml", true),
            (Some("apps/a"), None, "apps/ab/deploy.yaml", false),
            (Some("apps/a"), None, "apps/b/deploy.yaml", false),
            (Some("apps/a"), None, "README.md", false),
            (Some("/apps/a/"), None, "apps/a/x.yaml", true),
            (Some("./apps/a"), None, "apps/a/x.yaml", true),
            (None, None, "anything/at/all", true),
            (Some(""), None, "README.md", true),
            (Some("."), None, "README.md", true),
            (Some("/"), None, "README.md", true),
            (Some("../outside"), None, "outside/x", false),
            // The annotation's forms.
            (Some("apps/a"), Some("."), "apps/a/x.yaml", true),
            (Some("apps/a"), Some("."), "apps/b/x.yaml", false),
            (Some("apps/a"), Some("/shared"), "shared/lib.yaml", true),
            (Some("apps/a"), Some("/shared"), "apps/a/x.yaml", false),
            (Some("apps/a"), Some(".;/shared"), "apps/a/x.yaml", true),
            (Some("apps/a"), Some(" . ; /shared ;"), "shared/x", true),
            (
                Some("apps/a"),
                Some("values"),
                "apps/a/values/prod.yaml",
                true,
            ),
            (Some("apps/a"), Some("values"), "apps/a/other.yaml", false),
            (
                Some("apps/a"),
                Some("../common"),
                "apps/common/x.yaml",
                true,
            ),
            (Some("apps/a"), Some("../common"), "common/x.yaml", false),
            (
                Some("apps/a"),
                Some("/lib/*.libsonnet"),
                "lib/x.libsonnet",
                true,
            ),
            (
                Some("apps/a"),
                Some("/lib/*.libsonnet"),
                "lib/sub/x.libsonnet",
                false,
            ),
            (
                Some("apps/a"),
                Some("/lib/*.libsonnet"),
                "lib/x.yaml",
                false,
            ),
            (
                Some("apps/a"),
                Some("/envs/*"),
                "envs/prod/values.yaml",
                true,
            ),
            (
                Some("apps/a"),
                Some("/envs/**/values.yaml"),
                "envs/a/b/values.yaml",
                true,
            ),
            (Some("apps/a"), Some("/envs/p?od"), "envs/prod/x", true),
            (Some("apps/a"), Some("/"), "README.md", true),
            (Some("apps/a"), Some("/[unclosed"), "[unclosed/x", true),
            // Whole-repository source narrowed by the annotation.
            (Some("."), Some("/apps/a"), "apps/b/x.yaml", false),
            (Some("."), Some("/apps/a"), "apps/a/x.yaml", true),
            // No usable entry: as if absent.
            (Some("apps/a"), Some(""), "apps/a/x.yaml", true),
            (Some("apps/a"), Some(" ; "), "apps/b/x.yaml", false),
            (Some("apps/a"), Some("/../x"), "apps/a/x.yaml", true),
        ];
        for (source, annotation, file, want) in cases {
            let watched = WatchedPaths::for_source(*source, *annotation, &[]);
            let file = clean(file).expect("a clean path");
            assert_eq!(
                watched.matches(&file),
                *want,
                "path {source:?}, annotation {annotation:?}, file {file:?}"
            );
        }
    }

    #[test]
    fn render_inputs_add_to_the_watched_paths() {
        let watched =
            WatchedPaths::for_source(Some("apps/a"), None, &["charts/common/values.yaml".into()]);
        assert!(watched.matches("charts/common/values.yaml"));
        assert!(watched.matches("apps/a/x.yaml"));
        assert!(!watched.matches("charts/common/other.yaml"));
    }

    #[test]
    fn anchors_name_the_literal_directory_of_each_rule() {
        let watched = WatchedPaths::for_source(Some("apps/a"), Some(".;/lib/*/x;/*.yaml"), &[]);
        assert_eq!(watched.anchors().collect::<Vec<_>>(), ["apps/a", "lib", ""]);
    }
}
