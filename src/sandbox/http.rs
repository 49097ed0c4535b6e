//! The HTTP front: authentication, fault injection, URL routing and the verbs' wire format.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::delete::{DeleteOpts, Propagation};
use super::discovery;
use super::faults::{FaultAction, Faults};
use super::ops::{Filter, WriteOpts};
use super::resources::ResourceType;
use super::scale::{self, ScaleChange};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Store, Stored};
use super::watch;

/// State every request handler shares.
pub struct Shared {
    /// The objects.
    pub store: Mutex<Store>,
    /// Injected faults.
    pub faults: Arc<Faults>,
    /// Required bearer token.
    pub token: Option<String>,
    /// Cancelled at shutdown: ends watches and background loops.
    pub cancel: CancellationToken,
}

impl Shared {
    /// Locks the store; a poisoned lock still holds consistent data (writes are not interrupted by panics).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A parsed resource URL.
#[derive(Debug, Clone, Default)]
struct ResPath {
    group: String,
    version: String,
    plural: String,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    watch: bool,
}

enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String, String),
    Resource(ResPath),
    NotFound,
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::Resources(String::new(), v.to_string()),
        ["apis", g, v] => Route::Resources(g.to_string(), v.to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", v] => Route::OpenApiV3(String::new(), v.to_string()),
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => resource_path("", v, rest),
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_path(group: &str, version: &str, mut rest: &[&str]) -> Route {
    let mut p = ResPath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    if rest.first() == Some(&"watch") {
        p.watch = true;
        rest = &rest[1..];
    }
    let namespace_sub =
        group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !namespace_sub {
        p.ns = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    match rest {
        [plural] => p.plural = plural.to_string(),
        [plural, name] => {
            p.plural = plural.to_string();
            p.name = Some(name.to_string());
        }
        [plural, name, sub] => {
            p.plural = plural.to_string();
            p.name = Some(name.to_string());
            p.sub = Some(sub.to_string());
        }
        _ => return Route::NotFound,
    }
    Route::Resource(p)
}

fn json_response(code: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    HttpResponse::build(code)
        .content_type("application/json")
        .body(body.into())
}

fn value_response(v: &Value) -> HttpResponse {
    json_response(StatusCode::OK, v.to_string())
}

fn not_found_path() -> HttpResponse {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: None,
    }
    .response()
}

fn aggregated(req: &HttpRequest) -> bool {
    req.headers()
        .get("accept")
        .and_then(|h| h.to_str().ok())
        .is_some_and(discovery::wants_aggregated)
}

fn authorized(req: &HttpRequest, token: &str) -> bool {
    let Some(header) = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let Some(given) = header.strip_prefix("Bearer ") else {
        return false;
    };
    // Compare digests so neither the content nor the length leaks through timing.
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(token.as_bytes());
    a.ct_eq(&b).into()
}

/// The single entry point: every request goes through here.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    if let Some(token) = &shared.token
        && !authorized(&req, token)
    {
        return ApiError::unauthorized().response();
    }
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(e) => return e.response(),
    };
    let query = match web::Query::<Vec<(String, String)>>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return ApiError::bad_request(format!("invalid query: {e}")).response(),
    };
    let q = Query(query);
    let dry_run = q.get("dryRun").is_some_and(|v| !v.is_empty());
    match shared
        .faults
        .take(req.method().as_str(), req.path(), dry_run)
    {
        Some(FaultAction::Fail(429)) => return ApiError::too_many_requests().response(),
        Some(FaultAction::Fail(_)) => {
            return ApiError::internal("injected fault (Capstan sandbox)").response();
        }
        Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if req.method() != Method::GET && !matches!(route(req.path()), Route::Resource(_)) {
        return ApiError::method_not_allowed().response();
    }
    match route(req.path()) {
        Route::Version => value_response(&discovery::version()),
        Route::Health => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Route::CoreVersions | Route::Groups if aggregated(&req) => {
            let core = matches!(route(req.path()), Route::CoreVersions);
            let doc = discovery::aggregated(&shared.lock().catalog, core);
            HttpResponse::Ok()
                .content_type(discovery::AGGREGATED_V2)
                .body(doc.to_string())
        }
        Route::CoreVersions => value_response(&discovery::core_versions()),
        Route::Groups => value_response(&discovery::group_list(&shared.lock().catalog)),
        Route::Group(g) => match discovery::group(&shared.lock().catalog, &g) {
            Some(v) => value_response(&v),
            None => not_found_path(),
        },
        Route::Resources(g, v) => match discovery::resource_list(&shared.lock().catalog, &g, &v) {
            Some(v) => value_response(&v),
            None => not_found_path(),
        },
        Route::OpenApiV2 => value_response(&discovery::openapi_v2(&shared.lock().catalog)),
        Route::OpenApiV3Index => {
            value_response(&discovery::openapi_v3_index(&shared.lock().catalog))
        }
        Route::OpenApiV3(g, v) => match discovery::openapi_v3_doc(&shared.lock().catalog, &g, &v) {
            Some(v) => value_response(&v),
            None => not_found_path(),
        },
        Route::Resource(p) => match resource(&req, &body, &shared, p, &q).await {
            Ok(resp) => resp,
            Err(e) => e.response(),
        },
        Route::NotFound => not_found_path(),
    }
}

