//! Standing alerts: saved filters that a node checks every arriving post against.
//!
//! An alert's filter is a [`Query`] without limit, offset or status (alerts are about
//! open posts). Alerts live in the sled tree `alerts` (`id (u64 BE)` → JSON of the
//! [`Alert`]) and are also kept in memory, so checking a post against a hundred of
//! them reads nothing from disk. The tree `alerted` remembers which posts already
//! raised a match for which alert or own post (`target ‖ post id` → when the post
//! expires, u64 BE), so the same post never alerts twice for the same alert or own
//! post, across revisions, re-deliveries and restarts.
//!
//! That memory is also kept in memory (a 64-bit hash of each key, with the expiry),
//! so checking it costs no disk access; new entries are written in batches
//! ([`Alerts::commit`]: when the arriving posts pause, or every [`COMMIT_BATCH`]).
//! A crash can lose the last batch: those posts may then alert once more. Entries of posts that have expired are
//! forgotten, on disk and in memory, at the first commit after open and every
//! [`PRUNE_EVERY`] new entries after: an expired post cannot come back, so its
//! memory is useless.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

use aidmesh_proto::rules::MAX_LIFETIME_MS;

use aidmesh_proto::{Category, Kind, Post, PostId};
use serde::{Deserialize, Serialize};

use crate::listing::{Listing, Within};
use crate::store::text::{self, Terms};
use crate::store::{Query, QueryError, StatusFilter, Store};

const TREE_ALERTS: &str = "alerts";
const TREE_ALERTED: &str = "alerted";
/// Key tag in `alerted` for an alert target.
const ALERT_TARGET: u8 = b'a';
/// Key tag in `alerted` for an own-post target.
const POST_TARGET: u8 = b'p';
/// New `alerted` entries between two sweeps of expired ones.
pub const PRUNE_EVERY: usize = 65_536;
/// New `alerted` entries [`Alerts::commit_if_due`] lets wait for one batch.
pub const COMMIT_BATCH: usize = 256;

/// Alert failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// sled failed.
    #[error("alert store I/O error: {0}")]
    Sled(#[from] sled::Error),
    /// A filter value is malformed; names the filter.
    #[error(transparent)]
    Filter(#[from] QueryError),
    /// An alert with no filter at all would fire on every post.
    #[error("an alert needs at least one filter (kind, category, tag, near, search or circle)")]
    Empty,
    /// The radius is out of range, or given without a place.
    #[error("within: {0}")]
    Within(String),
    /// No alert with this id.
    #[error("no alert with id {0}")]
    NotFound(AlertId),
    /// A record on disk cannot be read back.
    #[error("corrupt alert record: {0}")]
    Corrupt(String),
}

impl Error {
    /// The name of the offending filter, for errors caused by the caller's input.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Filter(q) => Some(q.field()),
            Error::Empty => Some("filter"),
            Error::Within(_) => Some("within_km"),
            _ => None,
        }
    }
}

/// An alert's id: a small number, unique within one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub u64);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for AlertId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(AlertId)
    }
}

/// What an alert looks for; every filter set must hold (as for `aidmesh list`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertFilter {
    /// Offers or requests.
    pub kind: Option<Kind>,
    /// One category.
    pub category: Option<Category>,
    /// Posts carrying this tag.
    pub tag: Option<String>,
    /// Posts within [`AlertFilter::within_km`] of this place's centre (a geohash),
    /// as `aidmesh list --near` and the matcher reckon distance.
    pub near: Option<String>,
    /// The radius around `near`, in whole km; [`crate::listing::DEFAULT_WITHIN_KM`]
    /// when not given.
    pub within_km: Option<u32>,
    /// Every word must start a word of the title or body.
    pub search: Option<String>,
    /// One circle.
    pub circle: Option<String>,
}

impl AlertFilter {
    /// The listing this filter stands for (open posts): a store query, and the
    /// distance from `near`.
    pub fn listing(&self) -> Listing {
        Listing {
            query: self.query(),
            within: self.near.as_ref().map(|around| Within {
                around: around.clone(),
                km: self.radius_km(),
            }),
            ..Listing::default()
        }
    }

    /// The store query of [`AlertFilter::listing`], without the distance.
    fn query(&self) -> Query {
        Query {
            kind: self.kind,
            circle: self.circle.clone(),
            category: self.category,
            tag: self.tag.clone(),
            text: self.search.clone(),
            status: StatusFilter::Open,
            ..Query::default()
        }
    }

    /// The radius around `near`, in km.
    pub fn radius_km(&self) -> f64 {
        self.within_km
            .map_or(crate::listing::DEFAULT_WITHIN_KM, f64::from)
    }

