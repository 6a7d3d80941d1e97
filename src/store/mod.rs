//! The store: the node's single source of truth for posts, on sled.
//!
//! Every post enters through one of the insert paths, which keep only the highest
//! revision of each id (ties broken by the larger content hash, so every node picks
//! the same winner), refuse blocked authors and apply the per-author quota and the
//! circle budget (see [`admit`] and `proto/LIMITS.md`). What they refuse is
//! remembered for a while ([`refused`]) so sync does not fetch it again, and so is
//! the highest revision of every swept post ([`swept`]) so it cannot come back.
//! Queries use the indexes (see [`index`]) and stream newest first.
//!
//! # Layout and consistency
//! On disk a post is one sled record (`seq` → its signed wire bytes, see [`keys`]);
//! the indexes are derived from the records when the store opens and kept in memory.
//! A group of writes (one post, or up to [`BATCH_TX`] posts of a batch) is one
//! `apply_batch` on the records tree, which sled applies and recovers after a crash
//! all or nothing, and a record carries the whole post: there is nothing on disk that
//! could point at a missing post or miss an index entry. The indexes are updated as
//! a group is decided (so that two posts of one group, and the evictions one makes,
//! see each other), then the records are written; should that fail, the indexes are
//! put back from the records. A query that runs in between may see an index entry
//! whose record is not written yet or already changed, so every post a query loads
//! is checked against the whole query again (a missing record is skipped).
//!
//! Beside the records, the `analysed` tree caches each record's word analysis so
//! that open need not redo it ([`analysed`]): written after the records, used only
//! while its content hash is the record's, and repaired at open.
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
//! Writes are serialised by one lock (reads never wait for it, except while a write
//! decides a group against the in-memory indexes; the text analysis is done before):
//! a write decides from the indexes and then commits, and nothing may come between
//! the two.

mod admit;
mod analysed;
pub mod gate;
mod holdings;
mod index;
mod keys;
mod parallel;
pub mod query;
pub mod refused;
mod swept;
mod sync_set;
pub mod text;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aidmesh_proto::limits::{self as proto_limits, NewcomerBucket};
use aidmesh_proto::riblt::{CodedSet, Fingerprint, Item};
use aidmesh_proto::rules::{MAX_CLOCK_SKEW_MS, MAX_LIFETIME_MS};
use aidmesh_proto::{AuthorKey, Post, PostId, SignedPost, VerifiedPost};
use sled::Tree;

use crate::words::Analysis;
use admit::{Decision, Mode};
use index::{Index, Pos, Seq};
pub use query::{Query, QueryError, StatusFilter, DEFAULT_LIMIT, MAX_LIMIT};
pub use refused::{RefusalReason, RefusedKey, MAX_REFUSED};
use refused::{RefusedSet, Room};
use swept::Swept;
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
/// Most threads [`Store::insert_batch`] verifies signatures and analyses text on.
pub const VERIFY_THREADS: usize = 4;
/// Fewest posts worth analysing on a thread of their own (tens of µs each).
const ANALYSE_PER_THREAD: usize = 32;

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
    Sled(sled::Error),
    /// The disk (or the file size limit) is full: nothing more can be written until
    /// space is freed. The write that got this error is not stored.
    #[error("the disk holding the store is full ({0}); free some space and try again")]
    DiskFull(String),
    /// The database cannot be opened because it is damaged (cut short, overwritten,
    /// a failing disk). Nothing was changed.
    #[error(
        "the store at {path} is damaged ({detail}); move it aside (for example \
         `mv {path} {path}.damaged`) and start again: peers will serve the posts again"
    )]
    Damaged {
        /// The database directory.
        path: PathBuf,
        /// What went wrong, as sled said it.
        detail: String,
    },
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

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        match &e {
            sled::Error::Io(io) if is_disk_full(io) => Error::DiskFull(io.to_string()),
            _ => Error::Sled(e),
        }
    }
}

/// Whether an I/O error means there is no room left: no space on the device, a
/// quota, or the process's file size limit.
fn is_disk_full(e: &std::io::Error) -> bool {
    // ENOSPC, EDQUOT and EFBIG on Linux.
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
            | std::io::ErrorKind::FileTooLarge
    ) || matches!(e.raw_os_error(), Some(28 | 122 | 27))
}

impl Error {
    /// Whether this is [`Error::DiskFull`].
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::DiskFull(_))
    }
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
    /// Its author already has as many posts in the circle as every node keeps of one
    /// author (`aidmesh_proto::limits`), all elder than this one.
    #[error("{}", over_quota_message(circle, *live))]
    OverQuota {
        /// The circle.
        circle: String,
        /// Whether the post was live (the live limit was hit) or not (the total).
        live: bool,
    },
    /// The circle is at this node's budget and no post may be evicted for this one.
    #[error(
        "circle {circle} is full on this node and no post can make room for this one; \
         try again when older posts expire"
    )]
    CircleFull {
        /// The circle.
        circle: String,
    },
    /// A closed circle's post by someone who is not a current member.
    #[error("the author is not a member of closed circle {circle}")]
    NotMember {
        /// The circle.
        circle: String,
    },
    /// Hidden, or by an author blocked, by a moderator this node follows.
    #[error("hidden or blocked by a moderator this node follows")]
    Moderated,
    /// Of a circle this node has left.
    #[error("this node has left circle {circle}")]
    CircleLeft {
        /// The circle.
        circle: String,
    },
    /// Too many posts by authors new to the circle arrived lately (the circle is
    /// filling up); try again later.
    #[error("too many posts by authors new to circle {circle} right now; try again later")]
    Newcomers {
        /// The circle.
        circle: String,
    },
}

fn over_quota_message(circle: &str, live: bool) -> String {
    if live {
        format!(
            "this author already has {} open posts in circle {circle}, the most any node \
             keeps; fulfil or withdraw one first",
            proto_limits::MAX_LIVE_PER_AUTHOR
        )
    } else {
        format!(
            "this author already has {} posts in circle {circle}, the most any node keeps; \
             older ones must expire first",
            proto_limits::MAX_POSTS_PER_AUTHOR
        )
    }
}

