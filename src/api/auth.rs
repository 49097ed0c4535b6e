//! Bearer-token authentication for the REST API, as an extractor: a handler that takes
//! [`Authenticated`] runs only for requests carrying the configured token.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::ApiState;
use super::error::ApiError;
use crate::secret;

/// The account the API's static token stands for (Argo CD's built-in administrator); recorded
/// as the user of the syncs and refreshes it asks for.
pub const TOKEN_ACCOUNT: &str = "admin";

/// Proof that the request carried the API token, and whose it is.
pub struct Authenticated {
    /// The account the token belongs to.
    pub account: String,
}

impl FromRequest for Authenticated {
    type Error = ApiError;
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
            (None, _) => Err(ApiError::Unauthorized("missing bearer token".into())),
            (Some(token), Some(state)) if secret::ct_eq(&state.api_token, token) => {
                Ok(Authenticated {
                    account: TOKEN_ACCOUNT.to_owned(),
                })
            }
            (Some(_), _) => Err(ApiError::Unauthorized("invalid bearer token".into())),
        })
    }
}
