//! The desired manifests of an Application: each source resolved to a commit, fetched into the
//! shared Git cache and rendered through the render cache. The worker, the API's `manifests`
//! endpoint and the CLI all go through [`Manifests::desired`], so what they show is what a
//! sync applies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::git::{Checkout, Credentials, GitCredentials, GitError, RepoCache};
use crate::render::{
    self, CacheKey, ChartCache, DirectorySpec, HelmSpec, KustomizeSpec, Limits, RenderCache,
    RenderContext, RenderError, RenderWarning, Rendered, SourceSpec, Tool, ToolSettings,
};
use crate::store::Application;
use crate::store::application::ApplicationSource;

/// Everything needed to produce desired manifests; cheap to share behind an `Arc`.
pub struct Manifests {
    /// The shared Git cache.
    pub git: RepoCache,
    /// Credentials per repository URL (Git and Helm repositories alike).
    pub credentials: GitCredentials,
    /// Credentials from Argo CD `repository`/`repo-creds` Secrets, re-read while running.
    pub secret_credentials: crate::git::secrets::SecretCredentials,
    /// Charts downloaded from Helm repositories, one per version.
    pub charts: ChartCache,
    /// Renders shared across Applications.
    pub renders: Arc<RenderCache>,
    /// External tools and their limits.
    pub tools: ToolSettings,
    /// Budgets per rendered source.
    pub limits: Limits,
}

/// Which Application the manifests are for and where they go.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The Application's name (Helm's default release name).
    pub app_name: &'a str,
    /// The destination namespace.
    pub namespace: &'a str,
    /// The destination cluster's Kubernetes version, when known.
    pub kube_version: Option<&'a str>,
    /// The destination cluster's API versions (Helm's `--api-versions`), when known.
    pub api_versions: &'a [String],
    /// Render again even when a cached render exists (hard refresh).
    pub hard: bool,
}

/// What the sources of one Application render to.
#[derive(Debug, Clone, Default)]
pub struct AppManifests {
    /// The commit each source resolved to, in source order (values-only `ref` sources too).
    pub revisions: Vec<String>,
    /// All objects of all rendered sources, in order, each object once.
    pub objects: Vec<Value>,
    /// The tool of each rendered source, in order (Argo CD's `sourceTypes`).
    pub tools: Vec<Tool>,
    /// The tool versions used, e.g. `helm v3.17.0`.
    pub tool_versions: Vec<String>,
    /// Files read by the renders, per repository URL (as written in the spec).
    pub files_read: BTreeMap<String, BTreeSet<String>>,
    /// Conditions raised without failing.
    pub warnings: Vec<RenderWarning>,
    /// Files skipped as holding no Kubernetes object.
    pub skipped: Vec<String>,
    /// Time spent resolving revisions and fetching sources.
    pub fetch_time: std::time::Duration,
    /// Time spent rendering the fetched sources.
    pub render_time: std::time::Duration,
}

/// Why an Application's manifests could not be produced; each is an Application condition.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The spec is wrong (unparseable tool fields, a refused repository URL, a plugin …).
    #[error("{0}")]
    InvalidSpec(String),
    /// Fetching or rendering failed.
    #[error("{0}")]
    Comparison(String),
}

