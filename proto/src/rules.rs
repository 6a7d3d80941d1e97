//! The rules every post obeys, checked in one place before a post is stored or
//! relayed. Each failure names the field it is about.

use crate::post::{Post, PostId, Status};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest body, in bytes.
pub const MAX_BODY_BYTES: usize = 4000;
/// Most tags on one post.
pub const MAX_TAGS: usize = 8;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// Longest circle name, in characters.
pub const MAX_CIRCLE_CHARS: usize = 48;
/// Longest geohash: 6 characters is a cell of about 1.2 km × 0.6 km.
pub const MAX_GEOHASH_CHARS: usize = 6;
/// Longest contact, in bytes.
pub const MAX_CONTACT_BYTES: usize = 200;
/// How far in the future a timestamp may be, for clocks that disagree.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Longest life of a post, counted from its creation.
pub const MAX_LIFETIME_MS: u64 = 90 * 24 * 60 * 60 * 1000;
/// The circle a post belongs to when none is chosen.
pub const DEFAULT_CIRCLE: &str = "commons";
/// The characters of a geohash (base 32 without a, i, l, o).
pub const GEOHASH_ALPHABET: &str = "0123456789bcdefghjkmnpqrstuvwxyz";

/// The post field a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Field {
    Id,
    Author,
    Circle,
    Title,
    Body,
    Tags,
    Location,
    Quantity,
    Contact,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
}

impl Field {
    /// The field's name as in the post's JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Author => "author",
            Field::Circle => "circle",
            Field::Title => "title",
            Field::Body => "body",
            Field::Tags => "tags",
            Field::Location => "location",
            Field::Quantity => "quantity",
            Field::Contact => "contact",
            Field::CreatedAt => "created_at",
            Field::UpdatedAt => "updated_at",
            Field::ExpiresAt => "expires_at",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Empty (or only whitespace) where a value is required.
    Empty,
    /// Longer than allowed.
    TooLong {
        /// Actual length (characters or bytes, as the rule counts).
        len: usize,
        /// Allowed length.
        max: usize,
    },
    /// More items than allowed.
    TooMany {
        /// Actual count.
        len: usize,
        /// Allowed count.
        max: usize,
    },
    /// A character outside the allowed set.
    BadCharacter(char),
    /// The same item twice.
    Duplicate(String),
    /// Must be empty or absent in this state.
    NotAllowed(&'static str),
    /// The id is not `blake3(author ‖ nonce)`.
    IdMismatch,
    /// Not a usable ed25519 public key.
    BadKey,
    /// Later than now plus the allowed clock skew.
    InFuture,
    /// Ordered wrongly against another timestamp.
    OutOfOrder(&'static str),
    /// Too long a life.
    TooFarAhead,
    /// Already expired.
    Expired,
    /// Text that is not in Unicode normalization form C.
    NotNormalized,
    /// Made only of characters that show nothing.
    Invisible,
}

impl Problem {
    /// A stable machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Empty => "empty",
            Problem::TooLong { .. } => "too_long",
            Problem::TooMany { .. } => "too_many",
            Problem::BadCharacter(_) => "bad_character",
            Problem::Duplicate(_) => "duplicate",
            Problem::NotAllowed(_) => "not_allowed",
            Problem::IdMismatch => "id_mismatch",
            Problem::BadKey => "bad_key",
            Problem::InFuture => "in_future",
            Problem::OutOfOrder(_) => "out_of_order",
            Problem::TooFarAhead => "too_far_ahead",
            Problem::Expired => "expired",
            Problem::NotNormalized => "not_nfc",
            Problem::Invisible => "invisible",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong { len, max } => write!(f, "too long ({len}, at most {max})"),
            Problem::TooMany { len, max } => write!(f, "too many ({len}, at most {max})"),
            Problem::BadCharacter(c) => write!(f, "character {c:?} is not allowed"),
            Problem::Duplicate(v) => write!(f, "{v:?} appears twice"),
            Problem::NotAllowed(why) => write!(f, "not allowed: {why}"),
            Problem::IdMismatch => f.write_str("is not blake3(author ‖ nonce)"),
            Problem::BadKey => f.write_str("is not a valid ed25519 public key"),
            Problem::InFuture => write!(
                f,
                "is more than {} minutes in the future",
                MAX_CLOCK_SKEW_MS / 60_000
            ),
            Problem::OutOfOrder(why) => f.write_str(why),
            Problem::TooFarAhead => write!(
                f,
                "is more than {} days after created_at",
                MAX_LIFETIME_MS / 86_400_000
            ),
            Problem::Expired => f.write_str("is in the past: the post has expired"),
            Problem::NotNormalized => f.write_str("is not in Unicode normalization form C (NFC)"),
            Problem::Invisible => f.write_str("has no visible character"),
        }
    }
}

