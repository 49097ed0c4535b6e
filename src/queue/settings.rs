//! The `[queue]` configuration section.

use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

use super::QueueError;

/// Which queue implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// In-process, for a single `--role all` process.
    Embedded,
    /// RabbitMQ through lapin, shared by any number of processes.
    Rabbitmq,
}

/// Settings, deserialized from the `[queue]` section of the config.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// `embedded` or `rabbitmq`.
    pub kind: QueueKind,
    /// AMQP URL; may carry a password, so it is never logged (see the Debug impl).
    pub url: String,
    /// A file holding the broker password (a mounted Secret); replaces the URL's password and
    /// is re-read on every reconnect, so a rotated password is picked up.
    pub password_file: Option<PathBuf>,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Number of job shard queues.
    pub shards: u16,
    /// Unsettled deliveries per consumer.
    pub prefetch: u16,
    /// Deliveries before a message is dead-lettered.
    pub max_attempts: u32,
    /// A publish not confirmed within this time is an error.
    pub publish_timeout_ms: u64,
    /// How long a retried message waits before it is redelivered.
    pub retry_delay_ms: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            kind: QueueKind::Embedded,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            password_file: None,
            prefix: "capstan".to_owned(),
            shards: 4,
            prefetch: 16,
            max_attempts: 5,
            publish_timeout_ms: 5000,
            retry_delay_ms: 1000,
        }
    }
}

impl std::fmt::Debug for QueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSettings")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("password_file", &self.password_file)
            .field("prefix", &self.prefix)
            .field("shards", &self.shards)
            .field("prefetch", &self.prefetch)
            .field("max_attempts", &self.max_attempts)
            .field("publish_timeout_ms", &self.publish_timeout_ms)
            .field("retry_delay_ms", &self.retry_delay_ms)
            .finish()
    }
}

impl QueueSettings {
    /// Rejects settings that cannot work, before anything connects.
    pub fn validate(&self) -> Result<(), QueueError> {
        let bad = |m: &str| Err(QueueError::Settings(m.to_owned()));
        if self.shards == 0 {
            return bad("shards must be at least 1");
        }
        if self.prefetch == 0 {
            return bad("prefetch must be at least 1");
        }
        if self.max_attempts == 0 || self.max_attempts > 1000 {
            return bad("max_attempts must be between 1 and 1000");
        }
        if self.publish_timeout_ms == 0 {
            return bad("publish_timeout_ms must be at least 1");
        }
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 100
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !prefix_ok {
            return bad("prefix must be 1-100 characters of [A-Za-z0-9-_.:]");
        }
        Ok(())
    }

    /// The URL to connect with, the password taken from `password_file` when one is set.
    pub(crate) fn connection_url(&self) -> Result<String, QueueError> {
        let Some(path) = &self.password_file else {
            return Ok(self.url.clone());
        };
        let unreadable = |e: std::io::Error| {
            QueueError::Settings(format!("password_file {}: {e}", path.display()))
        };
        let mut password = String::new();
        std::fs::File::open(path)
            .map_err(unreadable)?
            .take(MAX_PASSWORD_BYTES)
            .read_to_string(&mut password)
            .map_err(unreadable)?;
        with_password(&self.url, password.trim_end_matches(['\n', '\r'])).ok_or_else(|| {
            QueueError::Settings(
                "password_file needs a user in the url (amqp://user@host/…)".to_owned(),
            )
        })
    }

    pub(crate) fn publish_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.publish_timeout_ms)
    }

    pub(crate) fn retry_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retry_delay_ms)
    }
}

/// Longer files are cut here rather than read whole: a password is never this long.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// `url` with its password replaced by `password` (percent-encoded); None without a user.
fn with_password(url: &str, password: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, host) = authority.rsplit_once('@')?;
    let user = userinfo.split(':').next().unwrap_or_default();
    let mut encoded = String::with_capacity(password.len() * 3);
    for b in password.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Some(format!("{scheme}://{user}:{encoded}@{host}{path}"))
}

/// The URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparseable url>".to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let s = QueueSettings {
            url: "amqp://capstan:s3cr3t@rabbit:5672/%2f".to_owned(),
            ..QueueSettings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("capstan:***@rabbit:5672/%2f"), "{shown}");
    }

    #[test]
    fn a_password_containing_at_signs_is_still_hidden() {
        let shown = redact_url("amqp://u:p@ss@host/%2f");
        assert!(!shown.contains("p@ss"), "{shown}");
        assert_eq!(shown, "amqp://u:***@host/%2f");
    }

    #[test]
    fn a_password_file_replaces_the_url_password_percent_encoded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "p@ss/w:rd\n").expect("write");
        let s = QueueSettings {
            url: "amqp://capstan:placeholder@rabbit:5672/%2f".to_owned(),
            password_file: Some(file.clone()),
            ..QueueSettings::default()
        };
        assert_eq!(
            s.connection_url().expect("url"),
            "amqp://capstan:p%40ss%2Fw%3Ard@rabbit:5672/%2f"
        );
        let no_user = QueueSettings {
            url: "amqp://rabbit/%2f".to_owned(),
            ..s.clone()
        };
        assert!(matches!(
            no_user.connection_url(),
            Err(QueueError::Settings(_))
        ));
        let missing = QueueSettings {
            password_file: Some(dir.path().join("absent")),
            ..s
        };
        let err = missing.connection_url().expect_err("missing file");
        assert!(err.to_string().contains("absent"), "{err}");
    }

    #[test]
    fn missing_keys_take_defaults_and_unknown_keys_are_refused() {
        #[derive(Deserialize)]
        struct Wrap {
            queue: QueueSettings,
        }
        let w: Wrap =
            serde_json::from_str(r#"{"queue":{"kind":"rabbitmq","shards":8}}"#).expect("parses");
        assert_eq!(w.queue.kind, QueueKind::Rabbitmq);
        assert_eq!(w.queue.shards, 8);
        assert_eq!(w.queue.max_attempts, 5);
        let err = serde_json::from_str::<Wrap>(r#"{"queue":{"shard":8}}"#)
            .err()
            .expect("unknown key refused");
        assert!(err.to_string().contains("shard"), "{err}");
    }

    #[test]
    fn unusable_settings_are_refused() {
        for s in [
            QueueSettings {
                shards: 0,
                ..Default::default()
            },
            QueueSettings {
                prefetch: 0,
                ..Default::default()
            },
            QueueSettings {
                max_attempts: 0,
                ..Default::default()
            },
            QueueSettings {
                prefix: "a b".to_owned(),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(s.validate(), Err(QueueError::Settings(_))),
                "{s:?}"
            );
        }
        assert!(QueueSettings::default().validate().is_ok());
    }
}
