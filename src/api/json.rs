//! The JSON shapes of the local API, shared by the server and the client.

use std::time::{Duration, SystemTime};

use aidmesh_proto::{Category, Kind, Post, Status};
use serde::{Deserialize, Serialize};

/// A post as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostJson {
    /// Post id, hex.
    pub id: String,
    /// Author's peer id.
    pub author: String,
    /// Revision number.
    pub revision: u32,
    /// Circle.
    pub circle: String,
    /// `offer` or `request`.
    pub kind: Kind,
    /// `open`, `fulfilled` or `withdrawn`.
    pub status: Status,
    /// Lowercase category.
    pub category: Category,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Geohash.
    pub location: Option<String>,
    /// Quantity.
    pub quantity: Option<u32>,
    /// Contact.
    pub contact: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl From<&Post> for PostJson {
    fn from(p: &Post) -> Self {
        Self {
            id: p.id.to_string(),
            author: crate::identity::author_text(&p.author),
            revision: p.revision,
            circle: p.circle.clone(),
            kind: p.kind,
            status: p.status,
            category: p.category,
            title: p.title.clone(),
            body: p.body.clone(),
            tags: p.tags.clone(),
            location: p.location.clone(),
            quantity: p.quantity,
            contact: p.contact.clone(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            expires_at: rfc3339(p.expires_at),
        }
    }
}

/// A new offer or request (`POST /api/v1/posts`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DraftJson {
    /// `offer` or `request` (required).
    pub kind: Option<String>,
    /// Category name (default `other`).
    pub category: Option<String>,
    /// Title (required).
    pub title: String,
    /// Body.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Geohash.
    pub location: Option<String>,
    /// Quantity.
    pub quantity: Option<u32>,
    /// Contact.
    pub contact: Option<String>,
    /// Circle (default `commons`).
    pub circle: Option<String>,
    /// Lifetime such as `3d` or `12h` (default 14 days).
    pub expires_in: Option<String>,
}

/// Changes to a post (`PUT /api/v1/posts/{id}`); absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EditJson {
    /// New category.
    pub category: Option<String>,
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New geohash.
    pub location: Option<String>,
    /// New quantity.
    pub quantity: Option<u32>,
    /// New contact.
    pub contact: Option<String>,
    /// New lifetime from now, such as `3d`.
    pub expires_in: Option<String>,
    /// Fields to remove: `location`, `quantity`, `contact`.
    pub clear: Vec<String>,
}

/// An API error body: `{"error": {"code", "message", "field"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// For people.
    pub message: String,
    /// The field at fault, for 400s.
    pub field: Option<String>,
}

/// A block request (`POST /api/v1/blocks`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockJson {
    /// The author's peer id.
    pub author: String,
}

/// Parses a lifetime such as `3d`, `12h` or `90m` into seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let secs = humantime::parse_duration(text.trim())
        .map(|d| d.as_secs())
        .map_err(|e| format!("bad duration {text:?} ({e}); use e.g. 3d, 12h, 90m"))?;
    if secs == 0 {
        // A lifetime is only ever an expiry: zero would expire the post at once.
        return Err(format!(
            "{text:?}: expiry must be in the future; use e.g. 3d, 12h, 90m"
        ));
    }
    Ok(secs)
}

/// One line of an export: a signed post exactly as it travels, hex-encoded, so
/// anyone can verify it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLine {
    /// `SignedPost` wire encoding, hex.
    pub signed_post: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Posts (or newer revisions) this node did not have.
    pub new: usize,
    /// Posts it already had, or older revisions.
    pub old: usize,
    /// Lines that are not valid signed posts (bad JSON, encoding, signature, rules,
    /// expired, blocked author).
    pub invalid: usize,
    /// Why lines were refused, in line order (at most [`MAX_REFUSED_LINES`]).
    #[serde(default)]
    pub refused: Vec<RefusedLine>,
}

/// The most refused lines an import report names one by one.
pub const MAX_REFUSED_LINES: usize = 1000;

/// One line an import refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedLine {
    /// The line number in the file (1-based).
    pub line: usize,
    /// Why, for people.
    pub reason: String,
}

/// `POST ui/login`: a one-time login URL for the web page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UiLoginJson {
    /// `http://ADDR/login?code=…`, good once, for 10 minutes.
    pub url: String,
}

/// `GET invite`: a code and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteJson {
    /// The code to share (`AIDMESH1-...`).
    pub code: String,
    /// The circle it invites to.
    pub circle: String,
    /// The addresses in it.
    pub addrs: Vec<libp2p::Multiaddr>,
}

/// `POST circles` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircleJoinJson {
    /// The circle to join.
    pub name: String,
}

/// `POST circles` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CircleJoinedJson {
    /// The circle.
    pub circle: String,
    /// Whether the node was not in it before.
    pub new: bool,
}

/// `POST join` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinJson {
    /// An invite code.
    pub code: String,
}

/// `POST join` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinedJson {
    /// The circle joined.
    pub circle: String,
    /// The peers from the code.
    pub bootstrap: Vec<libp2p::Multiaddr>,
    /// How many dials started.
    pub dialled: usize,
}

/// One ranked match (`GET /api/v1/posts/{id}/matches`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchJson {
    /// The matching post.
    pub post: PostJson,
    /// Its score (see `aidmesh::matcher`).
    pub score: f64,
    /// Why: `category food`, `2 tags`, `~3 km`, ...
    pub reasons: Vec<String>,
}

impl From<&crate::matcher::Match> for MatchJson {
    fn from(m: &crate::matcher::Match) -> Self {
        Self {
            post: PostJson::from(&m.post),
            score: (m.scored.score * 1000.0).round() / 1000.0,
            reasons: m.scored.reasons.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One of this node's open posts with its best matches (`GET /api/v1/matches`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostMatchesJson {
    /// The node's own post.
    pub post: PostJson,
    /// Its best matches, best first.
    pub matches: Vec<MatchJson>,
}

/// A standing alert (`/api/v1/alerts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertJson {
    /// Its id (for `DELETE /api/v1/alerts/{id}`).
    pub id: u64,
    /// What it looks for.
    pub filter: crate::alerts::AlertFilter,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<&crate::alerts::Alert> for AlertJson {
    fn from(a: &crate::alerts::Alert) -> Self {
        Self {
            id: a.id.0,
            filter: a.filter.clone(),
            created_at: rfc3339(a.created_at),
        }
    }
}
