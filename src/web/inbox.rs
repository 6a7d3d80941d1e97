//! The inbox and conversations: private replies about a post, promising the post to
//! the person one talks with, and marking the handover done. Live: arriving messages
//! are added to the open conversation and to the inbox without a reload.

use aidmesh_proto::message::MessageKind;
use aidmesh_proto::PostId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::{self, Catalogue};
use super::layout::{self, Nav};
use super::{Ctx, WebState};
use crate::messages::{ConversationView, MessageView};

/// A peer id string shortened like [`layout::short_peer`].
fn short(peer: &str) -> String {
    format!("…{}", &peer[peer.len().saturating_sub(8)..])
}

/// What a message's kind says, in words.
fn kind_line(t: &Catalogue, m: &MessageView) -> Option<&'static str> {
    Some(match m.kind.as_str() {
        "promise" => t.msg_promise,
        "decline" => t.msg_decline,
        "done" => t.msg_done,
        "promised" => t.msg_promised_elsewhere,
        _ => return None,
    })
}

/// What a message's delivery state says, in words.
fn state_word(t: &Catalogue, state: &str) -> &'static str {
    match state {
        "queued" => t.st_queued,
        "sent" => t.st_sent,
        "delivered" => t.st_delivered,
        "read" => t.st_read,
        "expired" => t.st_expired,
        "unread" => t.st_unread,
        _ => t.st_seen,
    }
}

/// One message in a thread.
pub fn message(t: &Catalogue, m: &MessageView) -> Markup {
    html! {
        li.msg.mine[m.mine] id={"m-" (m.id)} {
            @if let Some(k) = kind_line(t, m) { p.kind-line { (k) } }
            @if !m.text.is_empty() { p.text { (m.text) } }
            p.meta {
                (if m.mine { t.you } else { t.them }) " · " (layout::time(m.at))
                @if m.mine { " · " span.state { (state_word(t, &m.state)) } }
            }
        }
    }
}

/// One conversation as a row of the inbox.
pub fn row(t: &Catalogue, c: &ConversationView) -> Markup {
    html! {
        li.conv id={"c-" (c.id)} {
            a href={"/conversations/" (c.id)} {
                strong { (c.title) }
                @if c.unread > 0 { " " span.badge.unread { (i18n::fill(t.n_unread, &[("n", &c.unread.to_string())])) } }
            }
            p.meta {
                (if c.role == "author" { t.role_author } else { t.role_asker }) " · " (short(&c.peer))
                @if c.promised { " · " (t.status_promised) }
                @if c.done { " · " (t.status_fulfilled) }
                @if let Some(m) = &c.last { " · " (layout::time(m.at)) }
            }
            @if let Some(m) = &c.last { p.snippet { (layout::snippet(&m.text, 120)) } }
        }
    }
}

/// `GET /inbox`.
pub async fn page(ctx: Ctx, State(state): State<WebState>) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let t = ctx.t;
    let inbox = match state.node().inbox().await {
        Ok(i) => i,
        Err(e) => return super::status::unavailable(&ctx, &e),
    };
    let body = html! {
        h1 { (t.inbox_title) }
        p.lead { (t.inbox_lead) }
        section aria-labelledby="conv-h" {
            h2 #conv-h { (t.conversations) }
            ul #conversations .convs aria-live="polite" {
                @for c in &inbox.conversations { (row(t, c)) }
            }
            @if inbox.conversations.is_empty() { p #no-conv .empty { (t.inbox_empty) } }
        }
        @if !inbox.requests.is_empty() {
            section aria-labelledby="req-h" {
                h2 #req-h { (t.message_requests) }
                p.hint { (t.message_requests_hint) }
                ul.convs { @for c in &inbox.requests { (row(t, c)) } }
            }
        }
    };
    layout::page_live(
        &ctx,
        t.inbox_title,
        Nav::Inbox,
        Some("/live?view=inbox"),
        body,
    )
    .into_response()
}

