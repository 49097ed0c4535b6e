//! Patch formats the sandbox accepts: JSON merge, JSON patch, strategic merge.
//! INTERFACE STUB — replaced by the patch helper; keep these public signatures.

use serde_json::Value;

/// A patch that cannot be applied; the server answers 422 Invalid or 400 BadRequest.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot apply to this object (422 Invalid).
    #[error("{0}")]
    Invalid(String),
}

/// RFC 7386 JSON merge patch (`application/merge-patch+json`).
pub fn merge_patch(_target: &mut Value, _patch: &Value) {
    unimplemented!("patch")
}

/// RFC 6902 JSON patch (`application/json-patch+json`); `patch` is the array of operations.
pub fn json_patch(_target: &mut Value, _patch: &Value) -> Result<(), PatchError> {
    unimplemented!("patch")
}

/// Kubernetes strategic merge patch for built-in kinds (`application/strategic-merge-patch+json`).
pub fn strategic_merge_patch(
    _target: &mut Value,
    _patch: &Value,
    _group: &str,
    _kind: &str,
) -> Result<(), PatchError> {
    unimplemented!("patch")
}
