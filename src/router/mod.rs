//! Router: which Applications a [`PushEvent`] affects, as one [`Job`] each.
//! Routing needs no Git access: the event already says which refs moved.

pub mod repo_url;

use crate::event::{PushEvent, RefUpdate};
use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::store::Application;

/// App annotation listing the paths whose changes affect it (`;`-separated, Argo CD compatible).
pub const MANIFEST_GENERATE_PATHS: &str = "argocd.argoproj.io/manifest-generate-paths";

/// One Job for every Application the event affects.
pub fn route<'a>(event: &PushEvent, apps: impl IntoIterator<Item = &'a Application>) -> Vec<Job> {
    let cause_source = if event.source == crate::event::EventSource::Mq {
        CauseSource::Mq
    } else {
        CauseSource::Webhook
    };
    // Parsed once per event rather than once per app.
    let event_repos: Vec<String> = event
        .repo_urls
        .iter()
        .filter_map(|u| repo_url::canonical(u))
        .collect();
    apps.into_iter()
        .filter_map(|app| {
            let moved = matching_ref(event, &event_repos, app)?;
            let mut job = Job::new(
                &app.key(),
                JobKind::Refresh,
                Cause {
                    source: cause_source,
                    event_id: Some(event.id.clone()),
                    by: None,
                },
            );
            job.revision = moved.after.clone();
            Some(job)
        })
        .collect()
}

/// The ref update in `event` that affects `app`, if any.
fn matching_ref<'e>(
    event: &'e PushEvent,
    event_repos: &[String],
    app: &Application,
) -> Option<&'e RefUpdate> {
    for source in app.all_sources() {
        if !repo_url::canonical(&source.repo_url).is_some_and(|key| event_repos.contains(&key)) {
            continue;
        }
        let target = source.target_revision.as_deref().unwrap_or("");
        for r in &event.refs {
            if revision_matches(target, r, event.default_branch.as_deref())
                && paths_affected(event, r, app, source.path.as_deref())
            {
                return Some(r);
            }
        }
    }
    None
}

/// Whether a push to `pushed` can change what `target_revision` resolves to.
pub fn revision_matches(
    target_revision: &str,
    pushed: &RefUpdate,
    default_branch: Option<&str>,
) -> bool {
    let target = target_revision.trim();
    let (pushed_kind, pushed_short) = if let Some(b) = pushed.name.strip_prefix("refs/heads/") {
        ("heads", b)
    } else if let Some(t) = pushed.name.strip_prefix("refs/tags/") {
        ("tags", t)
    } else {
        ("", pushed.name.as_str())
    };
    if target.is_empty() || target == "HEAD" {
        // Unknown default branch: route anyway; the worker resolves HEAD cheaply.
        return pushed_kind == "heads" && default_branch.is_none_or(|d| d == pushed_short);
    }
    if let Some(b) = target.strip_prefix("refs/heads/") {
        return pushed_kind == "heads" && b == pushed_short;
    }
    if let Some(t) = target.strip_prefix("refs/tags/") {
        return pushed_kind == "tags" && t == pushed_short;
    }
    // A commit SHA never moves.
    if target.len() == 40 && target.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    target == pushed_short
}

/// Whether the changed files touch the app's paths (`manifest-generate-paths`); unknown files,
/// created, deleted and forced refs always count.
fn paths_affected(
    event: &PushEvent,
    r: &RefUpdate,
    app: &Application,
    source_path: Option<&str>,
) -> bool {
    let Some(annotation) = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANIFEST_GENERATE_PATHS))
    else {
        return true;
    };
    let Some(files) = &event.changed_files else {
        return true;
    };
    if r.created || r.deleted || r.forced {
        return true;
    }
    let base = source_path.unwrap_or("").trim_matches('/');
    let paths: Vec<String> = annotation
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if let Some(abs) = p.strip_prefix('/') {
                abs.trim_end_matches('/').to_owned()
            } else if p == "." {
                base.to_owned()
            } else {
                format!("{base}/{p}").trim_matches('/').to_owned()
            }
        })
        .collect();
    files.iter().any(|f| {
        paths
            .iter()
            .any(|p| p.is_empty() || f == p || f.starts_with(&format!("{p}/")) || glob_match(p, f))
    })
}

