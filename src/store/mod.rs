//! The store: the node's single source of truth for posts, on sled.
//!
//! Every post enters through one of the insert paths, which keep only the highest
//! revision of each id (ties broken by the larger content hash, so every node picks
//! the same winner), refuse blocked authors, and write the post and all of its index
//! entries in one sled transaction: there is never a post without its index entries
//! or the reverse. Queries use the indexes (see [`keys`]) and stream newest first.
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
//! Writes are serialised by one lock (reads never wait for it): a write reads the
//! current revision and then commits, and nothing may come between the two.

mod keys;
pub mod query;
pub mod text;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aidmesh_proto::riblt::Item;
use aidmesh_proto::{AuthorKey, ContentHash, Post, PostId, SignedPost, VerifiedPost};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;

pub use query::{Query, QueryError, StatusFilter, DEFAULT_LIMIT, MAX_LIMIT};

/// How often sled writes buffered changes to disk on its own.
pub const FLUSH_EVERY_MS: u64 = 500;
/// Attempts, 50 ms apart, to take the database's file lock.
const LOCK_RETRIES: u32 = 40;
/// Most posts written in one transaction by the batch path.
const BATCH_TX: usize = 512;
/// Most expired posts removed per sweep transaction.
const SWEEP_TX: usize = 4096;

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

/// A cheap-to-clone handle on the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    posts: Tree,
    ids: Tree,
    index: Tree,
    blocked: Tree,
    /// Serialises writers; see the module docs.
    writer: Mutex<()>,
    /// Number of stored posts (tombstones included). Derived at open, kept under
    /// `writer`.
    count: AtomicU64,
    /// Bumped by every committed write, so caches of derived data know when to
    /// refresh.
    generation: AtomicU64,
}