    /// Checks every filter value, with the same errors as a `list` query.
    pub fn validate(&self) -> Result<(), Error> {
        if *self == AlertFilter::default() {
            return Err(Error::Empty);
        }
        let mut query = self.query();
        query.near = self.near.clone();
        query.validate()?;
        if let Some(km) = self.within_km {
            if km == 0 || f64::from(km) > crate::listing::MAX_WITHIN_KM {
                return Err(Error::Within(format!(
                    "must be between 1 and {} km, got {km}",
                    crate::listing::MAX_WITHIN_KM
                )));
            }
            if self.near.is_none() {
                return Err(Error::Within("needs a place to measure from (near)".into()));
            }
        }
        Ok(())
    }

    /// What a post that passes this filter has in common with it, for people.
    pub fn reasons(&self) -> Vec<String> {
        let mut r = Vec::new();
        if let Some(k) = self.kind {
            r.push(format!("kind {}", k.as_str()));
        }
        if let Some(c) = self.category {
            r.push(format!("category {}", c.as_str()));
        }
        if let Some(t) = &self.tag {
            r.push(format!("tag {t}"));
        }
        if let Some(g) = &self.near {
            r.push(format!("within {} km of {g}", self.radius_km()));
        }
        if let Some(s) = &self.search {
            r.push(format!("words {s:?}"));
        }
        if let Some(c) = &self.circle {
            r.push(format!("circle {c}"));
        }
        r
    }
}

/// A saved alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id.
    pub id: AlertId,
    /// What it looks for.
    pub filter: AlertFilter,
    /// When it was made, ms since the epoch.
    pub created_at: u64,
}

/// What an arriving post matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A standing alert.
    Alert {
        /// Its id.
        id: AlertId,
    },
    /// One of this node's own open posts.
    Post {
        /// Its id.
        id: PostId,
        /// Its title, so a reader need not look it up.
        title: String,
    },
}

impl Target {
    fn key(&self, post: &PostId) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + 32 + 32);
        match self {
            Target::Alert { id } => {
                k.push(ALERT_TARGET);
                k.extend_from_slice(&id.0.to_be_bytes());
            }
            Target::Post { id, .. } => {
                k.push(POST_TARGET);
                k.extend_from_slice(&id.0);
            }
        }
        k.extend_from_slice(&post.0);
        k
    }
}

/// An alert ready to check posts against.
struct Compiled {
    alert: Alert,
    listing: Listing,
    terms: Terms,
}

/// The in-memory mirror of the `alerted` tree, and its writes not yet made.
#[derive(Default)]
struct Alerted {
    /// [`key_hash`] of each key → when its post expires.
    seen: HashMap<u64, u64>,
    /// New entries to write.
    pending: Vec<(Vec<u8>, u64)>,
    /// New entries since the last sweep of expired ones.
    since_prune: usize,
}

/// The 64-bit hash the memory of `alerted` keys a key by (fixed keys, so the same
/// key hashes alike in every run; two keys colliding costs one missed alert).
fn key_hash(key: &[u8]) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

/// An `alerted` value read back: the post's expiry. Entries written before expiries
/// were kept (empty) are kept for a post's longest life from `now`.
fn parse_expiry(value: &[u8], now: u64) -> u64 {
    <[u8; 8]>::try_from(value).map_or(now.saturating_add(MAX_LIFETIME_MS), u64::from_be_bytes)
}

/// The node's alerts: on disk, and in memory for checking. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    db: sled::Db,
    alerts: sled::Tree,
    alerted: sled::Tree,
    /// Every alert, in id order; mirrors the `alerts` tree.
    cache: Arc<RwLock<Vec<Compiled>>>,
    /// Mirrors the `alerted` tree.
    memory: Arc<Mutex<Alerted>>,
}

fn compile(alert: Alert) -> Compiled {
    let listing = alert.filter.listing();
    let terms = listing.query.text_terms();
    Compiled {
        alert,
        listing,
        terms,
    }
}

