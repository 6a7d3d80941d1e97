//! Logging in with a one-time code, logging out, and the page every other page shows
//! without a session.

use axum::extract::{Query as UrlQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::cookies::Jar;
use super::layout::{self, Nav};
use super::{Ctx, WebState};

/// `?code=`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    /// The one-time code `aidmesh ui` printed.
    pub code: String,
}

fn how_to(ctx: &Ctx) -> Markup {
    let t = ctx.t;
    html! {
        p { (t.login_how) }
        pre { code { "aidmesh ui" } }
        p { (t.login_how_after) }
    }
}

/// The page shown instead of any data without a session (401).
pub fn needed(ctx: &Ctx) -> Response {
    let t = ctx.t;
    let body = html! { h1 { (t.login_title) } p { (t.login_needed) } (how_to(ctx)) };
    let mut r = layout::page(ctx, t.login_title, Nav::None, body).into_response();
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r
}

/// `GET /login?code=…`: spends the code, sets the session cookie and goes to the board.
pub async fn login(
    ctx: Ctx,
    State(state): State<WebState>,
    UrlQuery(q): UrlQuery<LoginQuery>,
) -> Response {
    let t = ctx.t;
    match state.sessions().spend(q.code.trim()) {
        Some(id) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (header::SET_COOKIE, state.sessions().set_cookie(&id)),
            ],
        )
            .into_response(),
        None => {
            let body =
                html! { h1 { (t.login_title) } p.error { (t.login_bad_code) } (how_to(&ctx)) };
            let mut r = layout::page(&ctx, t.login_title, Nav::None, body).into_response();
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(State(state): State<WebState>, headers: axum::http::HeaderMap) -> Response {
    state.sessions().end(&Jar::from_headers(&headers));
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, state.sessions().clear_cookie()),
        ],
    )
        .into_response()
}
