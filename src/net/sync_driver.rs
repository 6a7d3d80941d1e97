//! Drives catch-up sync (`/aidmesh/sync/1`) for the swarm task: which sessions run,
//! the requests they send, the answers this node serves, and what each outcome means
//! for the rest of the node.
//!
//! The protocol logic is in [`crate::sync`] (no I/O); this module owns the schedule and
//! the bounds. The swarm task hands it the sync behaviour's events and a [`Ctx`] (the
//! behaviour to send on, who is connected, which circles are joined) and applies the
//! [`Effect`]s it asks for: only the swarm task touches gossipsub or the NAT state.
//!
//! Bounds, all constants: at most one session per peer and [`MAX_SESSIONS`] in all,
//! each bounded by [`sync::MAX_SESSION_SYMBOLS`] and [`sync::SESSION_DEADLINE`]; at most
//! [`MAX_QUEUE`] queued sessions. The responder answers each peer at a rate
//! ([`RECONCILE_RATE`], [`FETCH_RATE`]) on blocking threads, at most [`MAX_JOBS`] at
//! once and [`MAX_JOBS_PER_PEER`] per peer, so a peer's requests never stall the swarm
//! task and cannot take more than its share.
//!
//! Fetched posts are verified and stored on a blocking thread, one batch per session
//! at a time, while the next batch is fetched: a session holds at most two batches
//! (one being stored, one waiting), and the swarm task never verifies or writes them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aidmesh_proto::riblt::ITEM_HASH_BYTES;
use aidmesh_proto::sync::{Request, Response};
use aidmesh_proto::AuthorKey;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::rate::{Buckets, Rate};
use super::{gossip, PeerInfo, SyncStatus};
use crate::clock::now_ms;
use crate::events::{Bus, Event, Origin};
use crate::store::{Refused, Store};
use crate::sync::{self, Failure, Next};

/// How long a peer that broke the sync protocol is not synced with.
const SYNC_BAN: Duration = Duration::from_secs(600);
/// Initiator sessions running at once (each holds at most
/// [`sync::MAX_SESSION_SYMBOLS`] symbols); the others wait in the queue.
pub const MAX_SESSIONS: usize = 4;
/// Most `(peer, circle)` pairs waiting for a session.
pub const MAX_QUEUE: usize = 4096;
/// Responder jobs (encoding symbols, reading posts) running at once on blocking
/// threads.
pub const MAX_JOBS: usize = 2;
/// Requests of one peer being answered or waiting for their turn; more are refused.
pub const MAX_JOBS_PER_PEER: usize = 2;
/// Reconciliation requests (`Hello`, `Estimate`, `More`) each peer may make: each one
/// walks the whole circle. An honest session makes 1 to 3 in the common case.
pub const RECONCILE_RATE: Rate = Rate {
    burst: 24.0,
    per_sec: 0.5,
};
/// `Fetch` requests (up to 256 posts each) each peer may make: a burst of 512 lets a
/// new member catch up on a circle of 130,000 posts at full speed, then about 2,000
/// posts/s. A new identity gets a new burst anyway, so a larger one does not help an
/// attacker: [`MAX_JOBS`] bounds what all peers together make this node spend.
pub const FETCH_RATE: Rate = Rate {
    burst: 512.0,
    per_sec: 8.0,
};
/// Longest a request waits for its peer's rate before it is refused as busy.
const MAX_RATE_WAIT: Duration = Duration::from_secs(5);
/// Peers whose responder rates are remembered.
const MAX_RATED_PEERS: usize = 4096;
/// Why a busy responder refuses; an aidmesh initiator ends the session without blame.
pub const BUSY: &str = "busy: too many sync requests from this peer; try again later";

/// What the swarm task lends the driver for one call.
pub(super) struct Ctx<'a> {
    /// The sync behaviour, to send requests and responses on.
    pub rr: &'a mut request_response::Behaviour<sync::Codec>,
    /// Connected peers (a relayed one gets a light session).
    pub connected: &'a HashMap<PeerId, PeerInfo>,
    /// Circles this node has joined: only those are served and synced.
    pub circles: &'a HashSet<String>,
    /// Keys of `circle` not to fetch (posts held aside as future-dated).
    pub held: &'a dyn Fn(&str) -> Vec<[u8; ITEM_HASH_BYTES]>,
}

