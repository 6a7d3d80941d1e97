//! The new post form and the edit form. Both are plain forms: the node validates,
//! and each of its errors is shown next to the field it names, with nothing posted.

use aidmesh_proto::{Category, Field, Kind, Post, PostId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::{self, Catalogue};
use super::layout::{self, Nav};
use super::{Ctx, WebState};
use crate::draft::{Draft, Edit, EditError};
use crate::node;

/// The lifetimes offered under "Expires", in days; 14 is the node's default.
pub const LIFETIMES_DAYS: &[u64] = &[1, 3, 7, 14, 30, 90];
/// The lifetime selected when the form opens.
pub const DEFAULT_DAYS: u64 = 14;

/// What the form sends (all text; checked on the server).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PostForm {
    /// `offer` or `request`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Description.
    pub body: String,
    /// Category name.
    pub category: String,
    /// Tags, separated by commas or spaces.
    pub tags: String,
    /// Geohash.
    pub location: String,
    /// A whole number.
    pub quantity: String,
    /// Days, or empty to keep (edit).
    pub expires: String,
    /// Circle (shown when the node has more than one).
    pub circle: String,
}

/// A problem with one field of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The form field's name.
    pub field: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

/// The form's field for a rule's field.
pub fn form_field(f: Field) -> &'static str {
    match f {
        Field::Title => "title",
        Field::Body => "body",
        Field::Tags => "tags",
        Field::Location => "location",
        Field::Quantity => "quantity",
        Field::ExpiresAt | Field::CreatedAt | Field::UpdatedAt => "expires",
        Field::Circle => "circle",
        _ => "form",
    }
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl PostForm {
    fn tags_list(&self) -> Vec<String> {
        self.tags
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|s| s.trim().trim_start_matches('#').to_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn quantity(&self, t: &Catalogue) -> Result<Option<u32>, FieldError> {
        match opt(&self.quantity) {
            None => Ok(None),
            Some(q) => q.parse::<u32>().map(Some).map_err(|_| FieldError {
                field: "quantity",
                message: t.quantity_whole_number.into(),
            }),
        }
    }

    fn expires_secs(&self, t: &Catalogue) -> Result<Option<u64>, FieldError> {
        match opt(&self.expires) {
            None => Ok(None),
            Some(d) => d
                .parse::<u64>()
                .ok()
                .filter(|d| LIFETIMES_DAYS.contains(d))
                .map(|d| Some(d * 86_400))
                .ok_or_else(|| FieldError {
                    field: "expires",
                    message: t.bad_choice.into(),
                }),
        }
    }

    fn category(&self, t: &Catalogue) -> Result<Option<Category>, FieldError> {
        match opt(&self.category) {
            None => Ok(None),
            Some(c) => c.parse::<Category>().map(Some).map_err(|_| FieldError {
                field: "category",
                message: t.bad_choice.into(),
            }),
        }
    }

    /// The draft this form describes; a field that cannot be read is named.
    pub fn draft(&self, t: &Catalogue) -> Result<Draft, FieldError> {
        let kind = self.kind.parse::<Kind>().map_err(|_| FieldError {
            field: "kind",
            message: t.kind_required.into(),
        })?;
        Ok(Draft {
            kind,
            category: self.category(t)?.unwrap_or(Category::Other),
            title: self.title.clone(),
            body: self.body.clone(),
            tags: self.tags_list(),
            location: opt(&self.location).map(|l| l.to_lowercase()),
            quantity: self.quantity(t)?,
            contact: None,
            circle: opt(&self.circle),
            expires_in_secs: Some(self.expires_secs(t)?.unwrap_or(DEFAULT_DAYS * 86_400)),
        })
    }

    /// The edit this form describes. The form comes filled in with the post's values,
    /// so an emptied location or quantity field means "no longer say this".
    pub fn edit(&self, t: &Catalogue) -> Result<Edit, FieldError> {
        let location = opt(&self.location).map(|l| l.to_lowercase());
        let quantity = self.quantity(t)?;
        Ok(Edit {
            category: self.category(t)?,
            title: Some(self.title.clone()),
            body: Some(self.body.clone()),
            tags: Some(self.tags_list()),
            clear_location: location.is_none(),
            clear_quantity: quantity.is_none(),
            location,
            quantity,
            contact: None,
            expires_in_secs: self.expires_secs(t)?,
            ..Edit::default()
        })
    }

    /// The form filled in from a post (to edit it).
    pub fn from_post(p: &Post) -> Self {
        Self {
            kind: p.kind.as_str().into(),
            title: p.title.clone(),
            body: p.body.clone(),
            category: p.category.as_str().into(),
            tags: p.tags.join(", "),
            location: p.location.clone().unwrap_or_default(),
            quantity: p.quantity.map(|q| q.to_string()).unwrap_or_default(),
            expires: String::new(),
            circle: p.circle.clone(),
        }
    }
}

/// A node error as a field error where it names a field.
pub fn node_error(t: &Catalogue, e: &node::Error) -> FieldError {
    match e {
        node::Error::Invalid(v) | node::Error::Edit(EditError::Invalid(v)) => FieldError {
            field: form_field(v.field),
            message: i18n::problem(t, &v.problem),
        },
        node::Error::Circle(_) => FieldError {
            field: "circle",
            message: e.to_string(),
        },
        node::Error::Store(s) => FieldError {
            field: "form",
            message: i18n::refusal(t, s).unwrap_or_else(|| e.to_string()),
        },
        _ => FieldError {
            field: "form",
            message: e.to_string(),
        },
    }
}

/// Which form is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// A new post.
    New,
    /// Editing this post.
    Edit(&'a PostId),
}

/// The form, filled with `form`, with `error` next to its field.
pub fn render(
    t: &Catalogue,
    csrf: &str,
    mode: Mode<'_>,
    form: &PostForm,
    error: Option<&FieldError>,
    circles: &[String],
) -> Markup {
    let err = |f: &str| error.filter(|e| e.field == f).map(|e| e.message.as_str());
    let invalid = |f: &str| err(f).map(|_| "true");
    let desc = |f: &str, hint: bool| layout::described_by(f, hint, err(f).is_some());
    let (heading, action, submit) = match mode {
        Mode::New => (t.new_title.to_string(), "/new".to_string(), t.post_button),
        Mode::Edit(id) => (
            t.edit_title.to_string(),
            format!("/posts/{id}/edit"),
            t.save_button,
        ),
    };
    let kind = if form.kind.is_empty() {
        "offer"
    } else {
        form.kind.as_str()
    };
    let category = if form.category.is_empty() {
        "other"
    } else {
        form.category.as_str()
    };
    html! {
        h1 { (heading) }
        @if let Some(e) = err("form") { p.error role="alert" { (e) } }
        @if error.is_some() && err("form").is_none() { p.error-summary role="alert" { (t.form_has_errors) } }
        form.post-form method="post" action=(action) novalidate {
            (layout::csrf_field(csrf))
            @if mode == Mode::New {
                fieldset.kind.has-error[err("kind").is_some()] {
                    legend { (t.kind_legend) }
                    @for k in [Kind::Offer, Kind::Request] {
                        label.choice {
                            input type="radio" name="kind" value=(k.as_str()) checked[kind == k.as_str()];
                            " " (i18n::kind_explain(t, k))
                        }
                    }
                    @if let Some(e) = err("kind") { p.error id="kind-error" role="alert" { (e) } }
                }
            }
            (layout::field(t.field_title, "title", err("title"), None, html! {
                input #title name="title" value=(form.title) maxlength="120" required
                    aria-invalid=[invalid("title")] aria-describedby=[desc("title", false)];
            }))
            (layout::field(t.field_description, "body", err("body"), None, html! {
                textarea #body name="body" rows="5" aria-invalid=[invalid("body")] aria-describedby=[desc("body", false)] { (form.body) }
            }))
            (layout::field(t.field_category, "category", err("category"), None, html! {
                select #category name="category" aria-invalid=[invalid("category")] aria-describedby=[desc("category", false)] {
                    @for c in Category::ALL {
                        option value=(c.as_str()) selected[category == c.as_str()] { (i18n::category_name(t, *c)) }
                    }
                }
            }))
            (layout::field(t.field_tags, "tags", err("tags"), Some(t.tags_hint), html! {
                input #tags name="tags" value=(form.tags) autocapitalize="none"
                    aria-invalid=[invalid("tags")] aria-describedby=[desc("tags", true)];
            }))
            (layout::field(t.field_location, "location", err("location"), Some(t.location_hint), html! {
                input #location name="location" value=(form.location) maxlength="6" autocapitalize="none" spellcheck="false"
                    aria-invalid=[invalid("location")] aria-describedby=[desc("location", true)];
            }))
            p.geo {
                button.secondary type="button" data-geo="location" data-precision="5" hidden { (t.use_my_location) }
                " " span.geo-status role="status" {}
            }
            (layout::field(t.field_quantity, "quantity", err("quantity"), None, html! {
                input #quantity name="quantity" value=(form.quantity) inputmode="numeric"
                    aria-invalid=[invalid("quantity")] aria-describedby=[desc("quantity", false)];
            }))
            (layout::field(t.field_expires, "expires", err("expires"), None, html! {
                select #expires name="expires" aria-invalid=[invalid("expires")] aria-describedby=[desc("expires", false)] {
                    @if matches!(mode, Mode::Edit(_)) { option value="" selected[form.expires.is_empty()] { (t.keep_expiry) } }
                    @for d in LIFETIMES_DAYS {
                        @let selected = form.expires == d.to_string() || (form.expires.is_empty() && mode == Mode::New && *d == DEFAULT_DAYS);
                        option value=(d) selected[selected] { (i18n::in_days(t, *d)) }
                    }
                }
            }))
            @if mode == Mode::New && circles.len() > 1 {
                (layout::field(t.field_circle, "circle", err("circle"), None, html! {
                    select #circle name="circle" {
                        @for c in circles { option value=(c) selected[form.circle == *c] { (c) } }
                    }
                }))
            }
            div.actions { button type="submit" { (submit) } }
        }
    }
}

