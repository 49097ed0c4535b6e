//! Checking an ID token: its signature with the issuer's published key (asymmetric algorithms
//! only), then `iss`, `aud` (and `azp` when there are several audiences), `exp`/`iat` with a small
//! leeway and the `nonce` of this login.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::secret;

/// Clock skew tolerated between Capstan and the identity provider.
pub const LEEWAY_SECS: u64 = 60;

/// What this login expects the token to say.
pub struct Expected<'a> {
    /// The provider's issuer identifier, exactly as its discovery document gives it.
    pub issuer: &'a str,
    /// Capstan's client id: the audience.
    pub client_id: &'a str,
    /// The nonce sent with this login's authorization request.
    pub nonce: &'a str,
}

/// Why an ID token is refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("malformed ID token: {0}")]
    Malformed(String),
    #[error("ID token algorithm {0:?} is not accepted (asymmetric signatures only)")]
    Algorithm(Algorithm),
    /// The provider's key set has no key with this id: it may have rotated its keys.
    #[error("ID token signed with an unknown key {0:?}")]
    UnknownKey(String),
    #[error("the provider's key {kid:?} is for {key:?}, the token says {token:?}")]
    KeyMismatch {
        kid: String,
        key: String,
        token: Algorithm,
    },
    #[error("ID token refused: {0}")]
    Invalid(String),
    #[error("ID token refused: issued in the future")]
    IssuedInFuture,
    #[error("ID token refused: several audiences and azp is not this client")]
    AuthorizedParty,
    #[error("ID token refused: nonce does not match this login")]
    Nonce,
}

/// The claims of `token` when it passes every check against `keys`.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    // `alg: none` and unknown algorithms do not even parse as a header here.
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    let alg = header.alg;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        // A shared-secret signature would let anyone holding the client secret mint tokens,
        // and is the classic confusion attack against public keys.
        return Err(IdTokenError::Algorithm(alg));
    }
    let jwk = find_key(keys, header.kid.as_deref(), alg)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| IdTokenError::Invalid(e.to_string()))?
        .claims;

    let now = jiff::Timestamp::now().as_second();
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MAX);
    if iat > now + LEEWAY_SECS as i64 {
        return Err(IdTokenError::IssuedInFuture);
    }
    if let Some(Value::Array(audiences)) = claims.get("aud")
        && audiences.len() > 1
        && claims.get("azp").and_then(Value::as_str) != Some(expected.client_id)
    {
        return Err(IdTokenError::AuthorizedParty);
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if nonce.is_empty() || !secret::ct_eq(&secret::SecretString::from(expected.nonce), nonce) {
        return Err(IdTokenError::Nonce);
    }
    Ok(claims)
}

/// The key the header names; without a `kid`, the only key of the token's family.
fn find_key<'a>(
    keys: &'a JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'a Jwk, IdTokenError> {
    let jwk = match kid {
        Some(kid) => keys
            .find(kid)
            .ok_or_else(|| IdTokenError::UnknownKey(kid.to_owned()))?,
        None => {
            let mut usable = keys.keys.iter().filter(|k| fits(k, alg));
            match (usable.next(), usable.next()) {
                (Some(only), None) => only,
                _ => return Err(IdTokenError::UnknownKey(String::new())),
            }
        }
    };
    if !fits(jwk, alg) {
        return Err(IdTokenError::KeyMismatch {
            kid: kid.unwrap_or_default().to_owned(),
            key: format!("{:?}", jwk.common.key_algorithm),
            token: alg,
        });
    }
    Ok(jwk)
}

