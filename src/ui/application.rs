//! `/applications/{namespace}/{name}`: summary (live), the resource tree, a node's live and
//! desired manifests, diff and events, the buttons (refresh, sync, rollback, delete) and history.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::badges;
use super::layout::{Nav, page};
use crate::api::ApiState;
use crate::api::applications::{AppPath, authorized};
use crate::api::session::Session;
use crate::cluster::ResourceKey;
use crate::store::Application;

/// The page, the summary fragment or an error page for a failed read.
async fn read(
    req: &HttpRequest,
    state: &ApiState,
    session: &Session,
) -> Result<(Application, String), HttpResponse> {
    let info = req.match_info();
    let (namespace, name) = (
        info.get("namespace").unwrap_or_default(),
        info.get("name").unwrap_or_default(),
    );
    let path = AppPath::parse(namespace, name).map_err(|e| error_page(req, state, &e))?;
    let app = authorized(state, &session.auth(), &path, "get")
        .await
        .map_err(|e| error_page(req, state, &e))?;
    Ok((app, format!("/api/v1/applications/{namespace}/{name}")))
}

fn error_page(req: &HttpRequest, state: &ApiState, e: &crate::api::ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let session = super::session_of(req, state);
    super::html(
        e.status_code(),
        page(
            "Error",
            session.as_ref(),
            Nav::Applications,
            html! { h1 { "Cannot show this application" } p class="error" role="alert" { "✖ " (e.to_string()) } },
        ),
    )
}

