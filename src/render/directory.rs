//! Plain directory sources (Argo CD's `directory{}`): YAML, JSON and Jsonnet files read as
//! Argo CD's repo-server reads them.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::budget::{Budget, Limits};
use super::confine::{canonical_root, normalise, resolve_inside};
use super::glob::{Pattern, optional};
use super::jsonnet::{self, Evaluator};
use super::yaml::parse_lenient;
use super::{DirectorySpec, JsonnetSpec, RenderError, Rendered, Tool};

/// Directories nested deeper than this below the source path are refused.
const MAX_DEPTH: usize = 64;

/// Options of a plain directory source, as Argo CD's `source.directory`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Descend into subdirectories.
    pub recurse: bool,
    /// Only files matching this glob (relative to the source directory) are rendered.
    pub include: Option<String>,
    /// Files matching this glob (relative to the source directory) are skipped.
    pub exclude: Option<String>,
}

/// Renders every manifest under `source_path` of `checkout`, in a deterministic order.
///
/// Files `*.yaml`, `*.yml`, `*.json` and `*.jsonnet` are read in path order (directory by
/// directory, names sorted), documents in file order; YAML files holding no Kubernetes object
/// are skipped as Argo CD skips them. Any error means no output at all.
pub fn render_directory(
    checkout: &Path,
    source_path: &str,
    opts: &DirectoryOptions,
) -> Result<Vec<Value>, RenderError> {
    render_directory_with_limits(checkout, source_path, opts, &Limits::default())
}

/// `render_directory` with explicit limits.
pub fn render_directory_with_limits(
    checkout: &Path,
    source_path: &str,
    opts: &DirectoryOptions,
    limits: &Limits,
) -> Result<Vec<Value>, RenderError> {
    render_directory_budgeted(checkout, source_path, opts, &mut Budget::new(*limits))
}

/// `render_directory` charging everything it reads and parses to `budget`, so the budget can
/// be shared with the other renderers of the same source.
pub fn render_directory_budgeted(
    checkout: &Path,
    source_path: &str,
    opts: &DirectoryOptions,
    budget: &mut Budget,
) -> Result<Vec<Value>, RenderError> {
    let spec = DirectorySpec {
        recurse: opts.recurse,
        include: opts.include.clone(),
        exclude: opts.exclude.clone(),
        jsonnet: None,
    };
    Ok(render_files(checkout, source_path, &spec, budget)?.objects)
}

/// Renders a plain directory source for [`super::render`].
pub(crate) fn render_directory_source(
    ctx: &super::RenderContext<'_>,
    source_path: &str,
    spec: &DirectorySpec,
    budget: &mut Budget,
) -> Result<Rendered, RenderError> {
    render_files(ctx.checkout, source_path, spec, budget)
}

/// Walks the source directory and renders every selected file, recording what was read and
/// what was skipped.
fn render_files(
    checkout: &Path,
    source_path: &str,
    spec: &DirectorySpec,
    budget: &mut Budget,
) -> Result<Rendered, RenderError> {
    let root = canonical_root(checkout)?;
    let normalised = normalise(source_path)?;
    let base = normalised.to_string_lossy().into_owned();
    let dir = resolve_inside(&root, &root.join(&normalised), source_path)?;
    if !dir.is_dir() {
        return Err(RenderError::NotADirectory {
            path: source_path.to_string(),
        });
    }
    let walk = Walk {
        root: &root,
        base: &base,
        recurse: spec.recurse,
        include: optional(spec.include.as_deref())?,
        exclude: optional(spec.exclude.as_deref())?,
    };
    let mut files = Vec::new();
    let mut ancestors = vec![dir.clone()];
    walk.dir(&dir, "", &mut ancestors, &mut files)?;

    let mut rendered = Rendered::empty(Tool::Directory);
    // The directory's listing decides which files render: a file added under it changes the
    // output as much as an edited one ("." is the repository root).
    rendered.files_read.insert(if base.is_empty() {
        ".".to_string()
    } else {
        base.clone()
    });
    let mut jsonnet: Option<Evaluator> = None;
    let no_options = JsonnetSpec::default();
    for file in files {
        rendered.files_read.insert(file.shown.clone());
        if file.shown.ends_with(".jsonnet") {
            let evaluator = match &mut jsonnet {
                Some(evaluator) => evaluator,
                None => jsonnet.insert(Evaluator::new(
                    &root,
                    &dir,
                    spec.jsonnet.as_ref().unwrap_or(&no_options),
                )?),
            };
            rendered
                .objects
                .extend(evaluator.evaluate(&file.real, &file.shown, budget)?);
        } else {
            let text = read_bounded(&file, budget)?;
            let parsed = parse_lenient(&file.shown, &text, budget)?;
            if parsed.skipped {
                rendered.skipped.push(file.shown);
            }
            rendered.objects.extend(parsed.objects);
        }
    }
    if let Some(evaluator) = jsonnet {
        rendered.files_read.extend(evaluator.files_read());
        rendered.tool_version = jsonnet::TOOL_VERSION.to_string();
    }
    Ok(rendered)
}