/// `*` and `?` globs within one path segment, like Go's `filepath.Match`.
fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                go(&p[1..], s) || (s.first().is_some_and(|c| *c != b'/') && go(p, &s[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    // Bounded: patterns come from annotations, paths from payloads; keep the backtracking small.
    pattern.len() <= 256
        && path.len() <= 4096
        && pattern.matches('*').count() <= 8
        && go(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::application::{ApplicationSource, ApplicationSpec};

    fn pushed(name: &str) -> RefUpdate {
        RefUpdate {
            name: name.into(),
            before: None,
            after: Some("a".repeat(40)),
            created: false,
            deleted: false,
            forced: false,
        }
    }

    fn app(
        name: &str,
        repo: &str,
        rev: &str,
        path: &str,
        paths_annotation: Option<&str>,
    ) -> Application {
        let mut a = Application::new(
            name,
            ApplicationSpec {
                source: Some(ApplicationSource {
                    repo_url: repo.into(),
                    target_revision: Some(rev.into()),
                    path: Some(path.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        a.metadata.namespace = Some("apps".into());
        if let Some(p) = paths_annotation {
            a.metadata.annotations =
                Some([(MANIFEST_GENERATE_PATHS.to_string(), p.to_string())].into());
        }
        a
    }

    fn event(refs: Vec<RefUpdate>, files: Option<Vec<&str>>) -> PushEvent {
        PushEvent {
            v: 1,
            id: "e".into(),
            source: crate::event::EventSource::Github,
            delivery: None,
            received_at: "now".into(),
            repo_urls: vec![
                "https://github.com/org/repo.git".into(),
                "git@github.com:org/repo.git".into(),
            ],
            refs,
            changed_files: files.map(|f| f.into_iter().map(String::from).collect()),
            default_branch: Some("main".into()),
        }
    }

    #[test]
    fn target_revision_matching_follows_argo_cd() {
        let main = pushed("refs/heads/main");
        assert!(revision_matches("", &main, Some("main")));
        assert!(revision_matches("HEAD", &main, Some("main")));
        assert!(!revision_matches(
            "HEAD",
            &pushed("refs/heads/dev"),
            Some("main")
        ));
        assert!(
            revision_matches("HEAD", &pushed("refs/heads/dev"), None),
            "unknown default branch routes"
        );
        assert!(revision_matches("main", &main, None));
        assert!(revision_matches("refs/heads/main", &main, None));
        assert!(
            !revision_matches("refs/tags/main", &main, None),
            "kind must match when fully qualified"
        );
        assert!(revision_matches("v1", &pushed("refs/tags/v1"), None));
        assert!(revision_matches(
            "feature/x",
            &pushed("refs/heads/feature/x"),
            None
        ));
        assert!(!revision_matches(
            "three/part/rev",
            &pushed("refs/heads/rev"),
            None
        ));
        assert!(
            !revision_matches(&"a".repeat(40), &main, None),
            "a SHA never moves"
        );
    }

    #[test]
    fn only_matching_apps_get_jobs() {
        let apps = vec![
            app("a", "https://github.com/org/repo", "HEAD", "apps/a", None),
            app("b", "https://github.com/org/other", "HEAD", "apps/b", None),
            app("c", "git@github.com:org/repo.git", "dev", "apps/c", None),
        ];
        let jobs = route(&event(vec![pushed("refs/heads/main")], None), &apps);
        assert_eq!(
            jobs.iter().map(|j| j.app.to_string()).collect::<Vec<_>>(),
            ["apps/a"]
        );
        assert_eq!(jobs[0].revision.as_deref(), Some("a".repeat(40).as_str()));
        assert_eq!(jobs[0].cause.source, CauseSource::Webhook);
    }

    #[test]
    fn manifest_generate_paths_filter_known_changes_only() {
        let apps = vec![
            app(
                "a",
                "https://github.com/org/repo",
                "main",
                "apps/a",
                Some("."),
            ),
            app(
                "b",
                "https://github.com/org/repo",
                "main",
                "apps/b",
                Some(".;/shared"),
            ),
            app(
                "c",
                "https://github.com/org/repo",
                "main",
                "apps/c",
                Some("/lib/*.libsonnet"),
            ),
        ];
        let ev = event(
            vec![pushed("refs/heads/main")],
            Some(vec!["apps/a/deploy.yaml", "lib/x.libsonnet"]),
        );
        let names: Vec<String> = route(&ev, &apps)
            .into_iter()
            .map(|j| j.app.to_string())
            .collect();
        assert_eq!(names, ["apps/a", "apps/c"]);
        let unknown = event(vec![pushed("refs/heads/main")], None);
        assert_eq!(
            route(&unknown, &apps).len(),
            3,
            "unknown changed files affect every app"
        );
        let mut forced = pushed("refs/heads/main");
        forced.forced = true;
        assert_eq!(route(&event(vec![forced], Some(vec![])), &apps).len(), 3);
    }
}
