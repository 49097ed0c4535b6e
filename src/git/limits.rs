//! What one repository may cost the worker: checkout size, fetch time, checkouts kept on disk.

use std::time::Duration;

/// Bounds applied by [`RepoCache`](super::RepoCache); the defaults fit large real repositories.
#[derive(Debug, Clone)]
pub struct GitLimits {
    /// Tree entries (files, directories, symlinks) one checkout may hold.
    pub max_checkout_entries: u64,
    /// Bytes of file content one checkout may hold.
    pub max_checkout_bytes: u64,
    /// Each fetch (ref listing and pack transfer together) is abandoned after this long.
    pub fetch_timeout: Duration,
    /// Checkouts kept per repository; older ones are removed once no caller holds them.
    pub checkouts_per_repo: usize,
}

impl Default for GitLimits {
    fn default() -> Self {
        GitLimits {
            max_checkout_entries: 100_000,
            max_checkout_bytes: 1024 * 1024 * 1024,
            fetch_timeout: Duration::from_secs(60),
            checkouts_per_repo: 10,
        }
    }
}
