//! Local accounts and their secrets, kept as Argo CD keeps them: in a Secret of the control
//! namespace (`capstan-accounts`), so every api replica sees the same passwords, API tokens,
//! session key and revoked sessions. Passwords are argon2id hashes; an API token is stored as
//! the SHA-256 of its secret part only. Each replica caches the Secret and re-reads it every
//! [`REFRESH_EVERY`], and at once when it meets a token it does not know.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::identity::{Identity, Source};
use crate::config::AuthSettings;

/// The Secret holding accounts' secrets.
pub const SECRET_NAME: &str = "capstan-accounts";
/// Where the generated admin password is also kept, as Argo CD's `argocd-initial-admin-secret`
/// (delete it once the password is changed).
pub const INITIAL_ADMIN_SECRET: &str = "capstan-initial-admin-secret";
/// The built-in administrator.
pub const ADMIN: &str = "admin";
/// How often a replica re-reads the Secret (revocations elsewhere take at most this long).
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// The prefix of API tokens, so they are told apart from session tokens and found by scanners.
pub const TOKEN_PREFIX: &str = "cst_";

const KEY_SERVER_SECRET: &str = "server.secretkey";
const KEY_REVOKED: &str = "sessions.revoked";

/// What an account may do, as Argo CD's `accounts.<name>` capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capability {
    /// Log in with a password (web UI, `capstan login`).
    #[serde(rename = "login")]
    Login,
    /// Hold API tokens.
    #[serde(rename = "apiKey")]
    ApiKey,
}

/// An account the configuration declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub enabled: bool,
    pub capabilities: Vec<Capability>,
}

/// An API token as stored: its id, times and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    pub id: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds); none for a token that does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// SHA-256 of the secret part, hex.
    hash: String,
}

/// Why a login, token or account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Wrong user or password, or an account that may not log in: deliberately one message.
    #[error("invalid username or password")]
    BadCredentials,
    #[error("account {0} does not exist")]
    NoSuchAccount(String),
    #[error("account {0} is disabled")]
    Disabled(String),
    #[error("account {name} does not have the {capability} capability")]
    MissingCapability {
        name: String,
        capability: &'static str,
    },
    #[error("token {0} does not exist")]
    NoSuchToken(String),
    #[error("the new password must be at least 8 characters")]
    WeakPassword,
    #[error("the accounts Secret {SECRET_NAME}: {0}")]
    Store(String),
}

/// The parsed Secret.
#[derive(Debug, Clone, Default)]
struct Stored {
    server_key: Vec<u8>,
    passwords: BTreeMap<String, String>,
    password_mtimes: BTreeMap<String, String>,
    tokens: BTreeMap<String, Vec<StoredToken>>,
    /// Revoked session ids, with their expiry (dropped once past it).
    revoked: BTreeMap<String, i64>,
}

impl Stored {
    fn parse(secret: &Secret) -> Stored {
        let mut stored = Stored::default();
        for (key, ByteString(value)) in secret.data.iter().flatten() {
            let text = || String::from_utf8_lossy(value).into_owned();
            if key == KEY_SERVER_SECRET {
                stored.server_key = value.clone();
            } else if key == KEY_REVOKED {
                stored.revoked = serde_json::from_slice(value).unwrap_or_default();
            } else if let Some(rest) = key.strip_prefix("accounts.") {
                if let Some(name) = rest.strip_suffix(".password") {
                    stored.passwords.insert(name.to_owned(), text());
                } else if let Some(name) = rest.strip_suffix(".passwordMtime") {
                    stored.password_mtimes.insert(name.to_owned(), text());
                } else if let Some(name) = rest.strip_suffix(".tokens") {
                    match serde_json::from_slice(value) {
                        Ok(tokens) => {
                            stored.tokens.insert(name.to_owned(), tokens);
                        }
                        Err(e) => {
                            tracing::warn!(account = name, error = %e, "unreadable tokens in the accounts Secret; ignored");
                        }
                    }
                }
            }
        }
        stored
    }

