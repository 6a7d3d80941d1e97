//! Catch-up sync (`/aidmesh/sync/1`): how a node that was offline, is new, or sat on
//! the other side of a partition gets every live post of its circles from a peer.
//!
//! The protocol (specified in `proto/SYNC.md`) reconciles per circle the sets of
//! `(updated_at, content hash)` items of live posts and tombstones. The initiator sends
//! a fingerprint; if the sets differ the responder streams rateless IBLT coded
//! symbols, sized by a strata estimate of the difference, until the initiator has
//! peeled the whole difference; then the initiator fetches what it lacks in batches
//! of at most [`MAX_FETCH`] posts, which go through the same verification as gossip.
//!
//! This module holds the protocol logic without I/O: [`Session`] (the initiator's
//! state machine), [`respond`] (the responder) with its per-session snapshots, and
//! the byte codec for libp2p request-response. Both sides work from the coded set
//! the store keeps per circle ([`Store::sync_view`]). The network's sync driver
//! (`net::sync_driver`) schedules sessions and runs the responder off the swarm task.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aidmesh_proto::riblt::{self, CodedSet, Decoder, Item, ITEM_HASH_BYTES};
use aidmesh_proto::sync::{
    Request, Response, FIRST_SYMBOLS, MAX_FETCH, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_SYMBOLS,
};
use aidmesh_proto::SignedPost;
use libp2p::StreamProtocol;

use crate::store::{self, Store};

/// The libp2p protocol.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new(aidmesh_proto::sync::PROTOCOL);
/// Most reconciliation requests in one session before the peer counts as lying.
pub const MAX_ROUNDS: u32 = 40;
/// Most coded symbols one session holds, whatever `set_size` the peer claims: about
/// 32 MB of decoder state, enough for a difference of ~500,000 posts (1.35-1.7
/// symbols per item), more than two full circles' budgets apart.
pub const MAX_SESSION_SYMBOLS: usize = 800_000;
/// Most posts one session fetches (16-byte prefixes, 4 MB); the rest wait for the next
/// session, which finds them again.
pub const MAX_SESSION_FETCH: usize = 262_144;
/// How long one session may run in all before it is abandoned (no blame), so a peer
/// that answers slowly cannot hold it for days.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(600);
/// Fetches in a row answered with no post before the session ends (no blame: the
/// posts may have been replaced, but a peer that keeps offering what it never serves
/// is not waited for).
const MAX_EMPTY_FETCHES: u32 = 3;

/// Why a session ended badly. `Lie` means the peer broke the protocol in a way an
/// honest peer cannot, and is penalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The peer broke the protocol.
    #[error("peer broke the sync protocol: {0}")]
    Lie(String),
    /// Our side failed (store error); not the peer's fault.
    #[error("local failure: {0}")]
    Local(String),
    /// The peer declined to answer; not held against it.
    #[error("peer declined: {0}")]
    Declined(String),
}

/// What a session did, for logs, status and events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Reconciliation requests (fetches not counted).
    pub round_trips: u32,
    /// Coded symbols received.
    pub symbols: usize,
    /// Items the peer had and we lacked.
    pub missing: usize,
    /// Items we had and the peer lacked.
    pub extra: usize,
    /// Posts received by fetching.
    pub fetched: usize,
    /// Fetched posts that changed the store (new posts or newer revisions).
    pub stored: usize,
    /// Items the peer had that were not fetched because this node already refused or
    /// set them aside (future-dated), or because the session's fetch cap was reached.
    pub skipped: usize,
    /// Whether the difference was fully known (decoded, or the sets were equal). A
    /// light session that gave up on a large difference has not decoded: it says
    /// nothing about what the peer holds.
    pub decoded: bool,
}

