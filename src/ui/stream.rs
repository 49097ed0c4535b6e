//! `GET /api/v1/stream/applications`: Server-Sent Events fed by the Application watch. Each
//! create or change (status writes included) is an `upsert` event carrying the key and the row
//! as the list renders it; a delete is a `delete` event. Authenticated like the REST API (the
//! session cookie works for `EventSource`).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use futures::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::api::ApiState;
use crate::api::auth::Authenticated;
use crate::store::AppChange;

/// Where the stream is mounted.
pub const APPLICATIONS_STREAM: &str = "/api/v1/stream/applications";

/// How often an idle stream sends a comment, so proxies keep it open and dead clients are found.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One SSE frame for a change, or None for an app Capstan does not honour or `viewer` may not see.
pub fn frame(state: &ApiState, viewer: &Authenticated, change: &AppChange) -> Option<String> {
    let (event, data) = match change {
        AppChange::Applied(app) => {
            if state.tenancy.honours(app).is_err() {
                return None;
            }
            let object = crate::api::applications::rbac_object(&state.tenancy, app);
            if !viewer.can(state, "applications", "get", &object) {
                return None;
            }
            let key = app.key().to_string();
            let html = super::applications::row(app).into_string();
            let phase = app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .map(|o| format!("{:?}", o.phase));
            (
                "upsert",
                serde_json::json!({ "key": key, "html": html, "phase": phase }),
            )
        }
        AppChange::Deleted(key) => ("delete", serde_json::json!({ "key": key.to_string() })),
    };
    // JSON has no raw newlines, so the payload is one `data:` line.
    Some(format!("event: {event}\ndata: {data}\n\n"))
}

/// The query of the stream.
#[derive(serde::Deserialize)]
pub struct StreamQuery {
    /// The store's change number when the page was rendered: changes after it are sent first.
    since: Option<u64>,
}

/// `GET /api/v1/stream/applications[?since=N]`.
pub async fn applications(
    auth: Authenticated,
    query: web::Query<StreamQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    // Subscribed before the catch-up is read, so a change lands in one or the other (or both;
    // an upsert twice is harmless).
    let changes = BroadcastStream::new(state.store.changes());
    let catch_up: Vec<Result<Bytes, actix_web::Error>> = query
        .since
        .map(|seq| state.store.changed_since(seq))
        .unwrap_or_default()
        .iter()
        .filter_map(|c| frame(&state, &auth, c))
        .map(|f| Ok(Bytes::from(f)))
        .collect();
    let st = state.clone();
    let events = changes.filter_map(move |item| {
        let out = match item {
            Ok(change) => frame(&st, &auth, &change),
            // The client fell behind: it re-reads the whole list rather than show stale rows.
            Err(BroadcastStreamRecvError::Lagged(_)) => Some("event: resync\ndata: {}\n\n".into()),
        };
        std::future::ready(out.map(|s| Ok::<_, actix_web::Error>(Bytes::from(s))))
    });
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(KEEPALIVE))
        .map(|_| Ok::<_, actix_web::Error>(Bytes::from_static(b": keepalive\n\n")));
    let hello = futures::stream::once(async {
        Ok::<_, actix_web::Error>(Bytes::from_static(b"event: ready\ndata: {}\n\n"))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(
            futures::stream::iter(catch_up)
                .chain(hello)
                .chain(futures::stream::select(events, ticks)),
        )
}
