//! `/`: the Applications as rows with sync, health, project, repository, target revision,
//! destination and last sync. Filters, search and pages are query parameters the server applies
//! (so a list of thousands sends one page); the page's script re-reads the list when a filter
//! changes and the event stream replaces rows in place.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

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

fn select(id: &str, label: &str, values: &BTreeSet<String>, chosen: &str) -> Markup {
    let name = id.trim_start_matches("f-");
    html! {
        div class="filter" {
            label for=(id) { (label) }
            select id=(id) name=(name) data-filter=(name) {
                option value="" { "All" }
                @for v in values { option value=(v) selected[v == chosen] { (v) } }
            }
        }
    }
}

/// Rows per page a visitor may choose; the first page of 1,000 apps is one tenth of the list.
pub const PAGE_SIZES: [usize; 5] = [25, 50, 100, 500, 1000];
const DEFAULT_PAGE_SIZE: usize = 100;

/// The list's query: filters (empty = any), search, and which page.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub search: String,
    #[serde(default)]
    pub sync: String,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub namespace: String,
    /// `key=value`, or a bare key for any value.
    #[serde(default)]
    pub label: String,
    /// 1-based; anything but a number reads as the first page.
    #[serde(default)]
    pub page: String,
    /// One of [`PAGE_SIZES`]; anything else reads as the default.
    #[serde(default)]
    pub per_page: String,
}

impl ListQuery {
    fn per_page(&self) -> usize {
        self.per_page
            .trim()
            .parse()
            .ok()
            .filter(|n| PAGE_SIZES.contains(n))
            .unwrap_or(DEFAULT_PAGE_SIZE)
    }

    fn page(&self) -> usize {
        self.page.trim().parse().unwrap_or(1)
    }

    /// Whether an app passes every filter; the script applies the same rule to live rows.
    fn admits(&self, app: &Application) -> bool {
        let r = row_of(app);
        let same = |want: &str, have: &str| want.is_empty() || want.eq_ignore_ascii_case(have);
        let label = self.label.trim();
        let search = self.search.trim().to_lowercase();
        same(&self.sync, badges::sync_text(sync_of(app)))
            && same(
                &self.health,
                health_of(app).map_or("Unknown", |h| h.as_str()),
            )
            && same(&self.project, r.project)
            && same(&self.cluster, &r.cluster)
            && same(&self.namespace, r.dest_namespace)
            && (label.is_empty()
                || r.labels.split(' ').any(|l| {
                    l.eq_ignore_ascii_case(label)
                        || (!label.contains('=')
                            && l.split('=')
                                .next()
                                .is_some_and(|k| k.eq_ignore_ascii_case(label)))
                }))
            && (search.is_empty()
                || [
                    r.name,
                    r.namespace,
                    r.project,
                    &r.repo,
                    &r.target,
                    &r.cluster,
                ]
                .iter()
                .any(|f| f.to_lowercase().contains(&search)))
    }

    /// The query string of the same filters at another page.
    fn at_page(&self, page: usize) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("search", &self.search),
            ("sync", &self.sync),
            ("health", &self.health),
            ("project", &self.project),
            ("cluster", &self.cluster),
            ("namespace", &self.namespace),
            ("label", &self.label),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        if self.per_page() != DEFAULT_PAGE_SIZE {
            q.append_pair("per_page", &self.per_page().to_string());
        }
        q.append_pair("page", &page.to_string());
        format!("/?{}", q.finish())
    }
}

/// Which slice of the matching apps a page shows.
struct Pages {
    page: usize,
    last: usize,
    per_page: usize,
    matching: usize,
}

impl Pages {
    fn new(query: &ListQuery, matching: usize) -> Pages {
        let per_page = query.per_page();
        let last = matching.div_ceil(per_page).max(1);
        let page = query.page().clamp(1, last);
        Pages {
            page,
            last,
            per_page,
            matching,
        }
    }

    fn range(&self) -> std::ops::Range<usize> {
        let start = (self.page - 1) * self.per_page;
        start.min(self.matching)..(start + self.per_page).min(self.matching)
    }
}

fn pager(query: &ListQuery, pages: &Pages) -> Markup {
    html! {
        nav class="pager" aria-label="Pages" {
            @if pages.page > 1 {
                a href=(query.at_page(pages.page - 1)) rel="prev" data-page=(pages.page - 1) { "← Previous" }
            }
            span aria-current="page" { "Page " (pages.page) " of " (pages.last) }
            @if pages.page < pages.last {
                a href=(query.at_page(pages.page + 1)) rel="next" data-page=(pages.page + 1) { "Next →" }
            }
            div class="filter per-page" {
                label for="f-per-page" { "Per page" }
                select id="f-per-page" name="per_page" form="filters" data-filter="per_page" {
                    @for n in PAGE_SIZES { option value=(n) selected[n == pages.per_page] { (n) } }
                }
            }
        }
    }
}

