//! Authentication for the REST API, as an extractor: a handler that takes [`Authenticated`] runs
//! only for a request that proves an identity — the static API token, a local account's API
//! token, or a session token (from `POST /api/v1/session` or single sign-on) as a bearer token
//! or in the web UI's cookie with, on state-changing methods, its CSRF token. What the identity
//! may then do is checked per route with [`Authenticated::check`].

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;

use super::ApiState;
use super::error::ApiError;
use super::session::{COOKIE, CSRF_HEADER};
use crate::auth::accounts::TOKEN_PREFIX;
use crate::auth::{Claims, Identity, Source};
use crate::secret;

/// The account the API's static token stands for (Argo CD's built-in administrator); recorded
/// as the user of the syncs and refreshes it asks for.
pub const TOKEN_ACCOUNT: &str = "admin";

/// A request whose identity is proved.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// Who the request acts for.
    pub identity: Identity,
    /// The session token's claims, when it carried one (logout revokes that session).
    pub session: Option<Claims>,
    /// The id of the local account's API token, when it carried one.
    pub token_id: Option<String>,
}

impl Authenticated {
    /// The user name policies and history entries name.
    pub fn user(&self) -> &str {
        &self.identity.user
    }

    /// Whether the identity may do `action` on `resource` `object` (RBAC).
    pub fn can(&self, state: &ApiState, resource: &str, action: &str, object: &str) -> bool {
        state
            .rbac
            .current()
            .allows(&self.identity.subject(), resource, action, object)
    }

    /// [`Authenticated::can`], as a 403 naming what was refused.
    pub fn check(
        &self,
        state: &ApiState,
        resource: &str,
        action: &str,
        object: &str,
    ) -> Result<(), ApiError> {
        state
            .rbac
            .check(&self.identity.subject(), resource, action, object)
            .map_err(|denied| {
                tracing::info!(%denied, "request refused by RBAC");
                ApiError::Forbidden(denied.to_string())
            })
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// The bearer token of the request, if it carries one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

async fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = req
        .app_data::<web::Data<ApiState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("no API state".into()))?;
    if let Some(token) = bearer(req) {
        if secret::ct_eq(&state.api_token, token) {
            return Ok(Authenticated {
                identity: Identity::new(TOKEN_ACCOUNT, Source::Token),
                session: None,
                token_id: None,
            });
        }
        if token.starts_with(TOKEN_PREFIX) {
            let (identity, id) =
                state
                    .auth
                    .accounts
                    .verify_token(token)
                    .await
                    .ok_or_else(|| {
                        ApiError::Unauthorized("invalid, expired or revoked API token".into())
                    })?;
            return Ok(Authenticated {
                identity,
                session: None,
                token_id: Some(id),
            });
        }
        let claims = session_claims(&state, token)
            .map_err(|_| ApiError::Unauthorized("invalid bearer token".into()))?;
        return Ok(Authenticated {
            identity: claims.identity(),
            session: Some(claims),
            token_id: None,
        });
    }
    let Some(cookie) = req.cookie(COOKIE) else {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    };
    let claims = session_claims(&state, cookie.value())?;
    // A cookie rides along on requests other sites make the browser send; only our own pages
    // can read the CSRF token, so a write must echo it.
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let echoed = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let expected = secret::SecretString::from(state.auth.sessions.csrf(&claims));
        if echoed.is_empty() || !secret::ct_eq(&expected, echoed) {
            return Err(ApiError::Forbidden(
                "missing or wrong X-CSRF-Token for a cookie session".into(),
            ));
        }
    }
    Ok(Authenticated {
        identity: claims.identity(),
        session: Some(claims),
        token_id: None,
    })
}

/// The claims of a live session token: signed by us, unexpired, not logged out.
pub fn session_claims(state: &ApiState, token: &str) -> Result<Claims, ApiError> {
    let claims = state
        .auth
        .sessions
        .verify(token)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if state.auth.accounts.is_revoked(&claims.jti) {
        return Err(ApiError::Unauthorized(
            "session expired or logged out".into(),
        ));
    }
    // A project role's token lives as long as its role lists it.
    if claims.src == Source::Project
        && !super::project_tokens::still_listed(state, &claims.sub, &claims.jti)
    {
        return Err(ApiError::Unauthorized(
            "project role token revoked or its role removed".into(),
        ));
    }
    // A password change ends the sessions opened with the old password, as in Argo CD.
    if claims.src == Source::Local
        && state
            .auth
            .accounts
            .password_changed_at_ms(&claims.sub)
            .is_some_and(|changed| changed > claims.auth_time_ms)
    {
        return Err(ApiError::Unauthorized(
            "the password changed since this session began; log in again".into(),
        ));
    }
    Ok(claims)
}