/// The initiator's side of one sync with one peer for one circle.
pub struct Session {
    /// The circle reconciled.
    pub circle: String,
    decoder: Decoder,
    local_count: usize,
    /// Whether the strata estimate was sent already.
    estimated: bool,
    remote_count: Option<u64>,
    to_fetch: Vec<[u8; ITEM_HASH_BYTES]>,
    awaiting: HashSet<[u8; ITEM_HASH_BYTES]>,
    /// Items not to fetch (refused or set aside here already).
    skip: Option<Skip>,
    /// Fetches in a row that brought nothing.
    empty_fetches: u32,
    /// Over a relayed connection (limited in bytes and time): only the first round of
    /// symbols, so only small differences (up to about a dozen posts, a few KB) are
    /// fetched; larger ones wait for a direct connection.
    light: bool,
    /// What happened so far.
    pub summary: Summary,
    /// When it started.
    pub started: Instant,
}

/// Decides which decoded items not to fetch.
type Skip = Box<dyn Fn(&Item) -> bool + Send>;

/// What the network task does after a response.
#[derive(Debug)]
pub enum Next {
    /// Send this request to the peer.
    Send(Request),
    /// Store these fetched posts (verifying them) and report with
    /// [`Session::stored`]; the next batch may be asked for meanwhile
    /// ([`Session::next_fetch`]), or after ([`Session::after_store`] does both).
    Store(Vec<SignedPost>),
    /// The session is over.
    Done,
}

impl Session {
    /// A session over `local` (our items of `circle`, see [`Store::sync_view`]) and
    /// its first request.
    pub fn start(circle: String, local: CodedSet) -> (Self, Request) {
        Self::begin(circle, local, false)
    }

    /// A session sized for a relayed connection: the first coded symbols only, so it
    /// fetches a difference of up to about a dozen posts and gives up (without blame)
    /// on a larger one.
    pub fn start_light(circle: String, local: CodedSet) -> (Self, Request) {
        Self::begin(circle, local, true)
    }

    fn begin(circle: String, local: CodedSet, light: bool) -> (Self, Request) {
        let fingerprint = local.sketch().fingerprint();
        let request = Request::Hello {
            circle: circle.clone(),
            fingerprint,
            first: FIRST_SYMBOLS,
        };
        let session = Self {
            circle,
            local_count: local.len(),
            decoder: Decoder::new(local),
            estimated: false,
            remote_count: None,
            to_fetch: Vec::new(),
            awaiting: HashSet::new(),
            skip: None,
            empty_fetches: 0,
            light,
            summary: Summary {
                round_trips: 1,
                ..Summary::default()
            },
            started: Instant::now(),
        };
        (session, request)
    }

    /// Which items this session must not fetch: posts the node refused or holds
    /// aside already. Fetching them again would only be refused again.
    pub fn skip(&mut self, skip: impl Fn(&Item) -> bool + Send + 'static) {
        self.skip = Some(Box::new(skip));
    }

