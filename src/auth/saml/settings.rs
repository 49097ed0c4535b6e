//! `[auth.saml]`: the service provider's names and the identity provider it trusts.

use std::path::PathBuf;

use serde::Deserialize;

/// `[auth.saml]`: SAML 2.0 single sign-on (Capstan as the service provider).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlSettings {
    /// The login button's label ("Log in via <name>").
    #[serde(default = "default_name")]
    pub name: String,
    /// Capstan's entity ID: the Issuer of our requests and the Audience assertions must name.
    pub sp_entity_id: String,
    /// Capstan's Assertion Consumer Service URL as the browser reaches it
    /// (`https://capstan.example.com/auth/saml/acs`): Destination and Recipient must equal it.
    pub acs_url: String,
    /// The identity provider's metadata XML (entity ID, SSO URL, signing certificates).
    #[serde(default)]
    pub idp_metadata_file: Option<PathBuf>,
    /// Without metadata: the identity provider's HTTP-Redirect single sign-on URL.
    #[serde(default)]
    pub idp_sso_url: Option<String>,
    /// Without metadata: the identity provider's signing certificate (PEM).
    #[serde(default)]
    pub idp_cert_file: Option<PathBuf>,
    /// Without metadata: the identity provider's entity ID; when set, assertions must be issued
    /// by it (metadata always sets it).
    #[serde(default)]
    pub idp_entity_id: Option<String>,
    /// The attribute whose values are the person's groups.
    #[serde(default = "default_groups_attribute")]
    pub groups_attribute: String,
    /// The attribute that holds the user name; the NameID when unset.
    #[serde(default)]
    pub username_attribute: Option<String>,
    /// How far the identity provider's clock may be from ours.
    #[serde(default = "default_skew")]
    pub allowed_clock_skew_secs: u64,
}

impl SamlSettings {
    /// The allowed skew, capped at ten minutes so a typo cannot make assertions live for days.
    pub fn skew_secs(&self) -> i64 {
        i64::try_from(self.allowed_clock_skew_secs.min(600)).unwrap_or(600)
    }
}

fn default_name() -> String {
    "SAML".to_owned()
}

fn default_groups_attribute() -> String {
    "groups".to_owned()
}

fn default_skew() -> u64 {
    60
}
