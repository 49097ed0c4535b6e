//! What a chart directory holds before Helm sees it: no symlink leaving the repository, and
//! its dependencies either vendored in `charts/` or local (`file://`) and built on a private
//! copy, so the shared checkout is never written to.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RenderError;
use super::confine::{normalise, resolve_inside};

/// Entries (files and directories) a chart and its local dependencies may hold in all.
const MAX_ENTRIES: usize = 100_000;
/// Directory nesting below a chart directory.
const MAX_DEPTH: usize = 64;
/// `Chart.yaml` larger than this is refused before parsing.
const MAX_CHART_YAML_BYTES: u64 = 1024 * 1024;

/// The parts of `Chart.yaml` that decide how to render.
#[derive(Debug, Default, Deserialize)]
struct ChartFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    dependencies: Option<Vec<Dependency>>,
}

/// One entry of `Chart.yaml`'s `dependencies`.
#[derive(Debug, Clone, Deserialize)]
struct Dependency {
    name: String,
    #[serde(default)]
    repository: Option<String>,
}

/// How the chart can be rendered.
#[derive(Debug)]
pub(crate) struct ChartPlan {
    /// Repository-relative directories of the local (`file://`) dependencies to build, empty
    /// when every dependency is vendored in `charts/` and Helm can run on the checkout.
    pub local_dependencies: Vec<String>,
}

/// Refuses a chart (or dependency) tree holding a symlink that resolves outside `root`: Helm
/// follows symlinks when it loads a chart, so such a link would pull outside files into the
/// render. Links to directories inside the repository are walked too.
pub(crate) fn check_tree(root: &Path, dir: &Path, shown: &str) -> Result<(), RenderError> {
    let mut seen = BTreeSet::new();
    let mut entries = 0usize;
    walk(root, dir, shown, 0, &mut seen, &mut entries)
}

fn walk(
    root: &Path,
    dir: &Path,
    shown: &str,
    depth: usize,
    seen: &mut BTreeSet<PathBuf>,
    entries: &mut usize,
) -> Result<(), RenderError> {
    if depth > MAX_DEPTH {
        return Err(RenderError::TooLarge {
            what: format!("directory nesting at {shown}"),
            limit: MAX_DEPTH as u64,
        });
    }
    let real = resolve_inside(root, dir, shown)?;
    if !seen.insert(real.clone()) {
        return Ok(());
    }
    let io = |source| RenderError::Io {
        path: real.clone(),
        source,
    };
    for entry in std::fs::read_dir(&real).map_err(io)? {
        let entry = entry.map_err(io)?;
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(RenderError::TooLarge {
                what: format!("number of files in the chart at {shown}"),
                limit: MAX_ENTRIES as u64,
            });
        }
        let path = entry.path();
        let child = join_shown(shown, &entry.file_name().to_string_lossy());
        let kind = entry.file_type().map_err(|source| RenderError::Io {
            path: path.clone(),
            source,
        })?;
        if kind.is_symlink() {
            let target = resolve_inside(root, &path, &child)?;
            if target.is_dir() {
                walk(root, &target, &child, depth + 1, seen, entries)?;
            }
        } else if kind.is_dir() {
            walk(root, &path, &child, depth + 1, seen, entries)?;
        }
    }
    Ok(())
}

