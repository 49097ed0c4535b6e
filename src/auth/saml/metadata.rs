//! Capstan's own SAML metadata: what an identity provider's administrator imports to trust it.

use super::settings::SamlSettings;
use super::xml_escape;

/// The SP metadata XML: entity ID, the ACS (HTTP-POST) and that assertions must be signed.
pub fn sp_metadata(settings: &SamlSettings) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">"#,
            r#"<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" "#,
            r#"protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" "#,
            r#"Location="{acs}" index="0" isDefault="true"/>"#,
            r#"</md:SPSSODescriptor></md:EntityDescriptor>"#,
            "\n"
        ),
        entity = xml_escape(&settings.sp_entity_id),
        acs = xml_escape(&settings.acs_url),
    )
}
