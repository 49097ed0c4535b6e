//! Files and directories only the owner may read: data directories hold tokens, Git caches and
//! cluster state, so other local users must not be able to list or read them.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory Capstan creates for its own data.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file holding a secret.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents with mode 0700; existing directories are left as they are
/// (they may be mounted volumes whose mode belongs to the operator).
pub fn create_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Writes `bytes` to a file that must not exist yet, created 0600 (parents 0700).
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` to `path` readable by the owner only, never through a link planted at `path`.
///
/// The content goes to a new file beside the target (0600, `O_NOFOLLOW`, `O_EXCL`) that is then
/// renamed over it: rename replaces a symlink instead of following it, and readers never see half
/// a file.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path does not name a file",
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!(".{}.{suffix:016x}.tmp", name.to_string_lossy()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    // The umask may have narrowed the mode; set it through the handle, not the path.
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn created_directories_are_private_at_every_level() {
        let root = tempfile::tempdir().expect("tempdir");
        let deep = root.path().join("data/git/cache");
        create_dir(&deep).expect("create");
        assert_eq!(mode(&root.path().join("data")), 0o700);
        assert_eq!(mode(&root.path().join("data/git")), 0o700);
        assert_eq!(mode(&deep), 0o700);
    }

    #[test]
    fn new_files_are_private_and_never_overwritten() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("dir/secret");
        write_new(&path, b"x").expect("write");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("dir")), 0o700);
        assert!(
            write_new(&path, b"y").is_err(),
            "create_new refuses to replace"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"x");
    }

    #[test]
    fn replacing_tightens_the_mode_and_replaces_a_symlink_without_following_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("kubeconfig");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_replacing(&path, b"new").expect("replace");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"new");

        let target = root.path().join("elsewhere");
        std::fs::write(&target, "untouched").expect("write");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        write_replacing(&link, b"mine").expect("replace the link");
        assert_eq!(std::fs::read(&target).expect("read"), b"untouched");
        let meta = std::fs::symlink_metadata(&link).expect("metadata");
        assert!(meta.file_type().is_file(), "the link itself was replaced");
        assert_eq!(mode(&link), 0o600);
    }
}
