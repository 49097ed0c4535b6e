//! Simulated controllers: how the sandbox moves workload status towards ready (or failure).
//! INTERFACE STUB — replaced by the controllers helper; keep these public signatures.

use std::time::Duration;

use serde_json::Value;

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Default time a workload takes to become ready.
    pub ready_delay: Duration,
}

/// The next status a simulated controller writes: after `after`, `.status` becomes `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPlan {
    pub after: Duration,
    pub status: Value,
}

/// The next status change for this object, or None when its status is settled.
pub fn next_status(
    _group: &str,
    _kind: &str,
    _obj: &Value,
    _settings: &SimSettings,
) -> Option<StatusPlan> {
    unimplemented!("controllers")
}
