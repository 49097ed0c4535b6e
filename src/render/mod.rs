//! Manifest rendering from a checkout.
//!
//! Everything rendered must come from inside the checkout (invariant 6) and every manifest
//! parser is bounded (invariant 5).

mod budget;
mod confine;
mod directory;
mod glob;
mod yaml;

pub use budget::{Budget, Expanded, Limits};
pub use confine::confine;
pub use directory::{
    DirectoryOptions, render_directory, render_directory_budgeted, render_directory_with_limits,
};
pub use yaml::{parse_budgeted, parse_manifests};

use std::path::PathBuf;

/// Why rendering a source failed; each variant names the offending file where there is one.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A path (source path or symlink target) leaves the checkout.
    #[error("path {path:?} leaves the repository checkout")]
    PathEscapes {
        /// The path as given or as found in the repository.
        path: String,
    },
    /// The source path does not exist in the checkout.
    #[error("path {path:?} does not exist in the repository")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The source path is not a directory.
    #[error("path {path:?} is not a directory")]
    NotADirectory {
        /// The path as given.
        path: String,
    },
    /// A manifest file is not valid YAML or JSON.
    #[error("{file}: {message}")]
    Parse {
        /// The file, relative to the repository root.
        file: String,
        /// The parser's message, with the line where known.
        message: String,
    },
    /// A file, the whole source or the number of documents exceeds a budget.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What exceeded the budget (names the file where there is one).
        what: String,
        /// The limit that was exceeded.
        limit: u64,
    },
    /// A document is not a Kubernetes object (object with apiVersion, kind, metadata.name).
    #[error("{file}: document {index}: {message}")]
    NotAnObject {
        /// The file, relative to the repository root.
        file: String,
        /// The zero-based index of the document in the file.
        index: usize,
        /// What is missing or wrong.
        message: String,
    },
    /// An include or exclude pattern is not a valid glob.
    #[error("invalid glob pattern {pattern:?}: {message}")]
    InvalidGlob {
        /// The pattern as given.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// Symbolic links form a loop or are nested too deeply.
    #[error("symlink loop at {path:?}")]
    SymlinkLoop {
        /// The path, relative to the repository root.
        path: String,
    },
    /// Reading the checkout failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file system path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
