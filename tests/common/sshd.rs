//! An OpenSSH server for tests: Debian's `sshd` on 127.0.0.1 with its own host key, authorized
//! key and configuration, serving the test's repositories to the current user.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sshd -D`; killed when dropped.
pub struct SshServer {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    child: Child,
    user: String,
}

/// A freshly generated ed25519 key pair.
pub struct KeyPair {
    /// The private key file's contents (OpenSSH format, no passphrase).
    pub private: String,
    /// The public key line.
    pub public: String,
}

/// Generates an ed25519 key pair with `ssh-keygen`.
pub fn keypair() -> KeyPair {
    let dir = tempfile::tempdir().expect("temp dir for key");
    let path = dir.path().join("key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "capstan-test", "-f"])
        .arg(&path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
    KeyPair {
        private: std::fs::read_to_string(&path).expect("read private key"),
        public: std::fs::read_to_string(path.with_extension("pub")).expect("read public key"),
    }
}

impl SshServer {
    /// Starts sshd accepting `authorized` (a public key line) for the current user.
    pub fn start(sshd: &Path, authorized: &str) -> SshServer {
        let dir = tempfile::tempdir().expect("temp dir for sshd");
        let host_key = dir.path().join("host_key");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .status()
            .expect("run ssh-keygen");
        assert!(status.success(), "ssh-keygen for the host key failed");
        let authorized_keys = dir.path().join("authorized_keys");
        std::fs::write(&authorized_keys, authorized).expect("write authorized_keys");
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPidFile none\n\
                 AcceptEnv GIT_PROTOCOL\n",
                host_key.display(),
                authorized_keys.display()
            ),
        )
        .expect("write sshd_config");
        if current_uid() == 0 {
            // sshd running as root insists on its privilege separation directory.
            std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = SshServer {
            dir,
            addr,
            child,
            user: current_user(),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `ssh://user@127.0.0.1:port/<path>` URL of a repository at `path` on this machine.
    pub fn url_for(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.addr.port(),
            path.display()
        )
    }

    /// The `known_hosts` line trusting this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub"))
            .expect("read host public key");
        let mut fields = public.split_whitespace();
        let kind = fields.next().expect("key type");
        let key = fields.next().expect("key");
        format!("[127.0.0.1]:{} {kind} {key}", self.addr.port())
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The current user's home directory as ssh sees it (the password database, not `$HOME`).
pub fn home_from_passwd() -> PathBuf {
    let user = current_user();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user.as_str()) && fields.len() > 5)
                .then(|| PathBuf::from(fields[5]))
        })
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()))
}
