//! Commit statuses and PR comments on the six Git hosts, against a local fake of their APIs
//! (tests/common/forge_server.rs): each host's state words and credential header, one comment
//! per PR edited in place and found again after a restart, retries on 503 and 429, no retry on
//! 401, and tokens that never leave the API they were configured for.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use capstan::event::{EventSource, ForgeRepo};
use capstan::forge::{
    CommentRef, CommitStatus, ForgeError, ForgeSettings, Forges, HostSettings, StatusState,
};
use capstan::secret::SecretString;
use common::forge_server::{BOT_USER, Failure, ForgeServer, HOSTS};

const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const MARKER: &str = "<!-- capstan-preview -->";

/// Settings with fast retries and one entry per host, each for the fake's API URL.
fn settings(server: &ForgeServer) -> ForgeSettings {
    ForgeSettings {
        timeout_ms: 5_000,
        max_attempts: 4,
        retry_initial_ms: 10,
        retry_max_ms: 3_000,
        requests_per_second: 0.0,
        hosts: HOSTS
            .iter()
            .map(|h| (h.replace('-', "_"), entry(server, h, &server.token(h))))
            .collect(),
    }
}

/// An entry for `host` on `server` with `token`; Bitbucket Cloud with an app password.
fn entry(server: &ForgeServer, host: &str, token: &str) -> HostSettings {
    HostSettings {
        kind: host.into(),
        api_url: Some(server.api_url(host)),
        token: Some(SecretString::from(token)),
        token_file: None,
        username: (host == "bitbucket-cloud").then(|| BOT_USER.to_owned()),
        app_id: None,
        installation_id: None,
        private_key_file: None,
    }
}

fn forges(settings: &ForgeSettings) -> Forges {
    Forges::new(settings).expect("valid settings")
}

fn status(state: StatusState) -> CommitStatus {
    CommitStatus {
        context: "capstan/preview".into(),
        state,
        description: "Preview: 3 apps changed".into(),
        target_url: Some("https://capstan.example.com/previews/7".into()),
    }
}

/// The credential header `host` expects, as (name, value).
fn credential(server: &ForgeServer, host: &str) -> (&'static str, String) {
    use base64::Engine as _;
    let token = server.token(host);
    let basic = |user: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
        )
    };
    match host {
        "github" | "bitbucket-server" => ("authorization", format!("Bearer {token}")),
        "gitlab" => ("private-token", token.clone()),
        "bitbucket-cloud" => ("authorization", basic(BOT_USER)),
        "gitea" => ("authorization", format!("token {token}")),
        _ => ("authorization", basic("")),
    }
}

#[tokio::test]
async fn statuses_reach_every_host_in_its_own_words_with_its_credential() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    let long = format!("Preview: {}", "app changed, ".repeat(30));
    for host in HOSTS {
        let repo = server.repo(host);
        assert!(forges.configured_for(&repo), "{host}");
        let sha = format!(
            "{:x}{SHA}",
            HOSTS.iter().position(|h| *h == host).expect("a host")
        );
        let sha = &sha[..40];
        for state in [
            StatusState::Running,
            StatusState::Failure,
            StatusState::Success,
        ] {
            let mut s = status(state);
            s.description = long.clone();
            forges
                .set_status(&repo, sha, &s)
                .await
                .unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        let got = server.statuses(sha);
        let words: Vec<&str> = got.iter().map(|s| s.state.as_str()).collect();
        let want: &[&str] = match host {
            "github" | "gitea" => &["pending", "failure", "success"],
            "gitlab" => &["running", "failed", "success"],
            "bitbucket-cloud" | "bitbucket-server" => &["INPROGRESS", "FAILED", "SUCCESSFUL"],
            _ => &["pending", "failed", "succeeded"],
        };
        assert_eq!(words, want, "{host}: state words");
        for s in &got {
            assert_eq!(s.context, "capstan/preview", "{host}: context");
            assert_eq!(
                s.target_url.as_deref(),
                Some("https://capstan.example.com/previews/7"),
                "{host}: link"
            );
            assert!(s.description.starts_with("Preview: app changed"), "{host}");
            let limit = if matches!(host, "github" | "gitea") {
                140
            } else {
                255
            };
            assert!(
                s.description.chars().count() <= limit,
                "{host}: description cut to {limit}"
            );
        }
        let (name, value) = credential(&server, host);
        let sent: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.host == Some(host))
            .collect();
        assert_eq!(sent.len(), 3, "{host}: one request a status");
        for r in &sent {
            assert_eq!(r.method, "POST");
            assert_eq!(
                r.headers.get(name),
                Some(&value),
                "{host}: credential header"
            );
            assert!(
                r.headers["user-agent"].starts_with("capstan/"),
                "{host}: a User-Agent"
            );
        }
    }
    let github = server
        .requests()
        .into_iter()
        .find(|r| r.host == Some("github"))
        .expect("a GitHub request");
    assert_eq!(
        github.path,
        format!("/github/repos/octo/shop/statuses/0{}", &SHA[..39])
    );
    assert_eq!(github.headers["accept"], "application/vnd.github+json");
    assert_eq!(github.headers["x-github-api-version"], "2022-11-28");
    let azure = server
        .requests()
        .into_iter()
        .find(|r| r.host == Some("azure-devops"))
        .expect("an Azure request");
    assert_eq!(azure.query, "api-version=7.1");
    assert_eq!(azure.body.expect("json")["context"]["genre"], "capstan");
}

