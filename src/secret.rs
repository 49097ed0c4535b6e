//! Secrets: values that never reach a log line, read from env or files, or generated on first start.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone)]
pub struct SecretString(Arc<str>);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        SecretString(value.into())
    }

    /// The value; call sites are the few places that must use it (MAC keys, comparisons, headers).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality, hashing both sides first so the length does not leak either.
    pub fn ct_eq(&self, other: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(other.as_bytes());
        a.as_slice().ct_eq(b.as_slice()).into()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// A secret that could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write generated secret to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("secret file {path} is empty")]
    Empty { path: String },
}

/// Reads a secret from a file, trimming the trailing newline editors and `echo` add.
pub fn read_file(path: &Path) -> Result<SecretString, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(SecretString::new(value))
}

/// The secret from `value` (env), else `file`, else the one generated at `generated` (created on first use).
pub fn resolve(
    value: Option<&str>,
    file: Option<&Path>,
    generated: Option<&Path>,
) -> Result<Option<SecretString>, SecretError> {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        return Ok(Some(SecretString::new(v)));
    }
    if let Some(path) = file {
        return read_file(path).map(Some);
    }
    let Some(path) = generated else {
        return Ok(None);
    };
    if path.exists() {
        return read_file(path).map(Some);
    }
    let value = random_token();
    write_private(path, &value).map_err(|source| SecretError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(SecretString::new(value)))
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn env_wins_then_file_then_generated_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "from-file\n").expect("write");
        let gen_path = dir.path().join("gen/secret");
        assert_eq!(
            resolve(Some("env"), Some(&file), None)
                .expect("ok")
                .expect("some")
                .expose(),
            "env"
        );
        assert_eq!(
            resolve(None, Some(&file), None)
                .expect("ok")
                .expect("some")
                .expose(),
            "from-file"
        );
        let first = resolve(None, None, Some(&gen_path))
            .expect("ok")
            .expect("some");
        let again = resolve(Some(""), None, Some(&gen_path))
            .expect("ok")
            .expect("some");
        assert_eq!(
            first.expose(),
            again.expose(),
            "a generated secret is stable across starts"
        );
        assert_eq!(first.expose().len(), 64);
        assert!(resolve(None, None, None).expect("ok").is_none());
    }

    #[test]
    fn constant_time_comparison_is_correct() {
        let s = SecretString::new("token");
        assert!(s.ct_eq("token"));
        assert!(!s.ct_eq("token2"));
        assert!(!s.ct_eq(""));
    }
}
