//! Bitbucket Data Center (formerly Server): `repo:refs_changed` and `mirror:repo_synchronized`
//! with every entry of `changes[]`, signed by `X-Hub-Signature: sha256=<hex>`.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

use super::{
    Credential, NULL_SHA, Outcome, Provider, Request, SamplePush, Signature, SignedRequest,
    WebhookError, hmac_credential, parse_json, push_event, pusher, ref_update, repo_urls,
};
use crate::domain::repo_url::RepoUrl;
use crate::event::{EventSource, RefUpdate};
use crate::secret::SecretString;

/// Self-hosted Bitbucket Data Center and Server.
pub struct BitbucketServer;

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    changes: Option<Vec<Change>>,
    /// Mirrors leave `changes` empty when more refs changed than a payload may list.
    #[serde(rename = "refLimitExceeded", default)]
    ref_limit_exceeded: Option<bool>,
    /// The user who pushed (`name`, `displayName`); mirror events have none.
    #[serde(default)]
    actor: serde_json::Value,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    clone: Option<Vec<Link>>,
    #[serde(rename = "self", default)]
    web: Option<Vec<Link>>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    href: Option<String>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(rename = "ref", default)]
    git_ref: Option<Ref>,
    #[serde(rename = "refId", default)]
    ref_id: Option<String>,
    #[serde(rename = "fromHash", default)]
    from_hash: Option<String>,
    #[serde(rename = "toHash", default)]
    to_hash: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(default)]
    id: Option<String>,
}

