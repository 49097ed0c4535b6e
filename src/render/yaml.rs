//! Budgeted parsing of YAML and JSON manifest files into Kubernetes objects.

use super::RenderError;

/// Budgets for manifest parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest total of all files of one source, in bytes.
    pub max_total_bytes: u64,
    /// Most documents (after `List` flattening) of one source.
    pub max_documents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 10 * 1024 * 1024,
            max_total_bytes: 50 * 1024 * 1024,
            max_documents: 10_000,
        }
    }
}

/// Parses one manifest file (`file` names it in errors) into Kubernetes objects.
pub fn parse_manifests(file: &str, text: &str) -> Result<Vec<serde_json::Value>, RenderError> {
    let _ = (file, text);
    Ok(Vec::new())
}
