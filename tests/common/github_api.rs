//! A local GitHub for the login tests, implementing the documented endpoints a GitHub OAuth App
//! uses: the web application flow (`GET /login/oauth/authorize`, `POST /login/oauth/access_token`)
//! and the REST API's `GET /user`, `/user/orgs` and `/user/teams`, laid out as GitHub Enterprise
//! Server lays them out (`/api/v3/…`) and served over HTTPS with a CA of its own. It checks what
//! a client sends as GitHub does — the registered client id, secret and callback URL, one-use
//! codes, `Accept: application/json` on the token request, a User-Agent, the bearer token — and
//! answers errors in GitHub's shapes (the token endpoint's error JSON with status 200, 401 with a
//! `message`), with `Link` pagination (`per_page` up to 100, 30 by default).
//! A browser is "signed in to GitHub" after `GET /session?login=NAME` (GitHub's own login form
//! is not what is being tested).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::cookie::Cookie;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::header, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// The cookie the fake GitHub keeps its own sign-in in.
const SIGNED_IN: &str = "gh_user";
const BAD_CODE: &str = "The code passed is incorrect or expired.";

/// A GitHub account: its organisations and teams (`(org, team-slug)`).
#[derive(Clone, Debug, Default)]
pub struct GithubUser {
    pub login: String,
    pub orgs: Vec<String>,
    pub teams: Vec<(String, String)>,
    /// Clicks "Cancel" on the authorization page.
    pub declines: bool,
    /// Suspended: the REST API answers 403 to their token.
    pub suspended: bool,
}

impl GithubUser {
    /// A user in these organisations and teams.
    pub fn new(login: &str, orgs: &[&str], teams: &[(&str, &str)]) -> GithubUser {
        GithubUser {
            login: login.into(),
            orgs: orgs.iter().map(|o| o.to_string()).collect(),
            teams: teams
                .iter()
                .map(|(o, t)| (o.to_string(), t.to_string()))
                .collect(),
            declines: false,
            suspended: false,
        }
    }
}

/// A running fake GitHub; stops when dropped.
pub struct GithubApi {
    /// `https://localhost:PORT`: where people sign in (`github_url`).
    pub url: String,
    /// `https://localhost:PORT/api/v3` (`api_url`).
    pub api_url: String,
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: String,
    pub client_id: String,
    pub client_secret: String,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

struct Shared {
    client_id: String,
    client_secret: String,
    /// The OAuth App's registered callback URL.
    callback: String,
    base: String,
    users: HashMap<String, GithubUser>,
    /// Unexchanged codes → (user, redirect_uri).
    codes: Mutex<HashMap<String, (String, String)>>,
    /// Access tokens → user.
    tokens: Mutex<HashMap<String, String>>,
    /// Successful code exchanges.
    exchanges: AtomicUsize,
    /// Every code and access token handed out.
    issued: Mutex<Vec<String>>,
}

impl GithubApi {
    /// Serves `users` on a random port of localhost for an OAuth App whose callback is
    /// `callback`. Must be called inside a tokio runtime.
    pub fn start(callback: &str, users: Vec<GithubUser>) -> GithubApi {
        capstan::install_crypto_provider();
        let tls = capstan::sandbox::tls::generate().expect("certificate for the fake GitHub");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake GitHub");
        let port = listener.local_addr().expect("address").port();
        let url = format!("https://localhost:{port}");
        let shared = Arc::new(Shared {
            client_id: "Iv1.capstan-test".into(),
            client_secret: format!("secret-{}", uuid::Uuid::new_v4().simple()),
            callback: callback.into(),
            base: url.clone(),
            users: users.into_iter().map(|u| (u.login.clone(), u)).collect(),
            codes: Mutex::default(),
            tokens: Mutex::default(),
            exchanges: AtomicUsize::new(0),
            issued: Mutex::default(),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/session", web::get().to(sign_in))
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/api/v3/user", web::get().to(user))
                .route("/api/v3/user/orgs", web::get().to(orgs))
                .route("/api/v3/user/teams", web::get().to(teams))
        })
        .workers(1)
        .disable_signals()
        .listen_rustls_0_23(listener, tls.server)
        .expect("serve the fake GitHub over TLS")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        GithubApi {
            api_url: format!("{url}/api/v3"),
            url,
            ca_pem: tls.ca_pem,
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            shared,
            handle,
        }
    }

