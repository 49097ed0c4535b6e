//! A real SAML 2.0 identity provider for the tests: Debian's SimpleSAMLphp served by `php -S` on
//! 127.0.0.1, configured from a directory the test writes (SIMPLESAMLPHP_CONFIG_DIR): users with
//! a `groups` attribute (exampleauth:UserPass), an RSA signing key generated here, and the
//! service providers it will answer. Also drives its login form over plain HTTP, for tests that
//! need a genuine signed response without a browser.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::child::ChildGuard;

/// A user of the identity provider.
pub struct User {
    /// Login name, also the `uid` attribute.
    pub name: &'static str,
    /// Password.
    pub password: &'static str,
    /// The `groups` attribute's values.
    pub groups: &'static [&'static str],
}

/// A service provider the identity provider knows.
pub struct ServiceProvider {
    /// Its entity ID (the Audience of what it is sent).
    pub entity_id: String,
    /// Where its assertions are posted.
    pub acs_url: String,
    /// `assertion.lifetime` in seconds; negative makes assertions that are born expired.
    pub assertion_lifetime: Option<i64>,
}

/// A running SimpleSAMLphp IdP.
pub struct SimpleSamlPhp {
    /// `http://127.0.0.1:PORT/`.
    pub base_url: String,
    /// Its entity ID (the metadata URL, as SimpleSAMLphp's `__DYNAMIC:1__` makes it).
    pub entity_id: String,
    /// Its signing certificate, PEM.
    pub certificate_pem: String,
    dir: tempfile::TempDir,
    _server: ChildGuard,
}

