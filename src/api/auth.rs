//! Bearer-token authentication for the REST API, as an extractor: a handler that takes
//! [`Authenticated`] runs only for requests carrying the configured token.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use super::ApiState;

/// Proof that the request carried the API token.
pub struct Authenticated;

/// Why a request was not authenticated (401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid bearer token")]
    Invalid,
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = super::error(StatusCode::UNAUTHORIZED, self);
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        resp
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let state = req.app_data::<web::Data<ApiState>>();
        ready(match (presented, state) {
            (None, _) => Err(AuthError::Missing),
            // Constant-time: see SecretString::ct_eq.
            (Some(token), Some(state)) if state.api_token.ct_eq(token) => Ok(Authenticated),
            (Some(_), _) => Err(AuthError::Invalid),
        })
    }
}
