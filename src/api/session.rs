//! Sessions: `POST /api/v1/session` trades a local account's password for a session token (what
//! `capstan login` keeps and the login page puts in a cookie), `DELETE` logs it out everywhere,
//! `GET /api/v1/session/userinfo` says who is signed in. The cookie holds the signed session
//! token itself (HttpOnly), never the API token; pages echo its CSRF token in `X-CSRF-Token`.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::{Authenticated, session_claims};
use super::error::ApiError;
use crate::auth::{Claims, Identity};

/// The cookie that carries the session token.
pub const COOKIE: &str = "capstan_session";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A browser session as pages see it.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who is signed in.
    pub identity: Identity,
    /// The token pages echo in [`CSRF_HEADER`].
    pub csrf: String,
    /// The session token's claims.
    pub claims: Claims,
}

impl Session {
    /// The session as the REST handlers see a request.
    pub fn auth(&self) -> Authenticated {
        Authenticated {
            identity: self.identity.clone(),
            session: Some(self.claims.clone()),
            token_id: None,
        }
    }
}

/// The live session the request's cookie carries, if any.
pub fn browser_session(req: &HttpRequest, state: &ApiState) -> Option<Session> {
    let cookie = req.cookie(COOKIE)?;
    let claims = session_claims(state, cookie.value()).ok()?;
    Some(Session {
        identity: claims.identity(),
        csrf: state.auth.sessions.csrf(&claims),
        claims,
    })
}

/// The cookie that opens a browser session. `SameSite=Lax`, not `Strict`: a single sign-on
/// login comes back from the identity provider's site, and a strict cookie would not be sent
/// on that navigation; writes stay safe through the CSRF token.
pub fn session_cookie(req: &HttpRequest, token: String) -> Cookie<'static> {
    Cookie::build(COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(req.connection_info().scheme() == "https")
        .finish()
}

/// The cookie that ends a browser session in the browser.
pub fn cleared_cookie() -> Cookie<'static> {
    let mut gone = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    gone.set_max_age(CookieAge::ZERO);
    gone
}

/// A password login.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A session token, shown once.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionToken {
    pub token: String,
}

/// Who is signed in.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub logged_in: bool,
    pub username: String,
    pub groups: Vec<String>,
    /// How they proved it: token, local, apikey, oidc, github, ldap, saml.
    pub iss: String,
}

/// The address failed logins are counted against: the TCP peer, which a client cannot forge
/// (a forwarded-for header could be).
pub fn source_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The password check the API and the login page share: failed-login backoff first, then the
/// local accounts.
pub async fn password_login(
    state: &ApiState,
    address: &str,
    username: &str,
    password: &str,
) -> Result<Identity, ApiError> {
    let username = username.trim();
    state
        .auth
        .backoff
        .check(username, address)
        .map_err(|e| ApiError::TooManyRequests {
            message: e.to_string(),
            retry_after_secs: e.retry_after.as_secs().max(1),
        })?;
    let accounts = state.auth.accounts.clone();
    let (user, pass) = (username.to_owned(), password.to_owned());
    // Hashing is deliberately slow; keep it off the async workers.
    let checked = web::block(move || accounts.login(&user, &pass))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match checked {
        Ok(identity) => {
            state.auth.backoff.succeeded(username);
            tracing::info!(user = %identity.user, source = identity.source.as_str(), "login");
            Ok(identity)
        }
        Err(e) => {
            state.auth.backoff.failed(username, address);
            tracing::info!(user = %username, %address, "login refused");
            Err(ApiError::Unauthorized(e.to_string()))
        }
    }
}

/// `POST /api/v1/session`: a session token for a local account's password.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "session",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in", body = SessionToken),
        (status = 401, description = "Wrong user or password", body = crate::api::error::ErrorBody),
        (status = 429, description = "Too many failed logins", body = crate::api::error::ErrorBody),
    )
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let identity = password_login(
        &state,
        &source_address(&req),
        &body.username,
        &body.password,
    )
    .await?;
    let (token, _) = state
        .auth
        .sessions
        .issue(&identity)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(SessionToken { token }))
}

/// `DELETE /api/v1/session`: logs the session out, on every replica.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Logged out"),
        (status = 401, description = "No session", body = crate::api::error::ErrorBody),
    )
)]
pub async fn delete(
    auth: Authenticated,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(claims) = &auth.session {
        state
            .auth
            .accounts
            .revoke_session(&claims.jti, claims.exp)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        tracing::info!(user = %claims.sub, "logout");
    }
    Ok(HttpResponse::Ok()
        .cookie(cleared_cookie())
        .json(serde_json::json!({})))
}

/// `GET /api/v1/session/userinfo`: who the request acts for.
#[utoipa::path(
    get,
    path = "/api/v1/session/userinfo",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = UserInfo),
        (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody),
    )
)]
pub async fn userinfo(auth: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(UserInfo {
        logged_in: true,
        username: auth.identity.user.clone(),
        groups: auth.identity.groups.clone(),
        iss: auth.identity.source.as_str().to_owned(),
    })
}
