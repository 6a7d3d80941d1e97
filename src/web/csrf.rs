//! The guard in front of every change: any request but `GET`/`HEAD` must come from
//! this node's own page (an `Origin` equal to `http://<Host>`), carry a live session
//! cookie, and carry that session's CSRF token — as the `_csrf` form field or the
//! `X-CSRF-Token` header. `SameSite=Strict` already keeps other sites' requests from
//! carrying the cookie; the token also stops pages of other local ports, which count
//! as the same site.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::cookies::Jar;
use super::session::same;
use super::{i18n, layout, Ctx, WebState, MAX_FORM_BYTES};

/// The form field that carries the token.
pub const FIELD: &str = "_csrf";
/// The header that carries the token (for scripts).
pub const HEADER: &str = "x-csrf-token";

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Origin`, or another one.
    Origin,
    /// No live session.
    Session,
    /// No token, or a wrong one.
    Token,
    /// A body over [`MAX_FORM_BYTES`].
    TooLarge,
}

/// Whether `headers` name this page as the request's origin.
pub fn origin_ok(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// The token in a urlencoded form body.
pub fn token_in_form(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

/// The middleware: safe methods pass; changes are checked as the module says.
pub async fn guard(State(state): State<WebState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let refuse = |why: Refusal| refused(&parts, why);
    if !origin_ok(&parts.headers) {
        return refuse(Refusal::Origin);
    }
    let jar = Jar::from_headers(&parts.headers);
    let Some(session) = state.sessions().from_jar(&jar) else {
        return refuse(Refusal::Session);
    };
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return refuse(Refusal::TooLarge),
    };
    let given = parts
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| token_in_form(&bytes));
    if !given.is_some_and(|g| same(&g, &session.csrf)) {
        return refuse(Refusal::Token);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refused(parts: &axum::http::request::Parts, why: Refusal) -> Response {
    let jar = Jar::from_headers(&parts.headers);
    let lang = i18n::choose(&parts.uri, &jar, &parts.headers);
    let ctx = Ctx {
        lang,
        t: lang.catalogue(),
        session: None,
        here: "/".into(),
    };
    let t = ctx.t;
    let (status, text) = match why {
        Refusal::Origin | Refusal::Token => (StatusCode::FORBIDDEN, t.refused_forged),
        Refusal::Session => (StatusCode::FORBIDDEN, t.login_needed),
        Refusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, t.refused_too_large),
    };
    tracing::debug!(?why, path = %parts.uri.path(), "web change refused");
    let body =
        maud::html! { h1 { (t.refused_title) } p { (text) } p { a href="/" { (t.nav_board) } } };
    let mut r = layout::page(&ctx, t.refused_title, layout::Nav::None, body).into_response();
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_must_be_this_page() {
        assert!(origin_ok(&headers(
            "127.0.0.1:7650",
            Some("http://127.0.0.1:7650")
        )));
        assert!(!origin_ok(&headers(
            "127.0.0.1:7650",
            Some("http://127.0.0.1:7651")
        )));
        assert!(!origin_ok(&headers(
            "127.0.0.1:7650",
            Some("http://evil.example")
        )));
        assert!(!origin_ok(&headers("127.0.0.1:7650", Some("null"))));
        assert!(!origin_ok(&headers("127.0.0.1:7650", None)));
    }

    #[test]
    fn token_is_read_from_the_form() {
        assert_eq!(
            token_in_form(b"title=x&_csrf=abc%20d").as_deref(),
            Some("abc d")
        );
        assert_eq!(token_in_form(b"title=x"), None);
    }
}
