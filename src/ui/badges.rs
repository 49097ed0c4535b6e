//! Sync and health shown as icon + text + colour, so colour is never the only signal.

use maud::{Markup, html};

use crate::health::HealthStatus;
use crate::store::application::SyncStatusCode;

/// The sync status as Argo CD spells it.
pub fn sync_text(code: Option<SyncStatusCode>) -> &'static str {
    match code {
        Some(SyncStatusCode::Synced) => "Synced",
        Some(SyncStatusCode::OutOfSync) => "OutOfSync",
        Some(SyncStatusCode::Unknown) | None => "Unknown",
    }
}

/// A sync badge.
pub fn sync(code: Option<SyncStatusCode>) -> Markup {
    let text = sync_text(code);
    let icon = match text {
        "Synced" => "✔",
        "OutOfSync" => "▲",
        _ => "?",
    };
    badge("sync", text, icon)
}

/// A health badge.
pub fn health(status: Option<HealthStatus>) -> Markup {
    let text = status.map_or("Unknown", |s| s.as_str());
    let icon = match text {
        "Healthy" => "♥",
        "Progressing" => "◔",
        "Degraded" => "✖",
        "Suspended" => "⏸",
        "Missing" => "∅",
        _ => "?",
    };
    badge("health", text, icon)
}

/// An operation phase badge (Running, Succeeded, Failed …).
pub fn phase(text: &str) -> Markup {
    let icon = match text {
        "Succeeded" => "✔",
        "Running" | "Terminating" => "◔",
        "Failed" | "Error" => "✖",
        _ => "•",
    };
    badge("phase", text, icon)
}

fn badge(what: &str, text: &str, icon: &str) -> Markup {
    html! {
        span class={ "badge " (what) "-" (text) } data-status=(text) {
            span aria-hidden="true" { (icon) } " " (text)
        }
    }
}