/// `parent/name`, or `name` at the root.
pub(crate) fn join_shown(parent: &str, name: &str) -> String {
    if parent.is_empty() || parent == "." {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Decides how to render the chart at `chart_rel` (repository-relative, normalised): every
/// dependency must be vendored in `charts/` or be a `file://` chart inside the repository;
/// a remote one that is not vendored cannot be fetched (no network) and is named in the error.
pub(crate) fn plan(
    root: &Path,
    chart_rel: &str,
    chart_dir: &Path,
) -> Result<ChartPlan, RenderError> {
    let chart = read_chart_file(chart_dir, &join_shown(chart_rel, "Chart.yaml"))?;
    let dependencies = chart.dependencies.unwrap_or_default();
    if dependencies.is_empty() {
        return Ok(ChartPlan {
            local_dependencies: Vec::new(),
        });
    }
    let vendored = vendored_names(chart_dir);
    let missing: Vec<&Dependency> = dependencies
        .iter()
        .filter(|dep| !vendored.iter().any(|v| vendored_matches(v, &dep.name)))
        .collect();
    if missing.is_empty() {
        return Ok(ChartPlan {
            local_dependencies: Vec::new(),
        });
    }
    let mut local = Vec::new();
    for dep in &dependencies {
        let repository = dep.repository.as_deref().unwrap_or_default();
        if let Some(relative) = repository.strip_prefix("file://") {
            let shown = format!("dependency {} ({repository})", dep.name);
            if relative.starts_with('/') {
                return Err(RenderError::PathEscapes { path: shown });
            }
            let joined = normalise(&join_shown(chart_rel, relative)).map_err(|_| {
                RenderError::PathEscapes {
                    path: shown.clone(),
                }
            })?;
            let rel = joined.to_string_lossy().replace('\\', "/");
            let real = resolve_inside(root, &root.join(&joined), &shown)?;
            if !real.join("Chart.yaml").is_file() {
                return Err(RenderError::NotFound {
                    path: format!("{}/Chart.yaml ({shown})", display_rel(&rel)),
                });
            }
            check_tree(root, &real, &rel)?;
            local.push(rel);
        } else if missing.iter().any(|m| m.name == dep.name) {
            return Err(RenderError::Unsupported {
                message: format!(
                    "chart dependency {:?} from {:?} is not vendored in {}/charts/ and Capstan \
                     renders without network access; run `helm dependency build` and commit \
                     charts/, or make it a file:// dependency inside the repository",
                    dep.name,
                    repository,
                    display_rel(chart_rel)
                ),
            });
        } else {
            // `helm dependency build` fetches every dependency again, vendored or not.
            return Err(RenderError::Unsupported {
                message: format!(
                    "building the local dependencies of {} would download chart dependency \
                     {:?} from {:?} again, and Capstan renders without network access; commit \
                     every dependency in charts/ (`helm dependency build`)",
                    display_rel(chart_rel),
                    dep.name,
                    repository
                ),
            });
        }
    }
    Ok(ChartPlan {
        local_dependencies: local,
    })
}

/// "." for the repository root, else the path itself.
pub(crate) fn display_rel(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}

fn read_chart_file(chart_dir: &Path, shown: &str) -> Result<ChartFile, RenderError> {
    let path = chart_dir.join("Chart.yaml");
    let io = |source| RenderError::Io {
        path: path.clone(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(&path)
        .map_err(io)?
        .take(MAX_CHART_YAML_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_CHART_YAML_BYTES {
        return Err(RenderError::TooLarge {
            what: format!("file {shown}"),
            limit: MAX_CHART_YAML_BYTES,
        });
    }
    let chart: Option<ChartFile> =
        serde_saphyr::from_str(&text).map_err(|err| RenderError::Parse {
            file: shown.to_string(),
            message: err.to_string(),
        })?;
    Ok(chart.unwrap_or_default())
}

/// What `charts/` of a chart holds: directory charts by their `Chart.yaml` name, archives by
/// their file name (`name-version.tgz`), as Helm loads them.
fn vendored_names(chart_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(chart_dir.join("charts")) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if let Ok(chart) = read_chart_file(&path, &file) {
                names.push(chart.name);
            }
        } else if let Some(stem) = file.strip_suffix(".tgz") {
            names.push(format!("{stem}.tgz"));
        }
    }
    names
}

/// A vendored chart (`name` or `name-1.2.3.tgz`) satisfies the dependency called `dep`.
fn vendored_matches(vendored: &str, dep: &str) -> bool {
    match vendored.strip_suffix(".tgz") {
        Some(stem) => stem
            .strip_prefix(dep)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit() || c == 'v')),
        None => vendored == dep,
    }
}

/// Copies each repository-relative directory of `dirs` from `root` into `into`, keeping the
/// relative layout (so `file://../dep` still resolves). Symlinks are copied as what they point
/// to (they were checked to stay inside the repository); at most `max_bytes` are copied.
pub(crate) fn copy_dirs(
    root: &Path,
    dirs: &[String],
    into: &Path,
    max_bytes: u64,
) -> Result<(), RenderError> {
    let mut copied = 0u64;
    let mut entries = 0usize;
    for rel in dirs {
        let from = resolve_inside(root, &root.join(rel), rel)?;
        copy_tree(
            &from,
            &into.join(rel),
            rel,
            0,
            &mut copied,
            &mut entries,
            max_bytes,
        )?;
    }
    Ok(())
}

fn copy_tree(
    from: &Path,
    to: &Path,
    shown: &str,
    depth: usize,
    copied: &mut u64,
    entries: &mut usize,
    max_bytes: u64,
) -> Result<(), RenderError> {
    if depth > MAX_DEPTH {
        return Err(RenderError::TooLarge {
            what: format!("directory nesting at {shown}"),
            limit: MAX_DEPTH as u64,
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(RenderError::TooLarge {
                what: format!("number of files in the chart at {shown}"),
                limit: MAX_ENTRIES as u64,
            });
        }
        let source = entry.path();
        let target = to.join(entry.file_name());
        let child = join_shown(shown, &entry.file_name().to_string_lossy());
        // Following the link is safe: check_tree refused every link leaving the repository.
        let meta = std::fs::metadata(&source).map_err(io(&source))?;
        if meta.is_dir() {
            copy_tree(
                &source,
                &target,
                &child,
                depth + 1,
                copied,
                entries,
                max_bytes,
            )?;
        } else if meta.is_file() {
            *copied = copied.saturating_add(meta.len());
            if *copied > max_bytes {
                return Err(RenderError::TooLarge {
                    what: format!("size of the chart and its local dependencies (at {child})"),
                    limit: max_bytes,
                });
            }
            std::fs::copy(&source, &target).map_err(io(&source))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendored_archive_matches_its_dependency_by_name_and_version_only() {
        assert!(vendored_matches("redis-17.3.2.tgz", "redis"));
        assert!(vendored_matches("redis", "redis"));
        assert!(!vendored_matches("redis-cluster-1.0.0.tgz", "redis"));
        assert!(!vendored_matches("redis-17.3.2.tgz", "redi"));
        assert!(!vendored_matches("other", "redis"));
    }
}
