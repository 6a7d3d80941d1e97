//! Matching offers to requests: for one post, the open, unexpired posts of the
//! opposite kind in the same circle, ranked by how well they answer it.
//!
//! # How a match is scored
//! A candidate must be open, unexpired, of the opposite kind, in the same circle and
//! by another author. The same category is a strong signal, not a wall: a post of
//! another category is a candidate when its shared tags and words reach
//! `cross_category` points ("Help moving boxes" under *skills* meets "Van for moving
//! house" under *transport*). Its score is the sum of the parts below, weighted by
//! [`WEIGHTS`] (the only place the weights live):
//!
//! | part | points | reason shown |
//! |---|---|---|
//! | same category | `category` | `category food` |
//! | shared tags | `tag` per tag (`× weak` for a tag of weak words only), at most `max_tags` tags | `2 tags` |
//! | shared words of title and body | `word` × the summed weights of the shared stems, at most `max_words` | `3 words` |
//! | distance, both located | `distance / (1 + km / distance_scale_km)` | `~3 km` |
//! | distance, either unlocated | what a post `unlocated_km` away scores | `anywhere` |
//! | quantity, both given | `quantity × min(1, offered / requested)` | `quantity fits`, `quantity 3 of 5` |
//! | freshness of the candidate | `freshness × 0.5^(age / freshness_half_life_ms)` | `new` (under a day) |
//!
//! Words are stems in the candidate's language ([`crate::words`]): the post is
//! stemmed again as if written in it, so "Busco ayuda con la mudanza" meets "Tengo
//! furgoneta, ayudo con mudanzas" on `mudanz`. A shared stem weighs `1 + title`
//! when it is in both titles, 1 otherwise, times its rarity,
//! `min(1, ln(1 + n / df) / ln(1 + rare_ratio))` for a stem that `df` of the `n`
//! stored posts have (`n` at least `min_posts`: a small store cannot tell a common
//! word from a rare one), times `weak` if it comes from a weak word ("kids", "size",
//! see [`crate::words::stop`]) — so nappies "for the kids" and kids' winter coats
//! share little.
//!
//! An arriving post is a match for one of the node's own posts (and raises a `match`
//! event) when its score reaches [`MATCH_THRESHOLD`] and its shared tags and words
//! alone reach [`MIN_RELEVANCE`]: near and in the same category is not enough.
//!
//! Ties go to the newer candidate, then the smaller post id, so a ranking is
//! deterministic for a given store and clock.
//!
//! # Cost
//! Candidates come from the store's indexes with bounded scans
//! ([`crate::Store::candidates`]): the newest posts of the category, the newest posts
//! of each shared tag, the posts of the surrounding geohash area and the newest posts
//! that share one of the post's rarest words (any category). They are scored from
//! what the indexes hold of them (fields and word stems), so no ranking looks at
//! more than [`Limits::max_loaded`] candidates, whatever the store holds, and only the
//! few it returns are read from disk; the price is that an old, far match that
//! shares only common words can be missed.
//!
//! # Layout
//! - [`geo`]: geohash centres and distances.
//! - [`live`]: standing alerts and own posts checked against each arriving post.
//! - Words and stems: [`crate::words`], shared with text search.

pub mod geo;
pub mod live;

use std::fmt;
use std::sync::OnceLock;

use aidmesh_proto::{AuthorKey, Category, Kind, Post, PostId, Status};
use serde::{Serialize, Serializer};

use crate::store::{self, text, Query, StatusFilter, StemScan, Store, Summary};
use crate::words::{self, Analysis, Lang};

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
    /// Points for the same category.
    pub category: f64,
    /// Points (tags and words) a candidate of another category needs to be one.
    pub cross_category: f64,
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
    /// Points per shared word stem of full weight.
    pub word: f64,
    /// Most summed stem weight counted.
    pub max_words: f64,
    /// Weight of a weak word or tag, against 1 for any other.
    pub weak: f64,
    /// Extra weight, as a share, of a stem of both titles: a title says what a post
    /// is about.
    pub title: f64,
    /// A stem in at most one stored post in this many has full weight.
    pub rare_ratio: f64,
    /// The store size below which every word counts as rare.
    pub min_posts: f64,
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
    category: 1.5,
    cross_category: 1.5,
    tag: 2.0,
    max_tags: 4,
    distance: 3.0,
    distance_scale_km: 5.0,
    unlocated_km: 15.0,
    word: 4.0,
    max_words: 3.0,
    weak: 0.25,
    title: 0.5,
    rare_ratio: 50.0,
    min_posts: 100.0,
    quantity: 1.0,
    freshness: 1.0,
    freshness_half_life_ms: 7 * 86_400_000,
};

