//! Which secrets authenticate which provider, resolved once at start from configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{WebhookError, provider_named};
use crate::config::WebhookSettings;
use crate::secret::{self, ExposeSecret, SecretString};

/// Secrets of one provider; empty when none is configured.
pub type ProviderSecrets = Vec<SecretString>;

/// Per-provider secrets and the operator's explicit opt-outs.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    secrets: BTreeMap<&'static str, ProviderSecrets>,
    allow_unsigned: BTreeSet<&'static str>,
}

/// Why the webhook secrets cannot be set up; messages name sources, never values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("webhook.providers: {0}")]
    Provider(WebhookError),
    #[error("webhook.allow_unsigned: {0}")]
    AllowUnsigned(WebhookError),
    #[error("webhook.providers.{provider}: {source}")]
    Read {
        provider: String,
        source: secret::SecretError,
    },
    #[error("webhook.providers.{provider}: environment variable {var} is not set or empty")]
    MissingEnv { provider: String, var: String },
}

impl WebhookSecrets {
    /// An empty set: every provider unconfigured, nothing allowed unsigned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret for `provider` (a known provider name) that its scheme can use. Empty
    /// secrets are never added: an empty secret must not mean "accept everything".
    pub fn with_secret(
        mut self,
        provider: &str,
        secret: SecretString,
    ) -> Result<Self, WebhookError> {
        let provider = provider_named(provider)?;
        let name = provider.name();
        provider
            .check_secret(secret.expose_secret())
            .map_err(|reason| WebhookError::BadSecret(format!("{name}: {reason}")))?;
        if !secret.expose_secret().is_empty() {
            self.secrets.entry(name).or_default().push(secret);
        }
        Ok(self)
    }

    /// Accepts `provider`'s requests without a credential (an explicit operator choice).
    pub fn allowing_unsigned(mut self, provider: &str) -> Result<Self, WebhookError> {
        self.allow_unsigned.insert(provider_named(provider)?.name());
        Ok(self)
    }

    /// The configured secrets of `provider`.
    pub fn for_provider(&self, provider: &str) -> &[SecretString] {
        self.secrets.get(provider).map_or(&[], Vec::as_slice)
    }

    /// Whether `provider`'s requests may come without a credential.
    pub fn allows_unsigned(&self, provider: &str) -> bool {
        self.allow_unsigned.contains(provider)
    }

    /// Names of the providers accepted unsigned (for a warning at start).
    pub fn unsigned_providers(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.allow_unsigned.iter().copied()
    }

