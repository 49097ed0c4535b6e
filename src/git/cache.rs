//! The repository cache: per-URL bare mirrors and per-commit checkouts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gix::protocol::handshake::Ref;

use super::checkout::{Previous, write_commit_tree};
use super::fetch::{
    MIRROR_REFSPECS, Source, fetch, find_commit, open_mirror, read_error, ref_target,
};
use super::gc::{self, Checkout, Leases};
use super::stats::{FetchCounters, FetchStats};
use super::{Credentials, GitError, GitLimits, GitPolicy};

/// A cache of bare mirrors and commit checkouts under one root, one set per repository and
/// credentials: what was fetched with one app's credentials is never served to another app
/// whose credentials differ (they may not be able to read the repository).
///
/// Layout: `<root>/mirrors/<key>` holds the bare mirror, `<root>/checkouts/<key>/<commit>`
/// the files of one commit, `<root>/locks/<key>.lock` the mirror's file lock. Operations on one URL are serialised by an async mutex (within
/// the process) and an advisory file lock (across processes sharing the root), so two fetches
/// never write the same mirror at once.
///
/// Concurrent resolves of one URL share ref listings: a call reuses the last listing if that
/// listing began after the call did (so its answer is at least as fresh as one the call would
/// have made itself), and lists afresh otherwise. A hundred apps refreshed at once for one
/// repository cost one or two listings and at most one pack fetch.
#[derive(Clone)]
pub struct RepoCache {
    inner: Arc<Inner>,
    policy: Arc<GitPolicy>,
}

struct Inner {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<LastListing>>>>,
    limits: GitLimits,
    leases: Arc<Leases>,
    counters: Arc<FetchCounters>,
    /// Orders call starts and listing starts, for deciding whether a listing is fresh enough.
    clock: AtomicU64,
}

/// The most recent ref listing of one mirror, guarded by the mirror's lock.
#[derive(Default)]
struct LastListing {
    /// The clock value when the listing began; None before the first.
    began: Option<u64>,
    refs: Arc<Vec<Ref>>,
}

impl RepoCache {
    /// Creates a cache rooted at `root` (created on first use) with default limits, that reads
    /// local repositories anywhere; servers set their policy with `with_policy`.
    pub fn new(root: PathBuf) -> RepoCache {
        RepoCache::with_limits(root, GitLimits::default())
    }

    /// Creates a cache rooted at `root` whose fetches and checkouts obey `limits`.
    pub fn with_limits(root: PathBuf, limits: GitLimits) -> RepoCache {
        RepoCache {
            inner: Arc::new(Inner {
                root,
                locks: Mutex::new(HashMap::new()),
                limits,
                leases: Arc::default(),
                counters: Arc::default(),
                clock: AtomicU64::new(0),
            }),
            policy: Arc::new(GitPolicy::allow_any_local()),
        }
    }

    /// The same cache, refusing repository URLs that `policy` forbids.
    pub fn with_policy(mut self, policy: GitPolicy) -> RepoCache {
        self.policy = Arc::new(policy);
        self
    }

    /// Records every later fetch's time and pack size in `metrics`.
    pub fn report_to(&self, metrics: std::sync::Arc<crate::metrics::Metrics>) {
        self.inner.counters.report_to(metrics);
    }

    /// Ref listings and pack fetches this cache has made so far.
    pub fn stats(&self) -> FetchStats {
        self.inner.counters.snapshot()
    }

