//! The live state cache of one cluster: a cluster-wide watch per kind of the objects Capstan
//! manages (those carrying the tracking label), kept in memory and indexed by app, with the app
//! keys whose objects someone else changed sent to a channel (see docs/architecture.md, "Live
//! state cache").

pub mod index;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::cluster::resource::{ObjectId, TRACKING_LABEL};
use index::{Index, Outcome, Report, WriteEnd, id_of};

/// Why a kind could not be cached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The first list of the kind failed (not served, forbidden, unreachable).
    #[error("cannot list {kind}: {message}")]
    List {
        /// `Kind.group` (or `Kind` for the core group).
        kind: String,
        /// What the API server or the connection said.
        message: String,
    },
    /// The cache was shut down.
    #[error("the live cache is shut down")]
    Stopped,
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Kinds being watched (or starting).
    pub kinds: usize,
    /// Objects cached.
    pub objects: usize,
    /// Object events received from watches, initial lists included.
    pub events: u64,
    /// App keys sent to the receiver.
    pub notified: u64,
    /// Events not notified because Capstan caused them.
    pub suppressed: u64,
}

/// Where one kind's watch is: starting, listed at least once, or failed its first list.
#[derive(Debug, Clone)]
enum Phase {
    Starting,
    Ready,
    Failed(CacheError),
}

/// (group, kind): one watch each, whatever version it is read at.
type KindKey = (String, String);

/// What the watch tasks share with every handle.
struct Shared {
    client: Client,
    index: RwLock<Index>,
    kinds: Mutex<HashMap<KindKey, watch::Receiver<Phase>>>,
    changed: mpsc::UnboundedSender<String>,
    cancel: CancellationToken,
    events: AtomicU64,
    notified: AtomicU64,
    suppressed: AtomicU64,
}

/// The watch-fed cache of one cluster's managed objects; clones share it. Watches end when the
/// last clone is dropped or on [`LiveCache::shutdown`].
#[derive(Clone)]
pub struct LiveCache {
    shared: Arc<Shared>,
    // Watch tasks hold `shared`, not this, so dropping the last handle cancels them.
    _stop: Arc<DropGuard>,
}

impl LiveCache {
    /// A cache over `client` and the receiver of app keys whose managed objects changed.
    pub fn new(client: Client) -> (LiveCache, mpsc::UnboundedReceiver<String>) {
        Self::with_cancel(client, CancellationToken::new())
    }

    /// As [`LiveCache::new`], also stopped when `cancel` is (e.g. the process's shutdown).
    pub fn with_cancel(
        client: Client,
        cancel: CancellationToken,
    ) -> (LiveCache, mpsc::UnboundedReceiver<String>) {
        let (changed, rx) = mpsc::unbounded_channel();
        let cancel = cancel.child_token();
        let shared = Arc::new(Shared {
            client,
            index: RwLock::new(Index::default()),
            kinds: Mutex::new(HashMap::new()),
            changed,
            cancel: cancel.clone(),
            events: AtomicU64::new(0),
            notified: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        });
        let cache = LiveCache {
            shared,
            _stop: Arc::new(cancel.drop_guard()),
        };
        (cache, rx)
    }

    /// Starts watching `resource`'s kind (once; concurrent callers share the start) and returns
    /// when its first list is in the cache.
    pub async fn ensure(&self, resource: &ApiResource) -> Result<(), CacheError> {
        let key = (resource.group.clone(), resource.kind.clone());
        let mut phase = {
            let mut kinds = lock(&self.shared.kinds);
            match kinds.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(Phase::Starting);
                    kinds.insert(key, rx.clone());
                    tokio::spawn(run_watch(self.shared.clone(), resource.clone(), tx));
                    rx
                }
            }
        };
        loop {
            let now = phase.borrow_and_update().clone();
            match now {
                Phase::Ready => return Ok(()),
                Phase::Failed(e) => return Err(e),
                Phase::Starting => {}
            }
            if phase.changed().await.is_err() {
                return Err(CacheError::Stopped);
            }
        }
    }

    /// The cached object with this id.
    pub fn get(&self, id: &ObjectId) -> Option<Arc<Value>> {
        read(&self.shared.index).get(id)
    }

    /// Every cached object whose tracking annotation names `app_key` (`namespace/name`), in no
    /// particular order. Callers that need the exact object named use `is_tracked_by`.
    pub fn objects_of(&self, app_key: &str) -> Vec<Arc<Value>> {
        read(&self.shared.index).objects_of(app_key)
    }

    /// Records the resourceVersion an apply returned: watch events up to it are not notified.
    pub fn note_written(&self, obj: &Value) {
        write(&self.shared.index).note_written(obj);
    }

    /// Records that Capstan deleted the object: its deletion is not notified.
    pub fn note_deleted(&self, id: &ObjectId) {
        write(&self.shared.index).note_deleted(id);
    }

    /// Puts an apply result in at once; a later watch event at a lower or equal
    /// resourceVersion does not replace it. Not notified; pair with [`LiveCache::note_written`].
    pub fn update(&self, obj: Value) {
        write(&self.shared.index).update(obj);
    }

    /// Takes an object out at once (Capstan deleted it).
    pub fn remove(&self, id: &ObjectId) {
        write(&self.shared.index).remove(id);
    }

    /// Announces a write of Capstan's to `id` before it is sent: the object's watch events are
    /// held until the returned guard says how it ended, so an event that outruns the API's answer
    /// is not taken for someone else's change. Dropping the guard releases what it held.
    pub fn begin_write(&self, id: &ObjectId) -> PendingWrite {
        write(&self.shared.index).begin_write(id);
        PendingWrite {
            shared: self.shared.clone(),
            id: id.clone(),
            ended: false,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            kinds: lock(&self.shared.kinds).len(),
            objects: read(&self.shared.index).len(),
            events: self.shared.events.load(Ordering::Relaxed),
            notified: self.shared.notified.load(Ordering::Relaxed),
            suppressed: self.shared.suppressed.load(Ordering::Relaxed),
        }
    }

    /// Ends every watch; the cache keeps what it holds but no longer changes.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

