//! The web UI, served by the api role at `/`: server-rendered pages (maud), the project's own
//! small script and style sheet embedded in the binary, and Server-Sent Events for live updates.
//! Pages read what the REST handlers read; every button calls the REST API the CLI calls, with
//! the browser session in place of the bearer token.

pub mod application;
pub mod applications;
pub mod assets;
pub mod badges;
pub mod cli_login;
pub mod clusters;
pub mod create;
pub mod github;
pub mod layout;
pub mod login;
pub mod projects;
pub mod saml;
pub mod sso_oidc;
pub mod stream;
pub mod tree_graph;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::ApiState;
use crate::api::session::Session;

/// Mounts the pages, the assets and the event stream.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(sso_oidc::configure)
        .configure(cli_login::configure)
        .route("/", web::get().to(applications::list))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .configure(github::configure)
        .configure(saml::configure)
        .route("/ui/assets/{file}", web::get().to(assets::serve))
        .route("/create", web::get().to(create::show))
        .service(
            web::resource("/create/yaml")
                .app_data(web::PayloadConfig::new(create::YAML_LIMIT))
                .route(web::post().to(create::yaml)),
        )
        .route("/projects", web::get().to(projects::show))
        .route("/clusters", web::get().to(clusters::show))
        .route(
            "/applications/{namespace}/{name}",
            web::get().to(application::show),
        )
        .route(
            "/applications/{namespace}/{name}/summary",
            web::get().to(application::summary),
        )
        .route(
            "/applications/{namespace}/{name}/resource",
            web::get().to(application::resource),
        )
        .route(
            stream::APPLICATIONS_STREAM,
            web::get().to(stream::applications),
        );
}

/// The live session the request's cookie names, if any.
pub fn session_of(req: &HttpRequest, state: &ApiState) -> Option<Session> {
    crate::api::session::browser_session(req, state)
}

/// Where a page sends a visitor without a session.
pub fn to_login() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .finish()
}

/// An HTML answer with the headers every page carries.
pub fn html(status: actix_web::http::StatusCode, body: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Only our own script and style run; nothing frames the pages.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into_string())
}
