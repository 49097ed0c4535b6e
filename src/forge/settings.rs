//! The `[forge]` configuration section: call limits, retries and the Git hosts' credentials.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secret::SecretString;

/// Settings of the `[forge]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForgeSettings {
    /// One call (connect, send, answer) is abandoned after this long.
    pub timeout_ms: u64,
    /// Attempts of one call when the host answers 429 or 5xx or cannot be reached.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles with every attempt after (with jitter).
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts, also capping what a host's `Retry-After` asks.
    pub retry_max_ms: u64,
    /// Calls per second to one host entry (a token bucket); 0 for no pacing.
    pub requests_per_second: f64,
    /// Credentials by entry name (`[forge.hosts.<name>]`).
    pub hosts: BTreeMap<String, HostSettings>,
}

impl Default for ForgeSettings {
    fn default() -> Self {
        ForgeSettings {
            timeout_ms: 10_000,
            max_attempts: 5,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            requests_per_second: 10.0,
            hosts: BTreeMap::new(),
        }
    }
}

impl ForgeSettings {
    /// One call's time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// The longest wait between two attempts.
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms.max(self.retry_initial_ms))
    }

    /// The wait after failed attempt `attempt` (1-based) before jitter: exponential, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(self.retry_initial_ms.saturating_mul(factor)).min(self.retry_max())
    }
}

/// One Git host's credentials (`[forge.hosts.<name>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// `github`, `gitlab`, `bitbucket-cloud`, `bitbucket-server`, `gitea` (or `forgejo`),
    /// `azure-devops`.
    pub kind: String,
    /// The API these credentials are for; when set, a repository served by another API never
    /// gets this token. Unset, the entry serves every repository of its kind that no entry
    /// names.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The token, normally from `CAPSTAN__FORGE__HOSTS__<NAME>__TOKEN`.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// A file holding the token (re-read on every call, so a rotated secret is picked up).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// With a username the token is sent as HTTP Basic's password (a Bitbucket Cloud app
    /// password, a Bitbucket Data Center password, any user for Azure DevOps).
    #[serde(default)]
    pub username: Option<String>,
    /// GitHub App authentication instead of a token: the App's id (or client id) …
    #[serde(default)]
    pub app_id: Option<String>,
    /// … the installation on the organisation or repositories …
    #[serde(default)]
    pub installation_id: Option<u64>,
    /// … and the App's private key (PEM), read at start.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_the_cap() {
        let s = ForgeSettings::default();
        let waits: Vec<u64> = (1..=8).map(|a| s.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
        assert_eq!(s.backoff(u32::MAX).as_secs(), 30);
    }

    #[test]
    fn the_section_loads_from_defaults_and_the_environment_without_showing_tokens() {
        use crate::config::Settings;
        use crate::secret::ExposeSecret;
        let defaults = Settings::load_from(None, Vec::new()).expect("defaults load");
        assert_eq!(defaults.forge.max_attempts, 5);
        assert_eq!(defaults.forge.requests_per_second, 10.0);
        assert!(defaults.forge.hosts.is_empty(), "no host unless configured");
        let env = [
            ("CAPSTAN__FORGE__HOSTS__GITHUB__KIND", "github"),
            ("CAPSTAN__FORGE__HOSTS__GITHUB__TOKEN", "ghp_secret-value-1"),
            ("CAPSTAN__FORGE__REQUESTS_PER_SECOND", "2.5"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let s = Settings::load_from(None, env).expect("loads");
        let github = &s.forge.hosts["github"];
        assert_eq!(github.kind, "github");
        assert_eq!(
            github.token.as_ref().map(|t| t.expose_secret()),
            Some("ghp_secret-value-1")
        );
        assert_eq!(s.forge.requests_per_second, 2.5);
        assert!(!format!("{s:?}").contains("ghp_secret-value-1"));
        crate::forge::Forges::new(&s.forge).expect("usable");
    }
}