/// A post that breaks a rule; says which field and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// The field at fault.
    pub field: Field,
    /// What is wrong with it.
    pub problem: Problem,
}

fn fail(field: Field, problem: Problem) -> Result<(), ValidationError> {
    Err(ValidationError { field, problem })
}

/// Checks a `[a-z0-9-]{1,max}` name (circles and tags).
pub fn check_slug(field: Field, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return fail(field, Problem::Empty);
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return fail(field, Problem::BadCharacter(c));
    }
    if value.len() > max {
        return fail(
            field,
            Problem::TooLong {
                len: value.len(),
                max,
            },
        );
    }
    Ok(())
}

/// Checks a circle name: an open circle's 1-48 characters `[a-z0-9-]`, or a closed
/// circle's full name `name~id`, where `id` is [`crate::circle::CIRCLE_ID_CHARS`]
/// lowercase hex characters (see `crate::circle`).
pub fn check_circle(value: &str) -> Result<(), ValidationError> {
    match value.split_once(crate::circle::CLOSED_SEPARATOR) {
        None => check_slug(Field::Circle, value, MAX_CIRCLE_CHARS),
        Some((name, id)) => {
            check_slug(Field::Circle, name, MAX_CIRCLE_CHARS)?;
            if let Some(c) = id
                .chars()
                .find(|c| !(c.is_ascii_digit() || ('a'..='f').contains(c)))
            {
                return fail(Field::Circle, Problem::BadCharacter(c));
            }
            if id.len() != crate::circle::CIRCLE_ID_CHARS {
                return fail(
                    Field::Circle,
                    Problem::TooLong {
                        len: value.len(),
                        max: crate::circle::MAX_CLOSED_CIRCLE_CHARS,
                    },
                );
            }
            Ok(())
        }
    }
}

/// Checks a geohash: 1 to 6 characters of [`GEOHASH_ALPHABET`].
pub fn check_geohash(field: Field, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return fail(field, Problem::Empty);
    }
    if let Some(c) = value.chars().find(|c| !GEOHASH_ALPHABET.contains(*c)) {
        return fail(field, Problem::BadCharacter(c));
    }
    let len = value.len();
    if len > MAX_GEOHASH_CHARS {
        return fail(
            field,
            Problem::TooLong {
                len,
                max: MAX_GEOHASH_CHARS,
            },
        );
    }
    Ok(())
}

/// Whether `c` is a bidirectional embedding, override or isolate (U+202A–U+202E,
/// U+2066–U+2069): they make text display in another order than it is stored
/// ("Trojan Source"), so a title can show one thing and say another.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` shows nothing on its own: whitespace, and Unicode's default-ignorable
/// code points (format characters, joiners, fillers, variation selectors, tags),
/// plus the blank braille pattern that is often used as an invisible letter.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Free text is refused when it hides or disguises what it says: control characters
/// (which rewrite a terminal; free text may keep line breaks and tabs, one-line fields
/// nothing), bidi overrides and isolates, and text not in Unicode normalization form
/// C (two encodings of the same words would look alike and hash apart; authors'
/// nodes normalise, see `normalize_text`).
fn check_text(field: Field, value: &str, multiline: bool) -> Result<(), ValidationError> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = value
        .chars()
        .find(|c| (c.is_control() && !allowed(*c)) || is_bidi_control(*c))
    {
        return fail(field, Problem::BadCharacter(c));
    }
    if !unicode_normalization::is_nfc(value) {
        return fail(field, Problem::NotNormalized);
    }
    Ok(())
}