/// The score from which an arriving post counts as a match for one of this node's
/// own open posts (and raises a `match` event), if it also has [`MIN_RELEVANCE`].
pub const MATCH_THRESHOLD: f64 = 4.0;

/// The points from shared tags and words an arriving post needs to be a match for
/// one of this node's own posts: one shared tag or one rare shared word; being near,
/// in the same category, or sharing one weak word is not enough.
pub const MIN_RELEVANCE: f64 = 2.0;

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
    /// Rarest words of the post looked up.
    pub stems: usize,
    /// Newest open posts kept per word.
    pub by_stem: usize,
    /// Posts with the word looked at for them.
    pub stem_scan: usize,
}

impl Limits {
    /// The most candidates one ranking scores.
    pub const fn max_loaded(&self) -> usize {
        self.category_scan + self.tags * self.tag_scan + self.area_scan + self.stems * self.by_stem
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
    stems: 6,
    by_stem: 8,
    stem_scan: 64,
};

/// Why a candidate scored what it did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// Same category.
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
    /// The part of the total from shared tags and words.
    #[serde(skip)]
    pub relevance: f64,
    /// One entry per part that contributed.
    pub reasons: Vec<Reason>,
}

impl Scored {
    /// Whether this is a match worth telling the author about: see
    /// [`MATCH_THRESHOLD`] and [`MIN_RELEVANCE`].
    pub fn is_match(&self) -> bool {
        self.score >= MATCH_THRESHOLD && self.relevance >= MIN_RELEVANCE
    }
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

/// What scoring reads of a candidate: a [`Post`], or the store's [`Summary`] of a
/// stored one (so a ranking need not load the posts it passes over).
pub trait Candidate {
    /// Its id.
    fn id(&self) -> PostId;
    /// Its author.
    fn author(&self) -> AuthorKey;
    /// Offer or request.
    fn kind(&self) -> Kind;
    /// Its category.
    fn category(&self) -> Category;
    /// Its circle.
    fn circle(&self) -> &str;
    /// Its status.
    fn status(&self) -> Status;
    /// When it expires (ms).
    fn expires_at(&self) -> u64;
    /// When it was last changed (ms).
    fn updated_at(&self) -> u64;
    /// Whether it has the tag `tag`.
    fn has_tag(&self, tag: &str) -> bool;
    /// Its geohash.
    fn location(&self) -> Option<&str>;
    /// Its quantity.
    fn quantity(&self) -> Option<u32>;
}

impl Candidate for Post {
    fn id(&self) -> PostId {
        self.id
    }
    fn author(&self) -> AuthorKey {
        self.author
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn category(&self) -> Category {
        self.category
    }
    fn circle(&self) -> &str {
        &self.circle
    }
    fn status(&self) -> Status {
        self.status
    }
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
    fn updated_at(&self) -> u64 {
        self.updated_at
    }
    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
    fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
    fn quantity(&self) -> Option<u32> {
        self.quantity
    }
}

impl Candidate for Summary<'_> {
    fn id(&self) -> PostId {
        Summary::id(self)
    }
    fn author(&self) -> AuthorKey {
        Summary::author(self)
    }
    fn kind(&self) -> Kind {
        Summary::kind(self)
    }
    fn category(&self) -> Category {
        Summary::category(self)
    }
    fn circle(&self) -> &str {
        Summary::circle(self)
    }
    fn status(&self) -> Status {
        Summary::status(self)
    }
    fn expires_at(&self) -> u64 {
        Summary::expires_at(self)
    }
    fn updated_at(&self) -> u64 {
        Summary::updated_at(self)
    }
    fn has_tag(&self, tag: &str) -> bool {
        self.tags().any(|t| t == tag)
    }
    fn location(&self) -> Option<&str> {
        Summary::location(self)
    }
    fn quantity(&self) -> Option<u32> {
        Summary::quantity(self)
    }
}

/// A stem of the post being matched and its weight (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Weighted {
    hash: u64,
    weight: f64,
    /// Whether it is a stem of the post's title.
    title: bool,
}

