//! Getting envelopes to their recipients, run by the network task.
//!
//! [`plan`] is the decision without I/O: for one envelope, given who is connected and
//! who belongs to the post's circle, whom to push it to now. [`Driver`] keeps the
//! outbox in memory, sends the requests of `/aidmesh/msg/1` through the
//! request-response behaviour it is handed, and turns responses and incoming requests
//! into [`Output`] (events, post changes, peers to dial) for the network task.
//!
//! - Direct: an envelope goes to the recipient whenever it is connected, until the
//!   recipient's node accepts it (then a signed receipt is awaited).
//! - Held: while the recipient is away, it goes to up to [`HOLDERS`] connected peers of
//!   the post's circle; a holder that is connected to the recipient hands it over at
//!   once, else when the recipient connects and asks ("anything for me?").
//! - The recipient is dialled now and then (with backoff) at its known addresses.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aidmesh_proto::message::{
    decode_request, decode_response, encode_request, encode_response, Envelope, EnvelopeId,
    MessageId, Refusal, Request, Response,
};
use aidmesh_proto::AuthorKey;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::PeerId;
use tracing::{debug, warn};

use super::protocol::Codec;
use super::{Effects, MessageView, Messages, Outgoing, PostChange, State};
use crate::identity::author_peer_id;

/// Peers of the post's circle an envelope is left with while its recipient is away.
pub const HOLDERS: usize = 2;
/// How long a peer that refused an envelope (full, rate limited, failed) is not asked
/// again for it.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// First and largest wait between dials of an absent recipient.
const DIAL_MIN: Duration = Duration::from_secs(5);
const DIAL_MAX: Duration = Duration::from_secs(300);

/// The request-response behaviour of the protocol.
pub type Behaviour = request_response::Behaviour<Codec>;

/// One envelope on its way, as [`plan`] sees it.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The outbox entry.
    pub out: Outgoing,
    /// The recipient's peer id.
    pub recipient: PeerId,
    /// The recipient's node took it.
    pub accepted: bool,
    /// Peers holding it for the recipient.
    pub held_by: HashSet<PeerId>,
    /// Peers it is being pushed to right now.
    pub in_flight: HashSet<PeerId>,
    /// Peers not to ask again before the instant.
    pub refused: HashMap<PeerId, Instant>,
}

/// Whom to push `p` to now. `connected` says whether a peer is connected;
/// `circle` lists the connected members of the post's circle.
pub fn plan(
    p: &Pending,
    connected: &dyn Fn(&PeerId) -> bool,
    circle: &[PeerId],
    now: Instant,
) -> Vec<PeerId> {
    if p.accepted {
        return vec![];
    }
    let resting = |peer: &PeerId| p.refused.get(peer).is_some_and(|t| *t > now);
    if connected(&p.recipient) {
        if p.in_flight.contains(&p.recipient) || resting(&p.recipient) {
            return vec![];
        }
        return vec![p.recipient];
    }
    let busy = p.held_by.len() + p.in_flight.len();
    if busy >= HOLDERS {
        return vec![];
    }
    circle
        .iter()
        .filter(|peer| {
            **peer != p.recipient
                && !p.held_by.contains(peer)
                && !p.in_flight.contains(peer)
                && !resting(peer)
        })
        .take(HOLDERS - busy)
        .copied()
        .collect()
}

/// What the network task does after a driver call.
#[derive(Default)]
pub struct Output {
    /// Messages to announce: conversation id and the message as it is now.
    pub messages: Vec<(String, MessageView)>,
    /// Post status changes to announce and gossip.
    pub posts: Vec<PostChange>,
    /// Absent recipients to dial.
    pub dial: Vec<PeerId>,
}

enum Req {
    Push {
        id: MessageId,
        to: PeerId,
    },
    Forward {
        recipient: AuthorKey,
        id: EnvelopeId,
    },
    Fetch {
        from: PeerId,
    },
}

/// The delivery side of the network task.
pub struct Driver {
    messages: Messages,
    pending: HashMap<MessageId, Pending>,
    requests: HashMap<OutboundRequestId, Req>,
    dials: HashMap<PeerId, (Instant, Duration)>,
}

/// What the driver may look at and use: the behaviour to send with, who is connected
/// and the connected members of a circle.
pub struct Ctx<'a> {
    /// Sends requests and responses.
    pub rr: &'a mut Behaviour,
    /// Whether a peer is connected.
    pub connected: &'a dyn Fn(&PeerId) -> bool,
    /// Connected peers subscribed to a circle.
    pub circle: &'a dyn Fn(&str) -> Vec<PeerId>,
}

impl Driver {
    /// A driver that delivers the outbox of `messages` (read now).
    pub fn new(messages: Messages) -> Self {
        let mut d = Self {
            messages,
            pending: HashMap::new(),
            requests: HashMap::new(),
            dials: HashMap::new(),
        };
        match d.messages.store.outbox() {
            Ok(all) => {
                for out in all {
                    d.add(out);
                }
            }
            Err(e) => warn!(error = %e, "cannot read the message outbox"),
        }
        d
    }

