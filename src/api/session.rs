//! Sessions: `POST /api/v1/session` trades a local account's or an LDAP user's password for a
//! session token (what `capstan login` keeps and the login page puts in a cookie), `DELETE` logs
//! it out everywhere, `GET /api/v1/session/userinfo` says who is signed in. The cookie holds the
//! signed session token itself (HttpOnly), never the API token; pages echo its CSRF token in
//! `X-CSRF-Token`.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::{Authenticated, session_claims};
use super::error::ApiError;
use crate::auth::ldap::LdapError;
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
/// local accounts, then the LDAP directory (when configured) for names that are not local
/// accounts. Failures of both count towards the backoff; a directory that cannot answer is a 503,
/// not a wrong password, and does not count.
pub async fn password_login(
    state: &ApiState,
    address: &str,
    username: &str,
    password: &str,
) -> Result<Identity, ApiError> {
    let username = username.trim();
    // Directories match names without regard to case, so `Alice` must not buy a fresh count.
    let backoff_key = username.to_lowercase();
    state
        .auth
        .backoff
        .check(&backoff_key, address)
        .map_err(|e| ApiError::TooManyRequests {
            message: e.to_string(),
            retry_after_secs: e.retry_after.as_secs().max(1),
        })?;
    let accounts = state.auth.accounts.clone();
    let (user, pass) = (username.to_owned(), password.to_owned());
    // Hashing is deliberately slow; keep it off the async workers.
    let local = web::block(move || accounts.login(&user, &pass))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let checked = match (local, &state.auth.ldap) {
        (Ok(identity), _) => Ok(identity),
        // A local account's name is never looked up in the directory: a directory entry named
        // `admin` would otherwise log in as the administrator the policies name.
        (Err(_), Some(directory)) if state.auth.accounts.get(username).is_err() => {
            ldap_login(state, directory, username, password).await
        }
        (Err(e), _) => Err(ApiError::Unauthorized(e.to_string())),
    };
    match checked {
        Ok(identity) => {
            state.auth.backoff.succeeded(&backoff_key);
            tracing::info!(user = %identity.user, source = identity.source.as_str(), "login");
            Ok(identity)
        }
        Err(ApiError::Unauthorized(message)) => {
            state.auth.backoff.failed(&backoff_key, address);
            tracing::info!(user = %username, %address, "login refused");
            Err(ApiError::Unauthorized(message))
        }
        Err(other) => Err(other),
    }
}

/// A login through the LDAP directory; its identity must not take a local account's name either.
async fn ldap_login(
    state: &ApiState,
    directory: &crate::auth::ldap::Directory,
    username: &str,
    password: &str,
) -> Result<Identity, ApiError> {
    match directory.login(username, password).await {
        Ok(identity) if state.auth.accounts.get(&identity.user).is_ok() => {
            tracing::warn!(
                user = %identity.user,
                "LDAP login refused: the directory names a local account"
            );
            Err(ApiError::Unauthorized(
                LdapError::BadCredentials.to_string(),
            ))
        }
        Ok(identity) => Ok(identity),
        Err(e @ LdapError::BadCredentials) => Err(ApiError::Unauthorized(e.to_string())),
        Err(e @ LdapError::Unavailable(_)) => {
            tracing::warn!(error = %e, user = %username, "LDAP login failed");
            Err(ApiError::Unavailable(
                "the LDAP directory is unavailable; try again later".into(),
            ))
        }
    }
}

/// `POST /api/v1/session`: a session token for a local account's or LDAP user's password.
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
        (status = 503, description = "The LDAP directory cannot answer", body = crate::api::error::ErrorBody),
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

/// A one-time login code from the browser (`capstan login --sso`) and the verifier of the
/// challenge the CLI sent with it.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ExchangeRequest {
    pub code: String,
    pub verifier: String,
}

/// `POST /api/v1/session/exchange`: a session token for a one-time code the browser handed the
/// CLI after any browser login (see `crate::ui::cli_login`).
#[utoipa::path(
    post,
    path = "/api/v1/session/exchange",
    tag = "session",
    request_body = ExchangeRequest,
    // No credential but the code itself.
    security(()),
    responses(
        (status = 200, description = "Signed in", body = SessionToken),
        (status = 401, description = "Invalid, expired, spent or another client's code", body = crate::api::error::ErrorBody),
    )
)]
pub async fn exchange(
    state: web::Data<ApiState>,
    body: web::Json<ExchangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = state
        .auth
        .handoff
        .check(&body.code, &body.verifier)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let first = state
        .auth
        .accounts
        .spend_once(&code.jti, code.exp)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !first {
        tracing::warn!(user = %code.identity.user, "a CLI login code was presented twice");
        return Err(ApiError::Unauthorized("login code already used".into()));
    }
    let (token, _) = state
        .auth
        .sessions
        .issue(&code.identity)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(user = %code.identity.user, source = code.identity.source.as_str(), "CLI login");
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
