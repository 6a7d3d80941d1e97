//! Standing alerts: saved filters that a node checks every arriving post against.
//!
//! An alert's filter is a [`Query`] without limit, offset or status (alerts are about
//! open posts). Alerts live in the sled tree `alerts` (`id (u64 BE)` → JSON of the
//! [`Alert`]) and are also kept in memory, so checking a post against a hundred of
//! them reads nothing from disk. The tree `alerted` remembers which posts already
//! raised a match for which alert or own post, so the same post never alerts twice
//! for the same alert or own post, across revisions, re-deliveries and restarts: one
//! entry per commit, `commit number (u64 BE)` → its matches, each `target ‖ post id
//! ‖ when the post expires (u64 BE)`, the target being `a` ‖ alert id (u64 BE) or
//! `p` ‖ own post id. A post that arrives raises several matches at once (about
//! seven in the matcher benchmark), and sled costs about the same per key whatever
//! its size, so a commit is one write however many matches it holds. (Stores written
//! before kept one entry per match, `target ‖ post id` → expiry; they are still read,
//! and leave as their posts expire.) The matches of a deleted alert stay until their
//! posts expire: alert ids are never reused, so they can never apply to another.
//!
//! That memory is also kept in memory (a 64-bit hash of each key, with the expiry),
//! so checking it costs no disk access; new entries are written in batches
//! ([`Alerts::commit`]: when the arriving posts pause, or every [`COMMIT_BATCH`]).
//! A crash can lose the last batch: those posts may then alert once more. Entries of posts that have expired are
//! forgotten, on disk and in memory, at the first commit after open and every
//! [`PRUNE_EVERY`] new entries after: an expired post cannot come back, so its
//! memory is useless.

use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

use aidmesh_proto::rules::MAX_LIFETIME_MS;
use rustc_hash::FxHashMap;

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
/// Bytes of a match key for an alert: tag, alert id, post id.
const ALERT_KEY_BYTES: usize = 1 + 8 + 32;
/// Bytes of a match key for an own post: tag, own post id, post id.
const POST_KEY_BYTES: usize = 1 + 32 + 32;
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
        let mut k = Vec::with_capacity(POST_KEY_BYTES);
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
    /// What a post that fits has in common with it: the same for every post.
    reasons: Vec<String>,
}

