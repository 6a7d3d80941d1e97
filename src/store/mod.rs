//! The store: the node's single source of truth for posts, on sled.
//!
//! Every post enters through one of the insert paths, which keep only the highest
//! revision of each id (ties broken by the larger content hash, so every node picks
//! the same winner) and refuse blocked authors. Queries use the indexes (see
//! [`index`]) and stream newest first.
//!
//! # Layout and consistency
//! On disk a post is one sled record (`seq` → its signed wire bytes, see [`keys`]);
//! the indexes are derived from the records when the store opens and kept in memory.
//! A group of writes (one post, or up to [`BATCH_TX`] posts of a batch) is one
//! `apply_batch` on the records tree, which sled applies and recovers after a crash
//! all or nothing, and a record carries the whole post: there is nothing on disk that
//! could point at a missing post or miss an index entry. The indexes are updated
//! after the records under the writer lock; a query that runs in between may see an
//! index entry whose record already changed, so every post a query loads is checked
//! against the whole query again (a vanished record is skipped).
//!
//! Open also repairs what an interrupted multi-step operation can leave behind:
//! posts of an author blocked just before a crash are deleted then, and should two
//! records ever hold the same post id, only the winning revision is kept.
//!
//! # Durability
//! - [`Store::insert_local`] (this node's own posts) returns after the write is
//!   flushed to disk: an acknowledged post survives `kill -9` and power loss (as far as
//!   sled's `sync_file_range` reaches).
//! - [`Store::insert`], [`Store::insert_verified`] and [`Store::insert_batch`] (posts
//!   from the network) are atomic but flushed in groups by sled's background flusher
//!   (every [`FLUSH_EVERY_MS`] ms) and by [`Store::flush`]; a crash may lose the last
//!   moments of them, which peers will serve again.
//!
//! Writes are serialised by one lock (reads never wait for it, except for the moment
//! a write updates the in-memory indexes): a write decides from the indexes and then
//! commits, and nothing may come between the two.

mod index;
mod keys;
pub mod query;
pub mod text;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aidmesh_proto::riblt::Item;
use aidmesh_proto::{AuthorKey, ContentHash, PostId, SignedPost, VerifiedPost};
use sled::Tree;

use crate::words::{Analysis, Lang};
use index::{Index, Pos, Seq};
pub use query::{Query, QueryError, StatusFilter, DEFAULT_LIMIT, MAX_LIMIT};
use text::Terms;

/// How often sled writes buffered changes to disk on its own.
pub const FLUSH_EVERY_MS: u64 = 500;
/// sled's page cache (its default is 1 GiB). The indexes live in memory anyway, so
/// the cache only holds records: enough for queries to load recent posts without
/// going back to the file (at 32 MiB, tag queries took twice as long at 100,000
/// posts), far less than sled would otherwise grow to.
pub const CACHE_BYTES: u64 = 128 * 1024 * 1024;
/// Attempts, 50 ms apart, to take the database's file lock.
const LOCK_RETRIES: u32 = 40;
/// Most posts written in one atomic batch by the batch path.
pub const BATCH_TX: usize = 512;
/// Most expired posts removed per sweep batch.
const SWEEP_TX: usize = 4096;
/// Most threads [`Store::insert_batch`] verifies signatures on.
pub const VERIFY_THREADS: usize = 4;

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be opened (in use by another node, no permission, ...).
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// Why.
        source: sled::Error,
    },
    /// sled failed.
    #[error("store I/O error: {0}")]
    Sled(#[from] sled::Error),
    /// A record on disk cannot be read back; the store was changed outside aidmesh or
    /// the disk is failing.
    #[error("corrupt store record: {0}")]
    Corrupt(String),
    /// The query is malformed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The post was refused.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The database holds a store in an on-disk format this version cannot read
    /// (written by an older or newer aidmesh). Nothing was changed.
    #[error(
        "the store at {path} is in {}, but this aidmesh reads format {expected}; \
         move the database aside (peers will serve the posts again)",
        describe_format(*found)
    )]
    Format {
        /// The database directory.
        path: PathBuf,
        /// The format found: `None` for the unversioned format 1.
        found: Option<u32>,
        /// The format this version reads.
        expected: u32,
    },
}