/// Where a probe's stem frequencies come from: per stem, how many stored posts
/// have it, and how many posts are stored.
type Frequencies<'a> = &'a dyn Fn(&[&str]) -> (Vec<usize>, usize);

/// Number of languages a probe can be stemmed in: [`Lang::STEMMED`] and unknown.
const LANGS: usize = Lang::STEMMED.len() + 1;

/// A post prepared for scoring many candidates against it: its place worked out
/// once, its words once per language the candidates are in.
pub struct Probe {
    post: Post,
    /// The language of the post itself.
    lang: Lang,
    /// Where word frequencies come from; without a store every word is rare.
    store: Option<Store>,
    /// The post's own analysis (in its language).
    own: Analysis,
    /// Per language, the post's stems as if written in it, sorted by hash.
    stems: [OnceLock<Vec<Weighted>>; LANGS],
    place: Option<(f64, f64)>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("post", &self.post.id)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

fn lang_slot(lang: Lang) -> usize {
    Lang::STEMMED
        .iter()
        .position(|l| *l == lang)
        .unwrap_or(LANGS - 1)
}

/// The weight of a stem in `df` of `n` stored posts (see the module docs).
fn rarity(df: usize, n: usize) -> f64 {
    let w = &WEIGHTS;
    let n = (n as f64).max(w.min_posts);
    let df = df.max(1) as f64;
    ((1.0 + n / df).ln() / (1.0 + w.rare_ratio).ln()).min(1.0)
}

/// Whether every word of a tag is a weak word.
fn weak_tag(tag: &str) -> bool {
    tag.split('-').all(words::stop::is_weak)
}

/// How many of the sorted `stems` (of which `title` are the title's) the sorted
/// `probe` stems share, and their summed weight (more for a stem of both titles).
fn shared(probe: &[Weighted], stems: &[u64], title: &[u64]) -> (usize, f64) {
    let (mut i, mut j, mut n, mut w) = (0, 0, 0, 0.0);
    while i < probe.len() && j < stems.len() {
        match probe[i].hash.cmp(&stems[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                let both_titles = probe[i].title && title.binary_search(&stems[j]).is_ok();
                w += probe[i].weight
                    * if both_titles {
                        1.0 + WEIGHTS.title
                    } else {
                        1.0
                    };
                i += 1;
                j += 1;
            }
        }
    }
    (n, w)
}

/// A post's words as the matcher compares them: its language and the sorted
/// hashes ([`words::hash`]) of all its stems and of its title's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostWords {
    /// The language of the stems.
    pub lang: Lang,
    /// Every stem of title and body.
    pub stems: Vec<u64>,
    /// The title's stems.
    pub title: Vec<u64>,
}

impl PostWords {
    /// Analyses `post` (the store's text index holds the same for stored posts).
    pub fn of(post: &Post) -> Self {
        let (lang, (stems, title)) = text::stem_hashes(&text::analyse(post));
        Self { lang, stems, title }
    }
}

impl Probe {
    /// Prepares `post`, with every word counted as rare (no store to tell).
    pub fn new(post: &Post) -> Self {
        Self::prepare(post, None)
    }

    /// Prepares `post`, weighing its words by how many posts of `store` have them.
    pub fn with_store(post: &Post, store: &Store) -> Self {
        Self::prepare(post, Some(store.clone()))
    }

    fn prepare(post: &Post, store: Option<Store>) -> Self {
        let own = text::analyse(post);
        Self {
            lang: own.lang,
            own,
            post: post.clone(),
            store,
            stems: Default::default(),
            place: post.location.as_deref().and_then(geo::decode),
        }
    }

    /// The post being matched.
    pub fn post(&self) -> &Post {
        &self.post
    }

