//! Parsed types that carry meaning, shared by the router, the Git layer and the worker.

pub mod app_key;
pub mod names;
pub mod repo_url;

pub use app_key::AppKey;
pub use repo_url::RepoUrl;
