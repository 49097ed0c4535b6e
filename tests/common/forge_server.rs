//! A local fake of the six Git hosts' write APIs Capstan calls for previews: commit statuses and
//! PR comments on GitHub (`{base}/github`), GitLab (`{base}/gitlab/api/v4`), Bitbucket Cloud
//! (`{base}/bitbucket/2.0`), Bitbucket Data Center (`{base}/bitbucket-server`), Gitea
//! (`{base}/gitea/api/v1`) and Azure DevOps (`{base}/azure/org`). Each answers in its host's
//! documented shapes and checks what the host checks: its credential header (401 otherwise), its
//! state words (422/400 otherwise), Bitbucket's required status URL, Bitbucket Data Center's
//! comment versions (409 when stale), GitLab's refusal to repeat a status, Azure's api-version.
//! Lists are paginated as each host pages them. Comments live in memory; every request is
//! recorded; the next calls can be made to fail with 503, 429 + Retry-After, or GitHub's 403
//! with an exhausted rate limit.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use capstan::event::{EventSource, ForgeRepo};
use serde_json::{Value, json};

/// The Bitbucket user whose app password the fake accepts (and the author of Capstan's comments).
pub const BOT_USER: &str = "capstan-bot";
const TIMESTAMP: &str = "2025-03-01T10:00:00Z";
const EPOCH_MS: u64 = 1_740_823_200_000;

/// The six hosts the fake serves, by wire name.
pub const HOSTS: [&str; 6] = [
    "github",
    "gitlab",
    "bitbucket-cloud",
    "bitbucket-server",
    "gitea",
    "azure-devops",
];

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The host it was for (`github`, …), `None` outside every host's prefix.
    pub host: Option<&'static str>,
    pub method: String,
    /// The path as sent (percent-encoded).
    pub path: String,
    pub query: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body as JSON, when it was JSON.
    pub body: Option<Value>,
}

/// A status a host accepted.
#[derive(Debug, Clone)]
pub struct Status {
    pub host: &'static str,
    pub sha: String,
    /// The state word as sent.
    pub state: String,
    /// `context` (GitHub, Gitea), `name` (GitLab), `key` (Bitbucket), `genre/name` (Azure).
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
    pub body: Value,
}

/// A PR comment (GitLab: note; Azure: the first comment of a thread).
#[derive(Debug, Clone)]
pub struct Comment {
    pub host: &'static str,
    pub pr: u64,
    /// Unique per host, except on Azure, where comments are numbered within their thread.
    pub id: u64,
    pub thread: Option<u64>,
    pub body: String,
    pub author: String,
    /// Bitbucket Data Center's optimistic-locking version; bumped by each edit.
    pub version: u64,
    pub edits: u32,
}

/// What the next calls answer instead of doing their work.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// 503 Service Unavailable.
    Unavailable,
    /// 429 with `Retry-After: secs`.
    RateLimited { retry_after_secs: u64 },
    /// GitHub's primary rate limit: 403 with `x-ratelimit-remaining: 0` and the reset time.
    GithubRateLimit { reset_in_secs: u64 },
}

/// A running fake; stops when dropped.
pub struct ForgeServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

struct State {
    base: String,
    /// The credential each host accepts, by wire name.
    tokens: HashMap<&'static str, String>,
    inner: Mutex<Inner>,
    /// The GitHub App whose JWTs buy installation tokens: (app id, public key PEM).
    github_app: Mutex<Option<(String, Vec<u8>)>>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    statuses: Vec<Status>,
    comments: Vec<Comment>,
    next_id: u64,
    failures: VecDeque<Failure>,
}