    /// The post's stems as if written in `lang`, weighted.
    fn stems_in(&self, lang: Lang) -> &[Weighted] {
        self.stems_weighed(lang, &|texts| match &self.store {
            Some(s) => s.stem_frequencies(texts),
            None => (vec![1; texts.len()], 0),
        })
    }

    /// [`Probe::stems_in`], the stems' frequencies (per stem, and the number of
    /// posts) from `frequencies` when they are not weighed yet.
    fn stems_weighed(&self, lang: Lang, frequencies: Frequencies<'_>) -> &[Weighted] {
        self.stems[lang_slot(lang)].get_or_init(|| {
            let other;
            let a = if lang == self.lang {
                &self.own
            } else {
                other = words::analyse_as(lang, self.lang, &[&self.post.title, &self.post.body]);
                &other
            };
            let texts: Vec<&str> = a.texts().collect();
            let (df, n) = frequencies(&texts);
            let mut out: Vec<Weighted> = a
                .stems
                .iter()
                .zip(df)
                .map(|(s, df)| Weighted {
                    hash: words::hash(&s.text),
                    weight: rarity(df, n) * if s.weak { WEIGHTS.weak } else { 1.0 },
                    title: s.title,
                })
                .collect();
            out.sort_unstable_by_key(|w| w.hash);
            out
        })
    }

    /// The post's own strong stems, rarest in the store first: where candidates
    /// that share a word are looked for.
    fn rarest_stems(&self) -> Vec<String> {
        let strong: Vec<&str> = self
            .own
            .stems
            .iter()
            .filter(|s| !s.weak)
            .map(|s| s.text.as_str())
            .collect();
        let (df, stored) = match &self.store {
            Some(s) => (s.stem_frequencies(&strong).0, s.contains(&self.post.id)),
            None => (vec![1; strong.len()], false),
        };
        // A stem only the post itself has leads nowhere.
        let own = usize::from(stored);
        let mut ranked: Vec<(usize, &str)> = df
            .into_iter()
            .zip(strong)
            .filter(|(df, _)| *df > own)
            .collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .take(LIMITS.stems)
            .map(|(_, s)| s.to_string())
            .collect()
    }

    /// Whether `other` may be ranked at all: open, unexpired, opposite kind, same
    /// circle, another author (the category and words decide the rest).
    pub fn eligible(&self, other: &impl Candidate, now: u64) -> bool {
        let p = &self.post;
        other.status() == Status::Open
            && other.expires_at() > now
            && other.kind() == p.kind.opposite()
            && other.circle() == p.circle
            && other.author() != p.author
            && other.id() != p.id
    }

    /// The score of `other` against this post at `now`, or `None` if it may not
    /// match (see [`Probe::eligible`] and the module docs). Analyses `other`; see
    /// [`Probe::score_stemmed`] for a post whose stems are known.
    pub fn score(&self, other: &Post, now: u64) -> Option<Scored> {
        if !self.eligible(other, now) {
            return None;
        }
        self.score_stemmed(other, &PostWords::of(other), now)
    }

    /// [`Probe::score`] for a post whose words are known.
    pub fn score_stemmed(
        &self,
        other: &impl Candidate,
        words: &PostWords,
        now: u64,
    ) -> Option<Scored> {
        if !self.eligible(other, now) {
            return None;
        }
        let w = &WEIGHTS;
        let mut reasons = Vec::new();

        let shared_tags: Vec<&String> =
            self.post.tags.iter().filter(|t| other.has_tag(t)).collect();
        let mut tag_points = 0.0;
        for t in shared_tags.iter().take(w.max_tags) {
            tag_points += w.tag * if weak_tag(t) { w.weak } else { 1.0 };
        }
        let (shared_words, weight) = shared(self.stems_in(words.lang), &words.stems, &words.title);
        let word_points = w.word * weight.min(w.max_words);
        let relevance = tag_points + word_points;

        let same_category = other.category() == self.post.category;
        if !same_category && relevance < w.cross_category {
            return None;
        }
        let mut score = relevance;
        if same_category {
            score += w.category;
            reasons.push(Reason::Category(other.category()));
        }
        if !shared_tags.is_empty() {
            reasons.push(Reason::Tags(shared_tags.len()));
        }

        let there = other.location().and_then(geo::decode);
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

        if shared_words > 0 {
            reasons.push(Reason::Words(shared_words));
        }

        let (offered, requested) = match self.post.kind {
            Kind::Offer => (self.post.quantity, other.quantity()),
            Kind::Request => (other.quantity(), self.post.quantity),
        };
        if let (Some(offered), Some(requested)) = (offered, requested) {
            if requested > 0 && offered < requested {
                score += w.quantity * f64::from(offered) / f64::from(requested);
                reasons.push(Reason::QuantityPartial { offered, requested });
            } else {
                score += w.quantity;
                reasons.push(Reason::QuantityFits);
            }
        }

        let age = now.saturating_sub(other.updated_at());
        score += w.freshness * 0.5f64.powf(age as f64 / w.freshness_half_life_ms as f64);
        if age < 86_400_000 {
            reasons.push(Reason::New);
        }
        Some(Scored {
            score,
            relevance,
            reasons,
        })
    }
}