/// What the driver asks the swarm task to do.
#[derive(Debug)]
pub(super) enum Effect {
    /// The peer broke the protocol: lower its gossip score.
    Penalise(PeerId),
    /// The peer holds every post of ours in the circle.
    Seen { peer: PeerId, circle: String },
    /// The peer just fetched a post of ours.
    FetchedOurs(PeerId),
    /// New posts arrived from `except`: offer a sync to the circle's other peers.
    Cascade { circle: String, except: PeerId },
    /// Fetched posts dated ahead of our clock, to be kept aside until their time.
    Future(Vec<aidmesh_proto::SignedPost>),
}

/// A finished background job, back on the swarm task.
pub(super) enum Finished {
    /// A responder job: the answer to send.
    Answered(Answered),
    /// A batch of fetched posts stored.
    Stored(Stored),
}

/// A finished responder job, back on the swarm task to be sent.
pub(super) struct Answered {
    peer: PeerId,
    channel: ResponseChannel<Vec<u8>>,
    bytes: Option<Vec<u8>>,
    served: Served,
}

/// A batch of fetched posts, verified and stored (or not) off the swarm task.
pub(super) struct Stored {
    peer: PeerId,
    /// The session the batch belongs to: a later session with the same peer does
    /// not count an earlier one's batch.
    session: u64,
    result: Result<Fetched, crate::store::Error>,
}

/// What storing one fetched batch did.
struct Fetched {
    /// Posts that were the sender's fault (see [`store_fetched`]).
    invalid: usize,
    /// Posts that changed the store.
    stored: usize,
    /// Posts dated ahead of our clock, to be kept aside.
    future: Vec<aidmesh_proto::SignedPost>,
}

/// A session running, and where its fetched posts are.
struct Running {
    session: sync::Session,
    /// Distinguishes this session from earlier and later ones with the same peer.
    id: u64,
    /// A request of this session is waiting for its response.
    in_flight: bool,
    /// A batch is being stored.
    storing: bool,
    /// A batch fetched while the one before it was still being stored.
    waiting: Option<Vec<aidmesh_proto::SignedPost>>,
}

/// What an answer tells about the peer.
#[derive(Debug)]
enum Served {
    /// Its `Hello` matched our set.
    InSync(String),
    /// Its `Hello` differed: it will pull from us, and we pull from it.
    Differs(String),
    /// It fetched posts, some of them ours.
    FetchedOurs,
    Other,
}

/// Answers `Refused { reason }` at once.
fn refuse(
    rr: &mut request_response::Behaviour<sync::Codec>,
    channel: ResponseChannel<Vec<u8>>,
    reason: &str,
) {
    let response = Response::Refused {
        reason: reason.to_string(),
    };
    if let Ok(bytes) = aidmesh_proto::sync::encode_response(&response) {
        let _ = rr.send_response(channel, bytes);
    }
}

/// The catch-up sync driver.
pub(super) struct SyncDriver {
    store: Store,
    events: Bus,
    /// Our author key, to tell when a peer fetched one of our posts.
    me: Option<AuthorKey>,
    /// The responder's per-session snapshots.
    snapshots: Arc<Mutex<sync::Snapshots>>,
    sessions: HashMap<PeerId, Running>,
    /// Numbers the sessions ([`Running::id`]).
    started: u64,
    queue: VecDeque<(PeerId, String)>,
    /// Running sessions to run once more when they end: the gate opened while they
    /// ran, so posts they refused may now be admitted (see [`SyncDriver::queue_again`]).
    again: HashSet<(PeerId, String)>,
    requests: HashMap<OutboundRequestId, PeerId>,
    log: HashMap<PeerId, SyncStatus>,
    banned: HashMap<PeerId, Instant>,
    /// Responder rates per peer.
    reconcile: Buckets<PeerId>,
    fetch: Buckets<PeerId>,
    /// Responder jobs per peer, running or waiting for a slot.
    jobs: HashMap<PeerId, usize>,
    slots: Arc<Semaphore>,
    finished_tx: mpsc::UnboundedSender<Finished>,
    finished_rx: mpsc::UnboundedReceiver<Finished>,
    effects: Vec<Effect>,
}

