//! LDAP login: bind as a service account, find the one entry the user name matches, bind as that
//! entry with the password given, and read the user's groups from a group search and/or an
//! attribute of the entry. One connection per login (logins are rare; a pool would keep a bound
//! connection and its failure modes around between them).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions, ldap_escape,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use super::identity::{Identity, Source};
use crate::secret::{self, ExposeSecret, SecretString};

/// LDAP result code: wrong DN or password.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code: more entries matched than the size limit allows.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// `[auth.ldap]`: where the directory is and how users and groups are found in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host:389` (plain, or StartTLS with `start_tls`) or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent.
    #[serde(default)]
    pub start_tls: bool,
    /// PEM file of the CA(s) the server's certificate must chain to; the system roots otherwise.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. For trials only: a warning is logged at start.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The service account that searches the directory; anonymous when absent.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// The service account's password, normally from `CAPSTAN__AUTH__LDAP__BIND_PASSWORD`.
    #[serde(default)]
    pub bind_password: Option<SecretString>,
    /// A file holding the service account's password.
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// How a user's entry is found.
    pub user_search: UserSearchSettings,
    /// How a user's groups are found; none when absent (unless `user_search.groups_attribute`).
    #[serde(default)]
    pub group_search: Option<GroupSearchSettings>,
    /// Limit on connecting (TCP, TLS) and on each LDAP operation.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// How a user's entry is found: `filter` under `base_dn`, `{username}` replaced by the escaped name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSearchSettings {
    /// Where users live, e.g. `ou=people,dc=example,dc=org` (searched with its subtree).
    pub base_dn: String,
    /// The search filter; `{username}` is the name typed at login, escaped (RFC 4515).
    #[serde(default = "default_user_filter")]
    pub filter: String,
    /// The attribute whose value becomes the user name RBAC policies name.
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// When set, the user name is this attribute's value instead (policies then name people by
    /// e-mail, as Argo CD's do with an SSO `email` claim).
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// An attribute of the user's entry listing group DNs (`memberOf`); each group is named by
    /// the value of its DN's first component (`cn=devs,ou=groups,…` is `devs`).
    #[serde(default)]
    pub groups_attribute: Option<String>,
}

/// How a user's groups are found: `filter` under `base_dn`, `{dn}` replaced by the user's DN and
/// `{username}` by the login name, both escaped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSearchSettings {
    /// Where groups live, e.g. `ou=groups,dc=example,dc=org` (searched with its subtree).
    pub base_dn: String,
    /// The search filter.
    #[serde(default = "default_group_filter")]
    pub filter: String,
    /// The attribute whose value names the group in RBAC `g,` lines.
    #[serde(default = "default_group_name_attribute")]
    pub name_attribute: String,
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_user_filter() -> String {
    "(uid={username})".into()
}

fn default_username_attribute() -> String {
    "uid".into()
}

fn default_group_filter() -> String {
    "(&(objectClass=groupOfNames)(member={dn}))".into()
}

fn default_group_name_attribute() -> String {
    "cn".into()
}

/// The `[auth.ldap]` settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LdapConfigError {
    #[error("auth.ldap.url {0:?} is neither ldap:// nor ldaps://")]
    Scheme(String),
    #[error("auth.ldap.start_tls needs an ldap:// url (ldaps:// is TLS from the start)")]
    StartTlsOverLdaps,
    #[error("auth.ldap.bind_password: {0}")]
    Password(#[from] secret::SecretError),
    #[error("auth.ldap.bind_dn is set but no bind_password (or bind_password_file) is")]
    MissingPassword,
    #[error("auth.ldap.ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
}

/// Why a login through the directory failed.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// Unknown user, more than one match, an empty or wrong password: deliberately one message.
    #[error("invalid username or password")]
    BadCredentials,
    /// The directory could not answer (down, timed out, TLS refused, service account refused).
    #[error("the LDAP directory is unavailable: {0}")]
    Unavailable(String),
}

