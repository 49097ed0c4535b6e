//! Settings: `config/default.toml`, then an optional `--config FILE`, then `CAPSTAN__SECTION__KEY`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default configuration, compiled in so the binary works from any directory.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every setting Capstan reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub sandbox: SandboxSettings,
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Human,
    Json,
}

/// Defaults for `capstan sandbox`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub listen: SocketAddr,
    pub ready_delay_ms: u64,
}

/// A configuration that could not be loaded; the message names the offending key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

impl Settings {
    /// Loads the layered configuration; `file` is the optional `--config FILE`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.to_owned(),
                });
            }
            builder = builder.add_source(config::File::from(path));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CAPSTAN__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CAPSTAN")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        Ok(builder.build()?.try_deserialize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn committed_defaults_load() {
        let s = Settings::load_from(None, env(&[])).expect("defaults load");
        assert_eq!(s.log.format, LogFormat::Auto);
        assert_eq!(s.sandbox.ready_delay_ms, 300);
    }

    #[test]
    fn environment_overrides_file_values() {
        let s = Settings::load_from(
            None,
            env(&[
                ("CAPSTAN__LOG__FORMAT", "json"),
                ("CAPSTAN__SANDBOX__READY_DELAY_MS", "5"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.sandbox.ready_delay_ms, 5);
    }

    #[test]
    fn a_config_file_layers_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[log]\nlevel = \"debug\"\n").expect("write");
        let s = Settings::load_from(Some(&path), env(&[])).expect("loads");
        assert_eq!(s.log.level, "debug");
        assert_eq!(
            s.log.format,
            LogFormat::Auto,
            "untouched keys keep their default"
        );
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        let err = Settings::load_from(None, env(&[("CAPSTAN__LOG__FORMAT", "xml")]))
            .expect_err("xml is not a format");
        assert!(err.to_string().contains("format"), "{err}");
        let err = Settings::load_from(None, env(&[("CAPSTAN__SANDBOX__READY_DELAY_MS", "soon")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("ready_delay_ms"), "{err}");
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = Settings::load_from(Some(Path::new("/nonexistent/capstan.toml")), env(&[]))
            .expect_err("missing file");
        assert!(
            err.to_string().contains("/nonexistent/capstan.toml"),
            "{err}"
        );
    }
}
