//! The sandbox's kubeconfig: the document, the kube client built from it, and writing it to a file.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use super::SandboxError;

/// A kubeconfig document for this server (JSON strings are valid YAML scalars).
pub(super) fn document(url: &str, token: Option<&str>, ca_pem: Option<&str>) -> String {
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    let user = match token {
        Some(t) => format!("\n    token: {}", quote(t)),
        None => " {}".to_string(),
    };
    let ca = match ca_pem {
        Some(pem) => format!(
            "\n    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: capstan-sandbox\n  cluster:\n    server: {}{ca}\nusers:\n- name: capstan-sandbox\n  user:{user}\ncontexts:\n- name: capstan-sandbox\n  context:\n    cluster: capstan-sandbox\n    user: capstan-sandbox\n    namespace: default\ncurrent-context: capstan-sandbox\npreferences: {{}}\n",
        quote(url)
    )
}

/// A kube client configured exactly as kubectl would be by `document`: same CA, same token.
pub(super) async fn client(document: &str) -> Result<kube::Client, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Client(e.to_string());
    let kc = kube::config::Kubeconfig::from_yaml(document).map_err(|e| err(&e))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(&e))?;
    kube::Client::try_from(config).map_err(|e| err(&e))
}

/// Writes `bytes` to `path` readable by the owner only, never through a link planted at `path`.
///
/// The content goes to a new file beside the target (0600, `O_NOFOLLOW`, `O_EXCL`) that is then
/// renamed over it: rename replaces a symlink instead of following it, and readers never see half
/// a file.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!(".{}.{suffix:016x}.tmp", name.to_string_lossy()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    // The umask may have narrowed the mode; set it through the handle, not the path.
    let written = file
        .set_permissions(Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}