/// Largest request body accepted (Kubernetes' own limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reads the body, refusing more than [`MAX_BODY`] with a Status (actix's own limit answers text).
async fn read_body(mut payload: web::Payload) -> Result<Bytes, ApiError> {
    use futures::StreamExt;
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Query parameters in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a boolean parameter is set to true.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }
}

fn write_opts(req: &HttpRequest, q: &Query) -> Result<WriteOpts, ApiError> {
    let dry_run = dry_run(q)?;
    let explicit = q.get("fieldManager").filter(|m| !m.is_empty());
    let manager = match explicit {
        Some(m) if m.len() > 128 => return Err(ApiError::bad_request("fieldManager is too long")),
        Some(m) => m.to_string(),
        None => req
            .headers()
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .map(|ua| {
                ua.split('/')
                    .next()
                    .unwrap_or(ua)
                    .chars()
                    .take(128)
                    .collect()
            })
            .unwrap_or_else(|| "unknown".to_string()),
    };
    Ok(WriteOpts {
        dry_run,
        manager,
        force: q.flag("force"),
        explicit_manager: explicit.is_some(),
    })
}

fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
        ))),
    }
}

fn filter(q: &Query) -> Result<Filter, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Filter { labels, fields })
}

fn delete_opts(body: &[u8], q: &Query) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        dry_run: dry_run(q)?,
        ..Default::default()
    };
    let mut policy = q.get("propagationPolicy").map(str::to_string);
    if q.flag("orphanDependents") {
        policy = Some("Orphan".into());
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        if let Some(p) = v["propagationPolicy"].as_str() {
            policy = Some(p.to_string());
        }
        if v["orphanDependents"].as_bool() == Some(true) {
            policy = Some("Orphan".into());
        }
        opts.uid = v["preconditions"]["uid"].as_str().map(str::to_string);
        opts.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        if v["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
    }
    opts.propagation = match policy.as_deref() {
        None | Some("" | "Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\""
            )));
        }
    };
    Ok(opts)
}

/// The magic prefix of Kubernetes' protobuf envelope.
const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.starts_with(PROTOBUF_MAGIC) {
        return Err(ApiError::protobuf_refused());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn object_response(code: StatusCode, obj: &Arc<Stored>) -> HttpResponse {
    json_response(code, obj.json.clone())
}

/// Builds a list document around already-serialized items.
pub fn list_body(rt: &ResourceType, items: &[Arc<Stored>], rv: u64, cont: Option<&str>) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = Value::String(c.to_string());
    }
    let head = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta}).to_string();
    let size: usize = items.iter().map(|i| i.json.len() + 1).sum();
    let mut out = Vec::with_capacity(head.len() + size + 16);
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item.json);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