fn form_page(
    ctx: &Ctx,
    csrf: &str,
    mode: Mode<'_>,
    form: &PostForm,
    error: Option<&FieldError>,
    circles: &[String],
) -> Response {
    let t = ctx.t;
    let nav = if mode == Mode::New {
        Nav::New
    } else {
        Nav::Mine
    };
    let title = if mode == Mode::New {
        t.new_title
    } else {
        t.edit_title
    };
    let mut r =
        layout::page(ctx, title, nav, render(t, csrf, mode, form, error, circles)).into_response();
    if error.is_some() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

async fn circles(state: &WebState) -> Vec<String> {
    state
        .node()
        .status()
        .await
        .map(|s| s.circles)
        .unwrap_or_default()
}

/// `GET /new`.
pub async fn form(ctx: Ctx, State(state): State<WebState>) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(&ctx).into_response();
    };
    let circles = circles(&state).await;
    let form = PostForm {
        circle: circles.first().cloned().unwrap_or_default(),
        ..PostForm::default()
    };
    form_page(&ctx, &s.csrf, Mode::New, &form, None, &circles)
}

/// `POST /new`: posts, then shows the new post; on an error, the form again.
pub async fn create(
    ctx: Ctx,
    State(state): State<WebState>,
    Form(form): Form<PostForm>,
) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(&ctx).into_response();
    };
    let t = ctx.t;
    let circles = circles(&state).await;
    let draft = match form.draft(t) {
        Ok(d) => d,
        Err(e) => return form_page(&ctx, &s.csrf, Mode::New, &form, Some(&e), &circles),
    };
    match state.node().publish(draft).await {
        Ok(post) => super::see_other(&format!("/posts/{}?notice=posted", post.id)),
        Err(e) => form_page(
            &ctx,
            &s.csrf,
            Mode::New,
            &form,
            Some(&node_error(t, &e)),
            &circles,
        ),
    }
}