    fn add(&mut self, out: Outgoing) {
        let Some(recipient) = author_peer_id(&out.recipient) else {
            return;
        };
        self.pending.insert(
            out.id,
            Pending {
                out,
                recipient,
                accepted: false,
                held_by: HashSet::new(),
                in_flight: HashSet::new(),
                refused: HashMap::new(),
            },
        );
    }

    /// Envelopes on their way.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Picks up a new outbox entry.
    pub fn kick(&mut self, id: MessageId, ctx: &mut Ctx<'_>) -> Output {
        match self.messages.store.outgoing(&id) {
            Ok(Some(out)) => self.add(out),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot read the message outbox"),
        }
        self.poll(ctx, crate::clock::now_ms())
    }

    /// Pushes what can be pushed, drops what expired, dials absent recipients.
    pub fn poll(&mut self, ctx: &mut Ctx<'_>, now_ms: u64) -> Output {
        let now = Instant::now();
        let mut out = Output::default();
        let expired: Vec<MessageId> = self
            .pending
            .values()
            .filter(|p| p.out.expires_at <= now_ms)
            .map(|p| p.out.id)
            .collect();
        for id in expired {
            self.finish(&id, Some(State::Expired), &mut out);
        }
        let mut sends = Vec::new();
        let mut absent = HashSet::new();
        let mut circles: HashMap<String, Vec<PeerId>> = HashMap::new();
        for p in self.pending.values() {
            if p.accepted {
                continue;
            }
            let members = circles
                .entry(p.out.circle.clone())
                .or_insert_with(|| (ctx.circle)(&p.out.circle));
            for to in plan(p, ctx.connected, members, now) {
                sends.push((p.out.id, to));
            }
            if !(ctx.connected)(&p.recipient) {
                absent.insert(p.recipient);
            }
        }
        for (id, to) in sends {
            self.push(id, to, ctx);
        }
        for peer in absent {
            let (at, backoff) = self.dials.entry(peer).or_insert((now, DIAL_MIN));
            if *at <= now {
                *at = now + *backoff;
                *backoff = (*backoff * 2).min(DIAL_MAX);
                out.dial.push(peer);
            }
        }
        out
    }

