//! Behaviour every provider shares: credentials, content type, hostile bodies.

use super::*;

const SECRET: &str = "s3cret-for-tests";

fn sample_push<'a>(files: Option<&'a [String]>) -> SamplePush<'a> {
    SamplePush {
        repo: "https://git.example.com/org/repo.git",
        git_ref: "refs/heads/main",
        before: Some("1111111111111111111111111111111111111111"),
        after: Some("2222222222222222222222222222222222222222"),
        files,
        default_branch: "main",
        delivery: "d-1",
    }
}

fn secrets_for(provider: &str, secret: Option<&str>, unsigned: bool) -> WebhookSecrets {
    let mut s = WebhookSecrets::new();
    if let Some(secret) = secret {
        s = s
            .with_secret(provider, SecretString::from(secret.to_owned()))
            .expect("known provider");
    }
    if unsigned {
        s = s.allowing_unsigned(provider).expect("known provider");
    }
    s
}

fn run(req: &SignedRequest, secrets: &WebhookSecrets) -> Result<Received, WebhookError> {
    let headers = req.header_map();
    receive(&Request::new(&headers, &req.body), secrets).map_err(|(_, e)| e)
}

fn is_event(r: &Result<Received, WebhookError>) -> bool {
    matches!(
        r,
        Ok(Received {
            outcome: Outcome::Event(_),
            ..
        })
    )
}

fn unauthorized(r: &Result<Received, WebhookError>) -> bool {
    matches!(r, Err(WebhookError::Unauthorized(_)))
}

#[test]
fn every_provider_recognises_its_own_sample_and_no_other_claims_it() {
    for p in PROVIDERS {
        let req = p.sample(&sample_push(None), Some(SECRET));
        let found = detect(&req.header_map()).map(|d| d.name());
        assert_eq!(
            found,
            Some(p.name()),
            "{}'s sample was recognised as {found:?}",
            p.name()
        );
    }
}

#[test]
fn every_provider_accepts_its_signed_sample_and_parses_the_push() {
    let files = vec!["apps/a/deploy.yaml".to_owned()];
    for p in PROVIDERS {
        let req = p.sample(&sample_push(Some(&files)), Some(SECRET));
        let r = run(&req, &secrets_for(p.name(), Some(SECRET), false));
        let Ok(Received {
            outcome: Outcome::Event(ev),
            delivery,
            ..
        }) = r
        else {
            panic!("{}: {r:?}", p.name());
        };
        assert_eq!(ev.source.as_str(), p.name());
        assert!(
            ev.repo_urls
                .iter()
                .any(|u| crate::router::repo_url::canonical(u)
                    == crate::router::repo_url::canonical("https://git.example.com/org/repo")),
            "{}: {:?}",
            p.name(),
            ev.repo_urls
        );
        assert_eq!(ev.refs.len(), 1, "{}", p.name());
        assert_eq!(ev.refs[0].name, "refs/heads/main", "{}", p.name());
        assert_eq!(
            ev.refs[0].after.as_deref(),
            Some("2222222222222222222222222222222222222222"),
            "{}",
            p.name()
        );
        assert!(
            delivery.is_some() || p.name() == "generic",
            "{}: no delivery id",
            p.name()
        );
    }
}

#[test]
fn wrong_missing_and_rotated_out_credentials_are_refused() {
    for p in PROVIDERS {
        let name = p.name();
        let signed = p.sample(&sample_push(None), Some(SECRET));
        let unsigned = p.sample(&sample_push(None), None);
        let other = p.sample(&sample_push(None), Some("a-different-secret"));
        // Wrong secret.
        assert!(
            unauthorized(&run(&other, &secrets_for(name, Some(SECRET), false))),
            "{name}"
        );
        // Missing credential.
        assert!(
            unauthorized(&run(&unsigned, &secrets_for(name, Some(SECRET), false))),
            "{name}"
        );
        // No secret configured at all, signed or not.
        assert!(
            unauthorized(&run(&signed, &secrets_for(name, None, false))),
            "{name}"
        );
        assert!(
            unauthorized(&run(&unsigned, &secrets_for(name, None, false))),
            "{name}"
        );
        // A secret that was rotated out no longer verifies; both verify during the rotation.
        let rotated = secrets_for(name, Some("the-new-secret"), false);
        assert!(unauthorized(&run(&signed, &rotated)), "{name}");
        let both = rotated
            .with_secret(name, SecretString::from(SECRET.to_owned()))
            .expect("known");
        assert!(is_event(&run(&signed, &both)), "{name}");
        // A secret of another provider does not count.
        if let Some(elsewhere) = PROVIDERS.iter().find(|o| o.name() != name) {
            let configured_elsewhere = secrets_for(elsewhere.name(), Some(SECRET), false);
            assert!(unauthorized(&run(&signed, &configured_elsewhere)), "{name}");
        }
    }
}

