//! Server-side apply and managedFields bookkeeping.
//! INTERFACE STUB — replaced by the patch helper; keep these public signatures.

use serde_json::Value;

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// The manager that owns the field, e.g. `kubectl-client-side-apply`.
    pub manager: String,
    /// The field path in Kubernetes' notation, e.g. `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum SsaError {
    /// Other managers own fields this apply sets to different values (409 Conflict).
    #[error("Apply failed with {} conflict(s)", conflicts.len())]
    Conflict { conflicts: Vec<FieldConflict> },
    /// The applied configuration is not a valid object (422 Invalid / 400 BadRequest).
    #[error("{0}")]
    Invalid(String),
}

/// Server-side apply of `applied` by `manager` onto `live` (None = the object does not exist).
/// Returns the merged object with `metadata.managedFields` updated.
pub fn apply(
    _live: Option<&Value>,
    _applied: &Value,
    _manager: &str,
    _force: bool,
    _group: &str,
    _kind: &str,
    _now: &str,
) -> Result<Value, SsaError> {
    unimplemented!("ssa")
}

/// Records in `new.metadata.managedFields` that `manager` (operation Update) set the fields
/// that differ between `old` (None = created) and `new`, taking them from other managers.
pub fn record_update(
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _group: &str,
    _kind: &str,
    _now: &str,
) {
    unimplemented!("ssa")
}
