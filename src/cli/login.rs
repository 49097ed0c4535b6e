//! `capstan login` and `capstan logout`: a session token for a local account's password
//! (`POST /api/v1/session`), or through the browser's single sign-on (`--sso`): the CLI listens
//! on 127.0.0.1, the browser logs in at Capstan however the server offers and comes back to the
//! listener with a one-time code, which the CLI trades (with its PKCE-style verifier) for its own
//! session. The token goes to the client config file (0600); `logout` revokes and removes it.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::Path;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ExitError;
use super::client_config::ClientConfig;
use crate::auth::oidc::flow;

/// How long `--sso` waits for the browser.
const SSO_WAIT: Duration = Duration::from_secs(300);

/// `capstan login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The server; default: the client config file's, else http://127.0.0.1:8080.
    pub server: Option<String>,
    /// A local account's name.
    #[arg(long, conflicts_with = "sso")]
    pub username: Option<String>,
    /// The password (visible to other local users in the process list: prefer the prompt or --password-stdin).
    #[arg(long, conflicts_with_all = ["password_stdin", "sso"])]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "sso")]
    pub password_stdin: bool,
    /// Log in through the browser with the server's single sign-on.
    #[arg(long)]
    pub sso: bool,
    /// The local port the browser comes back to (default: any free port).
    #[arg(long, requires = "sso")]
    pub sso_port: Option<u16>,
    /// Print the URL only; do not try to open a browser.
    #[arg(long, requires = "sso")]
    pub no_browser: bool,
}

/// What the browser brings back to the listener.
#[derive(Deserialize)]
struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
}

/// Logs in, saves the session in the client config file at `config_path` and says who it is.
pub async fn login(args: LoginArgs, config_path: &Path) -> anyhow::Result<String> {
    let mut config =
        ClientConfig::load(config_path).map_err(|e| ExitError::new(2, e.to_string()))?;
    let server = args
        .server
        .clone()
        .or_else(|| config.server.clone())
        .unwrap_or_else(|| super::client_config::DEFAULT_SERVER.to_owned());
    let server = server.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let token = if args.sso {
        sso(&http, &server, &args).await?
    } else {
        password(&http, &server, &args).await?
    };
    let info = call(
        &http,
        reqwest::Method::GET,
        &server,
        "/api/v1/session/userinfo",
        Some(&token),
        None,
    )
    .await?;
    config.server = Some(server.clone());
    config.token = Some(token);
    config
        .save(config_path)
        .map_err(|e| ExitError::new(2, e.to_string()))?;
    let user = info["username"].as_str().unwrap_or_default();
    let groups: Vec<&str> = info["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut line = format!("Logged in to {server} as {user}");
    if !groups.is_empty() {
        line += &format!(" (groups: {})", groups.join(", "));
    }
    Ok(line)
}

/// Revokes the saved session and removes it from the client config file.
pub async fn logout(config_path: &Path) -> anyhow::Result<String> {
    let mut config =
        ClientConfig::load(config_path).map_err(|e| ExitError::new(2, e.to_string()))?;
    let server = config.server(None);
    let Some(token) = config.token.take() else {
        return Ok("Not logged in".into());
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // An expired or already revoked session is as good as logged out; anything else is an
    // error, and the token stays so the user can try again.
    match call(
        &http,
        reqwest::Method::DELETE,
        &server,
        "/api/v1/session",
        Some(&token),
        None,
    )
    .await
    {
        Ok(_) => {}
        Err(e) if e.to_string().starts_with("401") => {}
        Err(e) => return Err(e.context("the server did not end the session; try again")),
    }
    config
        .save(config_path)
        .map_err(|e| ExitError::new(2, e.to_string()))?;
    Ok(format!("Logged out of {server}"))
}

async fn password(
    http: &reqwest::Client,
    server: &str,
    args: &LoginArgs,
) -> anyhow::Result<String> {
    let terminal = std::io::stdin().is_terminal();
    let username = match &args.username {
        Some(u) => u.clone(),
        None if terminal => {
            eprint!("Username: ");
            read_line()?
        }
        None => return Err(ExitError::new(2, "--username is required (or --sso)").into()),
    };
    let password = if let Some(p) = &args.password {
        p.clone()
    } else if args.password_stdin {
        read_line()?
    } else if terminal {
        rpassword::prompt_password("Password: ").context("reading the password")?
    } else {
        return Err(ExitError::new(
            2,
            "no terminal to ask for the password: use --password-stdin",
        )
        .into());
    };
    let body = json!({"username": username, "password": password});
    let answer = call(
        http,
        reqwest::Method::POST,
        server,
        "/api/v1/session",
        None,
        Some(&body),
    )
    .await?;
    token_of(&answer)
}

async fn sso(http: &reqwest::Client, server: &str, args: &LoginArgs) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.sso_port.unwrap_or(0)))
        .map_err(|e| ExitError::new(2, format!("listening on 127.0.0.1: {e}")))?;
    let port = listener.local_addr()?.port();
    let state = flow::random();
    let verifier = flow::random();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Callback>(1);
    let listener_server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(tx.clone()))
            .route("/callback", web::get().to(arrived))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = listener_server.handle();
    tokio::spawn(listener_server);

    let url = format!(
        "{server}/auth/cli?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("port", &port.to_string())
            .append_pair("state", &state)
            .append_pair("challenge", &flow::challenge(&verifier))
            .finish()
    );
    println!("Log in with your browser at:\n  {url}");
    if !args.no_browser {
        open_browser(&url);
    }
    let arrived = tokio::time::timeout(SSO_WAIT, rx.recv()).await;
    handle.stop(true).await;
    let callback = arrived
        .map_err(|_| ExitError::new(1, "no login arrived from the browser within 5 minutes"))?
        .ok_or_else(|| ExitError::new(1, "the local listener stopped"))?;
    if callback.state != state {
        return Err(ExitError::new(1, "the browser came back with another login's state").into());
    }
    let body = json!({"code": callback.code, "verifier": verifier});
    let answer = call(
        http,
        reqwest::Method::POST,
        server,
        "/api/v1/session/exchange",
        None,
        Some(&body),
    )
    .await?;
    token_of(&answer)
}

/// The listener's `GET /callback`.
async fn arrived(
    query: web::Query<Callback>,
    tx: web::Data<tokio::sync::mpsc::Sender<Callback>>,
) -> HttpResponse {
    let _ = tx.try_send(query.into_inner());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><title>Capstan CLI</title><p id=\"done\">The Capstan CLI is logged in. You can close this tab.</p>")
}

/// Best effort: the URL is printed anyway.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn token_of(answer: &Value) -> anyhow::Result<String> {
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the server answered without a token"))
}

/// One JSON call; a failure reads "STATUS: message".
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    server: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let mut req = http.request(method, format!("{server}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| {
        anyhow::Error::new(e).context(ExitError::new(2, format!("cannot reach {server}")))
    })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"].as_str().unwrap_or("");
        anyhow::bail!("{}: {msg}", status.as_u16());
    }
    Ok(body)
}
