//! The `capstan` binary: every role and tool of Capstan behind one CLI.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use capstan::cli::{self, ApiClient};
use capstan::config::{Role, Settings};
use capstan::job::ResourceSelector;
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
    /// Run Capstan: webhooks and API (api), router/syncer/poller (worker), or both (all).
    Serve {
        /// Overrides server.role.
        #[arg(long, value_enum)]
        role: Option<Role>,
        /// Overrides server.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Log in to a server (a local account's password, or the browser's single sign-on with
    /// --sso) and keep the session in ~/.config/capstan/config.yaml.
    Login(cli::login::LoginArgs),
    /// Log out: revoke the saved session and remove it from the client config file.
    Logout,
    /// Manage Applications through a running server's REST API.
    App {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Manage AppProjects through a running server's REST API.
    Proj {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: ProjCommand,
    },
    /// Manage the clusters apps can target (Argo CD cluster Secrets) through the REST API.
    Cluster {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Manage repository credentials (Argo CD repository Secrets) through the REST API.
    Repo {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: RepoCommand,
    },
    /// Local accounts, API tokens and permissions (as `argocd account`).
    Account {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Show the preview of a pull request: what it changes in each Application (rendered at the
    /// PR's head against its base) and in the cluster; the same as the PR comment, diff whole.
    Preview {
        #[command(flatten)]
        conn: Connection,
        /// The repository, in any form Git accepts.
        #[arg(long, required_unless_present = "id")]
        repo: Option<String>,
        /// The pull (or merge) request's number.
        #[arg(long, required_unless_present = "id")]
        pr: Option<u64>,
        /// The preview's id instead (the last part of the link in the PR comment).
        #[arg(long, conflicts_with_all = ["repo", "pr"])]
        id: Option<String>,
        /// json: the whole record.
        #[arg(short, long, default_value = "text")]
        output: String,
    },
    /// Send a signed push webhook of any Git host's shape to a running server (demos and checks).
    Webhook(cli::webhook::WebhookArgs),
    /// Publish a trigger (this ref of this repository moved) to the configured RabbitMQ.
    Trigger {
        /// Repository URL, in any form Git accepts.
        #[arg(long)]
        repo: String,
        /// refs/heads/NAME, refs/tags/NAME, or a bare name (matches that targetRevision).
        #[arg(long = "ref")]
        git_ref: String,
        /// The commit the ref now points at (full SHA).
        #[arg(long)]
        revision: Option<String>,
        /// A changed file, repeatable; none: unknown, every path counts as affected.
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Who or what published it (a CI job, a person), shown in the sync history.
        #[arg(long)]
        publisher: Option<String>,
    },
    /// Manage the configured RabbitMQ's queues.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Render a source (Git or Helm repository) and print its manifests as YAML; needs no server.
    Render(Box<cli::render::RenderArgs>),
    /// Print the CRDs Capstan owns (what deploy/crds/ holds).
    Crds,
    /// Run the Capstan sandbox: a Kubernetes-API-compatible server that runs no containers.
    Sandbox(SandboxArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: cli::docs::Shell,
    },
    /// Print the man page, or write one per subcommand (capstan-app-sync.1 …) with --out.
    Man {
        /// Write every page into this directory (created) instead of printing capstan.1.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

#[derive(clap::Args)]
struct Connection {
    /// Server URL; default: `server` of ~/.config/capstan/config.yaml, else http://127.0.0.1:8080.
    #[arg(long, env = "CAPSTAN_SERVER", global = true)]
    server: Option<String>,
    /// API bearer token; default: `token` of ~/.config/capstan/config.yaml, else <data_dir>/api-token.
    #[arg(long, env = "CAPSTAN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Create an Application from a YAML/JSON file (Argo CD Applications accepted).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// List Applications with sync and health (filters apply client-side).
    List {
        /// Output format.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "wide", "json", "name"])]
        output: String,
        /// Only Applications of this project.
        #[arg(short = 'p', long)]
        project: Option<String>,
        /// Only Applications whose destination server URL or cluster name is this.
        #[arg(short = 'c', long)]
        cluster: Option<String>,
        /// Only Applications whose labels match: k=v, k!=v or k (exists), comma-separated.
        #[arg(short = 'l', long, value_parser = parse_selector)]
        selector: Option<cli::app_view::Selector>,
    },
    /// Show one Application: a summary, or the whole object with -o json|yaml.
    Get {
        #[command(flatten)]
        app: AppName,
        /// Output format; default: the human summary (wide is the same).
        #[arg(short = 'o', long, value_parser = ["json", "yaml", "wide"])]
        output: Option<String>,
    },
    /// Refresh: compare Git with the cluster now.
    Refresh {
        #[command(flatten)]
        app: AppName,
        /// Bypass caches.
        #[arg(long)]
        hard: bool,
    },
    /// Sync: apply Git to the cluster now.
    Sync {
        #[command(flatten)]
        app: AppName,
        /// Also delete tracked objects that left Git.
        #[arg(long)]
        prune: bool,
        /// Compare and dry-run only; nothing is applied or pruned.
        #[arg(long)]
        dry_run: bool,
        /// Sync this commit, tag or branch instead of the source's targetRevision.
        #[arg(long)]
        revision: Option<String>,
        /// Sync only this resource, GROUP:KIND:NAMESPACE/NAME (repeatable; GROUP empty for core).
        #[arg(long = "resource", value_parser = ResourceSelector::parse)]
        resources: Vec<ResourceSelector>,
    },
    /// List the revisions the Application was synced to, newest first.
    History {
        #[command(flatten)]
        app: AppName,
        /// Output format.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Sync back to the revision of a history entry (not while automated sync is on).
    Rollback {
        #[command(flatten)]
        app: AppName,
        /// The history ID (`capstan app history`).
        id: i64,
        /// Also delete tracked objects that are not in that revision.
        #[arg(long)]
        prune: bool,
        /// Compare and dry-run only; nothing is applied or pruned.
        #[arg(long)]
        dry_run: bool,
    },
    /// Wait until the Application is synced, healthy and idle (exit 1 on timeout).
    Wait {
        #[command(flatten)]
        app: AppName,
        /// Wait for Synced.
        #[arg(long)]
        sync: bool,
        /// Wait for Healthy.
        #[arg(long)]
        health: bool,
        /// Wait until no operation is running.
        #[arg(long)]
        operation: bool,
        /// Give up after this many seconds; default: wait forever.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Show the Application's resources and the objects they own, with health.
    Resources {
        #[command(flatten)]
        app: AppName,
        /// Output format.
        #[arg(short = 'o', long, default_value = "tree", value_parser = ["tree", "json"])]
        output: String,
    },
    /// Stop the sync operation that is running.
    TerminateOp(AppName),
    /// Show what a sync would change (exit 0: nothing, 1: differences, 2: error).
    Diff {
        #[command(flatten)]
        app: AppName,
        /// Output format.
        #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Print what a sync of the Application would apply (YAML; `-o json` for the full answer).
    Manifests {
        #[command(flatten)]
        app: AppName,
        /// Output format.
        #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
        output: String,
    },
    /// Delete an Application (its resources stay).
    Delete(AppName),
}

/// Which Application a command acts on.
#[derive(clap::Args)]
struct AppName {
    name: String,
    /// Namespace of the Application; default: server.namespace.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Move the queues to this configuration's queue.shards and queue.max_attempts, keeping
    /// every message (stop the workers of the old configuration first; idempotent, resumable).
    Migrate,
}

#[derive(Subcommand)]
enum ProjCommand {
    /// Create an AppProject from a YAML/JSON file (Argo CD AppProjects accepted).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// List AppProjects.
    List,
    /// Show one AppProject: a summary, or the whole object with -o json|yaml.
    Get {
        name: String,
        /// Output format; default: the human summary.
        #[arg(short = 'o', long, value_parser = ["json", "yaml"])]
        output: Option<String>,
    },
    /// Delete an AppProject no Application uses.
    Delete { name: String },
    /// Tokens of a project role (`spec.roles`), as `argocd proj role`.
    Role {
        #[command(subcommand)]
        command: ProjRoleCommand,
    },
}

#[derive(Subcommand)]
enum ProjRoleCommand {
    /// Issue a token acting as PROJECT's ROLE (printed once).
    CreateToken {
        project: String,
        role: String,
        /// Lifetime, e.g. 30m, 24h, 90d; none: until deleted.
        #[arg(short = 'e', long = "expires-in", value_parser = parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// Revoke a role token by its id (or issued-at time).
    DeleteToken {
        project: String,
        role: String,
        id: String,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Register a cluster (stored as an Argo CD cluster Secret in the control namespace; `Cluster`
    /// objects applied with kubectl are listed too).
    Add {
        name: String,
        /// The cluster's API server URL (positional: `--server` is Capstan's own address).
        #[arg(value_name = "SERVER")]
        api_server: String,
        /// A file holding a bearer token.
        #[arg(long, conflicts_with_all = ["cert", "key"])]
        token_file: Option<PathBuf>,
        /// A client certificate (PEM), with --key.
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        /// The client certificate's key (PEM).
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// The CA that signed the server's certificate (PEM).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Skip verifying the server's certificate (never for production).
        #[arg(long)]
        insecure: bool,
    },
    /// List clusters: server, name, version, connection state, apps (wide: and where registered).
    List {
        /// Output format.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "wide", "json"])]
        output: String,
    },
    /// Show one cluster (JSON).
    Get { name: String },
    /// Remove a cluster's registration.
    Rm { name: String },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// List local accounts.
    List {
        /// Output format.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Show an account and its tokens (yours by default).
    Get {
        /// The account; yours when absent.
        #[arg(short = 'a', long = "account")]
        account: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Who you are signed in as, and your groups.
    GetUserInfo,
    /// Issue an API token (printed once; only its hash is kept).
    GenerateToken {
        /// The account; yours when absent.
        #[arg(short = 'a', long = "account")]
        account: Option<String>,
        /// Lifetime, e.g. 30m, 24h, 90d; none: the token does not expire.
        #[arg(short = 'e', long = "expires-in", value_parser = parse_duration)]
        expires_in: Option<std::time::Duration>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Revoke an API token.
    DeleteToken {
        id: String,
        /// The account; yours when absent.
        #[arg(short = 'a', long = "account")]
        account: Option<String>,
    },
    /// Change a password (yours by default); passwords are read from files, never arguments.
    UpdatePassword {
        /// The account whose password changes; yours when absent.
        #[arg(long = "account")]
        account: Option<String>,
        /// A file holding your current password.
        #[arg(long)]
        current_password_file: PathBuf,
        /// A file holding the new password.
        #[arg(long)]
        new_password_file: PathBuf,
    },
    /// Whether you may do ACTION on RESOURCE OBJECT (`can-i sync applications 'default/*'`).
    CanI {
        action: String,
        resource: String,
        object: String,
    },
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Register credentials for a repository (or, with --template, for every URL under it).
    Add {
        url: String,
        #[arg(long)]
        username: Option<String>,
        /// A file holding the password (or a token used as password).
        #[arg(long, conflicts_with = "token_file")]
        password_file: Option<PathBuf>,
        /// A file holding a bearer token.
        #[arg(long, conflicts_with = "ssh_private_key_path")]
        token_file: Option<PathBuf>,
        /// An SSH private key (unencrypted) for ssh:// and scp-style URLs; the server's host key
        /// must be in the argocd-ssh-known-hosts-cm ConfigMap unless --insecure-ignore-host-key.
        #[arg(long, conflicts_with = "password_file")]
        ssh_private_key_path: Option<PathBuf>,
        /// Accept any SSH host key (a man in the middle could then serve anything).
        #[arg(long, requires = "ssh_private_key_path")]
        insecure_ignore_host_key: bool,
        /// A credential template (`repo-creds`): URL is a prefix.
        #[arg(long)]
        template: bool,
    },
    /// List registered repositories and templates (never their secrets).
    List {
        /// Output format.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Remove registered credentials by NAME (as listed) or URL.
    Rm { name_or_url: String },
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Address to listen on (port 0 picks one and prints it).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Require this bearer token on every request (with --tls one is generated when not given).
    #[arg(long, env = "CAPSTAN_SANDBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve HTTPS with a CA generated at start; the kubeconfig carries the CA and the token.
    #[arg(long)]
    tls: bool,
    /// Persist objects in this file across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write a kubeconfig pointing at the sandbox to this file (created 0600, replacing what is there).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Not anyhow's Debug, which adds a backtrace whenever RUST_BACKTRACE is set.
            let line = cli::error_line(&e);
            // An exit code without a message (`app diff` found differences) prints nothing.
            if !line.is_empty() {
                let _ = writeln!(std::io::stderr().lock(), "capstan: error: {line}");
            }
            std::process::ExitCode::from(cli::exit_code(&e))
        }
    }
}

async fn run() -> anyhow::Result<()> {
    capstan::install_crypto_provider();
    let cli = Cli::parse();
    // These need no configuration, so a broken one cannot keep a user from them.
    match &cli.command {
        Command::Completion { shell } => {
            cli::docs::print_bytes(&cli::docs::completion(*shell, Cli::command()))?;
            return Ok(());
        }
        Command::Man { out: Some(dir) } => {
            cli::docs::write_man_pages(Cli::command(), dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
            return Ok(());
        }
        Command::Man { out: None } => {
            cli::docs::print_bytes(&cli::docs::man_page(Cli::command())?)?;
            return Ok(());
        }
        _ => {}
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    // Held until main returns: dropping it flushes the spans not yet exported.
    let _telemetry = capstan::telemetry::init(&settings.log, &settings.telemetry)?;
    let data_dir = settings.server.data_dir.clone();
    match cli.command {
        Command::Completion { .. } | Command::Man { .. } => Ok(()),
        Command::Login(args) => {
            println!("{}", cli::login::login(args, &client_config_path()?).await?);
            Ok(())
        }
        Command::Logout => {
            println!("{}", cli::login::logout(&client_config_path()?).await?);
            Ok(())
        }
        Command::Version => {
            println!("capstan {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Crds => {
            print!("{}", capstan::store::crds_yaml());
            Ok(())
        }
        Command::Sandbox(args) => run_sandbox(args, &settings).await,
        Command::Render(args) => {
            let rendered = cli::render::render(&args, &settings, &data_dir).await?;
            for warning in &rendered.warnings {
                eprintln!("warning: {}: {}", warning.condition, warning.message);
            }
            if rendered.objects.is_empty() {
                anyhow::bail!(
                    "the source rendered no Kubernetes objects{}",
                    if rendered.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" (skipped: {})", rendered.skipped.join(", "))
                    }
                );
            }
            print!("{}", cli::render::to_yaml(&rendered.objects)?);
            Ok(())
        }
        Command::Queue {
            command: QueueCommand::Migrate,
        } => {
            let outcome = cli::queue::migrate(&settings.queue).await?;
            say(&outcome.to_string());
            Ok(())
        }
        Command::Trigger {
            repo,
            git_ref,
            revision,
            paths,
            publisher,
        } => {
            let message = capstan::event::TriggerMessage {
                repo,
                git_ref,
                revision,
                paths: (!paths.is_empty()).then_some(paths),
                publisher,
            };
            let id = cli::trigger::publish(&settings.queue, &message).await?;
            say(&format!("trigger {id} published"));
            Ok(())
        }
        Command::Serve { role, listen } => {
            if let Some(role) = role {
                settings.server.role = role;
            }
            if let Some(listen) = listen {
                settings.server.listen = listen;
            }
            let service = capstan::startup::Service::build(settings).await?;
            say(&format!(
                "Capstan is serving on http://127.0.0.1:{}",
                service.port()
            ));
            if let (Some(url), Some(kubeconfig)) =
                (service.sandbox_url(), service.sandbox_kubeconfig())
            {
                say(&format!(
                    "management cluster: Capstan sandbox at {url} (simulated; try `kubectl --kubeconfig {} get deploy -A`)",
                    kubeconfig.display()
                ));
            }
            service.run_until_stopped().await
        }
        Command::Cluster { conn, command } => {
            let client = connect(conn, &data_dir)?;
            let out = match command {
                ClusterCommand::Add {
                    name,
                    api_server,
                    token_file,
                    cert,
                    key,
                    ca,
                    insecure,
                } => {
                    let body = cli::cluster::NewCluster {
                        name: &name,
                        server: &api_server,
                        token_file: token_file.as_deref(),
                        cert: cert.as_deref(),
                        key: key.as_deref(),
                        ca: ca.as_deref(),
                        insecure,
                    }
                    .body()
                    .map_err(|e| anyhow::Error::new(cli::ExitError::new(2, format!("{e:#}"))))?;
                    client.add_cluster(&body).await?
                }
                ClusterCommand::List { output } => {
                    let answer = client.list_clusters().await?;
                    if output != "json" {
                        print!("{}", cli::cluster::cluster_table(&answer, output == "wide"));
                        return Ok(());
                    }
                    answer
                }
                ClusterCommand::Get { name } => client.get_cluster(&name).await?,
                ClusterCommand::Rm { name } => client.remove_cluster(&name).await?,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Preview {
            conn,
            repo,
            pr,
            id,
            output,
        } => {
            let client = connect(conn, &data_dir)?;
            let preview = match (id, repo, pr) {
                (Some(id), _, _) => client.preview_by_id(&id).await?,
                (None, Some(repo), Some(pr)) => client.preview(&repo, pr).await?,
                _ => anyhow::bail!("give --repo and --pr, or --id"),
            };
            if output == "json" {
                println!("{}", serde_json::to_string_pretty(&preview)?);
            } else {
                print!("{}", cli::preview::preview_text(&preview));
            }
            Ok(())
        }
        Command::Account { conn, command } => {
            let client = connect(conn, &data_dir)?;
            let me = || async {
                let info = client.user_info().await?;
                anyhow::Ok(info["username"].as_str().unwrap_or_default().to_owned())
            };
            match command {
                AccountCommand::List { output } => {
                    let answer = client.list_accounts().await?;
                    if output == "table" {
                        print!("{}", cli::account::account_table(&answer));
                    } else {
                        println!("{}", serde_json::to_string_pretty(&answer)?);
                    }
                }
                AccountCommand::Get { account, output } => {
                    let name = match account {
                        Some(a) => a,
                        None => me().await?,
                    };
                    let answer = client.get_account(&name).await?;
                    if output == "text" {
                        print!("{}", cli::account::account_text(&answer));
                    } else {
                        println!("{}", serde_json::to_string_pretty(&answer)?);
                    }
                }
                AccountCommand::GetUserInfo => {
                    let info = client.user_info().await?;
                    let groups: Vec<&str> = info["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(serde_json::Value::as_str)
                        .collect();
                    println!(
                        "Logged In: {}\nUsername: {}\nIssuer: {}\nGroups: {}",
                        info["loggedIn"].as_bool().unwrap_or_default(),
                        info["username"].as_str().unwrap_or_default(),
                        info["iss"].as_str().unwrap_or_default(),
                        groups.join(",")
                    );
                }
                AccountCommand::GenerateToken {
                    account,
                    expires_in,
                    description,
                } => {
                    let name = match account {
                        Some(a) => a,
                        None => me().await?,
                    };
                    let answer = client
                        .generate_token(&name, expires_in.map(|d| d.as_secs()), &description)
                        .await?;
                    println!("{}", answer["token"].as_str().unwrap_or_default());
                }
                AccountCommand::DeleteToken { id, account } => {
                    let name = match account {
                        Some(a) => a,
                        None => me().await?,
                    };
                    client.delete_token(&name, &id).await?;
                    println!("token {id} of {name} revoked");
                }
                AccountCommand::UpdatePassword {
                    account,
                    current_password_file,
                    new_password_file,
                } => {
                    let current = cli::account::read_password(&current_password_file)?;
                    let new = cli::account::read_password(&new_password_file)?;
                    client
                        .update_password(account.as_deref(), &current, &new)
                        .await?;
                    println!("Password updated");
                }
                AccountCommand::CanI {
                    action,
                    resource,
                    object,
                } => {
                    let yes = client.can_i(&action, &resource, &object).await?;
                    println!("{}", if yes { "yes" } else { "no" });
                }
            }
            Ok(())
        }
        Command::Repo { conn, command } => {
            let client = connect(conn, &data_dir)?;
            let out = match command {
                RepoCommand::Add {
                    url,
                    username,
                    password_file,
                    token_file,
                    ssh_private_key_path,
                    insecure_ignore_host_key,
                    template,
                } => {
                    let body = cli::repo::NewRepository {
                        url: &url,
                        username: username.as_deref(),
                        password_file: password_file.as_deref(),
                        token_file: token_file.as_deref(),
                        ssh_private_key_path: ssh_private_key_path.as_deref(),
                        insecure_ignore_host_key,
                        template,
                    }
                    .body()
                    .map_err(|e| anyhow::Error::new(cli::ExitError::new(2, format!("{e:#}"))))?;
                    client.add_repository(&body).await?
                }
                RepoCommand::List { output } => {
                    let answer = client.list_repositories().await?;
                    if output == "table" {
                        print!("{}", cli::repo::repository_table(&answer));
                        return Ok(());
                    }
                    answer
                }
                RepoCommand::Rm { name_or_url } => {
                    let listed = client.list_repositories().await?;
                    let name = listed["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| r["url"] == name_or_url.as_str())
                        .and_then(|r| r["name"].as_str())
                        .map(String::from);
                    let name = match name {
                        Some(name) => name,
                        // A URL nothing is registered for is never sent as a name.
                        None if name_or_url.contains(['/', ':']) => {
                            anyhow::bail!("no repository credentials registered for {name_or_url}")
                        }
                        None => name_or_url,
                    };
                    client.remove_repository(&name).await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Proj { conn, command } => {
            let client = connect(conn, &data_dir)?;
            let out = match command {
                ProjCommand::Create { file } => client.create_project(&file).await?,
                ProjCommand::List => {
                    print!("{}", cli::project_table(&client.list_projects().await?));
                    return Ok(());
                }
                ProjCommand::Get { name, output } => {
                    let project = client.get_project(&name).await?;
                    match output.as_deref() {
                        Some("json") => println!("{}", serde_json::to_string_pretty(&project)?),
                        Some("yaml") => print!("{}", to_yaml(&project)?),
                        _ => print!("{}", cli::project_view::project_summary(&project)),
                    }
                    return Ok(());
                }
                ProjCommand::Delete { name } => client.delete_project(&name).await?,
                ProjCommand::Role {
                    command:
                        ProjRoleCommand::CreateToken {
                            project,
                            role,
                            expires_in,
                        },
                } => {
                    let answer = client
                        .create_role_token(&project, &role, expires_in.map(|d| d.as_secs()))
                        .await?;
                    println!("{}", answer["token"].as_str().unwrap_or_default());
                    return Ok(());
                }
                ProjCommand::Role {
                    command: ProjRoleCommand::DeleteToken { project, role, id },
                } => client.delete_role_token(&project, &role, &id).await?,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::App { conn, command } => {
            let client = connect(conn, &data_dir)?;
            let control = settings.server.namespace.clone();
            // (namespace, name), the namespace defaulting to the control namespace.
            let target =
                move |app: AppName| (app.namespace.unwrap_or_else(|| control.clone()), app.name);
            let out = match command {
                AppCommand::Create { file } => client.create(&file).await?,
                AppCommand::List {
                    output,
                    project,
                    cluster,
                    selector,
                } => {
                    let filter = cli::app_view::AppFilter {
                        project,
                        cluster,
                        selector,
                    };
                    let list = client.list().await?;
                    let apps = filter.apply(&list);
                    match output.as_str() {
                        "json" => println!("{}", serde_json::to_string_pretty(&apps)?),
                        "name" => {
                            for app in apps {
                                println!("{}", cli::app_view::qualified_name(app));
                            }
                        }
                        wide => print!("{}", cli::app_view::app_list_table(&apps, wide == "wide")),
                    }
                    return Ok(());
                }
                AppCommand::Get { app, output } => {
                    let (ns, name) = target(app);
                    let app = client.get(&ns, &name).await?;
                    match output.as_deref() {
                        Some("json") => println!("{}", serde_json::to_string_pretty(&app)?),
                        Some("yaml") => print!("{}", to_yaml(&app)?),
                        _ => print!("{}", cli::app_view::app_summary(&app)),
                    }
                    return Ok(());
                }
                AppCommand::Refresh { app, hard } => {
                    let (ns, name) = target(app);
                    let query = if hard { "?hard=true" } else { "" };
                    client.action(&ns, &name, "refresh", query).await?
                }
                AppCommand::Sync {
                    app,
                    prune,
                    dry_run,
                    revision,
                    resources,
                } => {
                    let (ns, name) = target(app);
                    let options = cli::app::SyncOptions {
                        prune,
                        dry_run,
                        revision,
                        resources,
                    };
                    client.sync(&ns, &name, &options).await?
                }
                AppCommand::History { app, output } => {
                    let (ns, name) = target(app);
                    let answer = client.history(&ns, &name).await?;
                    if output == "table" {
                        print!("{}", cli::app::history_table(&answer));
                        return Ok(());
                    }
                    answer
                }
                AppCommand::Rollback {
                    app,
                    id,
                    prune,
                    dry_run,
                } => {
                    let (ns, name) = target(app);
                    client.rollback(&ns, &name, id, prune, dry_run).await?
                }
                AppCommand::Wait {
                    app,
                    sync,
                    health,
                    operation,
                    timeout,
                } => {
                    let (ns, name) = target(app);
                    let wanted = cli::app::WaitFor {
                        sync,
                        health,
                        operation,
                    };
                    let timeout = timeout.map(Duration::from_secs);
                    let app = client.wait(&ns, &name, wanted, timeout).await?;
                    print!("{}", cli::app::wait_summary(&app));
                    return Ok(());
                }
                AppCommand::Resources { app, output } => {
                    let (ns, name) = target(app);
                    let answer = client.resource_tree(&ns, &name).await?;
                    if output == "tree" {
                        print!("{}", cli::app::resources_table(&answer));
                        return Ok(());
                    }
                    answer
                }
                AppCommand::TerminateOp(app) => {
                    let (ns, name) = target(app);
                    client.terminate(&ns, &name).await?
                }
                AppCommand::Diff { app, output } => {
                    let (ns, name) = target(app);
                    let answer = client.diff(&ns, &name).await.map_err(|e| {
                        // Any failure to get a diff is exit 2, as `argocd app diff`.
                        anyhow::Error::new(cli::ExitError::new(2, cli::error_line(&e)))
                    })?;
                    if output == "text" {
                        print!("{}", cli::app::diff_text(&answer));
                    } else {
                        println!("{}", serde_json::to_string_pretty(&answer)?);
                    }
                    if answer["modified"] == serde_json::Value::Bool(true) {
                        return Err(cli::ExitError::new(1, "").into());
                    }
                    return Ok(());
                }
                AppCommand::Manifests { app, output } => {
                    let (ns, name) = target(app);
                    let answer = client.manifests(&ns, &name).await?;
                    if output == "yaml" {
                        let objects = answer["manifests"].as_array().cloned().unwrap_or_default();
                        print!("{}", cli::render::to_yaml(&objects)?);
                        return Ok(());
                    }
                    answer
                }
                AppCommand::Delete(app) => {
                    let (ns, name) = target(app);
                    client.delete(&ns, &name).await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Webhook(args) => {
            let (status, body) = cli::webhook::send(&args, &data_dir).await?;
            println!("{status} {body}");
            if (200..300).contains(&status) {
                Ok(())
            } else {
                anyhow::bail!("webhook refused with {status}")
            }
        }
    }
}

/// The API client for `app`/`proj`: flags and environment first, then the client config file.
fn connect(conn: Connection, data_dir: &std::path::Path) -> anyhow::Result<ApiClient> {
    // Read only when needed, so a broken file does not get in the way of explicit flags.
    let config = match cli::client_config::default_path() {
        Some(path) if conn.server.is_none() || conn.token.is_none() => {
            cli::client_config::ClientConfig::load(&path)
                .map_err(|e| cli::ExitError::new(2, e.to_string()))?
        }
        _ => cli::client_config::ClientConfig::default(),
    };
    let server = config.server(conn.server);
    ApiClient::new(&server, config.token(conn.token), data_dir)
}

/// A lifetime such as `90s`, `30m`, `24h` or `90d`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30m, 24h or 90d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} (s, m, h or d)")),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}

/// The client config file `login` and `logout` write.
fn client_config_path() -> anyhow::Result<PathBuf> {
    cli::client_config::default_path().ok_or_else(|| {
        cli::ExitError::new(
            2,
            "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the session",
        )
        .into()
    })
}

/// A `--selector`, refused by clap (exit 2) when malformed.
fn parse_selector(text: &str) -> Result<cli::app_view::Selector, String> {
    cli::app_view::Selector::parse(text).map_err(|e| e.to_string())
}

/// One object as YAML.
fn to_yaml(value: &serde_json::Value) -> anyhow::Result<String> {
    serde_saphyr::to_string(value).context("printing YAML")
}

async fn run_sandbox(args: SandboxArgs, settings: &Settings) -> anyhow::Result<()> {
    let opts = SandboxOptions {
        listen: args.listen.unwrap_or(settings.sandbox.listen),
        token: args.token,
        tls: args.tls,
        state_file: args.state,
        ready_delay: Duration::from_millis(settings.sandbox.ready_delay_ms),
    };
    let sandbox = Sandbox::start(opts).await?;
    if let Some(path) = &args.write_kubeconfig {
        sandbox.write_kubeconfig(path)?;
    }
    // The banner says plainly that this is not a real cluster.
    say("Capstan sandbox (a simulated Kubernetes API; it runs no containers)");
    say(&format!("listening on {}", sandbox.url()));
    match &args.write_kubeconfig {
        Some(path) => say(&format!("kubeconfig written to {}", path.display())),
        None if args.tls => {
            say("no kubeconfig written: --write-kubeconfig FILE gives kubectl the CA and token")
        }
        None => {}
    }
    wait_for_stop_signal().await?;
    say("stopping the Capstan sandbox");
    sandbox.shutdown().await;
    Ok(())
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

/// Prints a line for the user; a closed stdout (the reader went away) must not stop a server.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