#[tokio::test]
async fn one_comment_per_pr_is_edited_in_place_and_found_again_after_a_restart() {
    let server = ForgeServer::start();
    let settings = settings(&server);
    for (i, host) in HOSTS.into_iter().enumerate() {
        let pr = 100 + i as u64;
        let repo = server.repo(host);
        let human = server.seed_comment(host, pr, "alice", "Looks good, but see the preview");
        let forges = forges(&settings);
        let first = forges
            .upsert_comment(&repo, pr, MARKER, &format!("{MARKER}\n## Preview v1"), None)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(
            first.thread.is_some(),
            host == "azure-devops",
            "{host}: only Azure comments live in threads"
        );
        let second = forges
            .upsert_comment(
                &repo,
                pr,
                MARKER,
                &format!("{MARKER}\n## Preview v2"),
                Some(&first),
            )
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(second, first, "{host}: the same comment");
        let comments = server.comments(pr);
        assert_eq!(
            comments.len(),
            2,
            "{host}: no second comment: {comments:#?}"
        );
        assert!(
            comments[1].body.ends_with("## Preview v2"),
            "{host}: edited"
        );

        // A restart: the record of the comment is lost.
        let restarted = self::forges(&settings);
        let third = restarted
            .upsert_comment(&repo, pr, MARKER, &format!("{MARKER}\n## Preview v3"), None)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(third, first, "{host}: found by its marker");
        let comments = server.comments(pr);
        assert_eq!(comments.len(), 2, "{host}: still one comment of Capstan's");
        assert_eq!(
            comments[0].body, human.body,
            "{host}: the human's comment untouched"
        );
        assert_eq!(
            comments[1].body,
            format!("{MARKER}\n## Preview v3"),
            "{host}"
        );
        assert_eq!(
            comments[1].edits, 2,
            "{host}: edited twice, never recreated"
        );
    }
}

#[tokio::test]
async fn a_deleted_comment_is_replaced_by_a_new_one() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    for (i, host) in HOSTS.into_iter().enumerate() {
        let pr = 200 + i as u64;
        let repo = server.repo(host);
        let first = forges
            .upsert_comment(&repo, pr, MARKER, &format!("{MARKER}\nv1"), None)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let id: u64 = first.id.parse().expect("numeric id");
        let thread = first
            .thread
            .as_ref()
            .map(|t| t.parse().expect("numeric thread"));
        server.delete_comment(id, thread);
        let again = forges
            .upsert_comment(&repo, pr, MARKER, &format!("{MARKER}\nv2"), Some(&first))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_ne!(again, first, "{host}: a new comment");
        let comments = server.comments(pr);
        assert_eq!(comments.len(), 1, "{host}");
        assert!(comments[0].body.ends_with("v2"), "{host}");
    }
}