    /// Resolves every configured secret. `github` is the legacy single GitHub secret
    /// (`webhook.github_secret[_file]` or the generated one), added beside any configured under
    /// `[webhook.providers.github]`. Unknown provider names are refused: a typo must not leave a
    /// provider silently unauthenticated or refused.
    pub fn from_settings(
        settings: &WebhookSettings,
        github: Option<SecretString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretsError> {
        let mut out = WebhookSecrets::new();
        for name in &settings.allow_unsigned {
            out = out
                .allowing_unsigned(&name.replace('_', "-"))
                .map_err(SecretsError::AllowUnsigned)?;
        }
        if let Some(secret) = github {
            out = out
                .with_secret("github", secret)
                .map_err(SecretsError::Provider)?;
        }
        for (key, source) in &settings.providers {
            let name = provider_named(&key.replace('_', "-"))
                .map_err(SecretsError::Provider)?
                .name();
            let mut found: Vec<SecretString> = source.secret.iter().cloned().collect();
            for path in &source.secret_files {
                found.push(read(name, path)?);
            }
            for var in &source.secret_env {
                match env(var).filter(|v| !v.is_empty()) {
                    Some(v) => found.push(SecretString::from(v)),
                    None => {
                        return Err(SecretsError::MissingEnv {
                            provider: name.into(),
                            var: var.clone(),
                        });
                    }
                }
            }
            for secret in found {
                out = out
                    .with_secret(name, secret)
                    .map_err(SecretsError::Provider)?;
            }
        }
        Ok(out)
    }
}

fn read(provider: &str, path: &Path) -> Result<SecretString, SecretsError> {
    secret::read_file(path).map_err(|source| SecretsError::Read {
        provider: provider.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings(env: &[(&str, &str)]) -> WebhookSettings {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_from(None, env)
            .expect("settings load")
            .webhook
    }

    fn values(s: &WebhookSecrets, provider: &str) -> Vec<String> {
        s.for_provider(provider)
            .iter()
            .map(|v| v.expose_secret().to_owned())
            .collect()
    }

    #[test]
    fn secrets_come_from_the_environment_files_and_named_variables_and_all_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("old");
        std::fs::write(&old, "old-token\n").expect("write");
        let file_list = format!("[\"{}\"]", old.display());
        let s = settings(&[
            (
                "CAPSTAN__WEBHOOK__PROVIDERS__BITBUCKET_CLOUD__SECRET",
                "from-env",
            ),
            (
                "CAPSTAN__WEBHOOK__PROVIDERS__GITHUB__SECRET",
                "gh-configured",
            ),
        ]);
        let mut s = s;
        s.providers.entry("gitlab".into()).or_default().secret_files =
            serde_json::from_str(&file_list).expect("paths");
        s.providers.entry("gitlab".into()).or_default().secret_env = vec!["GL_NEW".into()];
        let resolved =
            WebhookSecrets::from_settings(&s, Some(SecretString::from("gh-generated")), |v| {
                (v == "GL_NEW").then(|| "new-token".to_owned())
            })
            .expect("resolves");
        assert_eq!(values(&resolved, "bitbucket-cloud"), ["from-env"]);
        assert_eq!(values(&resolved, "gitlab"), ["old-token", "new-token"]);
        assert_eq!(
            values(&resolved, "github"),
            ["gh-generated", "gh-configured"]
        );
        assert!(resolved.for_provider("gogs").is_empty());
    }

    #[test]
    fn unknown_names_missing_variables_and_unreadable_files_are_errors_that_name_no_secret() {
        let mut s = settings(&[]);
        s.providers.insert("gitlub".into(), Default::default());
        let err = WebhookSecrets::from_settings(&s, None, |_| None).expect_err("typo");
        assert!(err.to_string().contains("gitlub"), "{err}");

        let mut s = settings(&[]);
        s.providers.entry("gitea".into()).or_default().secret_env = vec!["NOT_SET".into()];
        let err = WebhookSecrets::from_settings(&s, None, |_| None).expect_err("unset");
        assert!(err.to_string().contains("NOT_SET"), "{err}");

        let mut s = settings(&[]);
        s.providers.entry("gogs".into()).or_default().secret_files = vec!["/nonexistent/x".into()];
        assert!(WebhookSecrets::from_settings(&s, None, |_| None).is_err());

        let s = settings(&[("CAPSTAN__WEBHOOK__ALLOW_UNSIGNED", "githib")]);
        assert!(WebhookSecrets::from_settings(&s, None, |_| None).is_err());
    }

    #[test]
    fn a_secret_the_scheme_cannot_use_is_refused_at_start_without_repeating_it() {
        let s = settings(&[(
            "CAPSTAN__WEBHOOK__PROVIDERS__GITLAB__SECRET",
            "whsec_not*base64",
        )]);
        let err = WebhookSecrets::from_settings(&s, None, |_| None).expect_err("unusable");
        assert!(err.to_string().contains("gitlab"), "{err}");
        assert!(!err.to_string().contains("not*base64"), "{err}");
    }

    #[test]
    fn an_empty_secret_is_no_secret() {
        let s = settings(&[("CAPSTAN__WEBHOOK__PROVIDERS__GITLAB__SECRET", "")]);
        let resolved = WebhookSecrets::from_settings(&s, None, |_| None).expect("resolves");
        assert!(resolved.for_provider("gitlab").is_empty());
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let s = WebhookSecrets::new()
            .with_secret("github", SecretString::from("very-secret-value"))
            .expect("known");
        assert!(!format!("{s:?}").contains("very-secret-value"));
    }
}
