//! The page's own event stream: `GET /live?view=board&<filters>` or
//! `GET /live?view=alerts`, for a logged-in page (the API's stream needs the bearer
//! token, which a page never sees).
//!
//! The server renders what the page inserts, so the page shows exactly what a reload
//! would: `post` (`{"id", "html"}`: a card that passes the board's filters), `gone`
//! (`{"id"}`: a post on the board that no longer does), `match` (`{"html"}`: a post that
//! fits an alert or one of this node's posts) and `missed` (the page fell behind and
//! should reload). At most [`super::MAX_LIVE_PAGES`] streams are open at once, and a
//! page that stops reading is dropped after [`STALL`].

use std::convert::Infallible;
use std::time::Duration;

use aidmesh_proto::Post;
use axum::extract::{Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use libp2p::futures::StreamExt;
use libp2p::PeerId;
use maud::{html, Markup};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::board::{FilterForm, Filters};
use super::i18n::{self, Catalogue};
use super::{layout, Ctx, WebState};
use crate::alerts::Target;
use crate::events::Event;

/// A page that has not taken an event for this long (its buffer full) is dropped.
pub const STALL: Duration = Duration::from_secs(60);
/// Events buffered per page for a slow reader.
const BUFFER: usize = 64;

/// `?view=` plus the board's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LiveQuery {
    /// `board` or `alerts`.
    pub view: String,
    /// The conversation (for `conversation`).
    pub conversation: String,
    /// The board's filters (for `board`).
    #[serde(flatten)]
    pub filters: FilterForm,
}

/// What one open page wants to hear about.
pub enum View {
    /// The board with these filters over these circles.
    Board {
        /// The filters.
        filters: Filters,
        /// The node's circles when the page opened.
        circles: Vec<String>,
    },
    /// The alerts page.
    Alerts,
    /// The inbox.
    Inbox,
    /// One conversation (hex id).
    Conversation(String),
}

/// The SSE event (name, JSON data) an event becomes for a page, if any.
pub async fn translate(
    t: &Catalogue,
    view: &View,
    me: &PeerId,
    node: &crate::NodeHandle,
    e: &Event,
    now: u64,
) -> Option<(&'static str, String)> {
    match (view, e) {
        (
            View::Conversation(id),
            Event::Message {
                conversation,
                message,
            },
        ) if conversation == id => {
            let html = super::inbox::message(t, message).into_string();
            Some((
                "message",
                serde_json::json!({ "message": html }).to_string(),
            ))
        }
        (View::Inbox, Event::Message { conversation, .. }) => {
            let inbox = node.inbox().await.ok()?;
            let c = inbox
                .conversations
                .iter()
                .chain(&inbox.requests)
                .find(|c| c.id == *conversation)?;
            let html = super::inbox::row(t, c).into_string();
            Some(("message", serde_json::json!({ "row": html }).to_string()))
        }
        (
            View::Board { filters, circles },
            Event::PostAdded { post, .. } | Event::PostUpdated { post, .. },
        ) => {
            let id = post.id.to_string();
            if filters.admits(post, circles, now) {
                let html = layout::card(t, post, me).into_string();
                Some((
                    "post",
                    serde_json::json!({ "id": id, "html": html, "title": post.title }).to_string(),
                ))
            } else if matches!(e, Event::PostUpdated { .. }) {
                Some(("gone", serde_json::json!({ "id": id }).to_string()))
            } else {
                None
            }
        }
        (View::Alerts, Event::Match { post, target, .. }) => {
            let html = match_item(t, node, post, target, me, now).into_string();
            Some((
                "match",
                serde_json::json!({ "html": html, "title": post.title }).to_string(),
            ))
        }
        _ => None,
    }
}

/// One live match: the post's card and why it matched, in the page's language.
pub fn match_item(
    t: &Catalogue,
    node: &crate::NodeHandle,
    post: &Post,
    target: &Target,
    me: &PeerId,
    now: u64,
) -> Markup {
    let why = match target {
        Target::Alert { id } => {
            let filter = node
                .alerts()
                .list()
                .into_iter()
                .find(|a| a.id == *id)
                .map(|a| a.filter);
            let what = filter
                .map(|f| super::alerts::describe(t, &f))
                .unwrap_or_default();
            i18n::fill(t.fits_alert, &[("alert", &what)])
        }
        Target::Post { id, title } => {
            let reasons = node
                .get(id)
                .ok()
                .flatten()
                .and_then(|own| crate::matcher::Probe::new(own.post()).score(post, now))
                .map(|s| {
                    s.reasons
                        .iter()
                        .map(|r| i18n::reason(t, r))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let mut s = i18n::fill(t.fits_your_post, &[("title", title)]);
            if !reasons.is_empty() {
                s.push_str(": ");
                s.push_str(&reasons);
            }
            s
        }
    };
    html! { li { (layout::card(t, post, me)) p.reasons { (why) } } }
}

/// `GET /live`.
pub async fn stream(
    ctx: Ctx,
    State(state): State<WebState>,
    UrlQuery(q): UrlQuery<LiveQuery>,
) -> Response {
    if ctx.session.is_none() {
        return (StatusCode::UNAUTHORIZED, ctx.t.login_needed).into_response();
    }
    let Ok(permit) = state.inner.live.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, ctx.t.live_too_many).into_response();
    };
    let t = ctx.t;
    let view = match q.view.as_str() {
        "board" => {
            let Ok(filters) = q.filters.check(t) else {
                return (StatusCode::BAD_REQUEST, t.bad_choice).into_response();
            };
            let circles = match state.node().status().await {
                Ok(s) => s.circles,
                Err(_) => {
                    return (StatusCode::SERVICE_UNAVAILABLE, t.unavailable_text).into_response()
                }
            };
            View::Board { filters, circles }
        }
        "alerts" => View::Alerts,
        "inbox" => View::Inbox,
        "conversation" if !q.conversation.is_empty() => View::Conversation(q.conversation.clone()),
        _ => return (StatusCode::BAD_REQUEST, t.bad_choice).into_response(),
    };
    let node = state.node().clone();
    let me = node.peer_id();
    let mut rx = node.subscribe();
    let (tx, out) = mpsc::channel::<SseEvent>(BUFFER);
    // A task per page owns its place and its receiver, so a page that stops reading
    // frees both after [`STALL`] even though nothing polls its response body.
    tokio::spawn(async move {
        let _place = permit;
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                next = rx.recv() => next,
            };
            let out = match next {
                Ok(e) => translate(t, &view, &me, &node, &e, super::now()).await,
                Err(RecvError::Lagged(_)) => Some(("missed", "{}".to_string())),
                Err(RecvError::Closed) => return,
            };
            let Some((name, data)) = out else { continue };
            let sse = SseEvent::default().event(name).data(data);
            if !matches!(tokio::time::timeout(STALL, tx.send(sse)).await, Ok(Ok(()))) {
                return;
            }
        }
    });
    let events = ReceiverStream::new(out).map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
