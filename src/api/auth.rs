//! Authentication for the REST API, as an extractor: a handler that takes [`Authenticated`] runs
//! only for requests carrying the configured token as a bearer token, or the cookie of a live
//! browser session (see [`super::session`]) with, on state-changing methods, its CSRF token.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};

use super::ApiState;
use super::error::ApiError;
use super::session::{COOKIE, CSRF_HEADER};
use crate::secret;

/// The account the API's static token stands for (Argo CD's built-in administrator); recorded
/// as the user of the syncs and refreshes it asks for.
pub const TOKEN_ACCOUNT: &str = "admin";

/// Proof that the request carried the API token, or a session opened with it, and whose it is.
pub struct Authenticated {
    /// The account the token or session belongs to.
    pub account: String,
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = req
        .app_data::<web::Data<ApiState>>()
        .ok_or_else(|| ApiError::Internal("no API state".into()))?;
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(token) = presented {
        return if secret::ct_eq(&state.api_token, token) {
            Ok(Authenticated {
                account: TOKEN_ACCOUNT.to_owned(),
            })
        } else {
            Err(ApiError::Unauthorized("invalid bearer token".into()))
        };
    }
    let Some(cookie) = req.cookie(COOKIE) else {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    };
    let session = state
        .sessions
        .get(cookie.value())
        .ok_or_else(|| ApiError::Unauthorized("session expired or logged out".into()))?;
    // A cookie rides along on requests other sites make the browser send; only our own pages
    // can read the CSRF token, so a write must echo it.
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let echoed = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let expected = secret::SecretString::from(session.csrf);
        if echoed.is_empty() || !secret::ct_eq(&expected, echoed) {
            return Err(ApiError::Forbidden(
                "missing or wrong X-CSRF-Token for a cookie session".into(),
            ));
        }
    }
    Ok(Authenticated {
        account: session.identity,
    })
}
