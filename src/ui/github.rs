//! `/auth/github/login` and `/auth/github/callback`: the browser's side of GitHub login. The
//! login sends the browser to GitHub with a fresh `state`, also set in a short-lived cookie only
//! the callback path receives; the callback checks it, lets [`crate::auth::github`] ask GitHub who
//! the user is, and opens the session — or shows the login page saying why not.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use tracing::Instrument;

use super::login::{failed_login, open_session};
use crate::api::ApiState;
use crate::api::auth::TOKEN_ACCOUNT;
use crate::auth::github::{Callback, GithubError, RestError, STATE_TTL};

/// Where the login button points.
pub const LOGIN_PATH: &str = "/auth/github/login";
/// The OAuth App's callback path (its `redirect_url` ends with it).
pub const CALLBACK_PATH: &str = "/auth/github/callback";
/// The cookie holding the login's `state` until the callback.
const STATE_COOKIE: &str = "capstan_github_state";

/// Mounts the two routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(LOGIN_PATH, web::get().to(login))
        .route(CALLBACK_PATH, web::get().to(callback));
}

/// `GET /auth/github/login`: off to GitHub, with the state in a cookie.
pub async fn login(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(github) = &state.auth.github else {
        return HttpResponse::NotFound().body("GitHub login is not configured");
    };
    let (oauth_state, url) = github.begin();
    let mut cookie = state_cookie(&req, oauth_state);
    cookie.set_max_age(CookieAge::seconds(STATE_TTL.as_secs() as i64));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

/// `GET /auth/github/callback?code&state`: a session, or the login page with the reason.
pub async fn callback(
    req: HttpRequest,
    query: web::Query<Callback>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    // The request span records the URL with its one-use code; this handler's events hang off a
    // span of their own so no log line carries it.
    let span = tracing::info_span!(parent: None, "github_login");
    let mut response = finish(&req, &query, &state).instrument(span).await;
    // One state, one try: the browser forgets it whatever the outcome.
    let mut gone = state_cookie(&req, String::new());
    gone.set_max_age(CookieAge::ZERO);
    if let Err(e) = response.add_cookie(&gone) {
        tracing::warn!(error = %e, "could not clear the GitHub state cookie");
    }
    response
}

async fn finish(req: &HttpRequest, query: &Callback, state: &ApiState) -> HttpResponse {
    let Some(github) = &state.auth.github else {
        return HttpResponse::NotFound().body("GitHub login is not configured");
    };
    let cookie = req.cookie(STATE_COOKIE);
    let is_local_account =
        |name: &str| name == TOKEN_ACCOUNT || state.auth.accounts.get(name).is_ok();
    let outcome = github
        .finish(cookie.as_ref().map(|c| c.value()), query, is_local_account)
        .await;
    match outcome {
        Ok(identity) => open_session(req, state, &identity, "/"),
        Err(e) => {
            tracing::info!(error = %e, "GitHub login refused");
            let (status, message) = explain(&e);
            failed_login(state, status, &message)
        }
    }
}

/// The status and the sentence a person is shown for a refused login.
fn explain(e: &GithubError) -> (StatusCode, String) {
    match e {
        GithubError::State(refused) => (
            StatusCode::BAD_REQUEST,
            format!("GitHub login failed: {refused}."),
        ),
        GithubError::Rest(refused @ RestError::Refused { .. }) => {
            (StatusCode::UNAUTHORIZED, format!("{refused}."))
        }
        GithubError::Rest(other) => (
            StatusCode::BAD_GATEWAY,
            format!("GitHub login failed: {other}. Try again later."),
        ),
        // The allowlist itself is not shown to whoever tries.
        GithubError::NotAllowed(refused) => (
            StatusCode::FORBIDDEN,
            format!(
                "You are signed in to GitHub as {}, who is not a member of an organisation or \
                 team allowed to use this Capstan.",
                refused.user
            ),
        ),
        GithubError::LocalName(user) => (
            StatusCode::FORBIDDEN,
            format!(
                "The GitHub user {user} has the name of a local Capstan account and cannot sign \
                 in with GitHub."
            ),
        ),
        GithubError::NoCode => (
            StatusCode::BAD_REQUEST,
            format!("GitHub login failed: {e}; start again."),
        ),
        GithubError::Config(_) | GithubError::Secret(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "GitHub login is misconfigured.".to_owned(),
        ),
    }
}

/// The state cookie: HttpOnly, sent only to the callback, and `SameSite=Lax` because the
/// callback is a navigation from GitHub's site, on which a strict cookie would not be sent.
fn state_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    Cookie::build(STATE_COOKIE, value)
        .path(CALLBACK_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(req.connection_info().scheme() == "https")
        .finish()
}
