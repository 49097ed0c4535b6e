//! Templates: Go template syntax (the `gtmpl` crate), so Argo CD Notifications templates such as
//! `{{.app.metadata.name}}` or `{{.app.status.operationState.message}}` read unchanged.
//! Built-in templates per trigger; `[notify.templates.<trigger>]` replaces them.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::settings::NotifySettings;
use super::{Notification, SendError, Trigger};

const LINK: &str =
    "{{.context.argocdUrl}}/applications/{{.app.metadata.namespace}}/{{.app.metadata.name}}";

/// A notification's subject and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub message: String,
}

/// The built-in (subject, message) of a trigger, worded as Argo CD's catalog words them.
pub fn builtin(trigger: Trigger) -> (&'static str, String) {
    match trigger {
        Trigger::SyncRunning => (
            "Start syncing application {{.app.metadata.name}}.",
            format!(
                "The sync operation of application {{{{.app.metadata.name}}}} has started at {{{{.app.status.operationState.startedAt}}}}.\nRevision: {{{{.revision}}}}\nSync operation details are available at: {LINK}?operation=true"
            ),
        ),
        Trigger::SyncSucceeded => (
            "Application {{.app.metadata.name}} has been successfully synced.",
            format!(
                "Application {{{{.app.metadata.name}}}} has been successfully synced at {{{{.app.status.operationState.finishedAt}}}}.\nRevision: {{{{.revision}}}}\nSync status: {{{{.app.status.sync.status}}}}\nSync operation details are available at: {LINK}?operation=true"
            ),
        ),
        Trigger::SyncFailed => (
            "Failed to sync application {{.app.metadata.name}}.",
            format!(
                "The sync operation of application {{{{.app.metadata.name}}}} has failed at {{{{.app.status.operationState.finishedAt}}}} with the following error: {{{{.app.status.operationState.message}}}}\nRevision: {{{{.revision}}}}\nSync operation details are available at: {LINK}?operation=true"
            ),
        ),
        Trigger::HealthDegraded => (
            "Application {{.app.metadata.name}} has degraded.",
            format!(
                "Application {{{{.app.metadata.name}}}} has degraded.\nHealth: {{{{.app.status.health.status}}}}\nApplication details: {LINK}"
            ),
        ),
        Trigger::Deployed => (
            "New version of an application {{.app.metadata.name}} is up and running.",
            format!(
                "Application {{{{.app.metadata.name}}}} is now running new version of deployments manifests.\nRevision: {{{{.app.status.sync.revision}}}}\nHealth: {{{{.app.status.health.status}}}}\nApplication details: {LINK}"
            ),
        ),
    }
}

/// What a template sees: `.app` (the Application when the trigger fired), `.context.argocdUrl`
/// (Capstan's URL, also as `.context.capstanUrl`), `.context.notificationType` (the service's
/// type), `.trigger`, `.revision`, `.recipient`, `.service`.
pub fn context(n: &Notification, url: &str, service_type: &str) -> Value {
    json!({
        "app": n.app_snapshot,
        "context": {
            "argocdUrl": url.trim_end_matches('/'),
            "capstanUrl": url.trim_end_matches('/'),
            "notificationType": service_type,
        },
        "trigger": n.trigger.name(),
        "revision": n.revision,
        "recipient": n.recipient,
        "service": n.service,
    })
}

/// Renders one template against a context.
pub fn render(template: &str, context: &Value) -> Result<String, String> {
    let mut t = gtmpl::Template::default();
    t.parse(template)
        .map_err(|e| format!("template does not parse: {e}"))?;
    t.render(&gtmpl::Context::from(to_gtmpl(context)))
        .map_err(|e| format!("template failed: {e}"))
}

/// The subject and message of `n`: the configured template of its trigger, else the built-in one.
pub fn render_for(
    settings: &NotifySettings,
    n: &Notification,
    service_type: &str,
) -> Result<Rendered, SendError> {
    let (subject, message) = builtin(n.trigger);
    let custom = settings.templates.get(n.trigger.name());
    let subject = custom.and_then(|c| c.subject.as_deref()).unwrap_or(subject);
    let message = custom
        .and_then(|c| c.message.as_deref())
        .unwrap_or(&message);
    let ctx = context(n, &settings.url, service_type);
    let fail = |e: String| SendError::Permanent(format!("{}: {e}", n.trigger.name()));
    Ok(Rendered {
        subject: render(subject, &ctx).map_err(fail)?,
        message: render(message, &ctx).map_err(fail)?,
    })
}