    fn data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        data.insert(
            KEY_SERVER_SECRET.to_owned(),
            ByteString(self.server_key.clone()),
        );
        let revoked = serde_json::to_vec(&self.revoked).unwrap_or_default();
        data.insert(KEY_REVOKED.to_owned(), ByteString(revoked));
        for (name, hash) in &self.passwords {
            data.insert(
                format!("accounts.{name}.password"),
                ByteString(hash.clone().into_bytes()),
            );
        }
        for (name, mtime) in &self.password_mtimes {
            data.insert(
                format!("accounts.{name}.passwordMtime"),
                ByteString(mtime.clone().into_bytes()),
            );
        }
        for (name, tokens) in &self.tokens {
            let json = serde_json::to_vec(tokens).unwrap_or_default();
            data.insert(format!("accounts.{name}.tokens"), ByteString(json));
        }
        data
    }
}

/// The accounts of this control plane, cached from their Secret.
pub struct Accounts {
    api: Api<Secret>,
    configured: BTreeMap<String, Account>,
    cache: RwLock<Stored>,
    last_read: Mutex<Instant>,
}

impl Accounts {
    /// Reads (or creates) the accounts Secret in `namespace`, generates the session key and the
    /// admin's initial password (into `data_dir/admin-password`) when they are missing, and keeps
    /// the cache fresh until `shutdown`.
    pub async fn start(
        client: Client,
        namespace: &str,
        settings: &AuthSettings,
        data_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Arc<Accounts>, AccountError> {
        let mut configured = BTreeMap::new();
        configured.insert(
            ADMIN.to_owned(),
            Account {
                name: ADMIN.to_owned(),
                enabled: settings.admin_enabled,
                capabilities: vec![Capability::Login],
            },
        );
        for (name, account) in &settings.accounts {
            configured.insert(
                name.clone(),
                Account {
                    name: name.clone(),
                    enabled: account.enabled,
                    capabilities: account.capabilities.clone(),
                },
            );
        }
        let accounts = Arc::new(Accounts {
            api: Api::namespaced(client, namespace),
            configured,
            cache: RwLock::new(Stored::default()),
            last_read: Mutex::new(Instant::now()),
        });
        let initial = accounts
            .modify(|stored| {
                let mut generated = None;
                if stored.server_key.len() < 32 {
                    stored.server_key = rand::random::<[u8; 32]>().to_vec();
                }
                if !stored.passwords.contains_key(ADMIN) {
                    let password = crate::secret::random_token()[..24].to_owned();
                    stored
                        .passwords
                        .insert(ADMIN.to_owned(), hash_password(&password)?);
                    stored
                        .password_mtimes
                        .insert(ADMIN.to_owned(), jiff::Timestamp::now().to_string());
                    generated = Some(password);
                }
                Ok(generated)
            })
            .await?;
        if let Some(password) = initial {
            let path = data_dir.join("admin-password");
            crate::private_fs::write_replacing(&path, password.as_bytes())
                .map_err(|e| AccountError::Store(format!("writing {}: {e}", path.display())))?;
            // In a cluster the data directory is the pod's; Argo CD users look for the Secret.
            accounts.keep_initial_password(&password).await?;
            tracing::info!(path = %path.display(), secret = INITIAL_ADMIN_SECRET, "generated the initial admin password");
        }
        let refreshing = accounts.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                }
                if let Err(e) = refreshing.refresh().await {
                    tracing::warn!(error = %e, "re-reading the accounts Secret failed");
                }
            }
        });
        Ok(accounts)
    }

    /// Writes the generated admin password to [`INITIAL_ADMIN_SECRET`] (replacing an old one).
    async fn keep_initial_password(&self, password: &str) -> Result<(), AccountError> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(INITIAL_ADMIN_SECRET.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "password".to_owned(),
                ByteString(password.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        };
        let store_err = |e: kube::Error| AccountError::Store(e.to_string());
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let mut current = self
                    .api
                    .get(INITIAL_ADMIN_SECRET)
                    .await
                    .map_err(store_err)?;
                current.data = secret.data;
                self.api
                    .replace(INITIAL_ADMIN_SECRET, &PostParams::default(), &current)
                    .await
                    .map(|_| ())
                    .map_err(store_err)
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// The key session tokens are signed with (shared by every replica).
    pub fn server_key(&self) -> Vec<u8> {
        self.read().server_key.clone()
    }

    /// Every configured account, admin first.
    pub fn list(&self) -> Vec<Account> {
        let mut all: Vec<Account> = self.configured.values().cloned().collect();
        all.sort_by_key(|a| (a.name != ADMIN, a.name.clone()));
        all
    }

    /// One configured account.
    pub fn get(&self, name: &str) -> Result<Account, AccountError> {
        self.configured
            .get(name)
            .cloned()
            .ok_or_else(|| AccountError::NoSuchAccount(name.to_owned()))
    }

    /// The tokens of `name` (ids and times, never secrets).
    pub fn tokens(&self, name: &str) -> Vec<StoredToken> {
        self.read().tokens.get(name).cloned().unwrap_or_default()
    }

    /// When `name`'s password last changed (RFC 3339), if it has one.
    pub fn password_mtime(&self, name: &str) -> Option<String> {
        self.read().password_mtimes.get(name).cloned()
    }

    /// When `name`'s password last changed (Unix milliseconds).
    pub fn password_changed_at_ms(&self, name: &str) -> Option<i64> {
        self.read()
            .password_mtimes
            .get(name)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond())
    }

    /// The identity of a local account whose password this is.
    pub fn login(&self, name: &str, password: &str) -> Result<Identity, AccountError> {
        let account = self
            .configured
            .get(name)
            .filter(|a| a.enabled && a.capabilities.contains(&Capability::Login))
            .ok_or(AccountError::BadCredentials)?;
        let hash = self
            .read()
            .passwords
            .get(&account.name)
            .cloned()
            .ok_or(AccountError::BadCredentials)?;
        if verify_password(&hash, password) {
            Ok(Identity::new(&account.name, Source::Local))
        } else {
            Err(AccountError::BadCredentials)
        }
    }

    /// Sets `name`'s password (`current` is checked by the caller when a user changes their own).
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        let account = self.get(name)?;
        if !account.capabilities.contains(&Capability::Login) {
            return Err(AccountError::MissingCapability {
                name: name.to_owned(),
                capability: "login",
            });
        }
        if password.chars().count() < 8 {
            return Err(AccountError::WeakPassword);
        }
        let hash = hash_password(password)?;
        self.modify(|stored| {
            stored.passwords.insert(name.to_owned(), hash.clone());
            stored
                .password_mtimes
                .insert(name.to_owned(), jiff::Timestamp::now().to_string());
            Ok(())
        })
        .await
    }

    /// Issues an API token for `name`; the token is shown once, only its hash is kept.
    pub async fn create_token(
        &self,
        name: &str,
        expires_in: Option<Duration>,
        description: &str,
    ) -> Result<(String, StoredToken), AccountError> {
        let account = self.get(name)?;
        if !account.enabled {
            return Err(AccountError::Disabled(name.to_owned()));
        }
        if !account.capabilities.contains(&Capability::ApiKey) {
            return Err(AccountError::MissingCapability {
                name: name.to_owned(),
                capability: "apiKey",
            });
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let secret = crate::secret::random_token();
        let now = jiff::Timestamp::now().as_second();
        let stored = StoredToken {
            id: id.clone(),
            iat: now,
            exp: expires_in.map(|d| now + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)),
            description: description.to_owned(),
            hash: sha256_hex(&secret),
        };
        let kept = stored.clone();
        self.modify(|s| {
            s.tokens
                .entry(name.to_owned())
                .or_default()
                .push(kept.clone());
            Ok(())
        })
        .await?;
        Ok((format!("{TOKEN_PREFIX}{id}_{secret}"), stored))
    }

    /// Revokes `name`'s token `id`; it is refused from then on (on other replicas within
    /// [`REFRESH_EVERY`]).
    pub async fn revoke_token(&self, name: &str, id: &str) -> Result<(), AccountError> {
        self.get(name)?;
        self.modify(|s| {
            let tokens = s.tokens.entry(name.to_owned()).or_default();
            let before = tokens.len();
            tokens.retain(|t| t.id != id);
            if tokens.len() == before {
                return Err(AccountError::NoSuchToken(id.to_owned()));
            }
            Ok(())
        })
        .await
    }

    /// The account an API token belongs to, with the token's id; `None` for an unknown,
    /// revoked, expired or disabled one.
    pub async fn verify_token(&self, token: &str) -> Option<(Identity, String)> {
        let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
        if let Some(found) = self.match_token(id, secret) {
            return Some(found);
        }
        // Perhaps another replica issued it a moment ago.
        let stale = self
            .last_read
            .lock()
            .map(|t| t.elapsed() > Duration::from_millis(200))
            .unwrap_or(true);
        if stale && self.refresh().await.is_ok() {
            return self.match_token(id, secret);
        }
        None
    }

    fn match_token(&self, id: &str, secret: &str) -> Option<(Identity, String)> {
        let stored = self.read();
        let now = jiff::Timestamp::now().as_second();
        for (name, tokens) in &stored.tokens {
            let Some(token) = tokens.iter().find(|t| t.id == id) else {
                continue;
            };
            let hash = crate::secret::SecretString::from(token.hash.clone());
            let account = self.configured.get(name)?;
            let usable = account.enabled
                && account.capabilities.contains(&Capability::ApiKey)
                && token.exp.is_none_or(|exp| exp > now);
            return (usable && crate::secret::ct_eq(&hash, &sha256_hex(secret)))
                .then(|| (Identity::new(name, Source::ApiKey), token.id.clone()));
        }
        None
    }

    /// Ends a session everywhere: its id is refused until it would have expired anyway.
    pub async fn revoke_session(&self, jti: &str, exp: i64) -> Result<(), AccountError> {
        self.modify(|s| {
            let now = jiff::Timestamp::now().as_second();
            s.revoked.retain(|_, e| *e > now);
            s.revoked.insert(jti.to_owned(), exp);
            Ok(())
        })
        .await
    }

    /// Whether a session id was revoked (logout).
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.read().revoked.contains_key(jti)
    }

    /// Re-reads the Secret into the cache.
    pub async fn refresh(&self) -> Result<(), AccountError> {
        let secret = self
            .api
            .get_opt(SECRET_NAME)
            .await
            .map_err(|e| AccountError::Store(e.to_string()))?;
        if let Some(secret) = secret {
            self.store(Stored::parse(&secret));
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Stored> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self, stored: Stored) {
        *self.cache.write().unwrap_or_else(|p| p.into_inner()) = stored;
        if let Ok(mut t) = self.last_read.lock() {
            *t = Instant::now();
        }
    }

    /// Read-modify-write of the Secret with optimistic concurrency: a replica that wrote in
    /// between makes this one re-read and apply `change` again.
    async fn modify<T>(
        &self,
        mut change: impl FnMut(&mut Stored) -> Result<T, AccountError>,
    ) -> Result<T, AccountError> {
        let store_err = |e: kube::Error| AccountError::Store(e.to_string());
        for _ in 0..8 {
            let current = self.api.get_opt(SECRET_NAME).await.map_err(store_err)?;
            let mut stored = current.as_ref().map(Stored::parse).unwrap_or_default();
            let out = change(&mut stored)?;
            let result = match current {
                Some(mut secret) => {
                    secret.data = Some(stored.data());
                    self.api
                        .replace(SECRET_NAME, &PostParams::default(), &secret)
                        .await
                }
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(SECRET_NAME.to_owned()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/part-of".to_owned(),
                                "capstan".to_owned(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        data: Some(stored.data()),
                        ..Secret::default()
                    };
                    self.api.create(&PostParams::default(), &secret).await
                }
            };
            match result {
                Ok(_) => {
                    self.store(stored);
                    return Ok(out);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(AccountError::Store(
            "too many concurrent changes; try again".into(),
        ))
    }
}

/// An argon2id hash in PHC form.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Store(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse").expect("hashed");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(
            hash,
            hash_password("correct horse").expect("hashed"),
            "no salt"
        );
    }

    #[test]
    fn the_secret_round_trips_through_its_data() {
        let mut stored = Stored {
            server_key: vec![1; 32],
            ..Stored::default()
        };
        stored
            .passwords
            .insert("admin".into(), "$argon2id$x".into());
        stored.tokens.insert(
            "ci".into(),
            vec![StoredToken {
                id: "t1".into(),
                iat: 1,
                exp: Some(2),
                description: "deploys".into(),
                hash: "ab".into(),
            }],
        );
        stored.revoked.insert("j1".into(), 99);
        let secret = Secret {
            data: Some(stored.data()),
            ..Secret::default()
        };
        let back = Stored::parse(&secret);
        assert_eq!(back.server_key, stored.server_key);
        assert_eq!(back.passwords, stored.passwords);
        assert_eq!(back.tokens, stored.tokens);
        assert_eq!(back.revoked, stored.revoked);
    }
}
