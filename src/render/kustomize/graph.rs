//! The kustomization graph: every file `kustomize build` of a directory would read, found before
//! the tool runs, so remote bases and paths leaving the checkout are refused (invariant 6) and
//! the router knows which pushed files concern the app.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::super::RenderError;
use super::super::budget::Budget;
use super::super::confine::{normalise, resolve_inside};
use super::super::yaml::parse_documents;
use super::KUSTOMIZATION_NAMES;

/// Kustomizations nested deeper than this are refused.
const MAX_DEPTH: usize = 64;
/// A graph naming more kustomizations than this is refused.
const MAX_KUSTOMIZATIONS: usize = 2_000;

/// What a build of one kustomization reads, relative to the repository root.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Every kustomization file and every file or directory the kustomizations reference, as
    /// found in the repository (symlinks both as written and as resolved).
    pub files_read: BTreeSet<String>,
    /// The files a private copy needs, by resolved (symlink-free) path.
    pub files: BTreeSet<String>,
    /// Paths as written whose resolved path differs (a symlink on the way): `(written, resolved)`,
    /// recreated as links in a private copy so Kustomize resolves `..` as it does in the checkout.
    pub links: Vec<(String, String)>,
}

/// One kustomization read from the repository.
#[derive(Debug)]
pub(crate) struct Kustomization {
    /// Its directory, resolved, relative to the root ("" for the root).
    pub dir: String,
    /// Its file (`<dir>/kustomization.yaml` …), relative to the root.
    pub file: String,
    /// Its text as written.
    pub text: String,
    /// Its parsed content (an empty map for an empty file).
    pub content: Map<String, Value>,
}

/// A path named by a kustomization, resolved inside the checkout.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// As written, lexically joined to its kustomization's directory.
    pub written: String,
    /// With every symlink resolved.
    pub real: String,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// Walks kustomizations from a directory, recording what they read.
pub(crate) struct Walker<'a> {
    root: &'a Path,
    budget: &'a mut Budget,
    visited: BTreeSet<String>,
    /// What has been found so far.
    pub graph: Graph,
}

