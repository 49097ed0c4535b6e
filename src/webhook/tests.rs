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