impl Refused {
    /// Whether the peer that sent this post misbehaved by sending it. Only an invalid
    /// post is the sender's fault (and not all of those: see the net module); a post
    /// refused for a blocked author, a quota, a full circle or a rate was valid, and
    /// an honest peer may hold it.
    pub fn is_senders_fault(&self) -> bool {
        matches!(self, Refused::Invalid(_))
    }

    /// A stable machine-readable name: `blocked`, `over_quota`, `circle_full`,
    /// `newcomers`, `not_member`, `moderated`, `circle_left`, or the proto error's
    /// code.
    pub fn code(&self) -> String {
        match self {
            Refused::Invalid(e) => e.code(),
            Refused::Blocked(_) => "blocked".into(),
            Refused::OverQuota { .. } => "over_quota".into(),
            Refused::CircleFull { .. } => "circle_full".into(),
            Refused::Newcomers { .. } => "newcomers".into(),
            Refused::NotMember { .. } => "not_member".into(),
            Refused::Moderated => "moderated".into(),
            Refused::CircleLeft { .. } => "circle_left".into(),
        }
    }
}

/// Per-circle budgets of a node. The defaults are `aidmesh_proto::limits`'; every node
/// applies the same eviction order whatever its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most posts kept per circle.
    pub circle_posts: u64,
    /// Most record bytes kept per circle.
    pub circle_bytes: u64,
    /// Bytes of sled's page cache (default [`CACHE_BYTES`]).
    pub cache_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            circle_posts: proto_limits::CIRCLE_BUDGET_POSTS,
            circle_bytes: proto_limits::CIRCLE_BUDGET_BYTES,
            cache_bytes: CACHE_BYTES,
        }
    }
}

/// Most circles whose newcomer rate is tracked at once.
const MAX_NEWCOMER_BUCKETS: usize = 1024;

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

/// What the indexes know of a stored post: every field the matcher scores, read
/// without loading the post from disk (see [`Store::candidates`]).
#[derive(Clone, Copy)]
pub struct Summary<'a> {
    entry: &'a index::Entry,
    seq: Seq,
    index: &'a Index,
}

impl Summary<'_> {
    /// The post's id.
    pub fn id(&self) -> PostId {
        self.entry.id
    }
    /// Its author.
    pub fn author(&self) -> AuthorKey {
        self.entry.author
    }
    /// Offer or request.
    pub fn kind(&self) -> aidmesh_proto::Kind {
        self.entry.kind
    }
    /// Its category.
    pub fn category(&self) -> aidmesh_proto::Category {
        self.entry.category
    }
    /// Its circle.
    pub fn circle(&self) -> &str {
        &self.entry.circle
    }
    /// Its status.
    pub fn status(&self) -> aidmesh_proto::Status {
        self.entry.status
    }
    /// When it expires (ms).
    pub fn expires_at(&self) -> u64 {
        self.entry.expires_at
    }
    /// When it was last changed (ms).
    pub fn updated_at(&self) -> u64 {
        self.entry.updated_at
    }
    /// Its tags.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.entry.tags.iter().map(|t| &**t)
    }
    /// Its geohash, if it has one.
    pub fn location(&self) -> Option<&str> {
        self.entry.location.as_deref()
    }
    /// The quantity it offers or asks for, if given.
    pub fn quantity(&self) -> Option<u32> {
        self.entry.quantity
    }
    /// The language and sorted stem hashes ([`crate::words::hash`]) of its title and
    /// body, and of its title alone, as the text index holds them.
    pub fn stems(&self) -> text::StemHashes {
        self.index.stem_hashes(self.seq)
    }
    /// [`Store::stem_frequencies`], through the same read of the indexes (a
    /// [`Store::candidates`] callback must not ask the store itself).
    pub fn stem_frequencies(&self, stems: &[&str]) -> (Vec<usize>, usize) {
        self.index.stem_frequencies(stems.iter().copied())
    }
}

/// The posts that share a word with the post being matched: for each of `stems`,
/// up to `per_stem` of the newest posts that have exactly that stem and pass every
/// filter of `query` but text, looking at no more than `scan` posts per stem.
#[derive(Clone, Copy, Debug)]
pub struct StemScan<'a> {
    /// The filters every candidate passes.
    pub query: &'a Query,
    /// The stems.
    pub stems: &'a [&'a str],
    /// Posts kept per stem.
    pub per_stem: usize,
    /// Posts looked at per stem.
    pub scan: usize,
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
    /// `seq` → the word analysis of the record, so an open need not redo it.
    analysed: Tree,
    /// Blocked authors, persisted.
    blocked: Tree,
    /// Swept post ids, persisted.
    swept: Tree,
    /// Per-circle budgets.
    limits: Limits,
    /// Posts refused lately, so sync does not fetch them again.
    refused: Mutex<RefusedSet>,
    /// Per circle, the rate of posts by authors new to it.
    newcomers: Mutex<HashMap<Box<str>, NewcomerBucket>>,
    /// Serialises writers; see the module docs.
    writer: Mutex<()>,
    /// Every index, derived from `records`; changed only under `writer`.
    index: RwLock<Index>,
    /// Closed circles' members and followed moderation (see [`gate`]).
    gate: gate::Gate,
    /// Bumped by every committed write, so caches of derived data know when to
    /// refresh.
    generation: AtomicU64,
}

/// A refusal to remember once a group is written.
struct Note {
    key: RefusedKey,
    reason: RefusalReason,
    until: u64,
    author: AuthorKey,
    room: Option<Room>,
}

/// What a group write did besides its outcomes.
#[derive(Default)]
struct Written {
    /// Records touched, each with its bytes before the write (`None`: there was
    /// none), to undo a write whose flush failed.
    undo: Vec<(Seq, Option<sled::IVec>)>,
    /// Records removed from the indexes to make room, to put back should the batch
    /// fail.
    evicted: Vec<Seq>,
}

