//! `/login` and `/logout`: a password or the API token in, a session cookie out; secrets are
//! compared in constant time and never stored, echoed or logged.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, page};
use crate::api::ApiError;
use crate::api::ApiState;
use crate::api::auth::TOKEN_ACCOUNT;
use crate::api::session::{cleared_cookie, password_login, session_cookie, source_address};
use crate::auth::{Identity, Source};
use crate::secret;

/// The login form: a local account's name and password, or the API token.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    /// The local path to open after login (e.g. the CLI's hand-off page).
    #[serde(default)]
    return_to: String,
}

/// `?return_to=` of the login page.
#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    return_to: String,
}

/// The logout form (its CSRF token, so another site cannot log a user out).
#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// The single sign-on buttons of the login page: (label, href) for each configured source.
/// Every SSO route takes `?return_to=LOCAL_PATH` and hands it to [`open_session`].
pub fn sso_links(state: &ApiState) -> Vec<(String, String)> {
    let mut links = Vec::new();
    if let Some(oidc) = &state.auth.oidc {
        links.push((
            oidc.name().to_owned(),
            super::sso_oidc::LOGIN_PATH.to_owned(),
        ));
    }
    if state.auth.github.is_some() {
        links.push(("GitHub".to_owned(), super::github::LOGIN_PATH.to_owned()));
    }
    links.extend(super::saml::sso_link(state));
    links
}

/// The login page with `message` as its error: how SSO callbacks report a refused login.
pub fn failed_login(state: &ApiState, status: StatusCode, message: &str) -> HttpResponse {
    login_page(state, status, Some(message), "")
}

/// `href` with `?return_to=` appended when there is somewhere to return to.
fn with_return_to(href: &str, return_to: &str) -> String {
    if return_to.is_empty() {
        return href.to_owned();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let sep = if href.contains('?') { '&' } else { '?' };
    format!("{href}{sep}{query}")
}

fn login_page(
    state: &ApiState,
    status: StatusCode,
    error: Option<&str>,
    return_to: &str,
) -> HttpResponse {
    let sso = sso_links(state);
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
                        label for="username" { "Username" }
                        input id="username" name="username" type="text" autocomplete="username" autofocus;
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password";
                        @if !return_to.is_empty() {
                            input type="hidden" name="return_to" value=(return_to);
                        }
                        button type="submit" { "Sign in" }
                    }
                    @if !sso.is_empty() {
                        ul class="sso" aria-label="Single sign-on" {
                            @for (label, href) in &sso {
                                li { a class="button sso" href=(with_return_to(href, return_to)) { "Log in via " (label) } }
                            }
                        }
                    }
                    details class="token-login" {
                        summary { "Log in with the API token" }
                        form method="post" action="/login" {
                            label for="token" { "API token" }
                            input id="token" name="token" type="password" autocomplete="off"
                                aria-describedby="token-help";
                            p id="token-help" class="help" {
                                "The token the CLI uses (" code { "api.token" } ", or "
                                code { "<data_dir>/api-token" } ")."
                            }
                            @if !return_to.is_empty() {
                                input type="hidden" name="return_to" value=(return_to);
                            }
                            button type="submit" { "Log in" }
                        }
                    }
                }
            },
        ),
    )
}

/// `GET /login`.
pub async fn form(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let return_to = local_path(&query.return_to);
    if super::session_of(&req, &state).is_some() {
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, return_to))
            .finish();
    }
    login_page(&state, StatusCode::OK, None, &query.return_to)
}

/// `to` when it is a path on this site, else `/`: an open redirect would hand a session to
/// another site.
pub fn local_path(to: &str) -> &str {
    if to.starts_with('/') && !to.starts_with("//") && !to.contains('\\') {
        to
    } else {
        "/"
    }
}

