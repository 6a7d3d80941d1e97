//! A post's page: its details, its matches with their reasons, the author's other
//! posts, and blocking the author.

use aidmesh_proto::{PostId, Status, VerifiedPost};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use maud::{html, Markup};

use super::i18n::{self, Catalogue};
use super::layout::{self, Nav};
use super::{Ctx, WebState};
use crate::identity::{author_peer_id, peer_id_author};
use crate::matcher::Match;
use crate::store::Query;

/// Matches shown on a post's page.
pub const MATCHES: usize = 10;
/// The author's other posts shown.
pub const OTHERS: usize = 6;

/// The "no such post" page.
pub fn missing(ctx: &Ctx) -> Response {
    let t = ctx.t;
    let body = html! { h1 { (t.post_missing) } p { a href="/" { (t.nav_board) } } };
    let mut r = layout::page(ctx, t.post_missing, Nav::None, body).into_response();
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// `GET /posts/{id}`.
pub async fn page(ctx: Ctx, State(state): State<WebState>, Path(id): Path<String>) -> Response {
    show(&ctx, &state, &id, None, "").await
}

/// The post page, with a reply that could not be sent (its error and its words).
pub async fn show(
    ctx: &Ctx,
    state: &WebState,
    id: &str,
    reply_error: Option<&str>,
    draft: &str,
) -> Response {
    let Some(session) = ctx.session.clone() else {
        return super::login::needed(ctx).into_response();
    };
    let Ok(id) = id.parse::<PostId>() else {
        return missing(ctx);
    };
    let node = state.node();
    let post = match node.get(&id) {
        Ok(Some(p)) => p,
        Ok(None) => return missing(ctx),
        Err(e) => return super::status::unavailable(ctx, &e),
    };
    let matches = node.matches_for(&id, MATCHES).unwrap_or_default();
    let others = node
        .query(&Query {
            author: Some(post.post().author),
            limit: OTHERS + 1,
            ..Query::default()
        })
        .unwrap_or_default();
    let me = node.peer_id();
    let reply = Reply {
        error: reply_error,
        draft,
    };
    let body = render(ctx.t, &session.csrf, &post, &matches, &others, &me, &reply);
    let mut r = layout::page(ctx, &post.post().title, Nav::None, body).into_response();
    if reply_error.is_some() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// The "Reply privately" form's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reply<'a> {
    /// Why the last try was not sent.
    pub error: Option<&'a str>,
    /// What was typed.
    pub draft: &'a str,
}

/// The post page's main content.
pub fn render(
    t: &Catalogue,
    csrf: &str,
    post: &VerifiedPost,
    matches: &[Match],
    others: &[VerifiedPost],
    me: &PeerId,
    reply: &Reply<'_>,
) -> Markup {
    let p = post.post();
    let id = p.id.to_string();
    let author = author_peer_id(&p.author);
    let mine = author.as_ref() == Some(me);
    let others: Vec<&VerifiedPost> = others
        .iter()
        .filter(|o| o.post().id != p.id)
        .take(OTHERS)
        .collect();
    html! {
        article class={"post k-" (p.kind.as_str())} {
            p.meta {
                span class={"kind k-" (p.kind.as_str())} { (i18n::kind_name(t, p.kind)) }
                " · " (layout::status_badge(t, p.status))
            }
            h1 { (p.title) }
            @if !p.body.is_empty() { div.body { (p.body) } }
            dl.details {
                dt { (t.field_category) } dd { (i18n::category_name(t, p.category)) }
                @if !p.tags.is_empty() {
                    dt { (t.field_tags) }
                    dd { ul.tags { @for tag in &p.tags { li { a href={"/?tag=" (tag)} { "#" (tag) } } } } }
                }
                @if let Some(g) = &p.location {
                    dt { (t.field_location) }
                    dd { (i18n::fill(t.near_place, &[("place", g)])) " " a href={"/?near=" (g) "&km=5"} { (t.posts_near_here) } }
                }
                @if let Some(q) = p.quantity { dt { (t.field_quantity) } dd { (q) } }
                @if let Some(c) = &p.contact { dt { (t.contact) } dd { (c) } }
                dt { (t.field_circle) } dd { (p.circle) }
                dt { (t.author) } dd { (layout::author_label(t, p, me)) }
                dt { (t.posted) } dd { (layout::time(p.created_at)) }
                @if p.updated_at != p.created_at { dt { (t.updated) } dd { (layout::time(p.updated_at)) } }
                dt { (t.field_expires) } dd { (layout::time(p.expires_at)) }
            }
            @if mine && p.status != Status::Withdrawn {
                div.actions {
                    a.button href={"/posts/" (id) "/edit"} { (t.edit) }
                    " "
                    (super::mine::status_buttons(t, csrf, p))
                }
            }
        }
        @if !mine && matches!(p.status.as_str(), "open" | "promised") {
            section aria-labelledby="reply-h" {
                h2 #reply-h { (t.reply_privately) }
                form method="post" action={"/posts/" (id) "/reply"} {
                    (layout::csrf_field(csrf))
                    (layout::field(t.message_label, "text", reply.error, Some(t.reply_hint), html! {
                        textarea #text name="text" rows="3" maxlength="2000" aria-invalid=[reply.error.map(|_| "true")]
                            aria-describedby=[layout::described_by("text", true, reply.error.is_some())] { (reply.draft) }
                    }))
                    div.actions { button type="submit" { (t.send_privately) } }
                }
            }
        }
        section aria-labelledby="matches-h" {
            h2 #matches-h { (t.matches_title) }
            @if matches.is_empty() {
                p.empty { (t.matches_none) }
            } @else {
                ol.matches {
                    @for m in matches {
                        li {
                            (layout::card(t, &m.post, me))
                            p.reasons {
                                (t.why) ": "
                                @for (i, r) in m.scored.reasons.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (i18n::reason(t, r))
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !others.is_empty() {
            section aria-labelledby="others-h" {
                h2 #others-h { (if mine { t.your_other_posts } else { t.authors_other_posts }) }
                div.cards { @for o in others { (layout::card(t, o.post(), me)) } }
            }
        }
        @if let (Some(a), false) = (author, mine) {
            section.danger aria-labelledby="block-h" {
                h2 #block-h { (t.block_title) }
                p { (t.block_explain) }
                form method="post" action={"/authors/" (a) "/block"} {
                    (layout::csrf_field(csrf))
                    button.danger type="submit" { (t.block_button) }
                }
            }
        }
    }
}

/// `POST /authors/{author}/block`: blocks the author (their posts are removed and no
/// more are stored), then back to the board.
pub async fn block(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(author): Path<String>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let Some(key) = author
        .parse::<PeerId>()
        .ok()
        .and_then(|p| peer_id_author(&p))
    else {
        return missing(&ctx);
    };
    if author.parse::<PeerId>().ok() == Some(state.node().peer_id()) {
        return missing(&ctx);
    }
    match state.node().block(&key) {
        Ok(_) => super::see_other("/?notice=blocked"),
        Err(e) => super::status::unavailable(&ctx, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::{Reason, Scored};
    use crate::web::i18n::{EN, ES};
    use crate::Identity;
    use aidmesh_proto::{Category, Kind};

    fn verified(who: &Identity, kind: Kind, title: &str) -> VerifiedPost {
        let now = crate::clock::now_ms();
        let p = crate::Draft::new(kind, Category::Goods, title)
            .into_post(who.author(), now)
            .unwrap();
        p.sign(who.signing_key()).unwrap().verify(now).unwrap()
    }

    #[test]
    fn shows_matches_with_reasons_in_the_pages_language() {
        let (me, them) = (
            Identity::from_secret([1; 32]),
            Identity::from_secret([2; 32]),
        );
        let post = verified(&them, Kind::Offer, "Coats");
        let other = verified(&me, Kind::Request, "Need a coat");
        let m = Match {
            post: other.post().clone(),
            scored: Scored {
                score: 0.8,
                relevance: 0.0,
                reasons: vec![
                    Reason::Category(Category::Goods),
                    Reason::Tags(2),
                    Reason::Distance(3.2),
                ],
            },
        };
        let html = render(
            &ES,
            "tok",
            &post,
            std::slice::from_ref(&m),
            &[],
            &me.peer_id(),
            &Reply::default(),
        )
        .into_string();
        assert!(
            html.contains("misma categoría (Cosas), 2 etiquetas en común, a unos 3 km"),
            "{html}"
        );
        assert!(
            html.contains("/block\""),
            "someone else's post can be blocked"
        );
        assert!(!html.contains("/edit\""), "and not edited");
        let own = render(
            &EN,
            "tok",
            &post,
            &[],
            &[],
            &them.peer_id(),
            &Reply::default(),
        )
        .into_string();
        assert!(own.contains("/edit\"") && !own.contains("/block\""));
        assert!(own.contains("No matching posts yet."));
        assert!(
            !own.contains("Reply privately"),
            "no replying to one's own post"
        );
        assert!(html.contains("Responder en privado"));
    }
}
