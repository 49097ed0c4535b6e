//! The render cache: one render per distinct (commit, source, tool, tool version, parameters),
//! shared by every Application that asks for the same thing.
//!
//! Concurrent requests for one key wait for the first instead of rendering it again (single
//! flight), so a thousand apps on one monorepo commit cost one render per distinct input.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{RenderError, Rendered};

/// A cache key: a SHA-256 over everything that decides a render's output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of `inputs` (anything serialisable that names every input of the render).
    pub fn of(inputs: &impl serde::Serialize) -> CacheKey {
        // Serialising plain data cannot fail; an empty key would only make every render a miss.
        let bytes = serde_json::to_vec(inputs).unwrap_or_default();
        CacheKey(hex::encode(Sha256::digest(&bytes)))
    }
}

/// Counts of what the cache did, for metrics, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from the cache (including waiters on an in-flight render).
    pub hits: u64,
    /// Renders actually run.
    pub renders: u64,
}

/// A bounded cache of successful renders (failures are never cached, so a fixed tool or a
/// transient error is retried on the next reconcile).
pub struct RenderCache {
    capacity: usize,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    renders: AtomicU64,
}

#[derive(Default)]
struct Entries {
    done: HashMap<CacheKey, Arc<Rendered>>,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<CacheKey>,
    /// One lock per key being rendered, so concurrent askers wait for the first.
    in_flight: HashMap<CacheKey, Arc<Mutex<()>>>,
}

impl RenderCache {
    /// A cache holding at most `capacity` renders (0 disables caching).
    pub fn new(capacity: usize) -> RenderCache {
        RenderCache {
            capacity,
            entries: Mutex::new(Entries::default()),
            hits: AtomicU64::new(0),
            renders: AtomicU64::new(0),
        }
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            renders: self.renders.load(Ordering::Relaxed),
        }
    }

    /// The cached render for `key`, or `render()`'s result, cached when it succeeds. `bypass`
    /// (a hard refresh) always renders and replaces the entry. Blocking: waiters block.
    pub fn get_or_render(
        &self,
        key: &CacheKey,
        bypass: bool,
        render: impl FnOnce() -> Result<Rendered, RenderError>,
    ) -> Result<Arc<Rendered>, RenderError> {
        let flight = {
            let mut entries = self.lock();
            if !bypass && let Some(found) = entries.done.get(key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(found.clone());
            }
            entries.in_flight.entry(key.clone()).or_default().clone()
        };
        // Held until the result is in the cache, so a waiter never finds the flight free and
        // the entry still missing.
        let _rendering = flight.lock().unwrap_or_else(|p| p.into_inner());
        let result = {
            // Whoever held the flight before us may have just rendered it.
            let cached = (!bypass)
                .then(|| self.lock().done.get(key).cloned())
                .flatten();
            match cached {
                Some(found) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    Ok(found)
                }
                None => {
                    self.renders.fetch_add(1, Ordering::Relaxed);
                    render().map(Arc::new)
                }
            }
        };
        let mut entries = self.lock();
        // Clones are only made under this lock: the map's and ours mean nobody else waits.
        if Arc::strong_count(&flight) <= 2 {
            entries.in_flight.remove(key);
        }
        if let Ok(rendered) = &result
            && self.capacity > 0
            && !entries
                .done
                .get(key)
                .is_some_and(|d| Arc::ptr_eq(d, rendered))
        {
            if entries.done.insert(key.clone(), rendered.clone()).is_none() {
                entries.order.push_back(key.clone());
            }
            while entries.done.len() > self.capacity {
                let Some(oldest) = entries.order.pop_front() else {
                    break;
                };
                entries.done.remove(&oldest);
            }
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Tool;

    fn rendered(n: usize) -> Rendered {
        Rendered {
            objects: vec![serde_json::json!({ "n": n })],
            files_read: Default::default(),
            tool: Tool::Directory,
            tool_version: String::new(),
            warnings: vec![],
            skipped: vec![],
        }
    }

    #[test]
    fn one_key_renders_once_even_when_asked_concurrently() {
        let cache = Arc::new(RenderCache::new(10));
        let key = CacheKey::of(&("commit", "path"));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                let key = key.clone();
                std::thread::spawn(move || {
                    cache
                        .get_or_render(&key, false, || {
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(rendered(1))
                        })
                        .expect("renders")
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("thread").objects.len(), 1);
        }
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 15,
                renders: 1
            }
        );
    }

    #[test]
    fn failures_are_not_cached_bypass_renders_again_and_old_entries_are_evicted() {
        let cache = RenderCache::new(2);
        let a = CacheKey::of(&"a");
        let failed = cache.get_or_render(&a, false, || {
            Err(RenderError::Unsupported {
                message: "x".into(),
            })
        });
        assert!(failed.is_err());
        cache
            .get_or_render(&a, false, || Ok(rendered(1)))
            .expect("a");
        let again = cache
            .get_or_render(&a, true, || Ok(rendered(2)))
            .expect("a");
        assert_eq!(again.objects[0]["n"], 2, "a hard refresh renders again");
        assert_eq!(
            cache
                .get_or_render(&a, false, || Ok(rendered(3)))
                .expect("a")
                .objects[0]["n"],
            2
        );
        cache
            .get_or_render(&CacheKey::of(&"b"), false, || Ok(rendered(1)))
            .expect("b");
        cache
            .get_or_render(&CacheKey::of(&"c"), false, || Ok(rendered(1)))
            .expect("c");
        let after = cache
            .get_or_render(&a, false, || Ok(rendered(4)))
            .expect("a");
        assert_eq!(after.objects[0]["n"], 4, "the oldest entry was evicted");
    }
}
