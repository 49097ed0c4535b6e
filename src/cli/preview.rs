//! `capstan preview --repo URL --pr N`: the preview of a pull request, as the PR comment shows
//! it, with the whole diff.

use serde_json::Value;

use super::ApiClient;

impl ApiClient {
    /// The newest preview of `pr` in `repo`.
    pub async fn preview(&self, repo: &str, pr: u64) -> anyhow::Result<Value> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("repo", repo)
            .append_pair("pr", &pr.to_string())
            .finish();
        let list = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/previews?{query}"),
                None,
            )
            .await?;
        list["items"]
            .as_array()
            .and_then(|items| items.first())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no preview of pull request #{pr} in {repo} (yet)"))
    }
}

impl ApiClient {
    /// The preview with `id`.
    pub async fn preview_by_id(&self, id: &str) -> anyhow::Result<Value> {
        let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/previews/{id}"),
            None,
        )
        .await
    }
}

/// The preview for a terminal: a summary line, then per app its changes and diff.
pub fn preview_text(p: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let mut out = format!(
        "PR #{} {} at {} into {}: {} — {}\n",
        p["pr"],
        text(&p["repo"]),
        text(&p["headSha"]).get(..12).unwrap_or_default(),
        text(&p["baseRef"]),
        text(&p["state"]),
        text(&p["message"])
    );
    if let Some(e) = p["reportError"].as_str() {
        out.push_str(&format!("not posted to the Git host: {e}\n"));
    }
    for app in p["apps"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n== {} ({})\n",
            text(&app["app"]),
            text(&app["destination"])
        ));
        if let Some(e) = app["error"].as_str() {
            out.push_str(&format!("error: {e}\n"));
            continue;
        }
        for (label, key) in [
            ("added", "added"),
            ("changed", "changed"),
            ("removed", "removed"),
            ("cluster", "clusterChanges"),
        ] {
            let items = list(&app[key]);
            if !items.is_empty() {
                out.push_str(&format!("{label}: {items}\n"));
            }
        }
        out.push_str(&text(&app["diff"]));
    }
    out
}