// The error is the page to return at once; it is never stored or passed on.
#[allow(clippy::result_large_err)]
fn own_post(ctx: &Ctx, state: &WebState, id: &str) -> Result<Post, Response> {
    let id = id
        .parse::<PostId>()
        .map_err(|_| super::post::missing(ctx))?;
    let post = match state.node().get(&id) {
        Ok(Some(p)) => p.post().clone(),
        Ok(None) => return Err(super::post::missing(ctx)),
        Err(e) => return Err(super::status::unavailable(ctx, &e)),
    };
    if crate::identity::author_peer_id(&post.author) != Some(state.node().peer_id()) {
        return Err(super::post::missing(ctx));
    }
    Ok(post)
}

/// `GET /posts/{id}/edit` (own posts only).
pub async fn edit_form(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(&ctx).into_response();
    };
    let post = match own_post(&ctx, &state, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    form_page(
        &ctx,
        &s.csrf,
        Mode::Edit(&post.id),
        &PostForm::from_post(&post),
        None,
        &[],
    )
}

/// `POST /posts/{id}/edit`.
pub async fn edit(
    ctx: Ctx,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<PostForm>,
) -> Response {
    let Some(s) = ctx.session.clone() else {
        return super::login::needed(&ctx).into_response();
    };
    let t = ctx.t;
    let post = match own_post(&ctx, &state, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mode = Mode::Edit(&post.id);
    let edit = match form.edit(t) {
        Ok(e) => e,
        Err(e) => return form_page(&ctx, &s.csrf, mode, &form, Some(&e), &[]),
    };
    match state.node().edit(&post.id, edit).await {
        Ok(p) => super::see_other(&format!("/posts/{}?notice=updated", p.id)),
        Err(e) => form_page(&ctx, &s.csrf, mode, &form, Some(&node_error(t, &e)), &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::{EN, ES};

    fn label_texts(html: &str) -> Vec<String> {
        html.split("<label for=\"")
            .skip(1)
            .filter_map(|s| {
                s.split_once('>')
                    .and_then(|(_, r)| r.split_once('<'))
                    .map(|(t, _)| t.to_string())
            })
            .collect()
    }

    #[test]
    fn the_new_post_form_has_exactly_its_labels_and_a_post_button() {
        let html = render(
            &EN,
            "tok",
            Mode::New,
            &PostForm::default(),
            None,
            &["commons".into()],
        )
        .into_string();
        assert_eq!(
            label_texts(&html),
            [
                "Title",
                "Description",
                "Category",
                "Tags",
                "Location",
                "Quantity",
                "Expires"
            ]
        );
        assert!(
            html.contains("<button type=\"submit\">Post</button>"),
            "{html}"
        );
        assert!(html.contains("name=\"_csrf\" value=\"tok\""));
        assert!(
            html.contains("novalidate"),
            "the node's errors show, not the browser's"
        );
        let es = render(&ES, "tok", Mode::New, &PostForm::default(), None, &[]).into_string();
        assert!(label_texts(&es).contains(&"Título".to_string()));
    }

    #[test]
    fn an_error_sits_beside_its_field() {
        let e = FieldError {
            field: "title",
            message: "This cannot be empty.".into(),
        };
        let html = render(&EN, "t", Mode::New, &PostForm::default(), Some(&e), &[]).into_string();
        let label = html.find("for=\"title\"").unwrap();
        let err = html.find("id=\"title-error\"").unwrap();
        let next = html.find("for=\"body\"").unwrap();
        assert!(label < err && err < next);
        assert!(html.contains("aria-describedby=\"title-error\""));
        assert!(html.contains("aria-invalid=\"true\""));
    }

    #[test]
    fn emptying_location_or_quantity_in_the_edit_form_clears_it() {
        let f = PostForm {
            kind: "offer".into(),
            title: "Ladder".into(),
            category: "goods".into(),
            location: "U33DC".into(),
            quantity: "2".into(),
            expires: "3".into(),
            ..PostForm::default()
        };
        let kept = f.edit(&EN).unwrap();
        assert_eq!(kept.location.as_deref(), Some("u33dc"));
        assert!(!kept.clear_location && !kept.clear_quantity);
        let emptied = PostForm {
            location: " ".into(),
            quantity: String::new(),
            ..f
        }
        .edit(&EN)
        .unwrap();
        assert!(emptied.clear_location && emptied.clear_quantity);
        assert_eq!((emptied.location, emptied.quantity), (None, None));
    }

    #[test]
    fn the_form_reads_tags_quantity_and_expiry() {
        let f = PostForm {
            kind: "request".into(),
            title: "Ride".into(),
            tags: "#Car-Ride, clinic  tuesday".into(),
            quantity: "2".into(),
            expires: "3".into(),
            ..PostForm::default()
        };
        let d = f.draft(&EN).unwrap();
        assert_eq!(d.tags, ["car-ride", "clinic", "tuesday"]);
        assert_eq!(d.quantity, Some(2));
        assert_eq!(d.expires_in_secs, Some(3 * 86_400));
        let bad = PostForm {
            quantity: "x".into(),
            ..f.clone()
        };
        assert_eq!(bad.draft(&EN).unwrap_err().field, "quantity");
        let bad = PostForm {
            expires: "400".into(),
            ..f.clone()
        };
        assert_eq!(bad.draft(&EN).unwrap_err().field, "expires");
        let bad = PostForm {
            kind: String::new(),
            ..f
        };
        assert_eq!(bad.draft(&EN).unwrap_err().field, "kind");
    }
}