#[test]
fn unsigned_is_accepted_only_where_allowed_and_a_forged_credential_never() {
    for p in PROVIDERS {
        let name = p.name();
        let unsigned = p.sample(&sample_push(None), None);
        let forged = p.sample(&sample_push(None), Some("forged"));
        assert!(
            is_event(&run(&unsigned, &secrets_for(name, None, true))),
            "{name}"
        );
        assert!(
            is_event(&run(&unsigned, &secrets_for(name, Some(SECRET), true))),
            "{name}"
        );
        assert!(
            unauthorized(&run(&forged, &secrets_for(name, Some(SECRET), true))),
            "{name}"
        );
        assert!(
            unauthorized(&run(&forged, &secrets_for(name, None, true))),
            "{name}"
        );
    }
}

#[test]
fn a_body_changed_after_signing_is_refused() {
    for p in PROVIDERS {
        let mut req = p.sample(&sample_push(None), Some(SECRET));
        if let Some(b) = req.body.iter_mut().find(|b| **b == b'2') {
            *b = b'3';
        }
        let r = run(&req, &secrets_for(p.name(), Some(SECRET), false));
        // Hosts without a body MAC (a token or Basic credential) cannot notice; all others must.
        if !["gitlab", "azure-devops"].contains(&p.name()) {
            assert!(unauthorized(&r), "{}: {r:?}", p.name());
        }
    }
}

#[test]
fn only_json_bodies_are_accepted() {
    for p in PROVIDERS {
        let mut req = p.sample(&sample_push(None), Some(SECRET));
        for (k, v) in req.headers.iter_mut() {
            if k == "content-type" {
                *v = "application/x-www-form-urlencoded".into();
            }
        }
        let r = run(&req, &secrets_for(p.name(), Some(SECRET), false));
        assert!(
            matches!(r, Err(WebhookError::UnsupportedContentType)),
            "{}: {r:?}",
            p.name()
        );
    }
}

#[test]
fn hostile_bodies_from_an_authenticated_sender_never_panic_nor_become_events_by_accident() {
    let bodies: &[&[u8]] = &[
        b"",
        b"null",
        b"[]",
        b"{}",
        b"\"x\"",
        b"{\"ref\": 5}",
        b"{\"ref\": null, \"repository\": null}",
        b"{\"repository\": {\"links\": {\"clone\": {\"href\": \"x\"}}}}",
        b"{\"repository\": {\"links\": {\"clone\": \"x\"}}}",
        b"{\"repository\": {\"links\": {\"clone\": [1, null, \"x\"]}}}",
        b"{\"resource\": {\"refUpdates\": []}, \"eventType\": \"git.push\"}",
        b"{\"push\": {\"changes\": []}}",
        b"{\"changes\": [], \"eventKey\": \"repo:refs_changed\"}",
        b"{\"ref\": \"refs/heads/x\", \"repository\": {\"clone_url\": \"\"}}",
        b"\xff\xfe\x00",
        b"{\"a\":",
    ];
    for p in PROVIDERS {
        for body in bodies {
            let template = p.sample(&sample_push(None), None);
            let req = SignedRequest {
                headers: template.headers.clone(),
                body: body.to_vec(),
            };
            let headers = req.header_map();
            let request = Request::new(&headers, &req.body);
            // Straight to the parser, as an authenticated sender would reach it.
            if let Ok(Outcome::Event(ev)) = p.parse(&request) {
                assert!(
                    !ev.repo_urls.is_empty(),
                    "{}: an event without a repository",
                    p.name()
                );
                assert!(!ev.refs.is_empty(), "{}: an event without refs", p.name());
            }
        }
    }
}

#[test]
fn unknown_senders_and_provider_names_are_refused() {
    let req = SignedRequest::json(&serde_json::json!({}), vec![]);
    assert!(matches!(
        run(&req, &WebhookSecrets::new()),
        Err(WebhookError::UnknownProvider)
    ));
    let Err(err) = provider_named("githib") else {
        panic!("typo accepted");
    };
    assert!(err.to_string().contains("githib"), "{err}");
    assert!(
        WebhookSecrets::new().allowing_unsigned("gitlab").is_ok()
            == provider_named("gitlab").is_ok()
    );
}