    /// Fetches as needed and resolves `revision` to a 40-hex commit id.
    ///
    /// `revision`: "" or "HEAD" (the remote's default branch), a branch name, a tag name,
    /// "refs/heads/x", "refs/tags/x", or a full commit SHA. Always asks the remote, since
    /// branches move; a full SHA already in this credential's mirror is answered locally.
    pub async fn resolve(
        &self,
        url: &str,
        revision: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, GitError> {
        let began = self.tick();
        let (source, key) = self.source_for(url, creds)?;
        let lock = self.lock_for(&key);
        let mut last = lock.lock().await;
        let (mirror, flock) = self.mirror_paths(&key);
        let revision = revision.trim().to_string();
        let shared = last
            .began
            .filter(|listed| *listed > began)
            .map(|_| last.refs.clone());
        let listing_began = self.tick();
        let (commit, listed) = run_blocking(move || {
            let _flock = lock_mirror(&flock)?;
            resolve_blocking(
                &mirror,
                &source,
                &revision,
                shared.as_ref().map(|refs| refs.as_slice()),
            )
        })
        .await?;
        if let Some(refs) = listed {
            *last = LastListing {
                began: Some(listing_began),
                refs: Arc::new(refs),
            };
        }
        Ok(commit)
    }

    fn tick(&self) -> u64 {
        self.inner.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// The tree of `commit` as a directory on disk (cached per commit, created atomically;
    /// reused on later calls), fetching the commit first if the mirror lacks it.
    ///
    /// The directory stays in place while the returned [`Checkout`] lives; afterwards it may
    /// be garbage-collected once newer checkouts of the repository exceed the configured count.
    pub async fn checkout(
        &self,
        url: &str,
        commit: &str,
        creds: Option<&Credentials>,
    ) -> Result<Checkout, GitError> {
        let commit = commit.trim().to_ascii_lowercase();
        if !is_full_sha(&commit) {
            return Err(GitError::RevisionNotFound { revision: commit });
        }
        let (source, key) = self.source_for(url, creds)?;
        let dir = self.inner.root.join("checkouts").join(&key);
        let dest = dir.join(&commit);
        // Leased before looking, so collection cannot remove it between the look and the use.
        let lease = self.inner.leases.acquire(dest.clone());
        // A finished checkout is immutable and was renamed into place atomically.
        if tokio::fs::metadata(&dest).await.is_ok() {
            gc::touch(&dest);
            return Ok(lease);
        }
        let lock = self.lock_for(&key);
        let _guard = lock.lock().await;
        let (mirror, flock) = self.mirror_paths(&key);
        let inner = self.inner.clone();
        run_blocking(move || {
            let _flock = lock_mirror(&flock)?;
            checkout_blocking(&mirror, &source, &commit, &dir, &dest, &inner.limits)?;
            gc::collect(&dir, inner.limits.checkouts_per_repo, &inner.leases);
            Ok(())
        })
        .await?;
        Ok(lease)
    }

    /// The message and author of `commit`, read from the mirror an earlier resolve or checkout
    /// of `url` with `creds` filled; nothing is fetched.
    pub async fn commit_info(
        &self,
        url: &str,
        commit: &str,
        creds: Option<&Credentials>,
    ) -> Result<super::CommitInfo, GitError> {
        let commit = commit.trim().to_ascii_lowercase();
        if !is_full_sha(&commit) {
            return Err(GitError::RevisionNotFound { revision: commit });
        }
        let (source, key) = self.source_for(url, creds)?;
        let (mirror, _) = self.mirror_paths(&key);
        // Objects in a mirror are never rewritten, so reading needs no lock against fetches.
        run_blocking(move || super::commit_info::read(&mirror, &source.url, &commit)).await
    }

    /// What to fetch and the cache key, after the policy accepted `url`.
    ///
    /// The key carries a fingerprint of the credentials, so each set of credentials has its own
    /// mirror and checkouts, and must prove access itself.
    fn source_for(
        &self,
        url: &str,
        creds: Option<&Credentials>,
    ) -> Result<(Source, String), GitError> {
        let url = self.policy.check(url)?;
        let key = match creds {
            Some(creds) => format!("{}-c{}", url.cache_key(), &creds.fingerprint()[..16]),
            None => url.cache_key(),
        };
        let source = Source {
            url: url.fetch_url(),
            creds: creds.cloned(),
            timeout: self.inner.limits.fetch_timeout,
            counters: self.inner.counters.clone(),
        };
        Ok((source, key))
    }

    /// The mirror directory and its cross-process lock file.
    fn mirror_paths(&self, key: &str) -> (PathBuf, PathBuf) {
        let root = &self.inner.root;
        (
            root.join("mirrors").join(key),
            root.join("locks").join(format!("{key}.lock")),
        )
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<LastListing>> {
        // A poisoned map only means another thread panicked while inserting; the map is intact.
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }
}

/// Takes an exclusive advisory lock on `path`, so processes sharing a cache root never write
/// one mirror at once; the OS releases it when a process dies.
fn lock_mirror(path: &Path) -> Result<std::fs::File, GitError> {
    let io = |source| GitError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| GitError::Task(err.to_string()))?
}

/// The most recently used finished checkout in `dir` (one repository's), to link unchanged
/// files from. Collection runs under the same mirror lock as the caller, so it stays in place.
fn latest_checkout(dir: &Path) -> Option<(gix::ObjectId, PathBuf)> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            // Finished checkouts are named by their commit; staging and trash start with '.'.
            let commit = is_full_sha(&name)
                .then(|| gix::ObjectId::from_hex(name.as_bytes()).ok())
                .flatten()?;
            let used = entry.metadata().and_then(|m| m.modified()).ok()?;
            Some((used, commit, entry.path()))
        })
        .max_by_key(|(used, ..)| *used)
        .map(|(_, commit, path)| (commit, path))
}

fn is_full_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The remote ref names `revision` may denote, in order of preference.
fn candidate_refs(revision: &str) -> Vec<String> {
    if revision.is_empty() || revision == "HEAD" {
        vec!["HEAD".to_string()]
    } else if revision.starts_with("refs/") {
        vec![revision.to_string()]
    } else {
        vec![
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}"),
        ]
    }
}

fn find_ref(refs: &[Ref], candidates: &[String]) -> Option<gix::ObjectId> {
    candidates.iter().find_map(|wanted| {
        refs.iter()
            .filter_map(ref_target)
            .find(|(name, _)| *name == wanted.as_bytes())
            .map(|(_, id)| id)
    })
}

