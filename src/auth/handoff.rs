//! Handing a browser login to the CLI: after any browser login (password or single sign-on) the
//! browser gives `capstan login --sso`'s local listener a one-time code, never a session token.
//! The code is signed (a key derived from the server key, so any api replica redeems it), lives a
//! minute, is bound to the CLI's PKCE-style challenge so a code seen by anyone else is useless,
//! and is spent on first use.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::identity::Identity;

/// How long the CLI has to redeem a code.
pub const CODE_TTL_SECS: i64 = 60;
/// The audience of hand-off codes: nothing else accepts them and they accept nothing else.
const AUDIENCE: &str = "capstan-cli-handoff";

/// What a hand-off code carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Code {
    aud: String,
    /// The identity the CLI's session will act for.
    pub identity: Identity,
    /// The S256 challenge of the CLI's verifier.
    pub challenge: String,
    pub exp: i64,
    /// Spent on first use.
    pub jti: String,
}

/// Why a code is not redeemed.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("invalid or expired login code")]
    Invalid,
    #[error("the login code belongs to another client")]
    Verifier,
    #[error("could not sign a login code: {0}")]
    Sign(String),
}

/// Signs and checks hand-off codes.
pub struct HandoffSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl HandoffSigner {
    /// A signer whose key is derived from the server key, distinct from the session key so a
    /// code can never pass as a session token.
    pub fn new(server_key: &[u8]) -> Result<HandoffSigner, HandoffError> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(server_key)
            .map_err(|e| HandoffError::Sign(e.to_string()))?;
        mac.update(b"cli-handoff");
        let key = mac.finalize().into_bytes();
        let bad = |e: jsonwebtoken::errors::Error| HandoffError::Sign(e.to_string());
        Ok(HandoffSigner {
            encoding: EncodingKey::from_secret(&key).map_err(bad)?,
            decoding: DecodingKey::from_secret(&key).map_err(bad)?,
        })
    }

    /// A code for `identity`, redeemable with the verifier of `challenge`.
    pub fn issue(&self, identity: &Identity, challenge: &str) -> Result<String, HandoffError> {
        let code = Code {
            aud: AUDIENCE.into(),
            identity: identity.clone(),
            challenge: challenge.to_owned(),
            exp: jiff::Timestamp::now().as_second() + CODE_TTL_SECS,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &code, &self.encoding)
            .map_err(|e| HandoffError::Sign(e.to_string()))
    }

    /// The code's content when it is ours, unexpired and `verifier` matches its challenge. The
    /// caller spends its `jti`.
    pub fn check(&self, code: &str, verifier: &str) -> Result<Code, HandoffError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.leeway = 0;
        let code = jsonwebtoken::decode::<Code>(code, &self.decoding, &validation)
            .map_err(|_| HandoffError::Invalid)?
            .claims;
        let presented = crate::secret::SecretString::from(super::oidc::flow::challenge(verifier));
        if !crate::secret::ct_eq(&presented, &code.challenge) {
            return Err(HandoffError::Verifier);
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{SessionSigner, Source};

    #[test]
    fn a_code_redeems_only_with_its_verifier_and_is_no_session_token() {
        let key = [9u8; 32];
        let signer = HandoffSigner::new(&key).expect("signer");
        let verifier = crate::auth::oidc::flow::random();
        let challenge = crate::auth::oidc::flow::challenge(&verifier);
        let alice = Identity::new("alice", Source::Oidc);
        let code = signer.issue(&alice, &challenge).expect("code");
        assert_eq!(
            signer.check(&code, &verifier).expect("redeems").identity,
            alice
        );
        assert!(matches!(
            signer.check(&code, "another-verifier"),
            Err(HandoffError::Verifier)
        ));
        let other = HandoffSigner::new(&[1u8; 32]).expect("signer");
        assert!(
            other.check(&code, &verifier).is_err(),
            "another server's key"
        );
        let sessions =
            SessionSigner::new(&key, std::time::Duration::from_secs(60)).expect("sessions");
        assert!(
            sessions.verify(&code).is_err(),
            "a code passed as a session"
        );
        let (session, _) = sessions.issue(&alice).expect("session");
        assert!(
            signer.check(&session, &verifier).is_err(),
            "a session passed as a code"
        );
    }
}
