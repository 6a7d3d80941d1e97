//! The store's indexes, in memory: derived from the records when the store opens and
//! kept in step with every write.
//!
//! sled costs about the same per key whatever the key's size, and each post used to
//! cost a dozen index keys on every write. On disk the store now keeps only what
//! cannot be derived (one record per post, see [`super::keys`]); everything a query,
//! the write path, sync or the expiry sweep looks up by something other than the
//! record number lives here:
//!
//! - `ids`: post id → seq, and per seq an [`Entry`] with every field a filter or an
//!   index needs, so the write path decides without reading sled and most filters
//!   are checked without loading a post;
//! - time-ordered sets of [`Pos`] (newest first) for every post, per category, per
//!   circle and per tag;
//! - geohash → seq for areas, expiry time → seq for the sweep, content hash → seq for
//!   fetches by hash, and per circle the sync items;
//! - the word stems of every post's title and body, with the posts that have each
//!   ([`super::text`]), for text search and the matcher.
//!
//! Nothing here is ever written to disk, so it can never disagree with the records
//! after a crash: it is rebuilt from them at open.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use rustc_hash::FxHashMap;

use aidmesh_proto::riblt::{CodedSet, Fingerprint, Item, ITEM_HASH_BYTES};
use aidmesh_proto::{AuthorKey, Category, ContentHash, Kind, Post, PostId, Status};

use super::holdings::Holdings;
use super::query::Query;
use super::swept::SweptSet;
use super::sync_set::{SyncKey, SyncSet};
use super::text::{PostText, Terms, TextIndex};
use crate::words::{Analysis, Lang};

/// A record number: the key of a post's record, stable across its revisions.
pub(super) type Seq = u64;

/// A text search goes straight to the posts of its rarest term when they are at
/// most this many, or fewer than streaming would look at.
const TEXT_DIRECT: usize = 64;

/// Bytes of a geohash kept in the area index (the rules allow at most 6).
const GEOHASH_BYTES: usize = 6;

/// A place in a time-ordered index: ascending order is newest `updated_at` first,
/// then by seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    /// `u64::MAX - updated_at`.
    newest: u64,
    /// The post's record.
    pub(super) seq: Seq,
}

impl Pos {
    fn new(updated_at: u64, seq: Seq) -> Self {
        Self {
            newest: u64::MAX - updated_at,
            seq,
        }
    }
}

/// What the indexes know of one stored post: enough to decide a write, check every
/// filter but text, and remove its index entries, without loading the post.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// To drop the id mapping when the post goes.
    pub(super) id: PostId,
    /// Ties between equal revisions; fetch by hash; sync items.
    pub(super) hash: ContentHash,
    /// Blocking and the author filter.
    pub(super) author: AuthorKey,
    /// Which revision is stored.
    pub(super) revision: u32,
    /// Seniority for the per-author quota.
    pub(super) created_at: u64,
    /// Size of the record, for the circle's byte budget.
    pub(super) bytes: u32,
    /// Ordering and sync items.
    pub(super) updated_at: u64,
    /// The sweep, expired-post filtering and sync items.
    pub(super) expires_at: u64,
    /// Circle filter and index.
    pub(super) circle: Box<str>,
    /// Tag filter and index.
    pub(super) tags: Box<[Box<str>]>,
    /// Area filter and index.
    pub(super) location: Option<Box<str>>,
    /// Category filter and index.
    pub(super) category: Category,
    /// Kind filter.
    pub(super) kind: Kind,
    /// Status filter.
    pub(super) status: Status,
    /// What the matcher weighs an offer's quantity against a request's by.
    pub(super) quantity: Option<u32>,
    /// Text filter: the post's stems in the text index.
    pub(super) text: PostText,
}

