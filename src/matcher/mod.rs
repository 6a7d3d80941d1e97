//! Matching offers to requests: for one post, the open, unexpired posts of the
//! opposite kind in the same circle and category, ranked by how well they answer it.
//!
//! # How a match is scored
//! A candidate must be open, unexpired, of the opposite kind, in the same circle and
//! the same category, and by another author. Its score is the sum of the parts below,
//! weighted by [`WEIGHTS`] (the only place the weights live):
//!
//! | part | points | reason shown |
//! |---|---|---|
//! | same category | required, 0 points | `category food` |
//! | shared tags | `tag` per tag, at most `max_tags` counted | `2 tags` |
//! | distance, both located | `distance / (1 + km / distance_scale_km)` | `~3 km` |
//! | distance, either unlocated | `no_location` (what a post `unlocated_km` away scores) | `anywhere` |
//! | shared words of title and body | `word` per stem, at most `max_words` counted | `3 words` |
//! | quantity, both given | `quantity × min(1, offered / requested)` | `quantity fits`, `quantity 3 of 5` |
//! | freshness of the candidate | `freshness × 0.5^(age / freshness_half_life_ms)` | `new` (under a day) |
//!
//! Ties go to the newer candidate, then the smaller post id, so a ranking is
//! deterministic for a given store and clock.
//!
//! # Cost
//! Candidates come from the store's indexes with bounded scans ([`crate::Store::scan`]):
//! the newest posts of the category, the newest posts of each shared tag and the
//! posts of the surrounding geohash area. No ranking looks at more than
//! [`Limits::max_loaded`] posts, whatever the store holds; the price is that an old,
//! far, untagged match in a very busy category can be missed.
//!
//! # Layout
//! - [`words`]: normalisation, stop words and stemming.
//! - [`geo`]: geohash centres and distances.
//! - [`live`]: standing alerts and own posts checked against each arriving post.

pub mod geo;
pub mod live;
pub mod words;

use std::collections::HashSet;
use std::fmt;

use aidmesh_proto::{Category, Kind, Post, PostId, Status};
use serde::{Serialize, Serializer};

use crate::store::{self, Query, StatusFilter, Store};

/// Matcher failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The weights of a match score; see the module docs for how each is used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// Points per shared tag.
    pub tag: f64,
    /// Most shared tags counted.
    pub max_tags: usize,
    /// Points for two posts in the same place; halved at `distance_scale_km`.
    pub distance: f64,
    /// The distance at which the distance points are halved.
    pub distance_scale_km: f64,
    /// Points when either post has no location: it matches anywhere, but scores like
    /// a post this far away, so any nearer located post ranks above it.
    pub unlocated_km: f64,
    /// Points per shared word stem of title and body.
    pub word: f64,
    /// Most shared stems counted.
    pub max_words: usize,
    /// Points when the offered quantity covers the requested one (scaled down when it
    /// covers part of it).
    pub quantity: f64,
    /// Points for a candidate updated just now; halved every `freshness_half_life_ms`.
    pub freshness: f64,
    /// Half-life of the freshness points.
    pub freshness_half_life_ms: u64,
}

/// The weights every ranking uses.
pub const WEIGHTS: Weights = Weights {
    tag: 2.0,
    max_tags: 4,
    distance: 4.0,
    distance_scale_km: 5.0,
    unlocated_km: 15.0,
    word: 1.0,
    max_words: 4,
    quantity: 1.0,
    freshness: 1.0,
    freshness_half_life_ms: 7 * 86_400_000,
};

/// The score from which an arriving post counts as a match for one of this node's
/// own open posts (and raises a `match` event). Same category and a few km apart, or
/// a shared tag and a shared word, reach it; same category alone does not.
pub const MATCH_THRESHOLD: f64 = 4.0;

/// Bounds on the candidates one ranking looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Newest open posts of the category kept as candidates.
    pub by_category: usize,
    /// Index entries of the category scanned for them.
    pub category_scan: usize,
    /// Newest open posts of each shared tag kept as candidates.
    pub by_tag: usize,
    /// Index entries of each tag scanned for them.
    pub tag_scan: usize,
    /// Tags of the post looked up (the first ones).
    pub tags: usize,
    /// Open posts of the surrounding area kept as candidates.
    pub by_area: usize,
    /// Index entries of the area scanned for them.
    pub area_scan: usize,
    /// Geohash characters that make the area (4: about 40 × 20 km).
    pub area_chars: usize,
    /// Bytes of a body read for words.
    pub body_bytes: usize,
}

