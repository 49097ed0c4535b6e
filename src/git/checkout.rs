//! Materialising a commit tree as a plain directory (blocking).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gix::objs::tree::EntryKind;

use super::GitError;
use super::fetch::read_error;

/// Trees nested deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 256;
/// Blobs are loaded whole into memory; bigger ones are left out of the checkout (no renderer
/// reads files anywhere near this size).
const MAX_BLOB_BYTES: u64 = 256 * 1024 * 1024;

/// Writes the tree of `commit` into the (existing, empty) directory `dest`.
///
/// Symlinks are written as they are in Git; the renderers decide whether they may be followed.
/// Submodules become empty directories (their content is another repository).
pub(crate) fn write_commit_tree(
    repo: &gix::Repository,
    url: &str,
    commit: gix::ObjectId,
    dest: &Path,
) -> Result<(), GitError> {
    let what = commit.to_string();
    let commit = repo
        .find_commit(commit)
        .map_err(|err| read_error(url, &what, err))?;
    let tree = commit
        .tree_id()
        .map_err(|err| read_error(url, &what, err))?;
    write_tree(repo, url, tree.detach(), dest, 0)
}

fn write_tree(
    repo: &gix::Repository,
    url: &str,
    tree: gix::ObjectId,
    dest: &Path,
    depth: usize,
) -> Result<(), GitError> {
    if depth > MAX_DEPTH {
        return Err(read_error(
            url,
            &tree.to_string(),
            "trees nested too deeply",
        ));
    }
    let tree = repo
        .find_tree(tree)
        .map_err(|err| read_error(url, "a tree", err))?;
    for entry in tree.iter() {
        let entry = entry.map_err(|err| read_error(url, "a tree entry", err))?;
        let name = entry.filename();
        if !is_safe_component(name.as_ref()) {
            return Err(read_error(
                url,
                "a tree entry",
                format!("refusing unsafe file name {:?}", name.to_string()),
            ));
        }
        let path = dest.join(OsStr::from_bytes(name.as_ref()));
        let oid = entry.oid().to_owned();
        match entry.mode().kind() {
            EntryKind::Tree => {
                create_dir(&path)?;
                write_tree(repo, url, oid, &path, depth + 1)?;
            }
            EntryKind::Blob | EntryKind::BlobExecutable => {
                let size = repo
                    .find_header(oid)
                    .map_err(|err| read_error(url, &oid.to_string(), err))?
                    .size();
                if size > MAX_BLOB_BYTES {
                    tracing::warn!(url, path = %path.display(), size, "file too large, left out of the checkout");
                    continue;
                }
                let blob = repo
                    .find_blob(oid)
                    .map_err(|err| read_error(url, &oid.to_string(), err))?;
                std::fs::write(&path, &blob.data).map_err(|source| io(&path, source))?;
                if entry.mode().kind() == EntryKind::BlobExecutable {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(|source| io(&path, source))?;
                }
            }
            EntryKind::Link => {
                let size = repo
                    .find_header(oid)
                    .map_err(|err| read_error(url, &oid.to_string(), err))?
                    .size();
                if size > 4096 {
                    return Err(read_error(url, &oid.to_string(), "symlink target too long"));
                }
                let blob = repo
                    .find_blob(oid)
                    .map_err(|err| read_error(url, &oid.to_string(), err))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&blob.data), &path)
                    .map_err(|source| io(&path, source))?;
            }
            EntryKind::Commit => create_dir(&path)?,
        }
    }
    Ok(())
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

fn create_dir(path: &Path) -> Result<(), GitError> {
    std::fs::create_dir(path).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> GitError {
    GitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::is_safe_component;

    #[test]
    fn refuses_components_that_escape() {
        for bad in [&b""[..], b".", b"..", b".git", b".GIT", b"a/b", b"a\0"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component(b"deploy.yaml"));
        assert!(is_safe_component(b"..hidden"));
    }
}