/// One post write, decided under the writer lock.
struct Change {
    seq: u64,
    old: Option<(Post, ContentHash)>,
    wire: Vec<u8>,
    post: Post,
    hash: ContentHash,
    id: PostId,
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let config = sled::Config::new()
            .path(path)
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
        let tree = |name: &str| db.open_tree(name).map_err(open_err);
        let store = Inner {
            posts: tree(keys::TREE_POSTS)?,
            ids: tree(keys::TREE_IDS)?,
            index: tree(keys::TREE_INDEX)?,
            blocked: tree(keys::TREE_BLOCKED)?,
            writer: Mutex::new(()),
            count: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            db,
        };
        store.count.store(store.ids.len() as u64, Ordering::Relaxed);
        Ok(Self {
            inner: Arc::new(store),
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
        if self.inner.blocked.contains_key(p.author.0)? {
            return Ok(false);
        }
        match self.seq_of(&p.id)? {
            None => Ok(true),
            Some(seq) => match self.try_load(seq)? {
                None => Ok(true),
                Some(old) => Ok((p.revision, post.hash()) > (old.post().revision, old.hash())),
            },
        }
    }

    /// Stores a post made by this node's own user and flushes it to disk before
    /// returning.
    pub fn insert_local(&self, post: &VerifiedPost) -> Result<Inserted, Error> {
        let outcome = self.insert_verified(post)?;
        self.inner.db.flush()?;
        Ok(outcome)
    }

    /// Verifies many posts with ed25519 batch verification and stores the good ones,
    /// in transactions of up to 512 posts (network durability). Returns one outcome
    /// per input, in order; a bad post never keeps a good one out.
    pub fn insert_batch(
        &self,
        posts: Vec<SignedPost>,
        now: u64,
    ) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        let verified = aidmesh_proto::verify_batch(posts, now);
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

    /// Decides and commits a group of verified posts in one transaction. Caller holds
    /// the writer lock.
    fn write_group(&self, posts: &[VerifiedPost]) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        let mut outcomes = Vec::with_capacity(posts.len());
        let mut changes: Vec<Change> = Vec::new();
        // Posts of this group already decided, so that two revisions of one id in the
        // same group are compared with each other and not only with the store.
        let mut pending: HashMap<PostId, usize> = HashMap::new();
        for v in posts {
            let post = v.post();
            if self.inner.blocked.contains_key(post.author.0)? {
                outcomes.push(Err(Refused::Blocked(post.author)));
                continue;
            }
            let current: Option<(u64, Post, ContentHash)> = match pending.get(&post.id) {
                Some(&c) => {
                    let ch = &changes[c];
                    Some((ch.seq, ch.post.clone(), ch.hash))
                }
                None => match self.seq_of(&post.id)? {
                    Some(seq) => {
                        let old = self.load(seq)?;
                        Some((seq, old.post().clone(), old.hash()))
                    }
                    None => None,
                },
            };
            let wire = v
                .signed()
                .encode()
                .map_err(|e| Error::Corrupt(format!("re-encoding a verified post: {e}")))?;
            let (seq, old, outcome) = match current {
                None => (self.inner.db.generate_id()?, None, Inserted::New),
                Some((seq, old, old_hash)) => {
                    let newer = (post.revision, v.hash()) > (old.revision, old_hash);
                    if !newer {
                        outcomes.push(Ok(if old_hash == v.hash() {
                            Inserted::Duplicate
                        } else {
                            Inserted::Stale {
                                current: old.revision,
                            }
                        }));
                        continue;
                    }
                    let previous = old.revision;
                    (seq, Some((old, old_hash)), Inserted::Updated { previous })
                }
            };
            match pending.get(&post.id) {
                // A later revision of a post decided in this group replaces that change
                // but keeps what it replaced on disk.
                Some(&c) => {
                    changes[c].wire = wire;
                    changes[c].post = post.clone();
                    changes[c].hash = v.hash();
                }
                None => {
                    pending.insert(post.id, changes.len());
                    changes.push(Change {
                        seq,
                        old,
                        wire,
                        post: post.clone(),
                        hash: v.hash(),
                        id: post.id,
                    });
                }
            }
            outcomes.push(Ok(outcome));
        }
        if changes.is_empty() {
            return Ok(outcomes);
        }
        let new = changes.iter().filter(|c| c.old.is_none()).count() as u64;
        let i = &self.inner;
        (&i.posts, &i.ids, &i.index)
            .transaction(|(posts, ids, index)| {
                for c in &changes {
                    if let Some((old, old_hash)) = &c.old {
                        for k in keys::index_keys(old, old_hash, c.seq) {
                            index.remove(k)?;
                        }
                    }
                    posts.insert(&keys::seq_key(c.seq), c.wire.as_slice())?;
                    ids.insert(&c.id.0, &keys::seq_key(c.seq))?;
                    for k in keys::index_keys(&c.post, &c.hash, c.seq) {
                        index.insert(k, &[])?;
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)?;
        i.count.fetch_add(new, Ordering::Relaxed);
        i.generation.fetch_add(1, Ordering::Release);
        Ok(outcomes)
    }

    fn seq_of(&self, id: &PostId) -> Result<Option<u64>, Error> {
        match self.inner.ids.get(id.0)? {
            None => Ok(None),
            Some(v) => keys::parse_seq(&v)
                .map(Some)
                .ok_or_else(|| Error::Corrupt(format!("seq of post {id}"))),
        }
    }

    fn load(&self, seq: u64) -> Result<VerifiedPost, Error> {
        let raw = self
            .inner
            .posts
            .get(keys::seq_key(seq))?
            .ok_or_else(|| Error::Corrupt(format!("index points at missing post #{seq}")))?;
        decode_record(&raw)
    }

    fn try_load(&self, seq: u64) -> Result<Option<VerifiedPost>, Error> {
        match self.inner.posts.get(keys::seq_key(seq))? {
            Some(raw) => decode_record(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// The stored revision of a post, tombstones and expired-but-unswept included.
    pub fn get(&self, id: &PostId) -> Result<Option<VerifiedPost>, Error> {
        match self.seq_of(id)? {
            Some(seq) => self.try_load(seq),
            None => Ok(None),
        }
    }

    /// Posts matching `query` at time `now`, newest first.
    pub fn query(&self, query: &Query, now: u64) -> Result<Vec<VerifiedPost>, Error> {
        query.validate()?;
        let terms = query.terms();
        let want = query.offset.saturating_add(query.limit);

        // An area is a range of geohashes: scan it whole, then order by time.
        if let Some(place) = &query.near {
            let prefix = keys::ordered_prefix(keys::PLACE, place.as_bytes(), false);
            let mut found = Vec::new();
            for entry in self.inner.index.scan_prefix(&prefix) {
                let (key, _) = entry?;
                let seq = keys::seq_suffix(&key)
                    .ok_or_else(|| Error::Corrupt("short index key".into()))?;
                if let Some(p) = self.try_load(seq)? {
                    if query.admits(p.post(), now, &terms) {
                        found.push((seq, p));
                    }
                }
            }
            found.sort_by(|(sa, a), (sb, b)| {
                b.post()
                    .updated_at
                    .cmp(&a.post().updated_at)
                    .then(sa.cmp(sb))
            });
            return Ok(found
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .map(|(_, p)| p)
                .collect());
        }
        // Otherwise stream the most selective time-ordered index and stop at the limit.
        let prefix = if let Some(tag) = &query.tag {
            keys::ordered_prefix(keys::TAG, tag.as_bytes(), true)
        } else if let Some(c) = query.category {
            keys::ordered_prefix(keys::CATEGORY, &[c as u8], false)
        } else if let Some(circle) = &query.circle {
            keys::ordered_prefix(keys::CIRCLE, circle.as_bytes(), true)
        } else {
            vec![keys::ALL]
        };
        let mut found = Vec::new();
        let mut matched = 0usize;
        for entry in self.inner.index.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let seq =
                keys::seq_suffix(&key).ok_or_else(|| Error::Corrupt("short index key".into()))?;
            let Some(p) = self.try_load(seq)? else {
                continue;
            };
            if !query.admits(p.post(), now, &terms) {
                continue;
            }
            matched += 1;
            if matched > query.offset {
                found.push(p);
            }
            if matched >= want {
                break;
            }
        }
        Ok(found)
    }

    /// Like [`Store::query`], but looks at no more than `max_scanned` index entries, so
    /// its cost is bounded whatever the store holds; results come in index order
    /// (newest first, except for an area, which comes geohash by geohash, each newest
    /// first) and may miss matching posts beyond the cap. Offset is ignored. For
    /// callers that want good candidates fast (the matcher), not complete answers.
    pub fn scan(
        &self,
        query: &Query,
        now: u64,
        max_scanned: usize,
    ) -> Result<Vec<VerifiedPost>, Error> {
        query.validate()?;
        let terms = query.terms();
        let prefix = if let Some(place) = &query.near {
            keys::ordered_prefix(keys::PLACE, place.as_bytes(), false)
        } else if let Some(tag) = &query.tag {
            keys::ordered_prefix(keys::TAG, tag.as_bytes(), true)
        } else if let Some(c) = query.category {
            keys::ordered_prefix(keys::CATEGORY, &[c as u8], false)
        } else if let Some(circle) = &query.circle {
            keys::ordered_prefix(keys::CIRCLE, circle.as_bytes(), true)
        } else {
            vec![keys::ALL]
        };
        let mut found = Vec::new();
        for entry in self.inner.index.scan_prefix(&prefix).take(max_scanned) {
            let (key, _) = entry?;
            let seq =
                keys::seq_suffix(&key).ok_or_else(|| Error::Corrupt("short index key".into()))?;
            let Some(p) = self.try_load(seq)? else {
                continue;
            };
            if query.admits(p.post(), now, &terms) {
                found.push(p);
                if found.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Every stored post of `author` (any status, expired ones not yet swept
    /// included), through the author index.
    pub fn by_author(&self, author: &AuthorKey) -> Result<Vec<VerifiedPost>, Error> {
        let mut found = Vec::new();
        for entry in self.inner.index.scan_prefix(keys::author_prefix(author)) {
            let (key, _) = entry?;
            if let Some(seq) = keys::seq_suffix(&key) {
                if let Some(p) = self.try_load(seq)? {
                    found.push(p);
                }
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
    /// Read from one index, without loading posts.
    pub fn sync_items(&self, circle: &str, now: u64) -> Result<Vec<Item>, Error> {
        let prefix = keys::sync_prefix(circle);
        let mut items = Vec::new();
        for entry in self.inner.index.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let (updated_at, hash, expires_at) = keys::parse_sync(&key[prefix.len()..])
                .ok_or_else(|| Error::Corrupt("sync index key".into()))?;
            if expires_at > now {
                items.push(Item::new(updated_at, &ContentHash(hash)));
            }
        }
        Ok(items)
    }

    /// The stored post whose content hash starts with `prefix`, if any.
    pub fn get_by_hash_prefix(&self, prefix: &[u8]) -> Result<Option<VerifiedPost>, Error> {
        for entry in self.inner.index.scan_prefix(keys::hash_prefix(prefix)) {
            let (key, _) = entry?;
            if let Some(seq) = keys::seq_suffix(&key) {
                if let Some(p) = self.try_load(seq)? {
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
            .posts
            .iter()
            .values()
            .map(|raw| decode_record(&raw?))
    }

    /// Number of stored posts, tombstones included.
    pub fn len(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Whether the store holds no post.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of posts matching `query`'s filters (ignoring limit and offset).
    pub fn count(&self, query: &Query, now: u64) -> Result<u64, Error> {
        let all = Query {
            limit: MAX_LIMIT,
            offset: 0,
            ..query.clone()
        };
        let mut n = 0u64;
        let mut page = all;
        loop {
            let got = self.query(&page, now)?.len();
            n += got as u64;
            if got < page.limit {
                return Ok(n);
            }
            page.offset += got;
        }
    }

    /// Removes every post that has expired by `now`, with its index entries. Returns
    /// how many were removed.
    pub fn sweep_expired(&self, now: u64) -> Result<usize, Error> {
        let _w = self.lock();
        let mut removed = 0;
        loop {
            let bound = keys::expiry_bound(now);
            let mut batch = Vec::new();
            for entry in self.inner.index.range(vec![keys::EXPIRY]..bound) {
                let (key, _) = entry?;
                if let Some(seq) = keys::seq_suffix(&key) {
                    batch.push(seq);
                }
                if batch.len() >= SWEEP_TX {
                    break;
                }
            }
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
        self.inner.blocked.insert(author.0, &[])?;
        let mut seqs = Vec::new();
        for entry in self.inner.index.scan_prefix(keys::author_prefix(author)) {
            let (key, _) = entry?;
            if let Some(seq) = keys::seq_suffix(&key) {
                seqs.push(seq);
            }
        }
        let removed = seqs
            .chunks(SWEEP_TX)
            .map(|chunk| self.remove_seqs(chunk))
            .sum::<Result<usize, Error>>()?;
        self.inner.db.flush()?;
        Ok(removed)
    }

    /// Accepts `author`'s posts again. Returns whether it was blocked.
    pub fn unblock(&self, author: &AuthorKey) -> Result<bool, Error> {
        let _w = self.lock();
        let was = self.inner.blocked.remove(author.0)?.is_some();
        self.inner.db.flush()?;
        Ok(was)
    }

    /// Whether `author` is blocked.
    pub fn is_blocked(&self, author: &AuthorKey) -> Result<bool, Error> {
        Ok(self.inner.blocked.contains_key(author.0)?)
    }

    /// Every blocked author.
    pub fn blocked(&self) -> Result<Vec<AuthorKey>, Error> {
        self.inner
            .blocked
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                <[u8; 32]>::try_from(k.as_ref())
                    .map(AuthorKey)
                    .map_err(|_| Error::Corrupt("blocked author key".into()))
            })
            .collect()
    }

    /// Removes posts and their index entries in one transaction. Caller holds the
    /// writer lock.
    fn remove_seqs(&self, seqs: &[u64]) -> Result<usize, Error> {
        let mut doomed = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            if let Some(p) = self.try_load(seq)? {
                doomed.push((seq, p.post().clone(), p.hash()));
            }
        }
        let i = &self.inner;
        (&i.posts, &i.ids, &i.index)
            .transaction(|(posts, ids, index)| {
                for (seq, post, hash) in &doomed {
                    for k in keys::index_keys(post, hash, *seq) {
                        index.remove(k)?;
                    }
                    posts.remove(&keys::seq_key(*seq))?;
                    ids.remove(&post.id.0)?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)?;
        i.count.fetch_sub(doomed.len() as u64, Ordering::Relaxed);
        i.generation.fetch_add(1, Ordering::Release);
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

fn decode_record(raw: &[u8]) -> Result<VerifiedPost, Error> {
    let signed = SignedPost::decode(raw).map_err(|e| Error::Corrupt(e.to_string()))?;
    VerifiedPost::assume_verified(signed).map_err(|e| Error::Corrupt(e.to_string()))
}

fn tx_error(e: TransactionError<()>) -> Error {
    match e {
        TransactionError::Storage(e) => Error::Sled(e),
        TransactionError::Abort(()) => Error::Corrupt("transaction aborted".into()),
    }
}
