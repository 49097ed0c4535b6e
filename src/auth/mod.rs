//! Who is asking: identities proved by the static token, local accounts and their API tokens,
//! an LDAP directory, or single sign-on; the signed session tokens a login hands out; failed-login backoff.
//! What an identity may do is [`crate::rbac`].

pub mod accounts;
pub mod backoff;
pub mod github;
pub mod handoff;
pub mod identity;
pub mod ldap;
pub mod oidc;
pub mod saml;
pub mod session_token;

use std::sync::Arc;

pub use accounts::Accounts;
pub use backoff::LoginBackoff;
pub use identity::{Identity, Source};
pub use session_token::{Claims, SessionSigner};

/// Everything the api needs to authenticate a request.
pub struct Auth {
    /// Local accounts, API tokens and revoked sessions.
    pub accounts: Arc<Accounts>,
    /// Signs and checks session tokens.
    pub sessions: SessionSigner,
    /// Failed-login backoff.
    pub backoff: LoginBackoff,
    /// One-time codes that hand a browser login to the CLI.
    pub handoff: handoff::HandoffSigner,
    /// The OpenID Connect provider, when `[auth.oidc]` is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// GitHub login, when `[auth.github]` is configured.
    pub github: Option<github::GitHub>,
    /// The LDAP directory password logins fall back to, when `[auth.ldap]` is configured.
    pub ldap: Option<ldap::Directory>,
    /// The SAML 2.0 service provider, when `auth.saml` is configured.
    pub saml: Option<saml::ServiceProvider>,
}