/// Opens a browser session for `identity` and sends the browser to `to` (a local path): the end
/// of every login, by password, token or single sign-on.
pub fn open_session(
    req: &HttpRequest,
    state: &ApiState,
    identity: &Identity,
    to: &str,
) -> HttpResponse {
    // Policies name users by name alone: a provider's user called like a local account (`admin`)
    // would inherit that account's roles.
    if !matches!(identity.source, Source::Local | Source::Token)
        && state.auth.accounts.get(&identity.user).is_ok()
    {
        tracing::warn!(user = %identity.user, source = identity.source.as_str(), "single sign-on refused: the name is a local account's");
        return login_page(
            state,
            StatusCode::FORBIDDEN,
            Some("That user name belongs to a local account; sign in with the account instead."),
            "",
        );
    }
    let token = match state.auth.sessions.issue(identity) {
        Ok((token, _)) => token,
        Err(e) => {
            tracing::error!(error = %e, "could not sign a session");
            return login_page(
                state,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("The session could not be opened."),
                "",
            );
        }
    };
    tracing::info!(user = %identity.user, source = identity.source.as_str(), "UI login");
    let to = local_path(to);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .cookie(session_cookie(req, token))
        .finish()
}

/// `POST /login`: a right password or token opens a session; a wrong one shows the form again.
pub async fn submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let token = form.token.trim();
    if !token.is_empty() {
        if !secret::ct_eq(&state.api_token, token) {
            tracing::info!("UI login refused: wrong token");
            return login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("That token is not valid."),
                &form.return_to,
            );
        }
        return open_session(
            &req,
            &state,
            &Identity::new(TOKEN_ACCOUNT, Source::Token),
            &form.return_to,
        );
    }
    match password_login(
        &state,
        &source_address(&req),
        &form.username,
        &form.password,
    )
    .await
    {
        Ok(identity) => open_session(&req, &state, &identity, &form.return_to),
        Err(ApiError::TooManyRequests { message, .. }) => login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&message),
            &form.return_to,
        ),
        Err(ApiError::Unavailable(message)) => login_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&message),
            &form.return_to,
        ),
        Err(_) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Invalid username or password."),
            &form.return_to,
        ),
    }
}

/// `POST /logout`: ends the session everywhere and clears the cookie; a session from an OIDC
/// provider with an `end_session_endpoint` then ends at the provider too.
pub async fn logout(
    req: HttpRequest,
    form: web::Form<LogoutForm>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let mut at_provider = None;
    if let Some(session) = super::session_of(&req, &state) {
        if !secret::ct_eq(&secret::SecretString::from(session.csrf), &form.csrf) {
            return HttpResponse::Forbidden().body("wrong CSRF token");
        }
        if let Err(e) = state
            .auth
            .accounts
            .revoke_session(&session.claims.jti, session.claims.exp)
            .await
        {
            tracing::error!(error = %e, "logout could not revoke the session");
            return HttpResponse::InternalServerError().body("logout failed; try again");
        }
        if session.identity.source == Source::Oidc
            && let Some(oidc) = &state.auth.oidc
        {
            at_provider = oidc
                .end_session_url(&oidc.login_page_url())
                .await
                .map(|url| (oidc.name().to_owned(), url));
        }
    }
    if let Some((name, url)) = at_provider {
        // A page, not a redirect: `form-action 'self'` forbids a form's redirect to another site.
        let mut resp = super::html(
            StatusCode::OK,
            page(
                "Logged out",
                None,
                Nav::None,
                html! {
                    (maud::PreEscaped(format!(
                        r#"<meta http-equiv="refresh" content="0;url={}">"#,
                        maud::html! { (url) }.into_string()
                    )))
                    section class="login" {
                        h1 { "Logged out of Capstan" }
                        p { "Signing out at " (name) "… " a id="end-session" href=(url) { "continue" } }
                    }
                },
            ),
        );
        let _ = resp.add_cookie(&cleared_cookie());
        return resp;
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .cookie(cleared_cookie())
        .finish()
}