    /// Codes traded for a token so far.
    pub fn exchanges(&self) -> usize {
        self.shared.exchanges.load(Ordering::SeqCst)
    }

    /// The client secret and every code and access token handed out: what must never be logged.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self.shared.issued.lock().expect("issued").clone();
        secrets.push(self.client_secret.clone());
        secrets
    }

    /// Signs `client` (with a cookie store) in to GitHub as `login`.
    pub async fn sign_in(&self, client: &reqwest::Client, login: &str) {
        let resp = client
            .get(format!("{}/session?login={login}", self.url))
            .send()
            .await
            .expect("sign in to the fake GitHub");
        assert_eq!(resp.status(), 200, "GitHub sign-in as {login}");
    }
}

impl Drop for GithubApi {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(stop);
        }
    }
}

#[derive(Deserialize)]
struct SignIn {
    login: String,
}

async fn sign_in(query: web::Query<SignIn>, gh: web::Data<Shared>) -> HttpResponse {
    if !gh.users.contains_key(&query.login) {
        return HttpResponse::Unauthorized().body("Incorrect username or password.");
    }
    HttpResponse::Ok()
        .cookie(
            Cookie::build(SIGNED_IN, query.login.clone())
                .path("/")
                .http_only(true)
                .finish(),
        )
        .body("signed in")
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
}

/// The authorization page, answered as if the user clicked "Authorize" (or "Cancel").
async fn authorize(
    req: HttpRequest,
    query: web::Query<AuthorizeQuery>,
    gh: web::Data<Shared>,
) -> HttpResponse {
    if query.client_id != gh.client_id {
        return HttpResponse::NotFound().body("Not Found");
    }
    let redirect = query
        .redirect_uri
        .clone()
        .unwrap_or_else(|| gh.callback.clone());
    if redirect != gh.callback {
        // GitHub shows this page instead of redirecting anywhere.
        return HttpResponse::BadRequest()
            .body("The redirect_uri is not associated with this application.");
    }
    for wanted in ["read:org", "read:user"] {
        assert!(
            query.scope.split([' ', ',']).any(|s| s == wanted),
            "the client did not ask for {wanted}: {:?}",
            query.scope
        );
    }
    let Some(user) = req
        .cookie(SIGNED_IN)
        .and_then(|c| gh.users.get(c.value()).cloned())
    else {
        return HttpResponse::Unauthorized().body("Sign in to GitHub to continue.");
    };
    let mut back = reqwest::Url::parse(&redirect).expect("callback URL");
    if user.declines {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair(
                "error_description",
                "The user has denied your application access.",
            )
            .append_pair("error_uri", "https://docs.github.com/apps/troubleshooting-authorization-request-errors/#access-denied")
            .append_pair("state", &query.state);
    } else {
        let code = uuid::Uuid::new_v4().simple().to_string()[..20].to_owned();
        gh.codes
            .lock()
            .expect("codes")
            .insert(code.clone(), (user.login.clone(), redirect.clone()));
        gh.issued.lock().expect("issued").push(code.clone());
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &query.state);
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, back.as_str()))
        .finish()
}

#[derive(Deserialize)]
struct TokenRequest {
    client_id: String,
    client_secret: String,
    code: String,
    redirect_uri: Option<String>,
}

/// The token endpoint: JSON only when asked for, errors with status 200, codes used once.
async fn access_token(
    req: HttpRequest,
    form: web::Form<TokenRequest>,
    gh: web::Data<Shared>,
) -> HttpResponse {
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let answer = |body: Value| {
        if wants_json {
            HttpResponse::Ok().json(body)
        } else {
            // Without the Accept header GitHub answers form-encoded.
            let pairs: Vec<(String, String)> = body
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            HttpResponse::Ok()
                .content_type("application/x-www-form-urlencoded")
                .body(form_encoded(&pairs))
        }
    };
    let error = |code: &str, description: &str| {
        json!({ "error": code, "error_description": description,
                "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors" })
    };
    if form.client_id != gh.client_id || form.client_secret != gh.client_secret {
        return answer(error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        ));
    }
    let Some((login, redirect)) = gh.codes.lock().expect("codes").remove(&form.code) else {
        return answer(error("bad_verification_code", BAD_CODE));
    };
    if form.redirect_uri.as_ref().is_some_and(|r| *r != redirect) {
        return answer(error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        ));
    }
    let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
    gh.tokens
        .lock()
        .expect("tokens")
        .insert(token.clone(), login);
    gh.issued.lock().expect("issued").push(token.clone());
    gh.exchanges.fetch_add(1, Ordering::SeqCst);
    answer(
        json!({ "access_token": token, "token_type": "bearer", "scope": "read:org,read:user,user:email" }),
    )
}