/// A configured directory that logins are checked against.
pub struct Directory {
    url: String,
    start_tls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    insecure_skip_verify: bool,
    bind: Option<(String, SecretString)>,
    user_search: UserSearchSettings,
    group_search: Option<GroupSearchSettings>,
    timeout: Duration,
}

impl Directory {
    /// Checks the settings and reads the password and CA files once, at start.
    pub fn new(settings: &LdapSettings) -> Result<Directory, LdapConfigError> {
        let ldaps = if settings.url.starts_with("ldaps://") {
            true
        } else if settings.url.starts_with("ldap://") {
            false
        } else {
            return Err(LdapConfigError::Scheme(settings.url.clone()));
        };
        if ldaps && settings.start_tls {
            return Err(LdapConfigError::StartTlsOverLdaps);
        }
        let bind = match &settings.bind_dn {
            Some(dn) => {
                let password = secret::resolve(
                    settings.bind_password.as_ref(),
                    settings.bind_password_file.as_deref(),
                    None,
                )?
                .ok_or(LdapConfigError::MissingPassword)?;
                Some((dn.clone(), password))
            }
            None => None,
        };
        let uses_tls = ldaps || settings.start_tls;
        let tls = if uses_tls && !settings.insecure_skip_verify {
            Some(Arc::new(tls_config(settings.ca_file.as_ref())?))
        } else {
            None
        };
        if uses_tls && settings.insecure_skip_verify {
            tracing::warn!(
                url = %settings.url,
                "auth.ldap.insecure_skip_verify is set: the directory's certificate is not checked, \
                 so anyone on the path can read the passwords users log in with"
            );
        } else if !uses_tls {
            tracing::warn!(
                url = %settings.url,
                "LDAP without TLS: passwords cross the network in clear text"
            );
        }
        Ok(Directory {
            url: settings.url.clone(),
            start_tls: settings.start_tls,
            tls,
            insecure_skip_verify: settings.insecure_skip_verify,
            bind,
            user_search: settings.user_search.clone(),
            group_search: settings.group_search.clone(),
            timeout: Duration::from_secs(settings.timeout_secs.max(1)),
        })
    }

    /// The identity `username` proves with `password`, with the groups the directory gives.
    pub async fn login(&self, username: &str, password: &str) -> Result<Identity, LdapError> {
        // An empty password is an unauthenticated bind (RFC 4513 §5.1.2), which many servers
        // answer with success: it must never reach the directory.
        if password.is_empty() || username.is_empty() {
            return Err(LdapError::BadCredentials);
        }
        let mut ldap = self.connect().await?;
        let outcome = self.login_on(&mut ldap, username, password).await;
        let _ = ldap.unbind().await;
        outcome
    }

