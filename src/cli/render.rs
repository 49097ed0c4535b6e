//! `capstan render`: what a source renders to, printed as YAML, with no server running. It goes
//! through the same Git cache and renderers as the worker, so what it prints is what a sync
//! would apply (before tracking annotations are added).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::manifests::{AppManifests, Target};
use crate::store::application::{ApplicationSource, DirectorySource};

/// Flags of `capstan render`, in the spirit of `argocd app create`'s source flags.
#[derive(clap::Args, Debug, Default)]
pub struct RenderArgs {
    /// Repository URL (Git), or a Helm repository URL with --helm-chart.
    #[arg(long)]
    pub repo: String,
    /// Branch, tag, commit or `HEAD`; with --helm-chart, the chart version (or range).
    #[arg(long, default_value = "HEAD")]
    pub revision: String,
    /// Path inside the repository.
    #[arg(long, default_value = ".")]
    pub path: String,
    /// The Application name (Helm's default release name).
    #[arg(long, default_value = "app")]
    pub app_name: String,
    /// The destination namespace.
    #[arg(long, default_value = "default")]
    pub dest_namespace: String,
    /// A chart from a Helm repository (--repo is the repository).
    #[arg(long)]
    pub helm_chart: Option<String>,
    /// Helm release name.
    #[arg(long)]
    pub release_name: Option<String>,
    /// Helm value file (relative to the chart), repeatable.
    #[arg(long = "values")]
    pub values: Vec<String>,
    /// Helm `--set NAME=VALUE`, repeatable.
    #[arg(long = "helm-set")]
    pub helm_set: Vec<String>,
    /// Helm `--set-string NAME=VALUE`, repeatable.
    #[arg(long = "helm-set-string")]
    pub helm_set_string: Vec<String>,
    /// Helm `--set-file NAME=PATH`, repeatable.
    #[arg(long = "helm-set-file")]
    pub helm_set_file: Vec<String>,
    /// Helm: leave CRDs out.
    #[arg(long)]
    pub helm_skip_crds: bool,
    /// Kustomize image override (`name=new:tag`), repeatable.
    #[arg(long = "kustomize-image")]
    pub kustomize_image: Vec<String>,
    /// Kustomize name prefix.
    #[arg(long)]
    pub nameprefix: Option<String>,
    /// Kustomize name suffix.
    #[arg(long)]
    pub namesuffix: Option<String>,
    /// Kustomize namespace.
    #[arg(long)]
    pub kustomize_namespace: Option<String>,
    /// Kustomize common label `k=v`, repeatable.
    #[arg(long = "label")]
    pub common_label: Vec<String>,
    /// Directory: descend into subdirectories.
    #[arg(long)]
    pub directory_recurse: bool,
    /// Directory: only files matching this glob.
    #[arg(long)]
    pub directory_include: Option<String>,
    /// Directory: skip files matching this glob.
    #[arg(long)]
    pub directory_exclude: Option<String>,
    /// Jsonnet `--ext-str k=v`, repeatable.
    #[arg(long = "jsonnet-ext-var-str")]
    pub jsonnet_ext_str: Vec<String>,
    /// Jsonnet `--ext-code k=v`, repeatable.
    #[arg(long = "jsonnet-ext-var-code")]
    pub jsonnet_ext_code: Vec<String>,
    /// Jsonnet `--tla-str k=v`, repeatable.
    #[arg(long = "jsonnet-tla-str")]
    pub jsonnet_tla_str: Vec<String>,
    /// Jsonnet `--tla-code k=v`, repeatable.
    #[arg(long = "jsonnet-tla-code")]
    pub jsonnet_tla_code: Vec<String>,
    /// Jsonnet library path (from the repository root), repeatable.
    #[arg(long = "jsonnet-libs")]
    pub jsonnet_libs: Vec<String>,
}

/// `NAME=VALUE`, or an error naming the flag.
fn pair(flag: &str, text: &str) -> anyhow::Result<(String, String)> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .with_context(|| format!("--{flag} {text:?}: expected NAME=VALUE"))
}

