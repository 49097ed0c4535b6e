//! The identity provider's answer at our ACS: a `samlp:Response` with exactly one assertion,
//! signed (the Response or the Assertion) by the identity provider's configured key, addressed to
//! us, within its time window. What a signature covers is the element its Reference points to,
//! and only that element is read, so a second, unsigned copy cannot be slipped in beside it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bergshamra_dsig::{DsigContext, VerifyResult};
use jiff::{SignedDuration, Timestamp};
use uppsala::{Document, NodeId};

use super::idp::IdentityProvider;
use super::settings::SamlSettings;

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// Transforms that keep the whole signed element: anything else (XPath, XSLT) could sign less
/// than the element we go on to read.
const WHOLE_ELEMENT_TRANSFORMS: [&str; 6] = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
];

/// Why a SAML response was refused; the text is shown to the person and logged.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not base64, not UTF-8.
    #[error("the SAMLResponse is not base64-encoded UTF-8 XML")]
    Encoding,
    /// A DOCTYPE (entities) in the document; SAML never needs one.
    #[error("the response declares a DOCTYPE, which SAML never needs")]
    Doctype,
    /// Not the XML of a SAML Response.
    #[error("the response is not a SAML 2.0 Response: {0}")]
    Malformed(String),
    /// The identity provider said the login failed.
    #[error("the identity provider did not log the user in (status {0})")]
    Status(String),
    /// Encrypted assertions are not supported.
    #[error("the response carries an encrypted assertion, which Capstan does not accept")]
    Encrypted,
    /// None or more than one assertion.
    #[error("the response carries {0} assertions; exactly one is accepted")]
    AssertionCount(usize),
    /// Neither the Response nor its Assertion carries a signature by the identity provider.
    #[error("neither the response nor its assertion is signed by the identity provider")]
    Unsigned,
    /// A signature in the document does not verify.
    #[error("a signature does not verify: {0}")]
    BadSignature(String),
    /// Issued by someone else.
    #[error("the assertion was issued by another identity provider")]
    Issuer,
    /// `Destination` is not our ACS.
    #[error("the response is addressed to another service (Destination)")]
    Destination,
    /// `Recipient` is not our ACS.
    #[error("the assertion is for another service (Recipient)")]
    Recipient,
    /// Our entity ID is not in the audience.
    #[error("the assertion is meant for another audience")]
    Audience,
    /// `NotBefore` is in the future.
    #[error("the assertion is not valid yet")]
    NotYetValid,
    /// `NotOnOrAfter` has passed.
    #[error("the assertion has expired")]
    Expired,
    /// No bearer confirmation, or one without what SAML's browser SSO profile requires.
    #[error("the assertion has no usable bearer subject confirmation: {0}")]
    Confirmation(&'static str),
    /// The assertion was accepted before.
    #[error("the assertion was already used")]
    Replayed,
    /// `InResponseTo` names no request we are waiting for.
    #[error("the response answers no login this server started (unknown or expired InResponseTo)")]
    UnknownRequest,
    /// No user name in the assertion.
    #[error("the assertion names no user")]
    NoUser,
}

/// What a response that passed every check says.
#[derive(Debug)]
pub struct Checked {
    /// The assertion's ID, accepted once.
    pub assertion_id: String,
    /// The request it answers.
    pub in_response_to: String,
    /// When the assertion stops being acceptable.
    pub valid_until: Timestamp,
    /// The user name (NameID or the configured attribute).
    pub user: String,
    /// The configured groups attribute's values.
    pub groups: Vec<String>,
}

/// Whether `xml` declares a DOCTYPE or entities (refused before parsing).
pub fn declares_dtd(xml: &str) -> bool {
    let upper = xml.to_ascii_uppercase();
    upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY")
}

