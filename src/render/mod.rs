//! Manifest rendering from a checkout: one entry point, [`render`], that picks the tool as
//! Argo CD does (explicit source fields, else `Chart.yaml`, else a kustomization, else a plain
//! directory) and returns the objects with everything the render read.
//!
//! Everything rendered must come from inside the checkout (invariant 6) and every manifest
//! parser is bounded (invariant 5).

mod budget;
mod cache;
mod chart_repo;
mod confine;
mod directory;
mod glob;
mod helm;
mod helm_chart;
mod jsonnet;
mod kustomize;
mod spec;
mod tool;
mod yaml;

pub use budget::{Budget, Expanded, Limits};
pub use cache::{CacheKey, CacheStats, RenderCache};
pub use chart_repo::{ChartCache, FetchedChart};
pub use confine::confine;
pub use directory::{
    DirectoryOptions, render_directory, render_directory_budgeted, render_directory_with_limits,
};
pub use spec::{
    DirectorySpec, HelmFileParameter, HelmParameter, HelmSpec, JsonnetSpec, JsonnetVar,
    KustomizeReplica, KustomizeSpec, ReplicaCount, SourceSpec,
};
pub use tool::{ToolSettings, find_program};
pub use yaml::{Lenient, parse_budgeted, parse_lenient, parse_manifests};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The tool that rendered a source; `as_str` is Argo CD's `sourceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// Plain YAML/JSON and `*.jsonnet` files.
    Directory,
    /// `kustomize build` / `kubectl kustomize`.
    Kustomize,
    /// `helm template`.
    Helm,
}

impl Tool {
    /// Argo CD's name for it in `status.sourceType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Directory => "Directory",
            Tool::Kustomize => "Kustomize",
            Tool::Helm => "Helm",
        }
    }
}

/// A condition a render raises without failing (e.g. `RepeatedResourceWarning`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderWarning {
    /// The condition type.
    pub condition: &'static str,
    /// What the user should know.
    pub message: String,
}

/// The condition raised when one object appears more than once in a source's output.
pub const REPEATED_RESOURCE_WARNING: &str = "RepeatedResourceWarning";

/// The result of rendering one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The Kubernetes objects, in output order, each object once.
    pub objects: Vec<Value>,
    /// Every file the render opened, relative to the repository root (`$ref/path` for a file of
    /// another source of a multi-source app); the router refreshes an app when one changes.
    pub files_read: BTreeSet<String>,
    /// The tool that rendered it.
    pub tool: Tool,
    /// The tool's version, e.g. `v3.17.0` or `jrsonnet 0.5.0-pre98`.
    pub tool_version: String,
    /// Conditions raised without failing.
    pub warnings: Vec<RenderWarning>,
    /// Files considered but skipped because they hold no Kubernetes object (e.g. a
    /// `values.yaml` beside the manifests), relative to the repository root; shown when a
    /// source renders nothing.
    pub skipped: Vec<String>,
}

