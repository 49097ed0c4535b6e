//! `capstan webhook`: send a correctly signed push of any Git host's shape to a running server.

use std::path::Path;

use anyhow::{Context, bail};

use crate::secret::ExposeSecret;
use crate::webhook::{SamplePush, provider_named};

/// What to send.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Server URL.
    #[arg(long, env = "CAPSTAN_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The Git host whose payload shape and signature scheme to use.
    #[arg(long, default_value = "github")]
    pub provider: String,
    /// Secret (Azure DevOps: `user:password`); default for GitHub: <data_dir>/github-webhook-secret.
    #[arg(long, env = "CAPSTAN_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Send without any signature or token (only accepted where `webhook.allow_unsigned` lists the host).
    #[arg(long, conflicts_with = "secret")]
    pub unsigned: bool,
    /// Repository URL as the Application names it.
    #[arg(long)]
    pub repo: String,
    /// Branch pushed (ignored when --ref is given).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Full ref pushed, e.g. `refs/tags/v1.2.0`.
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// The pushed commit; default: what `git ls-remote REPO REF` says.
    #[arg(long)]
    pub after: Option<String>,
    /// The commit before the push; default: none (a created ref).
    #[arg(long)]
    pub before: Option<String>,
    /// A changed file (repeatable); default: unknown, so every app on the ref is refreshed.
    #[arg(long = "file")]
    pub files: Vec<String>,
    /// The repository's default branch.
    #[arg(long, default_value = "main")]
    pub default_branch: String,
}

/// Sends the push; returns the HTTP status and the server's answer.
pub async fn send(args: &WebhookArgs, data_dir: &Path) -> anyhow::Result<(u16, String)> {
    let provider = provider_named(&args.provider)?;
    let git_ref = args
        .git_ref
        .clone()
        .unwrap_or_else(|| format!("refs/heads/{}", args.branch));
    let after = match &args.after {
        Some(a) => a.clone(),
        None => ls_remote(&args.repo, &git_ref).await?,
    };
    let secret = match (&args.secret, args.unsigned) {
        (_, true) => None,
        (Some(s), false) => Some(s.clone()),
        (None, false) if provider.name() == "github" => Some(generated_github_secret(data_dir)?),
        (None, false) => bail!(
            "give --secret (or CAPSTAN_WEBHOOK_SECRET) for {}, or --unsigned",
            provider.name()
        ),
    };
    let delivery = uuid::Uuid::new_v4().to_string();
    let files = (!args.files.is_empty()).then_some(args.files.as_slice());
    let request = provider.sample(
        &SamplePush {
            repo: &args.repo,
            git_ref: &git_ref,
            before: args.before.as_deref(),
            after: Some(&after),
            files,
            default_branch: &args.default_branch,
            delivery: &delivery,
        },
        secret.as_deref(),
    );
    let mut post =
        reqwest::Client::new().post(format!("{}/api/webhook", args.server.trim_end_matches('/')));
    for (k, v) in &request.headers {
        post = post.header(k, v);
    }
    let resp = post
        .body(request.body)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.server))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// The commit `git_ref` points at in `repo`, asked of the repository itself.
async fn ls_remote(repo: &str, git_ref: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new("git")
        .args(["ls-remote", "--", repo, git_ref])
        .output()
        .await
        .context("running git ls-remote (give --after to skip it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().find_map(|l| l.split_whitespace().next()) {
        Some(sha) if out.status.success() => Ok(sha.to_owned()),
        _ => bail!("git ls-remote found no {git_ref} in {repo}; give --after"),
    }
}

/// The GitHub secret `capstan serve` generated on first start.
fn generated_github_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("github-webhook-secret");
    Ok(crate::secret::read_file(&path)
        .with_context(|| format!("no --secret given and {} is unreadable", path.display()))?
        .expose_secret()
        .to_owned())
}