/// The in-memory mirror of the `alerted` tree, and its writes not yet made.
#[derive(Default)]
struct Alerted {
    /// [`key_hash`] of each key → when its post expires. The keys are hashes
    /// already: a plain multiplicative hash spreads them.
    seen: FxHashMap<u64, u64>,
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

/// Bytes of an `alerted` key of this format: a commit number. Keys of the earlier
/// format are match keys ([`ALERT_KEY_BYTES`] or [`POST_KEY_BYTES`]).
const COMMIT_KEY_BYTES: usize = 8;

/// The `alerted` value of one commit: `pending` (match keys, `target ‖ post id`,
/// each with its post's expiry), one record after the other.
fn commit_value(pending: &[(Vec<u8>, u64)]) -> Vec<u8> {
    let mut value = Vec::with_capacity(pending.iter().map(|(k, _)| k.len() + 8).sum());
    for (key, expires) in pending {
        value.extend_from_slice(key);
        value.extend_from_slice(&expires.to_be_bytes());
    }
    value
}

/// An `alerted` entry read back: its matches, each a match key with its post's
/// expiry. An entry of the earlier format is one match; those written before
/// expiries were kept (empty value) last a post's longest life from `now`. A damaged
/// commit keeps the matches before the damage.
fn parse_entry(key: &[u8], value: &[u8], now: u64) -> Vec<(Vec<u8>, u64)> {
    if key.len() != COMMIT_KEY_BYTES {
        let expires = <[u8; 8]>::try_from(value)
            .map_or(now.saturating_add(MAX_LIFETIME_MS), u64::from_be_bytes);
        return vec![(key.to_vec(), expires)];
    }
    let mut matches = Vec::new();
    let mut rest = value;
    while let Some(&tag) = rest.first() {
        let len = match tag {
            ALERT_TARGET => ALERT_KEY_BYTES,
            POST_TARGET => POST_KEY_BYTES,
            _ => break,
        };
        let (Some(k), Some(e)) = (rest.get(..len), rest.get(len..len + 8)) else {
            break;
        };
        let Ok(expires) = <[u8; 8]>::try_from(e) else {
            break;
        };
        matches.push((k.to_vec(), u64::from_be_bytes(expires)));
        rest = &rest[len + 8..];
    }
    matches
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
    let reasons = alert.filter.reasons();
    Compiled {
        alert,
        listing,
        terms,
        reasons,
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
        let mut seen = FxHashMap::default();
        let mut expired = sled::Batch::default();
        let mut n = 0usize;
        let legacy_from = now.unwrap_or_else(crate::clock::now_ms);
        for entry in self.alerted.iter() {
            let (k, v) = entry?;
            let matches = parse_entry(&k, &v, legacy_from);
            let total = matches.len();
            let live: Vec<(Vec<u8>, u64)> = matches
                .into_iter()
                .filter(|(_, expires)| now.is_none_or(|now| *expires > now))
                .collect();
            if live.len() < total {
                // Rewritten with the matches of posts that can still come back.
                if live.is_empty() {
                    expired.remove(k);
                } else {
                    expired.insert(k, commit_value(&live));
                }
                n += 1;
            }
            for (key, expires) in live {
                seen.insert(key_hash(&key), expires);
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

    /// Deletes an alert, and its memory of alerted posts where that is kept apart
    /// (entries of the earlier format); see the module docs.
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
        let fits: Vec<&Compiled> = cache
            .iter()
            .filter(|c| {
                c.listing.query.admits_with(post, now, &Terms::default())
                    && c.listing.within.as_ref().is_none_or(|w| w.reaches(post))
            })
            .collect();
        // The text terms of all of them in one look at the index; the post's words
        // are worked out only if the index lacks them.
        let searching: Vec<&Terms> = fits
            .iter()
            .filter(|c| !c.terms.is_empty())
            .map(|c| &c.terms)
            .collect();
        let found = if searching.is_empty() {
            Vec::new()
        } else {
            store.indexed_matches(post, &searching).unwrap_or_else(|| {
                let words = text::analyse(post);
                searching.iter().map(|t| t.match_analysis(&words)).collect()
            })
        };
        let mut found = found.into_iter();
        fits.into_iter()
            .filter(|c| c.terms.is_empty() || found.next().unwrap_or(false))
            .map(|c| (c.alert.id, c.reasons.clone()))
            .collect()
    }

    /// Records that `post` matched `target`; `true` the first time only. Kept in
    /// memory at once, written to disk by [`Alerts::commit`].
    pub fn first_time(&self, target: &Target, post: &Post) -> bool {
        let key = target.key(&post.id);
        let mut memory = self.memory();
        match memory.seen.entry(key_hash(&key)) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(post.expires_at);
                memory.pending.push((key, post.expires_at));
                true
            }
        }
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
        let commit = match self.db.generate_id() {
            Ok(n) => n,
            Err(e) => {
                self.memory().pending.extend(pending);
                return Err(e.into());
            }
        };
        if let Err(e) = self
            .alerted
            .insert(commit.to_be_bytes(), commit_value(&pending))
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn match_key(target: &Target, post: u8) -> Vec<u8> {
        target.key(&PostId([post; 32]))
    }

    #[test]
    fn a_commit_is_one_entry_that_reads_back_whole() {
        let (a, b) = (
            Target::Alert { id: AlertId(7) },
            Target::Alert { id: AlertId(9) },
        );
        let own = Target::Post {
            id: PostId([3; 32]),
            title: "Soup".into(),
        };
        let pending = vec![
            (match_key(&a, 1), 500),
            (match_key(&own, 1), 500),
            (match_key(&b, 1), 500),
            (match_key(&a, 2), 800),
        ];
        let value = commit_value(&pending);
        assert_eq!(parse_entry(&42u64.to_be_bytes(), &value, 0), pending);
    }

    #[test]
    fn earlier_and_damaged_entries_are_read_as_far_as_they_go() {
        let a = Target::Alert { id: AlertId(7) };
        let old = match_key(&a, 1);
        assert_eq!(
            parse_entry(&old, &9u64.to_be_bytes(), 0),
            vec![(old.clone(), 9)]
        );
        // Before expiries were kept: a post's longest life from now.
        assert_eq!(
            parse_entry(&old, &[], 1_000),
            vec![(old.clone(), 1_000 + MAX_LIFETIME_MS)]
        );
        let key = 1u64.to_be_bytes();
        let mut value = commit_value(&[(old.clone(), 9)]);
        value.extend_from_slice(&[b'p', 1, 2]);
        assert_eq!(parse_entry(&key, &value, 0), vec![(old.clone(), 9)]);
        value.push(b'x');
        assert_eq!(parse_entry(&key, &value, 0), vec![(old, 9)]);
        assert!(parse_entry(&key, &[b'a', 2], 5).is_empty());
    }

    #[test]
    fn a_store_of_the_earlier_format_is_read_and_swept() {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("a temporary db");
        let target = Target::Alert { id: AlertId(7) };
        let post = |n: u8, expires_at: u64| Post {
            id: PostId([n; 32]),
            expires_at,
            ..crate::Draft::new(Kind::Offer, Category::Food, "Soup")
                .into_post(aidmesh_proto::AuthorKey([1; 32]), 0)
                .expect("a valid draft")
        };
        let (live, gone) = (post(1, 5_000), post(2, 1_000));
        let tree = db.open_tree(TREE_ALERTED).expect("tree");
        for p in [&live, &gone] {
            tree.insert(target.key(&p.id), &p.expires_at.to_be_bytes())
                .expect("written");
        }
        let alerts = Alerts::open(&db).expect("opens");
        assert!(!alerts.first_time(&target, &live));
        assert!(!alerts.first_time(&target, &gone));
        let fresh = post(3, 9_000);
        assert!(alerts.first_time(&target, &fresh));
        // The first commit after open sweeps the expired post's match.
        alerts.commit(2_000).expect("committed");
        assert!(alerts.first_time(&target, &gone));
        assert!(!alerts.first_time(&target, &live));
        assert_eq!(
            tree.len(),
            2,
            "the earlier entry of the live post and one commit"
        );
        drop(alerts);
        let alerts = Alerts::open(&db).expect("opens again");
        assert!(!alerts.first_time(&target, &live));
        assert!(!alerts.first_time(&target, &fresh));
    }
}
