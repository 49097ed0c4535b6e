//! Fetching into a bare mirror with gix (blocking; callers run it in `spawn_blocking`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gix::protocol::handshake::Ref;
use gix::protocol::transport::client::blocking_io::http;
use gix::remote::Direction;

use super::credentials::same_origin;
use super::ssh::SshSession;
use super::stats::FetchCounters;
use super::{Credentials, GitError};

/// Refspecs that mirror every branch and tag, plus the remote's HEAD (not stored locally).
pub(crate) const MIRROR_REFSPECS: [&str; 3] = [
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "HEAD",
];

/// Where to fetch from: a URL without userinfo and the credentials to present.
#[derive(Clone)]
pub(crate) struct Source {
    /// The URL without userinfo; safe to show.
    pub url: String,
    /// Credentials, presented when the server asks for them (Basic) or always (Bearer).
    pub creds: Option<Credentials>,
    /// Each fetch from this source is abandoned after this long.
    pub timeout: Duration,
    /// The owning cache's listing and pack counters.
    pub counters: Arc<FetchCounters>,
}

/// Opens the bare mirror at `path`, creating it when missing or unreadable.
pub(crate) fn open_mirror(path: &Path, source: &Source) -> Result<gix::Repository, GitError> {
    // Isolated: system and user git configuration (credential helpers, url rewrites,
    // askpass prompts) must not influence what a server process fetches.
    let options = gix::open::Options::isolated();
    if path.join("HEAD").is_file() {
        remove_stale_locks(path);
        match gix::open_opts(path, options.clone()) {
            Ok(repo) => return Ok(repo),
            Err(err) => {
                tracing::warn!(url = %source.url, error = %err, "git mirror unreadable, recreating it");
                std::fs::remove_dir_all(path).map_err(|source| GitError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        }
    }
    std::fs::create_dir_all(path).map_err(|source| GitError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    gix::init_bare(path).map_err(|err| read_error(&source.url, "a new mirror", err))?;
    gix::open_opts(path, options).map_err(|err| read_error(&source.url, "the mirror", err))
}

/// Removes `*.lock` files a killed fetch left behind, which would fail every later fetch.
///
/// Safe because the caller holds this mirror's file lock, so no other fetch is running.
fn remove_stale_locks(mirror: &Path) {
    let mut pending = vec![mirror.to_path_buf(), mirror.join("refs")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && path.starts_with(mirror.join("refs")) {
                pending.push(path);
            } else if !is_dir && path.extension().is_some_and(|ext| ext == "lock") {
                tracing::warn!(path = %path.display(), "removing stale lock file in git mirror");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Connects to `source`, lists its refs for `refspecs` and, unless `already_have` says the
/// objects are present, receives a pack. Returns every ref the remote advertised.
///
/// The whole exchange ends by `source.timeout`: HTTP requests carry the remaining time as
/// their total deadline (body included, so a server dripping bytes cannot hold a worker), and
/// the pack transfer is interrupted at the deadline for every transport.
pub(crate) fn fetch(
    repo: &gix::Repository,
    source: &Source,
    refspecs: &[String],
    already_have: impl FnOnce(&[Ref]) -> bool,
) -> Result<Vec<Ref>, GitError> {
    let started = Instant::now();
    let deadline = started + source.timeout;
    let ssh = ssh_session(source)?;
    // ssh's own report (refused key, untrusted host) explains a failure better than the
    // broken pipe gix sees.
    let failed = |err| {
        ssh.as_ref()
            .and_then(|session| session.failure(&source.url))
            .unwrap_or_else(|| fetch_error(source, deadline, err))
    };
    let remote = repo
        .remote_at(source.url.as_str())
        .map_err(|err| invalid_url(source, err))?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch)
        .map_err(|err| invalid_url(source, err))?;
    let connection = match &ssh {
        Some(session) => {
            let transport = session
                .connect(&source.url)
                .map_err(|message| invalid_url(source, message))?;
            remote.to_connection_with_transport(transport)
        }
        None => remote.connect(Direction::Fetch).map_err(failed)?,
    };
    let basic = match &source.creds {
        Some(Credentials::Basic { username, password }) => {
            Some((username.clone(), password.clone()))
        }
        _ => None,
    };
    let configured_url = source.url.clone();
    let mut connection = connection.with_credentials(move |action| match action {
        gix::credentials::helper::Action::Get(context) => {
            // After a redirect gix asks for the redirect target; only the configured origin
            // may receive the password.
            let asked = context
                .url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default();
            Ok(basic
                .as_ref()
                .filter(|_| same_origin(&configured_url, &asked))
                .map(|(username, password)| gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: username.clone(),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: context.into(),
                }))
        }
        gix::credentials::helper::Action::Store(_) | gix::credentials::helper::Action::Erase(_) => {
            Ok(None)
        }
    });
    if let Some(options) = transport_options(repo, source, deadline)? {
        connection = connection.with_transport_options(options);
    }
    source.counters.listed();
    let prepare = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(failed)?;
    let remote_refs = prepare.ref_map().remote_refs.clone();
    if already_have(&remote_refs) {
        return Ok(remote_refs);
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let _watchdog = interrupt_at(deadline, interrupt.clone());
    let received = prepare.receive(gix::progress::Discard, &interrupt);
    // gix skips the request when no wanted tip changed; only real requests count.
    let asked_server = !matches!(
        &received,
        Ok(outcome) if matches!(
            outcome.status,
            gix::remote::fetch::Status::NoPackReceived { negotiate: None, .. }
        )
    );
    if asked_server {
        source.counters.fetched_pack();
    }
    let received = received.map_err(failed)?;
    if asked_server {
        source
            .counters
            .fetch_took(started.elapsed(), pack_bytes(&received.status));
    }
    Ok(remote_refs)
}

/// The size of the pack a fetch wrote (0 when none came).
fn pack_bytes(status: &gix::remote::fetch::Status) -> u64 {
    match status {
        gix::remote::fetch::Status::Change {
            write_pack_bundle, ..
        } => write_pack_bundle
            .data_path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len()),
        _ => 0,
    }
}

/// The private key files for an `ssh://` or scp-style source; None for other transports.
///
/// An SSH URL without an SSH key is refused here: falling back to the user's own `ssh` setup
/// would let an Application use whatever keys the worker's account happens to hold.
fn ssh_session(source: &Source) -> Result<Option<SshSession>, GitError> {
    let url = gix::Url::try_from(source.url.as_str()).map_err(|err| invalid_url(source, err))?;
    if url.scheme != gix::url::Scheme::Ssh {
        return Ok(None);
    }
    match &source.creds {
        Some(Credentials::Ssh(key)) => SshSession::new(key, source.timeout).map(Some),
        _ => Err(GitError::Refused {
            url: source.url.clone(),
            reason: "no SSH key is configured for this URL (git.credentials with \
                     ssh_private_key_file and ssh_known_hosts)"
                .to_string(),
        }),
    }
}

/// Sets `flag` at `deadline` unless the returned sender is dropped first.
fn interrupt_at(deadline: Instant, flag: Arc<AtomicBool>) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let timer = std::thread::Builder::new()
        .name("git-fetch-deadline".into())
        .spawn(move || {
            let wait = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                flag.store(true, Ordering::Relaxed);
            }
        });
    if timer.is_err() {
        // Without a timer thread the HTTP deadline still holds; only local transports lose it.
        tracing::warn!("could not start the fetch deadline timer");
    }
    stop
}

/// HTTP options: the deadline, and the bearer token when one is configured.
fn transport_options(
    repo: &gix::Repository,
    source: &Source,
    deadline: Instant,
) -> Result<Option<Box<dyn std::any::Any>>, GitError> {
    let url = gix::Url::try_from(source.url.as_str()).map_err(|err| invalid_url(source, err))?;
    if !matches!(url.scheme, gix::url::Scheme::Http | gix::url::Scheme::Https) {
        return Ok(None);
    }
    let mut options = repo
        .transport_options(source.url.as_str(), None)
        .map_err(|err| fetch_error(source, deadline, err))?;
    if let Some(http) = options
        .as_mut()
        .and_then(|options| options.downcast_mut::<http::Options>())
    {
        // gix's reqwest backend ignores `low_speed_*` and applies per-read waits only; a
        // per-request timeout is reqwest's total deadline, covering the body as well.
        let request_deadline = http::reqwest::Options {
            configure_request: Some(Box::new(move |request| {
                let left = deadline.saturating_duration_since(Instant::now());
                *request.timeout_mut() = Some(left.max(Duration::from_millis(1)));
                Ok(())
            })),
            ..Default::default()
        };
        http.backend = Some(Arc::new(Mutex::new(request_deadline)));
        if let Some(Credentials::Token(token)) = &source.creds {
            http.extra_headers
                .push(format!("Authorization: Bearer {token}"));
        }
    }
    Ok(options)
}

/// The commit `id` names, peeling tags, if the mirror has it.
pub(crate) fn find_commit(repo: &gix::Repository, id: &gix::ObjectId) -> Option<gix::ObjectId> {
    let object = repo.find_object(*id).ok()?;
    object.peel_to_commit().ok().map(|commit| commit.id)
}

/// The object a remote ref points at, peeled through annotated tags where the server said so.
pub(crate) fn ref_target(r: &Ref) -> Option<(&[u8], gix::ObjectId)> {
    match r {
        Ref::Peeled {
            full_ref_name,
            object,
            ..
        }
        | Ref::Direct {
            full_ref_name,
            object,
        }
        | Ref::Symbolic {
            full_ref_name,
            object,
            ..
        } => Some((full_ref_name.as_slice(), *object)),
        Ref::Unborn { .. } => None,
    }
}

fn invalid_url(source: &Source, err: impl std::fmt::Display) -> GitError {
    GitError::InvalidUrl {
        url: source.url.clone(),
        message: one_line(&err.to_string()),
    }
}

pub(crate) fn read_error(url: &str, what: &str, err: impl std::fmt::Display) -> GitError {
    GitError::Read {
        url: url.to_string(),
        what: what.to_string(),
        message: one_line(&err.to_string()),
    }
}

/// Maps a transport failure to `Timeout` past the deadline, to `Auth` when the server refused
/// us, else to `Fetch`.
fn fetch_error(source: &Source, deadline: Instant, err: gix::Error) -> GitError {
    // A margin, as timers may fire a hair early; any failure this close to the end is a timeout.
    if Instant::now() + Duration::from_millis(50) >= deadline {
        return GitError::Timeout {
            url: source.url.clone(),
            secs: source.timeout.as_secs(),
        };
    }
    let unauthenticated = err.classify().is_unauthenticated()
        || err
            .downcast_any_ref::<gix::protocol::transport::client::AuthenticationRequired>()
            .is_some();
    let message = error_chain(&err);
    if unauthenticated {
        return GitError::Auth;
    }
    GitError::Fetch(format!("{}: {}", source.url, message))
}

/// "outer: cause: root cause" on one line, skipping causes that repeat their parent.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    one_line(&parts.join(": "))
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
