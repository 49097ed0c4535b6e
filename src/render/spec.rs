//! What a source asks the renderers for, as Argo CD spells it (`source.helm`, `source.kustomize`,
//! `source.directory`), parsed from the Application's wire form into plain types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One source to render, independent of the Application CRD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceSpec {
    /// Path inside the repository ("" or "." for the root).
    #[serde(default)]
    pub path: String,
    /// A chart name, when the repository is a Helm chart repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Helm options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSpec>,
    /// Kustomize options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeSpec>,
    /// Plain-directory options (and Jsonnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySpec>,
    /// A config-management plugin was asked for; Capstan refuses it clearly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plugin: bool,
}

/// Argo CD's `source.directory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySpec {
    /// Descend into subdirectories.
    #[serde(default)]
    pub recurse: bool,
    /// Only files matching this glob (relative to the source directory) are rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    /// Files matching this glob (relative to the source directory) are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Options for `*.jsonnet` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonnet: Option<JsonnetSpec>,
}

/// Argo CD's `directory.jsonnet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonnetSpec {
    /// External variables (`std.extVar`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_vars: Vec<JsonnetVar>,
    /// Top-level arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlas: Vec<JsonnetVar>,
    /// Library search paths, relative to the repository root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
}

/// One extVar or TLA: a string, or Jsonnet code when `code` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonnetVar {
    /// The variable's name.
    pub name: String,
    /// Its value (a string, or code).
    #[serde(default)]
    pub value: String,
    /// Whether `value` is Jsonnet code rather than a string.
    #[serde(default)]
    pub code: bool,
}

/// Argo CD's `source.helm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSpec {
    /// Value files, relative to the chart (or `$ref/...` in multi-source apps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_files: Vec<String>,
    /// `--set` / `--set-string` parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<HelmParameter>,
    /// `--set-file` parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_parameters: Vec<HelmFileParameter>,
    /// Inline values as a YAML string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
    /// Inline values as an object (wins over `values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_object: Option<Value>,
    /// The release name (default: the Application's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// The release namespace (default: the destination namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Missing value files are skipped instead of failing the render.
    #[serde(default)]
    pub ignore_missing_value_files: bool,
    /// `--skip-crds`.
    #[serde(default)]
    pub skip_crds: bool,
    /// `--skip-tests`.
    #[serde(default)]
    pub skip_tests: bool,
    /// `--skip-schema-validation`.
    #[serde(default)]
    pub skip_schema_validation: bool,
    /// Pass repository credentials to every domain the chart's dependencies use.
    #[serde(default)]
    pub pass_credentials: bool,
    /// `--kube-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
    /// `--api-versions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
}

/// One Helm `--set` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    /// The value path, e.g. `image.tag`.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
    /// `--set-string` instead of `--set`.
    #[serde(default)]
    pub force_string: bool,
}

/// One Helm `--set-file` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmFileParameter {
    /// The value path.
    pub name: String,
    /// The file, relative to the chart (inside the repository).
    pub path: String,
}

/// Argo CD's `source.kustomize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeSpec {
    /// Prepended to every resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Appended to every resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_suffix: Option<String>,
    /// Image overrides: `name=newName:tag`, `name:tag`, `name@digest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Labels added to every resource (and selectors, unless `labelWithoutSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations added to every resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_annotations: BTreeMap<String, String>,
    /// Replace labels the kustomization already sets instead of refusing to.
    #[serde(default)]
    pub force_common_labels: bool,
    /// Replace annotations the kustomization already sets instead of refusing to.
    #[serde(default)]
    pub force_common_annotations: bool,
    /// Add common labels without touching selectors.
    #[serde(default)]
    pub label_without_selector: bool,
    /// With `labelWithoutSelector`, also label pod templates.
    #[serde(default)]
    pub label_include_templates: bool,
    /// The namespace every namespaced resource is put in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Replica overrides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<KustomizeReplica>,
    /// Patches appended to the kustomization (`patches:` entries, verbatim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Value>,
    /// Components appended to the kustomization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// Components that do not exist are skipped instead of failing the render.
    #[serde(default)]
    pub ignore_missing_components: bool,
    /// `--kube-version` for Helm charts Kustomize inflates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
    /// `--api-versions` for Helm charts Kustomize inflates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
}

/// One Kustomize replica override; Argo CD accepts the count as a number or a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomizeReplica {
    /// The workload's name.
    pub name: String,
    /// The replica count.
    pub count: ReplicaCount,
}

/// A replica count written as `3` or `"3"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplicaCount {
    /// `count: 3`
    Number(i64),
    /// `count: "3"`
    Text(String),
}

impl Default for ReplicaCount {
    fn default() -> Self {
        ReplicaCount::Number(0)
    }
}

impl ReplicaCount {
    /// The count as a number, if it is one.
    pub fn value(&self) -> Option<i64> {
        match self {
            ReplicaCount::Number(n) => Some(*n),
            ReplicaCount::Text(s) => s.trim().parse().ok(),
        }
    }
}
