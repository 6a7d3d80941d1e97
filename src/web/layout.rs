//! The page shell (landmarks, navigation, language switch, live indicator) and the
//! pieces several pages show: post cards, times, form fields with their errors.

use aidmesh_proto::{Post, Status};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::i18n::{self, Catalogue, Lang};
use super::{assets, csrf, Ctx};
use crate::api::json::rfc3339;
use crate::identity::author_peer_id;

/// Which navigation entry is the current page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    /// The board.
    Board,
    /// The new post form.
    New,
    /// My posts.
    Mine,
    /// The inbox and conversations.
    Inbox,
    /// Alerts.
    Alerts,
    /// Circles.
    Circles,
    /// Status.
    Status,
    /// A page outside the navigation.
    None,
}

/// A whole page: `title`, then `main` as the page's main landmark. `live` names the
/// event stream the script should open (`None`: no live updates on this page).
pub fn page(ctx: &Ctx, title: &str, nav: Nav, main: Markup) -> Markup {
    page_live(ctx, title, nav, None, main)
}

/// [`page`] with a live event stream at `live` (a `/live?...` URL).
pub fn page_live(ctx: &Ctx, title: &str, nav: Nav, live: Option<&str>, main: Markup) -> Markup {
    let t = ctx.t;
    let logged_in = ctx.session.is_some();
    let entries: [(Nav, &str, &str); 7] = [
        (Nav::Board, "/", t.nav_board),
        (Nav::New, "/new", t.nav_new),
        (Nav::Inbox, "/inbox", t.nav_inbox),
        (Nav::Mine, "/mine", t.nav_mine),
        (Nav::Alerts, "/alerts", t.nav_alerts),
        (Nav::Circles, "/circles", t.nav_circles),
        (Nav::Status, "/status", t.nav_status),
    ];
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · aidmesh" }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::js_path()) defer {}
            }
            body data-live=[live.filter(|_| logged_in)]
                data-t-live=(t.live_on) data-t-connecting=(t.live_connecting)
                data-t-offline=(t.live_offline) data-t-missed=(t.live_missed)
                data-t-geo-denied=(t.geo_denied) data-t-geo-shared=(t.geo_shared)
                {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    a.brand href="/" { "aidmesh" }
                    @if logged_in {
                        nav aria-label=(t.nav_label) {
                            ul {
                                @for (n, href, label) in entries {
                                    li { a href=(href) aria-current=[(n == nav).then_some("page")] { (label) } }
                                }
                            }
                        }
                        span #live-status .live role="status" aria-live="polite" data-state="off"
                            hidden[live.is_none()] { (t.live_connecting) }
                    }
                }
                main #main tabindex="-1" {
                    @if let Some(n) = notice_of(ctx) { (notice(n)) }
                    (main)
                }
                footer {
                    nav.langs aria-label=(t.language) {
                        @for l in Lang::ALL {
                            @if *l == ctx.lang {
                                span aria-current="true" lang=(l.code()) { (l.name()) }
                            } @else {
                                a href=(lang_link(&ctx.here, *l)) lang=(l.code()) hreflang=(l.code()) { (l.name()) }
                            }
                            " "
                        }
                    }
                    @if let Some(s) = &ctx.session {
                        form method="post" action="/logout" {
                            (csrf_field(&s.csrf))
                            button.link type="submit" { (t.logout) }
                        }
                    }
                }
            }
        }
    }
}

/// The `?notice=` line of this page, if it names one.
fn notice_of(ctx: &Ctx) -> Option<&'static str> {
    let query = ctx.here.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "notice")
        .and_then(|(_, v)| i18n::notice(ctx.t, &v))
}

/// `here` with `lang=<l>` in its query (any earlier `lang` dropped).
fn lang_link(here: &str, l: Lang) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != "lang" {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair("lang", l.code());
    format!("{path}?{}", out.finish())
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token); }
}

/// A time the browser shows in its local time zone (UTC without script).
pub fn time(ms: u64) -> Markup {
    let iso = rfc3339(ms);
    let plain = format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "));
    html! { time datetime=(iso) { (plain) } }
}

/// A short, readable form of an author's peer id; "you" for this node.
pub fn author_label(t: &Catalogue, post: &Post, me: &libp2p::PeerId) -> String {
    match author_peer_id(&post.author) {
        Some(p) if p == *me => t.you.to_string(),
        Some(p) => short_peer(&p),
        None => post.author.to_string().chars().take(12).collect(),
    }
}

/// The last 8 characters of a peer id (the start is the same for every ed25519 key).
pub fn short_peer(p: &libp2p::PeerId) -> String {
    let s = p.to_string();
    format!("…{}", &s[s.len().saturating_sub(8)..])
}

/// The CSS class and words for a post's status.
pub fn status_badge(t: &Catalogue, status: Status) -> Markup {
    let name = status.as_str();
    html! { span class={"badge s-" (name)} { (i18n::status_name(t, status)) } }
}

/// One post as a card on a list: title linking to it, kind, category, time, place,
/// tags and the start of the description.
pub fn card(t: &Catalogue, post: &Post, me: &libp2p::PeerId) -> Markup {
    let id = post.id.to_string();
    let kind = post.kind.as_str();
    html! {
        article class={"card k-" (kind)} id={"p-" (id)} {
            h3 { a href={"/posts/" (id)} { (post.title) } }
            p.meta {
                span class={"kind k-" (kind)} { (i18n::kind_name(t, post.kind)) }
                " · " (i18n::category_name(t, post.category))
                @if post.status != Status::Open { " · " (status_badge(t, post.status)) }
                " · " (time(post.updated_at))
                @if let Some(g) = &post.location { " · " span.place { (i18n::fill(t.near_place, &[("place", g)])) } }
                @if let Some(q) = post.quantity { " · " (i18n::fill(t.quantity_n, &[("n", &q.to_string())])) }
                " · " span.author { (author_label(t, post, me)) }
            }
            @if !post.body.is_empty() { p.snippet { (snippet(&post.body, 160)) } }
            @if !post.tags.is_empty() {
                ul.tags aria-label=(t.field_tags) {
                    @for tag in &post.tags { li { a href={"/?tag=" (tag)} { "#" (tag) } } }
                }
            }
        }
    }
}

/// At most `max` characters of `text`, cut at a word, with an ellipsis when cut.
pub fn snippet(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = cut.rsplit_once(' ').map(|(a, _)| a).unwrap_or(&cut);
    format!("{cut}…")
}

/// A labelled form field with its error (if any) right after it, tied to the input
/// by `aria-describedby` and marked `aria-invalid`.
pub fn field(
    label: &str,
    name: &str,
    error: Option<&str>,
    hint: Option<&str>,
    input: Markup,
) -> Markup {
    html! {
        div.field.has-error[error.is_some()] {
            label for=(name) { (label) }
            (input)
            @if let Some(h) = hint { p.hint id={(name) "-hint"} { (h) } }
            @if let Some(e) = error { p.error id={(name) "-error"} role="alert" { (e) } }
        }
    }
}

/// The `aria-describedby` value for a field with an optional hint and error.
pub fn described_by(name: &str, hint: bool, error: bool) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("{name}-hint"));
    }
    if error {
        ids.push(format!("{name}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A notice line at the top of a page (after a change, say).
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// Escaped text as markup (for catalogue strings with no markup in them).
pub fn text(s: &str) -> Markup {
    html! { (s) }
}

/// Raw markup we built ourselves (the QR code's SVG).
pub fn trusted(s: String) -> Markup {
    PreEscaped(s)
}