/// A write of Capstan's in flight, from [`LiveCache::begin_write`].
#[must_use = "dropping it at once holds nothing back"]
pub struct PendingWrite {
    shared: Arc<Shared>,
    id: ObjectId,
    ended: bool,
}

impl PendingWrite {
    /// The apply succeeded with this result: notes it and puts it in the cache.
    pub fn written(mut self, obj: &Value) {
        self.end(WriteEnd::Written(obj));
        write(&self.shared.index).update(obj.clone());
    }

    /// The delete succeeded: notes it and takes the object out of the cache.
    pub fn deleted(mut self) {
        self.end(WriteEnd::Deleted);
        write(&self.shared.index).remove(&self.id);
    }

    fn end(&mut self, end: WriteEnd<'_>) {
        self.ended = true;
        let out = write(&self.shared.index).end_write(&self.id, end);
        self.shared.report(out);
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if !self.ended {
            self.end(WriteEnd::Failed);
        }
    }
}

/// The cache's state stays consistent even if a holder panicked, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn kind_name(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.kind.clone()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

/// A watched object as a plain value; list items from a real API server lack apiVersion and
/// kind, so they come from the resource.
fn to_value(mut obj: DynamicObject, resource: &ApiResource) -> Option<Value> {
    obj.types.get_or_insert_with(|| kube::core::TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    serde_json::to_value(obj).ok()
}

impl Shared {
    fn report(&self, out: Outcome) {
        if out.suppressed {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
        for app in out.apps {
            // A dropped receiver only means nobody listens any more.
            if self.changed.send(app).is_ok() {
                self.notified.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One kind's watch until cancelled. Its first list decides `ensure`; later failures are retried
/// with the watcher's backoff, and each relist replaces what the kind had.
async fn run_watch(shared: Arc<Shared>, resource: ApiResource, phase: watch::Sender<Phase>) {
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &resource);
    let config = watcher::Config::default().labels(TRACKING_LABEL);
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut ready = false;
    let mut listed: HashSet<ObjectId> = HashSet::new();
    loop {
        let next = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            next = stream.next() => next,
        };
        // The first list is what the cache starts from; a relist is news only where it differs.
        let relist = if ready {
            Report::IfChanged
        } else {
            Report::Silent
        };
        match next {
            None => break,
            Some(Err(e)) if !ready => {
                // Free the slot first, so the next `ensure` starts afresh.
                lock(&shared.kinds).remove(&(resource.group.clone(), resource.kind.clone()));
                let _ = phase.send(Phase::Failed(CacheError::List {
                    kind: kind_name(&resource),
                    message: e.to_string(),
                }));
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(kind = %kind_name(&resource), error = %e, "live cache watch failed; retrying");
            }
            Some(Ok(event)) => match event {
                watcher::Event::Init => listed.clear(),
                watcher::Event::InitApply(obj) => {
                    shared.events.fetch_add(1, Ordering::Relaxed);
                    if let Some(v) = to_value(obj, &resource) {
                        if let Some(id) = id_of(&v) {
                            listed.insert(id);
                        }
                        let out = write(&shared.index).apply(v, relist);
                        shared.report(out);
                    }
                }
                watcher::Event::InitDone => {
                    let out = write(&shared.index).retain_listed(
                        &resource.group,
                        &resource.kind,
                        &listed,
                        relist,
                    );
                    listed = HashSet::new();
                    shared.report(out);
                    if !ready {
                        ready = true;
                        let _ = phase.send(Phase::Ready);
                    }
                }
                watcher::Event::Apply(obj) => {
                    shared.events.fetch_add(1, Ordering::Relaxed);
                    if let Some(v) = to_value(obj, &resource) {
                        let out = write(&shared.index).apply(v, Report::Always);
                        shared.report(out);
                    }
                }
                watcher::Event::Delete(obj) => {
                    shared.events.fetch_add(1, Ordering::Relaxed);
                    if let Some(v) = to_value(obj, &resource) {
                        let out = write(&shared.index).delete(&v, Report::Always);
                        shared.report(out);
                    }
                }
            },
        }
    }
    lock(&shared.kinds).remove(&(resource.group.clone(), resource.kind.clone()));
}
