//! Settings of the `[previews]` section.

use serde::Deserialize;

/// How pull-request previews run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreviewSettings {
    /// Pull-request webhooks queue previews; off, they are answered "ignored".
    pub enabled: bool,
    /// Previews computed at once by one worker process.
    pub concurrency: usize,
}

impl Default for PreviewSettings {
    fn default() -> Self {
        PreviewSettings {
            enabled: true,
            concurrency: 2,
        }
    }
}
