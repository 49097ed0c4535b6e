//! Helm charts, rendered with `helm template` as Argo CD's repo-server runs it (value files,
//! parameters, inline values, CRDs, tests, kube and API versions), with local dependencies
//! built on a private copy of the chart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::confine::{canonical_root, normalise, resolve_inside};
use super::helm_chart::{check_tree, copy_dirs, display_rel, join_shown, plan};
use super::tool::{self, ToolRun, install_hint};
use super::yaml::parse_budgeted;
use super::{Budget, HelmSpec, RenderContext, RenderError, Rendered, Tool};

/// `helm version --short` per program path; asked once per process.
static VERSIONS: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());

/// Renders the chart at `path` (relative to `ctx.checkout`) with `helm template`.
pub(crate) fn render_helm(
    ctx: &RenderContext<'_>,
    path: &str,
    spec: &HelmSpec,
    budget: &mut Budget,
) -> Result<Rendered, RenderError> {
    let root = canonical_root(ctx.checkout)?;
    let chart_rel = rel_string(&normalise(path)?);
    let chart_dir = resolve_inside(&root, &root.join(&chart_rel), path)?;
    if !chart_dir.join("Chart.yaml").is_file() {
        return Err(RenderError::NotFound {
            path: join_shown(display_rel(&chart_rel), "Chart.yaml"),
        });
    }
    let program = tool::find_program(&ctx.tools.helm).ok_or_else(|| RenderError::ToolMissing {
        tool: "helm".into(),
        hint: install_hint("helm").into(),
    })?;
    let release = spec
        .release_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(ctx.app_name);
    if release.starts_with('-') {
        return Err(RenderError::InvalidSpec {
            message: format!("invalid Helm release name {release:?}"),
        });
    }

    check_tree(&root, &chart_dir, display_rel(&chart_rel))?;
    let plan = plan(&root, &chart_rel, &chart_dir)?;

    let mut files_read = BTreeSet::from([display_rel(&chart_rel).to_string()]);
    files_read.extend(plan.local_dependencies.iter().cloned());
    let mut args = vec!["template".to_string(), release.to_string(), ".".to_string()];
    let namespace = spec
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(ctx.namespace);
    if !namespace.is_empty() {
        args.push(format!("--namespace={namespace}"));
    }
    let kube_version = spec
        .kube_version
        .as_deref()
        .filter(|v| !v.is_empty())
        .or(ctx.kube_version);
    if let Some(version) = kube_version {
        args.push(format!("--kube-version={version}"));
    }
    let api_versions = if spec.api_versions.is_empty() {
        ctx.api_versions
    } else {
        &spec.api_versions
    };
    for api in api_versions {
        args.push(format!("--api-versions={api}"));
    }
    for file in &spec.value_files {
        let Some((real, shown)) = value_file(ctx, &root, &chart_rel, file, spec)? else {
            continue;
        };
        args.push(format!("--values={}", real.display()));
        files_read.insert(shown);
    }

    let scratch = scratch_dir(ctx)?;
    if let Some(text) = inline_values(spec)? {
        let values = scratch.path().join("inline-values.yaml");
        std::fs::write(&values, text).map_err(|source| RenderError::Io {
            path: values.clone(),
            source,
        })?;
        args.push(format!("--values={}", values.display()));
    }
    for parameter in &spec.parameters {
        let flag = if parameter.force_string {
            "--set-string"
        } else {
            "--set"
        };
        args.push(format!(
            "{flag}={}={}",
            parameter.name,
            escape_set_value(&parameter.value)
        ));
    }
    for parameter in &spec.file_parameters {
        let (real, shown) = chart_file(&root, &chart_rel, &parameter.path)?;
        args.push(format!("--set-file={}={}", parameter.name, real.display()));
        files_read.insert(shown);
    }
    if !spec.skip_crds {
        args.push("--include-crds".into());
    }
    if spec.skip_tests {
        args.push("--skip-tests".into());
    }
    if spec.skip_schema_validation {
        args.push("--skip-schema-validation".into());
    }

    let work_dir = if plan.local_dependencies.is_empty() {
        chart_dir.clone()
    } else {
        build_dependencies(
            ctx,
            &root,
            &chart_rel,
            &plan.local_dependencies,
            &program,
            &scratch,
            budget,
        )?
    };
    let output = tool::run(
        &ToolRun {
            tool: "helm",
            program: &program,
            args,
            cwd: &work_dir,
            env: vec![],
        },
        ctx.tools,
    )?;
    let label = format!("helm template {}", display_rel(&chart_rel));
    budget.charge_rendered(&label, output.stdout.len() as u64)?;
    let objects = parse_budgeted(&label, &output.stdout, budget)?;
    Ok(Rendered {
        objects,
        files_read,
        tool: Tool::Helm,
        tool_version: version(ctx, &program, &scratch)?,
        warnings: Vec::new(),
        skipped: Vec::new(),
    })
}