impl ForgeServer {
    /// Serves all six hosts on a port of its own. Must be called inside a tokio runtime.
    pub fn start() -> ForgeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake forge");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("address").port()
        );
        let tokens = HOSTS
            .iter()
            .map(|h| (*h, format!("{h}-token-{}", uuid::Uuid::new_v4().simple())))
            .collect();
        let state = Arc::new(State {
            base: base.clone(),
            tokens,
            inner: Mutex::new(Inner {
                next_id: 1000,
                ..Inner::default()
            }),
            github_app: Mutex::new(None),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(handle))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .expect("serve the fake forge")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        ForgeServer {
            base,
            state,
            handle,
        }
    }

    /// The API URL of `host` (a wire name) as Capstan's `ForgeRepo.api_url` holds it.
    pub fn api_url(&self, host: &str) -> String {
        let prefix = match host {
            "github" => "github",
            "gitlab" => "gitlab/api/v4",
            "bitbucket-cloud" => "bitbucket/2.0",
            "bitbucket-server" => "bitbucket-server",
            "gitea" => "gitea/api/v1",
            "azure-devops" => "azure/org",
            other => panic!("the fake serves no host {other}"),
        };
        format!("{}/{prefix}", self.base)
    }

    /// A repository on `host` as a PR webhook names it.
    pub fn repo(&self, host: &str) -> ForgeRepo {
        let (owner, name) = match host {
            "github" | "gitea" => ("octo", "shop"),
            "gitlab" => ("", "42"),
            "bitbucket-cloud" => ("octo-team", "shop"),
            "bitbucket-server" => ("SHOP", "shop"),
            "azure-devops" => ("Shop", "3411ebc1-d5aa-464f-9615-0b527bc66719"),
            other => panic!("the fake serves no host {other}"),
        };
        ForgeRepo {
            kind: EventSource::from_name(host),
            api_url: self.api_url(host),
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// The token `host` accepts.
    pub fn token(&self, host: &str) -> String {
        self.state.tokens[host].clone()
    }

    /// The next `n` calls answer `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut inner = self.state.lock();
        inner.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Accepts JWTs of GitHub App `app_id` signed with the key whose public half is `public_pem`:
    /// `POST /app/installations/{id}/access_tokens` then answers the GitHub token.
    pub fn accept_github_app(&self, app_id: &str, public_pem: &[u8]) {
        *self.state.github_app.lock().expect("lock") =
            Some((app_id.to_owned(), public_pem.to_vec()));
    }

    /// How many installation tokens were minted.
    pub fn minted(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with("/access_tokens"))
            .count()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().requests.clone()
    }

    /// The statuses set on `sha`, in order.
    pub fn statuses(&self, sha: &str) -> Vec<Status> {
        self.state
            .lock()
            .statuses
            .iter()
            .filter(|s| s.sha == sha)
            .cloned()
            .collect()
    }

    /// Waits until `n` statuses were set (on any commit), or fails after `timeout`.
    pub async fn wait_for_statuses(&self, n: usize, timeout: Duration) -> Vec<Status> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.state.lock().statuses.clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} statuses never arrived; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The comments on PR `pr` (of any host), oldest first.
    pub fn comments(&self, pr: u64) -> Vec<Comment> {
        self.state
            .lock()
            .comments
            .iter()
            .filter(|c| c.pr == pr)
            .cloned()
            .collect()
    }

    /// A comment someone else wrote on `pr`.
    pub fn seed_comment(&self, host: &'static str, pr: u64, author: &str, body: &str) -> Comment {
        self.state.lock().add_comment(host, pr, author, body)
    }

    /// Someone edits comment `id` on the host (Bitbucket Data Center bumps its version).
    pub fn edit_comment(&self, id: u64, body: &str) {
        let mut inner = self.state.lock();
        let c = inner
            .comments
            .iter_mut()
            .find(|c| c.id == id)
            .expect("the comment exists");
        c.body = body.into();
        c.version += 1;
    }

    /// Someone deletes comment `id` (on Azure, the thread holding it).
    pub fn delete_comment(&self, id: u64, thread: Option<u64>) {
        self.state
            .lock()
            .comments
            .retain(|c| !(c.id == id && c.thread == thread));
    }
}

impl Drop for ForgeServer {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stop);
        }
    }
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn add_comment(&mut self, host: &'static str, pr: u64, author: &str, body: &str) -> Comment {
        self.next_id += 1;
        let (id, thread) = if host == "azure-devops" {
            (1, Some(self.next_id))
        } else {
            (self.next_id, None)
        };
        let comment = Comment {
            host,
            pr,
            id,
            thread,
            body: body.into(),
            author: author.into(),
            version: 0,
            edits: 0,
        };
        self.comments.push(comment.clone());
        comment
    }

    fn find(
        &mut self,
        host: &str,
        pr: Option<u64>,
        id: u64,
        thread: Option<u64>,
    ) -> Option<&mut Comment> {
        self.comments.iter_mut().find(|c| {
            c.host == host && c.id == id && c.thread == thread && pr.is_none_or(|p| p == c.pr)
        })
    }

    fn on_pr(&self, host: &str, pr: u64) -> Vec<Comment> {
        self.comments
            .iter()
            .filter(|c| c.host == host && c.pr == pr)
            .cloned()
            .collect()
    }
}

/// A request as the handlers see it.
struct Request {
    host: &'static str,
    method: String,
    /// Decoded path segments after the host's prefix.
    rest: Vec<String>,
    /// The full path as sent, for page links.
    path: String,
    query: HashMap<String, String>,
    body: Value,
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let segments: Vec<String> = req
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (host, prefix_len) = match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["github", ..] => (Some("github"), 1),
        ["gitlab", "api", "v4", ..] => (Some("gitlab"), 3),
        ["bitbucket", "2.0", ..] => (Some("bitbucket-cloud"), 2),
        ["bitbucket-server", ..] => (Some("bitbucket-server"), 1),
        ["gitea", "api", "v1", ..] => (Some("gitea"), 3),
        ["azure", "org", ..] => (Some("azure-devops"), 2),
        _ => (None, 0),
    };
    let failure = {
        let mut inner = state.lock();
        inner.requests.push(Recorded {
            host,
            method: req.method().to_string(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers: headers.clone(),
            body: json.clone(),
        });
        inner.failures.pop_front()
    };
    if let Some(failure) = failure {
        return fail(failure);
    }
    let Some(host) = host else {
        return HttpResponse::NotFound().finish();
    };
    if host == "github" && segments.get(1).map(String::as_str) == Some("app") {
        return github_app_token(&state, &headers);
    }
    if !authorised(host, &headers, &state.tokens[host]) {
        return unauthorised(host);
    }
    let request = Request {
        host,
        method: req.method().to_string(),
        rest: segments[prefix_len..].to_vec(),
        path: req.path().to_owned(),
        query: form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect(),
        body: json.unwrap_or(Value::Null),
    };
    match host {
        "github" | "gitea" => github_like(&state, &request),
        "gitlab" => gitlab(&state, &request),
        "bitbucket-cloud" => bitbucket_cloud(&state, &request),
        "bitbucket-server" => bitbucket_server(&state, &request),
        _ => azure(&state, &request),
    }
}

