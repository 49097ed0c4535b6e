//! A smart-HTTP Git server for tests: `git http-backend` (CGI) behind actix-web with Basic auth.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::StatusCode, web};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BACKEND: &str = "/usr/lib/git-core/git-http-backend";
/// Request bodies (fetch negotiations) in tests are tiny; anything bigger is a bug.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A running server; stops when dropped.
pub struct GitHttpServer {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    counts: Arc<Counts>,
}

/// Requests served, by what they ask of the repository.
#[derive(Default)]
struct Counts {
    /// `GET …/info/refs`: the start of every ref listing.
    listings: AtomicUsize,
    /// `POST …/git-upload-pack` carrying `want` lines: pack fetches.
    pack_fetches: AtomicUsize,
}

struct State {
    counts: Arc<Counts>,
    root: PathBuf,
    /// The expected `Authorization` header value, when auth is required.
    expected_auth: Option<String>,
}

impl GitHttpServer {
    /// Serves every repository under `repos_root` on 127.0.0.1 (random port); with `auth`,
    /// requests without matching HTTP Basic credentials get 401 and a `WWW-Authenticate` challenge.
    /// Must be called inside a tokio runtime.
    pub fn start(repos_root: &Path, auth: Option<(&str, &str)>) -> GitHttpServer {
        let expected = auth
            .map(|(user, pass)| format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())));
        GitHttpServer::serve(repos_root, expected)
    }

    /// Like `start`, but requires `Authorization: Bearer <token>`.
    pub fn start_with_bearer(repos_root: &Path, token: &str) -> GitHttpServer {
        GitHttpServer::serve(repos_root, Some(format!("Bearer {token}")))
    }

    fn serve(repos_root: &Path, expected_auth: Option<String>) -> GitHttpServer {
        let counts = Arc::new(Counts::default());
        let state = web::Data::new(State {
            counts: counts.clone(),
            root: repos_root.to_path_buf(),
            expected_auth,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(serve))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind git http server");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        GitHttpServer {
            addr,
            handle,
            counts,
        }
    }

    /// Ref listings served so far (`GET info/refs`).
    pub fn listings(&self) -> usize {
        self.counts.listings.load(Ordering::SeqCst)
    }

    /// Pack fetches served so far (upload-pack requests that want objects).
    pub fn pack_fetches(&self) -> usize {
        self.counts.pack_fetches.load(Ordering::SeqCst)
    }

    /// The clone URL of repository `name` (a directory under `repos_root`).
    pub fn url_for(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stop);
        }
    }
}

async fn serve(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(expected) = &state.expected_auth {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let scheme = if expected.starts_with("Bearer") {
                "Bearer"
            } else {
                "Basic"
            };
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", format!("{scheme} realm=\"git\"")))
                .body("authentication required");
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len() + chunk.len() <= MAX_BODY => body.extend_from_slice(&chunk),
            _ => return HttpResponse::PayloadTooLarge().finish(),
        }
    }
    if req.method() == actix_web::http::Method::GET && req.path().ends_with("/info/refs") {
        state.counts.listings.fetch_add(1, Ordering::SeqCst);
    }
    if req.path().ends_with("/git-upload-pack") && contains(&body, b"want ") {
        state.counts.pack_fetches.fetch_add(1, Ordering::SeqCst);
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut command = tokio::process::Command::new(BACKEND);
    command
        .env_clear()
        .env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", req.method().as_str())
        .env("PATH_INFO", req.path())
        .env("QUERY_STRING", req.query_string())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return HttpResponse::InternalServerError().body(format!("spawn {BACKEND}: {err}"));
        }
    };
    let mut stdin = child.stdin.take();
    let writer = async move {
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        }
        drop(stdin);
    };
    let mut stdout = child.stdout.take();
    let reader = async move {
        let mut out = Vec::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_end(&mut out).await;
        }
        out
    };
    let ((), output) = futures::join!(writer, reader);
    let _ = child.wait().await;
    cgi_response(&output)
}

/// Turns CGI output (headers, blank line, body) into an HTTP response.
fn cgi_response(output: &[u8]) -> HttpResponse {
    let (head, body) = match find_blank_line(output) {
        Some((end, body_start)) => (&output[..end], &output[body_start..]),
        None => return HttpResponse::BadGateway().body("malformed CGI output"),
    };
    let mut response = HttpResponse::Ok();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            if let Some(status) = code.and_then(|c| StatusCode::from_u16(c).ok()) {
                response.status(status);
            }
        } else {
            response.insert_header((name.trim().to_string(), value.to_string()));
        }
    }
    response.body(body.to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn find_blank_line(output: &[u8]) -> Option<(usize, usize)> {
    (0..output.len()).find_map(|i| {
        if output[i..].starts_with(b"\r\n\r\n") {
            Some((i, i + 4))
        } else if output[i..].starts_with(b"\n\n") {
            Some((i, i + 2))
        } else {
            None
        }
    })
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
