//! Subscriptions: who hears about which trigger through which service, read from annotations on
//! the Application and its AppProject — Capstan's keys and Argo CD's, unchanged.

use std::collections::{BTreeMap, BTreeSet};

use super::Trigger;

/// Capstan's annotation prefix: `notifications.capstan.dev/subscribe.<trigger>.<service>`.
pub const CAPSTAN_PREFIX: &str = "notifications.capstan.dev/subscribe.";
/// Argo CD's, read unchanged so migrated Applications keep their subscriptions.
pub const ARGOCD_PREFIX: &str = "notifications.argoproj.io/subscribe.";

/// One recipient of one trigger through one service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subscription {
    pub trigger: Trigger,
    /// The service's name in `[notify.services]`.
    pub service: String,
    /// A Slack channel, an email address …; empty for services that need none (webhook).
    pub recipient: String,
}

/// The subscriptions in `annotations`, sorted and without repeats, and the annotation keys that
/// look like subscriptions but name no known trigger.
pub fn parse<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> (BTreeSet<Subscription>, Vec<String>) {
    let mut found = BTreeSet::new();
    let mut unknown = Vec::new();
    for (key, value) in annotations {
        let Some(rest) = key
            .strip_prefix(CAPSTAN_PREFIX)
            .or_else(|| key.strip_prefix(ARGOCD_PREFIX))
        else {
            continue;
        };
        let Some((trigger, service)) = rest
            .split_once('.')
            .and_then(|(t, s)| Some((Trigger::parse(t)?, s)))
            .filter(|(_, s)| !s.is_empty())
        else {
            unknown.push(key.clone());
            continue;
        };
        let mut recipients: Vec<&str> = value
            .split(';')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect();
        // A webhook needs no recipient: the subscription itself is the whole instruction.
        if recipients.is_empty() {
            recipients.push("");
        }
        for recipient in recipients {
            found.insert(Subscription {
                trigger,
                service: service.to_owned(),
                recipient: recipient.to_owned(),
            });
        }
    }
    (found, unknown)
}

/// The subscriptions of an app: its own annotations and its project's.
pub fn for_app(
    app: Option<&BTreeMap<String, String>>,
    project: Option<&BTreeMap<String, String>>,
) -> (BTreeSet<Subscription>, Vec<String>) {
    let (mut found, mut unknown) = parse(app.into_iter().flatten());
    let (more, bad) = parse(project.into_iter().flatten());
    found.extend(more);
    unknown.extend(bad);
    let says = |a: Option<&BTreeMap<String, String>>| {
        a.and_then(|a| a.get(super::commit_status::ANNOTATION))
            .map(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    if says(app).or(says(project)).unwrap_or(false) {
        for trigger in super::commit_status::TRIGGERS {
            found.insert(Subscription {
                trigger,
                service: super::commit_status::SERVICE.to_owned(),
                recipient: String::new(),
            });
        }
    }
    (found, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_statuses_are_turned_on_by_project_or_app_and_off_by_the_app() {
        let on = annotations(&[("capstan.dev/commit-status", "true")]);
        let off = annotations(&[("capstan.dev/commit-status", "false")]);
        let services = |app: Option<&BTreeMap<String, String>>, project| {
            for_app(app, project)
                .0
                .iter()
                .filter(|s| s.service == "commit-status")
                .map(|s| s.trigger.name())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            services(None, Some(&on)),
            [
                "on-sync-running",
                "on-sync-failed",
                "on-health-degraded",
                "on-deployed"
            ]
        );
        assert_eq!(services(Some(&on), None).len(), 4);
        assert!(
            services(Some(&off), Some(&on)).is_empty(),
            "the app's own word wins"
        );
        assert!(services(None, None).is_empty());
    }

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn capstan_and_argocd_keys_are_read_alike_and_recipients_split() {
        let app = annotations(&[
            (
                "notifications.capstan.dev/subscribe.on-sync-succeeded.slack",
                "dev; ops",
            ),
            (
                "notifications.argoproj.io/subscribe.on-sync-succeeded.slack",
                "ops",
            ),
            ("notifications.argoproj.io/subscribe.on-deployed.hook", ""),
            ("notifications.capstan.dev/subscribe.on-nothing.slack", "x"),
            ("unrelated", "y"),
        ]);
        let project = annotations(&[(
            "notifications.capstan.dev/subscribe.on-sync-failed.mail",
            "oncall@example.com",
        )]);
        let (found, unknown) = for_app(Some(&app), Some(&project));
        let got: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|s| (s.trigger.name(), s.service.as_str(), s.recipient.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("on-sync-succeeded", "slack", "dev"),
                ("on-sync-succeeded", "slack", "ops"),
                ("on-sync-failed", "mail", "oncall@example.com"),
                ("on-deployed", "hook", ""),
            ]
        );
        assert_eq!(
            unknown,
            ["notifications.capstan.dev/subscribe.on-nothing.slack"]
        );
    }
}