/// A manifest file found by the walk.
struct Found {
    /// Repository-relative name, for messages.
    shown: String,
    /// Canonical path inside the checkout.
    real: PathBuf,
}

struct Walk<'a> {
    root: &'a Path,
    base: &'a str,
    recurse: bool,
    include: Option<Pattern>,
    exclude: Option<Pattern>,
}

impl Walk<'_> {
    /// Collects manifest files under `dir` (canonical), `relative` being its path below the
    /// source directory ("" for the source directory itself).
    fn dir(
        &self,
        dir: &Path,
        relative: &str,
        ancestors: &mut Vec<PathBuf>,
        out: &mut Vec<Found>,
    ) -> Result<(), RenderError> {
        let io = |source| RenderError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            names.push(entry.map_err(io)?.file_name());
        }
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names {
            let name_str = name.to_string_lossy();
            let rel = if relative.is_empty() {
                name_str.into_owned()
            } else {
                format!("{relative}/{name_str}")
            };
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path).map_err(|source| RenderError::Io {
                path: path.clone(),
                source,
            })?;
            let is_link = meta.file_type().is_symlink();
            // Only entries that would be read or descended into are resolved, so an unrelated
            // dangling or outside link elsewhere in the repository does not break rendering.
            let (is_dir, is_file) = if is_link {
                match std::fs::metadata(&path) {
                    Ok(target) => (target.is_dir(), target.is_file()),
                    Err(_) => (false, is_manifest_name(&rel)),
                }
            } else {
                (meta.is_dir(), meta.is_file())
            };
            if is_dir {
                if !self.recurse {
                    continue;
                }
                let real = self.resolve(&path, &rel, is_link)?;
                if ancestors.contains(&real) {
                    return Err(RenderError::SymlinkLoop {
                        path: self.shown(&rel),
                    });
                }
                if ancestors.len() > MAX_DEPTH {
                    return Err(RenderError::TooLarge {
                        what: format!("directory nesting at {}", self.shown(&rel)),
                        limit: MAX_DEPTH as u64,
                    });
                }
                ancestors.push(real.clone());
                self.dir(&real, &rel, ancestors, out)?;
                ancestors.pop();
            } else if is_file && is_manifest_name(&rel) && self.selected(&rel) {
                let real = self.resolve(&path, &rel, is_link)?;
                out.push(Found {
                    shown: self.shown(&rel),
                    real,
                });
            }
        }
        Ok(())
    }

    fn resolve(&self, path: &Path, rel: &str, is_link: bool) -> Result<PathBuf, RenderError> {
        if is_link {
            resolve_inside(self.root, path, &self.shown(rel))
        } else {
            Ok(path.to_path_buf())
        }
    }

    fn selected(&self, rel: &str) -> bool {
        if self.exclude.as_ref().is_some_and(|p| p.matches(rel)) {
            return false;
        }
        self.include.as_ref().is_none_or(|p| p.matches(rel))
    }

    fn shown(&self, rel: &str) -> String {
        if self.base.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.base)
        }
    }
}

/// Argo CD renders `*.yaml`, `*.yml`, `*.json` and `*.jsonnet` (case-sensitive) from plain
/// directories.
fn is_manifest_name(rel: &str) -> bool {
    rel.ends_with(".yaml")
        || rel.ends_with(".yml")
        || rel.ends_with(".json")
        || rel.ends_with(".jsonnet")
}

/// Reads a file within the per-file and total budgets; the file must be UTF-8.
fn read_bounded(file: &Found, budget: &mut Budget) -> Result<String, RenderError> {
    let max_file_bytes = budget.limits().max_file_bytes;
    let io = |source| RenderError::Io {
        path: file.real.clone(),
        source,
    };
    let handle = std::fs::File::open(&file.real).map_err(io)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so an oversized (or growing) file is detected, not truncated.
    handle
        .take(max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let size = bytes.len() as u64;
    if size > max_file_bytes {
        return Err(RenderError::TooLarge {
            what: format!("file {}", file.shown),
            limit: max_file_bytes,
        });
    }
    budget.charge_rendered(&file.shown, size)?;
    String::from_utf8(bytes).map_err(|err| RenderError::Parse {
        file: file.shown.clone(),
        message: format!(
            "not valid UTF-8 (at byte {})",
            err.utf8_error().valid_up_to()
        ),
    })
}
