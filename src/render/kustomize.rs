//! Kustomize overlays, rendered with `kustomize build` or `kubectl kustomize`.
//!
//! The kustomization graph is walked first (graph.rs), so a remote base or a path leaving the
//! checkout is refused before any tool runs. `source.kustomize` overrides are applied as Argo
//! CD's `kustomize edit` calls would (edit.rs), on a private copy of only the files the graph
//! names: the checkout is a shared cache and is never written.

mod edit;
mod graph;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::budget::Budget;
use super::confine::{canonical_root, normalise, resolve_inside};
use super::tool::{self, ToolRun, ToolSettings};
use super::yaml::parse_budgeted;
use super::{KustomizeSpec, RenderContext, RenderError, Rendered, Tool};
use graph::{Walker, slash_path, under};

/// The file names that make a directory a kustomization, in Kustomize's order of preference.
pub(crate) const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Renders the kustomization at `path` (relative to `ctx.checkout`).
pub(crate) fn render_kustomize(
    ctx: &RenderContext<'_>,
    path: &str,
    spec: &KustomizeSpec,
    budget: &mut Budget,
) -> Result<Rendered, RenderError> {
    let root = canonical_root(ctx.checkout)?;
    let normalised = normalise(path)?;
    let dir = resolve_inside(&root, &root.join(&normalised), path)?;
    if !dir.is_dir() {
        return Err(RenderError::NotADirectory {
            path: path.to_string(),
        });
    }
    let dir = dir.strip_prefix(&root).map(slash_path).unwrap_or_default();

    let mut walker = Walker::new(&root, budget);
    let top = walker.walk(&dir)?;
    let components = override_components(&mut walker, &top.dir, spec)?;
    override_patch_files(&mut walker, &top.dir, spec)?;
    let graph = std::mem::take(&mut walker.graph);
    drop(walker);

    let (tool_name, program, mut args) = pick_program(ctx.tools)?;
    let copy;
    let cwd: &Path = if edit::has_overrides(spec, &components) {
        let edited = edit::apply(&top.file, &top.text, &top.content, spec, &components)?;
        copy = private_copy(&root, &graph, ctx.tools, budget.limits().max_total_bytes)?;
        let target = copy.path().join(&top.file);
        std::fs::write(&target, edited).map_err(|source| RenderError::Io {
            path: target.clone(),
            source,
        })?;
        copy.path()
    } else {
        &root
    };
    args.push(if dir.is_empty() {
        ".".into()
    } else {
        dir.clone()
    });
    let output = tool::run(
        &ToolRun {
            tool: tool_name,
            program: &program,
            args,
            cwd,
            env: Vec::new(),
        },
        ctx.tools,
    )?;
    let label = format!("output of {tool_name} for {}", show(&dir));
    budget.charge_rendered(&label, output.stdout.len() as u64)?;
    let objects = parse_budgeted(&label, &output.stdout, budget)?;
    Ok(Rendered {
        objects,
        files_read: graph.files_read,
        tool: Tool::Kustomize,
        tool_version: version(tool_name, &program, ctx.tools),
        warnings: Vec::new(),
        skipped: Vec::new(),
    })
}

/// The `source.kustomize.components` that exist, walked like the kustomization's own; missing
/// ones fail the render unless `ignoreMissingComponents` is set (then they are left out).
fn override_components(
    walker: &mut Walker<'_>,
    dir: &str,
    spec: &KustomizeSpec,
) -> Result<Vec<String>, RenderError> {
    const AT: &str = "source.kustomize";
    let mut found = Vec::new();
    for component in &spec.components {
        let found_path = match walker.resolve(AT, dir, "components", component) {
            Ok(resolved) => resolved,
            Err(RenderError::Kustomization { message, .. })
                if message.contains("does not exist") =>
            {
                if spec.ignore_missing_components {
                    continue;
                }
                return Err(RenderError::Kustomization {
                    at: AT.into(),
                    message: format!("{message}; set ignoreMissingComponents to render without it"),
                });
            }
            Err(other) => return Err(other),
        };
        if !found_path.is_dir {
            return Err(RenderError::Kustomization {
                at: AT.into(),
                message: format!("components entry {component:?} is a file, not a directory"),
            });
        }
        walker.walk_referenced(AT, "components", component, &found_path, 0)?;
        found.push(component.clone());
    }
    Ok(found)
}