impl Entry {
    fn of(post: &Post, hash: ContentHash, text: PostText, bytes: u32) -> Self {
        Self {
            id: post.id,
            hash,
            author: post.author,
            revision: post.revision,
            created_at: post.created_at,
            bytes,
            updated_at: post.updated_at,
            expires_at: post.expires_at,
            circle: post.circle.as_str().into(),
            tags: post.tags.iter().map(|t| t.as_str().into()).collect(),
            location: post.location.as_deref().map(Into::into),
            category: post.category,
            kind: post.kind,
            status: post.status,
            quantity: post.quantity,
            text,
        }
    }

    fn pos(&self, seq: Seq) -> Pos {
        Pos::new(self.updated_at, seq)
    }

    /// Whether the post has expired at `now` (as [`Post::is_expired`]).
    pub(super) fn is_expired(&self, now: u64) -> bool {
        self.expires_at <= now
    }

    fn sync_key(&self, seq: Seq) -> SyncKey {
        let mut h = [0u8; ITEM_HASH_BYTES];
        h.copy_from_slice(&self.hash.0[..ITEM_HASH_BYTES]);
        (self.updated_at, h, self.expires_at, seq)
    }
}

/// A geohash, zero-padded: orders like the string, and a prefix is a range.
type Geo = [u8; GEOHASH_BYTES];

fn geo(s: &str, pad: u8) -> Geo {
    let mut g = [pad; GEOHASH_BYTES];
    for (d, s) in g.iter_mut().zip(s.bytes()) {
        *d = s;
    }
    g
}

