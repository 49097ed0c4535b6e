//! `/api/v1/account…`: local accounts, their passwords and API tokens, and `can-i`, shaped as
//! Argo CD's account service. Anyone may read and manage their own account; another's needs
//! `accounts, get|update, <name>`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::session::{password_login, source_address};
use crate::auth::accounts::{Account, AccountError, StoredToken};

/// An account as the API shows it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub name: String,
    pub enabled: bool,
    /// `login`, `apiKey`.
    pub capabilities: Vec<String>,
    /// The account's API tokens (ids and times only).
    pub tokens: Vec<TokenView>,
    /// When the password last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_mtime: Option<String>,
}

/// An API token's id and times.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds), absent when it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl From<StoredToken> for TokenView {
    fn from(t: StoredToken) -> TokenView {
        TokenView {
            id: t.id,
            iat: t.iat,
            exp: t.exp,
            description: t.description,
        }
    }
}

fn view(state: &ApiState, account: Account) -> AccountView {
    let tokens = state.auth.accounts.tokens(&account.name);
    AccountView {
        password_mtime: state.auth.accounts.password_mtime(&account.name),
        name: account.name,
        enabled: account.enabled,
        capabilities: account
            .capabilities
            .iter()
            .map(|c| match c {
                crate::auth::accounts::Capability::Login => "login".to_owned(),
                crate::auth::accounts::Capability::ApiKey => "apiKey".to_owned(),
            })
            .collect(),
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        match e {
            AccountError::BadCredentials => ApiError::Unauthorized(e.to_string()),
            AccountError::NoSuchAccount(_) | AccountError::NoSuchToken(_) => {
                ApiError::NotFound(e.to_string())
            }
            AccountError::Disabled(_) | AccountError::MissingCapability { .. } => {
                ApiError::Unprocessable(e.to_string())
            }
            AccountError::WeakPassword => ApiError::Unprocessable(e.to_string()),
            AccountError::Store(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// Reading or changing another's account needs the policy; one's own is always allowed.
fn check_account(
    auth: &Authenticated,
    state: &ApiState,
    action: &str,
    name: &str,
) -> Result<(), ApiError> {
    if auth.user() == name {
        return Ok(());
    }
    auth.check(state, "accounts", action, name)
}

/// `GET /api/v1/account`: the accounts the caller may see.
#[utoipa::path(get, path = "/api/v1/account", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, description = "Accounts", body = [AccountView]), (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody)))]
pub async fn list(auth: Authenticated, state: web::Data<ApiState>) -> HttpResponse {
    let items: Vec<AccountView> = state
        .auth
        .accounts
        .list()
        .into_iter()
        .filter(|a| check_account(&auth, &state, "get", &a.name).is_ok())
        .map(|a| view(&state, a))
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "items": items }))
}

/// The `{name}` segment.
#[derive(Deserialize)]
pub struct NamePath {
    name: String,
}

/// `GET /api/v1/account/{name}`.
#[utoipa::path(get, path = "/api/v1/account/{name}", tag = "accounts", security(("bearer" = [])),
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, description = "The account", body = AccountView), (status = 403, description = "Not allowed", body = crate::api::error::ErrorBody), (status = 404, description = "No such account", body = crate::api::error::ErrorBody)))]
pub async fn get(
    auth: Authenticated,
    path: web::Path<NamePath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    check_account(&auth, &state, "get", &path.name)?;
    let account = state.auth.accounts.get(&path.name)?;
    Ok(HttpResponse::Ok().json(view(&state, account)))
}

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    /// The account to change; the caller's own when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The caller's current password (Argo CD asks for it whoever's password changes).
    pub current_password: String,
    pub new_password: String,
}