/// Files named by `source.kustomize.patches[].path`, confined and recorded like the
/// kustomization's own patches (they are relative to the top kustomization).
fn override_patch_files(
    walker: &mut Walker<'_>,
    dir: &str,
    spec: &KustomizeSpec,
) -> Result<(), RenderError> {
    for patch in &spec.patches {
        match patch.get("path") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(path)) => {
                let found = walker.resolve("source.kustomize", dir, "patches", path)?;
                walker.record(&found);
            }
            Some(_) => {
                return Err(RenderError::InvalidSpec {
                    message: "source.kustomize.patches[].path must be a string".into(),
                });
            }
        }
    }
    Ok(())
}

/// `kustomize build` when a kustomize binary is found, else `kubectl kustomize`.
fn pick_program(
    settings: &ToolSettings,
) -> Result<(&'static str, PathBuf, Vec<String>), RenderError> {
    if let Some(program) = tool::find_program(&settings.kustomize) {
        return Ok(("kustomize", program, vec!["build".into()]));
    }
    if let Some(program) = tool::find_program(&settings.kubectl) {
        return Ok(("kubectl", program, vec!["kustomize".into()]));
    }
    Err(RenderError::ToolMissing {
        tool: "kustomize".into(),
        hint: tool::install_hint("kustomize").into(),
    })
}

/// A private temporary tree holding the graph's files at their repository paths (symlinks
/// recreated inside it), so relative references resolve as in the checkout.
fn private_copy(
    root: &Path,
    graph: &graph::Graph,
    settings: &ToolSettings,
    max_bytes: u64,
) -> Result<tempfile::TempDir, RenderError> {
    let temp = match &settings.temp_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("capstan-kustomize-")
            .tempdir_in(dir),
        None => tempfile::Builder::new()
            .prefix("capstan-kustomize-")
            .tempdir(),
    }
    .map_err(|source| RenderError::Io {
        path: settings.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
        source,
    })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    let mut copied = 0u64;
    for file in &graph.files {
        let from = root.join(file);
        let to = temp.path().join(file);
        copied = copied.saturating_add(std::fs::metadata(&from).map_err(io(&from))?.len());
        if copied > max_bytes {
            return Err(RenderError::TooLarge {
                what: format!("files of the kustomization (at {file})"),
                limit: max_bytes,
            });
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&from, &to).map_err(io(&from))?;
    }
    // Shorter paths first, so a linked directory exists before anything written under it.
    let mut links = graph.links.clone();
    links.sort_by_key(|(written, _)| written.len());
    for (written, real) in links {
        let link = under(temp.path(), &written);
        let target = under(temp.path(), &real);
        if std::fs::symlink_metadata(&link).is_ok() {
            continue;
        }
        std::fs::create_dir_all(&target).ok();
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::os::unix::fs::symlink(&target, &link).map_err(io(&link))?;
    }
    Ok(temp)
}

/// The Kustomize version of `program`, asked once per program; empty when it cannot be told.
fn version(tool_name: &str, program: &Path, settings: &ToolSettings) -> String {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(known) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(program) {
        return known.clone();
    }
    let args: Vec<String> = if tool_name == "kubectl" {
        ["version", "--client", "-o", "json"]
            .map(String::from)
            .to_vec()
    } else {
        vec!["version".into()]
    };
    let cwd = std::env::temp_dir();
    let Ok(output) = tool::run(
        &ToolRun {
            tool: tool_name,
            program,
            args,
            cwd: &cwd,
            env: Vec::new(),
        },
        settings,
    ) else {
        return String::new();
    };
    let found = if tool_name == "kubectl" {
        serde_json::from_str::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|v| v.get("kustomizeVersion")?.as_str().map(String::from))
    } else {
        kustomize_version(&output.stdout)
    };
    let Some(found) = found else {
        return String::new();
    };
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(program.to_path_buf(), found.clone());
    found
}

/// `v5.5.0` from `kustomize version` (`v5.5.0`, or v4's `{Version:kustomize/v4.5.7 …}`).
fn kustomize_version(text: &str) -> Option<String> {
    let text = text.trim();
    let start = text
        .find("kustomize/")
        .map_or(0, |i| i + "kustomize/".len());
    let version: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '}')
        .collect();
    (!version.is_empty()).then_some(version)
}

fn show(dir: &str) -> &str {
    if dir.is_empty() { "." } else { dir }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_both_kustomize_output_forms_are_read() {
        assert_eq!(kustomize_version("v5.5.0\n").as_deref(), Some("v5.5.0"));
        assert_eq!(
            kustomize_version("{Version:kustomize/v4.5.7 GitCommit:abc}").as_deref(),
            Some("v4.5.7")
        );
        assert_eq!(kustomize_version(""), None);
    }
}
