//! INTERFACE STUB (integrator's copy of the render API; replaced by the git helper's module at merge).
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct DirectoryOptions {
    pub recurse: bool,
    pub include: Option<String>,
    pub exclude: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("path {path} escapes the repository")]
    PathEscapes { path: String },
}

pub fn render_directory(
    _checkout: &Path,
    _source_path: &str,
    _opts: &DirectoryOptions,
) -> Result<Vec<serde_json::Value>, RenderError> {
    unimplemented!()
}
