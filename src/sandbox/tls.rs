//! The sandbox's TLS identity: a CA and a server certificate generated at each start.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names a local client may use to reach the sandbox; the server certificate covers all of them.
const SERVER_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// Why the TLS identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Key or certificate generation failed.
    #[error("generating the sandbox certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the generated certificate or key.
    #[error("configuring TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A freshly generated CA and the server configuration whose certificate it signed.
pub struct Identity {
    /// The CA certificate (PEM) clients must trust.
    pub ca_pem: String,
    /// The server side: the signed certificate and its key.
    pub server: rustls::ServerConfig,
}

/// Generates a CA and a server certificate for the local names; nothing is written to disk.
pub fn generate() -> Result<Identity, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Capstan sandbox CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let names: Vec<String> = SERVER_NAMES.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Capstan sandbox");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    // An explicit provider: the process default may not be installed when a library embeds the sandbox.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)?;
    Ok(Identity {
        ca_pem: ca_cert.pem(),
        server,
    })
}