/// Parses every configured template, so a typo fails at start instead of at the first sync.
pub fn check(settings: &NotifySettings) -> Result<(), String> {
    for (name, t) in &settings.templates {
        if Trigger::parse(name).is_none() {
            return Err(format!(
                "notify.templates.{name}: no such trigger (on-sync-running, on-sync-succeeded, on-sync-failed, on-health-degraded, on-deployed)"
            ));
        }
        for text in [&t.subject, &t.message].into_iter().flatten() {
            gtmpl::Template::default()
                .parse(text.as_str())
                .map_err(|e| format!("notify.templates.{name}: {e}"))?;
        }
    }
    Ok(())
}

/// JSON as gtmpl's values: objects become maps, so `.a.b` walks them as Go walks a map.
fn to_gtmpl(v: &Value) -> gtmpl::Value {
    match v {
        Value::Null => gtmpl::Value::Nil,
        Value::Bool(b) => gtmpl::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => gtmpl::Value::from(i),
            (None, Some(u), _) => gtmpl::Value::from(u),
            (None, None, Some(f)) => gtmpl::Value::from(f),
            _ => gtmpl::Value::Nil,
        },
        Value::String(s) => gtmpl::Value::from(s.as_str()),
        Value::Array(items) => gtmpl::Value::Array(items.iter().map(to_gtmpl).collect()),
        Value::Object(map) => gtmpl::Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AppKey;

    fn notification(trigger: Trigger) -> Notification {
        Notification {
            v: super::super::notification::NOTIFICATION_VERSION,
            id: "m".into(),
            app: AppKey::parse("apps/web").expect("key"),
            trigger,
            revision: "abc123".into(),
            occurrence: "abc123".into(),
            service: "slack".into(),
            recipient: "dev".into(),
            app_snapshot: json!({
                "metadata": {"name": "web", "namespace": "apps"},
                "status": {
                    "sync": {"status": "Synced", "revision": "abc123"},
                    "health": {"status": "Healthy"},
                    "operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
                        "startedAt": "t0", "finishedAt": "t1"}
                }
            }),
            fired_at: "t1".into(),
        }
    }

    #[test]
    fn argo_cd_templates_render_unchanged() {
        let ctx = context(
            &notification(Trigger::SyncFailed),
            "https://cd.example/",
            "slack",
        );
        let text = render(
            "{{.app.metadata.name}} {{.app.status.sync.revision}} {{.app.status.sync.status}} {{.app.status.health.status}} {{.app.status.operationState.message}} {{.context.argocdUrl}}{{if eq .app.status.operationState.phase \"Failed\"}} !{{end}}",
            &ctx,
        )
        .expect("renders");
        assert_eq!(
            text,
            "web abc123 Synced Healthy one or more objects failed to apply https://cd.example !"
        );
    }

    #[test]
    fn every_builtin_renders_and_configured_templates_win() {
        let mut settings = NotifySettings::default();
        for t in Trigger::ALL {
            let r = render_for(&settings, &notification(t), "slack").expect("renders");
            assert!(r.subject.contains("web"), "{t:?}: {}", r.subject);
            assert!(
                r.message
                    .contains("http://localhost:8080/applications/apps/web"),
                "{t:?}: {}",
                r.message
            );
        }
        let failed =
            render_for(&settings, &notification(Trigger::SyncFailed), "slack").expect("renders");
        assert!(
            failed
                .message
                .contains("one or more objects failed to apply"),
            "{}",
            failed.message
        );
        settings.templates.insert(
            "on-sync-failed".into(),
            super::super::TemplateSettings {
                message: Some("{{.app.metadata.name}} broke at {{.revision}}".into()),
                subject: None,
            },
        );
        let r =
            render_for(&settings, &notification(Trigger::SyncFailed), "slack").expect("renders");
        assert_eq!(r.message, "web broke at abc123");
        assert_eq!(r.subject, "Failed to sync application web.");
    }

    #[test]
    fn broken_or_misnamed_templates_are_refused_at_start() {
        let mut settings = NotifySettings::default();
        settings.templates.insert(
            "on-sync-failed".into(),
            super::super::TemplateSettings {
                message: Some("{{.app.metadata.name".into()),
                subject: None,
            },
        );
        assert!(check(&settings).is_err());
        settings.templates.clear();
        settings
            .templates
            .insert("on-sync-exploded".into(), Default::default());
        assert!(check(&settings).unwrap_err().contains("no such trigger"));
    }
}
