//! The `Cluster` custom resource (`capstan.dev/v1alpha1`): a target cluster registered as a
//! Kubernetes object, its credentials kept in a Secret beside it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A cluster Applications may deploy to, by `destination.name` (the object's name unless
/// `spec.name` says otherwise) or `destination.server`.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "capstan.dev",
    version = "v1alpha1",
    kind = "Cluster",
    root = "ClusterObject",
    plural = "clusters",
    namespaced,
    printcolumn = r#"{"name":"Server","type":"string","jsonPath":".spec.server"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secretRef.name"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterObjectSpec {
    /// The API server URL, e.g. `https://10.0.0.1:6443`.
    pub server: String,
    /// The destination name when it differs from the object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespaces Capstan is limited to on this cluster (empty: the whole cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The Secret (same namespace) holding the credentials: `token`, `ca.crt`, `tls.crt` and
    /// `tls.key`, or `username` and `password` — the keys of service-account-token and TLS Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// The name to check the server's certificate against, when it is not the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Skips verifying the server's certificate; only ever when set explicitly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// A Secret in the Cluster object's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretRef {
    pub name: String,
}
