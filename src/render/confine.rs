//! Path confinement: nothing outside the checkout is ever read (invariant 6).

use std::path::{Component, Path, PathBuf};

use super::RenderError;

/// Resolves `relative` inside `root`: refuses absolute paths and `..` that climb out, follows
/// symlinks only while the final target stays inside `root`, and returns the canonical path.
pub fn confine(root: &Path, relative: &str) -> Result<PathBuf, RenderError> {
    let normalised = normalise(relative)?;
    let root = canonical_root(root)?;
    resolve_inside(&root, &root.join(&normalised), relative)
}

/// The lexically normalised form of a repository-relative path; "" and "." are the root.
pub(crate) fn normalise(relative: &str) -> Result<PathBuf, RenderError> {
    let escapes = || RenderError::PathEscapes {
        path: relative.to_string(),
    };
    if relative.contains('\0') {
        return Err(escapes());
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(escapes)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(escapes()),
        }
    }
    Ok(parts.iter().collect())
}

/// The canonical form of the checkout root itself.
pub(crate) fn canonical_root(root: &Path) -> Result<PathBuf, RenderError> {
    root.canonicalize().map_err(|source| RenderError::Io {
        path: root.to_path_buf(),
        source,
    })
}

/// Canonicalises `path` (following every symlink) and checks it is `root` or below it.
/// `shown` is the repository-relative name used in errors.
pub(crate) fn resolve_inside(
    root: &Path,
    path: &Path,
    shown: &str,
) -> Result<PathBuf, RenderError> {
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(real),
        Ok(_) => Err(RenderError::PathEscapes {
            path: shown.to_string(),
        }),
        Err(err) if is_loop(&err) => Err(RenderError::SymlinkLoop {
            path: shown.to_string(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink whose target would be outside still counts as an escape.
            if dangling_target_escapes(root, path) {
                Err(RenderError::PathEscapes {
                    path: shown.to_string(),
                })
            } else {
                Err(RenderError::NotFound {
                    path: shown.to_string(),
                })
            }
        }
        Err(source) => Err(RenderError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn is_loop(err: &std::io::Error) -> bool {
    // ELOOP is 40 on Linux and 62 on the BSDs and macOS.
    const ELOOP: i32 = if cfg!(target_os = "linux") { 40 } else { 62 };
    err.raw_os_error() == Some(ELOOP)
}

fn dangling_target_escapes(root: &Path, path: &Path) -> bool {
    let Ok(target) = std::fs::read_link(path) else {
        return false;
    };
    if target.is_absolute() {
        return !target.starts_with(root);
    }
    let Some(parent) = path.parent() else {
        return false;
    };
    let mut depth: Vec<&std::ffi::OsStr> = match parent.strip_prefix(root) {
        Ok(inside) => inside.iter().collect(),
        Err(_) => return true,
    };
    for component in target.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return true;
                }
            }
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_refuses_climbing_out_and_absolute_paths() {
        assert_eq!(normalise("").unwrap(), PathBuf::new());
        assert_eq!(normalise(".").unwrap(), PathBuf::new());
        assert_eq!(normalise("a/./b/../c/").unwrap(), PathBuf::from("a/c"));
        for bad in ["..", "../x", "a/../../x", "/etc", "/", "a\0b"] {
            assert!(
                matches!(normalise(bad), Err(RenderError::PathEscapes { .. })),
                "{bad}"
            );
        }
    }
}
