//! `/projects`: every AppProject with its rules (repositories, destinations, kinds).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::layout::{Nav, page};
use crate::api::ApiState;
use crate::store::project::GroupKind;

fn kinds(list: &[GroupKind]) -> Markup {
    html! {
        @if list.is_empty() { span class="muted" { "none" } }
        @for (i, gk) in list.iter().enumerate() {
            @if i > 0 { ", " }
            code { @if gk.group.is_empty() { "core" } @else { (gk.group) } "/" (gk.kind) }
        }
    }
}

/// `GET /projects`.
pub async fn show(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(session) = super::session_of(&req, &state) else {
        return super::to_login();
    };
    let projects = state.tenancy.projects().list();
    let body = html! {
        h1 { "Projects" }
        @if projects.is_empty() { p { "No projects." } }
        @for p in &projects {
            @let name = p.metadata.name.as_deref().unwrap_or_default();
            article class="card" aria-labelledby={ "project-" (name) } {
                h2 id={ "project-" (name) } { (name) }
                @if let Some(d) = &p.spec.description { p { (d) } }
                dl class="facts" {
                    div { dt { "Source repositories" } dd { @if p.spec.source_repos.is_empty() { span class="muted" { "none" } } @for r in &p.spec.source_repos { code { (r) } " " } } }
                    div { dt { "Destinations" } dd { ul {
                        @for d in &p.spec.destinations {
                            li { (d.name.as_deref().or(d.server.as_deref()).unwrap_or("*")) " / " (d.namespace) }
                        }
                    } } }
                    div { dt { "Cluster kinds allowed" } dd { (kinds(&p.spec.cluster_resource_whitelist)) } }
                    div { dt { "Cluster kinds denied" } dd { (kinds(&p.spec.cluster_resource_blacklist)) } }
                    div { dt { "Namespaced kinds allowed" } dd { @if p.spec.namespace_resource_whitelist.is_empty() { span class="muted" { "all" } } @else { (kinds(&p.spec.namespace_resource_whitelist)) } } }
                    div { dt { "Namespaced kinds denied" } dd { (kinds(&p.spec.namespace_resource_blacklist)) } }
                    div { dt { "Source namespaces" } dd { @if p.spec.source_namespaces.is_empty() { span class="muted" { "control namespace only" } } @for n in &p.spec.source_namespaces { code { (n) } " " } } }
                }
            }
        }
    };
    super::html(
        StatusCode::OK,
        page("Projects", Some(&session), Nav::Projects, body),
    )
}
