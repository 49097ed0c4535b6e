//! Running external renderers (helm, kustomize, kubectl) with limits: a deadline, a scrubbed
//! environment, a private temporary home removed afterwards, and a cap on what they print.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::RenderError;

/// Where the external tools are and how far they may go.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// The `helm` program (a name looked up on PATH, or a path).
    pub helm: String,
    /// The `kustomize` program; when it is not found, `kubectl kustomize` is used.
    pub kustomize: String,
    /// The `kubectl` program.
    pub kubectl: String,
    /// A tool still running after this long is killed and the render fails.
    pub timeout: Duration,
    /// A tool printing more than this many bytes is killed and the render fails.
    pub max_output_bytes: u64,
    /// The directory private temporary homes are made in (default: the system's).
    pub temp_dir: Option<PathBuf>,
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            helm: "helm".into(),
            kustomize: "kustomize".into(),
            kubectl: "kubectl".into(),
            timeout: Duration::from_secs(90),
            max_output_bytes: 50 * 1024 * 1024,
            temp_dir: None,
        }
    }
}

/// How to install a tool, for the message shown when it is missing.
pub fn install_hint(tool: &str) -> &'static str {
    match tool {
        "helm" => "install Helm 3 or 4 (scripts/install-tools helm) or set render.helm to its path",
        "kustomize" | "kubectl" => {
            "install kubectl (its built-in `kubectl kustomize` is used) or a kustomize binary, or set render.kustomize"
        }
        _ => "install it on the worker's PATH",
    }
}

/// The full path of `program`: itself when it contains a `/`, else the first match on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One external tool invocation.
#[derive(Debug, Clone)]
pub struct ToolRun<'a> {
    /// The tool's name, for messages ("helm", "kustomize").
    pub tool: &'a str,
    /// The program to run (full path from `find_program`).
    pub program: &'a Path,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory.
    pub cwd: &'a Path,
    /// Extra environment on top of the scrubbed one.
    pub env: Vec<(String, String)>,
}

/// What a tool printed when it succeeded.
#[derive(Debug)]
pub struct ToolOutput {
    /// Standard output, UTF-8.
    pub stdout: String,
}

/// Runs the tool to completion within `settings`' deadline and output cap.
///
/// The environment holds only PATH, a locale and a fresh private HOME (plus Helm's and XDG's
/// directories inside it), so no credentials, kubeconfig or plugin of the worker's reach the
/// tool; the home is removed when the tool ends. The whole process group is killed on timeout,
/// so a tool's children cannot outlive it.
pub fn run(run: &ToolRun<'_>, settings: &ToolSettings) -> Result<ToolOutput, RenderError> {
    let home = match &settings.temp_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("capstan-tool-")
            .tempdir_in(dir),
        None => tempfile::Builder::new().prefix("capstan-tool-").tempdir(),
    }
    .map_err(|source| RenderError::Io {
        path: settings.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
        source,
    })?;
    let home_path = home.path();
    let mut command = Command::new(run.program);
    command
        .args(&run.args)
        .current_dir(run.cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .env("HOME", home_path)
        .env("XDG_CACHE_HOME", home_path.join("cache"))
        .env("XDG_CONFIG_HOME", home_path.join("config"))
        .env("XDG_DATA_HOME", home_path.join("data"))
        .env("HELM_CACHE_HOME", home_path.join("helm/cache"))
        .env("HELM_CONFIG_HOME", home_path.join("helm/config"))
        .env("HELM_DATA_HOME", home_path.join("helm/data"))
        .env("KUBECONFIG", home_path.join("no-kubeconfig"))
        .env("TMPDIR", home_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in &run.env {
        command.env(key, value);
    }
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            RenderError::ToolMissing {
                tool: run.tool.to_string(),
                hint: install_hint(run.tool).to_string(),
            }
        } else {
            RenderError::ToolFailed {
                tool: run.tool.to_string(),
                message: format!("could not start {}: {err}", run.program.display()),
            }
        }
    })?;
    let pid = child.id();
    let overflow = Arc::new(Mutex::new(false));
    let stdout = child.stdout.take().map(|pipe| {
        let limit = settings.max_output_bytes;
        let overflow = overflow.clone();
        std::thread::spawn(move || read_capped(pipe, limit, &overflow, pid))
    });
    let stderr = child.stderr.take().map(|pipe| {
        let overflow = Arc::new(Mutex::new(false));
        std::thread::spawn(move || read_capped(pipe, 64 * 1024, &overflow, 0))
    });
    let deadline = Instant::now() + settings.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(pid);
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => {
                kill_group(pid);
                return Err(RenderError::ToolFailed {
                    tool: run.tool.to_string(),
                    message: format!("waiting for {}: {err}", run.tool),
                });
            }
        }
    };
    // Children that inherited the pipes would keep the readers open; the group is gone now.
    kill_group(pid);
    let out = stdout
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let err = stderr
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let Some(status) = status else {
        return Err(RenderError::ToolTimeout {
            tool: run.tool.to_string(),
            secs: settings.timeout.as_secs(),
        });
    };
    if *overflow.lock().unwrap_or_else(|p| p.into_inner()) {
        return Err(RenderError::TooLarge {
            what: format!("output of {}", run.tool),
            limit: settings.max_output_bytes,
        });
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&err);
        return Err(RenderError::ToolFailed {
            tool: run.tool.to_string(),
            message: tool_message(&text, home_path, run.cwd),
        });
    }
    let stdout = String::from_utf8(out).map_err(|e| RenderError::ToolFailed {
        tool: run.tool.to_string(),
        message: format!(
            "printed output that is not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    Ok(ToolOutput { stdout })
}

/// Reads `pipe` keeping at most `limit` bytes; past it, flags the overflow and kills the
/// group of `pid` (when not 0), so an endless printer is stopped at once, not at the deadline.
fn read_capped(mut pipe: impl Read, limit: u64, overflow: &Mutex<bool>, pid: u32) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = (limit as usize).saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    *overflow.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    if pid != 0 {
                        kill_group(pid);
                        break;
                    }
                }
            }
        }
    }
    kept
}

fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// The tool's error output as one readable message: private temporary paths are replaced, so
/// messages are stable and do not leak the worker's layout.
fn tool_message(stderr: &str, home: &Path, cwd: &Path) -> String {
    let mut text = stderr.trim().to_string();
    for (path, shown) in [(cwd, "."), (home, "$TMP")] {
        let path = path.to_string_lossy();
        if !path.is_empty() {
            text = text.replace(&format!("{path}/"), &format!("{shown}/"));
            text = text.replace(path.as_ref(), shown);
        }
    }
    const MAX: usize = 4000;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" …");
    }
    if text.is_empty() {
        "exited with an error and printed nothing".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, settings: &ToolSettings) -> Result<ToolOutput, RenderError> {
        let program = find_program("sh").expect("sh on PATH");
        let cwd = std::env::temp_dir();
        run(
            &ToolRun {
                tool: "sh",
                program: &program,
                args: vec!["-c".into(), script.into()],
                cwd: &cwd,
                env: vec![],
            },
            settings,
        )
    }

    #[test]
    fn a_tool_sees_only_the_scrubbed_environment_and_a_private_home() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("CAPSTAN_TOOL_TEST_SECRET", "s3cret") };
        let out = sh(
            "echo \"[$CAPSTAN_TOOL_TEST_SECRET]\"; echo $HOME; test -d \"$HOME\" && echo home-exists",
            &ToolSettings::default(),
        )
        .expect("runs");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "[]", "the worker's environment leaked");
        assert_eq!(lines[2], "home-exists");
        assert!(
            !Path::new(lines[1]).exists(),
            "the private home is removed afterwards"
        );
    }

    #[test]
    fn a_hanging_tool_is_killed_at_the_deadline_with_its_children() {
        let settings = ToolSettings {
            timeout: Duration::from_millis(300),
            ..ToolSettings::default()
        };
        let started = Instant::now();
        let err = sh("sleep 30 & sleep 30", &settings).expect_err("times out");
        assert!(matches!(err, RenderError::ToolTimeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(20), "not killed");
    }

    #[test]
    fn a_tool_printing_without_end_is_stopped_at_the_output_cap() {
        let settings = ToolSettings {
            max_output_bytes: 100_000,
            ..ToolSettings::default()
        };
        let err = sh("yes manifest", &settings).expect_err("too large");
        assert!(
            matches!(err, RenderError::TooLarge { limit: 100_000, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_failing_tool_reports_its_error_output_and_a_missing_one_says_how_to_install_it() {
        let err = sh(
            "echo 'Error: chart broken' >&2; exit 1",
            &ToolSettings::default(),
        )
        .expect_err("fails");
        assert!(err.to_string().contains("chart broken"), "{err}");
        let cwd = std::env::temp_dir();
        let missing = run(
            &ToolRun {
                tool: "helm",
                program: Path::new("/nonexistent/helm"),
                args: vec![],
                cwd: &cwd,
                env: vec![],
            },
            &ToolSettings::default(),
        )
        .expect_err("missing");
        assert!(
            missing.to_string().contains("helm") && missing.to_string().contains("install"),
            "{missing}"
        );
    }
}