impl Rendered {
    /// Nothing rendered yet by `tool`.
    pub fn empty(tool: Tool) -> Rendered {
        Rendered {
            objects: Vec::new(),
            files_read: BTreeSet::new(),
            tool,
            tool_version: String::new(),
            warnings: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

/// Everything a render may use besides the source itself.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    /// The root of the source's repository checkout (for a chart from a Helm repository: the
    /// directory holding the unpacked chart).
    pub checkout: &'a Path,
    /// The Application's name: Helm's default release name.
    pub app_name: &'a str,
    /// The destination namespace: Helm's and Kustomize's default namespace.
    pub namespace: &'a str,
    /// Multi-source `ref` names mapped to their checkout roots, for `$ref/values.yaml`.
    pub refs: &'a BTreeMap<String, PathBuf>,
    /// The external tools and their limits.
    pub tools: &'a ToolSettings,
    /// Budgets for what the render reads and produces.
    pub limits: Limits,
    /// The destination's Kubernetes version (`--kube-version` default), when known.
    pub kube_version: Option<&'a str>,
    /// The destination's API versions (`--api-versions` default), when known.
    pub api_versions: &'a [String],
}

/// Renders `source` from `ctx.checkout` with the tool Argo CD would pick, deduplicating
/// repeated objects (last wins, with a `RepeatedResourceWarning`). Blocking: callers run it off
/// the async runtime. Any error means no objects at all.
pub fn render(source: &SourceSpec, ctx: &RenderContext<'_>) -> Result<Rendered, RenderError> {
    let tool = pick_tool(source, ctx)?;
    let mut budget = Budget::new(ctx.limits);
    let path = source.path.as_str();
    let mut rendered = match tool {
        Tool::Helm => helm::render_helm(
            ctx,
            path,
            source.helm.as_ref().unwrap_or(&HelmSpec::default()),
            &mut budget,
        )?,
        Tool::Kustomize => kustomize::render_kustomize(
            ctx,
            path,
            source
                .kustomize
                .as_ref()
                .unwrap_or(&KustomizeSpec::default()),
            &mut budget,
        )?,
        Tool::Directory => directory::render_directory_source(
            ctx,
            path,
            source
                .directory
                .as_ref()
                .unwrap_or(&DirectorySpec::default()),
            &mut budget,
        )?,
    };
    dedupe(&mut rendered);
    Ok(rendered)
}

/// Argo CD's choice: one explicit tool field wins (two are an error, `plugin` is refused); a
/// chart from a Helm repository is Helm; else the files at the path decide.
pub fn pick_tool(source: &SourceSpec, ctx: &RenderContext<'_>) -> Result<Tool, RenderError> {
    if source.plugin {
        return Err(RenderError::Unsupported {
            message: "config management plugins (source.plugin) are not supported; render with \
                      Helm, Kustomize, Jsonnet or plain manifests"
                .into(),
        });
    }
    let explicit: Vec<Tool> = [
        source.helm.as_ref().map(|_| Tool::Helm),
        source.kustomize.as_ref().map(|_| Tool::Kustomize),
        source.directory.as_ref().map(|_| Tool::Directory),
    ]
    .into_iter()
    .flatten()
    .collect();
    if explicit.len() > 1 {
        return Err(RenderError::InvalidSpec {
            message: format!(
                "multiple application sources defined: {}",
                explicit
                    .iter()
                    .map(|t| t.as_str().to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if source.chart.as_deref().is_some_and(|c| !c.is_empty()) {
        return Ok(Tool::Helm);
    }
    if let Some(tool) = explicit.first() {
        return Ok(*tool);
    }
    let dir = confine(ctx.checkout, &source.path)?;
    if dir.join("Chart.yaml").is_file() {
        return Ok(Tool::Helm);
    }
    if kustomize::KUSTOMIZATION_NAMES
        .iter()
        .any(|name| dir.join(name).is_file())
    {
        return Ok(Tool::Kustomize);
    }
    Ok(Tool::Directory)
}

/// The same object twice is kept once, at its last position's content (as Argo CD's
/// controller does), and named in a warning.
pub(crate) fn dedupe(rendered: &mut Rendered) {
    let mut last: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    for (index, object) in rendered.objects.iter().enumerate() {
        last.insert(identity(object, index), index);
    }
    if last.len() == rendered.objects.len() {
        return;
    }
    let mut repeated = BTreeSet::new();
    let mut kept = Vec::with_capacity(last.len());
    for (index, object) in std::mem::take(&mut rendered.objects)
        .into_iter()
        .enumerate()
    {
        let id = identity(&object, index);
        if last.get(&id) == Some(&index) {
            kept.push(object);
        } else {
            let (api_version, kind, namespace, name) = id;
            let group = api_version.split_once('/').map_or("", |(group, _)| group);
            repeated.insert(format!("{group}/{kind}/{namespace}/{name}"));
        }
    }
    rendered.objects = kept;
    rendered.warnings.push(RenderWarning {
        condition: REPEATED_RESOURCE_WARNING,
        message: format!(
            "resource(s) appear more than once in the rendered manifests; the last copy is used: {}",
            repeated.into_iter().collect::<Vec<_>>().join(", ")
        ),
    });
}

/// (apiVersion, kind, namespace, name) of an object. An object named only by `generateName`
/// (a hook the sync names when it creates it) is never a repeat of another: it gets the
/// position it was rendered at, which no real name can equal.
fn identity(object: &Value, index: usize) -> (String, String, String, String) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let meta = object.get("metadata");
    let mut name = text(meta.and_then(|m| m.get("name")));
    if name.is_empty() && meta.and_then(|m| m.get("generateName")).is_some() {
        name = format!("\u{0}{index}");
    }
    (
        text(object.get("apiVersion")),
        text(object.get("kind")),
        text(meta.and_then(|m| m.get("namespace"))),
        name,
    )
}

/// Why rendering a source failed; each variant names the offending file where there is one.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A path (source path or symlink target) leaves the checkout.
    #[error("path {path:?} leaves the repository checkout")]
    PathEscapes {
        /// The path as given or as found in the repository.
        path: String,
    },
    /// The source path does not exist in the checkout.
    #[error("path {path:?} does not exist in the repository")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The source path is not a directory.
    #[error("path {path:?} is not a directory")]
    NotADirectory {
        /// The path as given.
        path: String,
    },
    /// A manifest file is not valid YAML or JSON.
    #[error("{file}: {message}")]
    Parse {
        /// The file, relative to the repository root.
        file: String,
        /// The parser's message, with the line where known.
        message: String,
    },
    /// A file, the whole source or the number of documents exceeds a budget.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What exceeded the budget (names the file where there is one).
        what: String,
        /// The limit that was exceeded.
        limit: u64,
    },
    /// A document is not a Kubernetes object (object with apiVersion, kind, metadata.name).
    #[error("{file}: document {index}: {message}")]
    NotAnObject {
        /// The file, relative to the repository root.
        file: String,
        /// The zero-based index of the document in the file.
        index: usize,
        /// What is missing or wrong.
        message: String,
    },
    /// An include or exclude pattern is not a valid glob.
    #[error("invalid glob pattern {pattern:?}: {message}")]
    InvalidGlob {
        /// The pattern as given.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// Symbolic links form a loop or are nested too deeply.
    #[error("symlink loop at {path:?}")]
    SymlinkLoop {
        /// The path, relative to the repository root.
        path: String,
    },
    /// A kustomization (or `source.kustomize`) names something that cannot be rendered: a path
    /// leaving the checkout, a missing file, a field of the wrong shape.
    #[error("{at}: {message}")]
    Kustomization {
        /// The kustomization file (repository-relative) or `source.kustomize`.
        at: String,
        /// What is wrong, naming the field and the entry.
        message: String,
    },
    /// The source asks for something Capstan does not do (a plugin, a remote base …).
    #[error("{message}")]
    Unsupported {
        /// What and why, and what to do instead.
        message: String,
    },
    /// The source's fields contradict each other or cannot be parsed.
    #[error("{message}")]
    InvalidSpec {
        /// What is wrong.
        message: String,
    },
    /// An external tool is not installed.
    #[error("{tool} is not installed on this worker: {hint}")]
    ToolMissing {
        /// The tool's name.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// An external tool failed; the message is its error output.
    #[error("{tool} failed: {message}")]
    ToolFailed {
        /// The tool's name.
        tool: String,
        /// Its error output, with private paths replaced.
        message: String,
    },
    /// An external tool ran past its deadline and was killed.
    #[error(
        "{tool} did not finish within {secs} s and was stopped (limit render.tool_timeout_secs)"
    )]
    ToolTimeout {
        /// The tool's name.
        tool: String,
        /// The deadline.
        secs: u64,
    },
    /// Jsonnet evaluation failed.
    #[error("{file}: {message}")]
    Jsonnet {
        /// The file evaluated, relative to the repository root.
        file: String,
        /// The evaluator's message with its stack trace.
        message: String,
    },
    /// A chart could not be fetched from a Helm repository (index, version, download, digest
    /// or archive).
    #[error("chart repository {repo}: {message}")]
    ChartFetch {
        /// The repository URL (or the chart, for an archive problem).
        repo: String,
        /// What went wrong.
        message: String,
    },
    /// Reading the checkout failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file system path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod dedupe_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_named_only_by_generate_name_are_never_repeats() {
        let hook = |prefix: &str| {
            json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"generateName": prefix, "namespace": "d"}})
        };
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let mut rendered = Rendered::empty(Tool::Directory);
        rendered.objects = vec![hook("pre-"), hook("post-"), cm.clone(), cm];
        dedupe(&mut rendered);
        assert_eq!(rendered.objects.len(), 3, "two hooks and one ConfigMap");
        assert_eq!(rendered.warnings.len(), 1);
        assert!(rendered.warnings[0].message.contains("ConfigMap"));
    }
}