impl Manifests {
    /// Resolves, fetches and renders every source of an Application.
    pub async fn desired(
        &self,
        sources: &[&ApplicationSource],
        target: &Target<'_>,
    ) -> Result<AppManifests, ManifestError> {
        if sources.is_empty() {
            return Err(ManifestError::InvalidSpec(
                "spec.source or spec.sources is required".into(),
            ));
        }
        let fetch_started = std::time::Instant::now();
        let mut fetched = Vec::with_capacity(sources.len());
        for source in sources {
            let mut spec = source_spec(source)?;
            let (revision, checkout) = self.fetch(source, &mut spec).await?;
            fetched.push((source, spec, revision, checkout));
        }
        // `$name/...` in value files points at the checkout of the source whose `ref` is name.
        let mut refs: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut ref_repos: BTreeMap<String, &str> = BTreeMap::new();
        let mut ref_revisions: BTreeMap<&str, &str> = BTreeMap::new();
        for (source, _, revision, checkout) in &fetched {
            if let Some(name) = source.r#ref.as_deref().filter(|r| !r.is_empty()) {
                refs.insert(format!("${name}"), checkout.path().to_path_buf());
                ref_repos.insert(format!("${name}"), &source.repo_url);
                ref_revisions.insert(name, revision);
            }
        }
        let mut out = AppManifests {
            fetch_time: fetch_started.elapsed(),
            ..AppManifests::default()
        };
        let render_started = std::time::Instant::now();
        let mut merged = Rendered::empty(Tool::Directory);
        let mut rendered_sources = 0;
        for (source, spec, revision, checkout) in &fetched {
            out.revisions.push(revision.clone());
            if is_values_only(source) && fetched.len() > 1 {
                continue;
            }
            let rendered = self
                .render_one(spec, checkout, revision, target, &refs, &ref_revisions)
                .await
                .map_err(|e| {
                    let at = source.path.as_deref().unwrap_or(".");
                    let message = format!("rendering {at} at {revision}: {e}");
                    match e {
                        RenderError::InvalidSpec { .. } | RenderError::Unsupported { .. } => {
                            ManifestError::InvalidSpec(message)
                        }
                        _ => ManifestError::Comparison(message),
                    }
                })?;
            for file in &rendered.files_read {
                let (repo, path) = match file.split_once('/') {
                    Some((name, rest)) if ref_repos.contains_key(name) => {
                        (ref_repos[name], rest.to_string())
                    }
                    _ => (source.repo_url.as_str(), file.clone()),
                };
                out.files_read
                    .entry(repo.to_string())
                    .or_default()
                    .insert(path);
            }
            out.tools.push(rendered.tool);
            if !rendered.tool_version.is_empty()
                && !out.tool_versions.contains(&rendered.tool_version)
            {
                out.tool_versions.push(rendered.tool_version.clone());
            }
            merged.objects.extend(rendered.objects.iter().cloned());
            merged.warnings.extend(rendered.warnings.iter().cloned());
            merged.skipped.extend(rendered.skipped.iter().cloned());
            rendered_sources += 1;
        }
        // Each source was de-duplicated by its render; only objects across sources can repeat.
        if rendered_sources > 1 {
            render::dedupe(&mut merged);
        }
        out.objects = merged.objects;
        out.warnings = merged.warnings;
        out.skipped = merged.skipped;
        out.render_time = render_started.elapsed();
        Ok(out)
    }

    /// The desired manifests of `app` for its destination `cluster`, whose version and APIs
    /// Helm sees; the worker and the API both ask this way, so they render the same.
    pub async fn desired_for_app(
        &self,
        app: &Application,
        cluster: &Cluster,
        hard: bool,
    ) -> Result<AppManifests, ManifestError> {
        self.desired_for_app_from(app, &app.all_sources(), cluster, hard)
            .await
    }

    /// As [`Manifests::desired_for_app`], from `sources` instead of the spec's (a sync pinned
    /// to a revision, or a rollback).
    pub async fn desired_for_app_from(
        &self,
        app: &Application,
        sources: &[&ApplicationSource],
        cluster: &Cluster,
        hard: bool,
    ) -> Result<AppManifests, ManifestError> {
        let namespace = app.destination_namespace();
        let name = app.metadata.name.clone().unwrap_or_default();
        let api_versions = cluster.api_versions().await;
        let target = Target {
            app_name: &name,
            namespace: &namespace,
            kube_version: cluster.version(),
            api_versions: api_versions.as_slice(),
            hard,
        };
        self.desired(sources, &target).await
    }

    /// The message and author of `revision` of a Git `source`, from the mirror its render
    /// fetched; None for a Helm repository chart, or when it cannot be read (the history entry
    /// is still written, only without them).
    pub async fn commit_info(
        &self,
        source: &ApplicationSource,
        revision: &str,
    ) -> Option<crate::git::CommitInfo> {
        if source.chart.as_deref().is_some_and(|c| !c.is_empty()) {
            return None;
        }
        let creds = self.credentials_for(&source.repo_url);
        match self
            .git
            .commit_info(&source.repo_url, revision, creds.as_ref())
            .await
        {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::debug!(repo = %crate::git::redact_url(&source.repo_url), %revision,
                    error = %e, "commit message not read");
                None
            }
        }
    }

    /// Resolves `revision` (a branch, tag, ref such as `refs/pull/7/head`, or full SHA) of the
    /// Git repository `url` to a commit, with the repository's credentials.
    pub async fn resolve(&self, url: &str, revision: &str) -> Result<String, crate::git::GitError> {
        let creds = self.credentials_for(url);
        self.git.resolve(url, revision, creds.as_ref()).await
    }

    /// The credentials for `url`: the configuration's or the Secrets', whichever scope is the
    /// longer (a Secret on a tie, so a repository's own Secret beats a configured prefix).
    fn credentials_for(&self, url: &str) -> Option<Credentials> {
        let url = crate::domain::RepoUrl::parse(url).ok()?;
        let from_config = self.credentials.scoped(&url);
        let secrets = self
            .secret_credentials
            .read()
            .unwrap_or_else(|p| p.into_inner());
        match (from_config, secrets.scoped(&url)) {
            (Some((a, c)), Some((b, _))) if a > b => Some(c.clone()),
            (_, Some((_, s))) => Some(s.clone()),
            (Some((_, c)), None) => Some(c.clone()),
            (None, None) => None,
        }
    }

    /// The commit (or chart version) `source` names and the files to render it from; for a
    /// chart from a Helm repository, `spec.path` becomes the unpacked chart's directory.
    async fn fetch(
        &self,
        source: &ApplicationSource,
        spec: &mut SourceSpec,
    ) -> Result<(String, SourceRoot), ManifestError> {
        let creds = self.credentials_for(&source.repo_url);
        let creds = creds.as_ref();
        if let Some(chart) = source.chart.as_deref().filter(|c| !c.is_empty()) {
            let basic = match creds {
                Some(Credentials::Basic { username, password }) => {
                    Some((username.as_str(), password.as_str()))
                }
                _ => None,
            };
            let version = source.target_revision.as_deref().unwrap_or_default();
            let fetched = self
                .charts
                .fetch(&source.repo_url, chart, version, basic)
                .await
                .map_err(|e| ManifestError::Comparison(e.to_string()))?;
            spec.path = fetched.chart_path.clone();
            return Ok((fetched.version, SourceRoot::Chart(fetched.dir)));
        }
        let wanted = source.target_revision.as_deref().unwrap_or("HEAD");
        let revision = self
            .git
            .resolve(&source.repo_url, wanted, creds)
            .await
            .map_err(|e| {
                let message = format!("failed to resolve revision {wanted:?}: {e}");
                // A refused or malformed repoURL is the spec's fault, as in Argo CD.
                match e {
                    GitError::Refused { .. } | GitError::InvalidUrl { .. } => {
                        ManifestError::InvalidSpec(message)
                    }
                    _ => ManifestError::Comparison(message),
                }
            })?;
        let checkout = self
            .git
            .checkout(&source.repo_url, &revision, creds)
            .await
            .map_err(|e| ManifestError::Comparison(format!("failed to fetch {revision}: {e}")))?;
        Ok((revision, SourceRoot::Git(checkout)))
    }

    /// Renders one source off the async runtime, through the render cache.
    async fn render_one(
        &self,
        spec: &SourceSpec,
        checkout: &SourceRoot,
        revision: &str,
        target: &Target<'_>,
        refs: &BTreeMap<String, PathBuf>,
        ref_revisions: &BTreeMap<&str, &str>,
    ) -> Result<Arc<Rendered>, RenderError> {
        let root = checkout.path().to_path_buf();
        let tools = self.tools.clone();
        let limits = self.limits;
        let ctx_parts = CtxParts {
            app_name: target.app_name.to_string(),
            namespace: target.namespace.to_string(),
            kube_version: target.kube_version.map(str::to_string),
            api_versions: target.api_versions.to_vec(),
        };
        let spec = spec.clone();
        let refs = refs.clone();
        let revision = revision.to_string();
        let ref_revisions: BTreeMap<String, String> = ref_revisions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hard = target.hard;
        let cache = self.renders.clone();
        tokio::task::spawn_blocking(move || {
            let ctx = RenderContext {
                checkout: &root,
                app_name: &ctx_parts.app_name,
                namespace: &ctx_parts.namespace,
                refs: &refs,
                tools: &tools,
                limits,
                kube_version: ctx_parts.kube_version.as_deref(),
                api_versions: &ctx_parts.api_versions,
            };
            let tool = render::pick_tool(&spec, &ctx)?;
            // Only Helm reads the app's name, namespace and cluster version; leaving them out
            // for the other tools lets every app on the same path share one render.
            let key = CacheKey::of(&KeyInputs {
                revision: &revision,
                spec: &spec,
                tool: tool.as_str(),
                ctx: (tool == Tool::Helm).then_some(&ctx_parts),
                refs: &ref_revisions,
                tools: [&tools.helm, &tools.kustomize, &tools.kubectl],
            });
            cache.get_or_render(&key, hard, || render::render(&spec, &ctx))
        })
        .await
        .map_err(|e| RenderError::Unsupported {
            message: format!("render task failed: {e}"),
        })?
    }
}

