//! Where the CLI finds its server and token when no flag or environment variable names them:
//! `$XDG_CONFIG_HOME/capstan/config.yaml`, else `~/.config/capstan/config.yaml` (keys `server`,
//! `token`; `capstan login` writes it, readable by its owner only).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The server used when nothing names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The client config file's contents; every key optional.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// API bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The config file exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// Unreadable (permissions, a directory …).
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML of the expected shape.
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// Could not be written.
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// The config file's path from the environment; None when neither variable is set.
pub fn path_from(xdg_config_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    let base = xdg_config_home
        .filter(|x| Path::new(x).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| Path::new(h).join(".config"))
        })?;
    Some(base.join("capstan").join("config.yaml"))
}

/// The config file's path for this process.
pub fn default_path() -> Option<PathBuf> {
    let xdg = std::env::var("XDG_CONFIG_HOME").ok();
    let home = std::env::var("HOME").ok();
    path_from(xdg.as_deref(), home.as_deref())
}

impl ClientConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ClientConfig, ClientConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ClientConfig::default());
            }
            Err(source) => {
                return Err(ClientConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(ClientConfig::default());
        }
        serde_saphyr::from_str(&text).map_err(|e| ClientConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the file readable by its owner only (0600, directory 0700): it holds a token.
    pub fn save(&self, path: &Path) -> Result<(), ClientConfigError> {
        let failed = |message: String| ClientConfigError::Write {
            path: path.to_owned(),
            message,
        };
        let text = serde_saphyr::to_string(self).map_err(|e| failed(e.to_string()))?;
        if let Some(dir) = path.parent() {
            crate::private_fs::create_dir(dir).map_err(|e| failed(e.to_string()))?;
        }
        crate::private_fs::write_replacing(path, text.as_bytes()).map_err(|e| failed(e.to_string()))
    }

    /// The server to use: the flag or environment first, then this file, then the default.
    pub fn server(&self, given: Option<String>) -> String {
        given
            .or_else(|| self.server.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
    }

    /// The token to use: the flag or environment first, then this file (None: read the
    /// server's token file).
    pub fn token(&self, given: Option<String>) -> Option<String> {
        given.or_else(|| self.token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_config_home_wins_over_home_unless_relative() {
        assert_eq!(
            path_from(Some("/x"), Some("/home/u")),
            Some(PathBuf::from("/x/capstan/config.yaml"))
        );
        assert_eq!(
            path_from(Some("rel"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.config/capstan/config.yaml"))
        );
        assert_eq!(path_from(None, None), None);
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        assert_eq!(
            ClientConfig::load(&path).expect("missing is empty"),
            ClientConfig::default()
        );
        std::fs::write(&path, "server: https://cd.example\ntoken: t0k\n").expect("write");
        let config = ClientConfig::load(&path).expect("parses");
        assert_eq!(config.server(None), "https://cd.example");
        assert_eq!(config.server(Some("http://flag".into())), "http://flag");
        assert_eq!(config.token(None).as_deref(), Some("t0k"));
        assert_eq!(ClientConfig::default().server(None), DEFAULT_SERVER);
        let saved = ClientConfig {
            server: Some("https://cd.example".into()),
            token: None,
        };
        saved.save(&path).expect("saves");
        assert_eq!(ClientConfig::load(&path).expect("parses"), saved);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "the file holding a token is readable by others"
        );
        std::fs::write(&path, "sever: typo\n").expect("write");
        let err = ClientConfig::load(&path).expect_err("an unknown key is refused");
        assert!(err.to_string().contains("config.yaml"), "{err}");
    }
}
