//! The health vocabulary: Argo CD's status codes and an assessed health.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Argo CD health status codes, declared from most to least healthy so `Ord` is the aggregation order.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum HealthStatus {
    /// The resource is what it should be.
    Healthy,
    /// Paused or suspended on purpose (a paused Deployment, a suspended Job).
    Suspended,
    /// Not healthy yet, but still able to get there.
    Progressing,
    /// Expected but absent from the cluster.
    Missing,
    /// Failed, or cannot become healthy without a change.
    Degraded,
    /// Health could not be assessed.
    #[default]
    Unknown,
}

impl HealthStatus {
    /// The code as Argo CD spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Suspended => "Suspended",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Missing => "Missing",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The assessed health of one object: a status code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The status code.
    pub status: HealthStatus,
    /// Why, in the words Argo CD uses; empty when there is nothing to add.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Health {
    /// A health with a message.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Health {
            status,
            message: message.into(),
        }
    }

    /// Healthy with no message.
    pub fn healthy() -> Self {
        Health::new(HealthStatus::Healthy, "")
    }

    /// Progressing with a message.
    pub fn progressing(message: impl Into<String>) -> Self {
        Health::new(HealthStatus::Progressing, message)
    }

    /// Degraded with a message.
    pub fn degraded(message: impl Into<String>) -> Self {
        Health::new(HealthStatus::Degraded, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_argo_spells_it() {
        let h = Health::new(HealthStatus::Progressing, "Waiting");
        let json = serde_json::to_value(&h).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({ "status": "Progressing", "message": "Waiting" })
        );
        let healthy = serde_json::to_value(Health::healthy()).unwrap_or_default();
        assert_eq!(healthy, serde_json::json!({ "status": "Healthy" }));
        let back: Result<Health, _> =
            serde_json::from_value(serde_json::json!({ "status": "Degraded" }));
        assert_eq!(back.ok(), Some(Health::degraded("")));
        assert_eq!(HealthStatus::Suspended.to_string(), "Suspended");
    }
}
