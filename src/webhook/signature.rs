//! `X-Hub-Signature-256` style HMAC-SHA256 signatures, parsed before they are trusted.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a signature header was refused. Messages never include the secret or the expected MAC.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is not `sha256=` followed by 64 lowercase hex digits")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

/// A parsed `sha256=<hex>` signature: 32 bytes of HMAC-SHA256.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

impl Signature {
    /// Parses GitHub's `sha256=<64 lowercase hex>` form; `sha1=` and bare hex are refused.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let hex_part = header
            .strip_prefix("sha256=")
            .ok_or(SignatureError::Malformed)?;
        Self::parse_hex(hex_part)
    }

    /// Parses a bare lowercase hex MAC (Gitea/Gogs style).
    pub fn parse_hex(hex_part: &str) -> Result<Self, SignatureError> {
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(SignatureError::Malformed);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| SignatureError::Malformed)?;
        Ok(Signature(bytes))
    }

    /// Checks the signature over the exact body bytes in constant time.
    pub fn verify(&self, secret: &[u8], body: &[u8]) -> Result<(), SignatureError> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
        mac.update(body);
        mac.verify_slice(&self.0)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// Signs `body` with `secret` (used by `capstan webhook` and tests to send signed requests).
    pub fn sign(secret: &[u8], body: &[u8]) -> String {
        // new_from_slice accepts keys of any length for HMAC; the error arm is unreachable in practice.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return String::new();
        };
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const GOOD: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_vector_verifies() {
        let sig = Signature::parse(GOOD).expect("parses");
        assert_eq!(sig.verify(SECRET, BODY), Ok(()));
        assert_eq!(Signature::sign(SECRET, BODY), GOOD);
    }

    #[test]
    fn a_flipped_body_byte_or_other_secret_is_a_mismatch() {
        let sig = Signature::parse(GOOD).expect("parses");
        assert_eq!(
            sig.verify(SECRET, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(sig.verify(b"other", BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
            "sha256=757107ea",
            "sha256=",
            "",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] {
            assert_eq!(
                Signature::parse(bad),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }
}
