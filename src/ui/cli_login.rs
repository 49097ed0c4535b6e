//! `capstan login --sso` in the browser: `/auth/cli` asks whoever is signed in (after any login,
//! password or SSO, which returns here) to confirm, then `/auth/cli/approve` sends the browser to
//! the CLI's listener on 127.0.0.1 with a one-time code the CLI trades for its own session
//! (`POST /api/v1/session/exchange`). The confirmation keeps a page or local program that opens
//! this URL from silently taking a session.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, page};
use crate::api::ApiState;
use crate::secret;

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/cli", web::get().to(confirm))
        .route("/auth/cli/approve", web::get().to(approve));
}

/// What the CLI put in the URL it opened.
#[derive(Deserialize)]
pub struct CliRequest {
    /// The CLI's listener on 127.0.0.1.
    port: u16,
    /// The CLI's own state, echoed back to it.
    state: String,
    /// The S256 challenge of the CLI's verifier.
    challenge: String,
    /// On approval: the session's CSRF token.
    #[serde(default)]
    csrf: String,
}

impl CliRequest {
    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("port", &self.port.to_string())
            .append_pair("state", &self.state)
            .append_pair("challenge", &self.challenge)
            .finish()
    }

    fn valid(&self) -> bool {
        self.port != 0
            && !self.state.is_empty()
            && self.state.len() <= 256
            && self.challenge.len() == 43
    }
}

/// `GET /auth/cli`: log in first if needed, then confirm.
async fn confirm(
    req: HttpRequest,
    query: web::Query<CliRequest>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    if !query.valid() {
        return HttpResponse::BadRequest().body("not a capstan login request");
    }
    let Some(session) = super::session_of(&req, &state) else {
        let back = format!("/auth/cli?{}", query.query());
        let login = form_urlencoded::Serializer::new(String::from("/login?"))
            .append_pair("return_to", &back)
            .finish();
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, login))
            .finish();
    };
    let approve = format!("/auth/cli/approve?{}&csrf={}", query.query(), session.csrf);
    super::html(
        StatusCode::OK,
        page(
            "Log in the CLI",
            Some(&session),
            Nav::None,
            html! {
                section class="login" aria-labelledby="cli-title" {
                    h1 id="cli-title" { "Log in the Capstan CLI" }
                    p {
                        "The " code { "capstan" } " command on this computer (port " (query.port)
                        ") asks for a session as " strong { (session.identity.user) } "."
                    }
                    p { "Continue only if you just ran " code { "capstan login --sso" } "." }
                    a class="button" id="cli-approve" href=(approve) { "Log in the CLI" }
                    " "
                    a href="/" { "Cancel" }
                }
            },
        ),
    )
}

/// `GET /auth/cli/approve`: a one-time code to the CLI's listener.
async fn approve(
    req: HttpRequest,
    query: web::Query<CliRequest>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    if !query.valid() {
        return HttpResponse::BadRequest().body("not a capstan login request");
    }
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    // The CSRF token proves the click came from our confirmation page.
    if !secret::ct_eq(
        &secret::SecretString::from(session.csrf.clone()),
        &query.csrf,
    ) {
        return HttpResponse::Forbidden().body("wrong CSRF token");
    }
    let code = match state
        .auth
        .handoff
        .issue(&session.identity, &query.challenge)
    {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %e, "could not sign a CLI login code");
            return HttpResponse::InternalServerError().body("could not hand the login to the CLI");
        }
    };
    tracing::info!(user = %session.identity.user, "CLI login handed over");
    let to = form_urlencoded::Serializer::new(format!("http://127.0.0.1:{}/callback?", query.port))
        .append_pair("code", &code)
        .append_pair("state", &query.state)
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}
