//! The sandbox's kubeconfig: the document, the kube client built from it, and writing it to a file.

use base64::Engine as _;
use serde_json::Value;

use super::SandboxError;

/// A kubeconfig document for this server (JSON strings are valid YAML scalars).
pub(super) fn document(url: &str, token: Option<&str>, ca_pem: Option<&str>) -> String {
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    let user = match token {
        Some(t) => format!("\n    token: {}", quote(t)),
        None => " {}".to_string(),
    };
    let ca = match ca_pem {
        Some(pem) => format!(
            "\n    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: capstan-sandbox\n  cluster:\n    server: {}{ca}\nusers:\n- name: capstan-sandbox\n  user:{user}\ncontexts:\n- name: capstan-sandbox\n  context:\n    cluster: capstan-sandbox\n    user: capstan-sandbox\n    namespace: default\ncurrent-context: capstan-sandbox\npreferences: {{}}\n",
        quote(url)
    )
}

/// A kube client configured exactly as kubectl would be by `document`: same CA, same token.
pub(super) async fn client(document: &str) -> Result<kube::Client, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Client(e.to_string());
    let kc = kube::config::Kubeconfig::from_yaml(document).map_err(|e| err(&e))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(&e))?;
    kube::Client::try_from(config).map_err(|e| err(&e))
}