#[tokio::test]
async fn the_marked_comment_is_found_beyond_the_first_page() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    for (i, host) in HOSTS.into_iter().enumerate() {
        let pr = 300 + i as u64;
        let repo = server.repo(host);
        // Bitbucket Data Center lists activities newest first, the others oldest first: the
        // marked comment is put where it lands past the first page.
        let mark = |server: &ForgeServer| {
            server.seed_comment(host, pr, BOT_USER, &format!("{MARKER}\nold preview"))
        };
        let ours = if host == "bitbucket-server" {
            Some(mark(&server))
        } else {
            None
        };
        for n in 0..150 {
            server.seed_comment(host, pr, "alice", &format!("review remark {n}"));
        }
        let ours = ours.unwrap_or_else(|| mark(&server));
        let got = forges
            .upsert_comment(&repo, pr, MARKER, &format!("{MARKER}\nnew preview"), None)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(got.id, ours.id.to_string(), "{host}: the marked comment");
        let comments = server.comments(pr);
        assert_eq!(comments.len(), 151, "{host}: nothing created");
        assert!(
            comments
                .iter()
                .any(|c| c.body == format!("{MARKER}\nnew preview")),
            "{host}: edited"
        );
        let lists = server
            .requests()
            .into_iter()
            .filter(|r| r.host == Some(host) && r.method == "GET")
            .count();
        if host != "azure-devops" {
            assert!(lists >= 2, "{host}: read more than one page ({lists})");
        }
    }
}

#[tokio::test]
async fn bitbucket_data_center_edits_at_the_current_version() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    let repo = server.repo("bitbucket-server");
    let ours = forges
        .upsert_comment(&repo, 9, MARKER, &format!("{MARKER}\nv1"), None)
        .await
        .expect("created");
    // Someone (or Capstan from another process) edits it: its version moves to 1.
    server.edit_comment(ours.id.parse().expect("id"), &format!("{MARKER}\nedited"));
    let again = forges
        .upsert_comment(&repo, 9, MARKER, &format!("{MARKER}\nv2"), Some(&ours))
        .await
        .expect("edited");
    assert_eq!(again, ours);
    let put = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PUT")
        .expect("a PUT");
    assert_eq!(
        put.path,
        format!(
            "/bitbucket-server/rest/api/1.0/projects/SHOP/repos/shop/pull-requests/9/comments/{}",
            ours.id
        )
    );
    let body = put.body.expect("json");
    assert_eq!(body["version"], 1, "the version read just before");
    assert_eq!(body["text"], format!("{MARKER}\nv2"));
    let comments = server.comments(9);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].version, 2);
}

#[tokio::test]
async fn unavailable_twice_then_success_is_retried() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    for host in HOSTS {
        let before = server.requests().len();
        server.fail_next(2, Failure::Unavailable);
        forges
            .set_status(&server.repo(host), SHA, &status(StatusState::Success))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(
            server.requests().len() - before,
            3,
            "{host}: two failures and a success"
        );
    }
    assert_eq!(server.statuses(SHA).len(), 6);
    // A comment survives a flaky host too.
    server.fail_next(2, Failure::Unavailable);
    let r = forges
        .upsert_comment(&server.repo("gitlab"), 5, MARKER, "preview", None)
        .await
        .expect("retried");
    assert_eq!(server.comments(5).len(), 1);
    assert_eq!(
        server.comments(5)[0].body,
        format!("{MARKER}\npreview"),
        "a body without its marker gets it, so it can be found again"
    );
    assert_eq!(r.id, server.comments(5)[0].id.to_string());
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    server.fail_next(10, Failure::Unavailable);
    let err = forges
        .set_status(&server.repo("github"), SHA, &status(StatusState::Pending))
        .await
        .expect_err("the host stays down");
    assert!(matches!(err, ForgeError::Unavailable(_)), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(server.requests().len(), 4, "max_attempts = 4");
}

