//! The browser's side of OIDC login: `/auth/oidc/login` sends the browser to the provider with a
//! new flow kept in a cookie; `/auth/oidc/callback` checks the answer against that cookie and
//! opens the session. Failures show the login page with a reason that names no secret.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::api::ApiState;
use crate::auth::oidc::Flow;
use crate::auth::oidc::flow::FLOW_TTL_SECS;
use crate::secret;

/// The cookie holding the login in flight.
const FLOW_COOKIE: &str = "capstan_oidc";
/// Where the flow cookie is sent: the callback only.
const FLOW_PATH: &str = "/auth/oidc";
/// The login route the login page links to.
pub const LOGIN_PATH: &str = "/auth/oidc/login";

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(LOGIN_PATH, web::get().to(login))
        .route("/auth/oidc/callback", web::get().to(callback));
}

/// `?return_to=` of a login route.
#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    return_to: String,
}

/// What the provider sends back (OAuth 2.0 §4.1.2, §4.1.2.1).
#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `GET /auth/oidc/login`: to the provider.
async fn login(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let Some(oidc) = state.auth.oidc.clone() else {
        return HttpResponse::NotFound().body("OIDC is not configured");
    };
    let return_to = if query.return_to.is_empty() {
        "/"
    } else {
        &query.return_to
    };
    match oidc.start(return_to).await {
        Ok((url, flow)) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .cookie(flow_cookie(&req, flow.encode(), FLOW_TTL_SECS))
            .finish(),
        Err(e) => {
            tracing::warn!(error = %e, "OIDC login could not start");
            super::login::failed_login(
                &state,
                StatusCode::BAD_GATEWAY,
                &format!("{} is not reachable; try again later.", oidc.name()),
            )
        }
    }
}

/// `GET /auth/oidc/callback`: the provider's answer.
async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let Some(oidc) = state.auth.oidc.clone() else {
        return HttpResponse::NotFound().body("OIDC is not configured");
    };
    let refuse = |status: StatusCode, message: &str| {
        let mut resp = super::login::failed_login(&state, status, message);
        // The flow is over either way.
        let _ = resp.add_cookie(&flow_cookie(&req, String::new(), 0));
        resp
    };
    let flow = req
        .cookie(FLOW_COOKIE)
        .and_then(|c| Flow::decode(c.value()));
    let Some(flow) = flow else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The login took too long or was started in another browser; try again.",
        );
    };
    if !query.error.is_empty() {
        tracing::info!(error = %query.error, description = %query.error_description, "OIDC provider refused the login");
        return refuse(
            StatusCode::UNAUTHORIZED,
            &format!("{} refused the login ({}).", oidc.name(), query.error),
        );
    }
    // The state ties this answer to the login this browser started (login CSRF).
    if query.state.is_empty()
        || !secret::ct_eq(
            &secret::SecretString::from(flow.state.clone()),
            &query.state,
        )
    {
        tracing::info!("OIDC callback refused: state does not match");
        return refuse(
            StatusCode::BAD_REQUEST,
            "The login answer does not belong to this browser; try again.",
        );
    }
    match oidc.finish(&query.code, &flow).await {
        Ok(identity) if !identity.user.is_empty() => {
            let mut resp = super::login::open_session(&req, &state, &identity, &flow.return_to);
            let _ = resp.add_cookie(&flow_cookie(&req, String::new(), 0));
            resp
        }
        Ok(_) => refuse(
            StatusCode::UNAUTHORIZED,
            "The identity provider named no user.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "OIDC login refused");
            refuse(
                StatusCode::UNAUTHORIZED,
                &format!("Login via {} failed: {e}", oidc.name()),
            )
        }
    }
}

/// The flow cookie: HttpOnly, `SameSite=Lax` (the provider's redirect back is a cross-site
/// navigation), sent only to the callback; `max_age` 0 removes it.
fn flow_cookie(req: &HttpRequest, value: String, max_age: i64) -> Cookie<'static> {
    let mut cookie = Cookie::build(FLOW_COOKIE, value)
        .path(FLOW_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(req.connection_info().scheme() == "https")
        .finish();
    cookie.set_max_age(CookieAge::seconds(max_age));
    cookie
}
