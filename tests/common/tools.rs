//! External tools the tests need (helm, Debian's jsonnet, sshd, chromium and chromedriver, npm's
//! oidc-provider, slapd and ldapadd, SimpleSAMLphp and php):
//! installed on first use with `scripts/install-tools`, so `cargo test` alone passes on a fresh
//! machine; a tool that cannot be installed fails the test loudly instead of skipping it.

#![allow(dead_code)]
use std::path::PathBuf;
use std::sync::Mutex;

/// The oidc-provider version `scripts/install-tools oidc-provider` installs (keep both equal).
pub const OIDC_PROVIDER_VERSION: &str = "9.13.3";

static INSTALLED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The path of `tool` ("helm", "jsonnet", "sshd", "chromium", "chromedriver", "slapd", "ldapadd",
/// "php"; for "oidc-provider" the directory holding its node_modules, for "simplesamlphp" its web
/// root, for "aiosmtpd" the python that can import it), installing it when missing.
pub fn require(tool: &str) -> PathBuf {
    let mut done = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = locate(tool) {
        return path;
    }
    if !done.iter().any(|t| t == tool) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/install-tools");
        let status = std::process::Command::new(&script)
            .arg(tool)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            status.success(),
            "scripts/install-tools {tool} failed; the tests need {tool} (see README)"
        );
        done.push(tool.to_string());
    }
    locate(tool).unwrap_or_else(|| panic!("{tool} is still missing after scripts/install-tools"))
}

fn locate(tool: &str) -> Option<PathBuf> {
    // Debian's python3-aiosmtpd is importable by Debian's python only: that python is the tool.
    if tool == "aiosmtpd" {
        let python = PathBuf::from("/usr/bin/python3");
        let found = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        return found.then_some(python);
    }
    if tool == "oidc-provider" {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        let dir = cache
            .join("capstan-tools")
            .join(format!("oidc-provider-{OIDC_PROVIDER_VERSION}"));
        return dir
            .join("node_modules/oidc-provider/package.json")
            .is_file()
            .then_some(dir);
    }
    // Daemons live in /usr/sbin, which is not on every user's PATH.
    if tool == "sshd" || tool == "slapd" {
        let path = PathBuf::from("/usr/sbin").join(tool);
        return path.is_file().then_some(path);
    }
    if tool == "simplesamlphp" {
        // Its web root, which `php -S` serves.
        let path = PathBuf::from("/usr/share/simplesamlphp/www");
        return path.join("_include.php").is_file().then_some(path);
    }
    capstan::render::find_program(tool)
}