fn describe_format(found: Option<u32>) -> String {
    match found {
        Some(v) => format!("on-disk format {v}"),
        None => "the unversioned on-disk format 1".into(),
    }
}

/// Why the store refused a post. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// It does not decode, verify or follow the rules.
    #[error(transparent)]
    Invalid(#[from] aidmesh_proto::Error),
    /// Its author is blocked on this node.
    #[error("author {0} is blocked on this node")]
    Blocked(AuthorKey),
}

/// What an accepted insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// A post id this store did not have.
    New,
    /// A newer revision replaced the stored one.
    Updated {
        /// The revision it replaced.
        previous: u32,
    },
    /// This exact revision was already stored.
    Duplicate,
    /// The store holds a newer (or winning) revision; nothing changed.
    Stale {
        /// The revision kept.
        current: u32,
    },
}

impl Inserted {
    /// Whether the store changed.
    pub fn changed(self) -> bool {
        matches!(self, Inserted::New | Inserted::Updated { .. })
    }
}

/// What the store holds of one circle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CircleSummary {
    /// Stored posts, tombstones included.
    pub posts: u64,
    /// Distinct authors of those posts.
    pub authors: u64,
    /// The newest `updated_at` among them, ms since the epoch.
    pub last_activity: Option<u64>,
}

/// A post with its words as the text index holds them, for the matcher.
#[derive(Clone, Debug)]
pub struct Stemmed {
    /// The post.
    pub post: VerifiedPost,
    /// The language its stems are in.
    pub lang: Lang,
    /// [`crate::words::hash`] of each stem of its title and body, sorted.
    pub stems: Vec<u64>,
    /// The same of its title alone.
    pub title: Vec<u64>,
}

impl Stemmed {
    /// The language and sorted stem hashes (all, and the title's) of an analysis.
    pub fn hashes(words: &Analysis) -> (Lang, (Vec<u64>, Vec<u64>)) {
        let mut all: Vec<u64> = words.texts().map(crate::words::hash).collect();
        let mut title: Vec<u64> = words
            .stems
            .iter()
            .filter(|s| s.title)
            .map(|s| crate::words::hash(&s.text))
            .collect();
        all.sort_unstable();
        title.sort_unstable();
        (words.lang, (all, title))
    }
}

/// A cheap-to-clone handle on the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    /// `seq` → wire bytes: the only copy of the posts.
    records: Tree,
    /// Blocked authors, persisted.
    blocked: Tree,
    /// Serialises writers; see the module docs.
    writer: Mutex<()>,
    /// Every index, derived from `records`; changed only under `writer`.
    index: RwLock<Index>,
    /// Bumped by every committed write, so caches of derived data know when to
    /// refresh.
    generation: AtomicU64,
}

/// One post write, decided under the writer lock.
struct Change<'a> {
    /// Its record.
    seq: Seq,
    /// The revision to store.
    post: &'a VerifiedPost,
}