/// `GET /applications/{namespace}/{name}`.
pub async fn show(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    // Read before the app: the stream then sends any change after it.
    let seq = state.store.change_seq();
    let (app, api) = match read(&req, &state, &session).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let name = app.metadata.name.clone().unwrap_or_default();
    let tree = match crate::api::manifests::destination(&state, &app).await {
        Ok(target) => {
            let resources = app
                .status
                .as_ref()
                .map(|s| s.resources.clone())
                .unwrap_or_default();
            crate::api::tree::tree(&target.cluster, &resources)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let body = html! {
        div id="app-page" data-key={ (namespace) "/" (name) } data-name=(name) data-api=(api)
            data-summary={ "/applications/" (namespace) "/" (name) "/summary" }
            data-resource={ "/applications/" (namespace) "/" (name) "/resource" }
            data-stream={ (super::stream::APPLICATIONS_STREAM) "?since=" (seq) } {
            div class="heading" {
                h1 { (name) }
                p class="live" { span id="live-state" data-live="off" { "Connecting…" } }
            }
            div class="actions" role="group" aria-label="Actions" {
                button type="button" data-action="refresh" { "Refresh" }
                button type="button" data-action="hard-refresh" { "Hard refresh" }
                button type="button" data-action="sync-open" class="primary" { "Sync…" }
                button type="button" data-action="delete-open" class="danger" { "Delete…" }
            }
            section id="summary" aria-label="Summary" { (summary_html(&app)) }
            section aria-labelledby="tree-title" {
                h2 id="tree-title" { "Resources" }
                @match &tree {
                    Ok(nodes) => (super::tree_graph::graph(&name, nodes)),
                    Err(e) => p class="error" role="alert" { "✖ Cannot read the resource tree: " (e) },
                }
            }
            section id="node-panel" class="panel" hidden aria-labelledby="panel-title" {
                h2 id="panel-title" class="panel-title" tabindex="-1" {}
                div class="panel-grid" {
                    section { h3 { "Live manifest and events" } div id="panel-live" {} }
                    section { h3 { "Desired manifest" } pre id="panel-desired" tabindex="0" {} }
                    section { h3 { "Diff" } pre id="panel-diff" tabindex="0" {} }
                }
            }
            section aria-labelledby="history-title" {
                h2 id="history-title" { "History" }
                (history_html(&app))
                (operations_html(&app))
            }
            (sync_dialog(&app))
            dialog id="delete-dialog" aria-labelledby="delete-title" {
                form method="dialog" {
                    h2 id="delete-title" { "Delete " (name) "?" }
                    p { "The Application is removed; the resources it applied stay in the cluster." }
                    label for="confirm-name" { "Type " strong { (name) } " to confirm" }
                    input id="confirm-name" name="confirmName" type="text" autocomplete="off" required;
                    p id="delete-error" class="error" role="alert" {}
                    div class="buttons" {
                        button type="submit" value="cancel" formnovalidate { "Cancel" }
                        button type="submit" value="delete" class="danger" { "Delete" }
                    }
                }
            }
        }
    };
    super::html(
        StatusCode::OK,
        page(&name, Some(&session), Nav::Applications, body),
    )
}

/// `GET /applications/{namespace}/{name}/summary`: the summary section alone, for live updates.
pub async fn summary(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return HttpResponse::Unauthorized().finish();
    };
    match read(&req, &state, &session).await {
        Ok((app, _)) => super::html(StatusCode::OK, summary_html(&app)),
        Err(resp) => resp,
    }
}

fn summary_html(app: &Application) -> Markup {
    let status = app.status.as_ref();
    let sync = status.and_then(|s| s.sync.as_ref());
    let health = status.and_then(|s| s.health.as_ref());
    let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let op = status.and_then(|s| s.operation_state.as_ref());
    let dest = &app.spec.destination;
    html! {
        dl class="facts" {
            div { dt { "Sync" } dd id="app-sync" { (badges::sync(sync.map(|s| s.status)))
                @if let Some(rev) = sync.and_then(|s| s.revision.as_deref()) { " to " code { (short(rev)) } } } }
            div { dt { "Health" } dd id="app-health" { (badges::health(health.map(|h| h.status)))
                @if let Some(m) = health.and_then(|h| h.message.as_deref()) { " " span class="muted" { (m) } } } }
            div { dt { "Project" } dd { (app.spec.project) } }
            @for s in app.all_sources() {
                div { dt { "Source" } dd class="repo" { (s.repo_url) " · " (s.path.as_deref().or(s.chart.as_deref()).unwrap_or(".")) " @ " (s.target_revision.as_deref().unwrap_or("HEAD")) } }
            }
            div { dt { "Destination" } dd { (dest.name.as_deref().or(dest.server.as_deref()).unwrap_or("")) " / " (dest.namespace.as_deref().unwrap_or("")) } }
            div { dt { "Auto-sync" } dd { @match app.automated() {
                Some(a) => { "on" @if a.prune { ", prune" } @if a.self_heal { ", self-heal" } },
                None => "off",
            } } }
        }
        @if !conditions.is_empty() {
            h2 { "Conditions" }
            ul class="conditions" {
                @for c in conditions { li { strong { "⚠ " (c.type_) } ": " (c.message) } }
            }
        }
        h2 { "Last operation" }
        @match op {
            None => p { "No sync has run yet." },
            Some(op) => {
                p id="op-phase" { (badges::phase(&format!("{:?}", op.phase))) " " (op.message) }
                p class="muted" {
                    "Started " (super::applications::readable_time(&op.started_at))
                    @if let Some(f) = &op.finished_at { ", finished " (super::applications::readable_time(f)) }
                    @if let Some(by) = &op.initiated_by { ", by " (initiator(&serde_json::to_value(by).unwrap_or(Value::Null))) }
                }
                @if let Some(result) = &op.sync_result {
                    table class="results" {
                        caption { "Resources of this operation" }
                        thead { tr { th scope="col" { "Kind" } th scope="col" { "Name" } th scope="col" { "Phase" } th scope="col" { "Wave" } th scope="col" { "Hook" } th scope="col" { "Result" } th scope="col" { "Message" } } }
                        tbody {
                            @for r in &result.resources {
                                tr {
                                    td { (r.kind) } td { (r.name) }
                                    td { (r.sync_phase.as_deref().unwrap_or("Sync")) }
                                    td { (r.sync_wave) }
                                    td { (r.hook_type.as_deref().unwrap_or("")) @if let Some(p) = &r.hook_phase { " (" (p) ")" } }
                                    td { (format!("{:?}", r.status)) }
                                    td { (r.message) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(rev: &str) -> &str {
    if rev.len() == 40 || rev.len() == 64 {
        &rev[..8]
    } else {
        rev
    }
}

/// Who or what started a sync, from `initiatedBy` read loosely: the provenance fields
/// (`cause.source/provider/deliveryId/pusher`) when present, else the user or "automated".
pub fn initiator(by: &Value) -> String {
    let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    if let Some(cause) = by.get("cause").filter(|c| c.is_object()) {
        let mut parts = Vec::new();
        if let Some(s) = text(cause, "/source") {
            parts.push(s);
        }
        if let Some(p) = text(cause, "/provider") {
            parts.push(format!("provider {p}"));
        }
        if let Some(d) = text(cause, "/deliveryId") {
            parts.push(format!("delivery {d}"));
        }
        if let Some(p) = text(cause, "/pusher") {
            parts.push(format!("pushed by {p}"));
        }
        if let Some(m) = text(cause, "/message") {
            parts.push(format!("“{m}”"));
        }
        if !parts.is_empty() {
            if let Some(u) = text(by, "/username") {
                parts.push(format!("by {u}"));
            }
            return parts.join(", ");
        }
    }
    match (
        text(by, "/username"),
        by.get("automated").and_then(Value::as_bool),
    ) {
        (Some(u), _) => u,
        (None, Some(true)) => "automated sync".into(),
        _ => "unknown".into(),
    }
}

fn history_html(app: &Application) -> Markup {
    let mut history: Vec<Value> = app
        .status
        .as_ref()
        .map(|s| {
            s.history
                .iter()
                .filter_map(|h| serde_json::to_value(h).ok())
                .collect()
        })
        .unwrap_or_default();
    history.sort_by_key(|h| std::cmp::Reverse(h.get("id").and_then(Value::as_i64)));
    let automated = app.automated().is_some();
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    html! {
        @if history.is_empty() { p { "Nothing deployed yet." } }
        @else {
            table class="history" id="history" {
                caption class="visually-hidden" { "Deployments, newest first" }
                thead { tr { th scope="col" { "ID" } th scope="col" { "Revision" } th scope="col" { "Commit" } th scope="col" { "Deployed at" } th scope="col" { "Initiated by" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {
                    @for h in &history {
                        @let id = h.get("id").and_then(Value::as_i64).unwrap_or_default();
                        @let rev = text(h, "/revision");
                        tr data-history-id=(id) {
                            td data-label="ID" { (id) }
                            td data-label="Revision" { code title=(rev) { (short(&rev)) } }
                            td data-label="Commit" { (text(h, "/message")) @let a = text(h, "/author"); @if !a.is_empty() { br; span class="muted" { (a) } } }
                            td data-label="Deployed at" { (super::applications::readable_time(&text(h, "/deployedAt"))) }
                            td data-label="Initiated by" class="initiator" { (initiator(h.get("initiatedBy").unwrap_or(&Value::Null))) }
                            td {
                                @if automated {
                                    span class="muted" { "Rollback needs auto-sync off" }
                                } @else {
                                    button type="button" data-action="rollback" data-id=(id) data-revision=(short(&rev)) { "Roll back to " (id) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every recent sync with its result, failed ones and dry runs included (history lists only
/// deployments, as in Argo CD).
fn operations_html(app: &Application) -> Markup {
    let mut operations: Vec<&crate::store::application::RecentOperation> = app
        .status
        .as_ref()
        .map(|s| s.recent_operations.iter().collect())
        .unwrap_or_default();
    operations.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    html! {
        @if !operations.is_empty() {
            h3 id="operations-title" { "Recent syncs and their results" }
            table class="history" id="operations" aria-labelledby="operations-title" {
                thead { tr { th scope="col" { "Result" } th scope="col" { "Revision" } th scope="col" { "Finished at" } th scope="col" { "Initiated by" } th scope="col" { "Message" } } }
                tbody {
                    @for op in &operations {
                        @let by = op.initiated_by.as_ref().and_then(|b| serde_json::to_value(b).ok()).unwrap_or(Value::Null);
                        tr data-phase=(format!("{:?}", op.phase)) {
                            td data-label="Result" { (format!("{:?}", op.phase)) @if op.dry_run { " (dry run)" } }
                            td data-label="Revision" { code title=(op.revision) { (short(&op.revision)) } }
                            td data-label="Finished at" { (super::applications::readable_time(op.finished_at.as_deref().unwrap_or(""))) }
                            td data-label="Initiated by" class="initiator" { (initiator(&by)) }
                            td data-label="Message" { (op.message) }
                        }
                    }
                }
            }
        }
    }
}

fn sync_dialog(app: &Application) -> Markup {
    let resources = app
        .status
        .as_ref()
        .map(|s| s.resources.as_slice())
        .unwrap_or_default();
    html! {
        dialog id="sync-dialog" aria-labelledby="sync-title" {
            form method="dialog" {
                h2 id="sync-title" { "Sync " (app.metadata.name.as_deref().unwrap_or_default()) }
                div class="check" { input type="checkbox" id="sync-prune" name="prune"; label for="sync-prune" { "Prune (delete resources that left Git)" } }
                div class="check" { input type="checkbox" id="sync-dry-run" name="dryRun"; label for="sync-dry-run" { "Dry run (change nothing)" } }
                @if !resources.is_empty() {
                    fieldset {
                        legend { "Only these resources (none checked: all)" }
                        @for (i, r) in resources.iter().enumerate() {
                            @let value = serde_json::json!({"group": r.group, "kind": r.kind, "namespace": r.namespace, "name": r.name}).to_string();
                            div class="check" {
                                input type="checkbox" name="resource" id={ "sync-r-" (i) } value=(value);
                                label for={ "sync-r-" (i) } { (r.kind) " " (r.name) }
                            }
                        }
                    }
                }
                div class="buttons" {
                    button type="submit" value="cancel" { "Cancel" }
                    button type="submit" value="sync" class="primary" { "Synchronize" }
                }
            }
        }
    }
}

/// Which object a node is.
#[derive(Deserialize)]
pub struct ResourceQuery {
    #[serde(default)]
    group: String,
    version: String,
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
}

/// `GET /applications/{namespace}/{name}/resource?group&version&kind&namespace&name`: one live
/// object of the app's destination as YAML, and the Events about it.
pub async fn resource(
    req: HttpRequest,
    query: web::Query<ResourceQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return HttpResponse::Unauthorized().finish();
    };
    let (app, _) = match read(&req, &state, &session).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let q = query.into_inner();
    let fragment = |m: Markup| super::html(StatusCode::OK, m);
    let target = match crate::api::manifests::destination(&state, &app).await {
        Ok(t) => t,
        Err(e) => return fragment(html! { p class="error" { "✖ " (e.to_string()) } }),
    };
    // Only objects the tree of this app shows may be read through it.
    let resources = app
        .status
        .as_ref()
        .map(|s| s.resources.clone())
        .unwrap_or_default();
    let nodes = crate::api::tree::tree(&target.cluster, &resources)
        .await
        .unwrap_or_default();
    if !nodes.iter().any(|n| {
        n.group == q.group && n.kind == q.kind && n.namespace == q.namespace && n.name == q.name
    }) {
        return fragment(html! { p class="error" { "✖ Not a resource of this application." } });
    }
    let key = ResourceKey {
        group: q.group,
        version: q.version,
        kind: q.kind.clone(),
        namespace: q.namespace.clone(),
        name: q.name.clone(),
    };
    let live = match target.cluster.get(&key).await {
        Ok(Some(mut obj)) => {
            if let Some(meta) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            // A Secret's values are never shown, as the diff never shows them.
            crate::diff::mask_secrets(&mut obj, &mut Value::Null);
            Ok(Some(
                serde_saphyr::to_string(&obj).unwrap_or_else(|e| format!("cannot print: {e}")),
            ))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    };
    let events: Vec<Value> = target
        .cluster
        .list("", "v1", "Event", &q.namespace)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(q.name.as_str())
                && e.pointer("/involvedObject/kind").and_then(Value::as_str)
                    == Some(q.kind.as_str())
        })
        .collect();
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    fragment(html! {
        @match live {
            Ok(Some(yaml)) => pre class="manifest" id="live-manifest" tabindex="0" { (yaml) },
            Ok(None) => p { "∅ The object does not exist." },
            Err(e) => p class="error" { "✖ " (e) },
        }
        h4 { "Events" }
        @if events.is_empty() { p class="muted" { "No events." } }
        @else {
            ul class="events" {
                @for e in &events {
                    li { strong { (text(e, "/type")) " " (text(e, "/reason")) } ": " (text(e, "/message")) " " span class="muted" { (text(e, "/lastTimestamp")) } }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_initiator_names_the_webhook_delivery_when_provenance_is_there() {
        let by = json!({"automated": true, "cause": {
            "source": "webhook", "provider": "github", "deliveryId": "d-42", "pusher": "alice"}});
        assert_eq!(
            initiator(&by),
            "webhook, provider github, delivery d-42, pushed by alice"
        );
        let manual = json!({"username": "api", "cause": {"source": "manual"}});
        assert_eq!(initiator(&manual), "manual, by api");
        // Without provenance (or with an empty cause) the older fields speak.
        assert_eq!(initiator(&json!({"username": "api", "cause": {}})), "api");
        assert_eq!(initiator(&json!({"automated": true})), "automated sync");
        assert_eq!(initiator(&Value::Null), "unknown");
    }

    #[test]
    fn history_shows_commit_message_and_author_when_present_and_offers_rollback_only_without_automation()
     {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "capstan"},
            "spec": {},
            "status": {"history": [
                {"id": 0, "revision": "a".repeat(40), "deployedAt": "2026-01-01T00:00:00Z",
                 "initiatedBy": {"username": "api"}},
                {"id": 1, "revision": "b".repeat(40), "deployedAt": "2026-01-02T00:00:00Z",
                 "initiatedBy": {"automated": true}}]}
        }))
        .expect("application");
        let html = history_html(&app).into_string();
        let newest = html.find("data-history-id=\"1\"").expect("entry 1");
        let oldest = html.find("data-history-id=\"0\"").expect("entry 0");
        assert!(newest < oldest, "history is not newest first");
        assert!(
            html.contains("automated sync") && html.contains(">api<"),
            "{html}"
        );
        assert!(html.contains("data-action=\"rollback\""), "{html}");

        let mut automated = app.clone();
        automated.spec.sync_policy = serde_json::from_value(json!({"automated": {}})).ok();
        let html = history_html(&automated).into_string();
        assert!(
            !html.contains("data-action=\"rollback\""),
            "rollback offered under automation"
        );
    }

    #[test]
    fn a_failed_sync_is_listed_with_its_reason_and_who_asked() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "capstan"},
            "spec": {},
            "status": {"recentOperations": [
                {"phase": "Succeeded", "revision": "a".repeat(40), "startedAt": "2026-01-01T00:00:00Z",
                 "finishedAt": "2026-01-01T00:00:01Z", "message": "successfully synced",
                 "initiatedBy": {"automated": true}},
                {"phase": "Failed", "revision": "missing", "startedAt": "2026-01-02T00:00:00Z",
                 "finishedAt": "2026-01-02T00:00:01Z", "message": "unknown revision missing",
                 "initiatedBy": {"username": "admin", "cause": {"source": "manual", "user": "admin"}}}]}
        }))
        .expect("application");
        let html = operations_html(&app).into_string();
        let failed = html.find("data-phase=\"Failed\"").expect("the failed sync");
        let succeeded = html.find("data-phase=\"Succeeded\"").expect("the good one");
        assert!(failed < succeeded, "newest first: {html}");
        assert!(html.contains("unknown revision missing"), "{html}");
        assert!(html.contains("manual, by admin"), "{html}");
        let empty: Application = serde_json::from_value(json!({
            "apiVersion": "capstan.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "capstan"}, "spec": {}
        }))
        .expect("application");
        assert!(operations_html(&empty).into_string().is_empty());
    }
}