fn fail(failure: Failure) -> HttpResponse {
    match failure {
        Failure::Unavailable => HttpResponse::ServiceUnavailable()
            .content_type("text/html")
            .body("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"),
        Failure::RateLimited { retry_after_secs } => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", retry_after_secs.to_string()))
            .json(json!({"message": "You have exceeded a secondary rate limit."})),
        Failure::GithubRateLimit { reset_in_secs } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs();
            HttpResponse::Forbidden()
                .insert_header(("x-ratelimit-limit", "5000"))
                .insert_header(("x-ratelimit-remaining", "0"))
                .insert_header(("x-ratelimit-used", "5000"))
                .insert_header(("x-ratelimit-reset", (now + reset_in_secs).to_string()))
                .json(json!({
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                }))
        }
    }
}

/// GitHub's installation token for a valid App JWT (RS256, `iss` the App, at most 10 minutes).
fn github_app_token(state: &State, headers: &HashMap<String, String>) -> HttpResponse {
    let Some((app_id, pem)) = state.github_app.lock().expect("lock").clone() else {
        return HttpResponse::NotFound().json(json!({"message": "Not Found"}));
    };
    let jwt = headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem).expect("public key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[app_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    match jsonwebtoken::decode::<Value>(jwt, &key, &validation) {
        Ok(data)
            if data.claims["exp"].as_i64().unwrap_or(0)
                - data.claims["iat"].as_i64().unwrap_or(0)
                <= 600 =>
        {
            HttpResponse::Created().json(json!({
                "token": state.tokens["github"],
                "expires_at": "2099-01-01T00:00:00Z",
                "permissions": {"statuses": "write", "pull_requests": "write"},
                "repository_selection": "all"
            }))
        }
        _ => HttpResponse::Unauthorized().json(json!({
            "message": "A JSON web token could not be decoded",
            "documentation_url": "https://docs.github.com/rest"
        })),
    }
}

/// Whether the request carries `host`'s credential for `token`, the way that host expects it.
fn authorised(host: &str, headers: &HashMap<String, String>, token: &str) -> bool {
    let authorization = headers.get("authorization").map(String::as_str);
    let basic = |user: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
        )
    };
    let bearer = format!("Bearer {token}");
    match host {
        "github" => authorization == Some(bearer.as_str()),
        "gitlab" => headers.get("private-token").map(String::as_str) == Some(token),
        "bitbucket-cloud" | "bitbucket-server" => {
            authorization == Some(bearer.as_str())
                || authorization == Some(basic(BOT_USER).as_str())
        }
        "gitea" => authorization == Some(format!("token {token}").as_str()),
        _ => authorization == Some(basic("").as_str()),
    }
}