fn mirror_refspecs(extra: Option<&str>) -> Vec<String> {
    let mut specs: Vec<String> = MIRROR_REFSPECS.iter().map(|s| s.to_string()).collect();
    if let Some(extra) = extra {
        specs.push(extra.to_string());
    }
    specs
}

/// Resolves `revision`, answering from `shared` (a fresh enough listing made for another call)
/// when it names a commit the mirror holds; returns the commit and the listing made, if any.
fn resolve_blocking(
    mirror: &Path,
    source: &Source,
    revision: &str,
    shared: Option<&[Ref]>,
) -> Result<(String, Option<Vec<Ref>>), GitError> {
    let repo = open_mirror(mirror, source)?;
    if is_full_sha(revision) {
        let id = ensure_commit(&repo, source, revision)?;
        return Ok((id.to_string(), None));
    }
    let candidates = candidate_refs(revision);
    // Anything the shared listing cannot answer (a ref it did not cover, a commit not yet
    // fetched) falls through to a listing of our own.
    if let Some(commit) = shared
        .and_then(|refs| find_ref(refs, &candidates))
        .and_then(|target| find_commit(&repo, &target))
    {
        tracing::debug!(url = %source.url, revision, %commit, "resolved from a shared listing");
        return Ok((commit.to_string(), None));
    }
    // Refs outside heads/tags (e.g. refs/pull/1/head) are fetched by name, without storing them.
    let extra = candidates
        .first()
        .filter(|r| {
            r.starts_with("refs/") && !r.starts_with("refs/heads/") && !r.starts_with("refs/tags/")
        })
        .map(String::as_str);
    let refs = fetch(&repo, source, &mirror_refspecs(extra), |refs| {
        find_ref(refs, &candidates).is_some_and(|id| find_commit(&repo, &id).is_some())
    })?;
    let target = find_ref(&refs, &candidates).ok_or_else(|| GitError::RevisionNotFound {
        revision: revision.to_string(),
    })?;
    let commit = find_commit(&repo, &target).ok_or_else(|| {
        read_error(
            &source.url,
            revision,
            format!("{target} is not a commit or was not received"),
        )
    })?;
    tracing::debug!(url = %source.url, revision, %commit, "resolved revision");
    Ok((commit.to_string(), Some(refs)))
}

/// Makes sure the mirror has commit `sha`: fetch all branches and tags, then the commit itself.
fn ensure_commit(
    repo: &gix::Repository,
    source: &Source,
    sha: &str,
) -> Result<gix::ObjectId, GitError> {
    let not_found = || GitError::RevisionNotFound {
        revision: sha.to_string(),
    };
    let id = gix::ObjectId::from_hex(sha.as_bytes()).map_err(|_| not_found())?;
    if let Some(commit) = find_commit(repo, &id) {
        return Ok(commit);
    }
    fetch(repo, source, &mirror_refspecs(None), |_| false)?;
    if let Some(commit) = find_commit(repo, &id) {
        return Ok(commit);
    }
    // An unadvertised commit (e.g. after a force push); servers refuse it unless they allow
    // reachable or any SHA in "want", in which case the answer is still "not found".
    let by_sha = format!("+{sha}:refs/capstan/commits/{sha}");
    match fetch(repo, source, &[by_sha], |_| false) {
        Ok(_) | Err(GitError::Fetch(_)) => find_commit(repo, &id).ok_or_else(not_found),
        Err(err) => Err(err),
    }
}

fn checkout_blocking(
    mirror: &Path,
    source: &Source,
    commit: &str,
    dir: &Path,
    dest: &Path,
    limits: &GitLimits,
) -> Result<(), GitError> {
    if dest.is_dir() {
        gc::touch(dest);
        return Ok(());
    }
    let repo = open_mirror(mirror, source)?;
    let id = ensure_commit(&repo, source, commit)?;
    std::fs::create_dir_all(dir).map_err(|source| GitError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(dir)
        .map_err(|source| GitError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    let previous = latest_checkout(dir);
    let previous = previous.as_ref().map(|(commit, path)| Previous {
        commit: *commit,
        dir: path,
    });
    write_commit_tree(&repo, &source.url, id, staging.path(), limits, previous)?;
    let staged = staging.keep();
    if let Err(err) = std::fs::rename(&staged, dest) {
        // Another process may have won the race; its checkout is as good as ours.
        let _ = std::fs::remove_dir_all(&staged);
        if !dest.is_dir() {
            return Err(GitError::Io {
                path: dest.to_path_buf(),
                source: err,
            });
        }
    }
    gc::touch(dest);
    tracing::debug!(url = %source.url, commit, path = %dest.display(), "checked out commit");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_map_to_refs() {
        assert_eq!(candidate_refs(""), vec!["HEAD"]);
        assert_eq!(candidate_refs("HEAD"), vec!["HEAD"]);
        assert_eq!(candidate_refs("refs/tags/v1"), vec!["refs/tags/v1"]);
        assert_eq!(
            candidate_refs("main"),
            vec!["refs/heads/main", "refs/tags/main"]
        );
    }
}