/// Checks a base64 `SAMLResponse` at `now`; the replay and InResponseTo checks need the
/// service provider's memory and follow in [`super::ServiceProvider::accept`].
pub fn check(
    settings: &SamlSettings,
    idp: &IdentityProvider,
    saml_response: &str,
    now: Timestamp,
) -> Result<Checked, Refusal> {
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = STANDARD.decode(compact).map_err(|_| Refusal::Encoding)?;
    let xml = String::from_utf8(bytes).map_err(|_| Refusal::Encoding)?;
    if declares_dtd(&xml) {
        return Err(Refusal::Doctype);
    }
    let doc = uppsala::parse(&xml).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let response = doc
        .document_element()
        .filter(|&r| is(&doc, r, PROTOCOL, "Response"))
        .ok_or_else(|| Refusal::Malformed("the root is not samlp:Response".into()))?;
    if doc.get_attribute(response, "Version") != Some("2.0") {
        return Err(Refusal::Malformed("Version is not 2.0".into()));
    }
    check_status(&doc, response)?;
    if !doc
        .get_elements_by_tag_name_ns(ASSERTION, "EncryptedAssertion")
        .is_empty()
    {
        return Err(Refusal::Encrypted);
    }
    // Every assertion anywhere counts: a wrapped copy hidden in an extension is one too.
    let assertions = doc.get_elements_by_tag_name_ns(ASSERTION, "Assertion");
    let assertion = match assertions.as_slice() {
        [one] if doc.parent(*one) == Some(response) => *one,
        [_] => {
            return Err(Refusal::Malformed(
                "the assertion is not in the response".into(),
            ));
        }
        more => return Err(Refusal::AssertionCount(more.len())),
    };
    check_signatures(idp, &doc, &xml, response, assertion)?;

    let issuer = |node| {
        doc.first_child_element_by_name_ns(node, ASSERTION, "Issuer")
            .map(|i| doc.text_content_deep(i).trim().to_owned())
    };
    if let Some(expected) = &idp.entity_id {
        if issuer(assertion).as_deref() != Some(expected.as_str()) {
            return Err(Refusal::Issuer);
        }
        if issuer(response).is_some_and(|i| &i != expected) {
            return Err(Refusal::Issuer);
        }
    }
    if doc
        .get_attribute(response, "Destination")
        .is_some_and(|d| d != settings.acs_url)
    {
        return Err(Refusal::Destination);
    }
    let skew = SignedDuration::from_secs(settings.skew_secs());
    let conditions_until = check_conditions(settings, &doc, assertion, now, skew)?;
    let (in_response_to, confirmation_until) =
        check_confirmation(settings, &doc, assertion, now, skew)?;
    if doc
        .get_attribute(response, "InResponseTo")
        .is_some_and(|r| r != in_response_to)
    {
        return Err(Refusal::UnknownRequest);
    }
    let assertion_id = doc
        .get_attribute(assertion, "ID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Refusal::Malformed("the assertion has no ID".into()))?
        .to_owned();
    let valid_until = conditions_until.map_or(confirmation_until, |c| c.min(confirmation_until));
    let (user, groups) = subject_and_groups(settings, &doc, assertion)?;
    Ok(Checked {
        assertion_id,
        in_response_to,
        valid_until,
        user,
        groups,
    })
}

fn is(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> bool {
    doc.element(node)
        .is_some_and(|e| e.matches_name_ns(ns, local))
}

fn child(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> Option<NodeId> {
    doc.first_child_element_by_name_ns(node, ns, local)
}

fn check_status(doc: &Document<'_>, response: NodeId) -> Result<(), Refusal> {
    let code = child(doc, response, PROTOCOL, "Status")
        .and_then(|s| child(doc, s, PROTOCOL, "StatusCode"))
        .and_then(|c| doc.get_attribute(c, "Value"))
        .ok_or_else(|| Refusal::Malformed("no StatusCode".into()))?;
    if code != SUCCESS {
        return Err(Refusal::Status(code.to_owned()));
    }
    Ok(())
}

/// Every signature must verify against the identity provider's keys, and one must be enveloped
/// in the Response or the Assertion and reference that very element, whole.
fn check_signatures(
    idp: &IdentityProvider,
    doc: &Document<'_>,
    xml: &str,
    response: NodeId,
    assertion: NodeId,
) -> Result<(), Refusal> {
    if doc
        .get_elements_by_tag_name_ns(DSIG, "Signature")
        .is_empty()
    {
        return Err(Refusal::Unsigned);
    }
    let mut keys = bergshamra_keys::KeysManager::new();
    for key in &idp.keys {
        keys.add_key(key.clone());
    }
    // Only the configured keys (never a certificate the document carries), and references
    // only to the signature's own parent or siblings.
    let ctx = DsigContext::new(keys);
    let results = bergshamra_dsig::verify::verify_all_document_with_source(&ctx, doc, Some(xml))
        .map_err(|e| Refusal::BadSignature(e.to_string()))?;
    let mut covered = false;
    for result in results {
        let (signature, references) = match result {
            VerifyResult::Valid {
                signature_node,
                references,
                ..
            } => (signature_node, references),
            VerifyResult::Invalid { reason } => return Err(Refusal::BadSignature(reason)),
        };
        let Some(signed) = doc.parent(signature) else {
            continue;
        };
        if signed != response && signed != assertion {
            continue;
        }
        let Some(id) = doc.get_attribute(signed, "ID") else {
            continue;
        };
        let whole = references.iter().any(|r| {
            r.digest_verified && r.resolved_node == Some(signed) && r.uri == format!("#{id}")
        });
        if whole && only_whole_element_transforms(doc, signature) {
            covered = true;
        }
    }
    if covered {
        Ok(())
    } else {
        Err(Refusal::Unsigned)
    }
}

fn only_whole_element_transforms(doc: &Document<'_>, signature: NodeId) -> bool {
    let Some(signed_info) = child(doc, signature, DSIG, "SignedInfo") else {
        return false;
    };
    doc.child_elements_by_name_ns(signed_info, DSIG, "Reference")
        .into_iter()
        .filter_map(|r| child(doc, r, DSIG, "Transforms"))
        .flat_map(|t| doc.child_elements_by_name_ns(t, DSIG, "Transform"))
        .all(|t| {
            doc.get_attribute(t, "Algorithm")
                .is_some_and(|a| WHOLE_ELEMENT_TRANSFORMS.contains(&a))
        })
}

fn time(doc: &Document<'_>, node: NodeId, name: &str) -> Result<Option<Timestamp>, Refusal> {
    doc.get_attribute(node, name)
        .map(|t| {
            t.parse::<Timestamp>()
                .map_err(|_| Refusal::Malformed(format!("{name} is not a UTC time")))
        })
        .transpose()
}

/// Checks Conditions (time window, audience); returns their NotOnOrAfter.
fn check_conditions(
    settings: &SamlSettings,
    doc: &Document<'_>,
    assertion: NodeId,
    now: Timestamp,
    skew: SignedDuration,
) -> Result<Option<Timestamp>, Refusal> {
    let conditions = child(doc, assertion, ASSERTION, "Conditions").ok_or(Refusal::Audience)?;
    if time(doc, conditions, "NotBefore")?.is_some_and(|t| now + skew < t) {
        return Err(Refusal::NotYetValid);
    }
    let until = time(doc, conditions, "NotOnOrAfter")?;
    if until.is_some_and(|t| now - skew >= t) {
        return Err(Refusal::Expired);
    }
    let restrictions = doc.child_elements_by_name_ns(conditions, ASSERTION, "AudienceRestriction");
    // Each restriction must name us (SAML core 2.5.1.4); at least one must exist.
    let names_us = |r: &NodeId| {
        doc.child_elements_by_name_ns(*r, ASSERTION, "Audience")
            .iter()
            .any(|a| doc.text_content_deep(*a).trim() == settings.sp_entity_id)
    };
    if restrictions.is_empty() || !restrictions.iter().all(names_us) {
        return Err(Refusal::Audience);
    }
    Ok(until)
}

/// Checks the bearer SubjectConfirmationData; returns the request it answers and its expiry.
fn check_confirmation(
    settings: &SamlSettings,
    doc: &Document<'_>,
    assertion: NodeId,
    now: Timestamp,
    skew: SignedDuration,
) -> Result<(String, Timestamp), Refusal> {
    let subject =
        child(doc, assertion, ASSERTION, "Subject").ok_or(Refusal::Confirmation("no Subject"))?;
    let data = doc
        .child_elements_by_name_ns(subject, ASSERTION, "SubjectConfirmation")
        .into_iter()
        .filter(|c| doc.get_attribute(*c, "Method") == Some(BEARER))
        .find_map(|c| child(doc, c, ASSERTION, "SubjectConfirmationData"))
        .ok_or(Refusal::Confirmation("no bearer SubjectConfirmationData"))?;
    if doc.get_attribute(data, "Recipient") != Some(settings.acs_url.as_str()) {
        return Err(Refusal::Recipient);
    }
    if time(doc, data, "NotBefore")?.is_some_and(|t| now + skew < t) {
        return Err(Refusal::NotYetValid);
    }
    let until = time(doc, data, "NotOnOrAfter")?.ok_or(Refusal::Confirmation("no NotOnOrAfter"))?;
    if now - skew >= until {
        return Err(Refusal::Expired);
    }
    // Unsolicited (IdP-initiated) responses are refused: they cannot be tied to a browser.
    let in_response_to = doc
        .get_attribute(data, "InResponseTo")
        .filter(|r| !r.is_empty())
        .ok_or(Refusal::UnknownRequest)?;
    Ok((in_response_to.to_owned(), until))
}

fn subject_and_groups(
    settings: &SamlSettings,
    doc: &Document<'_>,
    assertion: NodeId,
) -> Result<(String, Vec<String>), Refusal> {
    let attribute = |name: &str| -> Vec<String> {
        doc.child_elements_by_name_ns(assertion, ASSERTION, "AttributeStatement")
            .into_iter()
            .flat_map(|s| doc.child_elements_by_name_ns(s, ASSERTION, "Attribute"))
            .filter(|a| {
                doc.get_attribute(*a, "Name") == Some(name)
                    || doc.get_attribute(*a, "FriendlyName") == Some(name)
            })
            .flat_map(|a| doc.child_elements_by_name_ns(a, ASSERTION, "AttributeValue"))
            .map(|v| doc.text_content_deep(v).trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let user = match &settings.username_attribute {
        Some(name) => attribute(name).into_iter().next(),
        None => child(doc, assertion, ASSERTION, "Subject")
            .and_then(|s| child(doc, s, ASSERTION, "NameID"))
            .map(|n| doc.text_content_deep(n).trim().to_owned())
            .filter(|n| !n.is_empty()),
    }
    .ok_or(Refusal::NoUser)?;
    Ok((user, attribute(&settings.groups_attribute)))
}

#[cfg(test)]
mod tests {
    //! A response SimpleSAMLphp 1.19 signed (Response and Assertion, RSA-SHA256, exclusive C14N),
    //! checked at a fixed instant; tests/auth_saml.rs runs the same checks against a live IdP.

    use super::*;

    const RESPONSE: &str = include_str!("../../../tests/fixtures/saml/simplesamlphp-response.xml");
    const METADATA: &str =
        include_str!("../../../tests/fixtures/saml/simplesamlphp-idp-metadata.xml");
    const ACS: &str = "http://127.0.0.1:18998/auth/saml/acs";

    fn settings() -> SamlSettings {
        serde_json::from_value(serde_json::json!({
            "sp_entity_id": "urn:capstan:test",
            "acs_url": ACS,
            "username_attribute": "uid",
        }))
        .expect("settings")
    }

    fn idp() -> IdentityProvider {
        IdentityProvider::from_metadata(METADATA).expect("metadata")
    }

    fn at(time: &str) -> Timestamp {
        time.parse().expect("time")
    }

    fn issued() -> Timestamp {
        at("2026-12-02T13:52:30Z")
    }

    fn run(xml: &str, settings: &SamlSettings, now: Timestamp) -> Result<Checked, Refusal> {
        check(settings, &idp(), &STANDARD.encode(xml), now)
    }

    #[test]
    fn the_metadata_names_the_idp_its_sso_url_and_one_signing_key() {
        let idp = idp();
        assert_eq!(
            idp.entity_id.as_deref(),
            Some("http://127.0.0.1:18999/saml2/idp/metadata.php")
        );
        assert_eq!(
            idp.sso_url,
            "http://127.0.0.1:18999/saml2/idp/SSOService.php"
        );
        assert_eq!(idp.keys.len(), 1);
    }

    #[test]
    fn an_sso_url_and_a_certificate_file_stand_in_for_metadata() {
        let mut s = settings();
        s.idp_sso_url = Some("http://127.0.0.1:18999/saml2/idp/SSOService.php".into());
        s.idp_cert_file = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/saml/simplesamlphp-idp.crt"),
        );
        s.idp_entity_id = Some("http://127.0.0.1:18999/saml2/idp/metadata.php".into());
        let idp = IdentityProvider::from_settings(&s).expect("certificate file");
        let encoded = STANDARD.encode(RESPONSE);
        assert_eq!(
            check(&s, &idp, &encoded, issued()).expect("accepted").user,
            "alice"
        );
        s.idp_entity_id = Some("https://another.idp/".into());
        let idp = IdentityProvider::from_settings(&s).expect("certificate file");
        assert!(matches!(
            check(&s, &idp, &encoded, issued()),
            Err(Refusal::Issuer)
        ));
        s.idp_cert_file = None;
        assert!(matches!(
            IdentityProvider::from_settings(&s),
            Err(crate::auth::saml::SetupError::NoIdentityProvider)
        ));
    }

    #[test]
    fn a_genuine_response_gives_the_user_their_groups_and_the_request_it_answers() {
        let checked = run(RESPONSE, &settings(), issued()).expect("accepted");
        assert_eq!(checked.user, "alice");
        assert_eq!(checked.groups, ["deployers", "everyone"]);
        assert_eq!(checked.in_response_to, "_abc123");
        assert_eq!(checked.valid_until, at("2026-12-02T13:57:21Z"));
        let mut by_name_id = settings();
        by_name_id.username_attribute = None;
        let checked = run(RESPONSE, &by_name_id, issued()).expect("accepted");
        assert!(
            checked.user.starts_with('_'),
            "a transient NameID: {}",
            checked.user
        );
    }

    #[test]
    fn the_time_window_holds_give_or_take_the_skew() {
        let s = settings();
        assert!(
            run(RESPONSE, &s, at("2026-12-02T13:58:00Z")).is_ok(),
            "within the skew"
        );
        assert!(matches!(
            run(RESPONSE, &s, at("2026-12-02T13:58:30Z")),
            Err(Refusal::Expired)
        ));
        assert!(matches!(
            run(RESPONSE, &s, at("2026-12-02T13:50:00Z")),
            Err(Refusal::NotYetValid)
        ));
    }

    #[test]
    fn another_audience_or_acs_is_refused() {
        let mut other = settings();
        other.sp_entity_id = "urn:someone:else".into();
        assert!(matches!(
            run(RESPONSE, &other, issued()),
            Err(Refusal::Audience)
        ));
        let mut moved = settings();
        moved.acs_url = "https://capstan.example/auth/saml/acs".into();
        assert!(matches!(
            run(RESPONSE, &moved, issued()),
            Err(Refusal::Destination)
        ));
    }

    #[test]
    fn a_changed_value_or_a_missing_or_foreign_signature_is_refused() {
        let s = settings();
        let promoted = RESPONSE.replace(">everyone<", ">admins<");
        assert!(matches!(
            run(&promoted, &s, issued()),
            Err(Refusal::BadSignature(_))
        ));

        let mut unsigned = RESPONSE.to_owned();
        while let Some(start) = unsigned.find("<ds:Signature") {
            let end = unsigned[start..].find("</ds:Signature>").expect("end")
                + start
                + "</ds:Signature>".len();
            unsigned.replace_range(start..end, "");
        }
        assert!(matches!(
            run(&unsigned, &s, issued()),
            Err(Refusal::Unsigned)
        ));

        // The response's own embedded certificate does not make it trusted: another key is.
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["other".to_owned()])
            .expect("params")
            .self_signed(&other)
            .expect("cert");
        let stranger = IdentityProvider {
            keys: vec![
                bergshamra_keys::loader::load_x509_cert_pem(cert.pem().as_bytes()).expect("key"),
            ],
            ..idp()
        };
        assert!(matches!(
            check(&s, &stranger, &STANDARD.encode(RESPONSE), issued()),
            Err(Refusal::BadSignature(_))
        ));
    }

    #[test]
    fn a_second_assertion_or_a_doctype_is_refused_before_any_signature_is_read() {
        let s = settings();
        let start = RESPONSE.find("<saml:Assertion").expect("assertion");
        let wrapped = format!(
            "{}{}",
            &RESPONSE[..start],
            RESPONSE[start..].replacen(
                "<saml:Assertion",
                "<saml:Assertion ID=\"x\"/><saml:Assertion",
                1
            )
        );
        assert!(matches!(
            run(&wrapped, &s, issued()),
            Err(Refusal::AssertionCount(2))
        ));
        let doctype = format!("<!DOCTYPE r [<!ENTITY e \"x\">]>{RESPONSE}");
        assert!(matches!(run(&doctype, &s, issued()), Err(Refusal::Doctype)));
        assert!(matches!(
            check(&s, &idp(), "not base64!", issued()),
            Err(Refusal::Encoding)
        ));
    }
}
