//! `capstan cluster …`: the clusters apps can target, as `argocd cluster` shows and adds them.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};

use super::ApiClient;
use super::table::{aligned, header};

impl ApiClient {
    /// `capstan cluster list`.
    pub async fn list_clusters(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/api/v1/clusters", None)
            .await
    }

    /// `capstan cluster get NAME`.
    pub async fn get_cluster(&self, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/clusters/{name}"),
            None,
        )
        .await
    }

    /// `capstan cluster add`.
    pub async fn add_cluster(&self, body: &Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, "/api/v1/clusters", Some(body))
            .await
    }

    /// `capstan cluster rm NAME`.
    pub async fn remove_cluster(&self, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/clusters/{name}"),
            None,
        )
        .await
    }
}

/// What `capstan cluster add` sends: the files' contents, base64 where Argo CD keeps base64.
pub struct NewCluster<'a> {
    pub name: &'a str,
    pub server: &'a str,
    pub token_file: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub ca: Option<&'a Path>,
    pub insecure: bool,
}

impl NewCluster<'_> {
    /// The request body; a file that cannot be read is an error naming it.
    pub fn body(&self) -> anyhow::Result<Value> {
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let b64 = |p: &Path| -> anyhow::Result<String> {
            Ok(base64::engine::general_purpose::STANDARD.encode(read(p)?))
        };
        let mut body = json!({"name": self.name, "server": self.server, "insecure": self.insecure});
        if let Some(p) = self.token_file {
            let token = String::from_utf8(read(p)?).context("the token file is not UTF-8")?;
            body["bearerToken"] = token.trim().into();
        }
        if let Some(p) = self.ca {
            body["caData"] = b64(p)?.into();
        }
        if let Some(p) = self.cert {
            body["certData"] = b64(p)?.into();
        }
        if let Some(p) = self.key {
            body["keyData"] = b64(p)?.into();
        }
        Ok(body)
    }
}

/// `capstan cluster list` as `argocd cluster list`: SERVER, NAME, VERSION, STATUS, MESSAGE, APPS;
/// `wide` adds where each is registered (SOURCE).
pub fn cluster_table(answer: &Value, wide: bool) -> String {
    let items = answer.get("items").and_then(Value::as_array);
    let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut columns = vec!["SERVER", "NAME", "VERSION", "STATUS", "MESSAGE", "APPS"];
    if wide {
        columns.push("SOURCE");
    }
    let mut rows = vec![header(&columns)];
    for c in items.into_iter().flatten() {
        let mut row = vec![
            text(c, "server"),
            text(c, "name"),
            text(c, "version"),
            text(c, "status"),
            text(c, "message"),
            c.get("apps")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .to_string(),
        ];
        if wide {
            row.push(text(c, "source"));
        }
        rows.push(row);
    }
    aligned(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_table_lists_each_cluster_with_its_state() {
        let answer = json!({"items": [
            {"name": "in-cluster", "server": "https://kubernetes.default.svc", "status": "Successful", "version": "v1.33.0", "message": "", "apps": 2},
            {"name": "prod", "server": "https://10.0.0.1:6443", "status": "Failed", "message": "connection refused", "apps": 1, "source": "Cluster/prod"},
        ]});
        let table = cluster_table(&answer, false);
        assert!(!table.contains("SOURCE"), "{table}");
        let wide = cluster_table(&answer, true);
        assert!(
            wide.lines()
                .next()
                .is_some_and(|h| h.trim_end().ends_with("SOURCE")),
            "{wide}"
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("SERVER"), "{table}");
        assert!(
            lines[1].contains("in-cluster")
                && lines[1].contains("v1.33.0")
                && lines[1].trim_end().ends_with('2'),
            "{table}"
        );
        assert!(
            lines[2].contains("Failed") && lines[2].contains("connection refused"),
            "{table}"
        );
    }
}
