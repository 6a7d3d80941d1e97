//! The membrane: closed circles' membership records and followed moderation, kept on
//! sled and folded into the store's [`Gate`](crate::store::gate::Gate).
//!
//! Records come in from gossip (the circle's records topic), from the catch-up
//! exchange (`/aidmesh/records/1`) and from this node's own commands; every path ends
//! in [`Membrane::ingest`], which verifies them, keeps those that take effect
//! (membership records in the fold, moderation records of followed keys), writes them,
//! folds the circle again and applies the result: the gate's member set, and the
//! removed members' (and hidden or blocked) posts deleted from the store.
//!
//! Everything is bounded by constants of `aidmesh_proto::circle`, whatever peers
//! send: records per circle, moderation records per signer, records per exchange.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use aidmesh_proto::circle::{
    self, checkpoints, common_prefix, Action, Membership, OrderKey, RecordError, SignedRecord,
    VerifiedRecord, MAX_EXCHANGE_RECORDS, MAX_MODERATION_PER_SIGNER, MAX_OFFER,
    MAX_RECORDS_PER_CIRCLE,
};
use aidmesh_proto::{AuthorKey, PostId};
use tracing::{debug, info, warn};

use crate::store::{self, Store};

/// The sled tree of records: `circle ‖ 0 ‖ at (BE) ‖ rank ‖ hash` → signed record,
/// and `PENDING ‖ hash` → this node's own records not in effect yet.
pub const TREE: &str = "circle_records";
/// Key prefix of this node's own records waiting to take effect (no circle name
/// starts with this byte).
const PENDING: u8 = 1;
/// Most own records waiting to take effect.
const MAX_PENDING: usize = 16;

/// Failures of the membrane's storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// sled failed.
    #[error("membership records I/O error: {0}")]
    Sled(#[from] sled::Error),
    /// The store failed while deleting posts.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A stored record cannot be read back.
    #[error("corrupt membership record: {0}")]
    Corrupt(String),
}

/// What one ingest did.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Records kept (new here and in effect): to relay.
    pub accepted: Vec<SignedRecord>,
    /// Records refused as invalid (bad encoding, signature, voucher, ...).
    pub invalid: Vec<RecordError>,
    /// Posts deleted because their author left the circle or moderation hid them.
    pub removed_posts: usize,
}

/// One circle's records.
#[derive(Debug, Default)]
struct Circle {
    records: BTreeMap<OrderKey, VerifiedRecord>,
    /// Moderation records kept per signer.
    moderation: HashMap<AuthorKey, usize>,
    /// The fold, for a closed circle.
    membership: Option<Membership>,
}

#[derive(Debug)]
struct State {
    circles: HashMap<String, Circle>,
    follow: HashSet<AuthorKey>,
    /// What the gate was last given, to delete only what is newly hidden.
    hidden: HashSet<PostId>,
    blocked: HashSet<(Box<str>, AuthorKey)>,
    /// This node's own records not in effect yet (a redemption of a voucher signed by
    /// a moderator whose grant this node has not seen): offered to every peer in
    /// catch-up requests, and tried again whenever records arrive.
    pending: Vec<SignedRecord>,
}

struct Inner {
    tree: sled::Tree,
    store: Store,
    me: AuthorKey,
    state: Mutex<State>,
}

/// A cheap-to-clone handle on the membrane.
#[derive(Clone)]
pub struct Membrane {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Membrane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membrane").finish_non_exhaustive()
    }
}

fn member_set(m: Option<&Membership>) -> HashSet<AuthorKey> {
    m.map(|m| m.members.keys().copied().collect())
        .unwrap_or_default()
}

fn pending_key(r: &SignedRecord) -> Vec<u8> {
    let mut key = vec![PENDING];
    key.extend_from_slice(&r.hash());
    key
}

fn db_key(circle: &str, k: &OrderKey) -> Vec<u8> {
    let mut key = Vec::with_capacity(circle.len() + 1 + 8 + 1 + 32);
    key.extend_from_slice(circle.as_bytes());
    key.push(0);
    key.extend_from_slice(&k.at.to_be_bytes());
    key.push(k.rank);
    key.extend_from_slice(&k.hash);
    key
}