fn unauthorised(host: &str) -> HttpResponse {
    let body = match host {
        "github" => {
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
        }
        "gitlab" => json!({"message": "401 Unauthorized"}),
        "bitbucket-cloud" => {
            json!({"type": "error", "error": {"message": "Token is invalid or not supported for this endpoint."}})
        }
        "bitbucket-server" => {
            json!({"errors": [{"context": null, "message": "Authentication failed. Please check your credentials and try again.", "exceptionName": "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]})
        }
        "gitea" => {
            json!({"message": "user does not exist [uid: 0, name: ]", "url": "https://gitea.example.com/api/swagger"})
        }
        _ => {
            json!({"$id": "1", "innerException": null, "message": "TF400813: The user '' is not authorized to access this resource.", "typeName": "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException", "typeKey": "UnauthorizedRequestException", "errorCode": 0, "eventId": 3000})
        }
    };
    HttpResponse::Unauthorized().json(body)
}

fn not_found(message: Value) -> HttpResponse {
    HttpResponse::NotFound().json(message)
}

fn page_params(req: &Request, size_key: &str, default: usize, max: usize) -> (usize, usize) {
    let size = req
        .query
        .get(size_key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max);
    let page = req
        .query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (size, page)
}

fn record_status(
    state: &State,
    req: &Request,
    sha: &str,
    state_word: &str,
    context: String,
    description: &str,
    target_url: Option<&str>,
) {
    state.lock().statuses.push(Status {
        host: req.host,
        sha: sha.into(),
        state: state_word.into(),
        context,
        description: description.into(),
        target_url: target_url.map(str::to_owned),
        body: req.body.clone(),
    });
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str()
}

/// GitHub and Gitea: statuses, issue comments paged by `Link`.
fn github_like(state: &State, req: &Request) -> HttpResponse {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let gitea = req.host == "gitea";
    match (req.method.as_str(), &rest[..]) {
        ("POST", ["repos", owner, repo, "statuses", sha]) => {
            let words: &[&str] = if gitea {
                &["pending", "success", "error", "failure", "warning"]
            } else {
                &["pending", "success", "error", "failure"]
            };
            let word = str_of(&req.body, "state").unwrap_or_default();
            if !words.contains(&word) {
                return HttpResponse::UnprocessableEntity().json(json!({
                    "message": "Validation Failed",
                    "errors": [{"resource": "Status", "code": "custom", "field": "state", "message": "state is not included in the list"}],
                }));
            }
            let description = str_of(&req.body, "description").unwrap_or_default();
            if !gitea && description.chars().count() > 140 {
                return HttpResponse::UnprocessableEntity().json(json!({
                    "message": "Validation Failed",
                    "errors": [{"resource": "Status", "code": "custom", "field": "description", "message": "description is too long (maximum is 140 characters)"}],
                }));
            }
            let context = str_of(&req.body, "context").unwrap_or("default").to_owned();
            record_status(
                state,
                req,
                sha,
                word,
                context.clone(),
                description,
                str_of(&req.body, "target_url"),
            );
            HttpResponse::Created().json(json!({
                "url": format!("{}/github/repos/{owner}/{repo}/statuses/{sha}", state.base),
                "id": 1, "node_id": "MDY6U3RhdHVzMQ==", "state": word,
                "description": description, "target_url": req.body["target_url"], "context": context,
                "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
                "creator": {"login": BOT_USER, "id": 7, "type": "User"},
            }))
        }
        ("GET", ["repos", _, _, "issues", number, "comments"]) => {
            let Ok(pr) = number.parse() else {
                return not_found(json!({"message": "Not Found"}));
            };
            let all = state.lock().on_pr(req.host, pr);
            let (size, page) = if gitea {
                page_params(req, "limit", 50, 50)
            } else {
                page_params(req, "per_page", 30, 100)
            };
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * size)
                .take(size)
                .map(|c| github_comment(state, c))
                .collect();
            let mut response = HttpResponse::Ok();
            if page * size < all.len() {
                let key = if gitea { "limit" } else { "per_page" };
                response.insert_header((
                    "Link",
                    format!(
                        "<{}{}?{key}={size}&page={}>; rel=\"next\", <{}{}?{key}={size}&page={}>; rel=\"last\"",
                        state.base, req.path, page + 1, state.base, req.path, all.len().div_ceil(size)
                    ),
                ));
            }
            response.json(items)
        }
        ("POST", ["repos", _, _, "issues", number, "comments"]) => {
            let (Ok(pr), Some(body)) = (number.parse(), str_of(&req.body, "body")) else {
                return HttpResponse::UnprocessableEntity()
                    .json(json!({"message": "Validation Failed"}));
            };
            if !gitea && body.chars().count() > 65_536 {
                return HttpResponse::UnprocessableEntity().json(json!({
                    "message": "Validation Failed",
                    "errors": [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}],
                }));
            }
            let comment = state.lock().add_comment(req.host, pr, BOT_USER, body);
            HttpResponse::Created().json(github_comment(state, &comment))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let mut inner = state.lock();
            let found = id
                .parse()
                .ok()
                .and_then(|id| inner.find(req.host, None, id, None));
            match (found, str_of(&req.body, "body")) {
                (Some(c), Some(body)) => {
                    c.body = body.into();
                    c.edits += 1;
                    let c = c.clone();
                    drop(inner);
                    HttpResponse::Ok().json(github_comment(state, &c))
                }
                (None, _) => not_found(
                    json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/comments#update-an-issue-comment"}),
                ),
                (_, None) => HttpResponse::UnprocessableEntity()
                    .json(json!({"message": "Validation Failed"})),
            }
        }
        _ => not_found(json!({"message": "Not Found"})),
    }
}

fn github_comment(state: &State, c: &Comment) -> Value {
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{}/github/repos/octo/shop/issues/comments/{}", state.base, c.id),
        "html_url": format!("https://github.com/octo/shop/pull/{}#issuecomment-{}", c.pr, c.id),
        "issue_url": format!("{}/github/repos/octo/shop/issues/{}", state.base, c.pr),
        "body": c.body,
        "user": {"login": c.author, "id": 7, "type": "User"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "author_association": "NONE",
    })
}

/// GitLab: statuses (no repeat of the current state), MR notes paged by `X-Next-Page`.
fn gitlab(state: &State, req: &Request) -> HttpResponse {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    match (req.method.as_str(), &rest[..]) {
        ("POST", ["projects", _, "statuses", sha]) => {
            let word = str_of(&req.body, "state").unwrap_or_default();
            if !["pending", "running", "success", "failed", "canceled"].contains(&word) {
                return HttpResponse::BadRequest()
                    .json(json!({"error": "state does not have a valid value"}));
            }
            let name = str_of(&req.body, "name").unwrap_or("default").to_owned();
            let current = state
                .lock()
                .statuses
                .iter()
                .rev()
                .find(|s| s.host == "gitlab" && s.sha == *sha && s.context == name)
                .map(|s| s.state.clone());
            if current.as_deref() == Some(word) {
                return HttpResponse::BadRequest().json(json!({
                    "message": format!("Cannot transition status via :{word} from :{word} (Reason(s): Status cannot transition via \"{word}\")")
                }));
            }
            let description = str_of(&req.body, "description").unwrap_or_default();
            record_status(
                state,
                req,
                sha,
                word,
                name.clone(),
                description,
                str_of(&req.body, "target_url"),
            );
            HttpResponse::Created().json(json!({
                "id": 93, "sha": sha, "ref": "feature", "status": word, "name": name,
                "target_url": req.body["target_url"], "description": description,
                "created_at": TIMESTAMP, "started_at": null, "finished_at": null,
                "allow_failure": false, "coverage": null, "pipeline_id": 101,
                "author": {"id": 7, "username": BOT_USER, "name": "Capstan", "state": "active"},
            }))
        }
        ("GET", ["projects", _, "merge_requests", iid, "notes"]) => {
            let Ok(pr) = iid.parse() else {
                return not_found(json!({"message": "404 Not found"}));
            };
            let all = state.lock().on_pr("gitlab", pr);
            let (size, page) = page_params(req, "per_page", 20, 100);
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * size)
                .take(size)
                .map(gitlab_note)
                .collect();
            let next = if page * size < all.len() {
                (page + 1).to_string()
            } else {
                String::new()
            };
            HttpResponse::Ok()
                .insert_header(("X-Page", page.to_string()))
                .insert_header(("X-Per-Page", size.to_string()))
                .insert_header(("X-Next-Page", next))
                .insert_header(("X-Total", all.len().to_string()))
                .json(items)
        }
        ("POST", ["projects", _, "merge_requests", iid, "notes"]) => {
            let (Ok(pr), Some(body)) = (iid.parse(), str_of(&req.body, "body")) else {
                return HttpResponse::BadRequest().json(json!({"error": "body is missing"}));
            };
            let note = state.lock().add_comment("gitlab", pr, BOT_USER, body);
            HttpResponse::Created().json(gitlab_note(&note))
        }
        ("PUT", ["projects", _, "merge_requests", iid, "notes", id]) => {
            let mut inner = state.lock();
            let found = match (iid.parse().ok(), id.parse().ok()) {
                (Some(pr), Some(id)) => inner.find("gitlab", Some(pr), id, None),
                _ => None,
            };
            match (found, str_of(&req.body, "body")) {
                (Some(c), Some(body)) => {
                    c.body = body.into();
                    c.edits += 1;
                    HttpResponse::Ok().json(gitlab_note(c))
                }
                (None, _) => not_found(json!({"message": "404 Not found"})),
                (_, None) => HttpResponse::BadRequest().json(json!({"error": "body is missing"})),
            }
        }
        _ => not_found(json!({"message": "404 Not Found"})),
    }
}