    async fn connect(&self) -> Result<Ldap, LdapError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.start_tls)
            .set_no_tls_verify(self.insecure_skip_verify);
        if let Some(config) = &self.tls {
            settings = settings.set_config(config.clone());
        }
        // The whole of TCP connect, StartTLS and the handshake, which the library does not bound.
        let (conn, ldap) = tokio::time::timeout(
            self.timeout,
            LdapConnAsync::with_settings(settings, &self.url),
        )
        .await
        .map_err(|_| unavailable("connecting timed out"))?
        .map_err(|e| unavailable(&format!("connecting: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    async fn login_on(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &str,
    ) -> Result<Identity, LdapError> {
        if let Some((dn, bind_password)) = &self.bind {
            ldap.with_timeout(self.timeout)
                .simple_bind(dn, bind_password.expose_secret())
                .await
                .and_then(|r| r.success())
                .map_err(|e| unavailable(&format!("service account bind: {e}")))?;
        }
        let user = self.find_user(ldap, username).await?;
        let mut groups = self.groups_from_attribute(&user);
        if let Some(search) = &self.group_search {
            groups.extend(self.search_groups(ldap, search, &user.dn, username).await?);
        }
        // The user's bind comes last: it replaces the connection's identity, and the searches
        // above need the service account's read rights, which a user may lack.
        match ldap
            .with_timeout(self.timeout)
            .simple_bind(&user.dn, password)
            .await
        {
            Ok(r) if r.rc == 0 => {}
            Ok(r) if r.rc == INVALID_CREDENTIALS => return Err(LdapError::BadCredentials),
            Ok(r) => {
                tracing::info!(rc = r.rc, text = %r.text, "LDAP refused the user's bind");
                return Err(LdapError::BadCredentials);
            }
            Err(e) => return Err(unavailable(&format!("user bind: {e}"))),
        }
        let name = self.user_name(&user, username);
        Ok(Identity {
            user: name,
            groups: groups.into_iter().collect(),
            source: Source::Ldap,
        })
    }

    /// The one entry the user name matches; none or several refuse the login.
    async fn find_user(&self, ldap: &mut Ldap, username: &str) -> Result<SearchEntry, LdapError> {
        let filter = self
            .user_search
            .filter
            .replace("{username}", &ldap_escape(username));
        let mut attrs = vec![self.user_search.username_attribute.as_str()];
        attrs.extend(self.user_search.email_attribute.as_deref());
        attrs.extend(self.user_search.groups_attribute.as_deref());
        let result = ldap
            .with_timeout(self.timeout)
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&self.user_search.base_dn, Scope::Subtree, &filter, attrs)
            .await
            .map_err(|e| unavailable(&format!("user search: {e}")))?;
        if result.1.rc == SIZE_LIMIT_EXCEEDED {
            tracing::warn!("LDAP user search matched more than one entry; login refused");
            return Err(LdapError::BadCredentials);
        }
        let (entries, _) = result
            .success()
            .map_err(|e| unavailable(&format!("user search: {e}")))?;
        let mut found: Vec<SearchEntry> = entries
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(SearchEntry::construct)
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(LdapError::BadCredentials),
            _ => {
                tracing::warn!("LDAP user search matched more than one entry; login refused");
                Err(LdapError::BadCredentials)
            }
        }
    }

    fn groups_from_attribute(&self, user: &SearchEntry) -> BTreeSet<String> {
        let Some(attribute) = &self.user_search.groups_attribute else {
            return BTreeSet::new();
        };
        values(user, attribute)
            .iter()
            .filter_map(|dn| first_rdn_value(dn))
            .collect()
    }

    async fn search_groups(
        &self,
        ldap: &mut Ldap,
        search: &GroupSearchSettings,
        user_dn: &str,
        username: &str,
    ) -> Result<BTreeSet<String>, LdapError> {
        let filter = search
            .filter
            .replace("{dn}", &ldap_escape(user_dn))
            .replace("{username}", &ldap_escape(username));
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search(
                &search.base_dn,
                Scope::Subtree,
                &filter,
                vec![search.name_attribute.as_str()],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable(&format!("group search: {e}")))?;
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(SearchEntry::construct)
            .flat_map(|g| values(&g, &search.name_attribute))
            .collect())
    }

    fn user_name(&self, user: &SearchEntry, typed: &str) -> String {
        let first = |attribute: &str| values(user, attribute).into_iter().next();
        self.user_search
            .email_attribute
            .as_deref()
            .and_then(first)
            .or_else(|| first(&self.user_search.username_attribute))
            .unwrap_or_else(|| typed.to_owned())
    }
}

fn unavailable(what: &str) -> LdapError {
    LdapError::Unavailable(what.to_owned())
}