impl SyncDriver {
    /// A driver over `store`, telling `events` how sessions end.
    pub fn new(store: Store, events: Bus, me: Option<AuthorKey>) -> Self {
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        Self {
            store,
            events,
            me,
            snapshots: Arc::default(),
            sessions: HashMap::new(),
            started: 0,
            queue: VecDeque::new(),
            again: HashSet::new(),
            requests: HashMap::new(),
            log: HashMap::new(),
            banned: HashMap::new(),
            reconcile: Buckets::new(RECONCILE_RATE, MAX_RATED_PEERS),
            fetch: Buckets::new(FETCH_RATE, MAX_RATED_PEERS),
            jobs: HashMap::new(),
            slots: Arc::new(Semaphore::new(MAX_JOBS)),
            finished_tx,
            finished_rx,
            effects: Vec::new(),
        }
    }

    /// The next finished background job (pending forever if none: the driver holds a
    /// sender itself).
    pub async fn finished(&mut self) -> Option<Finished> {
        self.finished_rx.recv().await
    }

    /// Acts on a finished background job.
    pub fn on_finished(&mut self, ctx: &mut Ctx<'_>, finished: Finished) {
        match finished {
            Finished::Answered(a) => self.on_answered(ctx, a),
            Finished::Stored(s) => self.on_stored(ctx, s),
        }
    }

    /// What the swarm task must do now.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The last sync with each peer.
    pub fn statuses(&self) -> Vec<SyncStatus> {
        self.log.values().cloned().collect()
    }

    /// Sessions running now.
    pub fn running(&self) -> usize {
        self.sessions.len()
    }

    /// Queues a session with `peer` for `circle` (unless the peer is banned, or the
    /// pair is running or queued already) and starts what can start.
    pub fn queue(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, circle: String) {
        if let Some(until) = self.banned.get(&peer) {
            if *until > Instant::now() {
                return;
            }
            self.banned.remove(&peer);
        }
        // A closed circle is reconciled with its members only.
        if !crate::identity::peer_id_author(&peer)
            .is_some_and(|a| self.store.gate().is_member(&circle, &a))
        {
            return;
        }
        let running = self
            .sessions
            .get(&peer)
            .is_some_and(|r| r.session.circle == circle);
        if running || self.queue.iter().any(|(p, c)| p == &peer && c == &circle) {
            return;
        }
        if self.queue.len() >= MAX_QUEUE {
            debug!(%peer, circle, "sync queue full; skipping (the periodic sync comes back to it)");
            return;
        }
        self.queue.push_back((peer, circle));
        self.start_next(ctx);
    }

    /// Like [`SyncDriver::queue`], for when this node's gate has just let more in
    /// (members admitted): a session of the pair that is running now may have refused
    /// the posts the gate now admits, so it runs once more after it ends. Only a
    /// change of the gate asks for this, never a session's own outcome, so sessions
    /// cannot keep each other going.
    pub fn queue_again(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, circle: String) {
        if self
            .sessions
            .get(&peer)
            .is_some_and(|r| r.session.circle == circle)
        {
            self.again.insert((peer, circle));
        } else {
            self.queue(ctx, peer, circle);
        }
    }

    /// A peer's last connection closed: its session and queue go, without blame.
    pub fn peer_gone(&mut self, ctx: &mut Ctx<'_>, peer: &PeerId) {
        self.again.retain(|(p, _)| p != peer);
        self.sessions.remove(peer);
        self.queue.retain(|(p, _)| p != peer);
        self.requests.retain(|_, p| p != peer);
        self.reconcile.remove(peer);
        self.fetch.remove(peer);
        self.start_next(ctx);
    }

