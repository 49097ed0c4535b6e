//! The `AppProject` custom resource (`capstan.dev/v1alpha1`): Argo CD's project spec, field for field.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the Applications of a project may use: repositories, destinations and kinds.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "capstan.dev",
    version = "v1alpha1",
    kind = "AppProject",
    plural = "appprojects",
    shortname = "appproj",
    shortname = "appprojs",
    namespaced,
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".spec.description"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Repository URL globs; `!`-prefixed entries deny, and a deny wins.
    #[serde(default)]
    pub source_repos: Vec<String>,
    /// Cluster (server or name) and namespace globs an app may deploy to; `!` entries deny.
    #[serde(default)]
    pub destinations: Vec<ProjectDestination>,
    /// Cluster-scoped kinds allowed; empty means none.
    #[serde(default)]
    pub cluster_resource_whitelist: Vec<GroupKind>,
    /// Cluster-scoped kinds denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_blacklist: Vec<GroupKind>,
    /// Namespaced kinds allowed; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_resource_whitelist: Vec<GroupKind>,
    /// Namespaced kinds denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    /// Namespaces besides the control namespace where Applications of this project may live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_namespaces: Vec<String>,
    /// Argo CD project roles; kept verbatim, not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_array")]
    pub roles: Option<serde_json::Value>,
    /// Argo CD sync windows; kept verbatim, not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_array")]
    pub sync_windows: Option<serde_json::Value>,
    /// Argo CD orphaned-resource monitoring; kept verbatim, not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub orphaned_resources: Option<serde_json::Value>,
}

fn preserve_unknown_array(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "array", "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } })
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// One destination rule of a project.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: String,
}

/// An API group and kind, each a glob.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GroupKind {
    #[serde(default)]
    pub group: String,
    pub kind: String,
}

/// The name of the project every Application without one belongs to.
pub const DEFAULT_PROJECT: &str = "default";

impl AppProject {
    /// The `default` project as Argo CD creates it: any repository, destination and kind.
    pub fn default_project(namespace: &str) -> AppProject {
        let mut project = AppProject::new(
            DEFAULT_PROJECT,
            AppProjectSpec {
                source_repos: vec!["*".into()],
                destinations: vec![ProjectDestination {
                    server: Some("*".into()),
                    name: None,
                    namespace: "*".into(),
                }],
                cluster_resource_whitelist: vec![GroupKind {
                    group: "*".into(),
                    kind: "*".into(),
                }],
                ..Default::default()
            },
        );
        project.metadata.namespace = Some(namespace.to_owned());
        project
    }
}
