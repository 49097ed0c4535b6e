//! `capstan completion` and `capstan man`: shell completion scripts and man pages generated
//! from the CLI's own definition, so they cannot drift from it.

use std::io::Write;
use std::path::Path;

pub use clap_complete::Shell;

/// The completion script for `shell`.
pub fn completion(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The top-level man page (`capstan.1`) as roff.
pub fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

/// Writes a man page for the command and every subcommand (`capstan-app-sync.1` …) into
/// `dir`, creating it.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd, dir)
}

/// Writes bytes to stdout; a closed pipe (`| head`) is not an error worth reporting.
pub fn print_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
