//! The board: open offers and requests of this node's circles, newest first, with
//! filters (kind, category, tag, words, near a place within N km, circle) and pages.
//! On the first page the script adds arriving posts that pass the same filters.

use aidmesh_proto::{Category, Kind, Post, VerifiedPost};
use axum::extract::{Query as UrlQuery, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::{self, Catalogue};
use super::layout::{self, Nav};
use super::{geo, Ctx, WebState};
use crate::store::query::MAX_LIMIT;
use crate::store::Query;

/// Posts per page.
pub const PAGE_SIZE: usize = 50;
/// The last page one can ask for (the store returns at most [`MAX_LIMIT`] per query).
pub const MAX_PAGE: usize = MAX_LIMIT / PAGE_SIZE - 2;
/// The radii offered for "near me", in km.
pub const RADII_KM: &[u32] = &[1, 5, 10, 25, 50, 100];

/// The filters as the board's form sends them (every field optional text).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilterForm {
    /// `offer`, `request` or empty.
    pub kind: String,
    /// A category name or empty.
    pub category: String,
    /// One tag.
    pub tag: String,
    /// Words.
    pub q: String,
    /// A geohash.
    pub near: String,
    /// Radius around `near`, km.
    pub km: String,
    /// One circle.
    pub circle: String,
    /// Page number, from 0.
    pub page: String,
}

/// Filters checked and ready to query.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Offers or requests.
    pub kind: Option<Kind>,
    /// One category.
    pub category: Option<Category>,
    /// One tag.
    pub tag: Option<String>,
    /// Words.
    pub text: Option<String>,
    /// A geohash: with `km`, the centre; alone, a prefix (its cell).
    pub near: Option<String>,
    /// Radius around `near`.
    pub km: Option<u32>,
    /// One circle (else all joined circles).
    pub circle: Option<String>,
    /// Page, from 0.
    pub page: usize,
}

/// A filter value that cannot be used, with the field it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The form field.
    pub field: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl FilterForm {
    /// Checks the filters; the first bad one is named.
    pub fn check(&self, t: &Catalogue) -> Result<Filters, FilterError> {
        let bad = |field: &'static str, message: String| FilterError { field, message };
        let kind = match opt(&self.kind) {
            None => None,
            Some(k) => Some(
                k.parse::<Kind>()
                    .map_err(|_| bad("kind", t.bad_choice.into()))?,
            ),
        };
        let category = match opt(&self.category) {
            None => None,
            Some(c) => Some(
                c.parse::<Category>()
                    .map_err(|_| bad("category", t.bad_choice.into()))?,
            ),
        };
        let km = match opt(&self.km) {
            None => None,
            Some(k) => Some(
                k.parse::<u32>()
                    .ok()
                    .filter(|k| RADII_KM.contains(k))
                    .ok_or_else(|| bad("km", t.bad_choice.into()))?,
            ),
        };
        let page = match opt(&self.page) {
            None => 0,
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|p| *p <= MAX_PAGE)
                .ok_or_else(|| bad("page", t.bad_choice.into()))?,
        };
        let f = Filters {
            kind,
            category,
            tag: opt(&self.tag).map(|s| s.to_lowercase()),
            text: opt(&self.q),
            near: opt(&self.near).map(|s| s.to_lowercase()),
            km,
            circle: opt(&self.circle),
            page,
        };
        let q = f.query_for(None, f.near.clone(), 1);
        if let Err(e) = q.validate() {
            let field = match e.field() {
                "tags" => "tag",
                "near" => "near",
                "circle" => "circle",
                _ => "q",
            };
            let message = match &e {
                crate::store::query::QueryError::Filter(v) => i18n::problem(t, &v.problem),
                _ => e.to_string(),
            };
            return Err(bad(field, message));
        }
        Ok(f)
    }
}

impl Filters {
    fn query_for(&self, circle: Option<String>, near: Option<String>, limit: usize) -> Query {
        Query {
            kind: self.kind,
            category: self.category,
            tag: self.tag.clone(),
            text: self.text.clone(),
            near,
            circle: circle.or_else(|| self.circle.clone()),
            limit,
            ..Query::default()
        }
    }

