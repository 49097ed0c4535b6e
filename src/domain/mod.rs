//! Parsed types that carry meaning, shared by the router, the Git layer and the worker.

pub mod repo_url;

pub use repo_url::RepoUrl;