/// A path as the `/`-separated string used in `files_read`.
fn rel_string(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// A private directory for the inline values file and the chart copy, removed on drop.
fn scratch_dir(ctx: &RenderContext<'_>) -> Result<tempfile::TempDir, RenderError> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("capstan-helm-");
        b
    };
    match &ctx.tools.temp_dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .map_err(|source| RenderError::Io {
        path: ctx
            .tools
            .temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir),
        source,
    })
}

/// `valuesObject` wins over `values`; either is passed after the value files, as Argo CD does.
fn inline_values(spec: &HelmSpec) -> Result<Option<String>, RenderError> {
    if let Some(object) = spec.values_object.as_ref().filter(|v| !v.is_null()) {
        // JSON is YAML, so the object is written as JSON and keeps its exact types.
        return serde_json::to_string(object)
            .map(Some)
            .map_err(|err| RenderError::InvalidSpec {
                message: format!("helm.valuesObject: {err}"),
            });
    }
    Ok(spec.values.clone().filter(|v| !v.trim().is_empty()))
}

/// Helm splits `--set` on unescaped commas; Argo CD escapes them unless the value is a
/// `{a,b}` list, so `a,b` stays one string.
fn escape_set_value(value: &str) -> String {
    if value.starts_with('{') && value.ends_with('}') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut previous = None;
    for c in value.chars() {
        if c == ',' && previous != Some('\\') {
            out.push('\\');
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

/// Resolves one entry of `valueFiles`: `$ref/path` in another source's checkout, else a path
/// relative to the chart (absolute paths from the repository root). `None` when it is missing
/// and `ignoreMissingValueFiles` is set.
fn value_file(
    ctx: &RenderContext<'_>,
    root: &Path,
    chart_rel: &str,
    file: &str,
    spec: &HelmSpec,
) -> Result<Option<(PathBuf, String)>, RenderError> {
    let lower = file.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(RenderError::Unsupported {
            message: format!(
                "value file {file:?} is a URL; Capstan renders without network access, so \
                 commit the file to a repository (a `$ref/...` source works for another one)"
            ),
        });
    }
    let resolved = if let Some(rest) = file.strip_prefix('$') {
        let (name, inner) = rest.split_once('/').unwrap_or((rest, ""));
        let key = format!("${name}");
        let Some(ref_root) = ctx.refs.get(&key) else {
            return Err(RenderError::InvalidSpec {
                message: format!(
                    "value file {file:?}: no source of this application has ref {name:?}"
                ),
            });
        };
        let inner_rel = rel_string(&normalise(inner).map_err(|_| RenderError::PathEscapes {
            path: file.to_string(),
        })?);
        let ref_root = canonical_root(ref_root)?;
        let shown = join_shown(&key, &inner_rel);
        resolve_inside(&ref_root, &ref_root.join(&inner_rel), file).map(|real| (real, shown))
    } else {
        chart_file(root, chart_rel, file)
    };
    match resolved {
        Ok((real, shown)) if real.is_file() => Ok(Some((real, shown))),
        Ok(_) => Err(RenderError::NotFound {
            path: format!("value file {file}"),
        }),
        Err(RenderError::NotFound { .. }) if spec.ignore_missing_value_files => Ok(None),
        Err(RenderError::NotFound { .. }) => Err(RenderError::NotFound {
            path: format!("value file {file}"),
        }),
        Err(other) => Err(other),
    }
}

/// A file named relative to the chart directory (`..` allowed while it stays in the
/// repository; an absolute path counts from the repository root), resolved and confined.
fn chart_file(root: &Path, chart_rel: &str, file: &str) -> Result<(PathBuf, String), RenderError> {
    let joined = match file.strip_prefix('/') {
        Some(from_root) => from_root.to_string(),
        None => join_shown(chart_rel, file),
    };
    let rel = rel_string(&normalise(&joined).map_err(|_| RenderError::PathEscapes {
        path: file.to_string(),
    })?);
    let real = resolve_inside(root, &root.join(&rel), file)?;
    Ok((real, rel))
}

/// Copies the chart and its local dependencies into `scratch` and runs `helm dependency build`
/// there; returns the copy's chart directory. The checkout is a shared cache and is never
/// written to.
fn build_dependencies(
    ctx: &RenderContext<'_>,
    root: &Path,
    chart_rel: &str,
    dependencies: &[String],
    program: &Path,
    scratch: &tempfile::TempDir,
    budget: &Budget,
) -> Result<PathBuf, RenderError> {
    let copy_root = scratch.path().join("repo");
    let mut dirs = vec![chart_rel.to_string()];
    dirs.extend(dependencies.iter().cloned());
    copy_dirs(root, &dirs, &copy_root, budget.limits().max_total_bytes)?;
    let chart_copy = copy_root.join(chart_rel);
    let build = |cwd: &Path| {
        tool::run(
            &ToolRun {
                tool: "helm",
                program,
                args: vec!["dependency".into(), "build".into(), ".".into()],
                cwd,
                env: vec![],
            },
            ctx.tools,
        )
    };
    match build(&chart_copy) {
        Ok(_) => {}
        // A Chart.lock older than Chart.yaml stops `dependency build`; local dependencies need
        // no lock, so the copy's lock is dropped and the build retried (helm/helm#6870).
        Err(RenderError::ToolFailed { message, .. })
            if message.contains("out of sync") && chart_copy.join("Chart.lock").is_file() =>
        {
            let lock = chart_copy.join("Chart.lock");
            std::fs::remove_file(&lock).map_err(|source| RenderError::Io { path: lock, source })?;
            build(&chart_copy)?;
        }
        Err(other) => return Err(other),
    }
    Ok(chart_copy)
}

/// `helm version --short` of `program`, asked once per process.
fn version(
    ctx: &RenderContext<'_>,
    program: &Path,
    scratch: &tempfile::TempDir,
) -> Result<String, RenderError> {
    if let Some(known) = VERSIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(program)
    {
        return Ok(known.clone());
    }
    let output = tool::run(
        &ToolRun {
            tool: "helm",
            program,
            args: vec!["version".into(), "--short".into()],
            cwd: scratch.path(),
            env: vec![],
        },
        ctx.tools,
    )?;
    let version = output.stdout.trim().to_string();
    VERSIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(program.to_path_buf(), version.clone());
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_in_set_values_are_escaped_unless_the_value_is_a_list() {
        assert_eq!(escape_set_value("a,b"), "a\\,b");
        assert_eq!(escape_set_value("a\\,b"), "a\\,b");
        assert_eq!(escape_set_value("{a,b}"), "{a,b}");
        assert_eq!(escape_set_value("plain"), "plain");
    }
}