fn gitlab_note(c: &Comment) -> Value {
    json!({
        "id": c.id, "type": null, "body": c.body, "attachment": null,
        "author": {"id": 7, "username": c.author, "name": c.author, "state": "active"},
        "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "system": false,
        "noteable_id": 5000 + c.pr, "noteable_type": "MergeRequest", "noteable_iid": c.pr,
        "project_id": 42, "resolvable": false, "confidential": false, "internal": false,
        "imported": false, "imported_from": "none",
    })
}

/// Bitbucket Cloud: build statuses (url required), PR comments paged by `next`.
fn bitbucket_cloud(state: &State, req: &Request) -> HttpResponse {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let error = |status: StatusCode, message: &str| {
        HttpResponse::build(status).json(json!({"type": "error", "error": {"message": message}}))
    };
    match (req.method.as_str(), &rest[..]) {
        ("POST", ["repositories", _, _, "commit", sha, "statuses", "build"]) => {
            let word = str_of(&req.body, "state").unwrap_or_default();
            if !["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"].contains(&word) {
                return error(StatusCode::BAD_REQUEST, "state: not a valid choice");
            }
            let (Some(key), Some(url)) = (str_of(&req.body, "key"), str_of(&req.body, "url"))
            else {
                return HttpResponse::BadRequest().json(json!({"type": "error", "error": {"message": "Bad request", "fields": {"url": ["This field is required."]}}}));
            };
            let description = str_of(&req.body, "description").unwrap_or_default();
            record_status(state, req, sha, word, key.into(), description, Some(url));
            HttpResponse::Created().json(json!({
                "type": "build", "key": key, "state": word, "name": req.body["name"], "url": url,
                "description": description, "refname": null, "uuid": "{7f2c1e4c-0e0a-4c5f-9a36-5c1d2b9b7e01}",
                "created_on": TIMESTAMP, "updated_on": TIMESTAMP,
                "links": {"commit": {"href": format!("{}/bitbucket/2.0/repositories/octo-team/shop/commit/{sha}", state.base)}},
            }))
        }
        ("GET", ["repositories", _, _, "pullrequests", id, "comments"]) => {
            let Ok(pr) = id.parse() else {
                return error(StatusCode::NOT_FOUND, "Resource not found");
            };
            let all = state.lock().on_pr("bitbucket-cloud", pr);
            let (size, page) = page_params(req, "pagelen", 10, 100);
            let values: Vec<Value> = all
                .iter()
                .skip((page - 1) * size)
                .take(size)
                .map(|c| bitbucket_cloud_comment(state, c))
                .collect();
            let mut answer =
                json!({"pagelen": size, "size": all.len(), "page": page, "values": values});
            if page * size < all.len() {
                answer["next"] = format!(
                    "{}{}?pagelen={size}&page={}",
                    state.base,
                    req.path,
                    page + 1
                )
                .into();
            }
            HttpResponse::Ok().json(answer)
        }
        ("POST", ["repositories", _, _, "pullrequests", id, "comments"]) => {
            let (Ok(pr), Some(raw)) = (id.parse(), req.body["content"]["raw"].as_str()) else {
                return error(StatusCode::BAD_REQUEST, "content.raw: required");
            };
            let c = state
                .lock()
                .add_comment("bitbucket-cloud", pr, BOT_USER, raw);
            HttpResponse::Created().json(bitbucket_cloud_comment(state, &c))
        }
        ("PUT", ["repositories", _, _, "pullrequests", pr, "comments", id]) => {
            let mut inner = state.lock();
            let found = match (pr.parse().ok(), id.parse().ok()) {
                (Some(pr), Some(id)) => inner.find("bitbucket-cloud", Some(pr), id, None),
                _ => None,
            };
            match (found, req.body["content"]["raw"].as_str()) {
                (Some(c), Some(raw)) => {
                    c.body = raw.into();
                    c.edits += 1;
                    let c = c.clone();
                    drop(inner);
                    HttpResponse::Ok().json(bitbucket_cloud_comment(state, &c))
                }
                (None, _) => error(
                    StatusCode::NOT_FOUND,
                    "No PullRequestComment matches the given query.",
                ),
                (_, None) => error(StatusCode::BAD_REQUEST, "content.raw: required"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Resource not found"),
    }
}

fn bitbucket_cloud_comment(state: &State, c: &Comment) -> Value {
    json!({
        "id": c.id, "type": "pullrequest_comment",
        "content": {"type": "rendered", "raw": c.body, "markup": "markdown", "html": format!("<p>{}</p>", c.body)},
        "user": {"display_name": c.author, "type": "user", "uuid": "{d301aafa-d676-4ee0-88be-962be7417567}", "nickname": c.author},
        "created_on": TIMESTAMP, "updated_on": TIMESTAMP, "deleted": false, "pending": false,
        "pullrequest": {"type": "pullrequest", "id": c.pr, "title": "Add feature"},
        "links": {"self": {"href": format!("{}/bitbucket/2.0/repositories/octo-team/shop/pullrequests/{}/comments/{}", state.base, c.pr, c.id)}},
    })
}

/// Bitbucket Data Center: build-status 1.0, PR comments with versions, activities paged by
/// `isLastPage`/`nextPageStart`.
fn bitbucket_server(state: &State, req: &Request) -> HttpResponse {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let error = |status: StatusCode, message: &str, exception: &str| {
        HttpResponse::build(status).json(
            json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}),
        )
    };
    match (req.method.as_str(), &rest[..]) {
        ("POST", ["rest", "build-status", "1.0", "commits", sha]) => {
            let word = str_of(&req.body, "state").unwrap_or_default();
            let (Some(key), Some(url)) = (str_of(&req.body, "key"), str_of(&req.body, "url"))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "key and url are required",
                    "com.atlassian.bitbucket.validation.ArgumentValidationException",
                );
            };
            if !["INPROGRESS", "SUCCESSFUL", "FAILED"].contains(&word) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "state is invalid",
                    "com.atlassian.bitbucket.validation.ArgumentValidationException",
                );
            }
            let description = str_of(&req.body, "description").unwrap_or_default();
            record_status(state, req, sha, word, key.into(), description, Some(url));
            HttpResponse::NoContent().finish()
        }
        (
            "GET",
            [
                "rest",
                "api",
                "1.0",
                "projects",
                _,
                "repos",
                _,
                "pull-requests",
                id,
                "activities",
            ],
        ) => {
            let Ok(pr) = id.parse::<u64>() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Pull request does not exist.",
                    "com.atlassian.bitbucket.pull.NoSuchPullRequestException",
                );
            };
            // Newest first, as Bitbucket lists activities; the PR's opening is the oldest.
            let mut activities: Vec<Value> = state
                .lock()
                .on_pr("bitbucket-server", pr)
                .iter()
                .rev()
                .map(|c| json!({
                    "id": 10_000 + c.id, "createdDate": EPOCH_MS, "action": "COMMENTED", "commentAction": "ADDED",
                    "user": {"name": c.author, "slug": c.author, "type": "NORMAL"},
                    "comment": bitbucket_server_comment(c),
                }))
                .collect();
            activities.push(json!({
                "id": 1, "createdDate": EPOCH_MS, "action": "OPENED",
                "user": {"name": "alice", "slug": "alice", "type": "NORMAL"},
            }));
            let start: usize = req
                .query
                .get("start")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let limit: usize = req
                .query
                .get("limit")
                .and_then(|s| s.parse().ok())
                .unwrap_or(25)
                .clamp(1, 1000);
            let values: Vec<Value> = activities.iter().skip(start).take(limit).cloned().collect();
            let last = start + values.len() >= activities.len();
            let mut answer = json!({"size": values.len(), "limit": limit, "start": start, "isLastPage": last, "values": values});
            if !last {
                answer["nextPageStart"] = (start + limit).into();
            }
            HttpResponse::Ok().json(answer)
        }
        (
            "POST",
            [
                "rest",
                "api",
                "1.0",
                "projects",
                _,
                "repos",
                _,
                "pull-requests",
                id,
                "comments",
            ],
        ) => {
            let (Ok(pr), Some(text)) = (id.parse(), str_of(&req.body, "text")) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "text is required",
                    "com.atlassian.bitbucket.validation.ArgumentValidationException",
                );
            };
            let c = state
                .lock()
                .add_comment("bitbucket-server", pr, BOT_USER, text);
            HttpResponse::Created().json(bitbucket_server_comment(&c))
        }
        (
            method @ ("GET" | "PUT"),
            [
                "rest",
                "api",
                "1.0",
                "projects",
                _,
                "repos",
                _,
                "pull-requests",
                pr,
                "comments",
                id,
            ],
        ) => {
            let mut inner = state.lock();
            let found = match (pr.parse().ok(), id.parse().ok()) {
                (Some(pr), Some(id)) => inner.find("bitbucket-server", Some(pr), id, None),
                _ => None,
            };
            let Some(c) = found else {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("Comment {id} does not exist."),
                    "com.atlassian.bitbucket.comment.NoSuchCommentException",
                );
            };
            if method == "GET" {
                return HttpResponse::Ok().json(bitbucket_server_comment(c));
            }
            if req.body["version"].as_u64() != Some(c.version) {
                return error(
                    StatusCode::CONFLICT,
                    "You are attempting to modify a comment based on out-of-date information.",
                    "com.atlassian.bitbucket.comment.CommentOutOfDateException",
                );
            }
            let Some(text) = str_of(&req.body, "text") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "text is required",
                    "com.atlassian.bitbucket.validation.ArgumentValidationException",
                );
            };
            c.body = text.into();
            c.version += 1;
            c.edits += 1;
            HttpResponse::Ok().json(bitbucket_server_comment(c))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "Not found",
            "com.atlassian.bitbucket.NoSuchResourceException",
        ),
    }
}

