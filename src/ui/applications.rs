//! `/`: every Application as a row with sync, health, project, repository, target revision,
//! destination and last sync; filters and search run in the page over the rows' data attributes,
//! and the event stream replaces rows in place.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::badges;
use super::layout::{Nav, page};
use crate::api::ApiState;
use crate::store::Application;

/// What a row shows, read once from the Application.
struct Row<'a> {
    namespace: &'a str,
    name: &'a str,
    project: &'a str,
    repo: String,
    target: String,
    cluster: String,
    dest_namespace: &'a str,
    labels: String,
    last_sync: &'a str,
}

fn row_of(app: &Application) -> Row<'_> {
    let sources = app.all_sources();
    let first = sources.first();
    let dest = &app.spec.destination;
    let labels = app
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let op = app.status.as_ref().and_then(|s| s.operation_state.as_ref());
    Row {
        namespace: app.metadata.namespace.as_deref().unwrap_or_default(),
        name: app.metadata.name.as_deref().unwrap_or_default(),
        project: &app.spec.project,
        repo: first.map(|s| s.repo_url.clone()).unwrap_or_default(),
        target: first
            .map(|s| s.target_revision.clone().unwrap_or_else(|| "HEAD".into()))
            .unwrap_or_default(),
        cluster: dest
            .name
            .clone()
            .or_else(|| dest.server.clone())
            .unwrap_or_default(),
        dest_namespace: dest.namespace.as_deref().unwrap_or_default(),
        labels,
        last_sync: op
            .and_then(|o| o.finished_at.as_deref().or(Some(o.started_at.as_str())))
            .unwrap_or(""),
    }
}

fn sync_of(app: &Application) -> Option<crate::store::application::SyncStatusCode> {
    app.status
        .as_ref()
        .and_then(|s| s.sync.as_ref())
        .map(|s| s.status)
}

fn health_of(app: &Application) -> Option<crate::health::HealthStatus> {
    app.status
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .map(|h| h.status)
}

/// An RFC 3339 time to the second, as people read it (`2026-01-02 10:04:42`).
pub fn readable_time(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(head) if rfc3339.as_bytes().get(10) == Some(&b'T') => head.replacen('T', " ", 1),
        _ => rfc3339.to_owned(),
    }
}

/// The DOM id of an app's row.
pub fn row_id(namespace: &str, name: &str) -> String {
    format!("app-{namespace}-{name}")
}

/// One table row; the stream sends exactly this for a changed app.
pub fn row(app: &Application) -> Markup {
    let r = row_of(app);
    let sync = badges::sync_text(sync_of(app));
    let health = health_of(app).map_or("Unknown", |h| h.as_str());
    let href = format!("/applications/{}/{}", r.namespace, r.name);
    html! {
        tr id=(row_id(r.namespace, r.name)) class="app-row"
            data-key={ (r.namespace) "/" (r.name) }
            data-sync=(sync) data-health=(health) data-project=(r.project)
            data-cluster=(r.cluster) data-namespace=(r.dest_namespace) data-labels=(r.labels) {
            th scope="row" data-label="Name" {
                a href=(href) { (r.name) }
                @if r.namespace != "capstan" { span class="muted" { " (" (r.namespace) ")" } }
            }
            td data-label="Sync" { (badges::sync(sync_of(app))) }
            td data-label="Health" { (badges::health(health_of(app))) }
            td data-label="Project" { (r.project) }
            td data-label="Repository" class="repo" { (r.repo) }
            td data-label="Target" { (r.target) }
            td data-label="Destination" { (r.cluster) " / " (r.dest_namespace) }
            td data-label="Last sync" { time datetime=(r.last_sync) { (readable_time(r.last_sync)) } }
        }
    }
}

fn select(id: &str, label: &str, values: &BTreeSet<String>) -> Markup {
    html! {
        div class="filter" {
            label for=(id) { (label) }
            select id=(id) data-filter=(id.trim_start_matches("f-")) {
                option value="" { "All" }
                @for v in values { option value=(v) { (v) } }
            }
        }
    }
}