impl Limits {
    /// The most posts one ranking loads from the store.
    pub const fn max_loaded(&self) -> usize {
        self.category_scan + self.tags * self.tag_scan + self.area_scan
    }
}

/// The bounds every ranking uses.
pub const LIMITS: Limits = Limits {
    by_category: 24,
    category_scan: 64,
    by_tag: 6,
    tag_scan: 12,
    tags: 4,
    by_area: 12,
    area_scan: 32,
    area_chars: 4,
    body_bytes: 1000,
};

/// Why a candidate scored what it did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// Same category (always present: it is required).
    Category(Category),
    /// This many shared tags.
    Tags(usize),
    /// This far apart, in km.
    Distance(f64),
    /// One of the two has no location.
    Anywhere,
    /// This many shared word stems.
    Words(usize),
    /// The offered quantity covers the requested one.
    QuantityFits,
    /// The offer covers part of the request.
    QuantityPartial {
        /// Offered.
        offered: u32,
        /// Requested.
        requested: u32,
    },
    /// Updated within the last day.
    New,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Category(c) => write!(f, "category {}", c.as_str()),
            Reason::Tags(1) => write!(f, "1 tag"),
            Reason::Tags(n) => write!(f, "{n} tags"),
            Reason::Distance(km) if *km < 1.0 => write!(f, "<1 km"),
            Reason::Distance(km) => write!(f, "~{km:.0} km"),
            Reason::Anywhere => write!(f, "anywhere"),
            Reason::Words(1) => write!(f, "1 word"),
            Reason::Words(n) => write!(f, "{n} words"),
            Reason::QuantityFits => write!(f, "quantity fits"),
            Reason::QuantityPartial { offered, requested } => {
                write!(f, "quantity {offered} of {requested}")
            }
            Reason::New => write!(f, "new"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A candidate's score and the reasons for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// The total, see the module docs.
    pub score: f64,
    /// One entry per part that contributed (and the category).
    pub reasons: Vec<Reason>,
}

/// One ranked candidate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Match {
    /// The matching post.
    pub post: Post,
    /// Its score and why.
    #[serde(flatten)]
    pub scored: Scored,
}

/// A post prepared for scoring many candidates against it: its words and place
/// worked out once.
#[derive(Clone, Debug)]
pub struct Probe<'a> {
    post: &'a Post,
    stems: Vec<u64>,
    place: Option<(f64, f64)>,
}

/// The stems of a post's title and the start of its body.
fn post_stems(post: &Post) -> Vec<u64> {
    let mut end = post.body.len().min(LIMITS.body_bytes);
    while !post.body.is_char_boundary(end) {
        end -= 1;
    }
    let mut all = Vec::new();
    words::stem_hashes(&post.title, &mut all);
    words::stem_hashes(&post.body[..end], &mut all);
    all.sort_unstable();
    all.dedup();
    all
}

impl<'a> Probe<'a> {
    /// Prepares `post`.
    pub fn new(post: &'a Post) -> Self {
        Self {
            post,
            stems: post_stems(post),
            place: post.location.as_deref().and_then(geo::decode),
        }
    }

    /// The post being matched.
    pub fn post(&self) -> &Post {
        self.post
    }

    /// Whether `other` may match at all: open, unexpired, opposite kind, same circle
    /// and category, another author.
    pub fn eligible(&self, other: &Post, now: u64) -> bool {
        let p = self.post;
        other.status == Status::Open
            && !other.is_expired(now)
            && other.kind == p.kind.opposite()
            && other.circle == p.circle
            && other.category == p.category
            && other.author != p.author
            && other.id != p.id
    }

