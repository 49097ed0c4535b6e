//! The identity provider Capstan trusts: its entity ID, where to send the browser, and the
//! certificates its signatures must verify against, from its metadata XML or configured singly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::SetupError;
use super::settings::SamlSettings;

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// What Capstan knows of its identity provider.
#[derive(Debug, Clone)]
pub struct IdentityProvider {
    /// Its entity ID; assertions must be issued by it when known.
    pub entity_id: Option<String>,
    /// Its single sign-on endpoint for the HTTP-Redirect binding.
    pub sso_url: String,
    /// The public keys of its signing certificates; nothing else is trusted, not even a
    /// certificate the response itself carries.
    pub keys: Vec<bergshamra_keys::Key>,
}

impl IdentityProvider {
    /// Reads the metadata file, or the SSO URL and certificate file, that `settings` name.
    pub fn from_settings(settings: &SamlSettings) -> Result<IdentityProvider, SetupError> {
        if let Some(path) = &settings.idp_metadata_file {
            let xml = read(path)?;
            let mut idp = IdentityProvider::from_metadata(&xml)?;
            // A configured SSO URL wins over the metadata's (a proxy in front of the IdP).
            if let Some(url) = &settings.idp_sso_url {
                idp.sso_url = url.clone();
            }
            return Ok(idp);
        }
        match (&settings.idp_sso_url, &settings.idp_cert_file) {
            (Some(sso_url), Some(cert)) => {
                let pem = read(cert)?;
                let key = bergshamra_keys::loader::load_x509_cert_pem(pem.as_bytes())
                    .map_err(|e| SetupError::Invalid(format!("{}: {e}", cert.display())))?;
                Ok(IdentityProvider {
                    entity_id: settings.idp_entity_id.clone(),
                    sso_url: sso_url.clone(),
                    keys: vec![key],
                })
            }
            _ => Err(SetupError::NoIdentityProvider),
        }
    }

    /// The identity provider an `EntityDescriptor` (or the first IdP in an
    /// `EntitiesDescriptor`) describes.
    pub fn from_metadata(xml: &str) -> Result<IdentityProvider, SetupError> {
        let invalid = |what: &str| SetupError::Invalid(format!("IdP metadata: {what}"));
        if super::response::declares_dtd(xml) {
            return Err(invalid("a DOCTYPE is not accepted"));
        }
        let doc = uppsala::parse(xml).map_err(|e| invalid(&format!("not XML: {e}")))?;
        let descriptor = doc
            .get_elements_by_tag_name_ns(MD, "IDPSSODescriptor")
            .into_iter()
            .next()
            .ok_or_else(|| invalid("no IDPSSODescriptor"))?;
        let entity_id = doc
            .parent(descriptor)
            .and_then(|entity| doc.get_attribute(entity, "entityID"))
            .map(str::to_owned);
        let sso_url = doc
            .child_elements_by_name_ns(descriptor, MD, "SingleSignOnService")
            .into_iter()
            .find(|&s| doc.get_attribute(s, "Binding") == Some(REDIRECT_BINDING))
            .and_then(|s| doc.get_attribute(s, "Location"))
            .ok_or_else(|| invalid("no SingleSignOnService with the HTTP-Redirect binding"))?
            .to_owned();
        let mut keys = Vec::new();
        for key in doc.child_elements_by_name_ns(descriptor, MD, "KeyDescriptor") {
            // Keys only for encryption are not signing keys.
            if doc
                .get_attribute(key, "use")
                .is_some_and(|u| u != "signing")
            {
                continue;
            }
            for cert in doc.get_elements_by_tag_name_ns(DSIG, "X509Certificate") {
                if !doc.ancestors(cert).contains(&key) {
                    continue;
                }
                let text: String = doc
                    .text_content_deep(cert)
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                let der = STANDARD
                    .decode(text)
                    .map_err(|_| invalid("an X509Certificate is not base64"))?;
                let key = bergshamra_keys::loader::load_x509_cert_der(&der)
                    .map_err(|e| invalid(&format!("a signing certificate: {e}")))?;
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(invalid("no signing certificate"));
        }
        Ok(IdentityProvider {
            entity_id,
            sso_url,
            keys,
        })
    }
}

fn read(path: &std::path::Path) -> Result<String, SetupError> {
    std::fs::read_to_string(path).map_err(|source| SetupError::Read {
        path: path.display().to_string(),
        source,
    })
}