    /// Ends sessions past their deadline.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = std::time::Instant::now();
        let overdue: Vec<PeerId> = self
            .sessions
            .iter()
            .filter(|(_, r)| r.session.is_overdue(now))
            .map(|(p, _)| *p)
            .collect();
        for peer in overdue {
            self.end(
                ctx,
                peer,
                Err(Failure::Declined(format!(
                    "took longer than {} s",
                    sync::SESSION_DEADLINE.as_secs()
                ))),
            );
        }
    }

    /// Starts queued sessions while there is room: at most one per peer and
    /// [`MAX_SESSIONS`] in all, first queued first.
    fn start_next(&mut self, ctx: &mut Ctx<'_>) {
        let mut at = 0;
        while self.sessions.len() < MAX_SESSIONS && at < self.queue.len() {
            let peer = self.queue[at].0;
            if self.sessions.contains_key(&peer) {
                at += 1;
                continue;
            }
            let Some((peer, circle)) = self.queue.remove(at) else {
                break;
            };
            self.start(ctx, peer, circle);
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, circle: String) {
        let items = self.store.sync_view(&circle, now_ms());
        // Relayed connections carry little (circuit limits): only small differences
        // there; the rest once hole punching (or a later dial) makes it direct.
        let light = ctx.connected.get(&peer).is_some_and(|c| c.relayed);
        debug!(%peer, circle, items = items.len(), light, "starting sync");
        let (mut session, request) = if light {
            sync::Session::start_light(circle, items)
        } else {
            sync::Session::start(circle, items)
        };
        let held: HashSet<[u8; ITEM_HASH_BYTES]> =
            (ctx.held)(&session.circle).into_iter().collect();
        // Not fetched: posts held aside until their time, and posts this node refused
        // while the refusal holds (blocked author, over quota, circle full, newcomers,
        // superseded or swept, future-dated, invalid).
        let store = self.store.clone();
        session.skip(move |item| held.contains(&item.hash) || store.is_refused(item, now_ms()));
        self.started += 1;
        self.sessions.insert(
            peer,
            Running {
                session,
                id: self.started,
                in_flight: false,
                storing: false,
                waiting: None,
            },
        );
        self.send(ctx, peer, request);
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, request: Request) {
        match aidmesh_proto::sync::encode_request(&request) {
            Ok(bytes) => {
                let id = ctx.rr.send_request(&peer, bytes);
                self.requests.insert(id, peer);
                if let Some(r) = self.sessions.get_mut(&peer) {
                    r.in_flight = true;
                }
            }
            Err(e) => self.end(ctx, peer, Err(Failure::Local(e.to_string()))),
        }
    }

    fn end(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, result: Result<(), Failure>) {
        let Some(Running { session, .. }) = self.sessions.remove(&peer) else {
            return;
        };
        // A fetch may still be in flight: its answer must not reach a later session.
        self.requests.retain(|_, p| p != &peer);
        let s = &session.summary;
        match &result {
            Ok(()) => info!(
                %peer, circle = session.circle, missing = s.missing, extra = s.extra,
                fetched = s.fetched, skipped = s.skipped, round_trips = s.round_trips,
                symbols = s.symbols, decoded = s.decoded,
                elapsed = ?session.started.elapsed(), "sync finished"
            ),
            Err(Failure::Lie(reason)) => {
                warn!(%peer, circle = session.circle, %reason, "sync peer broke the protocol; penalising it and not syncing with it for 10 minutes");
                self.effects.push(Effect::Penalise(peer));
                self.banned.insert(peer, Instant::now() + SYNC_BAN);
                self.queue.retain(|(p, _)| p != &peer);
                self.again.retain(|(p, _)| p != &peer);
            }
            Err(Failure::Local(reason)) | Err(Failure::Declined(reason)) => {
                warn!(%peer, circle = session.circle, %reason, "sync failed")
            }
        }
        let entry = self.log.entry(peer).or_insert_with(|| SyncStatus {
            peer_id: peer,
            circle: session.circle.clone(),
            at: 0,
            ok: false,
            fetched_total: 0,
            round_trips: 0,
        });
        entry.circle = session.circle.clone();
        entry.at = now_ms();
        entry.ok = result.is_ok();
        entry.fetched_total += s.fetched as u64;
        entry.round_trips = s.round_trips;
        // Only a decoded difference says the peer lacks none of ours: a light session
        // that gave up knows nothing.
        if result.is_ok() && s.decoded && s.extra == 0 {
            self.effects.push(Effect::Seen {
                peer,
                circle: session.circle.clone(),
            });
        }
        if result.is_ok() && s.stored > 0 {
            // New posts here may be new to our other peers too: offer them a sync,
            // which makes them pull (see the responder's trigger).
            self.effects.push(Effect::Cascade {
                circle: session.circle.clone(),
                except: peer,
            });
        }
        self.events.send(Event::SyncFinished {
            peer_id: peer,
            circle: session.circle.clone(),
            missing: s.missing,
            fetched: s.fetched,
            round_trips: s.round_trips,
            error: result.err().map(|e| e.to_string()),
        });
        if self.again.remove(&(peer, session.circle.clone())) {
            self.queue(ctx, peer, session.circle);
        }
        self.start_next(ctx);
    }

    /// Handles an event of the sync behaviour.
    pub fn on_event(
        &mut self,
        ctx: &mut Ctx<'_>,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(ctx, peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if self.requests.remove(&request_id).is_none() {
                    return;
                }
                let Some(running) = self.sessions.get_mut(&peer) else {
                    return;
                };
                running.in_flight = false;
                let next = match aidmesh_proto::sync::decode_response(&response) {
                    Ok(r) => running.session.on_response(r),
                    Err(e) => Err(Failure::Lie(format!("malformed response: {e}"))),
                };
                self.proceed(ctx, peer, next);
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } if self.requests.remove(&request_id).is_some() => {
                self.end(ctx, peer, Err(Failure::Local(error.to_string())));
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound sync request failed");
            }
            _ => {}
        }
    }

    fn proceed(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, next: Result<Next, Failure>) {
        let Some(running) = self.sessions.get_mut(&peer) else {
            return;
        };
        match next {
            Ok(Next::Send(request)) => self.send(ctx, peer, request),
            // The last batch may still be being stored; its end ends the session.
            Ok(Next::Done) if running.storing => {}
            Ok(Next::Done) => self.end(ctx, peer, Ok(())),
            Err(f) => self.end(ctx, peer, Err(f)),
            // One batch is stored at a time; the next fetch waits for it.
            Ok(Next::Store(posts)) if running.storing => running.waiting = Some(posts),
            Ok(Next::Store(posts)) => {
                running.storing = true;
                let job = (
                    self.store.clone(),
                    self.events.clone(),
                    running.session.circle.clone(),
                );
                let (session, tx) = (running.id, self.finished_tx.clone());
                // The next batch travels while this one is verified and stored.
                let next = running.session.next_fetch();
                tokio::task::spawn_blocking(move || {
                    let (store, events, circle) = job;
                    let result = store_fetched(&store, &events, posts, &circle);
                    let _ = tx.send(Finished::Stored(Stored {
                        peer,
                        session,
                        result,
                    }));
                });
                if let Next::Send(request) = next {
                    self.send(ctx, peer, request);
                }
            }
        }
    }

    /// A batch was stored: counts it, then stores the batch that waited for it, or
    /// fetches the next, or ends the session when nothing is left.
    fn on_stored(&mut self, ctx: &mut Ctx<'_>, stored: Stored) {
        let Stored {
            peer,
            session,
            result,
        } = stored;
        let fetched = match result {
            Ok(f) => f,
            Err(e) => return self.end_if(ctx, peer, session, Failure::Local(e.to_string())),
        };
        if !fetched.future.is_empty() {
            self.effects.push(Effect::Future(fetched.future));
        }
        let Some(running) = self.sessions.get_mut(&peer).filter(|r| r.id == session) else {
            return;
        };
        running.storing = false;
        if let Err(f) = running.session.stored(fetched.invalid, fetched.stored) {
            return self.end(ctx, peer, Err(f));
        }
        if let Some(posts) = running.waiting.take() {
            return self.proceed(ctx, peer, Ok(Next::Store(posts)));
        }
        if !running.in_flight {
            let next = running.session.next_fetch();
            self.proceed(ctx, peer, Ok(next));
        }
    }

    /// Ends the session `session` with `peer` if it is still the one running.
    fn end_if(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, session: u64, failure: Failure) {
        if self.sessions.get(&peer).is_some_and(|r| r.id == session) {
            self.end(ctx, peer, Err(failure));
        }
    }

    /// Answers a peer's request: refusals at once, real work on a blocking thread at
    /// the peer's rate.
    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        if self.banned.get(&peer).is_some_and(|t| *t > Instant::now()) {
            return refuse(ctx.rr, channel, "banned after a protocol violation");
        }
        let request = match aidmesh_proto::sync::decode_request(&bytes) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, error = %e, "malformed sync request");
                return refuse(ctx.rr, channel, &format!("malformed request: {e}"));
            }
        };
        let circle = match &request {
            Request::Hello { circle, .. }
            | Request::Estimate { circle, .. }
            | Request::More { circle, .. } => Some(circle.clone()),
            Request::Fetch { .. } => None,
        };
        // Only joined circles are served: a peer cannot make us walk (or snapshot)
        // sets for names it makes up.
        if let Some(c) = &circle {
            if !ctx.circles.contains(c) {
                return refuse(ctx.rr, channel, "not a member of this circle");
            }
            // A closed circle is reconciled with its members only.
            if !crate::identity::peer_id_author(&peer)
                .is_some_and(|a| self.store.gate().is_member(c, &a))
            {
                return refuse(ctx.rr, channel, "not a member of this closed circle");
            }
        }
        if self.jobs.get(&peer).copied().unwrap_or(0) >= MAX_JOBS_PER_PEER {
            return refuse(ctx.rr, channel, BUSY);
        }
        let now = Instant::now();
        let wait = if circle.is_some() {
            self.reconcile.take_or_wait(&peer, now, 1.0, MAX_RATE_WAIT)
        } else {
            self.fetch.take_or_wait(&peer, now, 1.0, MAX_RATE_WAIT)
        };
        let Some(wait) = wait else {
            debug!(%peer, "sync requests over the rate; refusing");
            return refuse(ctx.rr, channel, BUSY);
        };
        *self.jobs.entry(peer).or_default() += 1;
        let hello = match &request {
            Request::Hello { circle, .. } => Some(circle.clone()),
            _ => None,
        };
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        let slots = self.slots.clone();
        let tx = self.finished_tx.clone();
        let me = self.me;
        tokio::spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let work = tokio::task::spawn_blocking(move || {
                let response = sync::respond(&store, &snapshots, peer, request, now_ms());
                let served = match (&response, hello) {
                    (Response::InSync, Some(c)) => Served::InSync(c),
                    (Response::Symbols { .. }, Some(c)) => Served::Differs(c),
                    (Response::Posts { posts }, _)
                        if me.is_some()
                            && posts.iter().any(|p| {
                                p.decode_post().is_ok_and(|post| Some(post.author) == me)
                            }) =>
                    {
                        Served::FetchedOurs
                    }
                    _ => Served::Other,
                };
                let bytes = match aidmesh_proto::sync::encode_response(&response) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        warn!(error = %e, "cannot encode a sync response");
                        None
                    }
                };
                (bytes, served)
            });
            let (bytes, served) = work.await.unwrap_or((None, Served::Other));
            let _ = tx.send(Finished::Answered(Answered {
                peer,
                channel,
                bytes,
                served,
            }));
        });
    }

    /// Sends a finished answer and acts on what it tells.
    fn on_answered(&mut self, ctx: &mut Ctx<'_>, answered: Answered) {
        let Answered {
            peer,
            channel,
            bytes,
            served,
        } = answered;
        if let Some(n) = self.jobs.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.jobs.remove(&peer);
            }
        }
        if let Some(bytes) = bytes {
            let _ = ctx.rr.send_response(channel, bytes);
        }
        match served {
            Served::InSync(circle) => self.effects.push(Effect::Seen { peer, circle }),
            Served::FetchedOurs => self.effects.push(Effect::FetchedOurs(peer)),
            // Sets differ: the peer pulls from us, and we pull from it.
            Served::Differs(circle) if ctx.circles.contains(&circle) => {
                self.queue(ctx, peer, circle)
            }
            Served::Differs(_) | Served::Other => {}
        }
    }
}