async fn resource(
    req: &HttpRequest,
    body: &Bytes,
    shared: &web::Data<Shared>,
    p: ResPath,
    q: &Query,
) -> Result<HttpResponse, ApiError> {
    let rt = {
        let store = shared.lock();
        store.catalog.find(&p.group, &p.version, &p.plural).cloned()
    }
    .ok_or_else(|| ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: None,
    })?;
    if p.ns.is_some() && !rt.namespaced {
        return Err(ApiError::not_found(
            &rt.group,
            &rt.plural,
            p.name.as_deref().unwrap_or(""),
        ));
    }
    if p.sub.as_deref() == Some("scale") && scale::has_scale(&rt) {
        return scale_request(req, body, shared, &rt, &p, q);
    }
    let status_only = match p.sub.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(_) => {
            return Err(ApiError {
                code: 404,
                reason: "NotFound",
                message: "the server could not find the requested resource".into(),
                details: None,
            });
        }
    };
    let ns = p.ns.as_deref();
    let method = req.method().clone();
    let wants_watch = p.watch || q.flag("watch");
    match (method, p.name.as_deref()) {
        (Method::GET, name) if wants_watch => {
            let mut f = filter(q)?;
            if let Some(name) = name {
                f.fields = FieldSelector::parse(&format!("metadata.name={name}"))
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            watch::serve(
                shared.clone().into_inner(),
                rt,
                ns.map(str::to_string),
                f,
                q,
            )
            .await
        }
        (Method::GET, Some(name)) => {
            let obj = shared.lock().op_get(&rt, ns, name)?;
            Ok(object_response(StatusCode::OK, &obj))
        }
        (Method::GET, None) => {
            let f = filter(q)?;
            let limit = match q.get("limit") {
                Some(l) => Some(
                    l.parse::<usize>()
                        .map_err(|_| ApiError::bad_request("limit must be an integer"))?,
                ),
                None => None,
            };
            let page = shared
                .lock()
                .op_list(&rt, ns, &f, limit, q.get("continue"))?;
            Ok(json_response(
                StatusCode::OK,
                list_body(&rt, &page.items, page.rv, page.continue_token.as_deref()),
            ))
        }
        (Method::POST, None) => {
            let opts = write_opts(req, q)?;
            let obj = parse_body(body)?;
            let created = shared.lock().op_create(&rt, ns, obj, &opts)?;
            Ok(object_response(StatusCode::CREATED, &created))
        }
        (Method::PUT, Some(name)) => {
            let opts = write_opts(req, q)?;
            let obj = parse_body(body)?;
            let updated = shared
                .lock()
                .op_update(&rt, ns, name, obj, status_only, &opts)?;
            Ok(object_response(StatusCode::OK, &updated))
        }
        (Method::PATCH, Some(name)) => {
            let opts = write_opts(req, q)?;
            let ct = req
                .headers()
                .get("content-type")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            let (obj, created) =
                shared
                    .lock()
                    .op_patch(&rt, ns, name, &ct, body, status_only, &opts)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(object_response(code, &obj))
        }
        (Method::DELETE, Some(name)) => {
            let opts = delete_opts(body, q)?;
            let obj = shared.lock().op_delete(&rt, ns, name, &opts)?;
            Ok(object_response(StatusCode::OK, &obj))
        }
        (Method::DELETE, None) => {
            let opts = delete_opts(body, q)?;
            let f = filter(q)?;
            let items = shared.lock().op_delete_collection(&rt, ns, &f, &opts)?;
            let rv = shared.lock().rv();
            Ok(json_response(
                StatusCode::OK,
                list_body(&rt, &items, rv, None),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// GET, PUT or PATCH on `/scale`.
fn scale_request(
    req: &HttpRequest,
    body: &Bytes,
    shared: &web::Data<Shared>,
    rt: &ResourceType,
    p: &ResPath,
    q: &Query,
) -> Result<HttpResponse, ApiError> {
    let ns = p.ns.as_deref();
    let name = p.name.as_deref().unwrap_or("");
    let scale = match *req.method() {
        Method::GET => shared.lock().op_get_scale(rt, ns, name)?,
        Method::PUT => {
            let opts = write_opts(req, q)?;
            let change = ScaleChange::Replace(parse_body(body)?);
            shared.lock().op_write_scale(rt, ns, name, change, &opts)?
        }
        Method::PATCH => {
            let opts = write_opts(req, q)?;
            let ct = req
                .headers()
                .get("content-type")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let change = ScaleChange::Patch(ct, body);
            shared.lock().op_write_scale(rt, ns, name, change, &opts)?
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(value_response(&scale))
}

/// How long a watch without `timeoutSeconds` stays open, and the cap on what clients ask.
pub const MAX_WATCH: Duration = Duration::from_secs(1800);