/// The Applications list page: the page of `query`'s matching apps `session` may see.
pub fn page_html(
    state: &ApiState,
    session: &crate::api::session::Session,
    query: &ListQuery,
) -> Markup {
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
    let matching: Vec<&Application> = apps
        .iter()
        .map(|a| a.as_ref())
        .filter(|a| query.admits(a))
        .collect();
    let pages = Pages::new(query, matching.len());
    let range = pages.range();
    let shown = matching.get(range.clone()).unwrap_or_default();
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
    let filtered = matching.len() != apps.len();
    page(
        "Applications",
        Some(session),
        Nav::Applications,
        html! {
            div class="heading" {
                h1 { "Applications" }
                p class="live" { span id="live-state" data-live="off" { "Connecting…" } }
            }
            form id="filters" class="filters" role="search" aria-label="Filter applications" method="get" action="/" {
                div class="filter search" {
                    label for="f-search" { "Search" }
                    input id="f-search" name="search" type="search" data-filter="search"
                        value=(query.search) placeholder="name, repository, revision";
                }
                (select("f-sync", "Sync", &syncs, &query.sync))
                (select("f-health", "Health", &healths, &query.health))
                (select("f-project", "Project", &projects, &query.project))
                (select("f-cluster", "Cluster", &clusters, &query.cluster))
                (select("f-namespace", "Namespace", &namespaces, &query.namespace))
                div class="filter" {
                    label for="f-label" { "Label" }
                    input id="f-label" name="label" type="text" data-filter="label"
                        value=(query.label) placeholder="key=value";
                }
                button type="submit" class="apply" { "Apply" }
            }
            div id="app-list" data-page=(pages.page) data-per-page=(pages.per_page)
                data-first=(range.start) data-matching=(matching.len()) data-total=(apps.len()) {
                p id="app-count" aria-live="polite" {
                    @if shown.is_empty() { "No applications match." }
                    @else { "Showing " (range.start + 1) "–" (range.end) " of " (matching.len()) }
                    @if filtered { " (" (apps.len()) " in all)" } " applications"
                }
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
                        @for a in shown { (row(a)) }
                    }
                }
                (pager(query, &pages))
                @if apps.is_empty() {
                    p id="no-apps" { "No applications yet. " a href="/create" { "Create one" } "." }
                }
            }
        },
    )
}

/// `GET /[?search&sync&health&project&cluster&namespace&label&page&per_page]`.
pub async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    super::html(StatusCode::OK, page_html(&state, &session, &query))
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

    fn app(name: &str, labels: serde_json::Value, sync: &str) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "capstan", "labels": labels},
            "spec": {"project": "shop", "source": {"repoURL": "https://git.example.com/o/r.git", "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}},
            "status": {"sync": {"status": sync}}
        }))
        .expect("application")
    }

    #[test]
    fn the_list_filters_match_as_the_page_script_does() {
        let a = app(
            "checkout",
            json!({"team": "red", "tier": "web"}),
            "OutOfSync",
        );
        let q = |v: serde_json::Value| -> ListQuery { serde_json::from_value(v).expect("query") };
        assert!(q(json!({})).admits(&a));
        assert!(q(json!({"sync": "outofsync"})).admits(&a), "case-blind");
        assert!(!q(json!({"sync": "Synced"})).admits(&a));
        assert!(
            q(json!({"health": "Unknown"})).admits(&a),
            "no health reads Unknown"
        );
        assert!(q(json!({"label": "team=red"})).admits(&a));
        assert!(
            q(json!({"label": "tier"})).admits(&a),
            "a bare key matches any value"
        );
        assert!(!q(json!({"label": "team=blue"})).admits(&a));
        assert!(
            !q(json!({"label": "team=re"})).admits(&a),
            "labels match whole"
        );
        assert!(q(json!({"search": "CHECK"})).admits(&a));
        assert!(
            q(json!({"search": "git.example"})).admits(&a),
            "search covers the repository"
        );
        assert!(!q(json!({"search": "payments"})).admits(&a));
        assert!(q(json!({"project": "shop", "namespace": "web", "cluster": "https://kubernetes.default.svc"})).admits(&a));
    }

    #[test]
    fn pages_cover_the_matching_apps_once_and_links_keep_the_filters() {
        let q: ListQuery =
            serde_json::from_value(json!({"sync": "Synced", "per_page": "25", "page": "3"}))
                .expect("query");
        let pages = Pages::new(&q, 60);
        assert_eq!((pages.page, pages.last), (3, 3));
        assert_eq!(pages.range(), 50..60);
        assert_eq!(Pages::new(&q, 0).range(), 0..0);
        assert_eq!(
            Pages::new(&q, 0).last,
            1,
            "an empty list still has its one page"
        );
        assert_eq!(q.at_page(2), "/?sync=Synced&per_page=25&page=2");
        let all: ListQuery = serde_json::from_value(json!({})).expect("query");
        assert_eq!(
            Pages::new(&all, 1000).range(),
            0..100,
            "the default page holds 100"
        );
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