/// Verifies and stores fetched posts, announcing what changed. Counts as invalid the
/// posts that are the sender's fault (undecodable, badly signed, breaking a rule, or
/// of another circle); expired ones, a race with the clock, and posts refused for a
/// blocked author, a quota, a full circle or the newcomer rate do not count. Posts
/// dated ahead of our clock are handed back, to be kept aside.
fn store_fetched(
    store: &Store,
    events: &Bus,
    posts: Vec<aidmesh_proto::SignedPost>,
    circle: &str,
) -> Result<Fetched, crate::store::Error> {
    let mut invalid = 0;
    let mut stored = 0;
    let mut keep = Vec::with_capacity(posts.len());
    let mut decoded = Vec::with_capacity(posts.len());
    for signed in posts {
        match signed.decode_post() {
            Ok(p) if p.circle == circle => {
                keep.push(signed);
                decoded.push(p);
            }
            _ => invalid += 1,
        }
    }
    let outcomes = store.insert_batch(keep.clone(), now_ms())?;
    let mut future = Vec::new();
    for ((outcome, post), signed) in outcomes.into_iter().zip(decoded).zip(keep) {
        match outcome {
            Ok(o) => {
                stored += usize::from(o.changed());
                super::announce(events, &post, o, Origin::Sync);
            }
            Err(Refused::Invalid(e)) if gossip::is_in_future(&e) => future.push(signed),
            Err(Refused::Invalid(e)) if gossip::is_not_senders_fault(&e) => {}
            // Blocked, over quota, circle full, newcomers: valid posts an honest
            // peer may hold; the store remembers them so they are not fetched again.
            Err(r) if !r.is_senders_fault() => {}
            Err(_) => invalid += 1,
        }
    }
    Ok(Fetched {
        invalid,
        stored,
        future,
    })
}
