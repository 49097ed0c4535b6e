//! One login in flight: the `state`, `nonce` and PKCE verifier sent with the authorization
//! request, and where to go afterwards. Kept in the browser in a short-lived HttpOnly cookie
//! scoped to the callback path, so any api replica can finish the login.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a login may take at the provider.
pub const FLOW_TTL_SECS: i64 = 600;

/// A login between the redirect to the provider and its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Echoed by the provider; ties the callback to this browser.
    pub state: String,
    /// Echoed in the ID token; ties the token to this login.
    pub nonce: String,
    /// PKCE: only this login can redeem its authorization code.
    pub verifier: String,
    /// The local path to open after login.
    pub return_to: String,
    /// Unix seconds after which the callback is refused.
    pub exp: i64,
}

impl Flow {
    /// A new login with fresh random values.
    pub fn new(return_to: &str) -> Flow {
        Flow {
            state: random(),
            nonce: random(),
            verifier: random(),
            return_to: return_to.to_owned(),
            exp: jiff::Timestamp::now().as_second() + FLOW_TTL_SECS,
        }
    }

    /// The S256 code challenge of the verifier (RFC 7636).
    pub fn challenge(&self) -> String {
        challenge(&self.verifier)
    }

    /// The cookie value.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The flow a cookie value holds, if it is one and has not expired.
    pub fn decode(value: &str) -> Option<Flow> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let flow: Flow = serde_json::from_slice(&bytes).ok()?;
        (flow.exp >= jiff::Timestamp::now().as_second()).then_some(flow)
    }
}

/// The S256 PKCE challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 32 random bytes, base64url: 43 characters, as PKCE wants for a verifier.
pub fn random() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example_and_a_flow_survives_its_cookie() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let flow = Flow::new("/applications/x/y");
        assert_eq!(flow.verifier.len(), 43);
        assert_ne!(flow.state, flow.nonce);
        assert_eq!(Flow::decode(&flow.encode()), Some(flow.clone()));
        let expired = Flow { exp: 0, ..flow };
        assert_eq!(Flow::decode(&expired.encode()), None);
        assert_eq!(Flow::decode("not base64!"), None);
    }
}
