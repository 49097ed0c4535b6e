//! An identity: who a request acts for, whichever way they proved it.

use serde::{Deserialize, Serialize};

use crate::rbac::Subject;

/// How an identity was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The static API token (`api.token`), which stands for `admin`.
    Token,
    /// A local account's password.
    Local,
    /// A local account's API token.
    ApiKey,
    /// An OpenID Connect provider.
    Oidc,
    /// GitHub OAuth2.
    Github,
    /// An LDAP directory.
    Ldap,
    /// A SAML 2.0 identity provider.
    Saml,
    /// A project role's token.
    Project,
}

impl Source {
    /// The name the session claims and history entries carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Token => "token",
            Source::Local => "local",
            Source::ApiKey => "apikey",
            Source::Oidc => "oidc",
            Source::Github => "github",
            Source::Ldap => "ldap",
            Source::Saml => "saml",
            Source::Project => "project",
        }
    }
}

/// A person, account or token, with the groups its identity provider gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user name RBAC policies and history entries name (`admin`, `alice@example.com`).
    pub user: String,
    /// Groups from the provider (OIDC claim, LDAP groups, `org:team`, SAML attribute).
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the identity was proved.
    pub source: Source,
}

impl Identity {
    /// An identity without groups.
    pub fn new(user: &str, source: Source) -> Identity {
        Identity {
            user: user.to_owned(),
            groups: Vec::new(),
            source,
        }
    }

    /// The identity as RBAC sees it.
    pub fn subject(&self) -> Subject {
        Subject {
            user: self.user.clone(),
            groups: self.groups.clone(),
        }
    }
}