    /// Whether the session has run past [`SESSION_DEADLINE`].
    pub fn is_overdue(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) > SESSION_DEADLINE
    }

    /// Handles the peer's answer to the last request.
    pub fn on_response(&mut self, response: Response) -> Result<Next, Failure> {
        match response {
            Response::InSync if self.decoder.received() == 0 => {
                self.summary.decoded = true;
                Ok(Next::Done)
            }
            Response::Symbols {
                set_size,
                from,
                symbols,
            } => self.on_symbols(set_size, from, symbols),
            Response::Posts { posts } => self.on_posts(posts),
            Response::Refused { reason } => Err(Failure::Declined(reason)),
            Response::InSync => Err(Failure::Lie("InSync after sending symbols".into())),
        }
    }

    fn on_symbols(
        &mut self,
        set_size: u64,
        from: u32,
        symbols: Vec<riblt::Symbol>,
    ) -> Result<Next, Failure> {
        if !self.awaiting.is_empty() || !self.to_fetch.is_empty() {
            return Err(Failure::Lie("symbols while fetching".into()));
        }
        if from as usize != self.decoder.received() || symbols.is_empty() {
            return Err(Failure::Lie(format!(
                "symbols from {from} when {} were expected",
                self.decoder.received()
            )));
        }
        if *self.remote_count.get_or_insert(set_size) != set_size {
            return Err(Failure::Lie("set size changed within a session".into()));
        }
        // Every bound below is a constant or our own set's size, never a number the
        // peer chose: `set_size` only lowers the limit.
        let limit = (self
            .local_count
            .saturating_add(set_size.min(MAX_SESSION_SYMBOLS as u64) as usize))
        .saturating_mul(2)
        .saturating_add(1024)
        .min(MAX_SESSION_SYMBOLS);
        // No responder sends more than MAX_SYMBOLS at once, so a session holds at most
        // `limit + MAX_SYMBOLS` symbols.
        if symbols.len() > MAX_SYMBOLS as usize {
            return Err(Failure::Lie(format!(
                "{} symbols in one response, over {MAX_SYMBOLS}",
                symbols.len()
            )));
        }
        self.summary.symbols += symbols.len();
        if set_size == 0 {
            // The peer holds nothing of the circle: it lacks every item of ours and
            // has nothing to fetch, so there is nothing to decode. (A peer that lies
            // so only keeps its posts from us this once, as refusing would.)
            self.summary.decoded = true;
            self.summary.extra = self.local_count;
            return Ok(Next::Done);
        }
        self.decoder.add(&symbols);
        if self.decoder.is_failed() {
            return Err(Failure::Lie("coded symbols contradict each other".into()));
        }
        if self.decoder.is_complete() {
            self.summary.decoded = true;
            self.summary.missing = self.decoder.remote_only().len();
            self.summary.extra = self.decoder.local_only().len();
            let mut wanted: Vec<Item> = self
                .decoder
                .remote_only()
                .iter()
                .filter(|i| !self.skip.as_ref().is_some_and(|skip| skip(i)))
                .copied()
                .collect();
            // Newest first when the cap cuts: fetches go from the end of the list.
            wanted.sort();
            let cut = wanted.len().saturating_sub(MAX_SESSION_FETCH);
            self.to_fetch = wanted[cut..].iter().map(|i| i.hash).collect();
            self.summary.skipped = self.summary.missing - self.to_fetch.len();
            return Ok(self.next_fetch());
        }
        if self.light {
            // Too different for a relayed connection: stop without blame.
            return Ok(Next::Done);
        }
        if self.decoder.received() >= limit || self.summary.round_trips >= MAX_ROUNDS {
            return Err(Failure::Lie(format!(
                "symbols do not converge after {} symbols in {} round trips (the peer claims {set_size} items)",
                self.decoder.received(),
                self.summary.round_trips
            )));
        }
        self.summary.round_trips += 1;
        let received = self.decoder.received() as u32;
        if !self.estimated {
            // The first shortfall: let the responder size the difference.
            self.estimated = true;
            return Ok(Next::Send(Request::Estimate {
                circle: self.circle.clone(),
                strata: self.decoder.local().sketch().strata().clone(),
                from: received,
            }));
        }
        let more = (received / 2).clamp(64, MAX_SYMBOLS);
        Ok(Next::Send(Request::More {
            circle: self.circle.clone(),
            from: received,
            to: received.saturating_add(more),
        }))
    }

    /// The next batch to fetch, or `Done` when every wanted post was asked for.
    pub fn next_fetch(&mut self) -> Next {
        if self.to_fetch.is_empty() {
            return Next::Done;
        }
        let at = self.to_fetch.len().saturating_sub(MAX_FETCH);
        let hashes: Vec<_> = self.to_fetch.split_off(at);
        self.awaiting = hashes.iter().copied().collect();
        Next::Send(Request::Fetch { hashes })
    }

    fn on_posts(&mut self, posts: Vec<SignedPost>) -> Result<Next, Failure> {
        if self.awaiting.is_empty() {
            return Err(Failure::Lie("posts nobody asked for".into()));
        }
        // Fewer posts than asked for is no lie: a revision can be replaced or expire
        // between reconciliation and fetch. The next sync picks up its successor.
        for p in &posts {
            let mut prefix = [0u8; ITEM_HASH_BYTES];
            prefix.copy_from_slice(&p.content_hash().0[..ITEM_HASH_BYTES]);
            if !self.awaiting.remove(&prefix) {
                return Err(Failure::Lie("a post that was not asked for".into()));
            }
        }
        self.awaiting.clear();
        self.summary.fetched += posts.len();
        if posts.is_empty() {
            self.empty_fetches += 1;
            if self.empty_fetches >= MAX_EMPTY_FETCHES {
                return Err(Failure::Declined(format!(
                    "{MAX_EMPTY_FETCHES} fetches in a row served nothing"
                )));
            }
        } else {
            self.empty_fetches = 0;
        }
        Ok(Next::Store(posts))
    }

    /// Continues after a batch was stored, for one batch at a time:
    /// [`Session::stored`], then [`Session::next_fetch`].
    pub fn after_store(&mut self, invalid: usize, stored: usize) -> Result<Next, Failure> {
        self.stored(invalid, stored)?;
        Ok(self.next_fetch())
    }

    /// Counts a stored batch: `invalid` of its posts failed verification or the rules,
    /// or belonged to another circle (a lie), `stored` changed the store.
    pub fn stored(&mut self, invalid: usize, stored: usize) -> Result<(), Failure> {
        self.summary.stored += stored;
        if invalid > 0 {
            return Err(Failure::Lie(format!("served {invalid} invalid posts")));
        }
        Ok(())
    }
}