#[tokio::test]
async fn a_refused_credential_is_not_retried_and_the_error_hides_the_token() {
    let server = ForgeServer::start();
    for host in HOSTS {
        let mut settings = settings(&server);
        let wrong = format!("wrong-{host}-token-0123456789");
        settings.hosts = BTreeMap::from([("h".to_owned(), entry(&server, host, &wrong))]);
        let forges = forges(&settings);
        let before = server.requests().len();
        let err = forges
            .set_status(&server.repo(host), SHA, &status(StatusState::Success))
            .await
            .expect_err("refused");
        assert!(
            matches!(err, ForgeError::Refused { status: 401, .. }),
            "{host}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("refused"), "{host}: {text}");
        assert!(!text.contains(&wrong), "{host}: the token leaks in {text}");
        assert!(!format!("{err:?}").contains(&wrong), "{host}");
        assert_eq!(server.requests().len() - before, 1, "{host}: not retried");
    }
}

#[tokio::test]
async fn a_rate_limited_call_waits_as_long_as_the_host_asks() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    server.fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 1,
        },
    );
    let start = Instant::now();
    forges
        .set_status(&server.repo("gitea"), SHA, &status(StatusState::Success))
        .await
        .expect("succeeds after waiting");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured ({waited:?})"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(server.requests().len(), 2);

    // GitHub's primary limit: 403 with x-ratelimit-remaining 0 until x-ratelimit-reset.
    server.fail_next(1, Failure::GithubRateLimit { reset_in_secs: 2 });
    let start = Instant::now();
    forges
        .set_status(&server.repo("github"), SHA, &status(StatusState::Success))
        .await
        .expect("succeeds after the reset");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "waited for the reset ({waited:?})"
    );
    assert!(
        waited <= Duration::from_millis(3_200),
        "capped at retry_max ({waited:?})"
    );
    assert_eq!(server.statuses(SHA).len(), 2);
}

#[tokio::test]
async fn calls_are_paced_per_host_entry() {
    let server = ForgeServer::start();
    let mut settings = settings(&server);
    settings.requests_per_second = 4.0;
    let forges = forges(&settings);
    let repo = server.repo("github");
    let start = Instant::now();
    for _ in 0..8 {
        forges
            .set_status(&repo, SHA, &status(StatusState::Success))
            .await
            .expect("set");
    }
    let spent = start.elapsed();
    assert!(
        spent >= Duration::from_millis(900),
        "a burst of 4, then 4 more at 4/s: {spent:?}"
    );
}

