//! The client side of the CLI: `capstan app …` and `capstan webhook …` talk to a running server.

pub mod account;
pub mod app;
pub mod app_view;
pub mod client_config;
pub mod cluster;
pub mod docs;
pub mod login;
pub mod preview;
pub mod project_view;
pub mod queue;
pub mod render;
pub mod repo;
pub mod table;
pub mod trigger;
pub mod webhook;

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::secret::ExposeSecret;

/// A failure that ends the CLI with its own exit code: 1 when something is not in the wanted
/// state, 2 for usage and connection errors (clap's own code for usage errors).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    /// The process exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl ExitError {
    /// A failure ending with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> ExitError {
        ExitError {
            code,
            message: message.into(),
        }
    }
}

/// The exit code for an error: its [`ExitError`]'s, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.downcast_ref::<ExitError>().map_or(1, |e| e.code)
}

/// Where the server is and how to authenticate.
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client for `server`; the token comes from the flag/env, else `<data_dir>/api-token`.
    pub fn new(server: &str, token: Option<String>, data_dir: &Path) -> anyhow::Result<ApiClient> {
        let token = match token {
            Some(t) => t,
            None => {
                let path = data_dir.join("api-token");
                // No way to authenticate is a usage error (exit 2), as an unreachable server is.
                crate::secret::read_file(&path)
                    .map_err(|e| {
                        anyhow::Error::new(e).context(ExitError::new(
                            2,
                            format!(
                                "no --token given (flag, CAPSTAN_TOKEN or the client config file) and {} is unreadable",
                                path.display()
                            ),
                        ))
                    })?
                    .expose_secret()
                    .to_owned()
            }
        };
        Ok(ApiClient {
            base: server.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow::Error::new(e).context(ExitError::new(2, format!("cannot reach {}", self.base)))
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body.get("error").and_then(Value::as_str).unwrap_or("");
            bail!("{status}: {msg}");
        }
        Ok(body)
    }

    /// `capstan app create -f FILE` (YAML or JSON; Argo CD documents accepted).
    pub async fn create(&self, file: &Path) -> anyhow::Result<Value> {
        self.create_from_file("/api/v1/applications", file).await
    }

    /// `capstan proj create -f FILE` (YAML or JSON; Argo CD documents accepted).
    pub async fn create_project(&self, file: &Path) -> anyhow::Result<Value> {
        self.create_from_file("/api/v1/projects", file).await
    }

    async fn create_from_file(&self, collection: &str, file: &Path) -> anyhow::Result<Value> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let doc: Value =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        self.call(reqwest::Method::POST, collection, Some(&doc))
            .await
    }

    /// `capstan proj list`.
    pub async fn list_projects(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/api/v1/projects", None)
            .await
    }

    /// `capstan proj get NAME`.
    pub async fn get_project(&self, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/projects/{name}"),
            None,
        )
        .await
    }

    /// `capstan proj delete NAME`.
    pub async fn delete_project(&self, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/projects/{name}"),
            None,
        )
        .await
    }

    /// `capstan proj role create-token PROJECT ROLE`.
    pub async fn create_role_token(
        &self,
        project: &str,
        role: &str,
        expires_in_secs: Option<u64>,
    ) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/roles/{role}/token"),
            Some(&serde_json::json!({ "expiresIn": expires_in_secs })),
        )
        .await
    }

    /// `capstan proj role delete-token PROJECT ROLE ID`.
    pub async fn delete_role_token(
        &self,
        project: &str,
        role: &str,
        id: &str,
    ) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/projects/{project}/roles/{role}/token/{id}"),
            None,
        )
        .await
    }

    /// `capstan app list`.
    pub async fn list(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/api/v1/applications", None)
            .await
    }

    /// `capstan app get`.
    pub async fn get(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/applications/{namespace}/{name}"),
            None,
        )
        .await
    }

    /// `capstan app refresh`.
    pub async fn action(
        &self,
        namespace: &str,
        name: &str,
        action: &str,
        query: &str,
    ) -> anyhow::Result<Value> {
        let path = format!("/api/v1/applications/{namespace}/{name}/{action}{query}");
        self.call(reqwest::Method::POST, &path, None).await
    }

    /// `capstan app manifests`.
    pub async fn manifests(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/applications/{namespace}/{name}/manifests"),
            None,
        )
        .await
    }

    /// `capstan app delete`.
    pub async fn delete(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/applications/{namespace}/{name}"),
            None,
        )
        .await
    }
}

/// One line per project: name, repositories, destinations, description.
pub fn project_table(list: &Value) -> String {
    let mut out = format!(
        "{:<24} {:<40} {:<40} {}\n",
        "NAME", "SOURCE REPOS", "DESTINATIONS", "DESCRIPTION"
    );
    let joined = |p: &Value, pointer: &str, f: &dyn Fn(&Value) -> String| {
        p.pointer(pointer)
            .and_then(Value::as_array)
            .map(|items| items.iter().map(f).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    for p in list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |v: &Value, pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let repos = joined(p, "/spec/sourceRepos", &|r| {
            r.as_str().unwrap_or("").to_owned()
        });
        let dests = joined(p, "/spec/destinations", &|d| {
            let cluster = d
                .get("server")
                .or_else(|| d.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!("{cluster},{}", text(d, "/namespace"))
        });
        out.push_str(&format!(
            "{:<24} {repos:<40} {dests:<40} {}\n",
            text(p, "/metadata/name"),
            text(p, "/spec/description")
        ));
    }
    out
}

/// An error and its causes as one line for the user: causes whose text the line already holds
/// (errors that print their source) are not repeated, and line breaks become spaces.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[derive(Debug, thiserror::Error)]
    #[error("invalid configuration: {0}")]
    struct Repeats(#[from] std::io::Error);

    #[test]
    fn an_error_chain_is_one_line_without_repeats() {
        let io = std::io::Error::other("bad key\nsecond line");
        let e = anyhow::Error::from(Repeats(io)).context("loading settings");
        assert_eq!(
            error_line(&e),
            "loading settings: invalid configuration: bad key second line"
        );
    }
}
