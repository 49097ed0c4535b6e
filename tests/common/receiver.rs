//! Local receivers for the notification tests: an HTTP server that records every request (a
//! webhook receiver, a Slack-compatible Web API and incoming webhook, a Teams webhook), and
//! Debian's aiosmtpd as a real SMTP server with STARTTLS, writing each mail to a Maildir.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

use super::child::ChildGuard;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON (panics on anything else: the senders only send JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A running HTTP receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    log: Arc<Mutex<Vec<Received>>>,
}

/// A port nothing listens on now (a receiver that is down until started there).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Receiver {
    /// A receiver on a port of its own.
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// A receiver on `port` (0: any). `…/chat.postMessage` answers as Slack's Web API does
    /// (`{"ok": true}`); every other path answers 200 `ok`, as Slack's and Teams' webhooks do.
    pub fn start_on(port: u16) -> Receiver {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let data = web::Data::new(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(record))
        })
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("bind receiver");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver { addr, handle, log }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What arrived on `path`.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `check` holds for what arrived on `path`, or fails after `secs`.
    pub async fn wait_for(
        &self,
        path: &str,
        secs: u64,
        what: &str,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.on(path);
            if check(&got) {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                let bodies: Vec<String> = got
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect();
                panic!("never received on {path}: {what}\ngot: {bodies:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stop);
        }
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    log: web::Data<Arc<Mutex<Vec<Received>>>>,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            headers,
            body: body.to_vec(),
        });
    if req.path().ends_with("/chat.postMessage") {
        return HttpResponse::Ok().json(serde_json::json!({"ok": true, "ts": "1.2"}));
    }
    HttpResponse::Ok().body("ok")
}

/// A running aiosmtpd: STARTTLS required, AUTH (after TLS) for one user; killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    /// The CA that signed the server's certificate (for 127.0.0.1), PEM.
    pub ca_file: PathBuf,
    pub user: String,
    pub password: String,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
    _child: ChildGuard,
}

impl SmtpServer {
    /// Starts aiosmtpd (installing Debian's python3-aiosmtpd when missing) and waits until it
    /// accepts connections.
    pub async fn start() -> SmtpServer {
        let python = super::tools::require("aiosmtpd");
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_pem, cert_pem, key_pem) = certificates();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write ca");
        std::fs::write(dir.path().join("cert.pem"), cert_pem).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), key_pem).expect("write key");
        let maildir = dir.path().join("maildir");
        let port = free_port();
        let (user, password) = ("capstan".to_owned(), uuid::Uuid::new_v4().to_string());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notify/smtpd.py");
        let child = std::process::Command::new(python)
            .arg(script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .arg(&maildir)
            .arg(&user)
            .arg(&password)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let child = ChildGuard::new(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not listen"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        SmtpServer {
            port,
            ca_file,
            user,
            password,
            maildir,
            _dir: dir,
            _child: child,
        }
    }

    /// The mails accepted so far, each as its raw text.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut mails: Vec<String> = entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        mails.sort();
        mails
    }

    /// Waits until `n` mails arrived, or fails after `secs`.
    pub async fn wait_mails(&self, n: usize, secs: u64) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} mails never arrived; got {mails:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A CA and a certificate for 127.0.0.1 it signed: (CA PEM, certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server cert");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
