//! What a `RepoCache` asked of remotes: ref listings and pack fetches, counted for tests,
//! benchmarks and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::metrics::Metrics;

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
    /// Where each fetch's time and pack size are recorded, once a process has set it.
    metrics: OnceLock<Arc<Metrics>>,
}

impl FetchCounters {
    pub(crate) fn listed(&self) {
        self.listings.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fetched_pack(&self) {
        self.pack_fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one fetch that asked the server for a pack: how long it took and the pack's size.
    pub(crate) fn fetch_took(&self, elapsed: Duration, pack_bytes: u64) {
        if let Some(metrics) = self.metrics.get() {
            metrics.git_fetch(elapsed.as_secs_f64(), pack_bytes);
        }
    }

    /// Sends later fetches' times and sizes to `metrics`; only the first call counts.
    pub(crate) fn report_to(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    pub(crate) fn snapshot(&self) -> FetchStats {
        FetchStats {
            listings: self.listings.load(Ordering::Relaxed),
            pack_fetches: self.pack_fetches.load(Ordering::Relaxed),
        }
    }
}