impl Provider for BitbucketServer {
    fn name(&self) -> &'static str {
        "bitbucket-server"
    }

    fn recognises(&self, headers: &HeaderMap) -> bool {
        // Bitbucket Cloud sends X-Event-Key too, always with its X-Hook-UUID.
        headers.contains_key("x-event-key") && !headers.contains_key("x-hook-uuid")
    }

    fn authenticate(&self, request: &Request<'_>, secrets: &[SecretString]) -> Credential {
        hmac_credential(request, "x-hub-signature", Signature::parse, secrets)
    }

    fn delivery(&self, request: &Request<'_>) -> Option<String> {
        request.header("x-request-id").map(str::to_owned)
    }

    fn parse(&self, request: &Request<'_>) -> Result<Outcome, WebhookError> {
        match request.header("x-event-key").unwrap_or_default() {
            // "Test connection": answered once authenticated, never acted on.
            "diagnostics:ping" => return Ok(Outcome::Ignored("ping".into())),
            "repo:refs_changed" | "mirror:repo_synchronized" => {}
            other => return Ok(Outcome::Ignored(format!("event {other:?} is not acted on"))),
        }
        let payload: Payload = parse_json("Bitbucket Data Center push", request.body)?;
        let Some(repo) = payload.repository else {
            return Ok(Outcome::Ignored("push without a repository".into()));
        };
        let links = repo.links.map(|l| {
            let clone = l.clone.unwrap_or_default().into_iter();
            clone.chain(l.web.unwrap_or_default()).map(|link| link.href)
        });
        let urls = match repo_urls(links.into_iter().flatten()) {
            Ok(urls) => urls,
            Err(ignored) => return Ok(ignored),
        };
        let Some(changes) = payload.changes else {
            return Err(WebhookError::BadPayload(
                "Bitbucket Data Center push payload has no changes".into(),
            ));
        };
        let refs: Vec<RefUpdate> = changes.into_iter().filter_map(ref_change).collect();
        if refs.is_empty() {
            let reason = if payload.ref_limit_exceeded == Some(true) {
                "the mirror changed more refs than a webhook lists; the periodic refresh picks them up"
            } else {
                "the push lists no ref change"
            };
            return Ok(Outcome::Ignored(reason.into()));
        }
        Ok(Outcome::Event(push_event(
            EventSource::BitbucketServer,
            self.delivery(request),
            urls,
            refs,
            // Bitbucket Data Center lists neither files nor commits.
            None,
            None,
            pusher([
                payload.actor.pointer("/name"),
                payload.actor.pointer("/displayName"),
            ]),
        )?))
    }

    fn sample(&self, push: &SamplePush<'_>, secret: Option<&str>) -> SignedRequest {
        let segments: Vec<String> = RepoUrl::parse(push.repo)
            .map(|u| u.path_segments().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let slug = segments.last().cloned().unwrap_or_default();
        let project = segments
            .iter()
            .rev()
            .nth(1)
            .cloned()
            .unwrap_or_default()
            .to_uppercase();
        let (ref_type, display) = match push.git_ref.strip_prefix("refs/tags/") {
            Some(tag) => ("TAG", tag),
            None => (
                "BRANCH",
                push.git_ref
                    .strip_prefix("refs/heads/")
                    .unwrap_or(push.git_ref),
            ),
        };
        let change_type = match (push.before, push.after) {
            (None, _) => "ADD",
            (_, None) => "DELETE",
            _ => "UPDATE",
        };
        let body = serde_json::json!({
            "eventKey": "repo:refs_changed",
            "date": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S+0000").to_string(),
            "actor": { "name": super::SAMPLE_PUSHER, "displayName": "Capstan", "type": "NORMAL" },
            "repository": {
                "slug": slug,
                "name": slug,
                "scmId": "git",
                "state": "AVAILABLE",
                "forkable": true,
                "public": false,
                "project": { "key": project, "type": "NORMAL" },
                "links": {
                    "clone": [{ "href": push.repo, "name": "http" }],
                    "self": [{ "href": push.repo.strip_suffix(".git").unwrap_or(push.repo) }],
                },
            },
            "changes": [{
                "ref": { "id": push.git_ref, "displayId": display, "type": ref_type },
                "refId": push.git_ref,
                "fromHash": push.before.unwrap_or(NULL_SHA),
                "toHash": push.after.unwrap_or(NULL_SHA),
                "type": change_type,
            }],
        });
        let mut request = SignedRequest::json(
            &body,
            vec![
                ("x-event-key", "repo:refs_changed".to_owned()),
                ("x-request-id", push.delivery.to_owned()),
                (
                    "user-agent",
                    "Atlassian HttpClient 4.2.0 / Bitbucket-9.4.0 (9004000) / Default".to_owned(),
                ),
            ],
        );
        if let Some(secret) = secret {
            let signature = Signature::sign(secret.as_bytes(), &request.body);
            request.add_header("x-hub-signature", signature);
        }
        request
    }
}