/// The conversation page's content.
pub fn render(
    t: &Catalogue,
    csrf: &str,
    c: &ConversationView,
    messages: &[MessageView],
    error: Option<&str>,
    draft: &str,
) -> Markup {
    let action = format!("/conversations/{}", c.id);
    let author = c.role == "author";
    html! {
        p { a href={"/posts/" (c.post)} { "← " (c.title) } }
        h1 { (i18n::fill(t.conversation_with, &[("peer", &short(&c.peer))])) }
        @if c.promised_elsewhere { p.notice { (t.msg_promised_elsewhere) } }
        ol #messages .thread aria-live="polite" {
            @for m in messages { (message(t, m)) }
        }
        form method="post" action=(action) {
            (layout::csrf_field(csrf))
            input type="hidden" name="kind" value="reply";
            (layout::field(t.message_label, "text", error, None, html! {
                textarea #text name="text" rows="3" aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[layout::described_by("text", false, error.is_some())] { (draft) }
            }))
            div.actions { button type="submit" { (t.send_button) } }
        }
        @if author && !c.done {
            section aria-labelledby="handover-h" {
                h2 #handover-h { (t.handover) }
                div.actions {
                    @if !c.promised {
                        form.inline method="post" action=(action) {
                            (layout::csrf_field(csrf))
                            input type="hidden" name="kind" value="promise";
                            button type="submit" { (t.promise_button) }
                        }
                    } @else {
                        form.inline method="post" action=(action) {
                            (layout::csrf_field(csrf))
                            input type="hidden" name="kind" value="done";
                            button type="submit" { (t.done_button) }
                        }
                        form.inline method="post" action=(action) {
                            (layout::csrf_field(csrf))
                            input type="hidden" name="kind" value="decline";
                            button.secondary type="submit" { (t.decline_button) }
                        }
                    }
                }
            }
        }
        @if !author && c.promised && !c.done {
            form method="post" action=(action) {
                (layout::csrf_field(csrf))
                input type="hidden" name="kind" value="decline";
                button.secondary type="submit" { (t.decline_button) }
            }
        }
    }
}

async fn show(ctx: &Ctx, state: &WebState, id: &str, error: Option<&str>, draft: &str) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(ctx).into_response();
    };
    let node = state.node();
    let Ok(cid) = node.resolve_conversation(id).await else {
        return super::post::missing(ctx);
    };
    let thread = match node.thread(&cid, true).await {
        Ok(t) => t,
        Err(e) => return super::status::unavailable(ctx, &e),
    };
    let live = format!(
        "/live?view=conversation&conversation={}",
        thread.conversation.id
    );
    let body = render(
        ctx.t,
        &s.csrf,
        &thread.conversation,
        &thread.messages,
        error,
        draft,
    );
    let mut r = layout::page_live(
        ctx,
        &thread.conversation.title,
        Nav::Inbox,
        Some(&live),
        body,
    )
    .into_response();
    if error.is_some() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// `GET /conversations/{id}` (marks the other side's messages read).
pub async fn conversation(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Response {
    show(&ctx, &state, &id, None, "").await
}

/// What the conversation's forms send.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MessageForm {
    /// `reply`, `promise`, `decline` or `done`.
    pub kind: String,
    /// The words.
    pub text: String,
}

/// A node error about a message, in words.
fn message_error(t: &Catalogue, e: &crate::node::Error) -> String {
    use crate::messages::Error as M;
    match e {
        crate::node::Error::Messages(M::OwnPost) => t.e_own_post.into(),
        crate::node::Error::Messages(M::NotLive(_)) => t.e_not_live.into(),
        crate::node::Error::Messages(M::Blocked) => t.e_blocked.into(),
        crate::node::Error::Messages(M::Text(_)) => t.e_text.into(),
        other => other.to_string(),
    }
}

/// `POST /conversations/{id}`: writes (or promises, declines, marks done).
pub async fn send(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<MessageForm>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let node = state.node();
    let Ok(cid) = node.resolve_conversation(&id).await else {
        return super::post::missing(&ctx);
    };
    let Ok(kind) = form.kind.parse::<MessageKind>() else {
        return super::post::missing(&ctx);
    };
    match node.send_message(&cid, kind, form.text.trim()).await {
        Ok(sent) => super::see_other(&format!(
            "/conversations/{}?notice=sent",
            sent.conversation.id
        )),
        Err(e) => {
            show(
                &ctx,
                &state,
                &id,
                Some(&message_error(ctx.t, &e)),
                &form.text,
            )
            .await
        }
    }
}

/// `POST /posts/{id}/reply`: the first private message about someone else's post.
pub async fn reply(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<MessageForm>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let Ok(post) = id.parse::<PostId>() else {
        return super::post::missing(&ctx);
    };
    match state.node().reply(&post, form.text.trim()).await {
        Ok(sent) => super::see_other(&format!(
            "/conversations/{}?notice=sent",
            sent.conversation.id
        )),
        Err(e) => {
            super::post::show(
                &ctx,
                &state,
                &id,
                Some(&message_error(ctx.t, &e)),
                &form.text,
            )
            .await
        }
    }
}
