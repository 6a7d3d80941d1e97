//! The embedded script and style sheet. Their URLs carry a hash of their content, so
//! a browser may keep them for good and still never runs a stale copy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The style sheet.
pub const CSS: &str = include_str!("assets/app.css");
/// The script.
pub const JS: &str = include_str!("assets/app.js");

fn hashed(name: &str, ext: &str, body: &str) -> String {
    let h = blake3::hash(body.as_bytes()).to_hex();
    format!("/assets/{name}-{}.{ext}", &h[..12])
}

/// The style sheet's URL.
pub fn css_path() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| hashed("app", "css", CSS))
}

/// The script's URL.
pub fn js_path() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| hashed("app", "js", JS))
}

/// `GET /assets/{name}` (no session needed: nothing private in them).
pub async fn serve(Path(name): Path<String>) -> Response {
    let path = format!("/assets/{name}");
    let (body, kind) = if path == css_path() {
        (CSS, "text/css; charset=utf-8")
    } else if path == js_path() {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
