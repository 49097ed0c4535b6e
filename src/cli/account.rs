//! `capstan account …`: local accounts, API tokens and `can-i`, as `argocd account` offers them.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::ApiClient;
use super::table::{aligned, header};

impl ApiClient {
    /// `capstan account list`.
    pub async fn list_accounts(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/api/v1/account", None)
            .await
    }

    /// `capstan account get NAME`.
    pub async fn get_account(&self, name: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/account/{name}"),
            None,
        )
        .await
    }

    /// `capstan account get-user-info`.
    pub async fn user_info(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/api/v1/session/userinfo", None)
            .await
    }

    /// `capstan account generate-token`.
    pub async fn generate_token(
        &self,
        name: &str,
        expires_in_secs: Option<u64>,
        description: &str,
    ) -> anyhow::Result<Value> {
        let body = json!({"expiresIn": expires_in_secs, "description": description});
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/account/{name}/token"),
            Some(&body),
        )
        .await
    }

    /// `capstan account delete-token ID`.
    pub async fn delete_token(&self, name: &str, id: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/account/{name}/token/{id}"),
            None,
        )
        .await
    }

    /// `capstan account update-password`.
    pub async fn update_password(
        &self,
        name: Option<&str>,
        current: &str,
        new: &str,
    ) -> anyhow::Result<Value> {
        let body = json!({"name": name, "currentPassword": current, "newPassword": new});
        self.call(
            reqwest::Method::PUT,
            "/api/v1/account/password",
            Some(&body),
        )
        .await
    }

    /// `capstan account can-i ACTION RESOURCE OBJECT`: `yes` or `no`.
    pub async fn can_i(&self, action: &str, resource: &str, object: &str) -> anyhow::Result<bool> {
        let answer = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/account/can-i/{resource}/{action}/{}",
                    percent_encoding::utf8_percent_encode(
                        object,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ),
                None,
            )
            .await?;
        Ok(answer["value"] == "yes")
    }
}

/// A password from a file (trailing newline trimmed), so it never sits in shell history or `ps`.
pub fn read_password(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// `capstan account list` as a table: NAME ENABLED CAPABILITIES TOKENS.
pub fn account_table(answer: &Value) -> String {
    let mut rows = vec![header(&["NAME", "ENABLED", "CAPABILITIES", "TOKENS"])];
    for a in answer["items"].as_array().into_iter().flatten() {
        let caps: Vec<&str> = a["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        rows.push(vec![
            a["name"].as_str().unwrap_or_default().to_owned(),
            a["enabled"].as_bool().unwrap_or_default().to_string(),
            caps.join(", "),
            a["tokens"].as_array().map_or(0, Vec::len).to_string(),
        ]);
    }
    aligned(&rows)
}

/// `capstan account get NAME` as text: the account and its tokens (ID ISSUED-AT EXPIRES-AT).
pub fn account_text(a: &Value) -> String {
    let when = |v: &Value| {
        v.as_i64()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(|| "never".to_owned(), |t| t.to_string())
    };
    let caps: Vec<&str> = a["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = format!(
        "Name:               {}\nEnabled:            {}\nCapabilities:       {}\n\nTokens:\n",
        a["name"].as_str().unwrap_or_default(),
        a["enabled"].as_bool().unwrap_or_default(),
        caps.join(", ")
    );
    let mut rows = vec![header(&["ID", "ISSUED AT", "EXPIRING AT", "DESCRIPTION"])];
    for t in a["tokens"].as_array().into_iter().flatten() {
        rows.push(vec![
            t["id"].as_str().unwrap_or_default().to_owned(),
            when(&t["iat"]),
            when(&t["exp"]),
            t["description"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    out.push_str(&aligned(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_accounts_and_token_times_without_secrets() {
        let list = json!({"items": [
            {"name": "admin", "enabled": true, "capabilities": ["login"], "tokens": []},
            {"name": "ci", "enabled": true, "capabilities": ["apiKey"], "tokens": [{"id": "a1", "iat": 0}]}
        ]});
        let table = account_table(&list);
        assert!(table.contains("ci     true     apiKey        1"), "{table}");
        let text = account_text(
            &json!({"name": "ci", "enabled": true, "capabilities": ["apiKey"],
            "tokens": [{"id": "a1", "iat": 0, "description": "deploys"}]}),
        );
        assert!(text.contains("a1  1970-01-01T00:00:00Z  never"), "{text}");
    }
}