impl<'a> Walker<'a> {
    /// A walker over the canonical checkout `root`, charging files read to `budget`.
    pub fn new(root: &'a Path, budget: &'a mut Budget) -> Walker<'a> {
        Walker {
            root,
            budget,
            visited: BTreeSet::new(),
            graph: Graph::default(),
        }
    }

    /// Reads the kustomization in `dir` (resolved, root-relative) and everything it references.
    pub fn walk(&mut self, dir: &str) -> Result<Kustomization, RenderError> {
        self.kustomization(dir, None, 0)
    }

    /// Resolves `entry` of `field`, written in `at` (a kustomization or `source.kustomize`)
    /// relative to `dir`, inside the checkout. Remote entries are refused here, before any tool
    /// runs.
    pub fn resolve(
        &self,
        at: &str,
        dir: &str,
        field: &str,
        entry: &str,
    ) -> Result<Resolved, RenderError> {
        let refuse = |message: String| RenderError::Kustomization {
            at: at.to_string(),
            message,
        };
        if is_remote(entry) {
            return Err(remote(at, field, entry));
        }
        if entry.starts_with('/') {
            return Err(refuse(format!(
                "{field} entry {entry:?} is an absolute path; only paths relative to the \
                 kustomization, inside the repository, can be rendered"
            )));
        }
        let joined = if dir.is_empty() {
            entry.to_string()
        } else {
            format!("{dir}/{entry}")
        };
        let leaves = || {
            refuse(format!(
                "{field} entry {entry:?} leaves the repository checkout"
            ))
        };
        let written = normalise(&joined).map_err(|_| leaves())?;
        let written_text = slash_path(&written);
        let real = match resolve_inside(self.root, &self.root.join(&written), &written_text) {
            Ok(real) => real,
            Err(RenderError::PathEscapes { .. }) => {
                return Err(refuse(format!(
                    "{field} entry {entry:?} leaves the repository checkout through a symbolic link"
                )));
            }
            Err(RenderError::SymlinkLoop { .. }) => {
                return Err(refuse(format!(
                    "{field} entry {entry:?} is a symbolic link loop"
                )));
            }
            Err(RenderError::NotFound { .. }) if looks_like_host(entry) => {
                return Err(remote(at, field, entry));
            }
            Err(RenderError::NotFound { .. }) => {
                return Err(refuse(format!(
                    "{field} entry {entry:?} does not exist in the repository ({written_text})"
                )));
            }
            Err(other) => return Err(other),
        };
        let is_dir = real.is_dir();
        let real = self.relative(&real);
        Ok(Resolved {
            written: written_text,
            real,
            is_dir,
        })
    }

    /// Records a resolved file or directory as read, and as needed by a private copy.
    pub fn record(&mut self, found: &Resolved) {
        self.graph.files_read.insert(found.real.clone());
        if found.written != found.real {
            self.graph.files_read.insert(found.written.clone());
            self.graph
                .links
                .push((found.written.clone(), found.real.clone()));
        }
        if !found.is_dir {
            self.graph.files.insert(found.real.clone());
        }
    }

    /// Walks a directory named by `field` of `at` that must hold a kustomization (a base, a
    /// component, or a resource directory).
    pub fn walk_referenced(
        &mut self,
        at: &str,
        field: &str,
        entry: &str,
        found: &Resolved,
        depth: usize,
    ) -> Result<(), RenderError> {
        self.record(found);
        // A directory reached twice (a diamond) is read once; Kustomize itself reports cycles.
        if self.visited.contains(&found.real) {
            return Ok(());
        }
        self.kustomization(&found.real, Some((at, field, entry)), depth + 1)
            .map(|_| ())
    }

    fn kustomization(
        &mut self,
        dir: &str,
        via: Option<(&str, &str, &str)>,
        depth: usize,
    ) -> Result<Kustomization, RenderError> {
        if depth > MAX_DEPTH || self.visited.len() >= MAX_KUSTOMIZATIONS {
            return Err(RenderError::TooLarge {
                what: format!("kustomization graph (at {})", show_dir(dir)),
                limit: if depth > MAX_DEPTH {
                    MAX_DEPTH as u64
                } else {
                    MAX_KUSTOMIZATIONS as u64
                },
            });
        }
        let file = self.find_file(dir, via)?;
        let text = self.read(&file)?;
        let content = match parse_documents(&file, &text, self.budget)?.as_slice() {
            [] | [Value::Null] => Map::new(),
            [Value::Object(map)] => map.clone(),
            [_] => {
                return Err(RenderError::Kustomization {
                    at: file,
                    message: "a kustomization must be a YAML mapping".into(),
                });
            }
            _ => {
                return Err(RenderError::Kustomization {
                    at: file,
                    message: "a kustomization must be a single YAML document".into(),
                });
            }
        };
        let kustomization = Kustomization {
            dir: dir.to_string(),
            file,
            text,
            content,
        };
        if self.visited.insert(dir.to_string()) {
            self.references(&kustomization, depth)?;
        }
        Ok(kustomization)
    }

    /// The kustomization file of `dir`, in Kustomize's order of preference, recorded as read.
    fn find_file(
        &mut self,
        dir: &str,
        via: Option<(&str, &str, &str)>,
    ) -> Result<String, RenderError> {
        for name in KUSTOMIZATION_NAMES {
            let written = join(dir, name);
            let path = self.root.join(&written);
            if std::fs::symlink_metadata(&path).is_err() {
                continue;
            }
            let at = via.map_or_else(|| written.clone(), |(at, _, _)| at.to_string());
            let field = via.map_or("kustomization", |(_, field, _)| field);
            let found = self.resolve(&at, dir, field, name)?;
            if found.is_dir {
                continue;
            }
            self.record(&found);
            return Ok(found.real);
        }
        let names = KUSTOMIZATION_NAMES.join(", ");
        Err(match via {
            Some((at, field, entry)) => RenderError::Kustomization {
                at: at.to_string(),
                message: format!(
                    "{field} entry {entry:?} is a directory without a kustomization ({names})"
                ),
            },
            None => RenderError::Kustomization {
                at: show_dir(dir),
                message: format!("no kustomization ({names}) in this directory"),
            },
        })
    }

    /// Follows every field of a kustomization that names a file or directory.
    fn references(&mut self, k: &Kustomization, depth: usize) -> Result<(), RenderError> {
        let at = k.file.as_str();
        for field in ["helmCharts", "helmChartInflationGenerator", "helmGlobals"] {
            if k.content.get(field).is_some_and(|v| !v.is_null()) {
                return Err(RenderError::Unsupported {
                    message: format!(
                        "{at}: {field} is not supported: Capstan does not run Kustomize with \
                         --enable-helm; render the chart as a Helm source instead"
                    ),
                });
            }
        }
        // Entries that may be a kustomization directory or a file.
        for field in [
            "resources",
            "bases",
            "components",
            "generators",
            "transformers",
            "validators",
        ] {
            for entry in strings(k, field)? {
                if is_inline(entry) {
                    continue;
                }
                let found = self.resolve(at, &k.dir, field, entry)?;
                let must_be_dir = matches!(field, "bases" | "components");
                if found.is_dir {
                    self.walk_referenced(at, field, entry, &found, depth)?;
                } else if must_be_dir {
                    return Err(RenderError::Kustomization {
                        at: at.to_string(),
                        message: format!("{field} entry {entry:?} is a file, not a directory"),
                    });
                } else {
                    self.record(&found);
                }
            }
        }
        // Entries naming a file.
        let mut files: Vec<(&str, &str)> = Vec::new();
        for field in ["patchesStrategicMerge", "crds", "configurations"] {
            for entry in strings(k, field)? {
                if !is_inline(entry) {
                    files.push((field, entry));
                }
            }
        }
        for field in ["patches", "patchesJson6902", "replacements"] {
            for item in maps(k, field)? {
                if let Some(path) = string_field(k, field, item, "path")? {
                    files.push((field, path));
                }
            }
        }
        if let Some(openapi) = k.content.get("openapi").and_then(Value::as_object)
            && let Some(path) = string_field(k, "openapi", openapi, "path")?
        {
            files.push(("openapi", path));
        }
        for field in ["configMapGenerator", "secretGenerator"] {
            for item in maps(k, field)? {
                for entry in string_list(k, field, item.get("files"))? {
                    // `key=path` names the key the file's content is stored under.
                    let path = entry.split_once('=').map_or(entry, |(_, path)| path);
                    files.push((field, path));
                }
                for entry in string_list(k, field, item.get("envs"))? {
                    files.push((field, entry));
                }
                if let Some(env) = string_field(k, field, item, "env")? {
                    files.push((field, env));
                }
            }
        }
        for (field, entry) in files {
            let found = self.resolve(at, &k.dir, field, entry)?;
            self.record(&found);
        }
        Ok(())
    }

    /// Reads a (resolved, root-relative) file within the per-file and total budgets.
    fn read(&mut self, file: &str) -> Result<String, RenderError> {
        let path = self.root.join(file);
        let max = self.budget.limits().max_file_bytes;
        let io = |source| RenderError::Io {
            path: path.clone(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .map_err(io)?
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > max {
            return Err(RenderError::TooLarge {
                what: format!("file {file}"),
                limit: max,
            });
        }
        self.budget.charge_rendered(file, bytes.len() as u64)?;
        String::from_utf8(bytes).map_err(|err| RenderError::Parse {
            file: file.to_string(),
            message: format!(
                "not valid UTF-8 (at byte {})",
                err.utf8_error().valid_up_to()
            ),
        })
    }

    fn relative(&self, real: &Path) -> String {
        real.strip_prefix(self.root)
            .map(slash_path)
            .unwrap_or_default()
    }
}

/// The error for a remote base, component or file.
fn remote(at: &str, field: &str, entry: &str) -> RenderError {
    RenderError::Unsupported {
        message: format!(
            "{at}: {field} entry {entry:?} is remote; remote bases are not supported: Capstan \
             renders only from the fetched repository; vendor it into the repository"
        ),
    }
}

/// Whether an entry names something Kustomize would fetch (a URL, a git address, a go-getter
/// style reference).
pub(crate) fn is_remote(entry: &str) -> bool {
    let lower = entry.trim().to_ascii_lowercase();
    lower.contains("://")
        || lower.starts_with("git@")
        || lower.starts_with("git::")
        || ["?ref=", "?version=", "?submodules=", "?timeout="]
            .iter()
            .any(|query| lower.contains(query))
}

/// Whether a path that does not exist locally reads like `host.tld/org/repo`, which Kustomize
/// would try to clone.
fn looks_like_host(entry: &str) -> bool {
    match entry.split_once('/') {
        Some((first, rest)) => {
            first.contains('.')
                && !first.starts_with('.')
                && !first.ends_with('.')
                && !rest.is_empty()
        }
        None => false,
    }
}

/// Kustomize accepts some entries as inline YAML instead of a path.
fn is_inline(entry: &str) -> bool {
    entry.contains('\n') || entry.trim_start().starts_with('{')
}

/// The list of strings under `field` (absent or null: none).
fn strings<'k>(k: &'k Kustomization, field: &str) -> Result<Vec<&'k str>, RenderError> {
    string_list(k, field, k.content.get(field))
}

