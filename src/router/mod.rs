//! Router: which Applications a [`PushEvent`] affects, as one [`Job`] each.
//! Routing needs no Git access: the event already says which refs moved and, often, which files.
//!
//! An app is affected when the event names its repository ([`repo_url`]), a pushed ref can move
//! its target revision ([`revision`]), and a changed file lies under a path it watches
//! ([`paths`]); [`RouteIndex`] answers that without looking at unaffected apps.

pub mod index;
pub mod paths;
pub mod repo_url;
pub mod revision;
pub mod semver_range;

pub use index::{RouteIndex, RouteMatch};
pub use paths::{MANIFEST_GENERATE_PATHS, WatchedPaths};

use crate::event::PushEvent;
use crate::job::{Cause, CauseSource, Job, JobKind};
use crate::store::Application;

/// One Job for every Application in `apps` the event affects (builds a throwaway index; a
/// long-lived router keeps a [`RouteIndex`] instead).
pub fn route<'a>(event: &PushEvent, apps: impl IntoIterator<Item = &'a Application>) -> Vec<Job> {
    RouteIndex::build(apps)
        .route(event)
        .iter()
        .map(|m| job_for(event, m))
        .collect()
}

/// The refresh Job for one matched Application.
pub fn job_for(event: &PushEvent, matched: &RouteMatch) -> Job {
    let source = if event.source == crate::event::EventSource::Mq {
        CauseSource::Mq
    } else {
        CauseSource::Webhook
    };
    let mut job = Job::new(
        &matched.app,
        JobKind::Refresh,
        Cause {
            source,
            event_id: Some(event.id.clone()),
            by: event.pusher.clone(),
            provider: Some(event.source.as_str().to_owned()),
            delivery: event.delivery.clone(),
        },
    );
    job.revision = matched.revision.clone();
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RefUpdate;
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
            pusher: None,
        }
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
    fn a_job_names_the_delivery_and_the_pusher_that_caused_it() {
        let apps = vec![app(
            "a",
            "https://github.com/org/repo",
            "HEAD",
            "apps/a",
            None,
        )];
        let mut ev = event(vec![pushed("refs/heads/main")], None);
        ev.delivery = Some("72d3162e".into());
        ev.pusher = Some("octocat".into());
        let cause = &route(&ev, &apps)[0].cause;
        assert_eq!(cause.source, CauseSource::Webhook);
        assert_eq!(cause.provider.as_deref(), Some("github"));
        assert_eq!(cause.delivery.as_deref(), Some("72d3162e"));
        assert_eq!(cause.by.as_deref(), Some("octocat"));
        assert_eq!(cause.event_id.as_deref(), Some("e"));

        ev.source = crate::event::EventSource::Mq;
        ev.pusher = Some("ci/deploy-42".into());
        let cause = &route(&ev, &apps)[0].cause;
        assert_eq!(cause.source, CauseSource::Mq);
        assert_eq!(cause.provider.as_deref(), Some("mq"));
        assert_eq!(cause.by.as_deref(), Some("ci/deploy-42"));
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

    #[test]
    fn without_the_annotation_only_the_source_path_counts() {
        let apps = vec![
            app("a", "https://github.com/org/repo", "main", "apps/a", None),
            app("b", "https://github.com/org/repo", "main", "apps/b", None),
            app("root", "https://github.com/org/repo", "main", ".", None),
        ];
        let names = |files: Option<Vec<&str>>| -> Vec<String> {
            route(&event(vec![pushed("refs/heads/main")], files), &apps)
                .into_iter()
                .map(|j| j.app.to_string())
                .collect()
        };
        assert_eq!(
            names(Some(vec!["apps/b/values.yaml"])),
            ["apps/b", "apps/root"]
        );
        assert_eq!(names(Some(vec!["docs/readme.md"])), ["apps/root"]);
        assert!(
            names(Some(vec![])).is_empty(),
            "an empty commit affects nothing"
        );
        assert_eq!(names(None).len(), 3, "unknown changes affect every app");
    }

    #[test]
    fn ten_thousand_apps_and_a_push_to_one_path_make_one_job() {
        let apps: Vec<Application> = (0..10_000)
            .map(|i| {
                app(
                    &format!("app-{i}"),
                    "https://github.com/org/repo",
                    "HEAD",
                    &format!("apps/app-{i}"),
                    None,
                )
            })
            .collect();
        let index = RouteIndex::build(&apps);
        let ev = event(
            vec![pushed("refs/heads/main")],
            Some(vec!["apps/app-4321/deployment.yaml"]),
        );
        let jobs: Vec<Job> = index.route(&ev).iter().map(|m| job_for(&ev, m)).collect();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].app.to_string(), "apps/app-4321");
        assert_eq!(jobs[0].cause.event_id.as_deref(), Some("e"));
    }
}