/// Which time-ordered index a query streams.
#[derive(Clone, Copy, Debug)]
enum Source<'a> {
    All,
    Category(Category),
    Circle(&'a str),
    Tag(&'a str),
}

/// Every index of the stored posts (see the module docs).
#[derive(Default)]
pub(super) struct Index {
    /// Per stored post, what the indexes know of it. Seqs are this store's own
    /// numbers, never a peer's, so a fast hash without protection against chosen
    /// keys is safe here (and every candidate scan looks entries up).
    entries: FxHashMap<Seq, Entry>,
    /// Post id → seq.
    ids: HashMap<PostId, Seq>,
    /// Content hash → seq, ordered for prefix look-ups.
    hashes: BTreeMap<[u8; 32], Seq>,
    /// Every post, newest first.
    all: BTreeSet<Pos>,
    /// Per category, newest first.
    by_category: HashMap<Category, BTreeSet<Pos>>,
    /// Per circle, newest first.
    by_circle: HashMap<Box<str>, BTreeSet<Pos>>,
    /// Per tag, newest first.
    by_tag: HashMap<Box<str>, BTreeSet<Pos>>,
    /// Posts with a location, by geohash.
    by_place: BTreeSet<(Geo, Seq)>,
    /// Every post by expiry time, for the sweep.
    expiry: BTreeSet<(u64, Seq)>,
    /// Per circle, the sync items and their sketch.
    sync: HashMap<Box<str>, SyncSet>,
    /// Authors refused on this node (a copy of the `blocked` tree).
    blocked: HashSet<AuthorKey>,
    /// Who holds what per circle, for the limits.
    pub(super) holdings: Holdings,
    /// Swept ids (a copy of the `swept` tree).
    pub(super) swept: SweptSet,
    /// The word stems of every post.
    text: TextIndex,
    /// While the store opens: the ordered sets (`all` to `hashes`) are left empty
    /// and built from `entries` at once by [`Index::build_sets`], which sorts each
    /// once instead of searching it for every post.
    deferred: bool,
}

impl Index {
    /// An index for the store's open: the ordered sets are built at the end, by
    /// [`Index::build_sets`].
    pub(super) fn deferring() -> Self {
        Self {
            deferred: true,
            ..Self::default()
        }
    }

    /// Builds the ordered sets from the entries, at the end of the store's open.
    pub(super) fn build_sets(&mut self) {
        if !self.deferred {
            return;
        }
        self.deferred = false;
        let n = self.entries.len();
        let mut all = Vec::with_capacity(n);
        let mut by_category: HashMap<Category, Vec<Pos>> = HashMap::new();
        let mut by_circle: HashMap<Box<str>, Vec<Pos>> = HashMap::new();
        let mut by_tag: HashMap<Box<str>, Vec<Pos>> = HashMap::new();
        let mut by_place = Vec::with_capacity(n);
        let mut expiry = Vec::with_capacity(n);
        let mut sync: HashMap<Box<str>, Vec<SyncKey>> = HashMap::new();
        let mut hashes = Vec::with_capacity(n);
        // Keyed by strings every post repeats: copied once per key, not per post.
        fn push<V>(m: &mut HashMap<Box<str>, Vec<V>>, k: &str, v: V) {
            match m.get_mut(k) {
                Some(list) => list.push(v),
                None => {
                    m.insert(k.into(), vec![v]);
                }
            }
        }
        for (&seq, e) in &self.entries {
            let pos = e.pos(seq);
            all.push(pos);
            by_category.entry(e.category).or_default().push(pos);
            push(&mut by_circle, &e.circle, pos);
            for t in e.tags.iter() {
                push(&mut by_tag, t, pos);
            }
            if let Some(l) = &e.location {
                by_place.push((geo(l, 0), seq));
            }
            expiry.push((e.expires_at, seq));
            push(&mut sync, &e.circle, e.sync_key(seq));
            hashes.push((e.hash.0, seq));
        }
        fn sets<K: std::hash::Hash + Eq, V: Ord>(m: HashMap<K, Vec<V>>) -> HashMap<K, BTreeSet<V>> {
            m.into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect()
        }
        self.all = all.into_iter().collect();
        self.by_category = sets(by_category);
        self.by_circle = sets(by_circle);
        self.by_tag = sets(by_tag);
        self.by_place = by_place.into_iter().collect();
        self.expiry = expiry.into_iter().collect();
        self.sync = sync
            .into_iter()
            .map(|(circle, keys)| (circle, SyncSet::of(keys)))
            .collect();
        self.hashes = hashes.into_iter().collect();
    }

    /// Number of stored posts.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry of `post` if the indexes hold this revision of it (same id,
    /// revision and update time).
    pub(super) fn holding(&self, post: &Post) -> Option<(Seq, &Entry)> {
        self.by_id(&post.id)
            .filter(|(_, e)| e.revision == post.revision && e.updated_at == post.updated_at)
    }

    /// The seq and entry of a stored post id.
    pub(super) fn by_id(&self, id: &PostId) -> Option<(Seq, &Entry)> {
        let seq = *self.ids.get(id)?;
        self.entries.get(&seq).map(|e| (seq, e))
    }

    /// The entry of a seq.
    pub(super) fn entry(&self, seq: Seq) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    /// Whether `author` is blocked.
    pub(super) fn is_blocked(&self, author: &AuthorKey) -> bool {
        self.blocked.contains(author)
    }

    /// Records that `author` is blocked (or not any more).
    pub(super) fn set_blocked(&mut self, author: AuthorKey, blocked: bool) {
        if blocked {
            self.blocked.insert(author);
        } else {
            self.blocked.remove(&author);
        }
    }

    /// Indexes `post` (content hash `hash`, title and body analysed as `words`, see
    /// [`super::text::analyse`], a record of `bytes` bytes) under `seq`, replacing
    /// whatever was there.
    pub(super) fn insert(
        &mut self,
        seq: Seq,
        post: &Post,
        hash: ContentHash,
        words: &Analysis,
        bytes: u32,
    ) {
        let stems = words.stems.iter().map(|s| (s.text.as_str(), s.title));
        self.insert_stems(seq, post, hash, words.lang, stems, bytes);
    }

    /// [`Index::insert`] with the analysis as its language and borrowed stems (each
    /// with whether it is of the title), as the stored analyses give them.
    pub(super) fn insert_stems<'a>(
        &mut self,
        seq: Seq,
        post: &Post,
        hash: ContentHash,
        lang: Lang,
        stems: impl IntoIterator<Item = (&'a str, bool)>,
        bytes: u32,
    ) {
        self.remove(seq);
        let text = self.text.insert_stems(seq, lang, stems);
        let e = Entry::of(post, hash, text, bytes);
        self.holdings.insert(seq, &e);
        if self.deferred {
            self.ids.insert(e.id, seq);
            self.entries.insert(seq, e);
            return;
        }
        let pos = e.pos(seq);
        self.all.insert(pos);
        self.by_category.entry(e.category).or_default().insert(pos);
        self.by_circle
            .entry(e.circle.clone())
            .or_default()
            .insert(pos);
        for t in e.tags.iter() {
            self.by_tag.entry(t.clone()).or_default().insert(pos);
        }
        if let Some(l) = &e.location {
            self.by_place.insert((geo(l, 0), seq));
        }
        self.expiry.insert((e.expires_at, seq));
        match self.sync.get_mut(&e.circle) {
            Some(set) => {
                set.insert(e.sync_key(seq));
            }
            None => {
                let mut set = SyncSet::default();
                set.insert(e.sync_key(seq));
                self.sync.insert(e.circle.clone(), set);
            }
        }
        self.hashes.insert(e.hash.0, seq);
        self.ids.insert(e.id, seq);
        self.entries.insert(seq, e);
    }

    /// Drops every index entry of `seq`; returns what was known of it.
    pub(super) fn remove(&mut self, seq: Seq) -> Option<Entry> {
        let e = self.entries.remove(&seq)?;
        self.holdings.remove(seq, &e);
        self.text.remove(seq, &e.text);
        let pos = e.pos(seq);
        self.all.remove(&pos);
        remove_from(&mut self.by_category, &e.category, &pos);
        remove_from(&mut self.by_circle, &e.circle, &pos);
        for t in e.tags.iter() {
            remove_from(&mut self.by_tag, t, &pos);
        }
        if let Some(l) = &e.location {
            self.by_place.remove(&(geo(l, 0), seq));
        }
        self.expiry.remove(&(e.expires_at, seq));
        if let Some(set) = self.sync.get_mut(&e.circle) {
            set.remove(&e.sync_key(seq));
            if set.is_empty() {
                self.sync.remove(&e.circle);
            }
        }
        if self.hashes.get(&e.hash.0) == Some(&seq) {
            self.hashes.remove(&e.hash.0);
        }
        if self.ids.get(&e.id) == Some(&seq) {
            self.ids.remove(&e.id);
        }
        Some(e)
    }

    /// Up to `max` seqs of posts that expired by `now`.
    pub(super) fn expired(&self, now: u64, max: usize) -> Vec<Seq> {
        self.expiry
            .range(..=(now, Seq::MAX))
            .take(max)
            .map(|&(_, seq)| seq)
            .collect()
    }

    /// Every seq of `author`'s posts.
    pub(super) fn of_author(&self, author: &AuthorKey) -> Vec<Seq> {
        self.entries
            .iter()
            .filter(|(_, e)| &e.author == author)
            .map(|(&seq, _)| seq)
            .collect()
    }

    /// Every stored post of `circle` (tombstones and unswept expired ones included).
    pub(super) fn of_circle(&self, circle: &str) -> Vec<Seq> {
        self.by_circle
            .get(circle)
            .map(|set| set.iter().map(|p| p.seq).collect())
            .unwrap_or_default()
    }

    /// Posts of `circle` stored, the distinct authors among them, and the newest
    /// `updated_at`.
    pub(super) fn circle_summary(&self, circle: &str) -> (usize, usize, Option<u64>) {
        let Some(set) = self.by_circle.get(circle) else {
            return (0, 0, None);
        };
        let authors: HashSet<&AuthorKey> = set
            .iter()
            .filter_map(|p| self.entries.get(&p.seq))
            .map(|e| &e.author)
            .collect();
        let newest = set.iter().next().map(|p| u64::MAX - p.newest);
        (set.len(), authors.len(), newest)
    }

    /// Up to `max` stored post ids whose hex form starts with `hex` (lowercase
    /// hex digits), in id order. Looks at every id: for ids typed by people, not for
    /// hot paths.
    pub(super) fn ids_with_prefix(&self, hex: &str, max: usize) -> Vec<PostId> {
        let nibbles: Option<Vec<u8>> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect();
        let Some(nibbles) = nibbles.filter(|n| n.len() <= 64) else {
            return Vec::new();
        };
        let starts = |id: &PostId| {
            nibbles.iter().enumerate().all(|(i, &n)| {
                let byte = id.0[i / 2];
                let have = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
                have == n
            })
        };
        let mut found: Vec<PostId> = self.ids.keys().filter(|id| starts(id)).copied().collect();
        found.sort_unstable_by_key(|id| id.0);
        found.truncate(max);
        found
    }

    /// Every author with a stored post, and every blocked author.
    pub(super) fn authors(&self) -> HashSet<AuthorKey> {
        self.entries
            .values()
            .map(|e| e.author)
            .chain(self.blocked.iter().copied())
            .collect()
    }

    /// The seqs whose content hash starts with `prefix`, in hash order.
    pub(super) fn by_hash_prefix(&self, prefix: &[u8]) -> Vec<Seq> {
        let Some(prefix) = prefix.get(..prefix.len().min(32)) else {
            return Vec::new();
        };
        let mut low = [0u8; 32];
        low[..prefix.len()].copy_from_slice(prefix);
        self.hashes
            .range(low..)
            .take_while(|(h, _)| h.starts_with(prefix))
            .map(|(_, &seq)| seq)
            .collect()
    }

    /// The sync items of `circle` that have not expired at `now`, ordered by
    /// `(updated_at, hash)`.
    pub(super) fn sync_items(&self, circle: &str, now: u64) -> Vec<Item> {
        self.sync
            .get(circle)
            .map_or_else(Vec::new, |set| set.items(now))
    }

    /// The fingerprint of [`Index::sync_items`], without listing them.
    pub(super) fn sync_fingerprint(&self, circle: &str, now: u64) -> Fingerprint {
        self.sync
            .get(circle)
            .map_or_else(Fingerprint::default, |set| {
                set.fingerprint(&self.expired_items(circle, now))
            })
    }

    /// [`Index::sync_items`] with their sketch, as a session reconciles them.
    pub(super) fn sync_view(&self, circle: &str, now: u64) -> CodedSet {
        self.sync.get(circle).map_or_else(CodedSet::default, |set| {
            set.view(&self.expired_items(circle, now), now)
        })
    }

    /// The sync items of `circle` that expired by `now` and are not swept yet.
    fn expired_items(&self, circle: &str, now: u64) -> Vec<Item> {
        self.expiry
            .range(..=(now, Seq::MAX))
            .filter_map(|(_, seq)| self.entries.get(seq))
            .filter(|e| *e.circle == *circle)
            .map(|e| Item::new(e.updated_at, &e.hash))
            .collect()
    }

    /// The smallest time-ordered index that holds every post `query` can match.
    fn source<'q>(&self, query: &'q Query) -> Source<'q> {
        let mut best = (Source::All, self.all.len());
        let mut consider = |s: Source<'q>| {
            let n = self.set(s).map_or(0, BTreeSet::len);
            if n < best.1 {
                best = (s, n);
            }
        };
        if let Some(t) = &query.tag {
            consider(Source::Tag(t));
        }
        if let Some(c) = query.category {
            consider(Source::Category(c));
        }
        if let Some(c) = &query.circle {
            consider(Source::Circle(c));
        }
        best.0
    }

    fn set(&self, source: Source<'_>) -> Option<&BTreeSet<Pos>> {
        match source {
            Source::All => Some(&self.all),
            Source::Category(c) => self.by_category.get(&c),
            Source::Circle(c) => self.by_circle.get(c),
            Source::Tag(t) => self.by_tag.get(t),
        }
    }

    /// Whether the post known as `e` passes every filter of `query` at `now`, its
    /// text filter as `terms`.
    fn admits(&self, query: &Query, terms: &Terms, e: &Entry, now: u64) -> bool {
        query.admits_entry(e, now) && (terms.is_empty() || self.text.matches(&e.text, terms))
    }

    /// Up to `max` posts after `after` (or from the newest) that pass every filter of
    /// `query` (its text as `terms`) at `now`, newest first, from the most selective
    /// index. Fewer than `max` means there are no more.
    pub(super) fn candidates(
        &self,
        query: &Query,
        terms: &Terms,
        now: u64,
        after: Option<Pos>,
        max: usize,
    ) -> Vec<Pos> {
        let Some(set) = self.set(self.source(query)) else {
            return Vec::new();
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        set.range((from, Bound::Unbounded))
            .filter(|pos| {
                self.entries
                    .get(&pos.seq)
                    .is_some_and(|e| self.admits(query, terms, e, now))
            })
            .take(max)
            .copied()
            .collect()
    }

    /// Every post that passes every filter of `query` (text as `terms`) at `now`,
    /// newest first, found from the posts of the rarest term, when that is cheaper
    /// than streaming the newest posts until `want` are found; `None` when it is not
    /// (every term is common).
    pub(super) fn text_candidates(
        &self,
        query: &Query,
        terms: &Terms,
        now: u64,
        want: usize,
    ) -> Option<Vec<Pos>> {
        let (term, n) = self.text.rarest(terms)?;
        let streamed = self.set(self.source(query)).map_or(0, BTreeSet::len);
        // Streaming looks at about `want × streamed / n` posts to find `want`.
        if n > TEXT_DIRECT && n.saturating_mul(n) > want.saturating_mul(streamed) {
            return None;
        }
        let mut found: Vec<Pos> = self
            .text
            .posts_of(term)
            .into_iter()
            .filter_map(|seq| {
                let e = self.entries.get(&seq)?;
                self.admits(query, terms, e, now).then(|| e.pos(seq))
            })
            .collect();
        found.sort_unstable();
        Some(found)
    }

    /// Every post in the area `near` of `query` that passes every filter (text as
    /// `terms`) at `now`, newest first.
    pub(super) fn area_candidates(
        &self,
        query: &Query,
        terms: &Terms,
        near: &str,
        now: u64,
    ) -> Vec<Pos> {
        let mut found: Vec<Pos> = self
            .by_place
            .range((geo(near, 0), 0)..=(geo(near, u8::MAX), Seq::MAX))
            .filter_map(|&(_, seq)| {
                let e = self.entries.get(&seq)?;
                self.admits(query, terms, e, now).then(|| e.pos(seq))
            })
            .collect();
        found.sort_unstable();
        found
    }

    /// Like [`Index::area_candidates`], but only the first `max` in geohash order
    /// (then newest first): a bounded look at a dense area.
    pub(super) fn area_sample(
        &self,
        query: &Query,
        terms: &Terms,
        near: &str,
        now: u64,
        max: usize,
    ) -> Vec<Pos> {
        let mut found: Vec<Pos> = self
            .by_place
            .range((geo(near, 0), 0)..=(geo(near, u8::MAX), Seq::MAX))
            .filter_map(|&(_, seq)| {
                let e = self.entries.get(&seq)?;
                self.admits(query, terms, e, now).then(|| e.pos(seq))
            })
            .take(max)
            .collect();
        found.sort_unstable();
        found
    }

    /// Number of posts that pass every filter of `query` (text as `terms`) at `now`.
    pub(super) fn count(&self, query: &Query, terms: &Terms, now: u64) -> u64 {
        if let Some(near) = &query.near {
            return self.area_candidates(query, terms, near, now).len() as u64;
        }
        if let Some(found) = self.text_candidates(query, terms, now, usize::MAX) {
            return found.len() as u64;
        }
        self.set(self.source(query)).map_or(0, |set| {
            set.iter()
                .filter(|pos| {
                    self.entries
                        .get(&pos.seq)
                        .is_some_and(|e| self.admits(query, terms, e, now))
                })
                .count() as u64
        })
    }

    /// Whether the post `seq` is stored with content hash `hash`: then the indexes
    /// describe exactly that revision.
    pub(super) fn holds(&self, seq: Seq, hash: &ContentHash) -> bool {
        self.entries.get(&seq).is_some_and(|e| &e.hash == hash)
    }

    /// Whether a post indexed as `text` has every one of `terms`.
    pub(super) fn text_matches(&self, text: &PostText, terms: &Terms) -> bool {
        self.text.matches(text, terms)
    }

    /// The language and stem hashes of the post `seq` ([`crate::words::hash`],
    /// sorted): all of them and those of its title.
    pub(super) fn stem_hashes(&self, seq: Seq) -> super::text::StemHashes {
        self.entries.get(&seq).map_or_else(Default::default, |e| {
            (e.text.lang, self.text.hashes(&e.text))
        })
    }

    /// How many stored posts have each stem, and how many posts are stored.
    pub(super) fn stem_frequencies<'a>(
        &self,
        stems: impl Iterator<Item = &'a str>,
    ) -> (Vec<usize>, usize) {
        (
            stems.map(|s| self.text.frequency(s)).collect(),
            self.entries.len(),
        )
    }

    /// For each stem, up to `per_stem` of the newest posts that have it exactly and
    /// pass every filter of `query` but text at `now`, looking at no more than
    /// `scan` posts per stem.
    pub(super) fn with_stems<'a>(
        &self,
        query: &Query,
        stems: impl Iterator<Item = &'a str>,
        now: u64,
        per_stem: usize,
        scan: usize,
    ) -> Vec<Seq> {
        let mut out = Vec::new();
        for stem in stems {
            out.extend(
                self.text
                    .posts_with(stem)
                    .take(scan)
                    .filter(|seq| {
                        self.entries
                            .get(seq)
                            .is_some_and(|e| query.admits_entry(e, now))
                    })
                    .take(per_stem),
            );
        }
        out
    }
}

