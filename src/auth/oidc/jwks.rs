//! The identity provider's signing keys (its JWKS), fetched once and kept. Providers rotate keys
//! by publishing a new one; a token naming a key we do not hold triggers a re-fetch, at most one
//! per interval so forged tokens with made-up key ids cannot make us hammer the provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;

use super::OidcError;

/// The cached key set of one provider.
pub struct KeyCache {
    uri: String,
    http: reqwest::Client,
    min_refetch: Duration,
    inner: Mutex<Cached>,
}

struct Cached {
    keys: Option<Arc<JwkSet>>,
    /// When an unknown key last made us re-fetch.
    last_refetch: Option<Instant>,
}

impl KeyCache {
    /// A cache of the key set at `uri`, re-fetched for unknown keys at most once per `min_refetch`.
    pub fn new(uri: &str, http: reqwest::Client, min_refetch: Duration) -> KeyCache {
        KeyCache {
            uri: uri.to_owned(),
            http,
            min_refetch,
            inner: Mutex::new(Cached {
                keys: None,
                last_refetch: None,
            }),
        }
    }

    /// The keys, fetched on first use.
    pub async fn keys(&self) -> Result<Arc<JwkSet>, OidcError> {
        let mut inner = self.inner.lock().await;
        if let Some(keys) = &inner.keys {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.fetch().await?);
        inner.keys = Some(keys.clone());
        Ok(keys)
    }

    /// Fresh keys after a token named one we do not hold; None when a re-fetch happened too
    /// recently (the token is then refused).
    pub async fn refetch(&self) -> Result<Option<Arc<JwkSet>>, OidcError> {
        let mut inner = self.inner.lock().await;
        if inner
            .last_refetch
            .is_some_and(|at| at.elapsed() < self.min_refetch)
        {
            return Ok(None);
        }
        inner.last_refetch = Some(Instant::now());
        let keys = Arc::new(self.fetch().await?);
        tracing::info!(uri = %self.uri, keys = keys.keys.len(), "identity provider keys re-fetched");
        inner.keys = Some(keys.clone());
        Ok(Some(keys))
    }

    async fn fetch(&self) -> Result<JwkSet, OidcError> {
        let resp = self
            .http
            .get(&self.uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| OidcError::Provider(format!("fetching keys {}: {e}", self.uri)))?;
        // Keys of types this build cannot use (e.g. encryption keys) are dropped, not fatal.
        let raw: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("keys {}: {e}", self.uri)))?;
        let keys = raw
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| OidcError::Provider(format!("keys {}: no `keys` array", self.uri)))?
            .iter()
            .filter(|k| k.get("use").and_then(serde_json::Value::as_str) != Some("enc"))
            .filter_map(|k| serde_json::from_value(k.clone()).ok())
            .collect();
        Ok(JwkSet { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A key-set endpoint on 127.0.0.1 that counts its requests.
    async fn serve_keys() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let body = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"RSA","use":"enc","kid":"e","n":"AQAB","e":"AQAB"}]}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        (format!("http://{addr}/jwks"), hits)
    }

    #[tokio::test]
    async fn keys_are_fetched_once_and_unknown_kids_refetch_at_most_once_per_interval() {
        let (uri, hits) = serve_keys().await;
        let cache = KeyCache::new(&uri, reqwest::Client::new(), Duration::from_secs(3600));
        let keys = cache.keys().await.expect("keys");
        assert_eq!(keys.keys.len(), 1, "the encryption key is dropped");
        assert!(keys.find("a").is_some());
        cache.keys().await.expect("cached");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the key set was fetched again"
        );

        assert!(cache.refetch().await.expect("refetch").is_some());
        for _ in 0..5 {
            assert!(
                cache.refetch().await.expect("refetch").is_none(),
                "a flood of unknown kids re-fetched again within the interval"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