#[tokio::test]
async fn nothing_is_sent_without_credentials() {
    let server = ForgeServer::start();
    let forges = forges(&ForgeSettings::default());
    for host in HOSTS {
        let repo = server.repo(host);
        assert!(!forges.configured_for(&repo), "{host}");
        let err = forges
            .set_status(&repo, SHA, &status(StatusState::Success))
            .await
            .expect_err("no credentials");
        assert!(matches!(err, ForgeError::NotConfigured(_)), "{host}: {err}");
        let err = forges
            .upsert_comment(&repo, 1, MARKER, "preview", None)
            .await
            .expect_err("no credentials");
        assert!(matches!(err, ForgeError::NotConfigured(_)), "{host}: {err}");
    }
    let gogs = ForgeRepo {
        kind: EventSource::Gogs,
        api_url: format!("{}/gogs/api/v1", server.base),
        owner: "octo".into(),
        name: "shop".into(),
    };
    let err = forges
        .set_status(&gogs, SHA, &status(StatusState::Success))
        .await
        .expect_err("Gogs has no status API");
    assert!(matches!(err, ForgeError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("Gogs"), "{err}");
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn bitbucket_statuses_need_a_link() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    for host in ["bitbucket-cloud", "bitbucket-server"] {
        let mut s = status(StatusState::Success);
        s.target_url = None;
        let err = forges
            .set_status(&server.repo(host), SHA, &s)
            .await
            .expect_err("Bitbucket requires url");
        assert!(err.to_string().contains("target_url"), "{host}: {err}");
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn gitlab_takes_a_repeated_state_as_done() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    let repo = server.repo("gitlab");
    for _ in 0..2 {
        forges
            .set_status(&repo, SHA, &status(StatusState::Running))
            .await
            .expect("GitLab's 400 for an unchanged state is success");
    }
    assert_eq!(server.statuses(SHA).len(), 1);
    assert_eq!(server.requests().len(), 2, "not retried either");
}

#[tokio::test]
async fn a_long_comment_is_cut_to_the_hosts_limit() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    let body = format!(
        "{MARKER}\n```diff\n{}```\n",
        "+  replicas: 3\n".repeat(8_000)
    );
    forges
        .upsert_comment(&server.repo("github"), 11, MARKER, &body, None)
        .await
        .expect("accepted once cut");
    let stored = &server.comments(11)[0].body;
    assert!(stored.chars().count() <= 65_536);
    assert!(stored.starts_with(MARKER));
    assert!(
        stored.ends_with("longer than 65536 characters._"),
        "a note says so"
    );
}

#[tokio::test]
async fn a_token_for_one_api_is_never_sent_to_another() {
    let a = ForgeServer::start();
    let b = ForgeServer::start();
    let a_token = a.token("github");
    let mut settings = settings(&a);
    settings.hosts = BTreeMap::from([("github".to_owned(), entry(&a, "github", &a_token))]);
    let forges = self::forges(&settings);
    let on_b = b.repo("github");
    assert!(!forges.configured_for(&on_b));
    let err = forges
        .set_status(&on_b, SHA, &status(StatusState::Success))
        .await
        .expect_err("not A's API");
    assert!(matches!(err, ForgeError::NotConfigured(_)), "{err}");
    assert!(b.requests().is_empty(), "B got nothing");

    // With a catch-all entry as well, B gets the catch-all's token and A keeps its own.
    settings.hosts.insert(
        "github_any".to_owned(),
        HostSettings {
            api_url: None,
            ..entry(&b, "github", &b.token("github"))
        },
    );
    let forges = self::forges(&settings);
    forges
        .set_status(&on_b, SHA, &status(StatusState::Success))
        .await
        .expect("B with the catch-all token");
    forges
        .upsert_comment(&on_b, 3, MARKER, "preview", None)
        .await
        .expect("B with the catch-all token");
    forges
        .set_status(&a.repo("github"), SHA, &status(StatusState::Success))
        .await
        .expect("A with its own token");
    assert_eq!(a.requests().len(), 1);
    for r in b.requests() {
        assert!(
            r.headers.values().all(|v| !v.contains(&a_token)),
            "A's token went to B: {r:?}"
        );
    }
    assert_eq!(b.statuses(SHA).len(), 1);
}

#[tokio::test]
async fn a_token_file_is_read_again_on_every_call() {
    let server = ForgeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gitea-token");
    std::fs::write(&file, "stale-token\n").expect("write");
    let mut settings = settings(&server);
    settings.hosts = BTreeMap::from([(
        "gitea".to_owned(),
        HostSettings {
            token: None,
            token_file: Some(file.clone()),
            ..entry(&server, "gitea", "")
        },
    )]);
    let forges = forges(&settings);
    let repo = server.repo("gitea");
    let err = forges
        .set_status(&repo, SHA, &status(StatusState::Success))
        .await
        .expect_err("the stale token is refused");
    assert!(
        matches!(err, ForgeError::Refused { status: 401, .. }),
        "{err}"
    );
    std::fs::write(&file, format!("{}\n", server.token("gitea"))).expect("rotate");
    forges
        .set_status(&repo, SHA, &status(StatusState::Success))
        .await
        .expect("the rotated token is used");
    let last = server.requests().pop().expect("a request");
    assert_eq!(
        last.headers["authorization"],
        format!("token {}", server.token("gitea")),
        "the file's trailing newline is not sent"
    );
}

#[tokio::test]
async fn comment_refs_survive_a_round_trip_through_storage() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    let repo = server.repo("azure-devops");
    let ours = forges
        .upsert_comment(&repo, 12, MARKER, &format!("{MARKER}\nv1"), None)
        .await
        .expect("created");
    let stored = serde_json::to_string(&ours).expect("serialise");
    let back: CommentRef = serde_json::from_str(&stored).expect("deserialise");
    forges
        .upsert_comment(&repo, 12, MARKER, &format!("{MARKER}\nv2"), Some(&back))
        .await
        .expect("edited");
    let patch = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .expect("edited by PATCH, without listing threads");
    assert_eq!(
        patch.path,
        format!(
            "/azure/org/Shop/_apis/git/repositories/3411ebc1-d5aa-464f-9615-0b527bc66719/pullRequests/12/threads/{}/comments/{}",
            ours.thread.as_deref().expect("a thread"),
            ours.id
        )
    );
    assert_eq!(server.comments(12).len(), 1);
}

