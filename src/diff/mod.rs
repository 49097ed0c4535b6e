//! The diff engine: what counts when comparing the object Git wants with the live one,
//! ignoreDifferences rules, Secret masking, and text and structured diffs
//! (docs/architecture.md, "Diff").
//!
//! The engine works on plain JSON values and rule structs, not on the CRD wire types.

mod ignore;
mod jq;
mod managed;
mod mask;
mod normalize;
mod path;
mod respect;
mod text;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use ignore::IgnoreRule;
pub use mask::mask_secrets;
pub use normalize::Normalizer;
pub use respect::respect_ignored;
pub use text::{patch, unified, unified_between};

/// Errors compiling ignoreDifferences rules; shown to users as a condition.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A jq path expression that does not parse, compile, or is refused by the guard.
    #[error("invalid jq path expression `{expression}`: {message}")]
    InvalidJq { expression: String, message: String },
    /// A JSON pointer that does not start with `/`.
    #[error("invalid JSON pointer `{pointer}`: it must be empty or start with `/`")]
    InvalidPointer { pointer: String },
}

/// The outcome of comparing one object: whether it differs, and both sides as compared.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    /// The normalised sides differ.
    pub modified: bool,
    /// The live object as compared.
    pub normalized_live: Value,
    /// The server's dry-run result of the desired object, as compared.
    pub normalized_predicted: Value,
}

/// Compares the server's dry-run result of the desired object with the live object.
pub fn compare(predicted: &Value, live: &Value, normalizer: &Normalizer) -> ObjectDiff {
    let normalized_live = normalizer.normalize(live, Some(live));
    let normalized_predicted = normalizer.normalize(predicted, Some(live));
    ObjectDiff {
        modified: normalized_live != normalized_predicted,
        normalized_live,
        normalized_predicted,
    }
}