    /// The store queries whose union is this board (before the distance check): one
    /// per circle and "near" cell.
    pub fn queries(&self, circles: &[String], limit: usize) -> Vec<Query> {
        let circles: Vec<Option<String>> = match &self.circle {
            Some(c) => vec![Some(c.clone())],
            None => circles.iter().cloned().map(Some).collect(),
        };
        let cells: Vec<Option<String>> = match (&self.near, self.km) {
            (Some(c), Some(km)) => geo::cells_around(c, km as f64)
                .unwrap_or_default()
                .into_iter()
                .map(Some)
                .collect(),
            (near, _) => vec![near.clone()],
        };
        let mut out = Vec::with_capacity(circles.len() * cells.len());
        for c in &circles {
            for cell in &cells {
                out.push(self.query_for(c.clone(), cell.clone(), limit));
            }
        }
        out
    }

    /// Whether `post` is within the radius, when there is one.
    pub fn within(&self, post: &Post) -> bool {
        let (Some(centre), Some(km)) = (&self.near, self.km) else {
            return true;
        };
        match (
            geo::decode(centre),
            post.location.as_deref().and_then(geo::decode),
        ) {
            (Some(a), Some(b)) => geo::haversine_km(a, b) <= km as f64,
            _ => false,
        }
    }

    /// Whether an arriving post belongs on this board (for the live updates).
    pub fn admits(&self, post: &Post, circles: &[String], now: u64) -> bool {
        self.queries(circles, 1)
            .iter()
            .any(|q| q.matches(post, now))
            && self.within(post)
    }

    /// The URL query of these filters, without the page.
    pub fn url_query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(k) = self.kind {
            s.append_pair("kind", k.as_str());
        }
        if let Some(c) = self.category {
            s.append_pair("category", c.as_str());
        }
        for (k, v) in [
            ("tag", &self.tag),
            ("q", &self.text),
            ("near", &self.near),
            ("circle", &self.circle),
        ] {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        if let Some(km) = self.km {
            s.append_pair("km", &km.to_string());
        }
        s.finish()
    }
}

/// One page of the board: its posts and whether there are older ones.
pub fn fetch(
    node: &crate::NodeHandle,
    filters: &Filters,
    circles: &[String],
) -> Result<(Vec<VerifiedPost>, bool), crate::node::Error> {
    let offset = filters.page * PAGE_SIZE;
    let want = offset + PAGE_SIZE + 1;
    // A radius drops some of what the cells return: ask for more.
    let limit = if filters.km.is_some() { want * 3 } else { want }.min(MAX_LIMIT);
    let queries = filters.queries(circles, limit);
    let mut all: Vec<VerifiedPost> = if queries.len() == 1 {
        node.query(&queries[0])?
    } else {
        let mut all = Vec::new();
        for q in &queries {
            all.extend(node.query(q)?);
        }
        all.sort_by(|a, b| {
            b.post()
                .updated_at
                .cmp(&a.post().updated_at)
                .then_with(|| a.post().id.0.cmp(&b.post().id.0))
        });
        all.dedup_by(|a, b| a.post().id == b.post().id);
        all
    };
    all.retain(|p| filters.within(p.post()));
    let more = all.len() > offset + PAGE_SIZE;
    let page: Vec<VerifiedPost> = all.into_iter().skip(offset).take(PAGE_SIZE).collect();
    Ok((page, more))
}

