//! An LDAP directory for tests: Debian's `slapd` on 127.0.0.1 (plain/StartTLS and LDAPS ports)
//! with its own configuration, database and certificate (a CA generated here signs it), loaded
//! with `ldapadd` as the directory's root.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::child::ChildGuard;
use super::tools;

/// The directory's suffix.
pub const BASE: &str = "dc=example,dc=org";
/// Where people live.
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// Where groups live.
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";
/// The service account Capstan searches with (it may read, not write).
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// Its password.
pub const READER_PASSWORD: &str = "reader-s3cret";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "root-s3cret";

/// A CA and the PEM files of a certificate it signed for 127.0.0.1 and localhost.
pub struct TestCa {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The server certificate (PEM).
    pub cert_pem: String,
    /// The server key (PKCS#8 PEM).
    pub key_pem: String,
}

impl TestCa {
    /// A fresh CA named `name`, and a server certificate it signed.
    pub fn generate(name: &str) -> TestCa {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "test directory");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        TestCa {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: server_key.serialize_pem(),
        }
    }
}

/// A running `slapd -d 0`; killed when dropped.
pub struct Slapd {
    dir: tempfile::TempDir,
    ldap_port: u16,
    ldaps_port: u16,
    child: ChildGuard,
}

impl Slapd {
    /// Starts a directory with the base entries, the reader account and `ldif` added, serving a
    /// certificate signed by `ca`.
    pub fn start(ca: &TestCa, ldif: &str) -> Slapd {
        let slapd = tools::require("slapd");
        tools::require("ldapadd");
        let dir = tempfile::tempdir().expect("temp dir for slapd");
        let root = dir.path();
        std::fs::create_dir(root.join("db")).expect("db dir");
        write(root, "ca.pem", &ca.ca_pem);
        write(root, "server.pem", &ca.cert_pem);
        write(root, "server.key", &ca.key_pem);
        let schema = "/etc/ldap/schema";
        write(
            root,
            "slapd.conf",
            &format!(
                "include {schema}/core.schema\n\
                 include {schema}/cosine.schema\n\
                 include {schema}/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 moduleload memberof\n\
                 pidfile {root}/slapd.pid\n\
                 TLSCACertificateFile {root}/ca.pem\n\
                 TLSCertificateFile {root}/server.pem\n\
                 TLSCertificateKeyFile {root}/server.key\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{BASE}\"\n\
                 rootdn \"{ROOT_DN}\"\n\
                 rootpw {ROOT_PASSWORD}\n\
                 directory {root}/db\n\
                 overlay memberof\n\
                 access to attrs=userPassword by anonymous auth by * none\n\
                 access to * by users read by * none\n",
                root = root.display()
            ),
        );
        let (ldap_port, ldaps_port) = (free_port(), free_port());
        let child = Command::new(slapd)
            .arg("-f")
            .arg(root.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
            ))
            // Debug level 0: stay in the foreground, as a child the guard can kill.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("slapd.log")).expect("slapd log"))
            .spawn()
            .expect("spawn slapd");
        let mut server = Slapd {
            dir,
            ldap_port,
            ldaps_port,
            child: ChildGuard::new(child),
        };
        server.wait_listening();
        server.add(&format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
             cn: reader\nuserPassword: {READER_PASSWORD}\n\n{ldif}"
        ));
        server
    }

    /// `ldap://127.0.0.1:PORT` (plain, or StartTLS).
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// Adds entries (LDIF) as the directory's root.
    pub fn add(&self, ldif: &str) {
        let file = self.dir.path().join("add.ldif");
        std::fs::write(&file, ldif).expect("write LDIF");
        let out = Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &self.ldap_url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PASSWORD,
                "-f",
            ])
            .arg(&file)
            .output()
            .expect("run ldapadd");
        assert!(
            out.status.success(),
            "ldapadd failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server, as a crash or an outage would.
    pub fn stop(&mut self) {
        self.child.kill_and_wait();
    }

    /// What slapd wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = [self.ldap_port, self.ldaps_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("slapd exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not listen within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An LDIF person `uid` under `ou` (below [`PEOPLE`], or [`PEOPLE`] itself when empty) with
/// `password` and an e-mail address.
pub fn person(uid: &str, password: &str) -> String {
    format!(
        "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
         mail: {uid}@example.org\nuserPassword: {password}\n\n"
    )
}

/// An LDIF group `cn` whose members are the people `uids`.
pub fn group(cn: &str, uids: &[&str]) -> String {
    let members: String = uids
        .iter()
        .map(|u| format!("member: uid={u},{PEOPLE}\n"))
        .collect();
    format!("dn: cn={cn},{GROUPS}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write slapd file");
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}
