//! A hostile HTTP server for tests: it answers at once with headers, then sends its body one
//! byte at a time, slowly, so a client without a real deadline stays stuck on it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The start of a smart-HTTP ref advertisement: a Git client keeps waiting for the rest.
const GIT_ADVERTISEMENT: &[u8] = b"001e# service=git-upload-pack\n0000";
/// No connection is served longer than this, so a forgotten server stops by itself.
const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// A running drip server on 127.0.0.1; stops when dropped.
pub struct DripServer {
    addr: SocketAddr,
    stop: CancellationToken,
    accepted: Arc<AtomicUsize>,
    connected: Arc<Notify>,
}

impl DripServer {
    /// Answers every request like a Git smart-HTTP server starting its ref advertisement,
    /// one byte every `interval`.
    pub async fn start(interval: Duration) -> DripServer {
        DripServer::start_with(
            "application/x-git-upload-pack-advertisement",
            GIT_ADVERTISEMENT,
            interval,
        )
        .await
    }

    /// Answers every request with status 200, `content_type` and a `Content-Length` for
    /// `body`, then sends `body` one byte every `interval` and closes the connection.
    pub async fn start_with(content_type: &str, body: &[u8], interval: Duration) -> DripServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind drip server");
        let addr = listener.local_addr().expect("drip server address");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\r\n",
            body.len()
        );
        let body: Arc<[u8]> = body.into();
        let stop = CancellationToken::new();
        let accepted = Arc::new(AtomicUsize::new(0));
        let connected = Arc::new(Notify::new());
        let (token, count, notify) = (stop.clone(), accepted.clone(), connected.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => return,
                    },
                    _ = token.cancelled() => return,
                };
                count.fetch_add(1, Ordering::SeqCst);
                notify.notify_waiters();
                let (token, head, body) = (token.clone(), head.clone(), body.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = drip(stream, head, body, interval) => {}
                        _ = token.cancelled() => {}
                        _ = tokio::time::sleep(MAX_CONNECTION_LIFETIME) => {}
                    }
                });
            }
        });
        DripServer {
            addr,
            stop,
            accepted,
            connected,
        }
    }

    /// A URL on this server (the path is ignored by the server).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until at least one client has connected.
    pub async fn wait_for_connection(&self) {
        loop {
            let connected = self.connected.notified();
            if self.connections() > 0 {
                return;
            }
            connected.await;
        }
    }
}

impl Drop for DripServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn drip(mut stream: TcpStream, head: String, body: Arc<[u8]>, interval: Duration) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for byte in body.iter() {
        tokio::time::sleep(interval).await;
        if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}
