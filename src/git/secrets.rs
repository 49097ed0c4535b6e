//! Repository credentials from Argo CD's Secrets, read unchanged: `repository` Secrets (label
//! `argocd.argoproj.io/secret-type: repository`, keys `url`, `username`, `password`,
//! `bearerToken`, `sshPrivateKey`, `insecure`) for one repository, and `repo-creds` templates whose `url` is a prefix. The
//! longest covering scope wins, so a repository's own Secret beats a template, as in Argo CD.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::ssh::SshKey;
use super::{Credentials, GitCredentials};
use crate::domain::RepoUrl;

/// Credentials read from Secrets, replaced as a whole on every re-read.
pub type SecretCredentials = Arc<RwLock<GitCredentials>>;

/// Argo CD's ConfigMap of trusted SSH host keys (key `ssh_known_hosts`), in the control namespace.
pub const KNOWN_HOSTS_CONFIG_MAP: &str = "argocd-ssh-known-hosts-cm";

/// How often the Secrets are read again (rotated passwords are used after at most this long).
const REREAD: Duration = Duration::from_secs(5);

/// Reads the control namespace's repository Secrets now and then every few seconds.
pub async fn watch(
    client: kube::Client,
    namespace: &str,
    shutdown: CancellationToken,
) -> SecretCredentials {
    let shared: SecretCredentials = Arc::default();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let known_hosts: Api<ConfigMap> = Api::namespaced(client, namespace);
    if let Some(creds) = read(&api, &known_hosts).await {
        *shared.write().unwrap_or_else(|p| p.into_inner()) = creds;
    }
    let out = shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(REREAD) => {}
            }
            if let Some(creds) = read(&api, &known_hosts).await {
                *shared.write().unwrap_or_else(|p| p.into_inner()) = creds;
            }
        }
    });
    out
}

async fn read(api: &Api<Secret>, known_hosts: &Api<ConfigMap>) -> Option<GitCredentials> {
    let params =
        ListParams::default().labels("argocd.argoproj.io/secret-type in (repository,repo-creds)");
    let secrets = match api.list(&params).await {
        Ok(list) => list.items,
        Err(e) => {
            warn!(error = %e, "cannot list repository Secrets; keeping the credentials known");
            return None;
        }
    };
    let known_hosts = match known_hosts.get_opt(KNOWN_HOSTS_CONFIG_MAP).await {
        Ok(cm) => cm
            .and_then(|cm| cm.data)
            .and_then(|mut d| d.remove("ssh_known_hosts"))
            .unwrap_or_default(),
        Err(e) => {
            warn!(error = %e, "cannot read {KNOWN_HOSTS_CONFIG_MAP}; keeping the credentials known");
            return None;
        }
    };
    let mut out = GitCredentials::new();
    for secret in secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let data = crate::cluster::credentials::secret_data(secret);
        match credentials_of(&data, &known_hosts) {
            Ok(Some((url, creds))) => {
                if let Err(e) = out.add(&url, creds) {
                    warn!(secret = %name, error = %e, "a repository Secret is not usable");
                }
            }
            Ok(None) => {}
            Err(e) => warn!(secret = %name, error = %e, "a repository Secret is not usable"),
        }
    }
    Some(out)
}

/// The URL scope and credentials of one Secret; None when it carries none (a public repository).
/// An `sshPrivateKey` trusts the host keys of Argo CD's known-hosts ConfigMap (`known_hosts`), or
/// any host key when the Secret says `insecure: "true"`, as Argo CD does.
pub fn credentials_of(
    data: &BTreeMap<String, String>,
    known_hosts: &str,
) -> Result<Option<(String, Credentials)>, String> {
    let url = data
        .get("url")
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .ok_or("the Secret has no url")?;
    let field = |k: &str| {
        data.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(private_key) = field("sshPrivateKey") {
        let insecure = field("insecure").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !insecure && known_hosts.trim().is_empty() {
            return Err(format!(
                "sshPrivateKey needs the server's host key in the {KNOWN_HOSTS_CONFIG_MAP} ConfigMap (key ssh_known_hosts), or insecure: \"true\""
            ));
        }
        RepoUrl::parse_prefix(&url).map_err(|e| format!("url {url:?}: {e}"))?;
        let key = SshKey {
            private_key,
            known_hosts: known_hosts.to_owned(),
            insecure_ignore_host_key: insecure,
        };
        return Ok(Some((url, Credentials::Ssh(key))));
    }
    let creds = match (field("username"), field("password"), field("bearerToken")) {
        (_, _, Some(token)) => Credentials::Token(token),
        (Some(username), Some(password), None) => Credentials::Basic { username, password },
        (None, Some(password), None) => Credentials::Basic {
            // Argo CD sends a token-only password with any user name; Git hosts ignore it.
            username: "git".into(),
            password,
        },
        _ => return Ok(None),
    };
    RepoUrl::parse_prefix(&url).map_err(|e| format!("url {url:?}: {e}"))?;
    Ok(Some((url, creds)))
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
    fn a_repository_secret_beats_a_template_and_templates_match_by_prefix() {
        let mut creds = GitCredentials::new();
        for d in [
            data(&[
                ("url", "https://git.example.com/org"),
                ("username", "tpl"),
                ("password", "t"),
            ]),
            data(&[
                ("url", "https://git.example.com/org/app.git"),
                ("username", "own"),
                ("password", "o"),
            ]),
        ] {
            let (url, c) = credentials_of(&d, "").expect("ok").expect("creds");
            creds.add(&url, c).expect("added");
        }
        let user = |url: &str| match creds.for_url(url) {
            Some(Credentials::Basic { username, .. }) => username.clone(),
            _ => String::new(),
        };
        assert_eq!(user("https://git.example.com/org/app.git"), "own");
        assert_eq!(user("https://git.example.com/org/other.git"), "tpl");
        assert_eq!(user("https://git.example.com/orgx/other.git"), "");
        assert!(
            credentials_of(&data(&[("url", "https://x/y")]), "")
                .expect("ok")
                .is_none()
        );
        assert!(credentials_of(&data(&[("username", "u")]), "").is_err());
    }

    #[test]
    fn an_ssh_key_trusts_the_known_hosts_config_map_or_insecure_only_when_said() {
        let secret = data(&[
            ("url", "git@git.example.com:org/app.git"),
            ("sshPrivateKey", "KEY\n"),
        ]);
        let refused = credentials_of(&secret, "").err().unwrap_or_default();
        assert!(refused.contains(KNOWN_HOSTS_CONFIG_MAP), "{refused}");
        let line = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        match credentials_of(&secret, line) {
            Ok(Some((_, Credentials::Ssh(key)))) => {
                assert_eq!(key.private_key, "KEY");
                assert_eq!(key.known_hosts, line);
                assert!(!key.insecure_ignore_host_key);
            }
            other => panic!("not an SSH key: {other:?}"),
        }
        let mut insecure = secret.clone();
        insecure.insert("insecure".into(), "true".into());
        match credentials_of(&insecure, "") {
            Ok(Some((_, Credentials::Ssh(key)))) => assert!(key.insecure_ignore_host_key),
            other => panic!("not an SSH key: {other:?}"),
        }
    }
}
