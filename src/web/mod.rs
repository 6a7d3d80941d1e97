//! The node's own web page, served on the API address at `/` (the JSON API stays
//! under `/api/v1`).
//!
//! Server-rendered HTML (maud templates compiled into the binary) with one small
//! hand-written script and style sheet embedded in the binary: every basic action is a
//! plain form that works without JavaScript; the script adds live updates from the
//! node's events, local dates and the browser's geolocation.
//!
//! # Safety
//! - Login: `aidmesh ui` asks the API (bearer token) for a one-time code and prints
//!   `http://ADDR/login?code=…`; opening it spends the code and sets an `HttpOnly`,
//!   `SameSite=Strict` session cookie ([`session`], [`cookies`]). Without a session
//!   every page says how to log in and shows no data.
//! - Every request's `Host` must name this address (an IP literal or `localhost` with
//!   the API's port), so a DNS-rebinding page cannot talk to the node ([`security`]).
//! - Every change (any non-GET request) must carry an `Origin` equal to the page's own
//!   and the session's CSRF token ([`csrf`]).
//! - Security headers (a strict CSP with no inline script or style, no framing, no
//!   referrer) are added to every response by a middleware layer ([`security`]).
//!
//! # Layout
//! - [`layout`]: the page shell and pieces shared by pages (post cards, times).
//! - [`i18n`]: the one catalogue of user-facing words, English and Spanish.
//! - [`board`], [`post`], [`compose`], [`mine`], [`inbox`], [`alerts`], [`circles`],
//!   [`status`], [`login`]: one file per page area.
//! - [`live`]: the page's own event stream (server-rendered fragments over SSE).
//! - [`assets`]: the embedded script and style sheet.
//! - [`geo`]: geohash encoding and the cells around a place, for "near me".

pub mod alerts;
pub mod assets;
pub mod board;
pub mod circles;
pub mod compose;
pub mod cookies;
pub mod csrf;
pub mod geo;
pub mod i18n;
pub mod inbox;
pub mod layout;
pub mod live;
pub mod login;
pub mod mine;
pub mod post;
pub mod security;
pub mod session;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post as post_route};
use axum::Router;
use tokio::sync::Semaphore;

use crate::node::NodeHandle;
use crate::DataDir;
use i18n::{Catalogue, Lang};
use session::{Session, Sessions};

/// Most live pages (event streams) open at once; each holds a broadcast receiver.
pub const MAX_LIVE_PAGES: usize = 64;
/// Largest form body a page may send.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// What the web pages share: the node, the address they are served on and the logins.
/// Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    /// Everything the pages show comes from the node.
    node: NodeHandle,
    /// Where joined invites are saved, as the CLI does.
    data_dir: DataDir,
    /// The bound API address: the `Host` check and the login URL are built from it.
    addr: SocketAddr,
    /// Login codes and sessions (in memory: a restarted node asks for a new login).
    sessions: Sessions,
    /// Bounds the open live pages.
    live: Arc<Semaphore>,
}

impl WebState {
    /// The web state of a node served on `addr`.
    pub fn new(node: NodeHandle, data_dir: DataDir, addr: SocketAddr) -> Self {
        Self {
            inner: Arc::new(Inner {
                node,
                data_dir,
                addr,
                sessions: Sessions::new(addr.port()),
                live: Arc::new(Semaphore::new(MAX_LIVE_PAGES)),
            }),
        }
    }

    /// The node.
    pub fn node(&self) -> &NodeHandle {
        &self.inner.node
    }

    /// The data dir.
    pub fn data_dir(&self) -> &DataDir {
        &self.inner.data_dir
    }

    /// The address the pages are served on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Login codes and sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// A new one-time login URL (what `aidmesh ui` prints). An unspecified bind address
    /// (`0.0.0.0`) is reached through loopback on this machine.
    pub fn login_url(&self) -> String {
        let code = self.inner.sessions.new_code();
        let mut addr = self.inner.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/login?code={code}")
    }
}

/// The web pages' router: every route behind the `Host` check, changes behind the
/// CSRF guard, every response with the security headers.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(board::page))
        .route("/posts/{id}", get(post::page))
        .route(
            "/posts/{id}/edit",
            get(compose::edit_form).post(compose::edit),
        )
        .route("/posts/{id}/status", post_route(mine::set_status))
        .route("/authors/{author}/block", post_route(post::block))
        .route("/posts/{id}/reply", post_route(inbox::reply))
        .route("/inbox", get(inbox::page))
        .route(
            "/conversations/{id}",
            get(inbox::conversation).post(inbox::send),
        )
        .route("/new", get(compose::form).post(compose::create))
        .route("/mine", get(mine::page))
        .route("/alerts", get(alerts::page).post(alerts::add))
        .route("/alerts/{id}/remove", post_route(alerts::remove))
        .route("/circles", get(circles::page))
        .route("/circles/join", post_route(circles::join))
        .route("/circles/invite", get(circles::invite))
        .route("/status", get(status::page))
        .route("/login", get(login::login))
        .route("/logout", post_route(login::logout))
        .route("/live", get(live::stream))
        .route("/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn_with_state(state.clone(), csrf::guard))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::check_host,
        ))
        .layer(middleware::from_fn(i18n::remember_choice))
        .layer(middleware::from_fn(security::headers))
        .with_state(state)
}

/// The "no such page" page for paths outside both the pages and the API.
pub async fn not_found(state: &WebState, request: axum::extract::Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let ctx = match Ctx::from_request_parts(&mut parts, state).await {
        Ok(c) => c,
        Err(never) => match never {},
    };
    let t = ctx.t;
    let body = maud::html! { h1 { (t.not_found_title) } p { a href="/" { (t.nav_board) } } };
    let mut r = layout::page(&ctx, t.not_found_title, layout::Nav::None, body).into_response();
    *r.status_mut() = StatusCode::NOT_FOUND;
    security::add_headers(r.headers_mut());
    r
}

/// What every page handler knows about the request: the language and the session.
pub struct Ctx {
    /// The chosen language.
    pub lang: Lang,
    /// Its words.
    pub t: &'static Catalogue,
    /// The session, if the request carries a live one.
    pub session: Option<Session>,
    /// The path and query of this page, for the language links.
    pub here: String,
}

impl Ctx {
    /// The session, or the "how to log in" page (401) to return instead.
    // The error is the page to return at once; it is never stored or passed on.
    #[allow(clippy::result_large_err)]
    pub fn require(&self) -> Result<&Session, Response> {
        self.session
            .as_ref()
            .ok_or_else(|| login::needed(self).into_response())
    }
}

impl FromRequestParts<WebState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let jar = cookies::Jar::from_headers(&parts.headers);
        let lang = i18n::choose(&parts.uri, &jar, &parts.headers);
        let session = state.sessions().from_jar(&jar);
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Ok(Ctx {
            lang,
            t: lang.catalogue(),
            session,
            here,
        })
    }
}

/// A `303 See Other` to `to`: where a form goes after a change, so a reload does not
/// repeat it.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// The current time, ms since the epoch.
fn now() -> u64 {
    crate::clock::now_ms()
}
