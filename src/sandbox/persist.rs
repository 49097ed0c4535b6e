//! The state file: every object and the resourceVersion counter, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;

use super::http::Shared;
use super::store::{Store, TypeKey};

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a sandbox state document.
    #[error("state file {path} is corrupt: {why}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// How long changes gather before one write.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Loads a store from `path`; Ok(None) when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<Store>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let corrupt = |why: String| PersistError::Corrupt {
        path: path.into(),
        why,
    };
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let rv = doc["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| corrupt("missing resourceVersion".into()))?;
    let objects = doc["objects"]
        .as_array()
        .ok_or_else(|| corrupt("missing objects".into()))?;
    let mut store = Store::new();
    for entry in objects {
        let (Some(group), Some(plural)) = (entry["group"].as_str(), entry["plural"].as_str())
        else {
            return Err(corrupt("an entry lacks group or plural".into()));
        };
        let obj = &entry["object"];
        if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            return Err(corrupt("an object lacks metadata.name".into()));
        }
        store.insert_raw(&TypeKey::new(group, plural), obj.clone(), None);
    }
    store.set_rv(rv);
    store.refresh_catalog();
    Ok(Some(store))
}

/// Serializes the store's current content.
fn render(store: &Store) -> Vec<u8> {
    let snapshot = store.snapshot();
    let mut out = Vec::with_capacity(
        snapshot
            .iter()
            .map(|(_, o)| o.json.len() + 80)
            .sum::<usize>()
            + 64,
    );
    out.extend_from_slice(
        format!("{{\"resourceVersion\":\"{}\",\"objects\":[", store.rv()).as_bytes(),
    );
    for (i, (key, obj)) in snapshot.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        let head = serde_json::json!({"group": key.group, "plural": key.plural}).to_string();
        out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        out.extend_from_slice(b",\"object\":");
        out.extend_from_slice(&obj.json);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
    out
}

/// Writes the file atomically: temp file in the same directory, fsync, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let io = |source| PersistError::Io {
        path: path.into(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        // Makes the rename itself durable; not every filesystem supports it.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes the current state now.
pub fn flush(shared: &Shared, path: &Path) -> Result<(), PersistError> {
    let bytes = render(&shared.lock());
    write_atomic(path, &bytes)
}

/// Writes the state after changes (debounced) until shutdown.
pub fn spawn(shared: Arc<Shared>, path: PathBuf) -> tokio::task::JoinHandle<()> {
    let mut rx = shared.lock().subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
            tokio::time::sleep(DEBOUNCE).await;
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
            let bytes = render(&shared.lock());
            let p = path.clone();
            match tokio::task::spawn_blocking(move || write_atomic(&p, &bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot write sandbox state"),
                Err(e) => tracing::error!(error = %e, "state writer failed"),
            }
        }
    })
}