impl Store {
    /// Opens (or creates) the store in `path`, rebuilding the indexes from the
    /// records. Refuses a database in another on-disk format with
    /// [`Error::Format`].
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(FLUSH_EVERY_MS));
        // A store closed a moment ago in this process may still be releasing its file
        // lock (sled's flusher thread lets go last): retry briefly before giving up.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    if attempts >= LOCK_RETRIES {
                        return Err(open_err(sled::Error::Io(e)));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(open_err(e)),
            }
        };
        check_format(&db, path)?;
        let tree = |name: &str| db.open_tree(name).map_err(open_err);
        let records = tree(keys::TREE_RECORDS)?;
        let blocked = tree(keys::TREE_BLOCKED)?;
        let index = rebuild(&records, &blocked)?;
        Ok(Self {
            inner: Arc::new(Inner {
                records,
                blocked,
                writer: Mutex::new(()),
                index: RwLock::new(index),
                generation: AtomicU64::new(0),
                db,
            }),
        })
    }

    /// The underlying database, for other subsystems' own trees (address book, ...).
    pub fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn index(&self) -> RwLockReadGuard<'_, Index> {
        // Index updates are plain in-memory operations that do not panic midway.
        self.inner
            .index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.inner
            .index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Verifies `signed` at `now` and stores it (network durability, see module docs).
    pub fn insert(&self, signed: SignedPost, now: u64) -> Result<Inserted, Error> {
        let verified = signed.verify(now).map_err(Refused::from)?;
        self.insert_verified(&verified)
    }

    /// Stores a post verified by the caller (network durability, see module docs).
    pub fn insert_verified(&self, post: &VerifiedPost) -> Result<Inserted, Error> {
        let _w = self.lock();
        let mut outcomes = self.write_group(std::slice::from_ref(post))?;
        outcomes
            .pop()
            .unwrap_or(Ok(Inserted::Duplicate))
            .map_err(Error::from)
    }

    /// Whether inserting `post` now would change the store (a new post or a winning
    /// revision of a stored one, by an author who is not blocked). Read-only, so a
    /// relay can decide before it pays for the write.
    pub fn would_change(&self, post: &VerifiedPost) -> Result<bool, Error> {
        let p = post.post();
        let index = self.index();
        if index.is_blocked(&p.author) {
            return Ok(false);
        }
        Ok(match index.by_id(&p.id) {
            None => true,
            Some((_, old)) => (p.revision, post.hash()) > (old.revision, old.hash),
        })
    }

    /// Stores a post made by this node's own user and flushes it to disk before
    /// returning.
    pub fn insert_local(&self, post: &VerifiedPost) -> Result<Inserted, Error> {
        let outcome = self.insert_verified(post)?;
        self.inner.db.flush()?;
        Ok(outcome)
    }

    /// Verifies many posts with ed25519 batch verification (on up to
    /// [`VERIFY_THREADS`] cores) and stores the good ones, in atomic batches of up to [`BATCH_TX`] posts (network durability). Returns one
    /// outcome per input, in order; a bad post never keeps a good one out.
    pub fn insert_batch(
        &self,
        posts: Vec<SignedPost>,
        now: u64,
    ) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        let verified = verify_parallel(posts, now);
        let mut out: Vec<Option<Result<Inserted, Refused>>> = vec![None; verified.len()];
        let mut good = Vec::with_capacity(verified.len());
        let mut at = Vec::with_capacity(verified.len());
        for (i, v) in verified.into_iter().enumerate() {
            match v {
                Ok(v) => {
                    good.push(v);
                    at.push(i);
                }
                Err(e) => out[i] = Some(Err(Refused::Invalid(e))),
            }
        }
        let _w = self.lock();
        for (chunk, idx) in good.chunks(BATCH_TX).zip(at.chunks(BATCH_TX)) {
            for (outcome, &i) in self.write_group(chunk)?.into_iter().zip(idx) {
                out[i] = Some(outcome);
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Ok(Inserted::Duplicate)))
            .collect())
    }

    /// Decides a group of verified posts from the indexes and commits the changes in
    /// one sled batch. Caller holds the writer lock.
    fn write_group(&self, posts: &[VerifiedPost]) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        let mut outcomes = Vec::with_capacity(posts.len());
        let mut changes: Vec<Change<'_>> = Vec::new();
        // Posts of this group already decided, so that two revisions of one id in the
        // same group are compared with each other and not only with the store.
        let mut pending: HashMap<PostId, usize> = HashMap::new();
        {
            let index = self.index();
            for v in posts {
                let post = v.post();
                if index.is_blocked(&post.author) {
                    outcomes.push(Err(Refused::Blocked(post.author)));
                    continue;
                }
                let current: Option<(Seq, u32, ContentHash)> = match pending.get(&post.id) {
                    Some(&c) => {
                        let ch = &changes[c];
                        Some((ch.seq, ch.post.post().revision, ch.post.hash()))
                    }
                    None => index
                        .by_id(&post.id)
                        .map(|(seq, e)| (seq, e.revision, e.hash)),
                };
                let (seq, outcome) = match current {
                    None => (self.inner.db.generate_id()?, Inserted::New),
                    Some((seq, revision, hash)) => {
                        if (post.revision, v.hash()) <= (revision, hash) {
                            outcomes.push(Ok(if hash == v.hash() {
                                Inserted::Duplicate
                            } else {
                                Inserted::Stale { current: revision }
                            }));
                            continue;
                        }
                        (seq, Inserted::Updated { previous: revision })
                    }
                };
                match pending.get(&post.id) {
                    // A later revision of a post decided in this group replaces that
                    // change (same record).
                    Some(&c) => changes[c].post = v,
                    None => {
                        pending.insert(post.id, changes.len());
                        changes.push(Change { seq, post: v });
                    }
                }
                outcomes.push(Ok(outcome));
            }
        }
        if changes.is_empty() {
            return Ok(outcomes);
        }
        let mut batch = sled::Batch::default();
        for c in &changes {
            let wire = c
                .post
                .signed()
                .encode()
                .map_err(|e| Error::Corrupt(format!("re-encoding a verified post: {e}")))?;
            batch.insert(&keys::seq_key(c.seq), wire);
        }
        // Analysed before the indexes are locked: readers never wait for it.
        let words: Vec<Analysis> = changes
            .iter()
            .map(|c| text::analyse(c.post.post()))
            .collect();
        self.inner.records.apply_batch(batch)?;
        let mut index = self.index_mut();
        for (c, words) in changes.iter().zip(&words) {
            index.insert(c.seq, c.post.post(), c.post.hash(), words);
        }
        drop(index);
        self.inner.generation.fetch_add(1, Ordering::Release);
        Ok(outcomes)
    }

    /// The record `seq`, if it is still there.
    fn load(&self, seq: Seq) -> Result<Option<VerifiedPost>, Error> {
        match self.inner.records.get(keys::seq_key(seq))? {
            Some(raw) => decode_record(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// Whether a revision of the post `id` is stored (tombstones included).
    pub fn contains(&self, id: &PostId) -> bool {
        self.index().by_id(id).is_some()
    }

    /// The stored revision of a post, tombstones and expired-but-unswept included.
    pub fn get(&self, id: &PostId) -> Result<Option<VerifiedPost>, Error> {
        let seq = self.index().by_id(id).map(|(seq, _)| seq);
        match seq {
            Some(seq) => Ok(self.load(seq)?.filter(|p| &p.post().id == id)),
            None => Ok(None),
        }
    }

    /// Whether a post just loaded from record `seq` passes every filter of `query`
    /// (text as `terms`) at `now`. The text filter was decided from the indexes; it
    /// still holds if the record is the revision they describe, and is checked on
    /// the post itself otherwise (it changed in between).
    fn still_admits(
        &self,
        query: &Query,
        terms: &Terms,
        seq: Seq,
        post: &VerifiedPost,
        now: u64,
    ) -> bool {
        query.admits(post.post(), now, &Terms::default())
            && (terms.is_empty()
                || self.index().holds(seq, &post.hash())
                || text::matches(post.post(), terms))
    }

    /// Posts matching `query` at time `now`, newest first.
    pub fn query(&self, query: &Query, now: u64) -> Result<Vec<VerifiedPost>, Error> {
        query.validate()?;
        let terms = query.terms();
        let want = query.offset.saturating_add(query.limit);
        let mut found = Vec::new();
        let mut matched = 0usize;
        // The indexes check every filter, text included: the posts skipped by the
        // offset need not be loaded.
        let mut consider = |pos: &Pos| -> Result<bool, Error> {
            if matched < query.offset {
                matched += 1;
                return Ok(false);
            }
            let Some(p) = self.load(pos.seq)? else {
                return Ok(false);
            };
            if self.still_admits(query, &terms, pos.seq, &p, now) {
                matched += 1;
                found.push(p);
            }
            Ok(matched >= want)
        };

        // An area is a range of geohashes: take it whole, then order by time. A rare
        // search term: its posts, then order by time.
        let whole = match &query.near {
            Some(near) => Some(self.index().area_candidates(query, &terms, near, now)),
            None if !terms.is_empty() => self.index().text_candidates(query, &terms, now, want),
            None => None,
        };
        if let Some(candidates) = whole {
            for pos in &candidates {
                if consider(pos)? {
                    break;
                }
            }
            return Ok(found);
        }
        // Otherwise stream the most selective time-ordered index and stop at the
        // limit, looking at the indexes a chunk at a time so that loading posts never
        // holds them.
        let chunk = want.max(1);
        let mut after = None;
        loop {
            let candidates = self.index().candidates(query, &terms, now, after, chunk);
            for pos in &candidates {
                if consider(pos)? {
                    return Ok(found);
                }
            }
            if candidates.len() < chunk {
                return Ok(found);
            }
            after = candidates.last().copied();
        }
    }

    /// Like [`Store::query`], but bounded for callers that want good candidates fast
    /// (the matcher), not complete answers: it considers at most `max_scanned` posts
    /// that pass every filter (newest first; for an area, the first ones in geohash
    /// order), loads only those, and stops at the limit. Offset is ignored.
    pub fn scan(
        &self,
        query: &Query,
        now: u64,
        max_scanned: usize,
    ) -> Result<Vec<VerifiedPost>, Error> {
        Ok(self
            .scan_with_stems(query, now, max_scanned)?
            .into_iter()
            .map(|s| s.post)
            .collect())
    }

    /// [`Store::scan`], each post with the hashes of its word stems
    /// ([`crate::words::hash`], sorted) as the text index holds them, so that the
    /// matcher need not analyse them again.
    pub fn scan_with_stems(
        &self,
        query: &Query,
        now: u64,
        max_scanned: usize,
    ) -> Result<Vec<Stemmed>, Error> {
        query.validate()?;
        let terms = query.terms();
        let candidates: Vec<Seq> = {
            let index = self.index();
            match &query.near {
                Some(near) => index.area_sample(query, &terms, near, now, max_scanned),
                None => index.candidates(query, &terms, now, None, max_scanned),
            }
            .into_iter()
            .map(|pos| pos.seq)
            .collect()
        };
        self.load_with_stems(query, &terms, &candidates, now, query.limit)
    }

    /// For each of `stems`, up to `per_stem` of the newest posts that have exactly
    /// that stem and pass every filter of `query` but text, each with its stem
    /// hashes; at most `scan` posts looked at per stem. The matcher's candidates
    /// that share a word with a post, whatever their category.
    pub fn with_stems(
        &self,
        query: &Query,
        stems: &[&str],
        now: u64,
        per_stem: usize,
        scan: usize,
    ) -> Result<Vec<Stemmed>, Error> {
        query.validate()?;
        let mut seqs = self
            .index()
            .with_stems(query, stems.iter().copied(), now, per_stem, scan);
        seqs.sort_unstable();
        seqs.dedup();
        self.load_with_stems(query, &Terms::default(), &seqs, now, usize::MAX)
    }

    /// How many stored posts have exactly each of `stems`, and how many posts are
    /// stored: what tells a rare word from a common one.
    pub fn stem_frequencies(&self, stems: &[&str]) -> (Vec<usize>, usize) {
        self.index().stem_frequencies(stems.iter().copied())
    }

    /// Loads the records `seqs` that still pass `query` (text as `terms`), at most
    /// `limit`, each with its stem hashes.
    fn load_with_stems(
        &self,
        query: &Query,
        terms: &Terms,
        seqs: &[Seq],
        now: u64,
        limit: usize,
    ) -> Result<Vec<Stemmed>, Error> {
        let mut found = Vec::new();
        for &seq in seqs {
            let Some(p) = self.load(seq)? else {
                continue;
            };
            if !self.still_admits(query, terms, seq, &p, now) {
                continue;
            }
            let indexed = {
                let index = self.index();
                index.holds(seq, &p.hash()).then(|| index.stem_hashes(seq))
            };
            let (lang, (stems, title)) =
                indexed.unwrap_or_else(|| Stemmed::hashes(&text::analyse(p.post())));
            found.push(Stemmed {
                post: p,
                lang,
                stems,
                title,
            });
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    /// Every stored post of `author` (any status, expired ones not yet swept
    /// included).
    pub fn by_author(&self, author: &AuthorKey) -> Result<Vec<VerifiedPost>, Error> {
        let seqs = self.index().of_author(author);
        let mut found = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(p) = self.load(seq)? {
                found.push(p);
            }
        }
        Ok(found)
    }

    /// Changes whenever a write commits: equal generations mean equal contents.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The sync items of `circle` at `now`: every stored revision that has not
    /// expired, tombstones included (they keep older revisions from coming back).
    /// Read from the indexes, without loading posts.
    pub fn sync_items(&self, circle: &str, now: u64) -> Result<Vec<Item>, Error> {
        Ok(self.index().sync_items(circle, now))
    }

    /// Up to `max` stored post ids whose hex form starts with `hex` (lowercase hex
    /// digits), in id order: for resolving ids people type (see [`crate::ids`]).
    pub fn ids_with_prefix(&self, hex: &str, max: usize) -> Vec<PostId> {
        self.index().ids_with_prefix(hex, max)
    }

    /// Every author this store knows: those with a stored post and those blocked.
    pub fn authors(&self) -> Vec<AuthorKey> {
        self.index().authors().into_iter().collect()
    }

    /// The stored post whose content hash starts with `prefix`, if any.
    pub fn get_by_hash_prefix(&self, prefix: &[u8]) -> Result<Option<VerifiedPost>, Error> {
        let seqs = self.index().by_hash_prefix(prefix);
        for seq in seqs {
            if let Some(p) = self.load(seq)? {
                if p.hash().0.starts_with(prefix) {
                    return Ok(Some(p));
                }
            }
        }
        Ok(None)
    }

    /// Every stored post (tombstones and not-yet-swept expired ones included), in
    /// storage order, for export.
    pub fn all(&self) -> impl Iterator<Item = Result<VerifiedPost, Error>> + '_ {
        self.inner
            .records
            .iter()
            .values()
            .map(|raw| decode_record(&raw?))
    }

    /// Number of stored posts, tombstones included.
    pub fn len(&self) -> u64 {
        self.index().len() as u64
    }

    /// Whether the store holds no post.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of posts matching `query`'s filters (ignoring limit and offset).
    pub fn count(&self, query: &Query, now: u64) -> Result<u64, Error> {
        query.validate()?;
        Ok(self.index().count(query, &query.terms(), now))
    }

    /// Removes every post that has expired by `now`, with its index entries. Returns
    /// how many were removed.
    pub fn sweep_expired(&self, now: u64) -> Result<usize, Error> {
        let _w = self.lock();
        let mut removed = 0;
        loop {
            let batch = self.index().expired(now, SWEEP_TX);
            if batch.is_empty() {
                return Ok(removed);
            }
            removed += self.remove_seqs(&batch)?;
        }
    }

    /// Deletes every post of `author` and refuses its posts from now on. Returns how
    /// many posts were deleted.
    pub fn block(&self, author: &AuthorKey) -> Result<usize, Error> {
        let _w = self.lock();
        // Blocked first: should the deletions not all reach the disk, the next open
        // deletes the rest.
        self.inner.blocked.insert(author.0, &[])?;
        self.index_mut().set_blocked(*author, true);
        let seqs = self.index().of_author(author);
        let removed = seqs
            .chunks(SWEEP_TX)
            .map(|chunk| self.remove_seqs(chunk))
            .sum::<Result<usize, Error>>()?;
        self.inner.db.flush()?;
        Ok(removed)
    }

    /// Deletes every post of `circle` (this node left it). Returns how many were
    /// deleted. Nothing is remembered of them: should the node join again, sync brings
    /// them back.
    pub fn remove_circle(&self, circle: &str) -> Result<usize, Error> {
        let _w = self.lock();
        let seqs = self.index().of_circle(circle);
        let removed = seqs
            .chunks(SWEEP_TX)
            .map(|chunk| self.remove_seqs(chunk))
            .sum::<Result<usize, Error>>()?;
        self.inner.db.flush()?;
        Ok(removed)
    }

    /// What the store holds of `circle`.
    pub fn circle_summary(&self, circle: &str) -> CircleSummary {
        let (posts, authors, last_activity) = self.index().circle_summary(circle);
        CircleSummary {
            posts: posts as u64,
            authors: authors as u64,
            last_activity,
        }
    }

    /// Accepts `author`'s posts again. Returns whether it was blocked.
    pub fn unblock(&self, author: &AuthorKey) -> Result<bool, Error> {
        let _w = self.lock();
        let was = self.inner.blocked.remove(author.0)?.is_some();
        self.index_mut().set_blocked(*author, false);
        self.inner.db.flush()?;
        Ok(was)
    }

    /// Whether `author` is blocked.
    pub fn is_blocked(&self, author: &AuthorKey) -> Result<bool, Error> {
        Ok(self.index().is_blocked(author))
    }

    /// Every blocked author.
    pub fn blocked(&self) -> Result<Vec<AuthorKey>, Error> {
        self.inner
            .blocked
            .iter()
            .keys()
            .map(|k| parse_author(&k?))
            .collect()
    }

    /// Removes posts (and so their index entries) in one sled batch. Caller holds the
    /// writer lock.
    fn remove_seqs(&self, seqs: &[Seq]) -> Result<usize, Error> {
        let doomed: Vec<Seq> = {
            let index = self.index();
            seqs.iter()
                .copied()
                .filter(|&seq| index.entry(seq).is_some())
                .collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        for &seq in &doomed {
            batch.remove(&keys::seq_key(seq));
        }
        self.inner.records.apply_batch(batch)?;
        let mut index = self.index_mut();
        for &seq in &doomed {
            index.remove(seq);
        }
        drop(index);
        self.inner.generation.fetch_add(1, Ordering::Release);
        Ok(doomed.len())
    }

    /// Writes everything buffered to disk.
    pub fn flush(&self) -> Result<(), Error> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Like [`Store::flush`], without blocking the async runtime.
    pub async fn flush_async(&self) -> Result<(), Error> {
        self.inner.db.flush_async().await?;
        Ok(())
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, Error> {
        Ok(self.inner.db.size_on_disk()?)
    }
}

/// [`aidmesh_proto::verify_batch`] split over the cores: signature checks are most of
/// the cost of ingesting a batch, and a batch from sync is large enough to share.
/// Results are in input order.
fn verify_parallel(
    mut posts: Vec<SignedPost>,
    now: u64,
) -> Vec<Result<VerifiedPost, aidmesh_proto::Error>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(VERIFY_THREADS)
        .min(posts.len() / aidmesh_proto::signed::VERIFY_BATCH);
    if threads < 2 {
        return aidmesh_proto::verify_batch(posts, now);
    }
    let per = posts
        .len()
        .div_ceil(threads)
        .next_multiple_of(aidmesh_proto::signed::VERIFY_BATCH);
    let mut parts = Vec::with_capacity(threads);
    while posts.len() > per {
        let rest = posts.split_off(per);
        parts.push(std::mem::replace(&mut posts, rest));
    }
    parts.push(posts);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || aidmesh_proto::verify_batch(part, now)))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(results) => out.extend(results),
                // verify_batch does not panic; if it ever did, fail as it would have
                // on this thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Accepts a database in this format (stamping a new one), refuses any other.
fn check_format(db: &sled::Db, path: &Path) -> Result<(), Error> {
    let refuse = |found| Error::Format {
        path: path.to_path_buf(),
        found,
        expected: keys::FORMAT_VERSION,
    };
    let meta = db.open_tree(keys::TREE_META)?;
    if let Some(v) = meta.get(keys::FORMAT_KEY)? {
        return match keys::parse_format(&v) {
            Some(keys::FORMAT_VERSION) => Ok(()),
            Some(other) => Err(refuse(Some(other))),
            None => Err(Error::Corrupt("store format version".into())),
        };
    }
    // No version: a new database, or one of format 1 (which had none).
    let names = db.tree_names();
    for old in keys::FORMAT1_TREES {
        if names.iter().any(|n| n.as_ref() == old.as_bytes()) && !db.open_tree(old)?.is_empty() {
            return Err(refuse(None));
        }
    }
    if names
        .iter()
        .any(|n| n.as_ref() == keys::TREE_RECORDS.as_bytes())
        && !db.open_tree(keys::TREE_RECORDS)?.is_empty()
    {
        // Records without a version were not written by this code.
        return Err(Error::Corrupt("records without a format version".into()));
    }
    meta.insert(keys::FORMAT_KEY, &keys::format_value(keys::FORMAT_VERSION))?;
    meta.flush()?;
    Ok(())
}

/// Builds the indexes from the records, repairing what an interrupted operation can
/// leave behind (see the module docs).
fn rebuild(records: &Tree, blocked: &Tree) -> Result<Index, Error> {
    let mut index = Index::default();
    for k in blocked.iter().keys() {
        index.set_blocked(parse_author(&k?)?, true);
    }
    let mut doomed = Vec::new();
    for entry in records.iter() {
        let (k, raw) = entry?;
        let seq = keys::parse_seq(&k).ok_or_else(|| Error::Corrupt("record key".into()))?;
        let p = decode_record(&raw)?;
        let post = p.post();
        if index.is_blocked(&post.author) {
            doomed.push(seq);
            continue;
        }
        if let Some((other, e)) = index.by_id(&post.id) {
            if (post.revision, p.hash()) > (e.revision, e.hash) {
                doomed.push(other);
                index.remove(other);
            } else {
                doomed.push(seq);
                continue;
            }
        }
        index.insert(seq, post, p.hash(), &text::analyse(post));
    }
    if !doomed.is_empty() {
        tracing::warn!(
            records = doomed.len(),
            "removing posts of blocked authors and superseded duplicates left by an interrupted write"
        );
        let mut batch = sled::Batch::default();
        for seq in doomed {
            batch.remove(&keys::seq_key(seq));
        }
        records.apply_batch(batch)?;
        records.flush()?;
    }
    Ok(index)
}

fn parse_author(k: &[u8]) -> Result<AuthorKey, Error> {
    <[u8; 32]>::try_from(k)
        .map(AuthorKey)
        .map_err(|_| Error::Corrupt("blocked author key".into()))
}

fn decode_record(raw: &[u8]) -> Result<VerifiedPost, Error> {
    let signed = SignedPost::decode(raw).map_err(|e| Error::Corrupt(e.to_string()))?;
    VerifiedPost::assume_verified(signed).map_err(|e| Error::Corrupt(e.to_string()))
}
