//! Bearer-token authentication for the REST API.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode};

use super::{ApiState, error};

/// Checks `Authorization: Bearer <token>` in constant time; the error is the 401 to return.
pub fn require_token(req: &HttpRequest, state: &ApiState) -> Result<(), HttpResponse> {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if state.api_token.ct_eq(token) => Ok(()),
        Some(_) => Err(unauthorized("invalid bearer token")),
        None => Err(unauthorized("missing bearer token")),
    }
}

fn unauthorized(message: &str) -> HttpResponse {
    let mut resp = error(StatusCode::UNAUTHORIZED, message);
    resp.headers_mut().insert(
        actix_web::http::header::WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Bearer"),
    );
    resp
}
