//! A real Git repository built with the `git` CLI in a temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A non-bare repository on branch `main` with a configured author, at `<tempdir>/repo`.
pub struct TestRepo {
    root: tempfile::TempDir,
    path: PathBuf,
}

impl TestRepo {
    /// Creates an empty repository (`git init -b main`) named `repo`.
    pub fn new() -> TestRepo {
        TestRepo::named("repo")
    }

    /// Creates an empty repository in a fresh temporary directory, as `<root>/<name>`.
    pub fn named(name: &str) -> TestRepo {
        let root = tempfile::tempdir().expect("create temp dir for test repo");
        let path = root.path().join(name);
        std::fs::create_dir(&path).expect("create test repo dir");
        let repo = TestRepo { root, path };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Capstan Test"]);
        repo.git(&["config", "user.email", "test@capstan.dev"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo.git(&["config", "tag.gpgsign", "false"]);
        // Lets the smart HTTP backend serve it without a separate export marker.
        repo.git(&["config", "http.receivepack", "false"]);
        repo.git(&["config", "uploadpack.allowAnySHA1InWant", "true"]);
        repo
    }

    /// The working tree (also the repository served by `file_url`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `path` (relative), creating parent directories, and stages it.
    pub fn write(&self, path: &str, contents: &str) -> &Self {
        let full = self.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&full, contents).expect("write file in test repo");
        self.git(&["add", "--", path]);
        self
    }

    /// Removes `path` (file or directory) from the tree and the index.
    pub fn remove(&self, path: &str) -> &Self {
        self.git(&["rm", "-r", "-q", "--", path]);
        self
    }

    /// Creates a symbolic link `path` pointing at `target` (verbatim) and stages it.
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        let full = self.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::os::unix::fs::symlink(target, &full).expect("create symlink in test repo");
        self.git(&["add", "--", path]);
        self
    }

    /// Commits everything staged (allowing an empty commit) and returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// The commit id of HEAD.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Creates an annotated tag `name` at HEAD.
    pub fn tag(&self, name: &str) -> &Self {
        self.git(&["tag", "-a", "-m", name, name]);
        self
    }

    /// Creates a lightweight tag `name` at HEAD.
    pub fn lightweight_tag(&self, name: &str) -> &Self {
        self.git(&["tag", name]);
        self
    }

    /// Creates branch `name` at HEAD without switching to it.
    pub fn branch(&self, name: &str) -> &Self {
        self.git(&["branch", name]);
        self
    }

    /// Switches to branch `name` (creating it at HEAD when missing).
    pub fn switch(&self, name: &str) -> &Self {
        if self
            .try_git(&["rev-parse", "--verify", "-q", &format!("refs/heads/{name}")])
            .is_some()
        {
            self.git(&["switch", "-q", name]);
        } else {
            self.git(&["switch", "-q", "-c", name]);
        }
        self
    }

    /// A `file://` URL of this repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Runs `git args…` in the repository and returns trimmed stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Runs `git args…` with `input` on stdin and returns trimmed stdout; panics on failure.
    /// Branch `branch` at a commit whose tree is a "git bomb": one blob, a tree of ten entries
    /// naming it, and seven more levels of ten entries each naming the level below — a few
    /// hundred bytes of objects, 10^8 files once written out. Returns the commit.
    pub fn git_bomb(&self, branch: &str) -> String {
        let blob = self.git_with_input(&["hash-object", "-w", "--stdin"], "boom\n");
        let listing: String = (0..10)
            .map(|i| format!("100644 blob {blob}\tf{i}.yaml\n"))
            .collect();
        let mut tree = self.git_with_input(&["mktree"], &listing);
        for _ in 0..7 {
            let listing: String = (0..10)
                .map(|i| format!("040000 tree {tree}\td{i}\n"))
                .collect();
            tree = self.git_with_input(&["mktree"], &listing);
        }
        let commit = self.git(&["commit-tree", &tree, "-m", branch]);
        self.git(&["update-ref", &format!("refs/heads/{branch}"), &commit]);
        commit
    }

    pub fn git_with_input(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run git");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("write git stdin");
        let output = child.wait_with_output().expect("wait for git");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn try_git(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// The directory containing this repository (a `GIT_PROJECT_ROOT` for `GitHttpServer`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The repository's directory name (its name under `root` for `GitHttpServer::url_for`).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