impl Membrane {
    /// Opens the records in `store`'s database, folds every circle and sets the gate.
    /// `me` is this node's key; `follow` the keys whose moderation it follows.
    pub fn open(store: &Store, me: AuthorKey, follow: &[AuthorKey]) -> Result<Self, Error> {
        let tree = store.db().open_tree(TREE)?;
        let mut circles: HashMap<String, Circle> = HashMap::new();
        let mut pending = Vec::new();
        for item in tree.iter() {
            let (key, value) = item?;
            let signed = SignedRecord::decode(&value).map_err(|e| Error::Corrupt(e.to_string()))?;
            if key.first() == Some(&PENDING) {
                pending.push(signed);
                continue;
            }
            let v = VerifiedRecord::assume_verified(signed)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let c = circles.entry(v.record().circle.clone()).or_default();
            if !v.record().action.is_membership() {
                *c.moderation.entry(v.record().signer).or_default() += 1;
            }
            c.records.insert(v.key(), v);
        }
        let membrane = Self {
            inner: Arc::new(Inner {
                tree,
                store: store.clone(),
                me,
                state: Mutex::new(State {
                    circles,
                    follow: follow.iter().copied().collect(),
                    hidden: HashSet::new(),
                    blocked: HashSet::new(),
                    pending,
                }),
            }),
        };
        {
            let mut s = membrane.state();
            let names: Vec<String> = s.circles.keys().cloned().collect();
            for name in names {
                membrane.refold(&mut s, &name, true)?;
            }
            membrane.apply_moderation(&mut s)?;
        }
        Ok(membrane)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Folds `name` again, sets the gate and deletes the posts of members who are no
    /// longer in. Returns how many posts were deleted.
    fn refold(&self, s: &mut State, name: &str, at_open: bool) -> Result<usize, Error> {
        if !circle::is_closed(name) {
            return Ok(0);
        }
        let Some(c) = s.circles.get_mut(name) else {
            return Ok(0);
        };
        let before = member_set(c.membership.as_ref());
        c.membership = Some(Membership::fold(name, c.records.values()));
        self.settle(name, before, c.membership.as_ref(), at_open)
    }

    /// Gives the gate `name`'s membership `m`, frees refusals if someone came in, and
    /// deletes the posts of members who left (`before` → `m`; at open, of every
    /// removed member, as a crash may have come between the record and the deletion).
    fn settle(
        &self,
        name: &str,
        before: HashSet<AuthorKey>,
        m: Option<&Membership>,
        at_open: bool,
    ) -> Result<usize, Error> {
        let Some(m) = m else { return Ok(0) };
        let after = member_set(Some(m));
        let gone: Vec<AuthorKey> = if at_open {
            m.removed.keys().copied().collect()
        } else {
            before.difference(&after).copied().collect()
        };
        let admitted = after.difference(&before).next().is_some();
        self.inner
            .store
            .gate()
            .set_members(name, after, m.founder.is_some());
        if admitted {
            self.inner.store.gate_opened(name);
        }
        let removed = if gone.is_empty() {
            0
        } else {
            self.inner.store.remove_gated(name, &gone, &[])?
        };
        if removed > 0 {
            info!(
                circle = name,
                posts = removed,
                "deleted the posts of removed members"
            );
        }
        Ok(removed)
    }

    /// Sets the gate's moderation from the followed keys' records and deletes what is
    /// newly hidden or blocked.
    fn apply_moderation(&self, s: &mut State) -> Result<usize, Error> {
        let mut hidden = HashSet::new();
        let mut blocked = HashSet::new();
        let mut by_circle: HashMap<String, (Vec<AuthorKey>, Vec<PostId>)> = HashMap::new();
        for (name, c) in &s.circles {
            for r in c.records.values() {
                let rec = r.record();
                if !s.follow.contains(&rec.signer) {
                    continue;
                }
                match rec.action {
                    Action::Hide { post } if hidden.insert(post) && !s.hidden.contains(&post) => {
                        by_circle.entry(name.clone()).or_default().1.push(post);
                    }
                    Action::Block { author } => {
                        let k: (Box<str>, AuthorKey) = (name.as_str().into(), author);
                        if !s.blocked.contains(&k) {
                            by_circle.entry(name.clone()).or_default().0.push(author);
                        }
                        blocked.insert(k);
                    }
                    _ => {}
                }
            }
        }
        let opened = s.hidden.difference(&hidden).next().is_some()
            || s.blocked.difference(&blocked).next().is_some();
        self.inner
            .store
            .gate()
            .set_moderation(hidden.clone(), blocked.clone());
        s.hidden = hidden;
        s.blocked = blocked;
        if opened {
            for name in s.circles.keys() {
                self.inner.store.gate_opened(name);
            }
        }
        let mut removed = 0;
        for (name, (authors, ids)) in by_circle {
            removed += self.inner.store.remove_gated(&name, &authors, &ids)?;
        }
        Ok(removed)
    }

    /// Verifies `records` at `now`, keeps those that take effect, and applies them;
    /// then tries this node's own pending records again.
    pub fn ingest(&self, records: Vec<SignedRecord>, now: u64) -> Result<Ingested, Error> {
        let mut out = self.ingest_once(records, now)?;
        let pending = std::mem::take(&mut self.state().pending);
        if pending.is_empty() {
            return Ok(out);
        }
        if out.accepted.is_empty() {
            self.state().pending = pending;
            return Ok(out);
        }
        let again = self.ingest_once(pending.clone(), now)?;
        let taken: HashSet<[u8; 32]> = again.accepted.iter().map(SignedRecord::hash).collect();
        for r in pending {
            if taken.contains(&r.hash()) || self.holds(&r) {
                self.inner.tree.remove(pending_key(&r))?;
            } else {
                self.state().pending.push(r);
            }
        }
        out.accepted.extend(again.accepted);
        out.removed_posts += again.removed_posts;
        Ok(out)
    }

    /// Takes a record this node made: in effect at once, or kept aside (and offered
    /// to peers) until the records it depends on arrive. Returns whether it is in
    /// effect; an invalid record is an error.
    pub fn ingest_own(
        &self,
        signed: SignedRecord,
        now: u64,
    ) -> Result<Result<bool, RecordError>, Error> {
        if let Err(e) = signed.verify(now) {
            return Ok(Err(e));
        }
        let i = self.ingest(vec![signed.clone()], now)?;
        if !i.accepted.is_empty() {
            return Ok(Ok(true));
        }
        let mut s = self.state();
        if s.pending.len() < MAX_PENDING && !s.pending.contains(&signed) {
            let wire = signed.encode().map_err(|e| Error::Corrupt(e.to_string()))?;
            self.inner.tree.insert(pending_key(&signed), wire)?;
            s.pending.push(signed);
        }
        Ok(Ok(false))
    }

    fn ingest_once(&self, records: Vec<SignedRecord>, now: u64) -> Result<Ingested, Error> {
        let mut out = Ingested::default();
        let mut by_circle: HashMap<String, Vec<VerifiedRecord>> = HashMap::new();
        for signed in records {
            match signed.verify(now) {
                Ok(v) => by_circle
                    .entry(v.record().circle.clone())
                    .or_default()
                    .push(v),
                Err(e) => out.invalid.push(e),
            }
        }
        if by_circle.is_empty() {
            return Ok(out);
        }
        let mut s = self.state();
        let mut moderation_changed = false;
        for (name, mut candidates) in by_circle {
            let follow = s.follow.clone();
            let c = s.circles.entry(name.clone()).or_default();
            candidates.sort_by_key(|v| v.key());
            candidates.dedup_by_key(|v| v.key());
            candidates.retain(|v| !c.records.contains_key(&v.key()));
            let (membership, moderation): (Vec<_>, Vec<_>) = candidates
                .into_iter()
                .partition(|v| v.record().action.is_membership());
            let mut kept: Vec<VerifiedRecord> = Vec::new();
            let room = MAX_RECORDS_PER_CIRCLE.saturating_sub(c.records.len());
            let last = c.records.keys().next_back().copied();
            // Records newer than every one held (the usual case): apply them to the
            // membership as it stands instead of folding the whole circle again (a
            // void record changes nothing, so the result is the fold's).
            let mut folded: Option<HashSet<AuthorKey>> = None;
            if !membership.is_empty()
                && circle::is_closed(&name)
                && (c.records.is_empty() || c.membership.is_some())
                && membership.iter().all(|v| Some(v.key()) > last)
            {
                folded = Some(member_set(c.membership.as_ref()));
                let m = c.membership.get_or_insert_with(|| Membership::new(&name));
                for v in membership {
                    if kept.len() >= room {
                        break;
                    }
                    if m.apply(&v) {
                        kept.push(v);
                    }
                }
            } else if !membership.is_empty() {
                // Fold the stored records and the candidates together; keep the
                // candidates that take effect at their place in the order.
                let fresh: HashSet<OrderKey> = membership.iter().map(|v| v.key()).collect();
                let mut all: Vec<&VerifiedRecord> =
                    c.records.values().chain(membership.iter()).collect();
                all.sort_by_key(|v| v.key());
                let mut m = Membership::new(&name);
                let mut effective = HashSet::new();
                for v in all {
                    if m.apply(v) && fresh.contains(&v.key()) {
                        effective.insert(v.key());
                    }
                }
                kept.extend(
                    membership
                        .into_iter()
                        .filter(|v| effective.contains(&v.key())),
                );
            }
            for v in moderation {
                let signer = v.record().signer;
                let n = c.moderation.get(&signer).copied().unwrap_or(0);
                if (follow.contains(&signer) || signer == self.inner.me)
                    && n < MAX_MODERATION_PER_SIGNER
                {
                    *c.moderation.entry(signer).or_default() += 1;
                    moderation_changed |= follow.contains(&signer);
                    kept.push(v);
                }
            }
            if kept.len() > room {
                warn!(circle = %name, "circle holds the most membership records a node keeps; refusing more");
                kept.truncate(room);
            }
            if kept.is_empty() {
                continue;
            }
            let mut batch = sled::Batch::default();
            for v in &kept {
                let wire = v
                    .signed()
                    .encode()
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                batch.insert(db_key(&name, &v.key()), wire);
            }
            self.inner.tree.apply_batch(batch)?;
            for v in kept {
                out.accepted.push(v.signed().clone());
                c.records.insert(v.key(), v);
            }
            debug!(circle = %name, records = out.accepted.len(), "membership records kept");
            out.removed_posts += match folded {
                Some(before) => {
                    let m = s.circles.get(&name).and_then(|c| c.membership.as_ref());
                    self.settle(&name, before, m, false)?
                }
                None => self.refold(&mut s, &name, false)?,
            };
        }
        if moderation_changed {
            out.removed_posts += self.apply_moderation(&mut s)?;
        }
        if !out.accepted.is_empty() {
            self.inner.tree.flush()?;
        }
        Ok(out)
    }

    /// Whether this node holds `r` among its circle's records.
    fn holds(&self, r: &SignedRecord) -> bool {
        let Ok(v) = VerifiedRecord::assume_verified(r.clone()) else {
            return false;
        };
        self.state()
            .circles
            .get(&v.record().circle)
            .is_some_and(|c| c.records.contains_key(&v.key()))
    }

    /// The membership of closed circle `circle`, as folded here (`None`: no record).
    pub fn membership(&self, circle: &str) -> Option<Membership> {
        self.state()
            .circles
            .get(circle)
            .and_then(|c| c.membership.clone())
    }

    /// The closed circles whose records this node holds.
    pub fn closed_circles(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .state()
            .circles
            .keys()
            .filter(|c| circle::is_closed(c))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// How many records of `circle` this node holds.
    pub fn record_count(&self, circle: &str) -> usize {
        self.state()
            .circles
            .get(circle)
            .map_or(0, |c| c.records.len())
    }

    /// Follows or stops following `key`'s moderation. Returns whether it changed.
    pub fn set_follow(&self, key: AuthorKey, follow: bool) -> Result<bool, Error> {
        let mut s = self.state();
        let changed = if follow {
            s.follow.insert(key)
        } else {
            s.follow.remove(&key)
        };
        if changed {
            self.apply_moderation(&mut s)?;
        }
        Ok(changed)
    }

    /// The keys followed.
    pub fn followed(&self) -> Vec<AuthorKey> {
        let mut v: Vec<AuthorKey> = self.state().follow.iter().copied().collect();
        v.sort();
        v
    }

    /// Whether closed circle `circle` denies `peer` (not a current member). Open
    /// circles deny nobody.
    pub fn denies(&self, circle: &str, peer: &AuthorKey) -> bool {
        circle::is_closed(circle) && !self.inner.store.gate().is_member(circle, peer)
    }

    /// A catch-up request for `circle`: this node's checkpoints and its own latest
    /// records.
    pub fn request(&self, name: &str) -> circle::Request {
        let s = self.state();
        let mut offer: Vec<SignedRecord> = s
            .pending
            .iter()
            .filter(|r| r.decode_record().is_ok_and(|r| r.circle == name))
            .take(MAX_OFFER)
            .cloned()
            .collect();
        let cps = match s.circles.get(name) {
            Some(c) => {
                let keys: Vec<OrderKey> = c.records.keys().copied().collect();
                let room = MAX_OFFER - offer.len();
                offer.extend(
                    c.records
                        .values()
                        .rev()
                        .filter(|v| v.record().signer == self.inner.me)
                        .take(room)
                        .map(|v| v.signed().clone()),
                );
                checkpoints(&keys)
            }
            None => Vec::new(),
        };
        circle::Request {
            circle: name.to_string(),
            checkpoints: cps,
            offer,
        }
    }

    /// Answers a catch-up request from `peer` (this node is in the circle): takes its
    /// offered records, then serves its records after the common prefix, unless the
    /// circle is closed and `peer` is not a member.
    pub fn respond(
        &self,
        peer: Option<AuthorKey>,
        request: circle::Request,
        now: u64,
    ) -> Result<circle::Response, Error> {
        if !request.offer.is_empty() {
            self.ingest(request.offer, now)?;
        }
        if circle::is_closed(&request.circle)
            && peer.is_none_or(|p| self.denies(&request.circle, &p))
        {
            return Ok(circle::Response::Denied);
        }
        let s = self.state();
        let Some(c) = s.circles.get(&request.circle) else {
            return Ok(circle::Response::Records {
                records: Vec::new(),
                more: false,
            });
        };
        let keys: Vec<OrderKey> = c.records.keys().copied().collect();
        let start = common_prefix(&keys, &request.checkpoints);
        let records: Vec<SignedRecord> = c
            .records
            .values()
            .skip(start)
            .take(MAX_EXCHANGE_RECORDS)
            .map(|v| v.signed().clone())
            .collect();
        let more = keys.len() - start > records.len();
        Ok(circle::Response::Records { records, more })
    }
}