/// How long the responder answers a session from the snapshot its `Hello` saw, so
/// that a write arriving mid-session does not make its symbols inconsistent.
const SNAPSHOT_TTL: Duration = Duration::from_secs(120);
/// Most peers the responder keeps a snapshot for. One per peer (an initiator runs one
/// session at a time), and the oldest gives way, so no peer can fill the table and
/// make honest peers' sessions change sets mid-way.
pub const MAX_SNAPSHOTS: usize = 1024;
/// Most symbols a `Hello` is answered with: aidmesh asks for 32; more is what
/// `Estimate` and `More` are for.
pub const MAX_FIRST_SYMBOLS: u32 = 1024;

/// The responder's per-session snapshots: the coded set each peer's `Hello` was
/// answered from. Shared between responder jobs behind a mutex that is held only to
/// look up or insert, never while encoding. (The sets themselves come from the
/// store, which keeps each circle's sketch up to date: [`Store::sync_view`].)
#[derive(Default)]
pub struct Snapshots {
    snapshots: HashMap<libp2p::PeerId, Snapshot>,
}

/// The set a responder's session started from: its circle, when, and the set.
struct Snapshot {
    circle: String,
    at: Instant,
    set: CodedSet,
}

impl Snapshots {
    /// Remembers the set a session's `Hello` was answered from, replacing the peer's
    /// previous one.
    fn snapshot(&mut self, peer: libp2p::PeerId, circle: &str, set: CodedSet) {
        self.snapshots.retain(|_, s| s.at.elapsed() < SNAPSHOT_TTL);
        if self.snapshots.len() >= MAX_SNAPSHOTS && !self.snapshots.contains_key(&peer) {
            if let Some(oldest) = self
                .snapshots
                .iter()
                .min_by_key(|(_, s)| s.at)
                .map(|(p, _)| *p)
            {
                self.snapshots.remove(&oldest);
            }
        }
        self.snapshots.insert(
            peer,
            Snapshot {
                circle: circle.to_string(),
                at: Instant::now(),
                set,
            },
        );
    }

