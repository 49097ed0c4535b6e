//! Fetching over SSH: gix spawns the `ssh` program, which Capstan pins to exactly the configured
//! key and host keys for each fetch, never the user's `~/.ssh`, agent or configuration files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::protocol::transport::client::blocking_io::{Transport, ssh};

use super::GitError;
use crate::private_fs;

/// An SSH private key and the host keys it may be presented to.
#[derive(Clone, PartialEq, Eq)]
pub struct SshKey {
    /// The private key in OpenSSH or PEM format (unencrypted; nobody can type a passphrase).
    pub private_key: String,
    /// `known_hosts` lines naming the servers to trust (`[host]:port key-type base64` for a
    /// port other than 22).
    pub known_hosts: String,
    /// Accept any host key: a man in the middle can then read the repository. Off by default.
    pub insecure_ignore_host_key: bool,
}

impl std::fmt::Debug for SshKey {
    // The private key must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKey")
            .field("private_key", &"<redacted>")
            .field("known_hosts_lines", &self.known_hosts.lines().count())
            .field("insecure_ignore_host_key", &self.insecure_ignore_host_key)
            .finish()
    }
}

/// The private files of one SSH fetch: key, known hosts and ssh's log, in a 0700 temporary
/// directory removed when this is dropped.
pub(crate) struct SshSession {
    dir: tempfile::TempDir,
    command: String,
}

impl SshSession {
    /// Writes the key and host keys (0600) and prepares the `ssh` command line using only them.
    pub(crate) fn new(key: &SshKey, timeout: Duration) -> Result<SshSession, GitError> {
        let dir = tempfile::Builder::new()
            .prefix("capstan-ssh-")
            .tempdir()
            .map_err(|source| GitError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let write = |name: &str, text: &str| -> Result<PathBuf, GitError> {
            let path = dir.path().join(name);
            // OpenSSH refuses a key file without its final newline.
            let mut bytes = text.trim_end().as_bytes().to_vec();
            bytes.push(b'\n');
            private_fs::write_new(&path, &bytes).map_err(|source| GitError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        };
        let identity = write("id", &key.private_key)?;
        let known_hosts = write("known_hosts", &key.known_hosts)?;
        let log = dir.path().join("ssh.log");
        let command = ssh_command(
            &identity,
            &known_hosts,
            &log,
            key.insecure_ignore_host_key,
            timeout,
        );
        Ok(SshSession { dir, command })
    }

    /// A transport to `url` that runs our `ssh` command.
    pub(crate) fn connect(&self, url: &str) -> Result<Box<dyn Transport + Send>, String> {
        let url = gix::Url::try_from(url).map_err(|err| err.to_string())?;
        let options = ssh::connect::Options {
            command: Some(self.command.clone().into()),
            disallow_shell: false,
            kind: Some(ssh::ProgramKind::Ssh),
        };
        let transport = ssh::connect(url, gix::protocol::transport::Protocol::V2, options, false)
            .map_err(|err| err.to_string())?;
        Ok(Box::new(transport))
    }

    /// What ssh itself reported about a failed connection, as a `GitError` when it names a
    /// refused key or an untrusted host key.
    pub(crate) fn failure(&self, url: &str) -> Option<GitError> {
        let log = std::fs::read_to_string(self.dir.path().join("ssh.log")).ok()?;
        classify(url, &log)
    }
}

/// The `ssh` invocation: no configuration file (so neither `~/.ssh/config` nor
/// `/etc/ssh/ssh_config` apply), only our identity (no agent, no default keys), only our
/// known_hosts (never written), no prompts, and diagnostics into our log file.
fn ssh_command(
    identity: &Path,
    known_hosts: &Path,
    log: &Path,
    insecure_ignore_host_key: bool,
    timeout: Duration,
) -> String {
    let (strict, known) = if insecure_ignore_host_key {
        ("no", "/dev/null".to_string())
    } else {
        ("yes", shell_quote(&known_hosts.display().to_string()))
    };
    let connect_secs = timeout.as_secs().clamp(1, 60);
    [
        "ssh -F /dev/null".to_string(),
        format!("-i {}", shell_quote(&identity.display().to_string())),
        "-o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes".to_string(),
        "-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no".to_string(),
        format!("-o StrictHostKeyChecking={strict} -o UserKnownHostsFile={known}"),
        "-o GlobalKnownHostsFile=/dev/null -o UpdateHostKeys=no -o CheckHostIP=no".to_string(),
        "-o ControlMaster=no -o ControlPath=none -o ForwardAgent=no".to_string(),
        format!("-o ConnectTimeout={connect_secs} -o ServerAliveInterval=15"),
        format!(
            "-o LogLevel=ERROR -E {}",
            shell_quote(&log.display().to_string())
        ),
    ]
    .join(" ")
}

/// `text` in single quotes for `sh`, so a temporary directory's name cannot become syntax.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Maps ssh's own messages to the errors a user can act on.
fn classify(url: &str, log: &str) -> Option<GitError> {
    if log.contains("Permission denied") {
        return Some(GitError::Auth);
    }
    let host_key = [
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "Host key verification failed",
        "host key is known for",
    ];
    if host_key.iter().any(|needle| log.contains(needle)) {
        let reason = if log.contains("HAS CHANGED") {
            "the server's host key does not match the one in known_hosts"
        } else {
            "the server's host key is not in the configured known_hosts"
        };
        return Some(GitError::HostKey {
            url: url.to_string(),
            reason: reason.to_string(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_uses_only_our_files_and_quotes_them() {
        let command = ssh_command(
            Path::new("/tmp/a'b/id"),
            Path::new("/tmp/kh"),
            Path::new("/tmp/log"),
            false,
            Duration::from_secs(30),
        );
        assert!(command.starts_with("ssh -F /dev/null "), "{command}");
        assert!(command.contains(r"-i '/tmp/a'\''b/id'"), "{command}");
        assert!(command.contains("StrictHostKeyChecking=yes"), "{command}");
        assert!(
            command.contains("UserKnownHostsFile='/tmp/kh'"),
            "{command}"
        );
        assert!(command.contains("IdentitiesOnly=yes"), "{command}");
        let insecure = ssh_command(
            Path::new("/i"),
            Path::new("/kh"),
            Path::new("/l"),
            true,
            Duration::from_secs(30),
        );
        assert!(insecure.contains("StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"));
    }

    #[test]
    fn ssh_messages_become_readable_errors() {
        assert!(matches!(
            classify("u", "git@h: Permission denied (publickey).\n"),
            Some(GitError::Auth)
        ));
        let changed = "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n";
        match classify("ssh://h/r", changed) {
            Some(GitError::HostKey { reason, .. }) => assert!(reason.contains("does not match")),
            other => panic!("{other:?}"),
        }
        let unknown = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n";
        match classify("ssh://h/r", unknown) {
            Some(GitError::HostKey { reason, .. }) => assert!(reason.contains("not in")),
            other => panic!("{other:?}"),
        }
        assert!(classify("u", "kex_exchange_identification: Connection closed").is_none());
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = SshKey {
            private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretbits\n".into(),
            known_hosts: "h ssh-ed25519 AAAA\n".into(),
            insecure_ignore_host_key: false,
        };
        assert!(!format!("{key:?}").contains("secretbits"));
    }
}
