//! Checkout retention: leases on checkouts in use, and removal of the least recently used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// A commit's files on disk; garbage collection leaves them alone while this value lives.
///
/// Dereferences to the checkout directory. Hold it for as long as the files are read.
pub struct Checkout {
    path: PathBuf,
    leases: Arc<Leases>,
}

impl Checkout {
    /// The checkout directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for Checkout {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Checkout {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl PartialEq for Checkout {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Checkout").field(&self.path).finish()
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let mut held = self.leases.held();
        if let Some(count) = held.get_mut(&self.path) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.path);
            }
        }
    }
}

/// How many [`Checkout`]s of each directory this process holds.
#[derive(Default)]
pub(crate) struct Leases(Mutex<HashMap<PathBuf, usize>>);

impl Leases {
    /// Leases `path` (which need not exist yet) until the returned value is dropped.
    pub(crate) fn acquire(self: &Arc<Self>, path: PathBuf) -> Checkout {
        *self.held().entry(path.clone()).or_default() += 1;
        Checkout {
            path,
            leases: self.clone(),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<PathBuf, usize>> {
        // A poisoned map only means a panic elsewhere while counting; the counts are intact.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves `path` to `trash` unless it is leased; checked and moved under one lock, so a
    /// lease taken meanwhile either sees the checkout gone or keeps it in place.
    fn take_unless_leased(&self, path: &Path, trash: &Path) -> bool {
        let held = self.held();
        !held.contains_key(path) && std::fs::rename(path, trash).is_ok()
    }
}

/// Marks `path` as just used, so collection ranks it among the newest.
pub(crate) fn touch(path: &Path) {
    let touched = std::fs::File::open(path).and_then(|dir| dir.set_modified(SystemTime::now()));
    if let Err(err) = touched {
        tracing::debug!(path = %path.display(), error = %err, "could not mark checkout as used");
    }
}

/// Removes the checkouts in `dir` (one repository's) beyond the `keep` most recently used,
/// skipping leased ones, and leftovers of interrupted checkouts. Runs under the repository's
/// lock, so no checkout of it is being staged meanwhile.
pub(crate) fn collect(dir: &Path, keep: usize, leases: &Leases) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut checkouts: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") || name.starts_with(".gc-") {
            remove(&path);
            continue;
        }
        let used = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        checkouts.push((used, path));
    }
    checkouts.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
    for (_, path) in checkouts.into_iter().skip(keep.max(1)) {
        let Some(name) = path.file_name() else {
            continue;
        };
        let trash = dir.join(format!(".gc-{}", name.to_string_lossy()));
        if leases.take_unless_leased(&path, &trash) {
            tracing::debug!(path = %path.display(), "removing old checkout");
            remove(&trash);
        }
    }
}

fn remove(path: &Path) {
    if let Err(err) = std::fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %err, "could not remove old checkout");
    }
}
