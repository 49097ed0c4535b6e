//! `capstan repo …`: repository credentials, as `argocd repo` and `argocd repocreds` keep them.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::ApiClient;
use super::table::{aligned, header};

impl ApiClient {
    /// `capstan repo list`.
    pub async fn list_repositories(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/api/v1/repositories", None)
            .await
    }

    /// `capstan repo add`.
    pub async fn add_repository(&self, body: &Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, "/api/v1/repositories", Some(body))
            .await
    }

    /// `capstan repo rm NAME`.
    pub async fn remove_repository(&self, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/repositories/{name}"),
            None,
        )
        .await
    }
}

/// What `capstan repo add` sends: secrets read from files, never from the command line.
pub struct NewRepository<'a> {
    pub url: &'a str,
    pub username: Option<&'a str>,
    pub password_file: Option<&'a Path>,
    pub token_file: Option<&'a Path>,
    pub ssh_private_key_path: Option<&'a Path>,
    pub insecure_ignore_host_key: bool,
    pub template: bool,
}

impl NewRepository<'_> {
    /// The request body; a file that cannot be read is an error naming it.
    pub fn body(&self) -> anyhow::Result<Value> {
        let read = |p: &Path| -> anyhow::Result<String> {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Ok(text.trim().to_owned())
        };
        let mut body = json!({"url": self.url, "template": self.template});
        if let Some(u) = self.username {
            body["username"] = u.into();
        }
        if let Some(p) = self.password_file {
            body["password"] = read(p)?.into();
        }
        if let Some(p) = self.token_file {
            body["bearerToken"] = read(p)?.into();
        }
        if let Some(p) = self.ssh_private_key_path {
            body["sshPrivateKey"] = read(p)?.into();
        }
        if self.insecure_ignore_host_key {
            body["insecure"] = true.into();
        }
        Ok(body)
    }
}

/// `capstan repo list`: NAME, TYPE, URL, USERNAME, CREDENTIALS (set or not, never the value).
pub fn repository_table(answer: &Value) -> String {
    let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut rows = vec![header(&["NAME", "TYPE", "URL", "USERNAME", "CREDENTIALS"])];
    for r in answer
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let set = r.get("hasSecret").and_then(Value::as_bool).unwrap_or(false);
        rows.push(vec![
            text(r, "name"),
            text(r, "kind"),
            text(r, "url"),
            text(r, "username"),
            if set { "set" } else { "none" }.to_owned(),
        ]);
    }
    aligned(&rows)
}
