//! Session tokens: what a login hands out. A JWT signed (HS256) with the server's key and
//! carrying the identity and an expiry, so every api replica holding the key verifies it without
//! a lookup; logout revokes its id (see [`super::accounts`]). A browser session's CSRF token is
//! derived from the id, so nothing per session is stored.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::identity::{Identity, Source};

/// The `iss` of every session token Capstan signs.
pub const ISSUER: &str = "capstan";

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user.
    pub sub: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the user proved who they are.
    pub src: Source,
    pub iat: i64,
    pub exp: i64,
    /// When the login happened, in milliseconds (a password changed after it ends the session).
    #[serde(default)]
    pub auth_time_ms: i64,
    /// The session's id: what logout revokes and the CSRF token is derived from.
    pub jti: String,
}

impl Claims {
    /// The identity the session acts for.
    pub fn identity(&self) -> Identity {
        Identity {
            user: self.sub.clone(),
            groups: self.groups.clone(),
            source: self.src,
        }
    }
}

/// Why a presented session token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session expired")]
    Expired,
    #[error("invalid session token: {0}")]
    Invalid(String),
}

/// Signs and verifies session tokens with the server's key.
pub struct SessionSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key: Vec<u8>,
    ttl: Duration,
}

impl SessionSigner {
    /// A signer with `key` (at least 32 bytes, shared by every api replica) whose sessions last `ttl`.
    pub fn new(key: &[u8], ttl: Duration) -> Result<SessionSigner, SessionError> {
        let bad =
            |e: jsonwebtoken::errors::Error| SessionError::Invalid(format!("session key: {e}"));
        Ok(SessionSigner {
            encoding: EncodingKey::from_secret(key).map_err(bad)?,
            decoding: DecodingKey::from_secret(key).map_err(bad)?,
            key: key.to_vec(),
            ttl,
        })
    }

    /// How long a session lasts from login.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `identity`: the token and what it says.
    pub fn issue(&self, identity: &Identity) -> Result<(String, Claims), SessionError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.issue_for(identity, Some(self.ttl), &id)
    }

    /// A token for `identity` with id `id`, valid for `lifetime` (`None`: a century, for the
    /// project role tokens that do not expire; they are revoked by id instead).
    pub fn issue_for(
        &self,
        identity: &Identity,
        lifetime: Option<Duration>,
        id: &str,
    ) -> Result<(String, Claims), SessionError> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let now = now_ms.div_euclid(1000);
        let lifetime = lifetime.unwrap_or(Duration::from_secs(100 * 365 * 86_400));
        let claims = Claims {
            auth_time_ms: now_ms,
            iss: ISSUER.to_owned(),
            sub: identity.user.clone(),
            groups: identity.groups.clone(),
            src: identity.source,
            iat: now,
            exp: now + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
            jti: id.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| SessionError::Invalid(e.to_string()))?;
        Ok((token, claims))
    }

    /// The claims of a token this server signed and that has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, SessionError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => SessionError::Expired,
                _ => SessionError::Invalid(e.to_string()),
            })
    }

    /// The CSRF token pages of this session echo in `X-CSRF-Token`.
    pub fn csrf(&self, claims: &Claims) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(b"csrf:");
        mac.update(claims.jti.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> SessionSigner {
        SessionSigner::new(&[7u8; 32], Duration::from_secs(60)).expect("a key")
    }

    #[test]
    fn a_token_verifies_to_its_identity_and_ids_differ() {
        let mut alice = Identity::new("alice", Source::Ldap);
        alice.groups = vec!["devs".into()];
        let (token, claims) = signer().issue(&alice).expect("signed");
        let back = signer().verify(&token).expect("verifies");
        assert_eq!(back.identity(), alice);
        assert_eq!(back, claims);
        let (_, other) = signer().issue(&alice).expect("signed");
        assert_ne!(claims.jti, other.jti, "two logins share a session id");
        assert_ne!(signer().csrf(&claims), signer().csrf(&other));
    }

    #[test]
    fn another_key_a_changed_payload_or_an_expired_token_is_refused() {
        let (token, _) = signer()
            .issue(&Identity::new("bob", Source::Local))
            .expect("signed");
        let foreign = SessionSigner::new(&[8u8; 32], Duration::from_secs(60)).expect("a key");
        assert!(
            foreign.verify(&token).is_err(),
            "a token of another key verified"
        );

        // Swap the payload for one naming admin, keeping the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let (_, admin) = signer()
            .issue(&Identity::new("admin", Source::Local))
            .expect("signed");
        let admin_payload = admin_payload(&signer(), &admin);
        let forged = format!("{}.{}.{}", parts[0], admin_payload, parts[2]);
        assert!(
            signer().verify(&forged).is_err(),
            "a changed payload verified"
        );

        let expired = SessionSigner::new(&[7u8; 32], Duration::ZERO).expect("a key");
        let (token, _) = expired
            .issue(&Identity::new("bob", Source::Local))
            .expect("signed");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(matches!(expired.verify(&token), Err(SessionError::Expired)));
    }

    fn admin_payload(signer: &SessionSigner, claims: &Claims) -> String {
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &signer.encoding)
            .expect("signed");
        token.split('.').nth(1).expect("payload").to_owned()
    }
}
