//! Alerts: standing filters the node checks every arriving post against. The page
//! lists them with their newest matching posts, adds and removes them, and shows
//! matches live as they arrive.

use aidmesh_proto::{Category, Kind};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};

use super::board::FilterForm;
use super::i18n::{self, Catalogue};
use super::layout::{self, Nav};
use super::{Ctx, WebState};
use crate::alerts::{Alert, AlertFilter, AlertId};

/// Newest matching posts shown under each alert.
pub const SHOWN_PER_ALERT: usize = 3;

/// What an alert looks for, in words.
pub fn describe(t: &Catalogue, f: &AlertFilter) -> String {
    let mut parts = Vec::new();
    if let Some(k) = f.kind {
        parts.push(i18n::kind_plural(t, k).to_string());
    }
    if let Some(c) = f.category {
        parts.push(i18n::category_name(t, c).to_string());
    }
    if let Some(tag) = &f.tag {
        parts.push(format!("#{tag}"));
    }
    if let Some(s) = &f.search {
        parts.push(format!("“{s}”"));
    }
    if let Some(g) = &f.near {
        parts.push(i18n::fill(t.near_place, &[("place", g)]));
    }
    if let Some(c) = &f.circle {
        parts.push(format!("{}: {c}", t.field_circle));
    }
    parts.join(" · ")
}

fn render(
    ctx: &Ctx,
    csrf: &str,
    state: &WebState,
    alerts: &[Alert],
    form: &FilterForm,
    error: Option<&(String, String)>,
) -> Markup {
    let t = ctx.t;
    let me = state.node().peer_id();
    let err = |f: &str| error.filter(|e| e.0 == f).map(|e| e.1.as_str());
    html! {
        h1 { (t.alerts_title) }
        p.lead { (t.alerts_lead) }
        section aria-labelledby="live-h" {
            h2 #live-h { (t.live_matches) }
            ol #live-matches .matches aria-live="polite" {}
            p #live-none .empty { (t.live_matches_none) }
        }
        section aria-labelledby="yours-h" {
            h2 #yours-h { (t.your_alerts) }
            @if alerts.is_empty() { p.empty { (t.alerts_empty) } }
            @for a in alerts {
                article.alert {
                    h3 { (describe(t, &a.filter)) }
                    form.inline method="post" action={"/alerts/" (a.id) "/remove"} {
                        (layout::csrf_field(csrf))
                        button.danger type="submit" aria-label=(i18n::fill(t.remove_alert_named, &[("alert", &describe(t, &a.filter))])) { (t.remove) }
                    }
                    @let listing = a.filter.listing();
                    @let shown = crate::listing::Listing { query: crate::store::Query { limit: SHOWN_PER_ALERT, ..listing.query.clone() }, ..listing };
                    @let found = crate::listing::list(state.node().store(), &shown, crate::clock::now_ms()).unwrap_or_default();
                    @if found.is_empty() { p.empty { (t.alert_nothing_yet) } }
                    div.cards { @for p in &found { (layout::card(t, p.post(), &me)) } }
                }
            }
        }
        section aria-labelledby="add-h" {
            h2 #add-h { (t.add_alert) }
            @if let Some(e) = err("form") { p.error role="alert" { (e) } }
            form method="post" action="/alerts" {
                (layout::csrf_field(csrf))
                div.row {
                    (layout::field(t.filter_kind, "a-kind", err("kind"), None, html! {
                        select #a-kind name="kind" {
                            option value="" { (t.any) }
                            @for k in [Kind::Offer, Kind::Request] { option value=(k.as_str()) selected[form.kind == k.as_str()] { (i18n::kind_plural(t, k)) } }
                        }
                    }))
                    (layout::field(t.field_category, "a-category", err("category"), None, html! {
                        select #a-category name="category" {
                            option value="" { (t.any) }
                            @for c in Category::ALL { option value=(c.as_str()) selected[form.category == c.as_str()] { (i18n::category_name(t, *c)) } }
                        }
                    }))
                }
                div.row {
                    (layout::field(t.filter_tag, "a-tag", err("tag"), None, html! { input #a-tag name="tag" value=(form.tag) autocapitalize="none"; }))
                    (layout::field(t.filter_words, "a-q", err("q"), None, html! { input #a-q name="q" value=(form.q); }))
                    (layout::field(t.filter_near, "a-near", err("near"), None, html! { input #a-near name="near" value=(form.near) maxlength="6" autocapitalize="none"; }))
                }
                div.actions { button type="submit" { (t.add_alert_button) } }
            }
        }
    }
}

async fn show(
    ctx: &Ctx,
    state: &WebState,
    form: &FilterForm,
    error: Option<(String, String)>,
) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(ctx).into_response();
    };
    let alerts = state.node().alerts().list();
    let body = render(ctx, &s.csrf, state, &alerts, form, error.as_ref());
    let mut r = layout::page_live(
        ctx,
        ctx.t.alerts_title,
        Nav::Alerts,
        Some("/live?view=alerts"),
        body,
    )
    .into_response();
    if error.is_some() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// `GET /alerts`.
pub async fn page(ctx: Ctx, State(state): State<WebState>) -> Response {
    show(&ctx, &state, &FilterForm::default(), None).await
}

/// `POST /alerts`: saves an alert with the form's filters.
pub async fn add(
    ctx: Ctx,
    State(state): State<WebState>,
    Form(form): Form<FilterForm>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let t = ctx.t;
    let f = match form.check(t) {
        Ok(f) => f,
        Err(e) => return show(&ctx, &state, &form, Some((e.field.to_string(), e.message))).await,
    };
    let filter = AlertFilter {
        kind: f.kind,
        category: f.category,
        tag: f.tag,
        near: f.near,
        within_km: None,
        search: f.text,
        circle: f.circle,
    };
    match state.node().add_alert(filter) {
        Ok(_) => super::see_other("/alerts?notice=alert_added"),
        Err(crate::node::Error::Alerts(crate::alerts::Error::Empty)) => {
            show(
                &ctx,
                &state,
                &form,
                Some(("form".into(), t.alert_empty_filter.into())),
            )
            .await
        }
        Err(e) => show(&ctx, &state, &form, Some(("form".into(), e.to_string()))).await,
    }
}

/// `POST /alerts/{id}/remove`.
pub async fn remove(ctx: Ctx, State(state): State<WebState>, Path(id): Path<String>) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let Ok(id) = id.parse::<AlertId>() else {
        return super::post::missing(&ctx);
    };
    match state.node().remove_alert(id) {
        Ok(_) => super::see_other("/alerts?notice=alert_removed"),
        Err(_) => super::see_other("/alerts"),
    }
}