impl Store {
    /// Opens (or creates) the store in `path`, rebuilding the indexes from the
    /// records. Refuses a database in another on-disk format with
    /// [`Error::Format`].
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, Limits::default())
    }

    /// Like [`Store::open`], with other per-circle budgets or cache size.
    pub fn open_with(path: &Path, limits: Limits) -> Result<Self, Error> {
        let open_err = |source: sled::Error| match source {
            sled::Error::Corruption { .. } => Error::Damaged {
                path: path.to_path_buf(),
                detail: source.to_string(),
            },
            sled::Error::Io(e) if is_disk_full(&e) => Error::DiskFull(e.to_string()),
            source => Error::Open {
                path: path.to_path_buf(),
                source,
            },
        };
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(limits.cache_bytes)
            .flush_every_ms(Some(FLUSH_EVERY_MS));
        // A store closed a moment ago in this process may still be releasing its file
        // lock (sled's flusher thread lets go last): retry briefly before giving up.
        let mut attempts = 0;
        let db = loop {
            match open_catching_panics(&config, path)? {
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
        let analysed = tree(analysed::TREE_ANALYSED)?;
        let blocked = tree(keys::TREE_BLOCKED)?;
        let swept = tree(keys::TREE_SWEPT)?;
        check_analysis_version(&db, &analysed).map_err(open_err)?;
        let index = rebuild(&records, &analysed, &blocked, &swept).map_err(|e| match e {
            Error::Corrupt(detail) => Error::Damaged {
                path: path.to_path_buf(),
                detail,
            },
            other => other,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                records,
                analysed,
                blocked,
                swept,
                limits,
                refused: Mutex::new(RefusedSet::default()),
                newcomers: Mutex::new(HashMap::new()),
                writer: Mutex::new(()),
                index: RwLock::new(index),
                gate: gate::Gate::default(),
                generation: AtomicU64::new(0),
                db,
            }),
        })
    }

    /// The underlying database, for other subsystems' own trees (address book, ...).
    pub fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    /// The membrane every write asks first (closed circles, followed moderation).
    pub fn gate(&self) -> &gate::Gate {
        &self.inner.gate
    }

    /// Deletes the posts of `authors` in `circle` (removed from a closed circle, or
    /// blocked there by a followed moderator) and those of `ids` (hidden). Returns
    /// how many were deleted. The gate must already refuse them, so they cannot come
    /// back.
    pub fn remove_gated(
        &self,
        circle: &str,
        authors: &[AuthorKey],
        ids: &[PostId],
    ) -> Result<usize, Error> {
        let _w = self.lock();
        let seqs: Vec<Seq> = {
            let index = self.index();
            let mut seqs: Vec<Seq> = authors
                .iter()
                .filter_map(|a| index.holdings.of(a, circle))
                .flat_map(|h| h.arrivals.iter().copied())
                .collect();
            seqs.extend(
                ids.iter()
                    .filter_map(|id| index.by_id(id).map(|(seq, _)| seq)),
            );
            seqs
        };
        let removed = seqs
            .chunks(SWEEP_TX)
            .map(|chunk| self.remove_seqs(chunk))
            .sum::<Result<usize, Error>>()?;
        if removed > 0 {
            self.refused().room_freed(&Room::Circle(circle.into()));
            self.inner.db.flush()?;
        }
        Ok(removed)
    }

    /// The gate lets more in (a member admitted, a moderator unfollowed): forget the
    /// refusals of `circle`'s posts so sync fetches them again. Called after the gate
    /// changed; a write judging by the gate as it was then drops its refusals (see
    /// `remember`).
    pub fn gate_opened(&self, circle: &str) {
        self.refused().room_freed(&Room::Circle(circle.into()));
    }

    /// Remembers refusals decided by the gate as it was at `gate_generation`. A
    /// refusal by the gate itself is dropped if the gate has changed since: the
    /// change may admit the post, and [`Store::gate_opened`] may already have run.
    fn remember(&self, notes: impl IntoIterator<Item = Note>, gate_generation: u64) {
        let mut refused = self.refused();
        let gate_moved = self.inner.gate.generation() != gate_generation;
        for n in notes {
            // A left circle is not synced, and should the node join it again its
            // posts are wanted: nothing to remember.
            if n.reason == RefusalReason::Left
                || (gate_moved
                    && matches!(
                        n.reason,
                        RefusalReason::NotMember | RefusalReason::Moderated
                    ))
            {
                continue;
            }
            refused.note(n.key, n.reason, n.until, Some(n.author), n.room);
        }
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
        let verified = match signed.clone().verify(now) {
            Ok(v) => v,
            Err(e) => {
                self.note_invalid(&signed, &e, now);
                return Err(Refused::from(e).into());
            }
        };
        self.insert_verified_at(&verified, now)
    }

    /// Stores a post verified by the caller (network durability, see module docs).
    pub fn insert_verified(&self, post: &VerifiedPost) -> Result<Inserted, Error> {
        self.insert_verified_at(post, crate::clock::now_ms())
    }

    fn insert_verified_at(&self, post: &VerifiedPost, now: u64) -> Result<Inserted, Error> {
        self.insert_verified_batch_at(std::slice::from_ref(post), now)?
            .pop()
            .unwrap_or(Ok(Inserted::Duplicate))
            .map_err(Error::from)
    }

    /// Stores verified posts from the network, in write groups of up to
    /// `BATCH_TX` posts (each group atomic), deciding each in order as
    /// [`Store::insert_verified`] would; one outcome per post.
    pub fn insert_verified_batch(
        &self,
        posts: &[VerifiedPost],
    ) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        self.insert_verified_batch_at(posts, crate::clock::now_ms())
    }

    fn insert_verified_batch_at(
        &self,
        posts: &[VerifiedPost],
        now: u64,
    ) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        let _w = self.lock();
        let mut out = Vec::with_capacity(posts.len());
        for chunk in posts.chunks(BATCH_TX) {
            out.extend(self.write_group(chunk, Mode::Network, now)?.0);
        }
        Ok(out)
    }

    /// Whether inserting `post` now would change the store: a new post or a winning
    /// revision of a stored one, by an author who is not blocked, within the
    /// per-author quota and the circle's budget. Read-only, so a relay can decide
    /// before it pays for the write; a post that would be refused is remembered as
    /// refused (see [`Store::is_refused`]).
    pub fn would_change(&self, post: &VerifiedPost) -> Result<bool, Error> {
        let now = crate::clock::now_ms();
        let bytes = record_len(post);
        let gate_generation = self.inner.gate.generation();
        let decision = admit::decide(
            &self.index(),
            &self.inner.gate,
            post,
            bytes,
            &self.inner.limits,
            Mode::Network,
            now,
        );
        Ok(match decision {
            Decision::Keep(_) => false,
            Decision::Refuse { reason, room, .. } => {
                let note = Note {
                    key: refused::key_of(&post.hash()),
                    reason,
                    until: post.post().expires_at,
                    author: post.post().author,
                    room,
                };
                self.remember([note], gate_generation);
                false
            }
            Decision::Write { newcomer, .. } => {
                !newcomer || self.newcomer_token(&post.post().circle, now, false)
            }
        })
    }

    /// Stores a post made by this node's own user and flushes it to disk before
    /// returning. Refuses, rather than evicts for it, a post beyond the per-author
    /// quota ([`Refused::OverQuota`]). Should the flush fail (a full disk:
    /// [`Error::DiskFull`]), the write is undone: the post is not readable afterwards.
    pub fn insert_local(&self, post: &VerifiedPost) -> Result<Inserted, Error> {
        let _w = self.lock();
        let now = crate::clock::now_ms();
        let (mut outcomes, written) =
            self.write_group(std::slice::from_ref(post), Mode::Local, now)?;
        if let Err(e) = self.inner.db.flush() {
            let e = Error::from(e);
            tracing::error!(error = %e, post = %post.post().id, "cannot write a new post to disk; it was not stored");
            self.undo(written);
            return Err(e);
        }
        outcomes
            .pop()
            .unwrap_or(Ok(Inserted::Duplicate))
            .map_err(Error::from)
    }

    /// Verifies many posts with ed25519 batch verification (on up to
    /// [`VERIFY_THREADS`] cores) and stores the good ones, in atomic batches of up to
    /// [`BATCH_TX`] posts (network durability). Returns one outcome per input, in
    /// order; a bad post never keeps a good one out.
    pub fn insert_batch(
        &self,
        posts: Vec<SignedPost>,
        now: u64,
    ) -> Result<Vec<Result<Inserted, Refused>>, Error> {
        let originals: Vec<SignedPost> = posts.clone();
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
                Err(e) => {
                    self.note_invalid(&originals[i], &e, now);
                    out[i] = Some(Err(Refused::Invalid(e)));
                }
            }
        }
        let outcomes = self.insert_verified_batch_at(&good, now)?;
        for (outcome, i) in outcomes.into_iter().zip(at) {
            out[i] = Some(outcome);
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Ok(Inserted::Duplicate)))
            .collect())
    }

    /// Remembers a post that failed verification, so sync does not fetch it again
    /// soon: a future-dated one until it becomes acceptable, others for
    /// [`refused::RETRY_AFTER_MS`]. Expired posts are not in any peer's sync set.
    fn note_invalid(&self, signed: &SignedPost, e: &aidmesh_proto::Error, now: u64) {
        use aidmesh_proto::{Field, Problem};
        let (reason, until) = match e {
            aidmesh_proto::Error::Invalid(v) if v.problem == Problem::Expired => return,
            aidmesh_proto::Error::Invalid(v)
                if v.problem == Problem::InFuture
                    && matches!(v.field, Field::CreatedAt | Field::UpdatedAt) =>
            {
                let at = signed
                    .decode_post()
                    .map(|p| p.created_at.max(p.updated_at))
                    .unwrap_or(now);
                (
                    RefusalReason::Future,
                    at.saturating_sub(MAX_CLOCK_SKEW_MS).max(now + 1),
                )
            }
            _ => (RefusalReason::Invalid, now + refused::RETRY_AFTER_MS),
        };
        let author = signed.decode_post().ok().map(|p| p.author);
        self.refused().note(
            refused::key_of(&signed.content_hash()),
            reason,
            until,
            author,
            None,
        );
    }

    /// Decides a group of verified posts from the indexes and commits the changes in
    /// one sled batch. Caller holds the writer lock. The indexes are updated as each
    /// post is decided (so two posts of one group see each other) and put back from
    /// the records should the batch fail.
    fn write_group(
        &self,
        posts: &[VerifiedPost],
        mode: Mode,
        now: u64,
    ) -> Result<(Vec<Result<Inserted, Refused>>, Written), Error> {
        let mut outcomes = Vec::with_capacity(posts.len());
        let mut batch = sled::Batch::default();
        let mut analysed_batch = sled::Batch::default();
        let mut written = Written::default();
        let mut notes: Vec<Note> = Vec::new();
        let mut freed: Vec<Room> = Vec::new();
        let remember = mode == Mode::Network;
        let gate_generation = self.inner.gate.generation();
        let mut wrote = false;
        // The title and body are analysed for the text index before the indexes are
        // locked for writing (readers never wait for it), on all cores, and only for
        // the posts the indexes as they stand would write: duplicates and refusals
        // cost no analysis. A post that only a write earlier in this group lets in
        // is analysed on the spot.
        let wanted: Vec<(&VerifiedPost, bool)> = {
            let index = self.index();
            posts
                .iter()
                .map(|v| {
                    let write = matches!(
                        admit::decide(
                            &index,
                            &self.inner.gate,
                            v,
                            record_len(v),
                            &self.inner.limits,
                            mode,
                            now,
                        ),
                        Decision::Write { .. }
                    );
                    (v, write)
                })
                .collect()
        };
        let mut words: Vec<Option<Analysis>> =
            parallel::map(&wanted, ANALYSE_PER_THREAD, |(v, write)| {
                write.then(|| text::analyse(v.post()))
            });
        {
            let mut index = self.index_mut();
            for (v, words) in posts.iter().zip(words.iter_mut()) {
                let post = v.post();
                let wire = v
                    .signed()
                    .encode()
                    .map_err(|e| Error::Corrupt(format!("re-encoding a verified post: {e}")))?;
                let bytes = u32::try_from(wire.len()).unwrap_or(u32::MAX);
                let note = |reason, room| Note {
                    key: refused::key_of(&v.hash()),
                    reason,
                    until: post.expires_at,
                    author: post.author,
                    room,
                };
                match admit::decide(
                    &index,
                    &self.inner.gate,
                    v,
                    bytes,
                    &self.inner.limits,
                    mode,
                    now,
                ) {
                    Decision::Keep(outcome) => {
                        if remember && matches!(outcome, Inserted::Stale { .. }) {
                            notes.push(note(RefusalReason::Superseded, None));
                        }
                        outcomes.push(Ok(outcome));
                    }
                    Decision::Refuse {
                        refused,
                        reason,
                        room,
                    } => {
                        if remember {
                            notes.push(note(reason, room));
                        }
                        outcomes.push(Err(refused));
                    }
                    Decision::Write {
                        current,
                        outcome,
                        evict,
                        newcomer,
                    } => {
                        if newcomer && !self.newcomer_token(&post.circle, now, true) {
                            notes.push(Note {
                                until: now + refused::RETRY_AFTER_MS,
                                ..note(RefusalReason::Newcomers, None)
                            });
                            outcomes.push(Err(Refused::Newcomers {
                                circle: post.circle.clone(),
                            }));
                            continue;
                        }
                        let seq = match current {
                            Some(seq) => seq,
                            None => self.inner.db.generate_id()?,
                        };
                        for (victim, reason, room) in evict {
                            if mode == Mode::Local {
                                written
                                    .undo
                                    .push((victim, self.inner.records.get(keys::seq_key(victim))?));
                            }
                            written.evicted.push(victim);
                            if let Some(e) = index.remove(victim) {
                                tracing::debug!(post = %e.id, author = %e.author, circle = %e.circle, %reason, "evicting a post to make room");
                                batch.remove(&keys::seq_key(victim));
                                analysed_batch.remove(&keys::seq_key(victim));
                                notes.push(Note {
                                    key: refused::key_of(&e.hash),
                                    reason,
                                    until: e.expires_at,
                                    author: e.author,
                                    room: Some(room),
                                });
                            }
                        }
                        if let Some(old) = current.and_then(|seq| index.entry(seq)) {
                            if proto_limits::is_live(old.status)
                                && !proto_limits::is_live(post.status)
                            {
                                freed.push(Room::Author(old.author, old.circle.clone()));
                            }
                            if *old.circle != *post.circle {
                                freed.push(Room::Author(old.author, old.circle.clone()));
                                freed.push(Room::Circle(old.circle.clone()));
                            }
                        }
                        if mode == Mode::Local {
                            written
                                .undo
                                .push((seq, self.inner.records.get(keys::seq_key(seq))?));
                        }
                        batch.insert(&keys::seq_key(seq), wire);
                        let words = words.take().unwrap_or_else(|| text::analyse(post));
                        analysed_batch
                            .insert(&keys::seq_key(seq), analysed::encode(&v.hash(), &words));
                        index.insert(seq, post, v.hash(), &words, bytes);
                        wrote = true;
                        outcomes.push(Ok(outcome));
                    }
                }
            }
        }
        if wrote {
            if let Err(e) = self.inner.records.apply_batch(batch) {
                // Nothing of the batch was applied: the records are as before.
                self.resync_all_touched(posts, &written);
                return Err(e.into());
            }
            self.inner.generation.fetch_add(1, Ordering::Release);
            self.write_analysed(analysed_batch);
        }
        self.remember(notes, gate_generation);
        let mut refused = self.refused();
        for room in freed {
            refused.room_freed(&room);
        }
        Ok((outcomes, written))
    }

    /// Writes analyses of records just written (see [`analysed`]). Only a cache: should
    /// it fail, the next open analyses those posts again.
    fn write_analysed(&self, batch: sled::Batch) {
        if let Err(e) = self.inner.analysed.apply_batch(batch) {
            tracing::debug!(error = %e, "could not keep the word analysis of new posts; the next start redoes it");
        }
    }

    /// Puts the indexes back in step with the records for every post of a group
    /// whose batch failed.
    fn resync_all_touched(&self, posts: &[VerifiedPost], written: &Written) {
        let mut seqs: Vec<Seq> = written.undo.iter().map(|(s, _)| *s).collect();
        seqs.extend(&written.evicted);
        {
            let index = self.index();
            seqs.extend(
                posts
                    .iter()
                    .filter_map(|v| index.by_id(&v.post().id).map(|(s, _)| s)),
            );
        }
        self.resync(&seqs);
    }

    /// Re-reads records `seqs` into the indexes (removing those that are gone).
    fn resync(&self, seqs: &[Seq]) {
        let mut index = self.index_mut();
        for &seq in seqs {
            match self.inner.records.get(keys::seq_key(seq)) {
                Ok(Some(raw)) => match decode_record(&raw) {
                    Ok(p) => {
                        let words = text::analyse(p.post());
                        index.insert(seq, p.post(), p.hash(), &words, raw.len() as u32)
                    }
                    Err(_) => {
                        index.remove(seq);
                    }
                },
                _ => {
                    index.remove(seq);
                }
            }
        }
        drop(index);
        self.inner.generation.fetch_add(1, Ordering::Release);
    }

    /// Undoes a written group (its flush failed): the records go back to what they
    /// were, and so do the indexes. Should even that fail, the posts are dropped
    /// from the indexes so that nothing reads them.
    fn undo(&self, written: Written) {
        let mut batch = sled::Batch::default();
        for (seq, old) in written.undo.iter().rev() {
            match old {
                Some(raw) => batch.insert(&keys::seq_key(*seq), raw.clone()),
                None => batch.remove(&keys::seq_key(*seq)),
            }
        }
        let seqs: Vec<Seq> = written.undo.iter().map(|(s, _)| *s).collect();
        if self.inner.records.apply_batch(batch).is_ok() {
            self.resync(&seqs);
        } else {
            let mut index = self.index_mut();
            for seq in seqs {
                index.remove(seq);
            }
            drop(index);
            self.inner.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Checks (and with `take`, takes) a newcomer token of `circle` at `now`.
    fn newcomer_token(&self, circle: &str, now: u64, take: bool) -> bool {
        let mut buckets = self
            .inner
            .newcomers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(circle) && buckets.len() >= MAX_NEWCOMER_BUCKETS {
            // Forget the buckets that are full again: they hold no information.
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= MAX_NEWCOMER_BUCKETS {
                return false;
            }
        }
        let bucket = buckets
            .entry(circle.into())
            .or_insert_with(|| NewcomerBucket::new(now));
        if take {
            bucket.take(now)
        } else {
            bucket.available(now)
        }
    }

    fn refused(&self) -> MutexGuard<'_, RefusedSet> {
        // Plain in-memory bookkeeping that does not panic midway.
        self.inner.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether sync should not fetch `item`: this node refused a post with its hash
    /// (blocked author, over the per-author quota, circle full, too many newcomers,
    /// superseded by a stored or swept revision, future-dated, invalid) and the
    /// refusal still holds at `now`. Refusals for lack of room end as soon as room
    /// frees up, a future-dated post's when it becomes acceptable.
    pub fn is_refused(&self, item: &Item, now: u64) -> bool {
        self.refused().get(&item.hash, now).is_some()
    }

    /// Why a post with this item hash was refused, if the refusal still holds.
    pub fn refusal(&self, key: &RefusedKey, now: u64) -> Option<RefusalReason> {
        self.refused().get(key, now).map(|r| r.reason)
    }

    /// Remembers that a post was refused outside the store (e.g. by a relay check),
    /// so sync does not fetch it again before `until` (ms since the epoch).
    pub fn note_refused(&self, signed: &SignedPost, reason: RefusalReason, until: u64) {
        let author = signed.decode_post().ok().map(|p| p.author);
        self.refused().note(
            refused::key_of(&signed.content_hash()),
            reason,
            until,
            author,
            None,
        );
    }

    /// How many refusals are remembered (at most [`MAX_REFUSED`]).
    pub fn refused_count(&self) -> usize {
        self.refused().len()
    }

    /// The circle's totals: posts held (tombstones and not yet swept ones included)
    /// and their record bytes.
    pub fn circle_usage(&self, circle: &str) -> (u64, u64) {
        self.index()
            .holdings
            .circle(circle)
            .map_or((0, 0), |c| (c.posts, c.bytes))
    }

    /// The node's per-circle budgets.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// How many of `author`'s posts in `circle` are live and how many are stored in
    /// all (expired ones not yet swept included).
    pub fn author_usage(&self, author: &AuthorKey, circle: &str) -> (usize, usize) {
        self.index()
            .holdings
            .of(author, circle)
            .map_or((0, 0), |a| (a.live, a.arrivals.len()))
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

    /// The matcher's candidates, bounded and read from the indexes alone: the posts
    /// each of `scans` finds (a query, and how many posts passing its filters it may
    /// look at: newest first, for an area the first ones in geohash order; at most
    /// the query's limit kept; offset ignored) and those `stems` finds, each handed
    /// to `f` once, under one read of the indexes (so `f` must be quick and must not
    /// write to the store). Load the few posts worth showing afterwards with
    /// [`Store::get`].
    pub fn candidates(
        &self,
        scans: &[(Query, usize)],
        stems: &StemScan<'_>,
        now: u64,
        mut f: impl FnMut(Summary<'_>),
    ) -> Result<(), Error> {
        for (query, _) in scans {
            query.validate()?;
        }
        stems.query.validate()?;
        let index = self.index();
        let mut seen: rustc_hash::FxHashSet<Seq> = rustc_hash::FxHashSet::default();
        let mut hand = |seq: Seq| {
            if seen.insert(seq) {
                if let Some(entry) = index.entry(seq) {
                    f(Summary {
                        entry,
                        seq,
                        index: &index,
                    });
                }
            }
        };
        for (query, max_scanned) in scans {
            let terms = query.terms();
            let found = match &query.near {
                Some(near) => index.area_sample(query, &terms, near, now, *max_scanned),
                None => index.candidates(query, &terms, now, None, *max_scanned),
            };
            for pos in found.into_iter().take(query.limit) {
                hand(pos.seq);
            }
        }
        for seq in index.with_stems(
            stems.query,
            stems.stems.iter().copied(),
            now,
            stems.per_stem,
            stems.scan,
        ) {
            hand(seq);
        }
        Ok(())
    }

    /// How many stored posts have exactly each of `stems`, and how many posts are
    /// stored: what tells a rare word from a common one.
    pub fn stem_frequencies(&self, stems: &[&str]) -> (Vec<usize>, usize) {
        self.index().stem_frequencies(stems.iter().copied())
    }

    /// The language and sorted stem hashes (all, and the title's) of `post` as the
    /// text index holds them, if the store holds this revision of it (same id,
    /// revision and update time): what the live matcher compares an arriving post
    /// by, without analysing it again.
    pub fn indexed_stems(&self, post: &Post) -> Option<text::StemHashes> {
        let index = self.index();
        let (seq, _) = index.holding(post)?;
        Some(index.stem_hashes(seq))
    }

    /// For each set of `terms`, whether `post` has every one of them, answered from
    /// the text index (in one look at it) if the store holds this revision of the
    /// post (as [`Store::indexed_stems`]).
    pub fn indexed_matches(&self, post: &Post, terms: &[&Terms]) -> Option<Vec<bool>> {
        let index = self.index();
        let (_, e) = index.holding(post)?;
        Some(
            terms
                .iter()
                .map(|t| index.text_matches(&e.text, t))
                .collect(),
        )
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

    /// The fingerprint of [`Store::sync_items`], from the sketch kept for the circle
    /// (constant time while nothing expired since the last sweep).
    pub fn sync_fingerprint(&self, circle: &str, now: u64) -> Fingerprint {
        self.index().sync_fingerprint(circle, now)
    }

    /// [`Store::sync_items`] with their reconciliation sketch, kept up to date by every
    /// write: what a sync session encodes from and decodes against. The same view is
    /// handed out again until the circle changes.
    pub fn sync_view(&self, circle: &str, now: u64) -> CodedSet {
        self.index().sync_view(circle, now)
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
    ///
    /// The highest revision of each swept id is remembered until
    /// `created_at + MAX_LIFETIME_MS`, so that no older revision can come back (see
    /// [`swept`]); memories past that are forgotten here, and so are refusals that no
    /// longer hold. Room freed in a circle ends the refusals it may now admit.
    pub fn sweep_expired(&self, now: u64) -> Result<usize, Error> {
        let _w = self.lock();
        let mut removed = 0;
        let mut freed: HashSet<Room> = HashSet::new();
        loop {
            let batch = self.index().expired(now, SWEEP_TX);
            if batch.is_empty() {
                break;
            }
            let memories: Vec<(PostId, Swept)> = {
                let index = self.index();
                batch
                    .iter()
                    .filter_map(|&seq| index.entry(seq))
                    .inspect(|e| {
                        freed.insert(Room::Circle(e.circle.clone()));
                        freed.insert(Room::Author(e.author, e.circle.clone()));
                    })
                    .map(|e| {
                        (
                            e.id,
                            Swept {
                                revision: e.revision,
                                hash: e.hash,
                                forget_at: e.created_at.saturating_add(MAX_LIFETIME_MS),
                            },
                        )
                    })
                    .filter(|(_, s)| s.forget_at > now)
                    .collect()
            };
            self.remember_swept(memories)?;
            removed += self.remove_seqs(&batch)?;
        }
        let forget = self.index().swept.forgettable(now);
        if !forget.is_empty() {
            let mut batch = sled::Batch::default();
            for id in &forget {
                batch.remove(&id.0);
            }
            self.inner.swept.apply_batch(batch)?;
            let mut index = self.index_mut();
            for id in &forget {
                index.swept.remove(id);
            }
        }
        let mut refused = self.refused();
        refused.prune(now);
        for room in &freed {
            refused.room_freed(room);
        }
        Ok(removed)
    }

    /// Persists swept ids' memories (before their records go: a crash in between
    /// leaves a memory of a post still stored, which is harmless).
    fn remember_swept(&self, memories: Vec<(PostId, Swept)>) -> Result<(), Error> {
        if memories.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut index = self.index_mut();
        for (id, s) in memories {
            batch.insert(&id.0, keys::swept_value(&s).to_vec());
            for dropped in index.swept.insert(id, s) {
                batch.remove(&dropped.0);
            }
        }
        drop(index);
        self.inner.swept.apply_batch(batch)?;
        Ok(())
    }

    /// How many swept post ids are remembered (at most [`swept::MAX_SWEPT`]).
    pub fn swept_count(&self) -> usize {
        self.index().swept.len()
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
        // The circles the author's posts leave have room again for what they refused.
        let circles: HashSet<Box<str>> = {
            let index = self.index();
            seqs.iter()
                .filter_map(|&seq| index.entry(seq).map(|e| e.circle.clone()))
                .collect()
        };
        let removed = seqs
            .chunks(SWEEP_TX)
            .map(|chunk| self.remove_seqs(chunk))
            .sum::<Result<usize, Error>>()?;
        let mut refused = self.refused();
        for circle in circles {
            refused.room_freed(&Room::Circle(circle));
        }
        drop(refused);
        self.inner.db.flush()?;
        Ok(removed)
    }

    /// Deletes every post of `circle` (this node left it). Returns how many were
    /// deleted. Nothing is remembered of them: should the node join again, sync brings
    /// them back.
    pub fn remove_circle(&self, circle: &str) -> Result<usize, Error> {
        let _w = self.lock();
        let seqs = self.index().of_circle(circle);
        // Refusals for lack of room in the circle no longer hold either.
        let authors: HashSet<AuthorKey> = {
            let index = self.index();
            seqs.iter()
                .filter_map(|&seq| index.entry(seq).map(|e| e.author))
                .collect()
        };
        let removed = seqs
            .chunks(SWEEP_TX)
            .map(|chunk| self.remove_seqs(chunk))
            .sum::<Result<usize, Error>>()?;
        let mut refused = self.refused();
        refused.room_freed(&Room::Circle(circle.into()));
        for author in authors {
            refused.room_freed(&Room::Author(author, circle.into()));
        }
        drop(refused);
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
        self.refused().unblocked(author);
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
        self.inner.records.apply_batch(batch.clone())?;
        self.write_analysed(batch);
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

/// The length of a post's record (its signed wire bytes).
fn record_len(post: &VerifiedPost) -> u32 {
    let s = post.signed();
    // bytes, their length prefix (at most 3 bytes for a post) and the signature.
    let len = s.bytes.len() + if s.bytes.len() < 251 { 1 } else { 3 } + 64;
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Opens sled, turning a panic inside it (sled 0.34 panics on some damaged files,
/// e.g. a log cut short) into [`Error::Damaged`]. The panic message is kept out of
/// the output: the error says what to do.
fn open_catching_panics(
    config: &sled::Config,
    path: &Path,
) -> Result<Result<sled::Db, sled::Error>, Error> {
    let me = std::thread::current().id();
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            (*chained)(info);
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    // Put the previous hook back (ours holds a clone of it).
    let _ours = std::panic::take_hook();
    match std::sync::Arc::try_unwrap(previous) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(shared) => std::panic::set_hook(Box::new(move |info| (*shared)(info))),
    }
    match result {
        Ok(r) => Ok(r),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "sled could not read it".into());
            tracing::error!(path = %path.display(), %detail, "the store is damaged");
            Err(Error::Damaged {
                path: path.to_path_buf(),
                detail,
            })
        }
    }
}

/// [`aidmesh_proto::verify_batch`] split over the cores: signature checks are most of
/// the cost of ingesting a batch, and a batch from sync is large enough to share.
/// Results are in input order.
fn verify_parallel(
    mut posts: Vec<SignedPost>,
    now: u64,
) -> Vec<Result<VerifiedPost, aidmesh_proto::Error>> {
    let threads = parallel::threads(posts.len(), aidmesh_proto::signed::VERIFY_BATCH);
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
    // verify_batch does not panic; if it ever did, it fails as it would have here.
    parallel::run(parts, |part| aidmesh_proto::verify_batch(part, now))
}

/// Records read and analysed together while the indexes are rebuilt.
const REBUILD_CHUNK: usize = 4096;

/// A record read back at open: its seq, post, size, and its words.
type Reread = (u64, VerifiedPost, u32, Words);

/// A reread record's words: its stored analysis while that is for this post (read in
/// place, see [`analysed::View`]), else one made now.
enum Words {
    Stored(sled::IVec),
    Made(Analysis),
    Missing,
}

/// Fills in the analysis ([`text::analyse`]) of each record that has none, split
/// over the cores.
fn analyse_missing(chunk: &mut [Reread]) {
    let mut missing: Vec<&mut Reread> = chunk
        .iter_mut()
        .filter(|r| matches!(r.3, Words::Missing))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(VERIFY_THREADS);
    if threads < 2 || missing.len() < 64 {
        for r in missing {
            r.3 = Words::Made(text::analyse(r.1.post()));
        }
        return;
    }
    let per = missing.len().div_ceil(threads);
    std::thread::scope(|s| {
        for part in missing.chunks_mut(per) {
            s.spawn(move || {
                for r in part {
                    r.3 = Words::Made(text::analyse(r.1.post()));
                }
            });
        }
    });
}

/// Stamps the analysis version on a new tree; empties one written by other
/// analysis code (every post is then analysed again at this open).
fn check_analysis_version(db: &sled::Db, analysed: &Tree) -> Result<(), sled::Error> {
    let meta = db.open_tree(keys::TREE_META)?;
    let current = analysed::version_value();
    if meta.get(analysed::VERSION_KEY)?.as_deref() != Some(&current[..]) {
        if !analysed.is_empty() {
            tracing::info!(
                "word analysis changed since the last start: analysing every post again"
            );
        }
        analysed.clear()?;
        meta.insert(analysed::VERSION_KEY, &current)?;
    }
    Ok(())
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
/// leave behind (see the module docs). The records' word analyses come from
/// `analysed` where it has them for the record as it stands (see [`analysed`]); the
/// others are analysed here and stored.
fn rebuild(records: &Tree, analysed: &Tree, blocked: &Tree, swept: &Tree) -> Result<Index, Error> {
    let mut index = Index::deferring();
    for k in blocked.iter().keys() {
        index.set_blocked(parse_author(&k?)?, true);
    }
    for entry in swept.iter() {
        let (k, v) = entry?;
        let (id, s) =
            keys::parse_swept(&k, &v).ok_or_else(|| Error::Corrupt("swept post id".into()))?;
        index.swept.insert(id, s);
    }
    let mut doomed = Vec::new();
    let mut fixes = sled::Batch::default();
    let mut fixed = 0usize;
    // Both trees are keyed by seq: read side by side, an analysis either belongs to
    // the record of its seq or to none.
    let mut stored = analysed.iter().peekable();
    let mut entries = records.iter();
    loop {
        let mut chunk: Vec<Reread> = Vec::with_capacity(REBUILD_CHUNK);
        for entry in entries.by_ref().take(REBUILD_CHUNK) {
            let (k, raw) = entry?;
            let seq = keys::parse_seq(&k).ok_or_else(|| Error::Corrupt("record key".into()))?;
            let post = decode_record(&raw)?;
            let mut words = Words::Missing;
            while let Some(next) = stored.peek() {
                let Ok((ak, _)) = next else {
                    // An unreadable analysis is only a cache miss.
                    stored.next();
                    continue;
                };
                match keys::parse_seq(ak) {
                    Some(s) if s == seq => {
                        if let Some(Ok((_, v))) = stored.next() {
                            if analysed::made_for(&v, &post.hash()) {
                                words = Words::Stored(v);
                            }
                        }
                        break;
                    }
                    Some(s) if s > seq => break,
                    _ => {
                        fixes.remove(ak.clone());
                        fixed += 1;
                        stored.next();
                    }
                }
            }
            chunk.push((seq, post, raw.len() as u32, words));
        }
        if chunk.is_empty() {
            break;
        }
        analyse_missing(&mut chunk);
        for (seq, p, bytes, words) in chunk {
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
            let view = match &words {
                Words::Stored(v) => analysed::View::of(v, &p.hash()),
                _ => None,
            };
            if let Some(view) = view {
                let stems = view.stems().map(|(text, _, title)| (text, title));
                index.insert_stems(seq, post, p.hash(), view.lang, stems, bytes);
                continue;
            }
            // Made just now, or stored for this post but damaged: analysed again here.
            let made = match words {
                Words::Made(made) => made,
                _ => text::analyse(post),
            };
            fixes.insert(&keys::seq_key(seq), analysed::encode(&p.hash(), &made));
            fixed += 1;
            index.insert(seq, post, p.hash(), &made, bytes);
        }
    }
    index.build_sets();
    // Analyses of records that are gone.
    for (k, _) in stored.flatten() {
        fixes.remove(k);
        fixed += 1;
    }
    if !doomed.is_empty() {
        tracing::warn!(
            records = doomed.len(),
            "removing posts of blocked authors and superseded duplicates left by an interrupted write"
        );
        let mut batch = sled::Batch::default();
        for seq in doomed {
            batch.remove(&keys::seq_key(seq));
            fixes.remove(&keys::seq_key(seq));
            fixed += 1;
        }
        records.apply_batch(batch)?;
        records.flush()?;
    }
    if fixed > 0 {
        tracing::debug!(posts = fixed, "brought the stored word analyses up to date");
        if let Err(e) = analysed.apply_batch(fixes) {
            tracing::debug!(error = %e, "could not store the word analyses; the next start redoes them");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use aidmesh_proto::riblt::ITEM_HASH_BYTES;

    #[test]
    fn a_refusal_by_a_gate_that_has_since_changed_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let author = AuthorKey([2; 32]);
        let note = |n: u8, reason| Note {
            key: [n; ITEM_HASH_BYTES],
            reason,
            until: u64::MAX,
            author,
            room: Some(Room::Circle("riverside~00".into())),
        };
        let judged_at = store.gate().generation();
        store.remember(vec![note(1, RefusalReason::NotMember)], judged_at);
        assert!(store.refusal(&[1; ITEM_HASH_BYTES], 0).is_some());

        let judged_at = store.gate().generation();
        store
            .gate()
            .set_members("riverside~00", [author].into(), false);
        store.remember(
            vec![
                note(2, RefusalReason::NotMember),
                note(3, RefusalReason::Moderated),
                note(4, RefusalReason::OverQuota),
            ],
            judged_at,
        );
        assert!(store.refusal(&[2; ITEM_HASH_BYTES], 0).is_none());
        assert!(store.refusal(&[3; ITEM_HASH_BYTES], 0).is_none());
        assert!(
            store.refusal(&[4; ITEM_HASH_BYTES], 0).is_some(),
            "a refusal the gate did not give stands"
        );
    }
}
