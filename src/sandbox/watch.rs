//! Watch streams: newline-delimited JSON events, replayed from the history, then live.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::http::{MAX_WATCH, Query, Shared};
use super::ops::{Filter, present};
use super::resources::ResourceType;
use super::status::ApiError;
use super::store::{Event, EventType, Stored, TypeKey};

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

fn event_line(ty: &str, obj: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(obj.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(obj);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta});
    event_line("BOOKMARK", obj.to_string().as_bytes())
}

fn gone(rv: u64, oldest: u64) -> Bytes {
    let status = ApiError::gone(format!("too old resource version: {rv} ({oldest})")).to_status();
    event_line("ERROR", status.to_string().as_bytes())
}

/// How an event looks through a filtered watch: objects that start matching are ADDED,
/// objects that stop matching are DELETED, as Kubernetes does.
fn seen_as(ev: &Event, ns: Option<&str>, filter: &Filter) -> Option<&'static str> {
    let now = wanted(&ev.obj, ns, filter);
    let before = ev.prev.as_ref().map(|p| wanted(p, ns, filter));
    match (ev.ty, before, now) {
        (EventType::Modified, Some(true), false) => Some("DELETED"),
        (EventType::Modified, Some(false), true) => Some("ADDED"),
        (_, _, true) => Some(ev.ty.as_str()),
        _ => None,
    }
}

/// Whether an object belongs to this watch.
fn wanted(obj: &Stored, ns: Option<&str>, filter: &Filter) -> bool {
    ns.is_none_or(|ns| obj.value["metadata"]["namespace"].as_str() == Some(ns))
        && filter.matches(&obj.value)
}

/// Answers a watch request with a streamed body.
pub async fn serve(
    shared: Arc<Shared>,
    rt: ResourceType,
    ns: Option<String>,
    filter: Filter,
    q: &Query,
) -> Result<HttpResponse, ApiError> {
    let ns = if rt.namespaced { ns } else { None };
    let key = TypeKey::new(&rt.group, &rt.plural);
    let timeout = match q.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request("timeoutSeconds must be an integer"))?,
        )
        .min(MAX_WATCH),
        None => MAX_WATCH,
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.flag("sendInitialEvents");
    let from = match q.get("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let mut first: Vec<Bytes> = Vec::new();
    let (mut rx, mut last_rv) = {
        let store = shared.lock();
        let rx = store.subscribe();
        match from {
            Some(rv) if !send_initial => {
                if rv < store.compacted() {
                    first.push(gone(rv, store.compacted() + 1));
                    return Ok(stream_response(first, None));
                }
                for ev in store.history_after(rv) {
                    if ev.key == key
                        && let Some(ty) = seen_as(ev, ns.as_deref(), &filter)
                    {
                        first.push(event_line(ty, &present(&rt, &ev.obj).json));
                    }
                }
            }
            _ => {
                for (_, obj) in store.iter(&key, ns.as_deref(), None) {
                    if wanted(obj, ns.as_deref(), &filter) {
                        first.push(event_line("ADDED", &present(&rt, obj).json));
                    }
                }
                if send_initial {
                    first.push(bookmark(&rt, store.rv(), true));
                }
            }
        }
        (rx, store.rv())
    };
    let (tx, out) = mpsc::channel::<Bytes>(256);
    let cancel = shared.cancel.clone();
    tokio::spawn(async move {
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let line = tokio::select! {
                _ = &mut deadline => return,
                _ = cancel.cancelled() => return,
                _ = tx.closed() => return,
                _ = tokio::time::sleep(BOOKMARK_EVERY), if bookmarks => bookmark(&rt, last_rv, false),
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        last_rv = last_rv.max(ev.rv);
                        if ev.key != key {
                            continue;
                        }
                        let Some(ty) = seen_as(&ev, ns.as_deref(), &filter) else {
                            continue;
                        };
                        event_line(ty, &present(&rt, &ev.obj).json)
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(gone(last_rv, last_rv + 1)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(stream_response(Vec::new(), Some(out)))
}

fn stream_response(first: Vec<Bytes>, rest: Option<mpsc::Receiver<Bytes>>) -> HttpResponse {
    let head = futures::stream::iter(first);
    let body = match rest {
        Some(rx) => head.chain(ReceiverStream::new(rx)).boxed(),
        None => head.boxed(),
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-cache, private"))
        .streaming(body.map(Ok::<Bytes, actix_web::Error>))
}
