//! Materialising a commit tree as a plain directory (blocking).
//!
//! Two passes: the trees are first walked without writing anything (names, duplicates, depth,
//! entry and byte totals against [`GitLimits`]), then written with calls that never follow a
//! link, so a hostile tree is refused before it costs disk or time and can never write outside
//! the checkout.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};

use gix::objs::tree::EntryKind;

use super::fetch::read_error;
use super::{GitError, GitLimits};

/// Trees nested deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 256;
/// Blobs are loaded whole into memory; bigger ones are left out of the checkout (no renderer
/// reads files anywhere near this size).
const MAX_BLOB_BYTES: u64 = 256 * 1024 * 1024;
/// Longer symlink targets than the OS accepts (PATH_MAX) are a broken or hostile tree.
const MAX_LINK_BYTES: u64 = 4096;

/// A finished checkout of another commit of the same repository, whose unchanged files the new
/// checkout hard-links instead of writing again.
pub(crate) struct Previous<'a> {
    /// Its commit.
    pub commit: gix::ObjectId,
    /// Its directory.
    pub dir: &'a Path,
}

/// Writes the tree of `commit` into the (existing, empty, private) directory `dest`.
///
/// Only what rendering needs is written: regular files, and symlinks whose target stays inside
/// the checkout. Submodules are skipped (their content is another repository). A file whose
/// blob and mode equal the same path's in `previous` is hard-linked from there: checkouts are
/// never written after they are finished, so sharing inodes is safe, and a commit that changes
/// three files of ten thousand costs three writes (docs/architecture.md, Git).
pub(crate) fn write_commit_tree(
    repo: &gix::Repository,
    url: &str,
    commit: gix::ObjectId,
    dest: &Path,
    limits: &GitLimits,
    previous: Option<Previous<'_>>,
) -> Result<(), GitError> {
    let what = commit.to_string();
    let commit_obj = repo
        .find_commit(commit)
        .map_err(|err| read_error(url, &what, err))?;
    let tree = commit_obj
        .tree_id()
        .map_err(|err| read_error(url, &what, err))?
        .detach();
    let mut walk = Measure {
        repo,
        url,
        commit: what,
        limits,
        seen: HashMap::new(),
    };
    walk.tree(tree, 0)?;
    // The previous tree is only an optimisation: if it cannot be read, everything is written.
    let previous = previous.and_then(|p| {
        let tree = repo.find_commit(p.commit).ok()?.tree_id().ok()?.detach();
        Some((tree, p.dir.to_path_buf()))
    });
    write_tree(repo, url, tree, dest, Path::new(""), previous.as_ref())
}

/// The entries of `tree` by name: object id and kind.
fn entries_of(
    repo: &gix::Repository,
    tree: gix::ObjectId,
) -> HashMap<Vec<u8>, (gix::ObjectId, EntryKind)> {
    let Ok(tree) = repo.find_tree(tree) else {
        return HashMap::new();
    };
    tree.iter()
        .flatten()
        .map(|e| (e.filename().to_vec(), (e.oid().to_owned(), e.mode().kind())))
        .collect()
}

/// What a tree expands to when written out.
#[derive(Clone, Copy, Default)]
struct Totals {
    entries: u64,
    bytes: u64,
    /// Levels of trees below this one.
    height: usize,
}

/// The read-only first pass. Totals are memoised per tree id, so a tree that names one subtree
/// many times (a "git bomb") costs one visit per distinct tree, not one per path.
struct Measure<'a> {
    repo: &'a gix::Repository,
    url: &'a str,
    commit: String,
    limits: &'a GitLimits,
    seen: HashMap<gix::ObjectId, Totals>,
}

