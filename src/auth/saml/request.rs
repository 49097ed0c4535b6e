//! The AuthnRequest Capstan sends, in the HTTP-Redirect binding: raw DEFLATE, base64, then the
//! `SAMLRequest` and `RelayState` query parameters of the identity provider's SSO URL.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use rand::RngCore;

use super::settings::SamlSettings;
use super::xml_escape;

/// Why the redirect to the identity provider could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The configured SSO URL does not parse.
    #[error("the identity provider's SSO URL is not a URL: {0}")]
    SsoUrl(String),
    /// Compressing the request failed.
    #[error("compressing the AuthnRequest: {0}")]
    Deflate(#[from] std::io::Error),
}

/// An AuthnRequest: its ID (which the answer's InResponseTo must name) and its XML.
pub struct AuthnRequest {
    /// The request's ID.
    pub id: String,
    /// The request's XML.
    pub xml: String,
}

impl AuthnRequest {
    /// A fresh request for `destination`, asking for an answer at our ACS over HTTP-POST.
    pub fn new(settings: &SamlSettings, destination: &str, now: Timestamp) -> AuthnRequest {
        let mut random = [0u8; 20];
        rand::rng().fill_bytes(&mut random);
        // An xs:ID must not start with a digit.
        let id = format!("_{}", hex::encode(random));
        let xml = format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
                r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{instant}" Destination="{destination}" "#,
                r#"AssertionConsumerServiceURL="{acs}" "#,
                r#"ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy AllowCreate="true"/>"#,
                r#"</samlp:AuthnRequest>"#
            ),
            id = id,
            instant = now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            destination = xml_escape(destination),
            acs = xml_escape(&settings.acs_url),
            issuer = xml_escape(&settings.sp_entity_id),
        );
        AuthnRequest { id, xml }
    }

    /// `sso_url` with this request and `relay_state` in its query (HTTP-Redirect binding).
    pub fn redirect_url(&self, sso_url: &str, relay_state: &str) -> Result<String, RequestError> {
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflater.write_all(self.xml.as_bytes())?;
        let encoded = STANDARD.encode(deflater.finish()?);
        let mut url =
            reqwest::Url::parse(sso_url).map_err(|e| RequestError::SsoUrl(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("SAMLRequest", &encoded)
            .append_pair("RelayState", relay_state);
        Ok(url.into())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn settings() -> SamlSettings {
        serde_json::from_value(serde_json::json!({
            "sp_entity_id": "https://capstan.example/saml?a=1&b=2",
            "acs_url": "https://capstan.example/auth/saml/acs",
        }))
        .expect("settings")
    }

    #[test]
    fn the_redirect_carries_a_deflated_request_the_idp_can_read_back() {
        let request = AuthnRequest::new(&settings(), "https://idp.example/sso", Timestamp::now());
        let url = request
            .redirect_url("https://idp.example/sso?x=1", "/applications")
            .expect("url");
        let url = reqwest::Url::parse(&url).expect("parses");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["x"], "1", "the SSO URL's own query survives");
        assert_eq!(query["RelayState"], "/applications");
        let deflated = STANDARD.decode(&query["SAMLRequest"]).expect("base64");
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice())
            .read_to_string(&mut xml)
            .expect("raw deflate");
        assert_eq!(xml, request.xml);
        let doc = uppsala::parse(&xml).expect("the request is well-formed XML");
        let root = doc.document_element().expect("root");
        assert_eq!(doc.get_attribute(root, "ID"), Some(request.id.as_str()));
        assert!(
            xml.contains("https://capstan.example/saml?a=1&amp;b=2"),
            "{xml}"
        );
    }

    #[test]
    fn every_request_has_its_own_id() {
        let now = Timestamp::now();
        let a = AuthnRequest::new(&settings(), "https://idp.example/sso", now);
        let b = AuthnRequest::new(&settings(), "https://idp.example/sso", now);
        assert_ne!(a.id, b.id);
        assert!(a.id.starts_with('_'));
    }
}