/// `PUT /api/v1/account/password`.
#[utoipa::path(put, path = "/api/v1/account/password", tag = "accounts", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 200, description = "Changed"), (status = 401, description = "Wrong current password", body = crate::api::error::ErrorBody), (status = 403, description = "Not allowed", body = crate::api::error::ErrorBody), (status = 422, description = "Too weak, or the account cannot log in", body = crate::api::error::ErrorBody)))]
pub async fn update_password(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<ApiState>,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.clone().unwrap_or_else(|| auth.user().to_owned());
    check_account(&auth, &state, "update", &name)?;
    password_login(
        &state,
        &source_address(&req),
        auth.user(),
        &body.current_password,
    )
    .await
    .map_err(|e| match e {
        ApiError::Unauthorized(_) => ApiError::Unauthorized("the current password is wrong".into()),
        other => other,
    })?;
    state
        .auth
        .accounts
        .set_password(&name, &body.new_password)
        .await?;
    tracing::info!(account = %name, by = %auth.user(), "password changed");
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

/// A token request.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Seconds until the token expires; absent or 0 for a token that does not expire.
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub description: String,
}

/// A new API token, shown this once.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    pub token: String,
    pub id: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// `POST /api/v1/account/{name}/token`.
#[utoipa::path(post, path = "/api/v1/account/{name}/token", tag = "accounts", security(("bearer" = [])),
    params(("name" = String, Path, description = "Account name")),
    request_body = TokenRequest,
    responses((status = 200, description = "The token, shown once", body = NewToken), (status = 403, description = "Not allowed", body = crate::api::error::ErrorBody), (status = 404, description = "No such account", body = crate::api::error::ErrorBody), (status = 422, description = "The account has no apiKey capability", body = crate::api::error::ErrorBody)))]
pub async fn create_token(
    auth: Authenticated,
    path: web::Path<NamePath>,
    state: web::Data<ApiState>,
    body: Option<web::Json<TokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    check_account(&auth, &state, "update", &path.name)?;
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    let expires = body
        .expires_in
        .filter(|s| *s > 0)
        .map(std::time::Duration::from_secs);
    let (token, stored) = state
        .auth
        .accounts
        .create_token(&path.name, expires, &body.description)
        .await?;
    tracing::info!(account = %path.name, token_id = %stored.id, by = %auth.user(), "API token issued");
    Ok(HttpResponse::Ok().json(NewToken {
        token,
        id: stored.id,
        iat: stored.iat,
        exp: stored.exp,
    }))
}

/// The `{name}/token/{id}` segments.
#[derive(Deserialize)]
pub struct TokenPath {
    name: String,
    id: String,
}

/// `DELETE /api/v1/account/{name}/token/{id}`: the token is refused from now on.
#[utoipa::path(delete, path = "/api/v1/account/{name}/token/{id}", tag = "accounts", security(("bearer" = [])),
    params(("name" = String, Path, description = "Account name"), ("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "Revoked"), (status = 403, description = "Not allowed", body = crate::api::error::ErrorBody), (status = 404, description = "No such account or token", body = crate::api::error::ErrorBody)))]
pub async fn delete_token(
    auth: Authenticated,
    path: web::Path<TokenPath>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    check_account(&auth, &state, "update", &path.name)?;
    state
        .auth
        .accounts
        .revoke_token(&path.name, &path.id)
        .await?;
    tracing::info!(account = %path.name, token_id = %path.id, by = %auth.user(), "API token revoked");
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

/// The `can-i` segments.
#[derive(Deserialize)]
pub struct CanIPath {
    resource: String,
    action: String,
    object: String,
}

/// `GET /api/v1/account/can-i/{resource}/{action}/{object}`: `{"value": "yes"|"no"}`; the
/// object's slashes are percent-encoded (`default%2Fweb`).
#[utoipa::path(get, path = "/api/v1/account/can-i/{resource}/{action}/{object}", tag = "accounts", security(("bearer" = [])),
    params(("resource" = String, Path, description = "applications, projects, clusters …"), ("action" = String, Path, description = "get, create, sync …"), ("object" = String, Path, description = "project/app, or a name")),
    responses((status = 200, description = "yes or no")))]
pub async fn can_i(
    auth: Authenticated,
    path: web::Path<CanIPath>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    // `project/app` arrives as one segment, its slash percent-encoded.
    let object = percent_encoding::percent_decode_str(&path.object).decode_utf8_lossy();
    let yes = auth.can(&state, &path.resource, &path.action, &object);
    HttpResponse::Ok().json(serde_json::json!({ "value": if yes { "yes" } else { "no" } }))
}