/// A free TCP port on 127.0.0.1 (for a server that must be named before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `value` as a single-quoted PHP string.
fn php(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl SimpleSamlPhp {
    /// Writes the configuration and starts `php -S`; returns once the metadata is served.
    pub async fn start(sps: &[ServiceProvider], users: &[User]) -> SimpleSamlPhp {
        let www = super::tools::require("simplesamlphp");
        let php_bin = super::tools::require("php");
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}/");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        for sub in ["config", "metadata", "cert", "tmp", "data", "log"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let cert = rcgen::CertificateParams::new(vec!["simplesamlphp.test".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed certificate");
        let certificate_pem = cert.pem();
        std::fs::write(dir.path().join("cert/idp.crt"), &certificate_pem).expect("cert");
        std::fs::write(dir.path().join("cert/idp.pem"), key.serialize_pem()).expect("key");

        let path = |sub: &str| php(&format!("{}/", dir.path().join(sub).display()));
        let secret = uuid::Uuid::new_v4().simple().to_string();
        std::fs::write(
            config.join("config.php"),
            format!(
                "<?php\n$config = [\n\
                 'baseurlpath' => {base},\n\
                 'certdir' => {cert},\n\
                 'metadatadir' => {metadata},\n\
                 'tempdir' => {tmp},\n\
                 'datadir' => {data},\n\
                 'loggingdir' => {log},\n\
                 'logging.handler' => 'file',\n\
                 'logging.level' => SimpleSAML\\Logger::INFO,\n\
                 'secretsalt' => {secret},\n\
                 'auth.adminpassword' => {secret},\n\
                 'timezone' => 'UTC',\n\
                 'enable.saml20-idp' => true,\n\
                 'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],\n\
                 'store.type' => 'phpsession',\n\
                 'session.cookie.secure' => false,\n\
                 'session.cookie.samesite' => null,\n\
                 'language.cookie.secure' => false,\n\
                 'language.cookie.samesite' => null,\n\
                 'showerrors' => true,\n\
                 'errorreporting' => false,\n\
                 'production' => false,\n\
                 ];\n",
                base = php(&base_url),
                cert = path("cert"),
                metadata = path("metadata"),
                tmp = path("tmp"),
                data = path("data"),
                log = path("log"),
                secret = php(&secret),
            ),
        )
        .expect("config.php");

        let mut accounts = String::new();
        for u in users {
            let groups: Vec<String> = u.groups.iter().map(|g| php(g)).collect();
            accounts.push_str(&format!(
                "    {} => ['uid' => [{}], 'groups' => [{}]],\n",
                php(&format!("{}:{}", u.name, u.password)),
                php(u.name),
                groups.join(", ")
            ));
        }
        std::fs::write(
            config.join("authsources.php"),
            format!(
                "<?php\n$config = [\n  'admin' => ['core:AdminPassword'],\n  \
                 'example-userpass' => [\n    'exampleauth:UserPass',\n{accounts}  ],\n];\n"
            ),
        )
        .expect("authsources.php");

        std::fs::write(
            dir.path().join("metadata/saml20-idp-hosted.php"),
            "<?php\n$metadata['__DYNAMIC:1__'] = [\n\
             'host' => '__DEFAULT__',\n\
             'privatekey' => 'idp.pem',\n\
             'certificate' => 'idp.crt',\n\
             'auth' => 'example-userpass',\n\
             'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',\n\
             'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',\n\
             ];\n",
        )
        .expect("idp metadata");
        let mut remote = String::from("<?php\n");
        for sp in sps {
            let lifetime = sp
                .assertion_lifetime
                .map(|l| format!("  'assertion.lifetime' => {l},\n"))
                .unwrap_or_default();
            remote.push_str(&format!(
                "$metadata[{}] = [\n  'AssertionConsumerService' => {},\n{lifetime}];\n",
                php(&sp.entity_id),
                php(&sp.acs_url)
            ));
        }
        std::fs::write(dir.path().join("metadata/saml20-sp-remote.php"), remote)
            .expect("sp metadata");

        let log = std::fs::File::create(dir.path().join("log/php-server.log")).expect("log file");
        let server = ChildGuard::new(
            std::process::Command::new(php_bin)
                .args(["-S", &format!("127.0.0.1:{port}"), "-t"])
                .arg(&www)
                .env("SIMPLESAMLPHP_CONFIG_DIR", &config)
                // One process, no forked workers (PHP_CLI_SERVER_WORKERS): the guard kills only
                // the process it started, and workers would outlive it.
                .env_remove("PHP_CLI_SERVER_WORKERS")
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("php -S starts"),
        );
        let idp = SimpleSamlPhp {
            entity_id: format!("{base_url}saml2/idp/metadata.php"),
            base_url,
            certificate_pem,
            dir,
            _server: server,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(xml) = idp.try_metadata().await
                && xml.contains("IDPSSODescriptor")
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "SimpleSAMLphp never served its metadata; its log:\n{}",
                idp.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        idp
    }

    async fn try_metadata(&self) -> Result<String, reqwest::Error> {
        client()
            .get(format!(
                "{}saml2/idp/metadata.php?output=xml",
                self.base_url
            ))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    }

    /// The IdP's SAML metadata XML, as SimpleSAMLphp publishes it.
    pub async fn metadata_xml(&self) -> String {
        self.try_metadata().await.expect("IdP metadata")
    }

    /// Writes the IdP's metadata into a file and returns its path.
    pub async fn metadata_file(&self) -> PathBuf {
        let path = self.dir.path().join("idp-metadata.xml");
        std::fs::write(&path, self.metadata_xml().await).expect("write metadata");
        path
    }

    /// The PHP server's and SimpleSAMLphp's logs, for failure messages.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["php-server.log", "simplesamlphp.log"] {
            out.push_str(&format!("--- {name}\n"));
            out.push_str(
                &std::fs::read_to_string(self.dir.path().join("log").join(name))
                    .unwrap_or_default(),
            );
        }
        out
    }

    /// Follows `sso_url` (an HTTP-Redirect AuthnRequest) through SimpleSAMLphp's login form as
    /// `user` would in a browser, and returns the form SimpleSAMLphp makes the browser post
    /// back: its action and its fields (`SAMLResponse`, `RelayState`).
    pub async fn login(&self, sso_url: &str, user: &str, password: &str) -> PostedForm {
        let http = client();
        let mut jar = Jar::default();
        let mut url = sso_url.to_owned();
        let mut body: Option<Vec<(String, String)>> = None;
        for _ in 0..10 {
            let request = match body.take() {
                Some(fields) => http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&fields)),
                None => http.get(&url),
            };
            let resp = request
                .header("cookie", jar.header())
                .send()
                .await
                .expect("IdP request");
            jar.take(&resp);
            let status = resp.status();
            if status.is_redirection() {
                let location = resp.headers()["location"]
                    .to_str()
                    .expect("ascii")
                    .to_owned();
                url = reqwest::Url::parse(&url)
                    .and_then(|u| u.join(&location))
                    .expect("location")
                    .to_string();
                continue;
            }
            let page = resp.text().await.expect("IdP page");
            assert!(
                status.is_success(),
                "IdP answered {status} at {url}:\n{page}\n{}",
                self.log()
            );
            let form = PostedForm::parse(&page);
            if form.fields.contains_key("SAMLResponse") {
                return form;
            }
            // The login form: posts back to itself with AuthState.
            assert!(
                form.fields.contains_key("AuthState"),
                "neither a login form nor a SAML response at {url}:\n{page}"
            );
            let mut fields: Vec<(String, String)> = form.fields.into_iter().collect();
            fields.retain(|(k, _)| k != "username" && k != "password");
            fields.push(("username".into(), user.into()));
            fields.push(("password".into(), password.into()));
            body = Some(fields);
            if !form.action.is_empty() {
                url = reqwest::Url::parse(&url)
                    .and_then(|u| u.join(&form.action))
                    .expect("action")
                    .to_string();
            }
        }
        panic!("SimpleSAMLphp's login did not end in a SAML response");
    }

    /// A directory of this IdP's, for files the test writes beside its configuration.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("url");
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in fields {
            pairs.append_pair(k.as_ref(), v.as_ref());
        }
    }
    url.query().unwrap_or_default().to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Cookies by name, enough for one site.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, resp: &reqwest::Response) {
        for set in resp.headers().get_all("set-cookie") {
            let Ok(set) = set.to_str() else { continue };
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                self.0.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// An HTML form: where it posts and its named inputs' values.
#[derive(Debug, Default)]
pub struct PostedForm {
    /// The `action` attribute (HTML entities decoded).
    pub action: String,
    /// `name` → `value` of its inputs.
    pub fields: BTreeMap<String, String>,
}

impl PostedForm {
    /// The first form of `page` (SimpleSAMLphp's pages have one that matters).
    fn parse(page: &str) -> PostedForm {
        let mut form = PostedForm::default();
        if let Some(start) = page.find("<form") {
            let tag = &page[start..start + page[start..].find('>').unwrap_or(0)];
            form.action = attr(tag, "action").unwrap_or_default();
        }
        let mut rest = page;
        while let Some(i) = rest.find("<input") {
            let end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
            let tag = &rest[i..end];
            if let Some(name) = attr(tag, "name") {
                form.fields
                    .insert(name, attr(tag, "value").unwrap_or_default());
            }
            rest = &rest[end..];
        }
        form
    }
}

/// The value of attribute `name` in an HTML start tag, entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let needle = format!(" {name}={quote}");
        if let Some(i) = tag.find(&needle) {
            let from = i + needle.len();
            let to = tag[from..].find(quote)? + from;
            return Some(
                tag[from..to]
                    .replace("&quot;", "\"")
                    .replace("&#039;", "'")
                    .replace("&#x3D;", "=")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            );
        }
    }
    None
}