impl Measure<'_> {
    fn tree(&mut self, id: gix::ObjectId, depth: usize) -> Result<Totals, GitError> {
        if let Some(totals) = self.seen.get(&id) {
            return Ok(*totals);
        }
        if depth > MAX_DEPTH {
            return Err(read_error(
                self.url,
                &id.to_string(),
                "trees nested too deeply",
            ));
        }
        let repo = self.repo;
        let url = self.url;
        let tree = repo
            .find_tree(id)
            .map_err(|err| read_error(url, "a tree", err))?;
        let mut names: HashSet<&[u8]> = HashSet::new();
        let mut totals = Totals::default();
        for entry in tree.iter() {
            let entry = entry.map_err(|err| read_error(url, "a tree entry", err))?;
            let name: &[u8] = entry.inner.filename.as_ref();
            if !is_safe_component(name) {
                return Err(read_error(
                    url,
                    "a tree entry",
                    format!(
                        "refusing unsafe file name {:?}",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            // Two entries of one name (a link and a file, say) would make the second write land
            // wherever the first points; git's fsck refuses such trees, but servers serve them.
            if !names.insert(name) {
                return Err(read_error(
                    url,
                    &id.to_string(),
                    format!(
                        "refusing a tree with two entries named {:?}",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            let oid = entry.oid().to_owned();
            match entry.mode().kind() {
                EntryKind::Tree => {
                    let sub = self.tree(oid, depth + 1)?;
                    if depth + 1 + sub.height > MAX_DEPTH {
                        return Err(read_error(url, &oid.to_string(), "trees nested too deeply"));
                    }
                    totals.entries = totals.entries.saturating_add(1).saturating_add(sub.entries);
                    totals.bytes = totals.bytes.saturating_add(sub.bytes);
                    totals.height = totals.height.max(sub.height + 1);
                }
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    let size = blob_size(repo, url, oid)?;
                    if size <= MAX_BLOB_BYTES {
                        totals.entries = totals.entries.saturating_add(1);
                        totals.bytes = totals.bytes.saturating_add(size);
                    }
                }
                EntryKind::Link => {
                    let size = blob_size(repo, url, oid)?;
                    if size > MAX_LINK_BYTES {
                        return Err(read_error(url, &oid.to_string(), "symlink target too long"));
                    }
                    totals.entries = totals.entries.saturating_add(1);
                    totals.bytes = totals.bytes.saturating_add(size);
                }
                EntryKind::Commit => {}
            }
            // A subtree's totals never exceed the whole checkout's, so stop at the first excess.
            self.check(&totals)?;
        }
        self.seen.insert(id, totals);
        Ok(totals)
    }

    fn check(&self, totals: &Totals) -> Result<(), GitError> {
        let exceeded = if totals.entries > self.limits.max_checkout_entries {
            Some((
                "entries",
                self.limits.max_checkout_entries,
                "max_checkout_entries",
            ))
        } else if totals.bytes > self.limits.max_checkout_bytes {
            Some((
                "bytes",
                self.limits.max_checkout_bytes,
                "max_checkout_bytes",
            ))
        } else {
            None
        };
        match exceeded {
            Some((what, limit, key)) => Err(GitError::CheckoutTooLarge {
                url: self.url.to_string(),
                commit: self.commit.clone(),
                what,
                limit,
                key,
            }),
            None => Ok(()),
        }
    }
}

fn blob_size(repo: &gix::Repository, url: &str, oid: gix::ObjectId) -> Result<u64, GitError> {
    Ok(repo
        .find_header(oid)
        .map_err(|err| read_error(url, &oid.to_string(), err))?
        .size())
}

/// The second pass; `rel` is `dest`'s path inside the checkout. Every directory, file and link
/// is created new (`mkdir`, `O_CREAT|O_EXCL|O_NOFOLLOW`, `symlink`), none of which follows a
/// link at the last component, and every parent was created by this pass as a directory.
///
/// `previous` is the same directory's tree in the previous checkout and where it is on disk:
/// every directory on that path was written as a directory (it is a tree there), so linking
/// from it follows no symlink.
fn write_tree(
    repo: &gix::Repository,
    url: &str,
    tree: gix::ObjectId,
    dest: &Path,
    rel: &Path,
    previous: Option<&(gix::ObjectId, std::path::PathBuf)>,
) -> Result<(), GitError> {
    let before = previous.map(|(tree, _)| entries_of(repo, *tree));
    let tree = repo
        .find_tree(tree)
        .map_err(|err| read_error(url, "a tree", err))?;
    for entry in tree.iter() {
        let entry = entry.map_err(|err| read_error(url, "a tree entry", err))?;
        let name = OsStr::from_bytes(entry.filename().as_ref());
        let path = dest.join(name);
        let oid = entry.oid().to_owned();
        let kind = entry.mode().kind();
        let was = before
            .as_ref()
            .and_then(|b| b.get(entry.filename().as_ref() as &[u8]).copied());
        let old_path = previous.map(|(_, dir)| dir.join(name));
        match kind {
            EntryKind::Tree => {
                std::fs::create_dir(&path).map_err(|source| io(&path, source))?;
                let sub = match (was, old_path) {
                    (Some((old, EntryKind::Tree)), Some(dir)) => Some((old, dir)),
                    _ => None,
                };
                write_tree(repo, url, oid, &path, &rel.join(name), sub.as_ref())?;
            }
            EntryKind::Blob | EntryKind::BlobExecutable
                if was == Some((oid, kind))
                    && old_path
                        .as_ref()
                        .is_some_and(|old| std::fs::hard_link(old, &path).is_ok()) => {}
            EntryKind::Blob | EntryKind::BlobExecutable => {
                if blob_size(repo, url, oid)? > MAX_BLOB_BYTES {
                    tracing::warn!(url, path = %rel.join(name).display(), "file too large, left out of the checkout");
                    continue;
                }
                let blob = repo
                    .find_blob(oid)
                    .map_err(|err| read_error(url, &oid.to_string(), err))?;
                let executable = entry.mode().kind() == EntryKind::BlobExecutable;
                write_file(&path, &blob.data, executable)?;
            }
            EntryKind::Link => {
                let blob = repo
                    .find_blob(oid)
                    .map_err(|err| read_error(url, &oid.to_string(), err))?;
                if !link_stays_inside(rel, &blob.data) {
                    tracing::warn!(url, path = %rel.join(name).display(), "symlink leaving the repository, left out of the checkout");
                    continue;
                }
                std::os::unix::fs::symlink(OsStr::from_bytes(&blob.data), &path)
                    .map_err(|source| io(&path, source))?;
            }
            EntryKind::Commit => {}
        }
    }
    Ok(())
}

fn write_file(path: &Path, data: &[u8], executable: bool) -> Result<(), GitError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(path)
        .map_err(|source| io(path, source))?;
    file.write_all(data).map_err(|source| io(path, source))?;
    if executable {
        // Through the handle: a path-based chmod would follow a link swapped in meanwhile.
        file.set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(|source| io(path, source))?;
    }
    Ok(())
}

/// Whether a link in directory `rel` (relative to the checkout root) pointing at `target`
/// resolves, by its own components, to a path inside the checkout. The renderer still confines
/// every read, since chains of links can resolve differently on disk.
fn link_stays_inside(rel: &Path, target: &[u8]) -> bool {
    if target.is_empty() || target.contains(&0) {
        return false;
    }
    let mut depth = rel.components().count();
    for component in Path::new(OsStr::from_bytes(target)).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// A single path component that cannot climb out of, or into the metadata of, a directory.
fn is_safe_component(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.eq_ignore_ascii_case(b".git")
        && !name.contains(&b'/')
        && !name.contains(&0)
}

fn io(path: &Path, source: std::io::Error) -> GitError {
    GitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_components_that_escape() {
        for bad in [&b""[..], b".", b"..", b".git", b".GIT", b"a/b", b"a\0"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component(b"deploy.yaml"));
        assert!(is_safe_component(b"..hidden"));
    }

    #[test]
    fn links_are_judged_from_their_own_directory() {
        let root = Path::new("");
        let app = Path::new("apps/web");
        assert!(link_stays_inside(root, b"apps/web/a.yaml"));
        assert!(link_stays_inside(app, b"../../shared/s.yaml"));
        assert!(link_stays_inside(app, b"./x/../y"));
        assert!(!link_stays_inside(app, b"../../../etc/passwd"));
        assert!(!link_stays_inside(root, b".."));
        assert!(!link_stays_inside(root, b"a/../../b"));
        assert!(!link_stays_inside(app, b"/etc/passwd"));
        assert!(!link_stays_inside(app, b""));
    }
}
