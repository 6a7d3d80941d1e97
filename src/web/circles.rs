//! Circles: the ones this node has joined, joining one with an invite code (saved in
//! `config.toml`, as the CLI does), and making an invite with its QR code.

use axum::extract::{Query as UrlQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n;
use super::layout::{self, Nav};
use super::{Ctx, WebState};

/// An invite code's QR code as an SVG image (dark modules on white), labelled.
pub fn qr_svg(code: &str, label: &str) -> Option<String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).ok()?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    let label = maud::html! { (label) }.into_string();
    Some(svg[start..].replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{label}\""),
        1,
    ))
}

/// The join form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JoinForm {
    /// An invite code.
    pub code: String,
}

/// Which circle to invite to.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InviteQuery {
    /// The circle.
    pub circle: String,
}

fn render(ctx: &Ctx, csrf: &str, circles: &[String], code: &str, error: Option<&str>) -> Markup {
    let t = ctx.t;
    html! {
        h1 { (t.circles_title) }
        p.lead { (t.circles_lead) }
        section aria-labelledby="joined-h" {
            h2 #joined-h { (t.joined_circles) }
            ul.circles {
                @for c in circles {
                    li { a href={"/?circle=" (c)} { (c) } " — " a href={"/circles/invite?circle=" (c)} { (t.make_invite) } }
                }
            }
        }
        section aria-labelledby="join-h" {
            h2 #join-h { (t.join_title) }
            form method="post" action="/circles/join" {
                (layout::csrf_field(csrf))
                (layout::field(t.invite_code, "code", error, Some(t.invite_code_hint), html! {
                    textarea #code name="code" rows="3" spellcheck="false" autocapitalize="none"
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[layout::described_by("code", true, error.is_some())] { (code) }
                }))
                div.actions { button type="submit" { (t.join_button) } }
            }
        }
    }
}

async fn show(ctx: &Ctx, state: &WebState, code: &str, error: Option<&str>) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(ctx).into_response();
    };
    let circles = match state.node().status().await {
        Ok(s) => s.circles,
        Err(e) => return super::status::unavailable(ctx, &e),
    };
    let mut r = layout::page(
        ctx,
        ctx.t.circles_title,
        Nav::Circles,
        render(ctx, &s.csrf, &circles, code, error),
    )
    .into_response();
    if error.is_some() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// `GET /circles`.
pub async fn page(ctx: Ctx, State(state): State<WebState>) -> Response {
    show(&ctx, &state, "", None).await
}

/// `POST /circles/join`: joins the invite's circle, dials its peers and saves both in
/// `config.toml` so the next run starts in the circle too.
pub async fn join(ctx: Ctx, State(state): State<WebState>, Form(form): Form<JoinForm>) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let t = ctx.t;
    let code = form.code.trim();
    let joining = match crate::invite::read(code) {
        Ok(j) => j,
        Err(_) => return show(&ctx, &state, code, Some(t.invite_bad)).await,
    };
    if let Err(e) = crate::invite::save(&state.data_dir().config_file(), &joining) {
        tracing::warn!(error = %e, "cannot save the joined circle");
        return show(&ctx, &state, code, Some(&e.to_string())).await;
    }
    match state.node().join_invite(&joining).await {
        Ok(_) => super::see_other(&format!("/?circle={}&notice=joined", joining.circle)),
        Err(e) => show(&ctx, &state, code, Some(&e.to_string())).await,
    }
}

/// `GET /circles/invite?circle=NAME`: an invite code for the circle, as text and as a
/// QR code to scan with a phone.
pub async fn invite(
    ctx: Ctx,
    State(state): State<WebState>,
    UrlQuery(q): UrlQuery<InviteQuery>,
) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    let t = ctx.t;
    let invite = match state.node().invite(&q.circle).await {
        Ok(i) => i,
        Err(_) => return super::post::missing(&ctx),
    };
    let code = match invite.encode() {
        Ok(c) => c,
        Err(e) => return show(&ctx, &state, "", Some(&e.to_string())).await,
    };
    let label = i18n::fill(t.qr_label, &[("circle", &q.circle)]);
    let svg = qr_svg(&code, &label);
    let body = html! {
        h1 { (i18n::fill(t.invite_title, &[("circle", &q.circle)])) }
        p.lead { (t.invite_lead) }
        @if let Some(svg) = svg { figure.qr { (layout::trusted(svg)) figcaption { (label) } } }
        div.field {
            label for="invite-code" { (t.invite_code) }
            textarea #invite-code readonly rows="4" spellcheck="false" { (code) }
        }
        p { a href="/circles" { "← " (t.circles_title) } }
    };
    layout::page(&ctx, t.circles_title, Nav::Circles, body).into_response()
}
