//! The one way an error becomes an HTTP answer:
//! `{"error": "<message>", "code": <status>, "reason": "<machine-readable reason>"}`.
//! Handlers, extractors and the route fallback all return [`ApiError`], so clients (the CLI reads
//! `error`) see the same shape whatever failed; the OpenAPI document names it `Error`.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::domain::names::NameError;
use crate::queue::QueueError;
use crate::store::StoreError;
use crate::webhook::WebhookError;

/// Why a request failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON, bad query, bad path).
    #[error("{0}")]
    BadRequest(String),
    /// A name in the path or the document is not a valid Kubernetes name.
    #[error(transparent)]
    BadName(#[from] NameError),
    /// The document is well-formed but not an acceptable object.
    #[error("{0}")]
    Unprocessable(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Not permitted: tenancy or project rules refuse it.
    #[error("{0}")]
    Forbidden(String),
    /// It conflicts with the current state (e.g. a project still in use).
    #[error("{0}")]
    Conflict(String),
    /// Missing or wrong bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failed logins: try again after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// A body encoding or content type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the endpoint allows.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client did not send its body in time.
    #[error("{0}")]
    Timeout(String),
    /// A webhook that was refused; the status is the one the Git host expects.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The cluster refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing was queued: the client should retry.
    #[error("not queued, retry later: {0}")]
    Queue(#[from] QueueError),
    /// A service the request needs (an LDAP directory) cannot answer now: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// A bug on our side; the message names what failed, never a secret.
    #[error("{0}")]
    Internal(String),
}

/// The body of every error answer (schema `Error` of the OpenAPI document).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What failed, for people.
    pub error: String,
    /// The HTTP status code, repeated so that a logged body keeps it.
    pub code: u16,
    /// Why, for programs: stable across releases, unlike `error`.
    #[schema(example = "not_found")]
    pub reason: String,
}

/// Every `reason` an error can carry, for the OpenAPI document's enum.
pub const REASONS: &[&str] = &[
    "bad_request",
    "invalid_name",
    "unprocessable",
    "not_found",
    "forbidden",
    "conflict",
    "unauthorized",
    "unsupported_media_type",
    "payload_too_large",
    "timeout",
    "too_many_requests",
    "webhook_unauthorized",
    "webhook_unknown_provider",
    "webhook_unsupported_content_type",
    "webhook_bad_payload",
    "webhook_bad_secret",
    "unavailable",
    "bad_gateway",
    "internal",
];

impl ApiError {
    /// The stable machine-readable reason clients may branch on (one of [`REASONS`]).
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::BadName(_) => "invalid_name",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::NotFound(_) => "not_found",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Timeout(_) => "timeout",
            ApiError::Webhook(e) => match e {
                WebhookError::Unauthorized(_) => "webhook_unauthorized",
                WebhookError::UnknownProvider | WebhookError::UnknownProviderName(_) => {
                    "webhook_unknown_provider"
                }
                WebhookError::UnsupportedContentType => "webhook_unsupported_content_type",
                WebhookError::BadPayload(_) => "webhook_bad_payload",
                WebhookError::BadSecret(_) => "webhook_bad_secret",
            },
            ApiError::Store(StoreError::NotFound(_)) => "not_found",
            ApiError::Store(StoreError::Invalid(_)) => "unprocessable",
            // The cluster's status decides, as it does for the code.
            ApiError::Store(StoreError::Kube(kube::Error::Api(_))) => {
                reason_of_status(self.status_code())
            }
            ApiError::Store(StoreError::CrdNotEstablished) | ApiError::Queue(_) => "unavailable",
            ApiError::Store(_) => "bad_gateway",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The reason for a status the cluster chose, so its 409 reads `conflict` like ours.
fn reason_of_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        408 => "timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        503 => "unavailable",
        s if s >= 500 && s != 502 => "internal",
        s if s < 500 => "bad_request",
        _ => "bad_gateway",
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadName(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Webhook(e) => {
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            // The cluster's own answer (409 conflict, 403 forbidden …) is the most useful status.
            ApiError::Store(StoreError::Kube(kube::Error::Api(s))) => StatusCode::from_u16(s.code)
                .ok()
                .filter(|c| c.is_client_error() || c.is_server_error())
                .unwrap_or(StatusCode::BAD_GATEWAY),
            ApiError::Store(StoreError::CrdNotEstablished) | ApiError::Queue(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match self {
            // The cluster's message without our "kubernetes API:" prefix, as clients saw it before.
            ApiError::Store(StoreError::Kube(kube::Error::Api(s))) => s.message.clone(),
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(status).json(ErrorBody {
            error: message,
            code: status.as_u16(),
            reason: self.reason().to_owned(),
        });
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::Overflow => ApiError::PayloadTooLarge("request body is too large".into()),
            PayloadError::EncodingCorrupted => {
                ApiError::UnsupportedMediaType("request body encoding is not supported".into())
            }
            other => ApiError::BadRequest(format!("cannot read request body: {other}")),
        }
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(e: JsonPayloadError) -> Self {
        match e {
            JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::PayloadTooLarge(
                format!("request body of {length} bytes is larger than the limit of {limit} bytes"),
            ),
            JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge(format!(
                "request body is larger than the limit of {limit} bytes"
            )),
            JsonPayloadError::ContentType => {
                ApiError::UnsupportedMediaType("content type must be application/json".into())
            }
            JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON: {e}")),
            JsonPayloadError::Payload(e) => e.into(),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

/// `JsonConfig::error_handler`: JSON body errors answer in the common shape.
pub fn json_error(e: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::from(e).into()
}

/// `QueryConfig::error_handler`: a bad query string is a 400 in the common shape.
pub fn query_error(e: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query: {e}")).into()
}

/// `PathConfig::error_handler`: a bad path segment is a 400 in the common shape.
pub fn path_error(e: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid path: {e}")).into()
}

/// The answer for a route that does not exist.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no {} route at this path",
        req.method()
    )))
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn answer(e: ApiError) -> (u16, serde_json::Value) {
        let resp = e.error_response();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().try_into_bytes().unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).expect("a JSON error body"),
        )
    }

    #[test]
    fn every_answer_carries_a_documented_reason_matching_its_status() {
        let cluster = |code: u16| {
            ApiError::Store(StoreError::Kube(kube::Error::Api(
                kube::core::Status::failure("refused", "AlreadyExists")
                    .with_code(code)
                    .boxed(),
            )))
        };
        for (error, status, reason) in [
            (cluster(409), 409, "conflict"),
            (cluster(403), 403, "forbidden"),
            (cluster(0), 502, "bad_gateway"),
            (
                ApiError::Store(StoreError::CrdNotEstablished),
                503,
                "unavailable",
            ),
            (
                ApiError::Store(StoreError::NotFound("app".into())),
                404,
                "not_found",
            ),
            (
                ApiError::Webhook(WebhookError::BadPayload("x".into())),
                400,
                "webhook_bad_payload",
            ),
            (
                ApiError::Unauthorized("missing bearer token".into()),
                401,
                "unauthorized",
            ),
            (
                ApiError::Unavailable("the LDAP directory is unavailable".into()),
                503,
                "unavailable",
            ),
            (ApiError::Internal("bug".into()), 500, "internal"),
        ] {
            let (code, body) = answer(error);
            assert_eq!(
                (code, body["reason"].as_str()),
                (status, Some(reason)),
                "{body}"
            );
            assert_eq!(body["code"], status);
            assert!(REASONS.contains(&reason), "{reason} is in REASONS");
        }
    }
}
