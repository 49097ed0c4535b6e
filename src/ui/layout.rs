//! The page shell: head, navigation, the CSRF token for the page's script, the main landmark.

use maud::{DOCTYPE, Markup, html};

use crate::api::session::Session;

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Applications,
    Create,
    Projects,
    Clusters,
    None,
}

/// A whole page; `session` is None only on the login page.
pub fn page(title: &str, session: Option<&Session>, nav: Nav, body: Markup) -> Markup {
    let entries = [
        (Nav::Applications, "/", "Applications"),
        (Nav::Create, "/create", "New application"),
        (Nav::Projects, "/projects", "Projects"),
        (Nav::Clusters, "/clusters", "Clusters"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = session {
                    meta name="csrf-token" content=(s.csrf);
                }
                title { (title) " · Capstan" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "Capstan" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (entry, href, label) in entries {
                                    li {
                                        @if entry == nav {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form class="logout" method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span class="who" { (s.identity.user) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (body)
                }
                div id="toast" role="status" aria-live="polite" {}
            }
        }
    }
}
