//! My posts: every post of this node, any status, with edit, fulfil and withdraw.

use aidmesh_proto::{Post, PostId, Status};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::Catalogue;
use super::layout::{self, Nav};
use super::{Ctx, WebState};
use crate::store::{Query, StatusFilter};

/// Most of my posts listed.
pub const MAX_MINE: usize = 200;

/// The buttons that change a post's status (each its own small form).
pub fn status_buttons(t: &Catalogue, csrf: &str, p: &Post) -> Markup {
    let action = format!("/posts/{}/status", p.id);
    // By name: `promised` (a handover agreed in a conversation) can be fulfilled too.
    let open = matches!(p.status.as_str(), "open" | "promised");
    html! {
        @if open {
            form.inline method="post" action=(action) {
                (layout::csrf_field(csrf))
                input type="hidden" name="to" value="fulfilled";
                button type="submit" { (t.fulfil_button) }
            }
            " "
        }
        @if p.status != Status::Withdrawn {
            form.inline method="post" action=(action) {
                (layout::csrf_field(csrf))
                input type="hidden" name="to" value="withdrawn";
                button.danger type="submit" { (t.withdraw_button) }
            }
        }
    }
}

/// `GET /mine`.
pub async fn page(ctx: Ctx, State(state): State<WebState>) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(&ctx).into_response();
    };
    let t = ctx.t;
    let node = state.node();
    let me = node.peer_id();
    let Some(author) = crate::identity::peer_id_author(&me) else {
        return super::status::unavailable(&ctx, &crate::node::Error::Closed);
    };
    let posts = match node.query(&Query {
        author: Some(author),
        status: StatusFilter::Any,
        limit: MAX_MINE,
        ..Query::default()
    }) {
        Ok(p) => p,
        Err(e) => return super::status::unavailable(&ctx, &e),
    };
    let body = html! {
        h1 { (t.mine_title) }
        @if posts.is_empty() {
            p.empty { (t.mine_empty) " " a href="/new" { (t.board_empty_new) } }
        }
        div.cards {
            @for p in &posts {
                div.mine {
                    (layout::card(t, p.post(), &me))
                    @if p.post().status != Status::Withdrawn {
                        div.actions {
                            a.button href={"/posts/" (p.post().id) "/edit"} { (t.edit) }
                            " " (status_buttons(t, &s.csrf, p.post()))
                        }
                    }
                }
            }
        }
    };
    layout::page(&ctx, t.mine_title, Nav::Mine, body).into_response()
}

/// The status change a form asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatusForm {
    /// `fulfilled` or `withdrawn`.
    pub to: String,
}

/// `POST /posts/{id}/status`.
pub async fn set_status(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let Ok(id) = id.parse::<PostId>() else {
        return super::post::missing(&ctx);
    };
    let node = state.node();
    let result = match form.to.as_str() {
        "fulfilled" => node.fulfil(&id).await,
        "withdrawn" => node.withdraw(&id).await,
        _ => return super::post::missing(&ctx),
    };
    match result {
        Ok(p) => super::see_other(&format!("/posts/{}?notice={}", p.id, form.to)),
        Err(crate::node::Error::NotFound(_) | crate::node::Error::NotAuthor(_)) => {
            super::post::missing(&ctx)
        }
        Err(e) => super::status::unavailable(&ctx, &e),
    }
}