#[test]
fn refusals_never_repeat_the_secret_or_the_expected_credential() {
    for p in PROVIDERS {
        let name = p.name();
        let configured = secrets_for(name, Some(SECRET), false);
        let good = p.sample(&sample_push(None), Some(SECRET));
        let expected: Vec<String> = good.headers.iter().map(|(_, v)| v.clone()).collect();
        let forged = p.sample(&sample_push(None), Some("forged-secret"));
        let unsigned = p.sample(&sample_push(None), None);
        for req in [&forged, &unsigned] {
            let Err(e) = run(req, &configured) else {
                panic!("{name}: accepted");
            };
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET), "{name}: {shown}");
            for value in expected
                .iter()
                .filter(|v| v.len() >= 16 && !v.contains("json"))
            {
                assert!(
                    !shown.contains(value.as_str()),
                    "{name} shows {value}: {shown}"
                );
            }
        }
    }
}

mod pull_requests {
    use super::*;

    const HEAD: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    const BASE: &str = "95790bf891e76fee5e1747ab589903a6a1f80f22";

    fn sample(action: PullRequestAction, fork_url: Option<&str>) -> SamplePullRequest<'_> {
        SamplePullRequest {
            repo_url: "https://git.example.com/org/repo.git",
            api_url: "http://127.0.0.1:18080/api/v4",
            number: 17,
            action,
            base_ref: "main",
            base_sha: BASE,
            head_sha: HEAD,
            head_ref: "feature/preview",
            fork_url,
            title: "Preview me",
            author: "octocat",
        }
    }

    /// Every provider that has pull requests (the generic webhook has none; Gogs sends no head
    /// commit).
    fn hosts() -> impl Iterator<Item = &'static dyn Provider> {
        PROVIDERS
            .iter()
            .copied()
            .filter(|p| !["generic", "gogs"].contains(&p.name()))
    }

    /// Bitbucket Cloud has no reopening; its sample sends an update instead.
    fn expected_action(provider: &str, sent: PullRequestAction) -> PullRequestAction {
        match (provider, sent) {
            ("bitbucket-cloud", PullRequestAction::Reopened) => PullRequestAction::Updated,
            _ => sent,
        }
    }

    #[test]
    fn every_host_s_signed_sample_round_trips_through_receive() {
        for p in hosts() {
            for action in [
                PullRequestAction::Opened,
                PullRequestAction::Updated,
                PullRequestAction::Reopened,
                PullRequestAction::Closed,
            ] {
                let req = p.sample_pull_request(&sample(action, None), Some(SECRET));
                let r = run(&req, &secrets_for(p.name(), Some(SECRET), false));
                let Ok(Received {
                    provider,
                    outcome: Outcome::PullRequest(pr),
                    delivery,
                }) = r
                else {
                    panic!("{} {action:?}: {r:?}", p.name());
                };
                let name = p.name();
                assert_eq!(provider.name(), name);
                assert_eq!(pr.source.as_str(), name);
                assert!(delivery.is_some() && delivery == pr.delivery, "{name}");
                assert_eq!(pr.action, expected_action(name, action), "{name}");
                assert_eq!(pr.number, 17, "{name}");
                assert_eq!(pr.title, "Preview me", "{name}");
                assert_eq!(pr.author.as_deref(), Some("octocat"), "{name}");
                assert!(
                    pr.repo_urls
                        .iter()
                        .any(|u| u == "https://git.example.com/org/repo.git"),
                    "{name}: {:?}",
                    pr.repo_urls
                );
                assert_eq!(pr.base_ref, "main", "{name}");
                assert_eq!(pr.head_ref.as_deref(), Some("feature/preview"), "{name}");
                assert!(pr.head_repo_urls.is_empty(), "{name}");
                if name == "bitbucket-cloud" {
                    assert_eq!(pr.head_sha, &HEAD[..12]);
                    assert_eq!(pr.base_sha.as_deref(), Some(&BASE[..12]));
                } else {
                    assert_eq!(pr.head_sha, HEAD, "{name}");
                    assert_eq!(pr.base_sha.as_deref(), Some(BASE), "{name}");
                }
                assert_eq!(pr.api.api_url, "http://127.0.0.1:18080/api/v4", "{name}");
                assert!(pr.html_url.is_some(), "{name}");
            }
        }
    }

    #[test]
    fn every_host_s_fork_sample_names_the_fork_as_the_head_repository() {
        let fork = "https://git.example.com/someone/repo.git";
        for p in hosts() {
            let req = p.sample_pull_request(
                &sample(PullRequestAction::Updated, Some(fork)),
                Some(SECRET),
            );
            let r = run(&req, &secrets_for(p.name(), Some(SECRET), false));
            let Ok(Received {
                outcome: Outcome::PullRequest(pr),
                ..
            }) = r
            else {
                panic!("{}: {r:?}", p.name());
            };
            assert!(
                pr.head_repo_urls.iter().any(|u| u == fork),
                "{}: {:?}",
                p.name(),
                pr.head_repo_urls
            );
            assert!(!pr.repo_urls.iter().any(|u| u == fork), "{}", p.name());
        }
    }

    #[test]
    fn api_owner_and_name_follow_the_sample_repository() {
        for p in hosts() {
            let req = p.sample_pull_request(&sample(PullRequestAction::Opened, None), None);
            let headers = req.header_map();
            let Ok(Outcome::PullRequest(pr)) = p.parse(&Request::new(&headers, &req.body)) else {
                panic!("{}", p.name());
            };
            let (owner, name) = (pr.api.owner.as_str(), pr.api.name.as_str());
            match p.name() {
                "github" | "gitea" | "bitbucket-cloud" => {
                    assert_eq!((owner, name), ("org", "repo"))
                }
                "bitbucket-server" => assert_eq!((owner, name), ("ORG", "repo")),
                "gitlab" => assert!(owner.is_empty() && name.parse::<u64>().is_ok(), "{name}"),
                "azure-devops" => assert!(!owner.is_empty() && !name.is_empty()),
                other => panic!("untested host {other}"),
            }
        }
    }

    #[test]
    fn samples_of_local_repositories_round_trip_too() {
        // End-to-end tests serve repositories from disk and the host API from a local port.
        for repo_url in [
            "/tmp/capstan-e2e/repos/app.git",
            "file:///tmp/capstan-e2e/repos/app",
        ] {
            for p in hosts() {
                let pr = SamplePullRequest {
                    repo_url,
                    api_url: "http://127.0.0.1:18080",
                    ..sample(
                        PullRequestAction::Opened,
                        Some("/tmp/capstan-e2e/forks/app.git"),
                    )
                };
                let req = p.sample_pull_request(&pr, Some(SECRET));
                let r = run(&req, &secrets_for(p.name(), Some(SECRET), false));
                let Ok(Received {
                    outcome: Outcome::PullRequest(pr),
                    ..
                }) = r
                else {
                    panic!("{} {repo_url}: {r:?}", p.name());
                };
                assert!(
                    pr.repo_urls.iter().any(|u| u == repo_url),
                    "{}: {:?}",
                    p.name(),
                    pr.repo_urls
                );
                assert!(
                    pr.head_repo_urls
                        .iter()
                        .any(|u| u == "/tmp/capstan-e2e/forks/app.git"),
                    "{}: {:?}",
                    p.name(),
                    pr.head_repo_urls
                );
                if p.name() != "gitlab" {
                    assert_eq!(pr.api.api_url, "http://127.0.0.1:18080", "{}", p.name());
                }
            }
        }
    }

    #[test]
    fn a_pull_request_with_a_bad_signature_is_refused_before_parsing() {
        for p in PROVIDERS.iter().filter(|p| p.name() != "generic") {
            let forged =
                p.sample_pull_request(&sample(PullRequestAction::Opened, None), Some("forged"));
            let r = run(&forged, &secrets_for(p.name(), Some(SECRET), false));
            assert!(unauthorized(&r), "{}: {r:?}", p.name());
        }
    }

    #[test]
    fn every_pull_request_sample_is_recognised_as_its_own_host() {
        for p in PROVIDERS {
            let req = p.sample_pull_request(&sample(PullRequestAction::Opened, None), None);
            assert_eq!(detect(&req.header_map()).map(|d| d.name()), Some(p.name()));
        }
    }

    #[test]
    fn gogs_pull_requests_are_answered_but_not_previewed() {
        let gogs = provider_named("gogs").expect("registered");
        let req = gogs.sample_pull_request(&sample(PullRequestAction::Opened, None), Some(SECRET));
        let r = run(&req, &secrets_for("gogs", Some(SECRET), false));
        assert!(
            matches!(&r, Ok(Received { outcome: Outcome::Ignored(reason), .. }) if reason.contains("no head commit")),
            "{r:?}"
        );
    }

    #[test]
    fn api_bases_are_cut_at_the_first_marker_and_repository_paths_only_at_the_end() {
        assert_eq!(
            url_before("https://api.github.com/repos/repos/x", "/repos/").as_deref(),
            Some("https://api.github.com")
        );
        assert_eq!(url_before("git@host:repos/x", "/repos/"), None);
        assert_eq!(url_before("https:///repos/x", "/repos/"), None);
        assert_eq!(
            url_without_path("https://h/gitlab/g/p/", "g/p").as_deref(),
            Some("https://h/gitlab")
        );
        assert_eq!(url_without_path("https://h/g/p", "other/p"), None);
        assert_eq!(url_without_path("https://h/g/p", ""), None);
        assert_eq!(
            url_without_path("https://h/xg/p", "g/p"),
            None,
            "whole segments only"
        );
    }
}