    /// The score of `other` against this post at `now`, or `None` if it may not
    /// match (see [`Probe::eligible`]).
    pub fn score(&self, other: &Post, now: u64) -> Option<Scored> {
        if !self.eligible(other, now) {
            return None;
        }
        let w = &WEIGHTS;
        let mut score = 0.0;
        let mut reasons = vec![Reason::Category(other.category)];

        let tags = self
            .post
            .tags
            .iter()
            .filter(|t| other.tags.contains(t))
            .count();
        if tags > 0 {
            score += w.tag * tags.min(w.max_tags) as f64;
            reasons.push(Reason::Tags(tags));
        }

        let there = other.location.as_deref().and_then(geo::decode);
        match (self.place, there) {
            (Some(a), Some(b)) => {
                let km = geo::haversine_km(a, b);
                score += w.distance / (1.0 + km / w.distance_scale_km);
                reasons.push(Reason::Distance(km));
            }
            _ => {
                score += w.distance / (1.0 + w.unlocated_km / w.distance_scale_km);
                reasons.push(Reason::Anywhere);
            }
        }

        let shared = words::shared(&self.stems, &post_stems(other));
        if shared > 0 {
            score += w.word * shared.min(w.max_words) as f64;
            reasons.push(Reason::Words(shared));
        }

        let (offer, request) = match self.post.kind {
            Kind::Offer => (self.post, other),
            Kind::Request => (other, self.post),
        };
        if let (Some(offered), Some(requested)) = (offer.quantity, request.quantity) {
            if requested > 0 && offered < requested {
                score += w.quantity * f64::from(offered) / f64::from(requested);
                reasons.push(Reason::QuantityPartial { offered, requested });
            } else {
                score += w.quantity;
                reasons.push(Reason::QuantityFits);
            }
        }

        let age = now.saturating_sub(other.updated_at);
        score += w.freshness * 0.5f64.powf(age as f64 / w.freshness_half_life_ms as f64);
        if age < 86_400_000 {
            reasons.push(Reason::New);
        }
        Some(Scored { score, reasons })
    }
}

/// The store queries that yield the candidates for `post` (see the module docs).
fn candidate_queries(post: &Post) -> Vec<(Query, usize)> {
    let base = Query {
        kind: Some(post.kind.opposite()),
        circle: Some(post.circle.clone()),
        category: Some(post.category),
        status: StatusFilter::Open,
        ..Query::default()
    };
    let mut out = vec![(
        Query {
            limit: LIMITS.by_category,
            ..base.clone()
        },
        LIMITS.category_scan,
    )];
    for tag in post.tags.iter().take(LIMITS.tags) {
        out.push((
            Query {
                tag: Some(tag.clone()),
                limit: LIMITS.by_tag,
                ..base.clone()
            },
            LIMITS.tag_scan,
        ));
    }
    if let Some(place) = &post.location {
        let area: String = place.chars().take(LIMITS.area_chars).collect();
        out.push((
            Query {
                near: Some(area),
                limit: LIMITS.by_area,
                ..base
            },
            LIMITS.area_scan,
        ));
    }
    out
}

/// The best `limit` matches for `post` among the stored posts at `now`, best first.
/// `post` itself need not be stored.
pub fn rank(store: &Store, post: &Post, now: u64, limit: usize) -> Result<Vec<Match>, Error> {
    let probe = Probe::new(post);
    let mut seen: HashSet<PostId> = HashSet::new();
    let mut found = Vec::new();
    if post.status != Status::Open || post.is_expired(now) {
        return Ok(found);
    }
    for (query, max_scanned) in candidate_queries(post) {
        for candidate in store.scan(&query, now, max_scanned)? {
            let (other, _) = candidate.into_parts();
            if !seen.insert(other.id) {
                continue;
            }
            if let Some(scored) = probe.score(&other, now) {
                found.push(Match {
                    post: other,
                    scored,
                });
            }
        }
    }
    sort(&mut found);
    found.truncate(limit);
    Ok(found)
}

/// Best first: score, then newer, then smaller id.
fn sort(found: &mut [Match]) {
    found.sort_by(|a, b| {
        b.scored
            .score
            .total_cmp(&a.scored.score)
            .then(b.post.updated_at.cmp(&a.post.updated_at))
            .then(a.post.id.0.cmp(&b.post.id.0))
    });
}