    /// The set this peer's session of `circle` started from, if it is still kept.
    fn of(&self, peer: libp2p::PeerId, circle: &str) -> Option<CodedSet> {
        self.snapshots
            .get(&peer)
            .filter(|s| s.circle == circle && s.at.elapsed() < SNAPSHOT_TTL)
            .map(|s| s.set.clone())
    }
}

fn lock(snapshots: &Mutex<Snapshots>) -> std::sync::MutexGuard<'_, Snapshots> {
    // A panic while holding the lock leaves only snapshots behind: keep using them.
    snapshots
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The responder: answers one request of `peer` from the store. Runs off the swarm
/// task (it may encode up to [`MAX_SYMBOLS`] symbols over a whole circle).
pub fn respond(
    store: &Store,
    snapshots: &Mutex<Snapshots>,
    peer: libp2p::PeerId,
    request: Request,
    now: u64,
) -> Response {
    let refuse = |reason: String| Response::Refused { reason };
    // The set this peer's session started from, or the current one.
    let session_set = |circle: &str| {
        let kept = lock(snapshots).of(peer, circle);
        kept.unwrap_or_else(|| store.sync_view(circle, now))
    };
    let result = (|| -> Result<Response, store::Error> {
        Ok(match request {
            Request::Hello {
                circle,
                fingerprint,
                first,
            } => {
                if store.sync_fingerprint(&circle, now) == fingerprint {
                    Response::InSync
                } else {
                    let set = store.sync_view(&circle, now);
                    let response = symbols(&set, 0, first.clamp(1, MAX_FIRST_SYMBOLS));
                    lock(snapshots).snapshot(peer, &circle, set);
                    response
                }
            }
            Request::Estimate {
                circle,
                strata,
                from,
            } => {
                let set = session_set(&circle);
                let Some(d) = set.sketch().strata().estimate_difference(&strata) else {
                    return Ok(refuse("malformed estimator".into()));
                };
                // ~1.5 symbols per difference for large ones; headroom for the estimate.
                let want = (d.saturating_mul(17) / 10).saturating_add(32);
                let to = want.clamp(from as u64 + 32, from as u64 + MAX_SYMBOLS as u64);
                symbols(&set, from, to.min(u32::MAX as u64) as u32)
            }
            Request::More { circle, from, to } => {
                if to <= from || to - from > MAX_SYMBOLS {
                    return Ok(refuse(format!("bad symbol range {from}..{to}")));
                }
                symbols(&session_set(&circle), from, to)
            }
            Request::Fetch { hashes } => {
                if hashes.len() > MAX_FETCH {
                    return Ok(refuse(format!("at most {MAX_FETCH} posts per fetch")));
                }
                let mut posts = Vec::with_capacity(hashes.len());
                let author = crate::identity::peer_id_author(&peer);
                for h in &hashes {
                    if let Some(p) = store.get_by_hash_prefix(h)? {
                        // A closed circle's posts go to its members only.
                        let member =
                            author.is_some_and(|a| store.gate().is_member(&p.post().circle, &a));
                        if !p.post().is_expired(now) && member {
                            posts.push(p.signed().clone());
                        }
                    }
                }
                Response::Posts { posts }
            }
        })
    })();
    result.unwrap_or_else(|e| refuse(format!("store error: {e}")))
}

fn symbols(set: &CodedSet, from: u32, to: u32) -> Response {
    Response::Symbols {
        set_size: set.len() as u64,
        from,
        symbols: set.symbols(from as usize, to as usize),
    }
}

/// The `/aidmesh/sync/1` codec: one encoded message per stream, bounded per
/// direction ([`MAX_REQUEST_BYTES`], [`MAX_RESPONSE_BYTES`]); decoding happens in the
/// network task, where a malformed message can be held against its sender.
pub type Codec = crate::net::frames::Frames<MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES>;

#[cfg(test)]
mod tests {
    use super::*;

