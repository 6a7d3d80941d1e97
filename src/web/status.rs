//! Status in plain words: whether others can reach this node, its peers, when its
//! posts were last seen by a peer, and the numbers behind that.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::i18n;
use super::layout::{self, Nav};
use super::{Ctx, WebState};
use crate::net::Reachable;

/// The page for a node that cannot answer (shutting down, say).
pub fn unavailable(ctx: &Ctx, e: &crate::node::Error) -> Response {
    let t = ctx.t;
    tracing::warn!(error = %e, "web page could not be built");
    let body = html! { h1 { (t.unavailable_title) } p { (t.unavailable_text) } };
    let mut r = layout::page(ctx, t.unavailable_title, Nav::None, body).into_response();
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// `GET /status`.
pub async fn page(ctx: Ctx, State(state): State<WebState>) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let t = ctx.t;
    let node = state.node();
    let (st, peers) = match (node.status().await, node.peers().await) {
        (Ok(s), Ok(p)) => (s, p),
        (Err(e), _) | (_, Err(e)) => return unavailable(&ctx, &e),
    };
    let r = &st.reachability;
    let reach = match r.status {
        Reachable::Public => t.reach_direct,
        _ if !r.relayed_addrs.is_empty() => t.reach_relay,
        _ => t.reach_not_yet,
    };
    let n = |v: usize| v.to_string();
    let body = html! {
        h1 { (t.status_title) }
        p.big { (reach) }
        @if reach == t.reach_not_yet { p.hint { (t.reach_not_yet_hint) } }
        ul.facts {
            li { (i18n::fill(if st.connected_peers == 1 { t.peers_connected_one } else { t.peers_connected }, &[("n", &n(st.connected_peers)), ("direct", &n(r.peers_direct)), ("relayed", &n(r.peers_relayed))])) }
            li {
                @match &r.last_seen_by_peer {
                    Some(seen) => { (t.last_seen) " " (layout::time(seen.at)) " (" (layout::short_peer(&seen.peer_id)) ")." }
                    None => { (t.never_seen) }
                }
            }
            li { (i18n::fill(if st.posts == 1 { t.posts_stored_one } else { t.posts_stored }, &[("n", &st.posts.to_string())])) }
            li { (t.nav_circles) ": " (st.circles.join(", ")) }
            @if r.relay_server { li { (t.relay_server) } }
        }
        @if !peers.is_empty() {
            h2 { (t.peers_title) }
            table {
                thead { tr { th scope="col" { (t.peer) } th scope="col" { (t.connection) } th scope="col" { (t.since) } } }
                tbody {
                    @for p in &peers {
                        tr {
                            td { code { (layout::short_peer(&p.peer_id)) } }
                            td { (if p.relayed { t.via_relay } else { t.direct }) }
                            td { (layout::time(p.since)) }
                        }
                    }
                }
            }
        }
        details {
            summary { (t.details) }
            dl.details {
                dt { (t.your_peer_id) } dd { code { (st.peer_id) } }
                dt { (t.version) } dd { (st.version) }
                dt { (t.traffic) } dd { (i18n::fill(t.traffic_n, &[("sent", &kib(st.bytes_sent)), ("received", &kib(st.bytes_received))])) }
                @for a in &r.direct_addrs { dt { (t.direct_address) } dd { code { (a) } } }
                @for a in &r.relayed_addrs { dt { (t.relayed_address) } dd { code { (a) } } }
            }
        }
    };
    layout::page(&ctx, t.status_title, Nav::Status, body).into_response()
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
