//! The `capstan` binary: every role and tool of Capstan behind one CLI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use capstan::config::Settings;
use capstan::sandbox::{Sandbox, SandboxOptions};

#[derive(Parser)]
#[command(
    name = "capstan",
    version,
    about = "GitOps continuous delivery for Kubernetes"
)]
struct Cli {
    /// A configuration file layered over config/default.toml.
    #[arg(long, global = true, env = "CAPSTAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Capstan sandbox: a Kubernetes-API-compatible server that runs no containers.
    Sandbox(SandboxArgs),
    /// Print the version.
    Version,
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Address to listen on (port 0 picks one and prints it).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Require this bearer token on every request.
    #[arg(long, env = "CAPSTAN_SANDBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Persist objects in this file across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write a kubeconfig pointing at the sandbox to this file.
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    capstan::install_crypto_provider();
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    capstan::telemetry::init(&settings.log);
    match cli.command {
        Command::Version => {
            println!("capstan {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Sandbox(args) => run_sandbox(args, &settings).await,
    }
}

async fn run_sandbox(args: SandboxArgs, settings: &Settings) -> anyhow::Result<()> {
    let opts = SandboxOptions {
        listen: args.listen.unwrap_or(settings.sandbox.listen),
        token: args.token,
        state_file: args.state,
        ready_delay: Duration::from_millis(settings.sandbox.ready_delay_ms),
    };
    let sandbox = Sandbox::start(opts).await?;
    if let Some(path) = &args.write_kubeconfig {
        write_private(path, sandbox.kubeconfig_yaml().as_bytes())
            .with_context(|| format!("writing kubeconfig to {}", path.display()))?;
    }
    // The banner says plainly that this is not a real cluster.
    println!("Capstan sandbox (a simulated Kubernetes API; it runs no containers)");
    println!("listening on {}", sandbox.url());
    if let Some(path) = &args.write_kubeconfig {
        println!("kubeconfig written to {}", path.display());
    }
    wait_for_stop_signal().await?;
    println!("stopping the Capstan sandbox");
    sandbox.shutdown().await;
    Ok(())
}

/// Writes a file only its owner can read: a kubeconfig may carry the bearer token.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Waits for Ctrl-C or SIGTERM, so the state file is flushed when a service manager stops us.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        res = tokio::signal::ctrl_c() => res.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
