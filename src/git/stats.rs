//! What a `RepoCache` asked of remotes: ref listings and pack fetches, counted for tests,
//! benchmarks and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Remote round trips made by one `RepoCache` since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Ref listings (one connection and ref advertisement each).
    pub listings: u64,
    /// Pack transfers requested after a listing.
    pub pack_fetches: u64,
}

/// The live counters behind [`FetchStats`].
#[derive(Debug, Default)]
pub(crate) struct FetchCounters {
    listings: AtomicU64,
    pack_fetches: AtomicU64,
}

impl FetchCounters {
    pub(crate) fn listed(&self) {
        self.listings.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fetched_pack(&self) {
        self.pack_fetches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> FetchStats {
        FetchStats {
            listings: self.listings.load(Ordering::Relaxed),
            pack_fetches: self.pack_fetches.load(Ordering::Relaxed),
        }
    }
}
