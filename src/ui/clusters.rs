//! `/clusters`: every target cluster with its connection state.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::layout::{Nav, page};
use crate::api::ApiState;

/// `GET /clusters`.
pub async fn show(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    let clusters: Vec<_> = state
        .clusters
        .list()
        .await
        .into_iter()
        .map(|s| crate::api::clusters::info(&state, s))
        .collect();
    let body = html! {
        h1 { "Clusters" }
        table class="apps" id="clusters" {
            caption class="visually-hidden" { "Target clusters and their connection state" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Server" } th scope="col" { "Connection" } th scope="col" { "Version" } th scope="col" { "Applications" } th scope="col" { "Registered as" } } }
            tbody {
                @for c in &clusters {
                    @let icon = match c.status.as_str() { "Successful" => "✔", "Failed" => "✖", _ => "?" };
                    tr {
                        th scope="row" data-label="Name" { (c.name) }
                        td data-label="Server" class="repo" { (c.server) }
                        td data-label="Connection" {
                            span class={ "badge conn-" (c.status) } { span aria-hidden="true" { (icon) } " " (c.status) }
                            @if !c.message.is_empty() { " " span class="muted" { (c.message) } }
                        }
                        td data-label="Version" { (c.version.as_deref().unwrap_or("")) }
                        td data-label="Applications" { (c.apps) }
                        td data-label="Registered as" { (c.source) }
                    }
                }
            }
        }
    };
    super::html(
        StatusCode::OK,
        page("Clusters", Some(&session), Nav::Clusters, body),
    )
}
