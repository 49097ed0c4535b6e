//! `/auth/saml/…`: the SAML 2.0 login. `login` sends the browser to the identity provider,
//! `acs` takes its signed answer (a cross-site form POST) and opens the session, `metadata`
//! describes Capstan to the identity provider's administrator. All 404 unless `auth.saml` is set.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::login::failed_login;
use crate::api::ApiState;

/// Where the login starts.
pub const LOGIN_PATH: &str = "/auth/saml/login";
/// A SAML response with a certificate and a few groups is a few kB; this leaves room for many
/// groups without taking arbitrary bodies.
const ACS_LIMIT: usize = 512 * 1024;

/// Mounts the three routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(LOGIN_PATH, web::get().to(login))
        .route("/auth/saml/metadata", web::get().to(metadata))
        .service(
            web::resource("/auth/saml/acs")
                .app_data(web::FormConfig::default().limit(ACS_LIMIT))
                .route(web::post().to(acs)),
        );
}

/// `?return_to=/local/path`: the page to land on after the login.
#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    return_to: Option<String>,
}

/// The HTTP-POST binding's form.
#[derive(Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
}

/// `GET /auth/saml/login`: a fresh AuthnRequest, and the browser on its way to the IdP.
pub async fn login(query: web::Query<LoginQuery>, state: web::Data<ApiState>) -> HttpResponse {
    let Some(sp) = &state.auth.saml else {
        return HttpResponse::NotFound().finish();
    };
    let return_to = query.return_to.as_deref().unwrap_or("/");
    match sp.login_redirect(return_to) {
        Ok(url) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => {
            tracing::error!(error = %e, "could not start a SAML login");
            failed_login(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// `POST /auth/saml/acs`: the identity provider's signed answer; a session if every check passes.
pub async fn acs(
    req: HttpRequest,
    form: web::Form<AcsForm>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let Some(sp) = &state.auth.saml else {
        return HttpResponse::NotFound().finish();
    };
    match sp.accept(&form.saml_response) {
        Ok((identity, return_to)) => {
            super::login::open_session(&req, &state, &identity, &return_to)
        }
        Err(refusal) => {
            // The reason only: never the assertion, which is a bearer credential.
            tracing::warn!(reason = %refusal, "SAML login refused");
            failed_login(&state, StatusCode::FORBIDDEN, &refusal.to_string())
        }
    }
}

/// `GET /auth/saml/metadata`: Capstan's SP metadata XML.
pub async fn metadata(state: web::Data<ApiState>) -> HttpResponse {
    let Some(sp) = &state.auth.saml else {
        return HttpResponse::NotFound().finish();
    };
    HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .body(sp.metadata_xml())
}

/// The login button for the login page, when SAML is configured: (label, href).
pub fn sso_link(state: &ApiState) -> Option<(String, String)> {
    state
        .auth
        .saml
        .as_ref()
        .map(|sp| (sp.settings().name.clone(), LOGIN_PATH.to_owned()))
}