impl Alerts {
    /// Opens the alert trees of `db` and loads every alert.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        let alerts = db.open_tree(TREE_ALERTS)?;
        let alerted = db.open_tree(TREE_ALERTED)?;
        let mut all = Vec::new();
        for entry in alerts.iter() {
            let (_, v) = entry?;
            let alert: Alert =
                serde_json::from_slice(&v).map_err(|e| Error::Corrupt(e.to_string()))?;
            all.push(compile(alert));
        }
        let this = Self {
            db: db.clone(),
            alerts,
            alerted,
            cache: Arc::new(RwLock::new(all)),
            memory: Arc::default(),
        };
        this.prune(None)?;
        Ok(this)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Alerted> {
        // Plain map operations: a panic elsewhere cannot leave it half-changed.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the memory from the `alerted` tree, and with `now`, forgets the
    /// entries of posts expired then, on disk and in memory. Without `now` (at open),
    /// the first commit sweeps, with the caller's clock.
    fn prune(&self, now: Option<u64>) -> Result<(), Error> {
        let mut seen = HashMap::new();
        let mut expired = sled::Batch::default();
        let mut n = 0usize;
        let legacy_from = now.unwrap_or_else(crate::clock::now_ms);
        for entry in self.alerted.iter() {
            let (k, v) = entry?;
            let expires = parse_expiry(&v, legacy_from);
            if now.is_some_and(|now| expires <= now) {
                expired.remove(k);
                n += 1;
            } else {
                seen.insert(key_hash(&k), expires);
            }
        }
        if n > 0 {
            self.alerted.apply_batch(expired)?;
        }
        let mut memory = self.memory();
        // Entries made while the tree was read are still to be written: keep them.
        for (k, expires) in &memory.pending {
            seen.insert(key_hash(k), *expires);
        }
        memory.seen = seen;
        memory.since_prune = if now.is_some() { 0 } else { PRUNE_EVERY };
        Ok(())
    }

    /// Saves a new alert (flushed to disk before this returns).
    pub fn add(&self, filter: AlertFilter, now: u64) -> Result<Alert, Error> {
        filter.validate()?;
        let alert = Alert {
            id: AlertId(self.db.generate_id()?),
            filter,
            created_at: now,
        };
        let json = serde_json::to_vec(&alert).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.alerts.insert(alert.id.0.to_be_bytes(), json)?;
        self.alerts.flush()?;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.push(compile(alert.clone()));
        cache.sort_by_key(|c| c.alert.id);
        Ok(alert)
    }

    /// Every alert, oldest first.
    pub fn list(&self) -> Vec<Alert> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache.iter().map(|c| c.alert.clone()).collect()
    }

    /// Number of alerts.
    pub fn len(&self) -> usize {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there is no alert.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deletes an alert and its memory of alerted posts.
    pub fn remove(&self, id: AlertId) -> Result<Alert, Error> {
        let old = self
            .alerts
            .remove(id.0.to_be_bytes())?
            .ok_or(Error::NotFound(id))?;
        let mut prefix = vec![ALERT_TARGET];
        prefix.extend_from_slice(&id.0.to_be_bytes());
        let mut memory = self.memory();
        memory.pending.retain(|(k, _)| !k.starts_with(&prefix));
        for key in self.alerted.scan_prefix(&prefix).keys() {
            let key = key?;
            memory.seen.remove(&key_hash(&key));
            self.alerted.remove(key)?;
        }
        drop(memory);
        self.alerts.flush()?;
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|c| c.alert.id != id);
        serde_json::from_slice(&old).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// The alerts `post` fits at `now`, each with what it had in common with it.
    ///
    /// An alert that searches text asks `store`'s text index when it holds the post
    /// (an arriving post was stored first), and analyses the post only otherwise.
    pub fn matching(&self, post: &Post, now: u64, store: &Store) -> Vec<(AlertId, Vec<String>)> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        // The post's words are worked out once, and only if the index lacks them.
        let mut words = None;
        cache
            .iter()
            .filter(|c| {
                if !c.listing.query.admits_with(post, now, &Terms::default())
                    || !c.listing.within.as_ref().is_none_or(|w| w.reaches(post))
                {
                    return false;
                }
                c.terms.is_empty()
                    || store.indexed_match(post, &c.terms).unwrap_or_else(|| {
                        c.terms
                            .match_analysis(words.get_or_insert_with(|| text::analyse(post)))
                    })
            })
            .map(|c| (c.alert.id, c.alert.filter.reasons()))
            .collect()
    }

    /// Records that `post` matched `target`; `true` the first time only. Kept in
    /// memory at once, written to disk by [`Alerts::commit`].
    pub fn first_time(&self, target: &Target, post: &Post) -> bool {
        let key = target.key(&post.id);
        let mut memory = self.memory();
        if memory.seen.contains_key(&key_hash(&key)) {
            return false;
        }
        memory.seen.insert(key_hash(&key), post.expires_at);
        memory.pending.push((key, post.expires_at));
        true
    }

    /// [`Alerts::commit`] once [`COMMIT_BATCH`] entries wait.
    pub fn commit_if_due(&self, now: u64) -> Result<(), Error> {
        if self.memory().pending.len() < COMMIT_BATCH {
            return Ok(());
        }
        self.commit(now)
    }

    /// Writes the entries [`Alerts::first_time`] made since the last commit, in one
    /// batch, and now and then forgets those of expired posts. Until it is called,
    /// a crash can make those posts alert again once.
    pub fn commit(&self, now: u64) -> Result<(), Error> {
        let (pending, prune) = {
            let mut memory = self.memory();
            if memory.pending.is_empty() {
                return Ok(());
            }
            memory.since_prune += memory.pending.len();
            (
                std::mem::take(&mut memory.pending),
                memory.since_prune >= PRUNE_EVERY,
            )
        };
        let mut batch = sled::Batch::default();
        for (k, expires) in &pending {
            batch.insert(k.as_slice(), &expires.to_be_bytes());
        }
        if let Err(e) = self.alerted.apply_batch(batch) {
            // Kept for the next commit.
            self.memory().pending.extend(pending);
            return Err(e.into());
        }
        if prune {
            self.prune(Some(now))?;
        }
        Ok(())
    }
}