fn form_encoded(pairs: &[(String, String)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("url");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// Why the REST API refuses a request, as GitHub answers it.
enum Refusal {
    /// No `User-Agent` header: 403.
    NoUserAgent,
    /// No or an unknown token: 401 with this message.
    Unauthenticated(&'static str),
    /// A suspended account: 403.
    Suspended,
}

impl Refusal {
    fn response(self) -> HttpResponse {
        match self {
            Refusal::NoUserAgent => HttpResponse::Forbidden().body(
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            ),
            Refusal::Suspended => HttpResponse::Forbidden().json(
                json!({ "message": "Sorry. Your account was suspended.", "documentation_url": "https://docs.github.com/rest" }),
            ),
            Refusal::Unauthenticated(message) => HttpResponse::Unauthorized().json(
                json!({ "message": message, "documentation_url": "https://docs.github.com/rest", "status": "401" }),
            ),
        }
    }
}

/// The user the request's token belongs to.
fn caller(req: &HttpRequest, gh: &Shared) -> Result<GithubUser, Refusal> {
    if req.headers().get(header::USER_AGENT).is_none() {
        return Err(Refusal::NoUserAgent);
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .ok_or(Refusal::Unauthenticated("Requires authentication"))?;
    let login = gh.tokens.lock().expect("tokens").get(token).cloned();
    let user = login
        .and_then(|l| gh.users.get(&l).cloned())
        .ok_or(Refusal::Unauthenticated("Bad credentials"))?;
    if user.suspended {
        return Err(Refusal::Suspended);
    }
    Ok(user)
}

async fn user(req: HttpRequest, gh: web::Data<Shared>) -> HttpResponse {
    match caller(&req, &gh) {
        Ok(u) => HttpResponse::Ok().json(json!({ "login": u.login, "id": 1000, "type": "User",
            "url": format!("{}/api/v3/users/{}", gh.base, u.login) })),
        Err(refused) => refused.response(),
    }
}

#[derive(Deserialize)]
struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

async fn orgs(req: HttpRequest, query: web::Query<Page>, gh: web::Data<Shared>) -> HttpResponse {
    match caller(&req, &gh) {
        Ok(u) => {
            let all: Vec<Value> = u
                .orgs
                .iter()
                .enumerate()
                .map(|(i, o)| json!({ "login": o, "id": i + 1, "description": "" }))
                .collect();
            paginated(&gh, "/api/v3/user/orgs", &query, all)
        }
        Err(refused) => refused.response(),
    }
}

async fn teams(req: HttpRequest, query: web::Query<Page>, gh: web::Data<Shared>) -> HttpResponse {
    match caller(&req, &gh) {
        Ok(u) => {
            let all: Vec<Value> = u
                .teams
                .iter()
                .enumerate()
                .map(|(i, (org, slug))| {
                    json!({ "id": i + 1, "slug": slug, "name": slug.to_uppercase(),
                            "organization": { "login": org, "id": 1 } })
                })
                .collect();
            paginated(&gh, "/api/v3/user/teams", &query, all)
        }
        Err(refused) => refused.response(),
    }
}

/// One page of `all`, with GitHub's `Link` header (absolute URLs; next, last, first, prev).
fn paginated(gh: &Shared, path: &str, query: &Page, all: Vec<Value>) -> HttpResponse {
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link = |p: usize, rel: &str| {
        format!(
            "<{}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"",
            gh.base
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let mut resp = HttpResponse::Ok();
    if !links.is_empty() {
        resp.insert_header((header::LINK, links.join(", ")));
    }
    resp.json(items)
}
