//! The UI's own script and style sheet, compiled into the binary.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// `GET /ui/assets/{file}`: `app.js` or `style.css`.
pub async fn serve(file: web::Path<String>) -> HttpResponse {
    let (body, kind) = match file.as_str() {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return HttpResponse::NotFound().body("no such asset"),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