/// The filters every candidate of `post` must pass.
fn base_query(post: &Post) -> Query {
    Query {
        kind: Some(post.kind.opposite()),
        circle: Some(post.circle.clone()),
        status: StatusFilter::Open,
        ..Query::default()
    }
}

/// The store queries that yield the candidates for `post` (see the module docs),
/// each with how many index entries it may scan; the shared-word candidates come
/// from a [`StemScan`] beside these.
fn candidate_queries(post: &Post) -> Vec<(Query, usize)> {
    let base = base_query(post);
    let mut out = vec![(
        Query {
            category: Some(post.category),
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
                category: Some(post.category),
                limit: LIMITS.by_area,
                ..base
            },
            LIMITS.area_scan,
        ));
    }
    out
}

/// A scored candidate, before its post is loaded. Best first: score, then newer,
/// then smaller id.
struct Ranked {
    id: PostId,
    updated_at: u64,
    scored: Scored,
}

/// The best `limit` matches for `post` among the stored posts at `now`, best first.
/// `post` itself need not be stored.
///
/// Candidates are scored from the store's indexes ([`Store::candidates`]); only the
/// `limit` best are loaded.
pub fn rank(store: &Store, post: &Post, now: u64, limit: usize) -> Result<Vec<Match>, Error> {
    if post.status != Status::Open || post.is_expired(now) || limit == 0 {
        return Ok(Vec::new());
    }
    let probe = Probe::with_store(post, store);
    let rare = probe.rarest_stems();
    let rare: Vec<&str> = rare.iter().map(String::as_str).collect();
    let base = base_query(post);
    let stems = StemScan {
        query: &base,
        stems: &rare,
        per_stem: LIMITS.by_stem,
        scan: LIMITS.stem_scan,
    };
    let mut ranked: Vec<Ranked> = Vec::new();
    store.candidates(&candidate_queries(post), &stems, now, |c| {
        if !probe.eligible(&c, now) {
            return;
        }
        let (lang, (stems, title)) = c.stems();
        // Scoring runs under the store's read of its indexes, so the post's words
        // in the candidate's language are weighed through that same read.
        probe.stems_weighed(lang, &|texts| c.stem_frequencies(texts));
        let words = PostWords { lang, stems, title };
        if let Some(scored) = probe.score_stemmed(&c, &words, now) {
            ranked.push(Ranked {
                id: c.id(),
                updated_at: c.updated_at(),
                scored,
            });
        }
    })?;
    ranked.sort_by(|a, b| {
        b.scored
            .score
            .total_cmp(&a.scored.score)
            .then(b.updated_at.cmp(&a.updated_at))
            .then(a.id.0.cmp(&b.id.0))
    });
    let mut found = Vec::with_capacity(limit.min(ranked.len()));
    for r in ranked {
        // A post deleted or changed since it was scored is passed over.
        let Some(p) = store.get(&r.id)? else { continue };
        if p.post().updated_at != r.updated_at {
            continue;
        }
        found.push(Match {
            post: p.into_parts().0,
            scored: r.scored,
        });
        if found.len() == limit {
            break;
        }
    }
    Ok(found)
}