fn bitbucket_server_comment(c: &Comment) -> Value {
    json!({
        "properties": {"repositoryId": 84}, "id": c.id, "version": c.version, "text": c.body,
        "author": {"name": c.author, "emailAddress": format!("{}@example.com", c.author), "id": 101, "displayName": c.author, "active": true, "slug": c.author, "type": "NORMAL"},
        "createdDate": EPOCH_MS, "updatedDate": EPOCH_MS, "comments": [], "tasks": [],
        "severity": "NORMAL", "state": "OPEN",
        "permittedOperations": {"editable": true, "transitionable": true, "deletable": true},
    })
}

/// Azure DevOps: statuses with a genre/name context, PR threads (comments numbered per thread).
fn azure(state: &State, req: &Request) -> HttpResponse {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let error = |status: StatusCode, message: &str| {
        HttpResponse::build(status).json(json!({"$id": "1", "innerException": null, "message": message, "typeName": "Microsoft.TeamFoundation.Git.Server.GitPullRequestNotFoundException", "typeKey": "GitPullRequestNotFoundException", "errorCode": 0, "eventId": 3000}))
    };
    if req.query.get("api-version").map(String::as_str) != Some("7.1") {
        return error(
            StatusCode::BAD_REQUEST,
            "VS800075: The project name is required in the request URL or an api-version is missing.",
        );
    }
    match (req.method.as_str(), &rest[..]) {
        (
            "POST",
            [
                _,
                "_apis",
                "git",
                "repositories",
                _,
                "commits",
                sha,
                "statuses",
            ],
        ) => {
            let word = str_of(&req.body, "state").unwrap_or_default();
            if ![
                "notSet",
                "pending",
                "succeeded",
                "failed",
                "error",
                "notApplicable",
            ]
            .contains(&word)
            {
                return error(StatusCode::BAD_REQUEST, "The state is not valid.");
            }
            let context = format!(
                "{}/{}",
                req.body["context"]["genre"].as_str().unwrap_or_default(),
                req.body["context"]["name"].as_str().unwrap_or_default()
            );
            let description = str_of(&req.body, "description").unwrap_or_default();
            record_status(
                state,
                req,
                sha,
                word,
                context,
                description,
                str_of(&req.body, "targetUrl"),
            );
            HttpResponse::Created().json(json!({
                "id": 1, "state": word, "description": description, "context": req.body["context"],
                "targetUrl": req.body["targetUrl"], "creationDate": TIMESTAMP, "updatedDate": TIMESTAMP,
                "createdBy": {"displayName": "Capstan", "id": "8b3f0a4e-6e7a-4a45-9c53-3a1bd0f3d1a2", "uniqueName": "capstan@example.com"},
            }))
        }
        (
            "GET",
            [
                _,
                "_apis",
                "git",
                "repositories",
                _,
                "pullRequests",
                id,
                "threads",
            ],
        ) => {
            let Ok(pr) = id.parse() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "TF401180: The requested pull request was not found.",
                );
            };
            let mut threads = vec![json!({
                "id": 1, "publishedDate": TIMESTAMP, "lastUpdatedDate": TIMESTAMP, "status": null, "isDeleted": false,
                "comments": [{"id": 1, "parentCommentId": 0, "content": "Alice updated the pull request status to Active", "commentType": "system", "author": {"displayName": "Alice"}}],
                "properties": {"CodeReviewThreadType": {"$type": "System.String", "$value": "VoteUpdate"}},
            })];
            threads.extend(
                state
                    .lock()
                    .on_pr("azure-devops", pr)
                    .iter()
                    .map(azure_thread),
            );
            HttpResponse::Ok().json(json!({"value": threads, "count": threads.len()}))
        }
        (
            "POST",
            [
                _,
                "_apis",
                "git",
                "repositories",
                _,
                "pullRequests",
                id,
                "threads",
            ],
        ) => {
            let (Ok(pr), Some(content)) = (id.parse(), req.body["comments"][0]["content"].as_str())
            else {
                return error(StatusCode::BAD_REQUEST, "A thread needs a comment.");
            };
            if req.body["comments"][0]["parentCommentId"] != 0 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "The first comment of a thread has no parent.",
                );
            }
            let c = state
                .lock()
                .add_comment("azure-devops", pr, BOT_USER, content);
            HttpResponse::Ok().json(azure_thread(&c))
        }
        (
            "PATCH",
            [
                _,
                "_apis",
                "git",
                "repositories",
                _,
                "pullRequests",
                pr,
                "threads",
                thread,
                "comments",
                id,
            ],
        ) => {
            let mut inner = state.lock();
            let found = match (pr.parse().ok(), thread.parse().ok(), id.parse().ok()) {
                (Some(pr), Some(thread), Some(id)) => {
                    inner.find("azure-devops", Some(pr), id, Some(thread))
                }
                _ => None,
            };
            match (found, str_of(&req.body, "content")) {
                (Some(c), Some(content)) => {
                    c.body = content.into();
                    c.edits += 1;
                    HttpResponse::Ok().json(azure_comment(c))
                }
                (None, _) => error(
                    StatusCode::NOT_FOUND,
                    "TF401180: The requested pull request comment was not found.",
                ),
                (_, None) => error(StatusCode::BAD_REQUEST, "content is required"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "The resource cannot be found."),
    }
}

fn azure_comment(c: &Comment) -> Value {
    json!({
        "id": c.id, "parentCommentId": 0, "content": c.body, "commentType": "text",
        "author": {"displayName": c.author, "id": "8b3f0a4e-6e7a-4a45-9c53-3a1bd0f3d1a2", "uniqueName": format!("{}@example.com", c.author)},
        "publishedDate": TIMESTAMP, "lastUpdatedDate": TIMESTAMP, "lastContentUpdatedDate": TIMESTAMP,
        "usersLiked": [],
    })
}

fn azure_thread(c: &Comment) -> Value {
    json!({
        "id": c.thread, "publishedDate": TIMESTAMP, "lastUpdatedDate": TIMESTAMP,
        "comments": [azure_comment(c)], "status": "active", "threadContext": null,
        "properties": {}, "identities": null, "isDeleted": false,
        "_links": {"self": {"href": format!("https://dev.azure.com/org/Shop/_apis/git/repositories/r/pullRequests/{}/threads/{}", c.pr, c.thread.unwrap_or_default())}},
    })
}
