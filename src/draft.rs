//! Turning what a person types into a post: new drafts, edits, and the status changes
//! (withdraw, fulfil). Pure functions of their inputs and `now`; the node signs and
//! stores the result.

use aidmesh_proto::rules::{self, normalize_text, DEFAULT_CIRCLE, MAX_LIFETIME_MS};
use aidmesh_proto::{AuthorKey, Category, Kind, Nonce, Post, PostId, Status, ValidationError};
use serde::{Deserialize, Serialize};

/// How long a post lives when the draft does not say: 14 days.
pub const DEFAULT_LIFETIME_SECS: u64 = 14 * 24 * 60 * 60;

/// A new offer or request as its author fills it in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Offer or request.
    pub kind: Kind,
    /// What it is about.
    pub category: Category,
    /// One line.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub body: String,
    /// Up to 8 tags, `[a-z0-9-]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Geohash, at most 6 characters.
    #[serde(default)]
    pub location: Option<String>,
    /// How many.
    #[serde(default)]
    pub quantity: Option<u32>,
    /// How to reach the author outside aidmesh.
    #[serde(default)]
    pub contact: Option<String>,
    /// Circle; `commons` when unset.
    #[serde(default)]
    pub circle: Option<String>,
    /// Lifetime in seconds from now; 14 days when unset, at most 90 days.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

impl Draft {
    /// A draft with only the required fields set.
    pub fn new(kind: Kind, category: Category, title: impl Into<String>) -> Self {
        Self {
            kind,
            category,
            title: title.into(),
            body: String::new(),
            tags: Vec::new(),
            location: None,
            quantity: None,
            contact: None,
            circle: None,
            expires_in_secs: None,
        }
    }

    /// The first revision of this draft by `author` at `now`, checked against every
    /// rule.
    pub fn into_post(self, author: AuthorKey, now: u64) -> Result<Post, ValidationError> {
        let nonce = Nonce(rand::random());
        let post = Post {
            id: PostId::derive(&author, &nonce),
            author,
            nonce,
            revision: 1,
            circle: self.circle.unwrap_or_else(|| DEFAULT_CIRCLE.to_string()),
            kind: self.kind,
            status: Status::Open,
            category: self.category,
            title: normalize_text(self.title.trim()),
            body: normalize_text(&self.body),
            tags: self.tags,
            location: self.location,
            quantity: self.quantity,
            contact: self.contact.as_deref().map(normalize_text),
            created_at: now,
            updated_at: now,
            expires_at: expiry(now, self.expires_in_secs),
        };
        rules::validate(&post, now)?;
        Ok(post)
    }
}

fn expiry(now: u64, secs: Option<u64>) -> u64 {
    let ms = secs
        .unwrap_or(DEFAULT_LIFETIME_SECS)
        .saturating_mul(1000)
        .min(MAX_LIFETIME_MS + 1);
    now.saturating_add(ms)
}

/// Changes to a post; unset fields keep their current value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Edit {
    /// New category.
    pub category: Option<Category>,
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New tags (replacing all).
    pub tags: Option<Vec<String>>,
    /// New location.
    pub location: Option<String>,
    /// New quantity.
    pub quantity: Option<u32>,
    /// New contact.
    pub contact: Option<String>,
    /// New lifetime, in seconds from now (still at most 90 days after creation).
    pub expires_in_secs: Option<u64>,
    /// Remove the location.
    pub clear_location: bool,
    /// Remove the quantity.
    pub clear_quantity: bool,
    /// Remove the contact.
    pub clear_contact: bool,
}

/// What an edit cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// Withdrawn posts are final.
    #[error("the post is withdrawn; withdrawn posts cannot change")]
    Withdrawn,
    /// The revision counter is exhausted.
    #[error("the post has reached its last revision")]
    LastRevision,
    /// The result breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

fn next_revision(old: &Post, now: u64) -> Result<Post, EditError> {
    if old.status == Status::Withdrawn {
        return Err(EditError::Withdrawn);
    }
    let revision = old.revision.checked_add(1).ok_or(EditError::LastRevision)?;
    Ok(Post {
        revision,
        // A clock that went backwards must not make a revision older than the last.
        updated_at: now.max(old.updated_at),
        ..old.clone()
    })
}

/// The next revision of `old` with `edit` applied.
pub fn edit(old: &Post, edit: Edit, now: u64) -> Result<Post, EditError> {
    let mut post = next_revision(old, now)?;
    if let Some(c) = edit.category {
        post.category = c;
    }
    if let Some(t) = edit.title {
        post.title = normalize_text(t.trim());
    }
    if let Some(b) = edit.body {
        post.body = normalize_text(&b);
    }
    if let Some(t) = edit.tags {
        post.tags = t;
    }
    if let Some(l) = edit.location {
        post.location = Some(l);
    }
    if let Some(q) = edit.quantity {
        post.quantity = Some(q);
    }
    if let Some(c) = edit.contact {
        post.contact = Some(normalize_text(&c));
    }
    if let Some(secs) = edit.expires_in_secs {
        post.expires_at = expiry(post.updated_at, Some(secs));
    }
    if post.expires_at <= post.updated_at {
        // Keep a post that is edited late in its life alive a little longer.
        post.expires_at = post.updated_at + 1;
    }
    // Clearing wins over a value given in the same edit: it is the explicit ask.
    if edit.clear_location {
        post.location = None;
    }
    if edit.clear_quantity {
        post.quantity = None;
    }
    if edit.clear_contact {
        post.contact = None;
    }
    rules::validate(&post, now)?;
    Ok(post)
}

