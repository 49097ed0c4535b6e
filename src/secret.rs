//! Secrets: values that never reach a log line, read from env or files, or generated on first start.

use std::path::Path;

pub use secrecy::{ExposeSecret, SecretString};

/// Constant-time equality of a secret with a presented value, hashing both sides first so the
/// length does not leak either.
pub fn ct_eq(secret: &SecretString, presented: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let a = Sha256::digest(secret.expose_secret().as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
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
    Ok(SecretString::from(value))
}

/// The secret from `value` (env), else `file`, else the one generated at `generated` (created on first use).
pub fn resolve(
    value: Option<&SecretString>,
    file: Option<&Path>,
    generated: Option<&Path>,
) -> Result<Option<SecretString>, SecretError> {
    if let Some(v) = value.filter(|v| !v.expose_secret().is_empty()) {
        return Ok(Some(v.clone()));
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
    crate::private_fs::write_new(path, value.as_bytes()).map_err(|source| SecretError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(SecretString::from(value)))
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::from("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn env_wins_then_file_then_generated_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "from-file\n").expect("write");
        let gen_path = dir.path().join("gen/secret");
        assert_eq!(
            resolve(Some(&SecretString::from("env")), Some(&file), None)
                .expect("ok")
                .expect("some")
                .expose_secret(),
            "env"
        );
        assert_eq!(
            resolve(None, Some(&file), None)
                .expect("ok")
                .expect("some")
                .expose_secret(),
            "from-file"
        );
        let first = resolve(None, None, Some(&gen_path))
            .expect("ok")
            .expect("some");
        let again = resolve(Some(&SecretString::from("")), None, Some(&gen_path))
            .expect("ok")
            .expect("some");
        assert_eq!(
            first.expose_secret(),
            again.expose_secret(),
            "a generated secret is stable across starts"
        );
        assert_eq!(first.expose_secret().len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(
            mode(&gen_path),
            0o600,
            "a generated secret is readable by its owner only"
        );
        assert_eq!(mode(&dir.path().join("gen")), 0o700, "so is its directory");
        assert!(resolve(None, None, None).expect("ok").is_none());
    }

    #[test]
    fn constant_time_comparison_is_correct() {
        let s = SecretString::from("token");
        assert!(ct_eq(&s, "token"));
        assert!(!ct_eq(&s, "token2"));
        assert!(!ct_eq(&s, ""));
    }
}