fn string_list<'k>(
    k: &Kustomization,
    field: &str,
    value: Option<&'k Value>,
) -> Result<Vec<&'k str>, RenderError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| shape(k, field, "a list of paths"))
            })
            .collect(),
        Some(_) => Err(shape(k, field, "a list of paths")),
    }
}

/// The list of mappings under `field` (absent or null: none).
fn maps<'k>(k: &'k Kustomization, field: &str) -> Result<Vec<&'k Map<String, Value>>, RenderError> {
    match k.content.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_object()
                    .ok_or_else(|| shape(k, field, "a list of mappings"))
            })
            .collect(),
        Some(_) => Err(shape(k, field, "a list of mappings")),
    }
}

fn string_field<'k>(
    k: &Kustomization,
    field: &str,
    item: &'k Map<String, Value>,
    key: &str,
) -> Result<Option<&'k str>, RenderError> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(shape(k, &format!("{field}[].{key}"), "a path")),
    }
}

fn shape(k: &Kustomization, field: &str, expected: &str) -> RenderError {
    RenderError::Kustomization {
        at: k.file.clone(),
        message: format!("{field} must be {expected}"),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn show_dir(dir: &str) -> String {
    if dir.is_empty() {
        ".".into()
    } else {
        dir.into()
    }
}

/// A relative path written with `/`.
pub(crate) fn slash_path(path: &Path) -> String {
    path.iter()
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Root-relative `relative` as a path under `base`.
pub(crate) fn under(base: &Path, relative: &str) -> PathBuf {
    if relative.is_empty() {
        base.to_path_buf()
    } else {
        base.join(relative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_entries_are_recognised_and_local_paths_are_not() {
        for remote in [
            "https://github.com/org/repo//deploy?ref=v1",
            "git@github.com:org/repo.git",
            "ssh://git@example.com/repo",
            "git::https://example.com/repo",
            "org/repo?ref=main",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in ["../base", "base", "components/x.yaml", "a.b/c"] {
            assert!(!is_remote(local), "{local}");
        }
        assert!(looks_like_host("github.com/org/repo"));
        assert!(!looks_like_host("../base"));
        assert!(!looks_like_host("./base"));
    }
}