    fn items(range: std::ops::Range<u64>) -> Vec<Item> {
        range
            .map(|n| {
                let hash = blake3::hash(&n.to_le_bytes());
                let mut h = [0u8; ITEM_HASH_BYTES];
                h.copy_from_slice(&hash.as_bytes()[..ITEM_HASH_BYTES]);
                Item {
                    updated_at: 1_000 + n,
                    hash: h,
                }
            })
            .collect()
    }

    /// Runs a light session against a responder holding `remote`, up to the first
    /// request after the symbols.
    fn light_after_first_symbols(local: Vec<Item>, remote: &[Item]) -> Next {
        let (mut session, hello) = Session::start_light("commons".into(), CodedSet::new(local));
        let Request::Hello { first, .. } = hello else {
            panic!("a session starts with Hello");
        };
        let mut sorted = remote.to_vec();
        sorted.sort();
        let symbols = riblt::encode(&sorted, 0, first as usize);
        session
            .on_response(Response::Symbols {
                set_size: remote.len() as u64,
                from: 0,
                symbols,
            })
            .expect("honest symbols")
    }

    #[test]
    fn a_light_session_fetches_a_small_difference() {
        let shared = items(0..500);
        let mut remote = shared.clone();
        remote.extend(items(500..503));
        match light_after_first_symbols(shared, &remote) {
            Next::Send(Request::Fetch { hashes }) => assert_eq!(hashes.len(), 3),
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn a_light_session_leaves_a_large_difference_for_a_direct_connection() {
        let shared = items(0..500);
        let mut remote = shared.clone();
        remote.extend(items(500..700));
        let (mut light, hello) =
            Session::start_light("commons".into(), CodedSet::new(shared.clone()));
        let Request::Hello { first, .. } = hello else {
            panic!("a session starts with Hello");
        };
        let mut sorted = remote.clone();
        sorted.sort();
        let next = light
            .on_response(Response::Symbols {
                set_size: remote.len() as u64,
                from: 0,
                symbols: riblt::encode(&sorted, 0, first as usize),
            })
            .unwrap();
        assert!(matches!(next, Next::Done));
        // It ends without blame, and without knowing what the peer holds.
        assert!(!light.summary.decoded);
        // A full session asks for an estimate instead.
        let (mut full, _) = Session::start("commons".into(), CodedSet::new(shared));
        let mut sorted = remote.clone();
        sorted.sort();
        let next = full
            .on_response(Response::Symbols {
                set_size: remote.len() as u64,
                from: 0,
                symbols: riblt::encode(&sorted, 0, FIRST_SYMBOLS as usize),
            })
            .unwrap();
        assert!(matches!(next, Next::Send(Request::Estimate { .. })));
    }

    fn junk(n: usize) -> Vec<riblt::Symbol> {
        vec![
            riblt::Symbol {
                checksum: 7,
                count: 3,
                ..Default::default()
            };
            n
        ]
    }

    #[test]
    fn a_huge_claimed_set_cannot_make_a_session_hold_more_than_the_cap() {
        for set_size in [1u64 << 40, u64::MAX] {
            let (mut session, _) = Session::start("commons".into(), CodedSet::new(items(0..100)));
            let mut received = 0u32;
            let mut rounds = 0;
            let failure = loop {
                rounds += 1;
                assert!(rounds <= MAX_ROUNDS + 1, "the session never ends");
                match session.on_response(Response::Symbols {
                    set_size,
                    from: received,
                    symbols: junk(MAX_SYMBOLS as usize),
                }) {
                    Ok(Next::Send(_)) => received += MAX_SYMBOLS,
                    Ok(other) => panic!("junk decoded: {other:?}"),
                    Err(f) => break f,
                }
            };
            assert!(matches!(failure, Failure::Lie(ref r) if r.contains("do not converge")));
            assert!(session.summary.symbols <= MAX_SESSION_SYMBOLS + MAX_SYMBOLS as usize);
        }
    }

    #[test]
    fn an_honest_set_size_keeps_the_tighter_limit() {
        // 2·(100 + 5) + 1024 = 1234 symbols for a peer claiming 5 items.
        let (mut session, _) = Session::start("commons".into(), CodedSet::new(items(0..100)));
        let failure = session
            .on_response(Response::Symbols {
                set_size: 5,
                from: 0,
                symbols: junk(2_000),
            })
            .unwrap_err();
        assert!(matches!(failure, Failure::Lie(ref r) if r.contains("do not converge")));
        // Nor may one response exceed what any responder sends at once.
        let (mut session, _) = Session::start("commons".into(), CodedSet::new(items(0..100)));
        let failure = session
            .on_response(Response::Symbols {
                set_size: 1 << 40,
                from: 0,
                symbols: junk(MAX_SYMBOLS as usize + 1),
            })
            .unwrap_err();
        assert!(matches!(failure, Failure::Lie(_)));
        assert_eq!(session.summary.symbols, 0, "refused before taking them in");
    }

    #[test]
    fn a_peer_with_nothing_ends_the_session_at_once() {
        let (mut session, _) = Session::start("commons".into(), CodedSet::new(items(0..1_000)));
        let next = session
            .on_response(Response::Symbols {
                set_size: 0,
                from: 0,
                symbols: riblt::encode(&[], 0, FIRST_SYMBOLS as usize),
            })
            .unwrap();
        assert!(matches!(next, Next::Done), "{next:?}");
        assert!(session.summary.decoded);
        assert_eq!((session.summary.extra, session.summary.missing), (1_000, 0));
        assert_eq!(session.summary.round_trips, 1, "the Hello only");
    }

    /// A full session of `local` against `remote`, up to its first fetch.
    fn first_fetch(session: &mut Session, remote: &[Item]) -> Vec<[u8; ITEM_HASH_BYTES]> {
        let mut sorted = remote.to_vec();
        sorted.sort();
        let mut from = 0u32;
        let mut n = FIRST_SYMBOLS;
        loop {
            let next = session
                .on_response(Response::Symbols {
                    set_size: remote.len() as u64,
                    from,
                    symbols: riblt::encode(&sorted, from as usize, (from + n) as usize),
                })
                .unwrap();
            match next {
                Next::Send(Request::Fetch { hashes }) => return hashes,
                Next::Send(_) => {
                    from += n;
                    n = 256;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn skipped_items_are_not_fetched() {
        let shared = items(0..50);
        let mut remote = shared.clone();
        remote.extend(items(50..60));
        let refused: HashSet<_> = items(50..55).iter().map(|i| i.hash).collect();
        let (mut session, _) = Session::start("commons".into(), CodedSet::new(shared));
        session.skip(move |i| refused.contains(&i.hash));
        let hashes = first_fetch(&mut session, &remote);
        assert_eq!(hashes.len(), 5);
        assert_eq!(session.summary.missing, 10);
        assert_eq!(session.summary.skipped, 5);
    }

    #[test]
    fn a_peer_serving_nothing_cannot_hold_a_session() {
        let shared = items(0..50);
        let mut remote = shared.clone();
        remote.extend(items(1_000..1_000 + 4 * MAX_FETCH as u64));
        let (mut session, _) = Session::start("commons".into(), CodedSet::new(shared));
        first_fetch(&mut session, &remote);
        let mut ended = None;
        for _ in 0..MAX_EMPTY_FETCHES {
            match session.on_response(Response::Posts { posts: vec![] }) {
                Ok(Next::Store(p)) => {
                    assert!(p.is_empty());
                    assert!(matches!(session.after_store(0, 0), Ok(Next::Send(_))));
                }
                Err(f) => {
                    ended = Some(f);
                    break;
                }
                Ok(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(matches!(ended, Some(Failure::Declined(_))), "{ended:?}");
        assert!(!session.is_overdue(Instant::now()));
        assert!(session.is_overdue(Instant::now() + SESSION_DEADLINE + Duration::from_secs(1)));
    }
}