/// The Argo CD source these flags describe.
pub fn source(args: &RenderArgs) -> anyhow::Result<ApplicationSource> {
    let mut helm = Map::new();
    let mut parameters = Vec::new();
    for (flag, list, force) in [
        ("helm-set", &args.helm_set, false),
        ("helm-set-string", &args.helm_set_string, true),
    ] {
        for text in list {
            let (name, value) = pair(flag, text)?;
            parameters.push(json!({"name": name, "value": value, "forceString": force}));
        }
    }
    if !parameters.is_empty() {
        helm.insert("parameters".into(), Value::Array(parameters));
    }
    let files = args
        .helm_set_file
        .iter()
        .map(|t| pair("helm-set-file", t).map(|(n, p)| json!({"name": n, "path": p})))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !files.is_empty() {
        helm.insert("fileParameters".into(), Value::Array(files));
    }
    if !args.values.is_empty() {
        helm.insert("valueFiles".into(), json!(args.values));
    }
    if let Some(name) = &args.release_name {
        helm.insert("releaseName".into(), json!(name));
    }
    if args.helm_skip_crds {
        helm.insert("skipCrds".into(), json!(true));
    }

    let mut kustomize = Map::new();
    if !args.kustomize_image.is_empty() {
        kustomize.insert("images".into(), json!(args.kustomize_image));
    }
    for (key, value) in [
        ("namePrefix", &args.nameprefix),
        ("nameSuffix", &args.namesuffix),
        ("namespace", &args.kustomize_namespace),
    ] {
        if let Some(value) = value {
            kustomize.insert(key.into(), json!(value));
        }
    }
    if !args.common_label.is_empty() {
        let labels = args
            .common_label
            .iter()
            .map(|t| pair("label", t).map(|(k, v)| (k, Value::String(v))))
            .collect::<anyhow::Result<Map<_, _>>>()?;
        kustomize.insert("commonLabels".into(), Value::Object(labels));
    }

    let mut jsonnet = Map::new();
    for (key, lists) in [
        (
            "extVars",
            [
                ("jsonnet-ext-var-str", &args.jsonnet_ext_str, false),
                ("jsonnet-ext-var-code", &args.jsonnet_ext_code, true),
            ],
        ),
        (
            "tlas",
            [
                ("jsonnet-tla-str", &args.jsonnet_tla_str, false),
                ("jsonnet-tla-code", &args.jsonnet_tla_code, true),
            ],
        ),
    ] {
        let mut entries = Vec::new();
        for (flag, list, code) in lists {
            for text in list {
                let (name, value) = pair(flag, text)?;
                entries.push(json!({"name": name, "value": value, "code": code}));
            }
        }
        if !entries.is_empty() {
            jsonnet.insert(key.into(), Value::Array(entries));
        }
    }
    if !args.jsonnet_libs.is_empty() {
        jsonnet.insert("libs".into(), json!(args.jsonnet_libs));
    }
    let wants_directory = args.directory_recurse
        || args.directory_include.is_some()
        || args.directory_exclude.is_some()
        || !jsonnet.is_empty();
    let explicit = [!helm.is_empty(), !kustomize.is_empty(), wants_directory];
    if explicit.iter().filter(|b| **b).count() > 1 {
        anyhow::bail!("Helm, Kustomize and directory flags cannot be mixed in one render");
    }
    Ok(ApplicationSource {
        repo_url: args.repo.clone(),
        path: args.helm_chart.is_none().then(|| args.path.clone()),
        target_revision: Some(args.revision.clone()),
        chart: args.helm_chart.clone(),
        helm: (!helm.is_empty()).then_some(Value::Object(helm)),
        kustomize: (!kustomize.is_empty()).then_some(Value::Object(kustomize)),
        directory: wants_directory.then(|| DirectorySource {
            recurse: args.directory_recurse,
            include: args.directory_include.clone(),
            exclude: args.directory_exclude.clone(),
            jsonnet: (!jsonnet.is_empty()).then_some(Value::Object(jsonnet)),
        }),
        ..Default::default()
    })
}

/// Renders the source the flags describe, using the configured Git cache and tools.
pub async fn render(
    args: &RenderArgs,
    settings: &Settings,
    data_dir: &Path,
) -> anyhow::Result<AppManifests> {
    let source = source(args)?;
    let manifests = Arc::new(crate::startup::build_manifests(settings, data_dir)?);
    let target = Target {
        app_name: &args.app_name,
        namespace: &args.dest_namespace,
        kube_version: None,
        api_versions: &[],
        hard: false,
    };
    manifests
        .desired(&[&source], &target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Objects as a multi-document YAML stream, as `kubectl kustomize` and `helm template` print.
pub fn to_yaml(objects: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(object).context("printing YAML")?);
    }
    Ok(out)
}
