//! Headless chromium driven over WebDriver (Debian's chromium and chromium-driver, installed by
//! scripts/install-tools when missing), for browser tests outside tests/ui.rs.
#![allow(dead_code)]

use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use super::child::ChildGuard;

/// Chromium driven over WebDriver; chromedriver dies with the guard.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    _driver: ChildGuard,
}

/// Starts chromedriver and a headless chromium with its profile in `profile`.
pub async fn start(profile: &std::path::Path) -> Browser {
    let driver_bin = super::tools::require("chromedriver");
    let chromium = super::tools::require("chromium");
    let port = super::simplesamlphp::free_port();
    let driver = ChildGuard::new(
        std::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-quic", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display())],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .expect("chromium starts within 60 s")
    .expect("a WebDriver session");
    Browser {
        client,
        _driver: driver,
    }
}

/// Waits (bounded) until the script returns true in the page.
pub async fn until_js(c: &Client, secs: u64, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        // A navigation in progress fails the script; the next round sees the new page.
        if let Ok(Value::Bool(true)) = c.execute(script, vec![]).await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!("never happened in the browser: {what}\nat {url}, page text:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
