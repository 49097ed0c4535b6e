//! The `[queue]` configuration section.

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

    pub(crate) fn publish_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.publish_timeout_ms)
    }

    pub(crate) fn retry_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retry_delay_ms)
    }
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