/// One entry of `changes[]` as a ref update; None when it names no ref.
fn ref_change(change: Change) -> Option<RefUpdate> {
    let name = change
        .git_ref
        .and_then(|r| r.id)
        .or(change.ref_id)
        .filter(|n| !n.trim().is_empty())?;
    let mut update = ref_update(name, change.from_hash, change.to_hash);
    // The change type says what happened; the all-zero hashes only echo it.
    match change.kind.as_deref() {
        Some("ADD") => (update.created, update.deleted) = (true, false),
        Some("DELETE") => (update.created, update.deleted) = (false, true),
        Some("UPDATE") => (update.created, update.deleted) = (false, false),
        _ => {}
    }
    Some(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_support::{expect_event as event, moved as update};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                "../../tests/fixtures/webhooks/bitbucket-server/",
                $name
            ))
        };
    }

    const OLD: &str = "95790bf891e76fee5e1747ab589903a6a1f80f22";
    const NEW: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    const TAG_COMMIT: &str = "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7";

    fn headers(event_key: &str, extra: &[(&str, &str)]) -> HeaderMap {
        let mut pairs = vec![
            ("x-event-key".to_owned(), event_key.to_owned()),
            ("x-request-id".to_owned(), "req-1".to_owned()),
        ];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        SignedRequest {
            headers: pairs,
            body: Vec::new(),
        }
        .header_map()
    }

    fn parse(event_key: &str, body: &[u8]) -> Result<Outcome, WebhookError> {
        let headers = headers(event_key, &[]);
        BitbucketServer.parse(&Request::new(&headers, body))
    }

    fn urls() -> Vec<String> {
        [
            "ssh://git@bitbucket.example.com:7999/ops/deploy.git",
            "https://bitbucket.example.com/scm/ops/deploy.git",
            "https://bitbucket.example.com/projects/OPS/repos/deploy/browse",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[test]
    fn a_branch_update_carries_every_link_and_no_files_or_default_branch() {
        let ev = event(parse("repo:refs_changed", fixture!("refs_changed.json")));
        assert_eq!(ev.source, EventSource::BitbucketServer);
        assert_eq!(ev.delivery.as_deref(), Some("req-1"));
        assert_eq!(ev.repo_urls, urls());
        assert_eq!(
            ev.refs,
            vec![update("refs/heads/main", Some(OLD), Some(NEW))]
        );
        assert_eq!(ev.changed_files, None);
        assert_eq!(ev.default_branch, None);
    }

    #[test]
    fn the_pusher_is_the_actors_name_and_mirrors_have_none() {
        let ev = event(parse("repo:refs_changed", fixture!("refs_changed.json")));
        assert_eq!(ev.pusher.as_deref(), Some("jdoe"));
        let mut v: serde_json::Value =
            serde_json::from_slice(fixture!("refs_changed.json")).expect("json");
        v["actor"] = serde_json::json!({"displayName": "Jane Doe", "name": 101});
        let body = v.to_string();
        assert_eq!(
            event(parse("repo:refs_changed", body.as_bytes()))
                .pusher
                .as_deref(),
            Some("Jane Doe")
        );
        let mirror = event(parse(
            "mirror:repo_synchronized",
            fixture!("mirror_synchronized.json"),
        ));
        assert_eq!(mirror.pusher, None);
    }

    #[test]
    fn added_and_deleted_refs_are_marked() {
        let tag = event(parse("repo:refs_changed", fixture!("tag_created.json")));
        assert_eq!(
            tag.refs,
            vec![update("refs/tags/v1.4.0", None, Some(TAG_COMMIT))]
        );
        let created = event(parse("repo:refs_changed", fixture!("branch_created.json")));
        assert_eq!(
            created.refs,
            vec![update("refs/heads/feature/login", None, Some(NEW))]
        );
        let deleted = event(parse("repo:refs_changed", fixture!("branch_deleted.json")));
        assert_eq!(
            deleted.refs,
            vec![update("refs/heads/feature/login", Some(OLD), None)]
        );
    }

    #[test]
    fn every_change_becomes_a_ref_not_only_the_first() {
        let ev = event(parse("repo:refs_changed", fixture!("multi_ref.json")));
        assert_eq!(
            ev.refs,
            vec![
                update("refs/heads/main", Some(OLD), Some(NEW)),
                update("refs/heads/feature/login", Some(OLD), None),
                update("refs/tags/v1.4.0", None, Some(TAG_COMMIT)),
            ]
        );
        assert_eq!(ev.changed_files, None);
    }

    #[test]
    fn a_mirror_synchronisation_is_a_push_unless_its_refs_were_left_out() {
        let ev = event(parse(
            "mirror:repo_synchronized",
            fixture!("mirror_synchronized.json"),
        ));
        assert_eq!(
            ev.refs,
            vec![update("refs/heads/main", Some(OLD), Some(NEW))]
        );
        assert_eq!(ev.repo_urls, urls());
        assert!(matches!(
            parse("mirror:repo_synchronized", fixture!("mirror_ref_limit_exceeded.json")),
            Ok(Outcome::Ignored(reason)) if reason.contains("more refs")
        ));
    }

    #[test]
    fn a_push_without_links_names_no_repository_and_is_ignored() {
        assert!(matches!(
            parse(
                "repo:refs_changed",
                fixture!("refs_changed_without_links.json")
            ),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn ping_and_other_events_are_ignored() {
        assert!(matches!(
            parse("diagnostics:ping", fixture!("ping.json")),
            Ok(Outcome::Ignored(reason)) if reason == "ping"
        ));
        assert!(matches!(
            parse("pr:opened", fixture!("pr_opened.json")),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn a_ping_is_authenticated_like_any_other_delivery() {
        let body = fixture!("ping.json");
        let secrets = super::super::WebhookSecrets::new()
            .with_secret("bitbucket-server", SecretString::from("s".to_owned()))
            .expect("known provider");
        let receive = |extra: &[(&str, &str)]| {
            let headers = headers("diagnostics:ping", extra);
            super::super::receive(&Request::new(&headers, body), &secrets)
                .map(|r| r.outcome)
                .map_err(|(_, e)| e)
        };
        let json = ("content-type", "application/json");
        assert!(matches!(
            receive(&[json]),
            Err(WebhookError::Unauthorized(_))
        ));
        let forged = Signature::sign(b"other", body);
        assert!(matches!(
            receive(&[json, ("x-hub-signature", &forged)]),
            Err(WebhookError::Unauthorized(_))
        ));
        let signed = Signature::sign(b"s", body);
        assert!(matches!(
            receive(&[json, ("x-hub-signature", &signed)]),
            Ok(Outcome::Ignored(_))
        ));
    }

    #[test]
    fn bitbucket_cloud_requests_are_not_claimed() {
        assert!(BitbucketServer.recognises(&headers("repo:refs_changed", &[])));
        assert!(!BitbucketServer.recognises(&headers("repo:push", &[("x-hook-uuid", "h")])));
    }

    #[test]
    fn regression_shapes_are_ignored_or_refused_never_events_without_repository_or_refs() {
        let ignored: &[&[u8]] = &[
            br#"{"changes": [], "eventKey": "repo:refs_changed"}"#,
            br#"{"repository": null, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": null}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": null}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": ""}, {"name": "ssh"}]}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": []}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": [{"ref": {"id": ""}}, {"type": "ADD"}]}"#,
        ];
        for body in ignored {
            assert!(
                matches!(parse("repo:refs_changed", body), Ok(Outcome::Ignored(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // CVE-2025-59531: `links.clone` that is not a list of objects.
        let refused: &[&[u8]] = &[
            br#"{"repository": {"links": {"clone": {"href": "x"}}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": "x"}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [1, null, "x"]}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": 5}]}}, "changes": [{"refId": "refs/heads/a"}]}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": {}}"#,
            br#"{"repository": {"links": {"clone": [{"href": "https://h/scm/p/r.git"}]}}, "changes": [{"ref": {"id": 7}}]}"#,
        ];
        for body in refused {
            assert!(
                matches!(
                    parse("repo:refs_changed", body),
                    Err(WebhookError::BadPayload(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_sample_describes_created_deleted_and_tag_refs_as_bitbucket_does() {
        let push = |git_ref, before, after| SamplePush {
            repo: "https://bitbucket.example.com/scm/ops/deploy.git",
            git_ref,
            before,
            after,
            files: None,
            default_branch: "main",
            delivery: "d-3",
        };
        for (sample, expected) in [
            (
                push("refs/tags/v1", None, Some(NEW)),
                update("refs/tags/v1", None, Some(NEW)),
            ),
            (
                push("refs/heads/old", Some(OLD), None),
                update("refs/heads/old", Some(OLD), None),
            ),
        ] {
            let request = BitbucketServer.sample(&sample, None);
            let headers = request.header_map();
            let ev = event(BitbucketServer.parse(&Request::new(&headers, &request.body)));
            assert_eq!(ev.refs, vec![expected]);
            assert_eq!(ev.delivery.as_deref(), Some("d-3"));
            assert_eq!(
                ev.repo_urls.first().map(String::as_str),
                Some("https://bitbucket.example.com/scm/ops/deploy.git")
            );
        }
    }
}