    fn push(&mut self, id: MessageId, to: PeerId, ctx: &mut Ctx<'_>) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let request = Request::Push {
            envelope: p.out.envelope.clone(),
        };
        match encode_request(&request) {
            Ok(bytes) => {
                p.in_flight.insert(to);
                let rid = ctx.rr.send_request(&to, bytes);
                self.requests.insert(rid, Req::Push { id, to });
            }
            Err(e) => warn!(error = %e, "cannot encode an envelope push"),
        }
    }

    /// A peer connected: ask it for envelopes held for us, hand over what we hold for
    /// it, and push what waits for it.
    pub fn on_connected(&mut self, peer: PeerId, ctx: &mut Ctx<'_>) -> Output {
        self.dials.remove(&peer);
        self.fetch(peer, vec![], ctx);
        self.forward_held(peer, ctx);
        self.poll(ctx, crate::clock::now_ms())
    }

    /// A peer's last connection closed.
    pub fn on_disconnected(&mut self, peer: &PeerId) {
        for p in self.pending.values_mut() {
            p.in_flight.remove(peer);
        }
    }

    fn fetch(&mut self, from: PeerId, release: Vec<EnvelopeId>, ctx: &mut Ctx<'_>) {
        if let Ok(bytes) = encode_request(&Request::Fetch { release }) {
            let rid = ctx.rr.send_request(&from, bytes);
            self.requests.insert(rid, Req::Fetch { from });
        }
    }

    /// Pushes the envelopes held for `peer` to it (it is connected now).
    fn forward_held(&mut self, peer: PeerId, ctx: &mut Ctx<'_>) {
        let Some(recipient) = crate::identity::peer_id_author(&peer) else {
            return;
        };
        let now = crate::clock::now_ms();
        let Ok((envelopes, _)) = self.messages.holding.fetch(&recipient, &[], now) else {
            return;
        };
        for bytes in envelopes {
            let id = EnvelopeId::of(&bytes);
            let already = self.requests.values().any(
                |r| matches!(r, Req::Forward { recipient: r, id: i } if *r == recipient && *i == id),
            );
            if already {
                continue;
            }
            if let Ok(req) = encode_request(&Request::Push { envelope: bytes }) {
                let rid = ctx.rr.send_request(&peer, req);
                self.requests.insert(rid, Req::Forward { recipient, id });
            }
        }
    }

    /// Drops an outbox entry; with a state, the message's state moves there.
    fn finish(&mut self, id: &MessageId, state: Option<State>, out: &mut Output) {
        self.pending.remove(id);
        if let Some(state) = state {
            self.advance(id, state, out);
        }
        if let Err(e) = self.messages.store.unqueue(id) {
            warn!(error = %e, "cannot update the message outbox");
        }
    }

    fn advance(&mut self, id: &MessageId, state: State, out: &mut Output) {
        match self.messages.store.advance(id, state) {
            Ok(Some((conv, m))) => {
                if let Ok(Some(c)) = self.messages.store.conversation(&conv) {
                    out.messages
                        .push((conv.to_string(), self.messages.view(&c, &m)));
                }
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot update a message's state"),
        }
    }

    fn absorb(&mut self, fx: Effects, ctx: &mut Ctx<'_>, out: &mut Output) {
        out.messages.extend(fx.messages);
        out.posts.extend(fx.posts);
        for id in fx.delivered {
            self.pending.remove(&id);
        }
        for id in fx.queued {
            if let Ok(Some(o)) = self.messages.store.outgoing(&id) {
                self.add(o);
            }
        }
        if let Some(recipient) = fx.held_for {
            if let Some(peer) = author_peer_id(&recipient).filter(|p| (ctx.connected)(p)) {
                self.forward_held(peer, ctx);
            }
        }
    }

    /// Handles a request-response event of `/aidmesh/msg/1`.
    pub fn on_event(
        &mut self,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
        ctx: &mut Ctx<'_>,
    ) -> Output {
        let now_ms = crate::clock::now_ms();
        let mut out = Output::default();
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = match decode_request(&request) {
                    Ok(Request::Push { envelope }) => {
                        let (response, fx) = self.messages.on_push(&envelope, &peer, now_ms);
                        self.absorb(fx, ctx, &mut out);
                        response
                    }
                    Ok(Request::Fetch { release }) => {
                        self.messages.on_fetch(&peer, &release, now_ms)
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "malformed message request");
                        Response::Refused(Refusal::Invalid)
                    }
                };
                if let Ok(bytes) = encode_response(&response) {
                    let _ = ctx.rr.send_response(channel, bytes);
                }
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(req) = self.requests.remove(&request_id) else {
                    return out;
                };
                let response = match decode_response(&response) {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(%peer, error = %e, "malformed message response");
                        Response::Refused(Refusal::Invalid)
                    }
                };
                self.on_response(req, peer, response, ctx, &mut out, now_ms);
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "message request failed");
                if let Some(Req::Push { id, to }) = self.requests.remove(&request_id) {
                    if let Some(p) = self.pending.get_mut(&id) {
                        p.in_flight.remove(&to);
                        p.refused.insert(to, Instant::now() + RETRY_AFTER);
                    }
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound message request failed");
            }
            _ => {}
        }
        out
    }

    fn on_response(
        &mut self,
        req: Req,
        peer: PeerId,
        response: Response,
        ctx: &mut Ctx<'_>,
        out: &mut Output,
        now_ms: u64,
    ) {
        match req {
            Req::Push { id, to } => {
                let Some(p) = self.pending.get_mut(&id) else {
                    return;
                };
                p.in_flight.remove(&to);
                let fire_and_forget = p.out.fire_and_forget;
                match response {
                    Response::Accepted if to == p.recipient => {
                        p.accepted = true;
                        if fire_and_forget {
                            self.finish(&id, None, out);
                        } else {
                            self.advance(&id, State::Sent, out);
                        }
                    }
                    Response::Held if to != p.recipient => {
                        p.held_by.insert(to);
                        if fire_and_forget {
                            self.finish(&id, None, out);
                        } else {
                            self.advance(&id, State::Sent, out);
                        }
                    }
                    other => {
                        debug!(%peer, response = ?other, "envelope not taken");
                        p.refused.insert(to, Instant::now() + RETRY_AFTER);
                    }
                }
            }
            Req::Forward { recipient, id } => {
                if response == Response::Accepted {
                    let _ = self.messages.holding.fetch(&recipient, &[id], now_ms);
                }
            }
            Req::Fetch { from } => {
                let Response::Envelopes { envelopes, more } = response else {
                    return;
                };
                let mut release = Vec::new();
                for bytes in envelopes {
                    let id = EnvelopeId::of(&bytes);
                    let mut fx = Effects::default();
                    let r = match Envelope::decode(&bytes, now_ms) {
                        Ok(env) if env.recipient == self.messages.me() => {
                            self.messages.on_envelope(&env, now_ms, &mut fx)
                        }
                        _ => Response::Refused(Refusal::Invalid),
                    };
                    self.absorb(fx, ctx, out);
                    // Keep on the holder only what may open later (limits, full disk).
                    if !matches!(r, Response::Refused(Refusal::RateLimited | Refusal::Full)) {
                        release.push(id);
                    }
                }
                if !release.is_empty() {
                    // Also when nothing more waits: the holder drops what we stored.
                    self.fetch(from, release, ctx);
                } else if more {
                    debug!(peer = %from, "held envelopes could not be taken now; leaving them");
                }
            }
        }
    }

    /// Drops expired held envelopes and replay ids.
    pub fn sweep(&self, now_ms: u64) {
        self.messages.sweep(now_ms);
    }
}
