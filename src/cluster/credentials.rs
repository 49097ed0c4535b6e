//! How to reach a target cluster: read from an Argo CD cluster Secret (label
//! `argocd.argoproj.io/secret-type: cluster`, keys `name`, `server`, `namespaces`, `config`),
//! unchanged, or from a `Cluster` object and its Secret, and turned into a kube client.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::secret::{ExposeSecret, SecretString};
use crate::store::cluster::ClusterObjectSpec;

/// The label Argo CD marks cluster Secrets with, and its value.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// One registered cluster.
#[derive(Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub server: String,
    /// Namespaces the cluster is limited to (empty: the whole cluster).
    pub namespaces: Vec<String>,
    bearer_token: Option<SecretString>,
    basic: Option<(String, SecretString)>,
    ca_data: Option<Vec<u8>>,
    cert_data: Option<Vec<u8>>,
    key_data: Option<SecretString>,
    server_name: Option<String>,
    insecure: bool,
    /// Changes whenever anything above changes (credentials rotated).
    pub fingerprint: u64,
}

impl std::fmt::Debug for ClusterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSpec")
            .field("name", &self.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Argo CD's `config` key.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    tls_client_config: TlsClientConfig,
    #[serde(default)]
    exec_provider_config: Option<serde_json::Value>,
    #[serde(default)]
    aws_auth_config: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TlsClientConfig {
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    ca_data: Option<String>,
    #[serde(default)]
    cert_data: Option<String>,
    #[serde(default)]
    key_data: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
}

impl ClusterSpec {
    /// A cluster from an Argo CD cluster Secret's (decoded) data.
    pub fn from_secret_data(data: &BTreeMap<String, String>) -> Result<ClusterSpec, String> {
        let server = data
            .get("server")
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .filter(|s| !s.is_empty())
            .ok_or("the Secret has no server")?;
        let name = data
            .get("name")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| server.clone());
        let config: Config = match data.get("config").filter(|c| !c.trim().is_empty()) {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| format!("config is not Argo CD's cluster config JSON: {e}"))?,
            None => Config::default(),
        };
        if config.exec_provider_config.is_some() || config.aws_auth_config.is_some() {
            return Err(
                "execProviderConfig and awsAuthConfig are not supported; use bearerToken or a client certificate"
                    .into(),
            );
        }
        let b64 = |field: &str, v: Option<String>| -> Result<Option<Vec<u8>>, String> {
            v.filter(|s| !s.is_empty())
                .map(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|e| format!("tlsClientConfig.{field} is not base64: {e}"))
                })
                .transpose()
        };
        let tls = config.tls_client_config;
        let key_data = b64("keyData", tls.key_data)?
            .map(|k| SecretString::from(String::from_utf8_lossy(&k).into_owned()));
        let spec = ClusterSpec {
            namespaces: data
                .get("namespaces")
                .map(|n| {
                    n.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            bearer_token: config
                .bearer_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            basic: match (config.username, config.password) {
                (Some(u), Some(p)) if !u.is_empty() => Some((u, SecretString::from(p))),
                _ => None,
            },
            ca_data: b64("caData", tls.ca_data)?,
            cert_data: b64("certData", tls.cert_data)?,
            key_data,
            server_name: tls.server_name.filter(|s| !s.is_empty()),
            insecure: tls.insecure,
            fingerprint: fingerprint(data),
            name,
            server,
        };
        Ok(spec)
    }

    /// A cluster from a `Cluster` object and the (decoded) data of the Secret it names.
    pub fn from_object(
        object_name: &str,
        spec: &ClusterObjectSpec,
        secret: &BTreeMap<String, String>,
    ) -> Result<ClusterSpec, String> {
        let server = spec.server.trim().trim_end_matches('/').to_owned();
        if server.is_empty() {
            return Err("spec.server is empty".into());
        }
        let text = |key: &str| {
            secret
                .get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let (cert, key) = (text("tls.crt"), text("tls.key"));
        if cert.is_some() != key.is_some() {
            return Err("the Secret has only one of tls.crt and tls.key".into());
        }
        let basic = match (text("username"), text("password")) {
            (Some(u), Some(p)) => Some((u, SecretString::from(p))),
            (None, None) => None,
            _ => return Err("the Secret has only one of username and password".into()),
        };
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&serde_json::to_string(spec).unwrap_or_default(), &mut h);
        std::hash::Hash::hash(secret, &mut h);
        Ok(ClusterSpec {
            name: spec
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| object_name.to_owned()),
            server,
            namespaces: spec.namespaces.clone(),
            bearer_token: text("token").map(SecretString::from),
            basic,
            ca_data: text("ca.crt").map(String::into_bytes),
            cert_data: cert.map(String::into_bytes),
            key_data: key.map(SecretString::from),
            server_name: spec.tls_server_name.clone().filter(|s| !s.is_empty()),
            insecure: spec.insecure,
            fingerprint: std::hash::Hasher::finish(&h),
        })
    }

    /// A kube client for this cluster, configured as kubectl would be by the same kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, String> {
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let mut cluster = serde_json::json!({"server": self.server});
        if self.insecure {
            cluster["insecure-skip-tls-verify"] = true.into();
        }
        if let Some(ca) = &self.ca_data {
            cluster["certificate-authority-data"] = b64(ca).into();
        }
        if let Some(name) = &self.server_name {
            cluster["tls-server-name"] = name.clone().into();
        }
        let mut user = serde_json::json!({});
        if let Some(t) = &self.bearer_token {
            user["token"] = t.expose_secret().into();
        }
        if let Some((u, p)) = &self.basic {
            user["username"] = u.clone().into();
            user["password"] = p.expose_secret().into();
        }
        if let Some(c) = &self.cert_data {
            user["client-certificate-data"] = b64(c).into();
        }
        if let Some(k) = &self.key_data {
            user["client-key-data"] = b64(k.expose_secret().as_bytes()).into();
        }
        // JSON is YAML: the kubeconfig kubectl would read, held only in memory.
        let doc = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "target", "cluster": cluster}],
            "users": [{"name": "target", "user": user}],
            "contexts": [{"name": "target", "context": {"cluster": "target", "user": "target"}}],
            "current-context": "target",
        });
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&doc.to_string()).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| e.to_string())?;
        kube::Client::try_from(config).map_err(|e| e.to_string())
    }
}

