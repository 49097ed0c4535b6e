//! `/login` and `/logout`: the API token in, a session cookie out; the token is compared in
//! constant time and never stored, echoed or logged.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, page};
use crate::api::ApiState;
use crate::api::auth::TOKEN_ACCOUNT;
use crate::api::session::COOKIE;
use crate::secret;

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// The logout form (its CSRF token, so another site cannot log a user out).
#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

fn login_page(status: StatusCode, error: Option<&str>) -> HttpResponse {
    super::html(
        status,
        page(
            "Log in",
            None,
            Nav::None,
            html! {
                section class="login" aria-labelledby="login-title" {
                    h1 id="login-title" { "Log in to Capstan" }
                    @if let Some(e) = error {
                        p class="error" role="alert" id="login-error" { "✖ " (e) }
                    }
                    form method="post" action="/login" {
                        label for="token" { "API token" }
                        input id="token" name="token" type="password" autocomplete="current-password"
                            required autofocus aria-describedby="token-help";
                        p id="token-help" class="help" {
                            "The token the CLI uses (" code { "api.token" } ", or "
                            code { "<data_dir>/api-token" } ")."
                        }
                        button type="submit" { "Log in" }
                    }
                }
            },
        ),
    )
}

/// `GET /login`.
pub async fn form(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    if super::session_of(&req, &state).is_some() {
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .finish();
    }
    login_page(StatusCode::OK, None)
}

/// `POST /login`: a right token opens a session; a wrong one shows the form again, no cookie.
pub async fn submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let token = form.token.trim();
    if token.is_empty() || !secret::ct_eq(&state.api_token, token) {
        tracing::info!("UI login refused: wrong token");
        return login_page(StatusCode::UNAUTHORIZED, Some("That token is not valid."));
    }
    let (id, _) = state.sessions.open(TOKEN_ACCOUNT);
    tracing::info!(identity = TOKEN_ACCOUNT, "UI login");
    let cookie = Cookie::build(COOKIE, id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .cookie(cookie)
        .finish()
}

/// `POST /logout`: ends the session server-side and clears the cookie.
pub async fn logout(
    req: HttpRequest,
    form: web::Form<LogoutForm>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    if let Some(cookie) = req.cookie(COOKIE) {
        let Some(session) = state.sessions.get(cookie.value()) else {
            return super::to_login();
        };
        if !secret::ct_eq(&secret::SecretString::from(session.csrf), &form.csrf) {
            return HttpResponse::Forbidden().body("wrong CSRF token");
        }
        state.sessions.close(cookie.value());
    }
    let mut gone = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    gone.set_max_age(CookieAge::ZERO);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .cookie(gone)
        .finish()
}