/// Where a source's files are: a Git checkout (leased from the cache while held) or an
/// unpacked chart.
enum SourceRoot {
    Git(Checkout),
    Chart(PathBuf),
}

impl SourceRoot {
    fn path(&self) -> &std::path::Path {
        match self {
            SourceRoot::Git(checkout) => checkout.path(),
            SourceRoot::Chart(dir) => dir,
        }
    }
}

/// The parts of the render context that decide the output.
#[derive(Serialize)]
struct CtxParts {
    app_name: String,
    namespace: String,
    kube_version: Option<String>,
    api_versions: Vec<String>,
}

/// Everything a render's output depends on, hashed into its cache key.
#[derive(Serialize)]
struct KeyInputs<'a> {
    revision: &'a str,
    spec: &'a SourceSpec,
    tool: &'a str,
    ctx: Option<&'a CtxParts>,
    refs: &'a BTreeMap<String, String>,
    tools: [&'a String; 3],
}

/// A source with a `ref` and nothing to render (no path, no chart) only feeds `$ref/` files.
fn is_values_only(source: &ApplicationSource) -> bool {
    source.r#ref.as_deref().is_some_and(|r| !r.is_empty())
        && source.path.as_deref().is_none_or(str::is_empty)
        && source.chart.as_deref().is_none_or(str::is_empty)
}

/// The render-side form of a wire source; tool fields that do not parse are the spec's fault.
pub fn source_spec(source: &ApplicationSource) -> Result<SourceSpec, ManifestError> {
    fn parse<T: serde::de::DeserializeOwned>(
        field: &str,
        value: &Option<Value>,
    ) -> Result<Option<T>, ManifestError> {
        value
            .as_ref()
            .map(|v| {
                serde_json::from_value(v.clone())
                    .map_err(|e| ManifestError::InvalidSpec(format!("spec.source.{field}: {e}")))
            })
            .transpose()
    }
    let directory = match &source.directory {
        None => None,
        Some(d) => Some(DirectorySpec {
            recurse: d.recurse,
            include: d.include.clone(),
            exclude: d.exclude.clone(),
            jsonnet: parse("directory.jsonnet", &d.jsonnet)?,
        }),
    };
    Ok(SourceSpec {
        path: source.path.clone().unwrap_or_default(),
        chart: source.chart.clone().filter(|c| !c.is_empty()),
        helm: parse::<HelmSpec>("helm", &source.helm)?,
        kustomize: parse::<KustomizeSpec>("kustomize", &source.kustomize)?,
        directory,
        plugin: source.plugin.is_some(),
    })
}