/// Removes `value` from the set under `key`, and the set once it is empty.
fn remove_from<K, Q, V>(map: &mut HashMap<K, BTreeSet<V>>, key: &Q, value: &V)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    V: Ord,
{
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use aidmesh_proto::{Nonce, PostId};

    use super::*;

    fn post(n: u8, tags: &[&str], location: Option<&str>) -> Post {
        let author = AuthorKey([n; 32]);
        let nonce = Nonce([n; 16]);
        Post {
            id: PostId::derive(&author, &nonce),
            author,
            nonce,
            revision: 1,
            circle: "commons".into(),
            kind: Kind::Offer,
            status: Status::Open,
            category: Category::Food,
            title: "t".into(),
            body: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            location: location.map(Into::into),
            quantity: None,
            contact: None,
            created_at: 1000,
            updated_at: 1000 + u64::from(n),
            expires_at: 10_000,
        }
    }

    #[test]
    fn an_area_sample_is_the_first_admitted_in_geohash_order_whatever_the_categories() {
        let mut index = Index::default();
        let categories = [Category::Food, Category::Goods, Category::Transport];
        let places = ["u33dc0", "u33db2", "u33d01", "u0yjj1", "u33dzz"];
        for n in 0..60u8 {
            let p = Post {
                category: categories[usize::from(n) % 3],
                kind: if n % 4 == 0 {
                    Kind::Request
                } else {
                    Kind::Offer
                },
                ..post(n, &[], Some(places[usize::from(n) % 5]))
            };
            let words = super::super::text::analyse(&p);
            index.insert(u64::from(n) + 1, &p, ContentHash([n; 32]), &words, 100);
        }
        // What a scan of every located post finds, in (geohash, seq) order.
        let brute = |q: &Query, max: usize| {
            let mut all: Vec<(Geo, Pos)> = index
                .entries
                .iter()
                .filter(|(_, e)| e.location.as_deref().is_some_and(|l| l.starts_with("u33d")))
                .filter(|(_, e)| index.admits(q, &Terms::default(), e, 2_000))
                .map(|(&seq, e)| (geo(e.location.as_deref().unwrap_or(""), 0), e.pos(seq)))
                .collect();
            all.sort_unstable_by_key(|&(g, pos)| (g, pos.seq));
            let mut first: Vec<Pos> = all.into_iter().take(max).map(|(_, p)| p).collect();
            first.sort_unstable();
            first
        };
        for q in [
            Query::default(),
            Query {
                category: Some(Category::Goods),
                ..Query::default()
            },
            Query {
                kind: Some(Kind::Offer),
                ..Query::default()
            },
            Query {
                category: Some(Category::Care),
                ..Query::default()
            },
        ] {
            for max in [0, 3, 7, 100] {
                let got = index.area_sample(&q, &Terms::default(), "u33d", 2_000, max);
                assert_eq!(got, brute(&q, max), "{q:?}, max {max}");
            }
            assert_eq!(
                index.area_candidates(&q, &Terms::default(), "u33d", 2_000),
                brute(&q, usize::MAX),
                "{q:?}"
            );
        }
    }

    impl Index {
        /// Whether no entry of any index is left.
        fn holds_nothing(&self) -> bool {
            self.entries.is_empty()
                && self.ids.is_empty()
                && self.hashes.is_empty()
                && self.all.is_empty()
                && self.by_category.is_empty()
                && self.by_circle.is_empty()
                && self.by_tag.is_empty()
                && self.by_place.is_empty()
                && self.expiry.is_empty()
                && self.sync.is_empty()
                && self.holdings.is_empty()
                && self.text.is_empty()
        }
    }

    #[test]
    fn replacing_and_removing_leaves_no_stale_entry() {
        let mut index = Index::default();
        let a = post(1, &["bread", "soup"], Some("u33dc0"));
        let b = post(2, &["bread"], None);
        index.insert(
            5,
            &a,
            ContentHash([1; 32]),
            &super::super::text::analyse(&a),
            300,
        );
        index.insert(
            6,
            &b,
            ContentHash([2; 32]),
            &super::super::text::analyse(&b),
            200,
        );
        // A new revision of `a` in place, with other tags, place and time.
        let a2 = Post {
            revision: 2,
            tags: vec!["bike".into()],
            location: Some("gbsuv7".into()),
            updated_at: 5000,
            ..a.clone()
        };
        index.insert(
            5,
            &a2,
            ContentHash([3; 32]),
            &super::super::text::analyse(&a2),
            310,
        );
        assert_eq!(index.len(), 2);
        assert!(!index.by_tag.contains_key("soup"));
        assert_eq!(index.by_tag["bread"].len(), 1);
        assert_eq!(index.by_hash_prefix(&[1]), Vec::<Seq>::new());
        assert_eq!(index.by_hash_prefix(&[3, 3]), vec![5]);
        let q = Query {
            near: Some("gb".into()),
            ..Query::default()
        };
        assert_eq!(
            index.area_candidates(&q, &Terms::default(), "gb", 0).len(),
            1
        );
        assert_eq!(
            index.area_candidates(&q, &Terms::default(), "u3", 0).len(),
            0
        );
        let newest: Vec<Seq> = index
            .candidates(&Query::default(), &Terms::default(), 0, None, 10)
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(newest, vec![5, 6]);
        assert_eq!(index.expired(10_000, 10), vec![5, 6]);
        assert!(index.remove(5).is_some());
        assert!(index.remove(6).is_some());
        assert!(index.remove(6).is_none());
        assert!(index.holds_nothing());
    }
}