/// Whether `jwk` may verify a token signed with `alg`: the key's own `alg` when it states one,
/// else its key type.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    if let Some(stated) = jwk.common.key_algorithm {
        return stated.to_string().parse::<Algorithm>().ok() == Some(alg);
    }
    match &jwk.algorithm {
        P::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        P::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        P::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ISSUER: &str = "https://idp.example";
    const CLIENT: &str = "capstan";
    const NONCE: &str = "n-0S6_WzA2Mj";

    /// A fresh P-256 key: what signs, and its public JWK with `kid`.
    fn key(kid: &str) -> (EncodingKey, Jwk) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let signing = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        (signing, jwk)
    }

    fn claims() -> Value {
        let now = jiff::Timestamp::now().as_second();
        json!({"iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
               "iat": now, "exp": now + 300, "email": "alice@example.com", "groups": ["devs"]})
    }

    fn sign(signing: &EncodingKey, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, signing).expect("signed")
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISSUER,
            client_id: CLIENT,
            nonce: NONCE,
        }
    }

    fn set(keys: Vec<Jwk>) -> JwkSet {
        JwkSet { keys }
    }

    #[test]
    fn a_token_signed_by_the_published_key_passes_and_yields_its_claims() {
        let (signing, jwk) = key("k1");
        let token = sign(&signing, "k1", &claims());
        let got = verify(&token, &set(vec![jwk]), &expected()).expect("valid");
        assert_eq!(got["email"], "alice@example.com");
        assert_eq!(got["groups"], json!(["devs"]));
    }

    #[test]
    fn a_token_signed_by_another_key_with_the_published_kid_is_refused() {
        let (_, published) = key("k1");
        let (attacker, _) = key("k1");
        let token = sign(&attacker, "k1", &claims());
        let err = verify(&token, &set(vec![published]), &expected()).expect_err("forged");
        assert!(matches!(err, IdTokenError::Invalid(_)), "{err}");
    }

    #[test]
    fn a_changed_payload_breaks_the_signature() {
        let (signing, jwk) = key("k1");
        let token = sign(&signing, "k1", &claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims();
        forged["groups"] = json!(["admins"]);
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        let err = verify(&parts.join("."), &set(vec![jwk]), &expected()).expect_err("forged");
        assert!(matches!(err, IdTokenError::Invalid(_)), "{err}");
    }

    #[test]
    fn wrong_audience_wrong_issuer_expired_future_and_wrong_nonce_are_refused() {
        let (signing, jwk) = key("k1");
        let keys = set(vec![jwk]);
        let now = jiff::Timestamp::now().as_second();
        let cases: Vec<(&str, Value)> = vec![
            ("another client's token", json!({"aud": "someone-else"})),
            ("another issuer", json!({"iss": "https://evil.example"})),
            ("expired", json!({"iat": now - 7200, "exp": now - 3600})),
            (
                "issued in the future",
                json!({"iat": now + 3600, "exp": now + 7200}),
            ),
            ("another login's nonce", json!({"nonce": "replayed"})),
            ("no nonce", json!({"nonce": null})),
            (
                "several audiences, azp another client",
                json!({"aud": [CLIENT, "other"], "azp": "other"}),
            ),
        ];
        for (what, change) in cases {
            let mut c = claims();
            for (k, v) in change.as_object().expect("object") {
                if v.is_null() {
                    c.as_object_mut().expect("object").remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            let token = sign(&signing, "k1", &c);
            assert!(
                verify(&token, &keys, &expected()).is_err(),
                "{what}: accepted"
            );
        }
        let mut several = claims();
        several["aud"] = json!([CLIENT, "other"]);
        several["azp"] = json!(CLIENT);
        let token = sign(&signing, "k1", &several);
        verify(&token, &keys, &expected()).expect("several audiences with azp = client");
    }

    #[test]
    fn alg_none_and_hmac_with_the_public_key_as_secret_are_refused() {
        let (_, jwk) = key("k1");
        let keys = set(vec![jwk.clone()]);
        let body = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!(
            "{}.{body}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#)
        );
        assert!(
            verify(&none, &keys, &expected()).is_err(),
            "alg none accepted"
        );

        // The confusion attack: HS256 keyed with the public key's bytes.
        let public = serde_json::to_vec(&jwk).expect("json");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(&public).expect("key"),
        )
        .expect("signed");
        let err = verify(&hs, &keys, &expected()).expect_err("HS256 accepted");
        assert!(
            matches!(err, IdTokenError::Algorithm(Algorithm::HS256)),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_kid_is_reported_so_the_caller_can_refetch_the_keys() {
        let (signing, jwk) = key("k1");
        let (rotated, _) = key("k2");
        let token = sign(&rotated, "k2", &claims());
        let err = verify(&token, &set(vec![jwk]), &expected()).expect_err("unknown kid");
        assert!(
            matches!(&err, IdTokenError::UnknownKey(k) if k == "k2"),
            "{err}"
        );
        // And a token that names a key of another type than its algorithm is refused.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let ok = jsonwebtoken::encode(&header, &claims(), &signing).expect("signed");
        let (_, mut rsa_claimed) = key("k1");
        rsa_claimed.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS256);
        assert!(verify(&ok, &set(vec![rsa_claimed]), &expected()).is_err());
    }
}
