//! The generic webhook for CI systems and scripts: a short JSON trigger signed like GitHub's
//! (`X-Capstan-Signature: sha256=<hex>`). The body is documented in docs/architecture.md.

use actix_web::http::header::HeaderMap;

use super::{
    Credential, Outcome, Provider, Request, SamplePush, Signature, SignedRequest, WebhookError,
    hmac_credential,
};
use crate::event::EventSource;
use crate::secret::SecretString;

/// Any sender that signs the short trigger form.
pub struct Generic;

impl Provider for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        headers.contains_key("x-capstan-event") || headers.contains_key("x-capstan-signature")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        hmac_credential(request, "x-capstan-signature", Signature::parse, secrets)
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        request
            .header("x-capstan-delivery")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        match request.header("x-capstan-event") {
            None | Some("push") => {}
            Some("ping") => return Ok(Outcome::Ignored("ping".into())),
            Some(other) => {
                return Ok(Outcome::Ignored(format!(
                    "generic event {other:?} is not acted on (only push)"
                )));
            }
        }
        // The same contract as a queue trigger (`schemas/trigger.v1.schema.json`).
        let mut event =
            crate::event::parse_trigger(request.body, EventSource::from_name(self.name()))
                .map_err(|e| WebhookError::BadPayload(format!("generic trigger: {e}")))?;
        event.delivery = self.delivery(request).and_then(super::usable_delivery);
        Ok(Outcome::Event(event))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let mut body = serde_json::json!({"repo": push.repo, "ref": push.git_ref});
        if let Some(after) = push.after {
            body["revision"] = after.into();
        }
        if let Some(files) = push.files {
            body["paths"] = files.into();
        }
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-capstan-event", "push".to_owned()),
                ("x-capstan-delivery", push.delivery.to_owned()),
                (
                    "user-agent",
                    concat!("capstan/", env!("CARGO_PKG_VERSION")).to_owned(),
                ),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-capstan-signature", signature);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MAX_CHANGED_FILES, MAX_PATH_CHARS, RefUpdate};
    use crate::webhook::{WebhookSecrets, receive};

    const SECRET: &str = "ci-secret";

    fn request(event: Option<&str>, body: &[u8]) -> SignedRequest {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(e) = event {
            headers.push(("x-capstan-event".to_owned(), e.to_owned()));
        }
        headers.push((
            "x-capstan-signature".to_owned(),
            Signature::sign(SECRET.as_bytes(), body),
        ));
        SignedRequest {
            headers,
            body: body.to_vec(),
        }
    }

    fn run(req: &SignedRequest) -> Result<super::super::Received, WebhookError> {
        let headers = req.header_map();
        let secrets = WebhookSecrets::new()
            .with_secret("generic", SecretString::from(SECRET))
            .expect("known provider");
        receive(&Request::new(&headers, &req.body), &secrets).map_err(|(_, e)| e)
    }

    fn outcome(body: &[u8]) -> Result<Outcome, WebhookError> {
        run(&request(Some("push"), body)).map(|r| r.outcome)
    }

    #[test]
    fn a_full_trigger_becomes_one_ref_with_its_paths() {
        let r = run(&request(
            None,
            br#"{"repo": "https://git.example.com/org/repo.git", "ref": "refs/heads/main",
                "revision": "ABCDEF0123456789abcdef0123456789ABCDEF01",
                "paths": ["b/x.yaml", "a/y.yaml"]}"#,
        ))
        .expect("accepted: the signature alone is enough to recognise the sender");
        assert_eq!(r.provider.name(), "generic");
        assert_eq!(r.delivery, None);
        let Outcome::Event(ev) = r.outcome else {
            panic!("not an event");
        };
        assert_eq!(ev.source.as_str(), "generic");
        assert_eq!(ev.repo_urls, ["https://git.example.com/org/repo.git"]);
        assert_eq!(
            ev.refs,
            vec![RefUpdate {
                name: "refs/heads/main".into(),
                before: None,
                after: Some("abcdef0123456789abcdef0123456789abcdef01".into()),
                created: false,
                deleted: false,
                forced: false,
            }]
        );
        assert_eq!(
            ev.changed_files,
            Some(vec!["b/x.yaml".to_owned(), "a/y.yaml".to_owned()])
        );
        assert_eq!(ev.default_branch, None);
    }

    #[test]
    fn a_bare_ref_is_kept_and_missing_paths_are_unknown_while_an_empty_list_is_known() {
        let Ok(Outcome::Event(ev)) =
            outcome(br#"{"repo": "git@git.example.com:org/repo.git", "ref": "main", "paths": []}"#)
        else {
            panic!("empty paths refused");
        };
        assert_eq!(ev.changed_files, Some(Vec::new()), "known: nothing changed");
        for body in [
            &br#"{"repo": "git@git.example.com:org/repo.git", "ref": "main"}"#[..],
            br#"{"repo": "git@git.example.com:org/repo.git", "ref": "main", "paths": null, "revision": null}"#,
        ] {
            let Ok(Outcome::Event(ev)) = outcome(body) else {
                panic!("{}", String::from_utf8_lossy(body));
            };
            assert_eq!(ev.refs[0].name, "main");
            assert_eq!(ev.refs[0].after, None);
            assert_eq!(ev.changed_files, None);
        }
    }

    #[test]
    fn ping_and_other_events_are_ignored() {
        let body = br#"{"repo": "https://git.example.com/org/repo.git", "ref": "main"}"#;
        let Ok(Outcome::Ignored(reason)) = run(&request(Some("ping"), b"{}")).map(|r| r.outcome)
        else {
            panic!("ping not ignored");
        };
        assert_eq!(reason, "ping");
        assert!(matches!(
            run(&request(Some("release"), body)).map(|r| r.outcome),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn the_delivery_header_is_the_delivery_id() {
        let body = br#"{"repo": "https://git.example.com/org/repo.git", "ref": "main"}"#;
        let mut req = request(Some("push"), body);
        req.add_header("x-capstan-delivery", "build-4711".into());
        assert_eq!(
            run(&req).expect("accepted").delivery.as_deref(),
            Some("build-4711")
        );
    }

    #[test]
    fn invalid_triggers_are_bad_payloads() {
        let many = serde_json::json!({
            "repo": "https://h/o/r", "ref": "main",
            "paths": vec!["p"; MAX_CHANGED_FILES + 1],
        })
        .to_string();
        let long = serde_json::json!({
            "repo": "https://h/o/r", "ref": "main",
            "paths": ["x".repeat(MAX_PATH_CHARS + 1)],
        })
        .to_string();
        let bodies: Vec<&[u8]> = vec![
            many.as_bytes(),
            long.as_bytes(),
            br#"{"repo": "", "ref": "main"}"#,
            br#"{"repo": "not a url", "ref": "main"}"#,
            br#"{"repo": "https://h/o/r", "ref": " "}"#,
            br#"{"repo": "https://h/o/r"}"#,
            br#"{"ref": "main"}"#,
            br#"{"repo": "https://h/o/r", "ref": 5}"#,
            br#"{"repo": "https://h/o/r", "ref": "main", "revision": "abc123"}"#,
            br#"{"repo": "https://h/o/r", "ref": "main", "revision": "zz22222222222222222222222222222222222222"}"#,
            br#"{"repo": "https://h/o/r", "ref": "main", "paths": "apps/a"}"#,
            br#"{"repo": "https://h/o/r", "ref": "main", "paths": [""]}"#,
            br#"{"repo": "https://h/o/r", "ref": "main", "paths": [1]}"#,
            br#"{"repo": "https://h/o/r", "ref": "main", "path": "apps/a"}"#,
            b"[]",
        ];
        for body in bodies {
            let r = outcome(body);
            assert!(
                matches!(r, Err(WebhookError::BadPayload(_))),
                "{}: {r:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
        }
        // The limits themselves are allowed.
        let at_limit = serde_json::json!({
            "repo": "https://h/o/r", "ref": "main",
            "paths": (0..MAX_CHANGED_FILES)
                .map(|i| if i == 0 { "x".repeat(MAX_PATH_CHARS) } else { i.to_string() })
                .collect::<Vec<_>>(),
        })
        .to_string();
        let Ok(Outcome::Event(ev)) = outcome(at_limit.as_bytes()) else {
            panic!("a trigger at the limits was refused");
        };
        assert_eq!(ev.changed_files.map(|f| f.len()), Some(MAX_CHANGED_FILES));
    }
}