/// `GET /`: the board.
pub async fn page(
    ctx: Ctx,
    State(state): State<WebState>,
    UrlQuery(form): UrlQuery<FilterForm>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let t = ctx.t;
    let circles = match state.node().status().await {
        Ok(s) => s.circles,
        Err(e) => return super::status::unavailable(&ctx, &e),
    };
    let checked = form.check(t);
    let (posts, more, error) = match &checked {
        Ok(f) => match fetch(state.node(), f, &circles) {
            Ok((p, more)) => (p, more, None),
            Err(e) => return super::status::unavailable(&ctx, &e),
        },
        Err(e) => (Vec::new(), false, Some(e.clone())),
    };
    let filters = checked.unwrap_or_default();
    let live = (filters.page == 0 && error.is_none())
        .then(|| format!("/live?view=board&{}", filters.url_query()));
    let me = state.node().peer_id();
    let body = render(
        t,
        &form,
        &filters,
        error.as_ref(),
        &circles,
        &posts,
        more,
        &me,
    );
    layout::page_live(&ctx, t.board_title, Nav::Board, live.as_deref(), body).into_response()
}

/// The board's main content.
#[allow(clippy::too_many_arguments)]
pub fn render(
    t: &Catalogue,
    form: &FilterForm,
    filters: &Filters,
    error: Option<&FilterError>,
    circles: &[String],
    posts: &[VerifiedPost],
    more: bool,
    me: &libp2p::PeerId,
) -> Markup {
    let err = |f: &str| error.filter(|e| e.field == f).map(|e| e.message.as_str());
    let base = filters.url_query();
    let page_link = |p: usize| {
        if base.is_empty() {
            format!("/?page={p}")
        } else {
            format!("/?{base}&page={p}")
        }
    };
    html! {
        h1 { (t.board_title) }
        p.lead { (t.board_lead) }
        details.filters open[error.is_some() || !filters.url_query().is_empty()] {
            summary { (t.filters) }
            form method="get" action="/" role="search" {
                div.row {
                    (layout::field(t.filter_kind, "kind", err("kind"), None, html! {
                        select #kind name="kind" {
                            option value="" { (t.any) }
                            @for k in [Kind::Offer, Kind::Request] {
                                option value=(k.as_str()) selected[filters.kind == Some(k)] { (i18n::kind_plural(t, k)) }
                            }
                        }
                    }))
                    (layout::field(t.field_category, "category", err("category"), None, html! {
                        select #category name="category" {
                            option value="" { (t.any) }
                            @for c in Category::ALL {
                                option value=(c.as_str()) selected[filters.category == Some(*c)] { (i18n::category_name(t, *c)) }
                            }
                        }
                    }))
                    @if circles.len() > 1 {
                        (layout::field(t.field_circle, "circle", err("circle"), None, html! {
                            select #circle name="circle" {
                                option value="" { (t.all_my_circles) }
                                @for c in circles {
                                    option value=(c) selected[filters.circle.as_deref() == Some(c.as_str())] { (c) }
                                }
                            }
                        }))
                    }
                }
                div.row {
                    (layout::field(t.filter_tag, "tag", err("tag"), None, html! {
                        input #tag name="tag" value=(form.tag) autocapitalize="none" aria-invalid=[err("tag").map(|_| "true")] aria-describedby=[layout::described_by("tag", false, err("tag").is_some())];
                    }))
                    (layout::field(t.filter_words, "q", err("q"), None, html! {
                        input #q type="search" name="q" value=(form.q);
                    }))
                }
                div.row {
                    (layout::field(t.filter_near, "near", err("near"), Some(t.filter_near_hint), html! {
                        input #near name="near" value=(form.near) autocapitalize="none" spellcheck="false" maxlength="6"
                            aria-invalid=[err("near").map(|_| "true")] aria-describedby=[layout::described_by("near", true, err("near").is_some())];
                    }))
                    (layout::field(t.filter_within, "km", err("km"), None, html! {
                        select #km name="km" {
                            option value="" { (t.its_cell) }
                            @for r in RADII_KM {
                                option value=(r) selected[filters.km == Some(*r)] { (i18n::fill(t.n_km, &[("n", &r.to_string())])) }
                            }
                        }
                    }))
                    button.secondary type="button" data-geo="near" data-precision="5" hidden { (t.use_my_location) }
                }
                div.actions {
                    button type="submit" { (t.show) }
                    " " a href="/" { (t.clear_filters) }
                }
            }
        }
        section aria-labelledby="results-h" {
            h2 #results-h { (t.newest_first) }
            @if let Some(e) = error { p.error role="alert" { (e.message) } }
            div #posts .cards data-insert[filters.page == 0] aria-live="polite" {
                @for p in posts { (layout::card(t, p.post(), me)) }
            }
            @if posts.is_empty() && error.is_none() {
                p #empty .empty { (t.board_empty) " " a href="/new" { (t.board_empty_new) } }
            }
            @if filters.page > 0 || more {
                nav.pager aria-label=(t.pages) {
                    @if filters.page > 0 { a rel="prev" href=(page_link(filters.page - 1)) { "← " (t.newer) } }
                    " "
                    @if more { a rel="next" href=(page_link(filters.page + 1)) { (t.older) " →" } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::EN;
    use crate::Identity;

    fn posts(n: u32) -> (Vec<VerifiedPost>, libp2p::PeerId) {
        let who = Identity::from_secret([7; 32]);
        let now = crate::clock::now_ms();
        let out = (0..n)
            .map(|i| {
                let mut d = crate::Draft::new(Kind::Offer, Category::Food, format!("Soup <{i}>"));
                d.tags = vec!["soup".into()];
                d.location = Some("u33dc".into());
                let p = d.into_post(who.author(), now).unwrap();
                p.sign(who.signing_key()).unwrap().verify(now).unwrap()
            })
            .collect();
        (out, who.peer_id())
    }

    #[test]
    fn renders_cards_escaped_with_links_and_pager() {
        let (ps, me) = posts(3);
        let f = Filters::default();
        let html = render(
            &EN,
            &FilterForm::default(),
            &f,
            None,
            &["commons".into()],
            &ps,
            true,
            &me,
        )
        .into_string();
        assert_eq!(
            html.matches("<article class=\"card k-offer\"").count(),
            3,
            "{html}"
        );
        assert!(html.contains("Soup &lt;0&gt;"), "titles are escaped");
        assert!(html.contains("href=\"/?tag=soup\""));
        assert!(html.contains("rel=\"next\" href=\"/?page=1\""));
        assert!(!html.contains("rel=\"prev\""));
        assert!(html.contains("data-insert"), "page 1 takes live posts");
        assert!(html.contains(">you<"), "own posts say so");
    }

    #[test]
    fn a_bad_filter_is_named() {
        let form = FilterForm {
            tag: "Not A Tag".into(),
            ..FilterForm::default()
        };
        assert_eq!(form.check(&EN).unwrap_err().field, "tag");
        let form = FilterForm {
            near: "u33dc".into(),
            km: "7".into(),
            ..FilterForm::default()
        };
        assert_eq!(form.check(&EN).unwrap_err().field, "km");
        let form = FilterForm {
            near: "aaaa".into(),
            ..FilterForm::default()
        };
        assert_eq!(form.check(&EN).unwrap_err().field, "near");
        let ok = FilterForm {
            kind: "offer".into(),
            near: "u33dc".into(),
            km: "10".into(),
            page: "2".into(),
            ..FilterForm::default()
        };
        let f = ok.check(&EN).unwrap();
        assert_eq!(f.page, 2);
        assert_eq!(f.url_query(), "kind=offer&near=u33dc&km=10");
    }

    #[test]
    fn near_me_admits_by_distance() {
        let (ps, _) = posts(1);
        let circles = vec![crate::proto::rules::DEFAULT_CIRCLE.to_string()];
        let near = |g: &str, km| Filters {
            near: Some(g.into()),
            km: Some(km),
            ..Filters::default()
        };
        assert!(near("u33dc", 1).admits(ps[0].post(), &circles, crate::clock::now_ms()));
        // u33d9 is a neighbouring cell, a few km away.
        assert!(near("u33d9", 10).admits(ps[0].post(), &circles, crate::clock::now_ms()));
        assert!(!near("ezs42", 100).admits(ps[0].post(), &circles, crate::clock::now_ms()));
    }
}