/// A Secret's `data` (decoded) and `stringData`, as the text values Argo CD's keys hold.
pub fn secret_data(secret: k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, String> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .chain(secret.string_data.unwrap_or_default())
        .collect()
}

fn fingerprint(data: &BTreeMap<String, String>) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_argo_cd_cluster_secret_is_read_unchanged() {
        let spec = ClusterSpec::from_secret_data(&data(&[
            ("name", "prod"),
            ("server", "https://10.0.0.1:6443/"),
            ("namespaces", "a, b"),
            ("config", r#"{"bearerToken":"t0k","tlsClientConfig":{"insecure":false,"caData":"Y2E=","serverName":"api.prod"}}"#),
        ]))
        .expect("parsed");
        assert_eq!(spec.name, "prod");
        assert_eq!(spec.server, "https://10.0.0.1:6443");
        assert_eq!(spec.namespaces, ["a", "b"]);
        assert_eq!(spec.ca_data.as_deref(), Some(&b"ca"[..]));
        assert_eq!(spec.server_name.as_deref(), Some("api.prod"));
        assert!(
            format!("{spec:?}").find("t0k").is_none(),
            "no secret in Debug"
        );
        let rotated = ClusterSpec::from_secret_data(&data(&[
            ("name", "prod"),
            ("server", "https://10.0.0.1:6443/"),
            ("namespaces", "a, b"),
            ("config", r#"{"bearerToken":"new"}"#),
        ]))
        .expect("parsed");
        assert_ne!(spec.fingerprint, rotated.fingerprint);
    }

    #[test]
    fn a_cluster_object_takes_service_account_and_tls_secret_keys() {
        let spec: ClusterObjectSpec = serde_json::from_value(serde_json::json!({
            "server": "https://10.0.0.2:6443/", "tlsServerName": "api.edge"
        }))
        .expect("spec");
        let secret = data(&[
            ("token", "abc\n"),
            ("ca.crt", "-----BEGIN CERTIFICATE-----\n"),
        ]);
        let c = ClusterSpec::from_object("edge", &spec, &secret).expect("usable");
        assert_eq!(
            (c.name.as_str(), c.server.as_str()),
            ("edge", "https://10.0.0.2:6443")
        );
        assert_eq!(
            c.bearer_token.as_ref().map(|t| t.expose_secret()),
            Some("abc")
        );
        assert_eq!(c.server_name.as_deref(), Some("api.edge"));
        assert!(!c.insecure, "insecure only when set");
        let rotated = data(&[
            ("token", "def"),
            ("ca.crt", "-----BEGIN CERTIFICATE-----\n"),
        ]);
        let r = ClusterSpec::from_object("edge", &spec, &rotated).expect("usable");
        assert_ne!(c.fingerprint, r.fingerprint, "a rotated token is a change");
        let half = data(&[("tls.crt", "cert")]);
        assert!(
            ClusterSpec::from_object("edge", &spec, &half)
                .err()
                .is_some_and(|e| e.contains("tls.key"))
        );
    }

    #[test]
    fn unusable_secrets_are_refused_with_the_reason() {
        assert!(ClusterSpec::from_secret_data(&data(&[("name", "x")])).is_err());
        let exec = ClusterSpec::from_secret_data(&data(&[
            ("server", "https://x"),
            ("config", r#"{"execProviderConfig":{"command":"aws"}}"#),
        ]));
        assert!(exec.err().is_some_and(|e| e.contains("execProviderConfig")));
        let bad = ClusterSpec::from_secret_data(&data(&[("server", "https://x"), ("config", "{")]));
        assert!(bad.is_err());
    }
}