/// The Applications list page.
pub fn page_html(state: &ApiState, session: &crate::api::session::Session) -> Markup {
    let viewer = session.auth();
    // Read before the list: the stream then sends whatever changed after it.
    let seq = state.store.change_seq();
    let apps: Vec<_> = state
        .store
        .list()
        .into_iter()
        .filter(|a| state.tenancy.honours(a).is_ok())
        .filter(|a| {
            let object = crate::api::applications::rbac_object(&state.tenancy, a);
            viewer.can(state, "applications", "get", &object)
        })
        .collect();
    let mut projects = BTreeSet::new();
    let mut clusters = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    for a in &apps {
        let r = row_of(a);
        projects.insert(r.project.to_owned());
        clusters.insert(r.cluster);
        namespaces.insert(r.dest_namespace.to_owned());
    }
    let syncs: BTreeSet<String> = ["Synced", "OutOfSync", "Unknown"].map(String::from).into();
    let healths: BTreeSet<String> = [
        "Healthy",
        "Progressing",
        "Degraded",
        "Suspended",
        "Missing",
        "Unknown",
    ]
    .map(String::from)
    .into();
    page(
        "Applications",
        Some(session),
        Nav::Applications,
        html! {
            div class="heading" {
                h1 { "Applications" }
                p class="live" { span id="live-state" data-live="off" { "Connecting…" } }
            }
            form class="filters" role="search" aria-label="Filter applications" {
                div class="filter search" {
                    label for="f-search" { "Search" }
                    input id="f-search" type="search" data-filter="search"
                        placeholder="name, repository, revision";
                }
                (select("f-sync", "Sync", &syncs))
                (select("f-health", "Health", &healths))
                (select("f-project", "Project", &projects))
                (select("f-cluster", "Cluster", &clusters))
                (select("f-namespace", "Namespace", &namespaces))
                div class="filter" {
                    label for="f-label" { "Label" }
                    input id="f-label" type="text" data-filter="label" placeholder="key=value";
                }
            }
            p id="app-count" aria-live="polite" { (apps.len()) " applications" }
            table class="apps" id="apps" data-stream={ (super::stream::APPLICATIONS_STREAM) "?since=" (seq) } {
                caption class="visually-hidden" { "Applications with their sync and health" }
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Sync" }
                        th scope="col" { "Health" }
                        th scope="col" { "Project" }
                        th scope="col" { "Repository" }
                        th scope="col" { "Target" }
                        th scope="col" { "Destination" }
                        th scope="col" { "Last sync" }
                    }
                }
                tbody id="app-rows" {
                    @for a in &apps { (row(a)) }
                }
            }
            @if apps.is_empty() {
                p id="no-apps" { "No applications yet. " a href="/create" { "Create one" } "." }
            }
        },
    )
}

/// `GET /`.
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    super::html(StatusCode::OK, page_html(&state, &session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_carries_its_filters_and_shows_status_as_icon_and_text() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "namespace": "capstan", "labels": {"team": "a"}},
            "spec": {"project": "shop", "source": {"repoURL": "https://git.example.com/o/r.git", "path": "web"},
                     "destination": {"name": "prod", "namespace": "web"}},
            "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"}}
        }))
        .expect("application");
        let html = row(&app).into_string();
        for attr in [
            r#"data-key="capstan/web""#,
            r#"data-sync="OutOfSync""#,
            r#"data-health="Degraded""#,
            r#"data-project="shop""#,
            r#"data-cluster="prod""#,
            r#"data-namespace="web""#,
            r#"data-labels="team=a""#,
        ] {
            assert!(html.contains(attr), "row lacks {attr}: {html}");
        }
        // Colour is never the only signal: each badge has its icon and its word.
        assert!(html.contains("▲</span> OutOfSync"), "{html}");
        assert!(html.contains("✖</span> Degraded"), "{html}");
        // A source without targetRevision tracks HEAD, as Argo CD reads it.
        assert!(html.contains(">HEAD<"), "{html}");
    }

    #[test]
    fn times_read_to_the_second_and_anything_else_stays_as_it_is() {
        assert_eq!(
            readable_time("2026-12-02T10:04:42.972795685Z"),
            "2026-12-02 10:04:42"
        );
        assert_eq!(readable_time("2026-12-02T10:04:42Z"), "2026-12-02 10:04:42");
        assert_eq!(readable_time(""), "");
        assert_eq!(
            readable_time("yesterday, more or less"),
            "yesterday, more or less"
        );
    }
}