/// `value` in Unicode normalization form C, the form [`validate`] requires of free
/// text (titles, bodies, contacts). Authors' nodes apply it before signing.
pub fn normalize_text(value: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if unicode_normalization::is_nfc(value) {
        return value.to_owned();
    }
    value.nfc().collect()
}

/// Checks every rule of a post at time `now` (ms since the epoch), in a fixed order so
/// a post with several faults always reports the same one.
pub fn validate(post: &Post, now: u64) -> Result<(), ValidationError> {
    if PostId::derive(&post.author, &post.nonce) != post.id {
        return fail(Field::Id, Problem::IdMismatch);
    }
    check_circle(&post.circle)?;

    let title_chars = post.title.chars().count();
    if post.title.trim().is_empty() {
        return fail(Field::Title, Problem::Empty);
    }
    if title_chars > MAX_TITLE_CHARS {
        return fail(
            Field::Title,
            Problem::TooLong {
                len: title_chars,
                max: MAX_TITLE_CHARS,
            },
        );
    }
    check_text(Field::Title, &post.title, false)?;
    if post.title.chars().all(is_invisible) {
        return fail(Field::Title, Problem::Invisible);
    }

    if post.body.len() > MAX_BODY_BYTES {
        return fail(
            Field::Body,
            Problem::TooLong {
                len: post.body.len(),
                max: MAX_BODY_BYTES,
            },
        );
    }
    check_text(Field::Body, &post.body, true)?;

    if post.tags.len() > MAX_TAGS {
        return fail(
            Field::Tags,
            Problem::TooMany {
                len: post.tags.len(),
                max: MAX_TAGS,
            },
        );
    }
    for (i, tag) in post.tags.iter().enumerate() {
        check_slug(Field::Tags, tag, MAX_TAG_CHARS)?;
        if post.tags[..i].contains(tag) {
            return fail(Field::Tags, Problem::Duplicate(tag.clone()));
        }
    }

    if let Some(location) = &post.location {
        check_geohash(Field::Location, location)?;
    }

    if let Some(contact) = &post.contact {
        if contact.trim().is_empty() {
            return fail(Field::Contact, Problem::Empty);
        }
        if contact.len() > MAX_CONTACT_BYTES {
            return fail(
                Field::Contact,
                Problem::TooLong {
                    len: contact.len(),
                    max: MAX_CONTACT_BYTES,
                },
            );
        }
        check_text(Field::Contact, contact, false)?;
    }

    if post.status == Status::Withdrawn {
        if !post.body.is_empty() {
            return fail(
                Field::Body,
                Problem::NotAllowed("a withdrawn post keeps no body"),
            );
        }
        if post.contact.is_some() {
            return fail(
                Field::Contact,
                Problem::NotAllowed("a withdrawn post keeps no contact"),
            );
        }
    }

    let horizon = now.saturating_add(MAX_CLOCK_SKEW_MS);
    if post.created_at > horizon {
        return fail(Field::CreatedAt, Problem::InFuture);
    }
    if post.updated_at > horizon {
        return fail(Field::UpdatedAt, Problem::InFuture);
    }
    if post.updated_at < post.created_at {
        return fail(
            Field::UpdatedAt,
            Problem::OutOfOrder("is before created_at"),
        );
    }
    if post.expires_at <= post.updated_at {
        return fail(
            Field::ExpiresAt,
            Problem::OutOfOrder("is not after updated_at"),
        );
    }
    if post.expires_at > post.created_at.saturating_add(MAX_LIFETIME_MS) {
        return fail(Field::ExpiresAt, Problem::TooFarAhead);
    }
    if post.is_expired(now) {
        return fail(Field::ExpiresAt, Problem::Expired);
    }
    Ok(())
}
