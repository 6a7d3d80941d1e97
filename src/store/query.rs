//! What a caller can ask the store for, and how a post is checked against it.

use aidmesh_proto::rules::{check_circle, check_geohash, check_slug, MAX_TAG_CHARS};
use aidmesh_proto::{AuthorKey, Category, Field, Kind, Post, Status, ValidationError};
use serde::{Deserialize, Serialize};

use super::index::Entry;
use super::text::{self, Terms};

/// Results per query when the caller does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// Most results one query returns.
pub const MAX_LIMIT: usize = 1000;

/// Which statuses a query returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Posts that still stand, open or promised: what people browse (a promised post
    /// shows that it is taken rather than vanishing).
    #[default]
    Live,
    /// Open posts only: what matches and alerts consider.
    Open,
    /// Posts with exactly this status.
    Only(Status),
    /// Every status, tombstones included.
    Any,
}

impl StatusFilter {
    fn admits(self, status: Status) -> bool {
        match self {
            StatusFilter::Live => status.is_live(),
            StatusFilter::Open => status == Status::Open,
            StatusFilter::Only(s) => status == s,
            StatusFilter::Any => true,
        }
    }
}

/// Filters for [`super::Store::query`]; every filter set must hold. Results are newest
/// (by `updated_at`) first and never include expired posts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Query {
    /// Offers or requests.
    pub kind: Option<Kind>,
    /// One circle.
    pub circle: Option<String>,
    /// One category.
    pub category: Option<Category>,
    /// Posts carrying this tag.
    pub tag: Option<String>,
    /// Which statuses (default: open only).
    pub status: StatusFilter,
    /// Posts whose geohash starts with this prefix (a shorter prefix is a wider area).
    pub near: Option<String>,
    /// Every word of this text, stemmed in a post's language, must start a stem of
    /// the post's title or body, whatever the case and accents ("rides" finds
    /// "ride", "wheel" finds "wheelchair"); see [`super::text`].
    pub text: Option<String>,
    /// Posts by one author.
    pub author: Option<AuthorKey>,
    /// At most this many results (1..=[`MAX_LIMIT`]).
    pub limit: usize,
    /// Skip this many matching posts first.
    pub offset: usize,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            kind: None,
            circle: None,
            category: None,
            tag: None,
            status: StatusFilter::Live,
            near: None,
            text: None,
            author: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// A query that cannot be run; names the filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A filter value breaks the rule for that field.
    #[error("bad filter {0}")]
    Filter(#[from] ValidationError),
    /// `limit` out of range.
    #[error("limit: must be between 1 and {MAX_LIMIT}, got {0}")]
    Limit(usize),
}

impl QueryError {
    /// The name of the offending filter.
    pub fn field(&self) -> &'static str {
        match self {
            QueryError::Filter(e) => match e.field {
                Field::Location => "near",
                f => f.as_str(),
            },
            QueryError::Limit(_) => "limit",
        }
    }
}

impl Query {
    /// Checks every filter value.
    pub fn validate(&self) -> Result<(), QueryError> {
        if let Some(c) = &self.circle {
            check_circle(c)?;
        }
        if let Some(t) = &self.tag {
            check_slug(Field::Tags, t, MAX_TAG_CHARS)?;
        }
        if let Some(g) = &self.near {
            check_geohash(Field::Location, g)?;
        }
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(QueryError::Limit(self.limit));
        }
        Ok(())
    }

    /// The text filter split into terms.
    pub(super) fn terms(&self) -> Terms {
        self.text.as_deref().map(text::terms).unwrap_or_default()
    }

    /// Whether `post` passes every filter at time `now` (limit and offset aside). For
    /// many posts, split the text once with [`Query::text_terms`] and use
    /// [`Query::admits_with`].
    pub fn matches(&self, post: &Post, now: u64) -> bool {
        self.admits(post, now, &self.terms())
    }

    /// The text filter split into search terms, for [`Query::admits_with`].
    pub fn text_terms(&self) -> Terms {
        self.terms()
    }

    /// [`Query::matches`] with the text terms already split.
    pub fn admits_with(&self, post: &Post, now: u64, terms: &Terms) -> bool {
        self.admits(post, now, terms)
    }

    /// Whether `post` passes every filter at time `now`.
    pub(super) fn admits(&self, post: &Post, now: u64, terms: &Terms) -> bool {
        !post.is_expired(now)
            && self.status.admits(post.status)
            && self.kind.is_none_or(|k| post.kind == k)
            && self.category.is_none_or(|c| post.category == c)
            && self.circle.as_ref().is_none_or(|c| &post.circle == c)
            && self.tag.as_ref().is_none_or(|t| post.tags.contains(t))
            && self.author.is_none_or(|a| post.author == a)
            && self.near.as_ref().is_none_or(|g| {
                post.location
                    .as_ref()
                    .is_some_and(|l| l.starts_with(g.as_str()))
            })
            && text::matches(post, terms)
    }

    /// Whether a post the indexes know as `e` passes every filter but text at `now`:
    /// the same checks as [`Query::admits`], on the indexed fields.
    pub(super) fn admits_entry(&self, e: &Entry, now: u64) -> bool {
        !e.is_expired(now)
            && self.status.admits(e.status)
            && self.kind.is_none_or(|k| e.kind == k)
            && self.category.is_none_or(|c| e.category == c)
            && self.circle.as_deref().is_none_or(|c| &*e.circle == c)
            && self
                .tag
                .as_deref()
                .is_none_or(|t| e.tags.iter().any(|x| &**x == t))
            && self.author.is_none_or(|a| e.author == a)
            && self.near.as_ref().is_none_or(|g| {
                e.location
                    .as_deref()
                    .is_some_and(|l| l.starts_with(g.as_str()))
            })
    }
}