/// Whether `new` says exactly what `old` says (revision and update time aside): an
/// edit that would publish it changes nothing, so no new revision is made.
pub fn same_content(old: &Post, new: &Post) -> bool {
    let aligned = Post {
        revision: old.revision,
        updated_at: old.updated_at,
        ..new.clone()
    };
    &aligned == old
}

/// A tag as the rules want it, from what a person typed: lowercase ASCII letters and
/// digits, accents dropped (`é` → `e`), every run of anything else one `-`
/// (`"Warm Clothes"` → `warm-clothes`), at most [`rules::MAX_TAG_CHARS`]
/// characters. Letters with no ASCII form are dropped, so the result may be empty.
pub fn normalise_tag(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        if is_combining_mark(c) {
            continue;
        }
        // Letters that decomposition leaves alone.
        let spelled = match c {
            'ß' => "ss",
            'æ' | 'Æ' => "ae",
            'œ' | 'Œ' => "oe",
            'ø' | 'Ø' => "o",
            'đ' | 'Đ' => "d",
            'ł' | 'Ł' => "l",
            'þ' | 'Þ' => "th",
            _ => "-",
        };
        if spelled == "-" && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push_str(spelled);
    }
    let mut out = out.trim_end_matches('-').to_string();
    if out.len() > rules::MAX_TAG_CHARS {
        out.truncate(rules::MAX_TAG_CHARS);
        out = out.trim_end_matches('-').to_string();
    }
    out
}

/// The next revision of `old` with a new status. Withdrawing drops the body and the
/// contact: a tombstone keeps nothing personal.
pub fn set_status(old: &Post, status: Status, now: u64) -> Result<Post, EditError> {
    let mut post = next_revision(old, now)?;
    post.status = status;
    if status == Status::Withdrawn {
        post.body.clear();
        post.contact = None;
    }
    if post.expires_at <= post.updated_at {
        post.expires_at = post.updated_at + 1;
    }
    rules::validate(&post, now)?;
    Ok(post)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_780_000_000_000;

    fn author() -> AuthorKey {
        crate::Identity::from_secret([1; 32]).author()
    }

    #[test]
    fn draft_defaults_and_rules() {
        let p = Draft::new(Kind::Offer, Category::Food, "  Soup ")
            .into_post(author(), NOW)
            .unwrap();
        assert_eq!(p.title, "Soup");
        assert_eq!(p.circle, "commons");
        assert_eq!(p.expires_at, NOW + DEFAULT_LIFETIME_SECS * 1000);
        let e = Draft::new(Kind::Offer, Category::Food, " ")
            .into_post(author(), NOW)
            .unwrap_err();
        assert_eq!(e.field, aidmesh_proto::Field::Title);
        let mut long = Draft::new(Kind::Offer, Category::Food, "x");
        long.expires_in_secs = Some(91 * 86_400);
        assert_eq!(
            long.into_post(author(), NOW).unwrap_err().field,
            aidmesh_proto::Field::ExpiresAt
        );
    }

    #[test]
    fn edits_and_status_changes_make_new_revisions() {
        let p = Draft {
            body: "hot".into(),
            contact: Some("door 3".into()),
            ..Draft::new(Kind::Offer, Category::Food, "Soup")
        }
        .into_post(author(), NOW)
        .unwrap();
        let e = edit(
            &p,
            Edit {
                title: Some("Stew".into()),
                ..Edit::default()
            },
            NOW + 5,
        )
        .unwrap();
        assert_eq!(
            (e.revision, e.title.as_str(), e.updated_at),
            (2, "Stew", NOW + 5)
        );
        assert_eq!(e.id, p.id);
        let w = set_status(&e, Status::Withdrawn, NOW + 6).unwrap();
        assert_eq!(
            (w.revision, w.body.as_str(), w.contact.as_ref()),
            (3, "", None)
        );
        assert_eq!(
            set_status(&w, Status::Open, NOW + 7),
            Err(EditError::Withdrawn)
        );
    }

    #[test]
    fn clearing_fields_and_noop_edits() {
        let p = Draft {
            location: Some("u33dc".into()),
            quantity: Some(3),
            contact: Some("door 3".into()),
            ..Draft::new(Kind::Offer, Category::Food, "Soup")
        }
        .into_post(author(), NOW)
        .unwrap();
        let cleared = edit(
            &p,
            Edit {
                clear_location: true,
                clear_quantity: true,
                clear_contact: true,
                ..Edit::default()
            },
            NOW + 5,
        )
        .unwrap();
        assert_eq!(
            (cleared.location, cleared.quantity, cleared.contact),
            (None, None, None)
        );
        let same = edit(
            &p,
            Edit {
                title: Some("Soup ".into()),
                quantity: Some(3),
                ..Edit::default()
            },
            NOW + 5,
        )
        .unwrap();
        assert!(same_content(&p, &same));
        let changed = edit(
            &p,
            Edit {
                quantity: Some(4),
                ..Edit::default()
            },
            NOW + 5,
        )
        .unwrap();
        assert!(!same_content(&p, &changed));
    }

    #[test]
    fn tags_are_normalised() {
        assert_eq!(normalise_tag("Warm Clothes"), "warm-clothes");
        assert_eq!(normalise_tag("  Kinder_Gärten!! "), "kinder-garten");
        assert_eq!(normalise_tag("Straße"), "strasse");
        assert_eq!(normalise_tag("ok-tag"), "ok-tag");
        assert_eq!(normalise_tag("мебель"), "");
        assert_eq!(normalise_tag(&"ab ".repeat(40)).len(), 32);
        assert!(!normalise_tag(&"ab ".repeat(40)).ends_with('-'));
    }
}