/// The values of `attribute` (matched without regard to case, as LDAP names are).
fn values(entry: &SearchEntry, attribute: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

/// `devs` of `cn=devs,ou=groups,dc=example,dc=org`; `ops, oncall` of `cn=ops\, oncall,…`
/// (RFC 4514: a backslash escapes the next character, which then ends nothing).
fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            ',' | '+' => break,
            c => value.push(c),
        }
    }
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Server certificates must chain to the CA file's certificates, or to the system's roots.
fn tls_config(ca_file: Option<&PathBuf>) -> Result<rustls::ClientConfig, LdapConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_error = |reason: String| LdapConfigError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "reading the system's CA certificates");
            }
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapConfigError::CaFile {
            path: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> LdapSettings {
        LdapSettings {
            url: url.into(),
            start_tls: false,
            ca_file: None,
            insecure_skip_verify: false,
            bind_dn: None,
            bind_password: None,
            bind_password_file: None,
            user_search: UserSearchSettings {
                base_dn: "ou=people,dc=example,dc=org".into(),
                filter: default_user_filter(),
                username_attribute: default_username_attribute(),
                email_attribute: None,
                groups_attribute: None,
            },
            group_search: None,
            timeout_secs: 1,
        }
    }

    #[tokio::test]
    async fn an_empty_password_is_refused_without_asking_the_directory() {
        // Nothing listens on port 1: asking the directory would answer Unavailable.
        let directory = Directory::new(&settings("ldap://127.0.0.1:1")).expect("settings");
        assert!(matches!(
            directory.login("alice", "").await,
            Err(LdapError::BadCredentials)
        ));
        assert!(matches!(
            directory.login("alice", "x").await,
            Err(LdapError::Unavailable(_))
        ));
    }

    #[test]
    fn bad_settings_are_refused_at_start() {
        assert!(matches!(
            Directory::new(&settings("http://example.org")),
            Err(LdapConfigError::Scheme(_))
        ));
        let mut both = settings("ldaps://example.org");
        both.start_tls = true;
        assert!(matches!(
            Directory::new(&both),
            Err(LdapConfigError::StartTlsOverLdaps)
        ));
        let mut no_password = settings("ldap://example.org");
        no_password.bind_dn = Some("cn=reader,dc=example,dc=org".into());
        assert!(matches!(
            Directory::new(&no_password),
            Err(LdapConfigError::MissingPassword)
        ));
    }

    #[test]
    fn a_file_section_takes_the_defaults_and_the_password_comes_from_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("capstan.toml");
        std::fs::write(
            &file,
            "[auth.ldap]\nurl = \"ldaps://ldap.example.org\"\nbind_dn = \"cn=capstan,dc=example,dc=org\"\n\
             [auth.ldap.user_search]\nbase_dn = \"ou=people,dc=example,dc=org\"\n\
             [auth.ldap.group_search]\nbase_dn = \"ou=groups,dc=example,dc=org\"\n",
        )
        .expect("write");
        let env = [(
            "CAPSTAN__AUTH__LDAP__BIND_PASSWORD".to_string(),
            "from-env".to_string(),
        )];
        let settings = crate::config::Settings::load_from(Some(&file), env)
            .expect("loads")
            .auth
            .ldap
            .expect("the section");
        assert_eq!(settings.user_search.filter, "(uid={username})");
        assert_eq!(settings.user_search.username_attribute, "uid");
        let groups = settings.group_search.as_ref().expect("group search");
        assert_eq!(groups.filter, "(&(objectClass=groupOfNames)(member={dn}))");
        assert_eq!(groups.name_attribute, "cn");
        assert_eq!(settings.timeout_secs, 10);
        assert_eq!(
            settings.bind_password.as_ref().map(|p| p.expose_secret()),
            Some("from-env")
        );
        assert!(Directory::new(&settings).is_ok());
    }

    #[test]
    fn a_group_dn_is_named_by_its_first_component() {
        assert_eq!(
            first_rdn_value("cn=devs,ou=groups,dc=example,dc=org").as_deref(),
            Some("devs")
        );
        assert_eq!(
            first_rdn_value(r"cn=ops\, oncall,ou=groups,dc=example,dc=org").as_deref(),
            Some("ops, oncall")
        );
        assert_eq!(first_rdn_value("garbage"), None);
    }
}