#[tokio::test]
async fn calls_run_on_spawned_tasks_sharing_one_client() {
    let server = ForgeServer::start();
    let forges = forges(&settings(&server));
    let tasks: Vec<_> = HOSTS
        .iter()
        .map(|host| {
            let (forges, repo) = (forges.clone(), server.repo(host));
            tokio::spawn(async move {
                forges
                    .set_status(&repo, SHA, &status(StatusState::Pending))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("joined").expect("set");
    }
    let got = server
        .wait_for_statuses(HOSTS.len(), Duration::from_secs(5))
        .await;
    let mut hosts: Vec<&str> = got.iter().map(|s| s.host).collect();
    hosts.sort_unstable();
    let mut want = HOSTS.to_vec();
    want.sort_unstable();
    assert_eq!(hosts, want, "one status on each host");
}

#[tokio::test]
async fn a_github_app_buys_an_installation_token_once_and_uses_it() {
    let server = ForgeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let openssl_bin = common::tools::require("openssl");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new(&openssl_bin)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let new_key = |name: &str| {
        let path = dir.path().join(name);
        let text = path.display().to_string();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &text,
        ]);
        (path, openssl(&["pkey", "-in", &text, "-pubout"]))
    };
    let (key, public) = new_key("app.pem");
    server.accept_github_app("123456", &public);
    let mut app_entry = entry(&server, "github", "unused");
    app_entry.token = None;
    app_entry.app_id = Some("123456".into());
    app_entry.installation_id = Some(42);
    app_entry.private_key_file = Some(key);
    let settings = ForgeSettings {
        timeout_ms: 5_000,
        max_attempts: 2,
        retry_initial_ms: 10,
        retry_max_ms: 100,
        requests_per_second: 0.0,
        hosts: BTreeMap::from([("github".to_owned(), app_entry.clone())]),
    };
    let repo = server.repo("github");
    let app_forges = forges(&settings);
    for state in [StatusState::Success, StatusState::Failure] {
        app_forges
            .set_status(&repo, SHA, &status(state))
            .await
            .expect("status with the App's installation token");
    }
    assert_eq!(server.statuses(SHA).len(), 2);
    assert_eq!(server.minted(), 1, "the installation token is cached");
    let mint = server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/app/installations/42/access_tokens"))
        .expect("a token request");
    assert_eq!(mint.method, "POST");

    // A key the host does not know is refused, and the error names the App.
    let (other, _) = new_key("other.pem");
    let mut wrong = app_entry;
    wrong.private_key_file = Some(other);
    let wrong_settings = ForgeSettings {
        hosts: BTreeMap::from([("github".to_owned(), wrong)]),
        ..settings
    };
    let err = forges(&wrong_settings)
        .set_status(&repo, SHA, &status(StatusState::Success))
        .await
        .expect_err("a foreign key");
    assert!(
        matches!(err, ForgeError::Refused { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("123456"), "{err}");

    // An incomplete App entry is a configuration error at start.
    let mut half = entry(&server, "github", "t");
    half.app_id = Some("1".into());
    let bad = ForgeSettings {
        hosts: BTreeMap::from([("github".to_owned(), half)]),
        ..ForgeSettings::default()
    };
    let err = Forges::new(&bad).err().expect("refused");
    assert!(err.to_string().contains("installation_id"), "{err}");
}
