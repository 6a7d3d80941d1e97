//! Reachability: what AutoNAT says about this node, the relay slots it holds when it
//! is behind NAT, hole punching, and whether anyone has seen this node's posts.
//!
//! rust-libp2p picks no relay by itself: a private node listens on
//! `<relay>/p2p/<relay id>/p2p-circuit` on a relay it is directly connected to
//! (bootstrap peers first), and picks another when that listener closes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::autonat::{self, NatStatus};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{dcutr, kad, relay, Multiaddr, PeerId, StreamProtocol};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::address_book::without_p2p;
use super::Network;
use crate::clock::now_ms;
use crate::config::ReachabilityMode;

/// The protocol a peer offering relay service advertises.
const HOP_PROTOCOL: StreamProtocol = StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");
/// Relay slots a private node holds at once: one more than needed, so losing a relay
/// does not make the node unreachable.
const WANTED_RELAYS: usize = 2;
/// How long a relay that refused or dropped us is not asked again.
const RELAY_RETRY: Duration = Duration::from_secs(30);
/// How long after a local post a confirming sync asks a peer whether it has it.
pub(super) const CONFIRM_DELAY: Duration = Duration::from_secs(3);

/// Whether others can reach this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachable {
    /// Peers dialled this node back on a public address.
    Public,
    /// Peers could not dial back: behind NAT or a firewall; reachable through relays.
    Private,
    /// Not known yet (no peer has probed, or the probes disagree).
    Unknown,
}

/// A peer that has this node's posts, and when that was last confirmed.
#[derive(Clone, Debug, Serialize)]
pub struct SeenBy {
    /// The peer.
    pub peer_id: PeerId,
    /// When, ms since the epoch.
    pub at: u64,
}

/// Reachability as shown by `aidmesh status`.
#[derive(Clone, Debug, Serialize)]
pub struct Reachability {
    /// public / private / unknown (AutoNAT, unless fixed in the config).
    pub status: Reachable,
    /// The status was fixed by `network.reachability`, not measured.
    pub fixed: bool,
    /// How many probes in a row agreed (0..=3).
    pub confidence: usize,
    /// Addresses others can dial directly, ending in `/p2p/<peer id>`: confirmed by
    /// AutoNAT or set as external by the operator.
    pub direct_addrs: Vec<Multiaddr>,
    /// Addresses through relays that hold a slot for this node.
    pub relayed_addrs: Vec<Multiaddr>,
    /// Relays holding a slot for this node.
    pub relays: Vec<PeerId>,
    /// This node serves as a relay for others.
    pub relay_server: bool,
    /// Connected peers with at least one direct connection.
    pub peers_direct: usize,
    /// Connected peers reached only through a relay.
    pub peers_relayed: usize,
    /// Relayed connections upgraded to direct ones by hole punching.
    pub hole_punches_succeeded: u64,
    /// Hole punching attempts that failed.
    pub hole_punches_failed: u64,
    /// The last time a peer was found to hold every post of this node in a circle
    /// (by a sync that found nothing of ours missing there, or a fetch of ours).
    pub last_seen_by_peer: Option<SeenBy>,
}

/// A relay slot being asked for or held.
struct Slot {
    listener: ListenerId,
    accepted: bool,
}

/// The network task's reachability bookkeeping.
pub(super) struct NatState {
    /// What AutoNAT last said.
    status: NatStatus,
    /// What the operator fixed, overriding AutoNAT.
    mode: ReachabilityMode,
    confidence: usize,
    /// Peers that offer relay service, with the address we reach them on.
    relays: HashMap<PeerId, Multiaddr>,
    slots: HashMap<PeerId, Slot>,
    resting: HashMap<PeerId, Instant>,
    bootstrap_peers: HashSet<PeerId>,
    relay_server: bool,
    /// Kademlia mode the operator fixed, if any.
    kad_forced: Option<bool>,
    punched: u64,
    punch_failed: u64,
    pub(super) last_seen: Option<SeenBy>,
    /// Circles with a local post waiting for a confirming sync.
    pub(super) confirm: Vec<(Instant, String)>,
}

impl NatState {
    pub(super) fn new(
        relay_server: bool,
        kad_forced: Option<bool>,
        mode: ReachabilityMode,
    ) -> Self {
        Self {
            status: NatStatus::Unknown,
            mode,
            confidence: 0,
            relays: HashMap::new(),
            slots: HashMap::new(),
            resting: HashMap::new(),
            bootstrap_peers: HashSet::new(),
            relay_server,
            kad_forced,
            punched: 0,
            punch_failed: 0,
            last_seen: None,
            confirm: Vec::new(),
        }
    }

    /// Reachability as this node acts on it: the operator's choice, else AutoNAT's.
    pub(super) fn reachable(&self) -> Reachable {
        match (self.mode, &self.status) {
            (ReachabilityMode::Public, _) | (ReachabilityMode::Auto, NatStatus::Public(_)) => {
                Reachable::Public
            }
            (ReachabilityMode::Private, _) | (ReachabilityMode::Auto, NatStatus::Private) => {
                Reachable::Private
            }
            (ReachabilityMode::Auto, NatStatus::Unknown) => Reachable::Unknown,
        }
    }

    pub(super) fn is_public(&self) -> bool {
        self.reachable() == Reachable::Public
    }
}

/// Whether an address goes through a relay.
pub(super) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

impl Network {
    /// Reachability for the status.
    pub(super) fn reachability(&self) -> Reachability {
        let mut external: Vec<Multiaddr> = self
            .swarm
            .external_addresses()
            .map(|a| self.full_addr(a.clone()))
            .collect();
        external.sort();
        external.dedup();
        let (relayed, direct): (Vec<Multiaddr>, Vec<Multiaddr>) =
            external.into_iter().partition(is_relayed);
        let mut relays: Vec<PeerId> = self
            .nat
            .slots
            .iter()
            .filter(|(_, s)| s.accepted)
            .map(|(p, _)| *p)
            .collect();
        relays.sort();
        let peers_relayed = self.connected.values().filter(|p| p.relayed).count();
        Reachability {
            status: self.nat.reachable(),
            fixed: self.nat.mode != ReachabilityMode::Auto,
            confidence: self.nat.confidence,
            direct_addrs: direct,
            relayed_addrs: relayed,
            relays,
            relay_server: self.nat.relay_server,
            peers_direct: self.connected.len() - peers_relayed,
            peers_relayed,
            hole_punches_succeeded: self.nat.punched,
            hole_punches_failed: self.nat.punch_failed,
            last_seen_by_peer: self.nat.last_seen.clone(),
        }
    }

    /// Remembers which peers are bootstrap peers: they are asked for a relay slot first.
    pub(super) fn note_bootstrap_peer(&mut self, peer: PeerId) {
        self.nat.bootstrap_peers.insert(peer);
    }

    /// A peer told us (identify) whether it offers relay service; `addr` is how we
    /// reach it directly.
    pub(super) fn note_relay_candidate(
        &mut self,
        peer: PeerId,
        protocols: &[StreamProtocol],
        addr: Option<Multiaddr>,
    ) {
        match addr {
            Some(addr) if protocols.contains(&HOP_PROTOCOL) => {
                if self.nat.relays.insert(peer, addr).is_none() {
                    debug!(%peer, "peer offers relay service");
                }
                self.seek_relays();
            }
            _ => {
                self.nat.relays.remove(&peer);
            }
        }
    }

    pub(super) fn on_autonat(&mut self, event: autonat::Event) {
        let autonat::Event::StatusChanged { old, new } = event else {
            self.nat.confidence = self.swarm.behaviour().autonat.confidence();
            return;
        };
        self.nat.confidence = self.swarm.behaviour().autonat.confidence();
        if let NatStatus::Public(addr) = &old {
            if !self.operator_external.contains(addr) {
                self.swarm.remove_external_address(addr);
            }
        }
        match &new {
            NatStatus::Public(addr) => {
                info!(address = %addr, "reachability: public (peers dialled us back)");
                self.swarm.add_external_address(addr.clone());
            }
            NatStatus::Private => {
                info!("reachability: private (behind NAT or a firewall); looking for a relay")
            }
            NatStatus::Unknown => info!("reachability: unknown"),
        }
        self.nat.status = new;
        self.set_kad_mode();
        self.seek_relays();
    }

    /// Kademlia answers queries only when others can reach us (or the operator said so).
    pub(super) fn set_kad_mode(&mut self) {
        let server = self
            .nat
            .kad_forced
            .unwrap_or(self.nat.is_public() || !self.operator_external.is_empty());
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            kad.set_mode(Some(if server {
                kad::Mode::Server
            } else {
                kad::Mode::Client
            }));
        }
    }

    /// A private node asks relays for slots until it holds [`WANTED_RELAYS`]; a public
    /// one gives its slots back.
    pub(super) fn seek_relays(&mut self) {
        if self.nat.is_public() {
            let slots: Vec<(PeerId, ListenerId)> = self
                .nat
                .slots
                .drain()
                .map(|(p, s)| (p, s.listener))
                .collect();
            for (peer, listener) in slots {
                info!(relay = %peer, "publicly reachable; giving up the relay slot");
                self.swarm.remove_listener(listener);
            }
            return;
        }
        if self.nat.reachable() != Reachable::Private {
            return;
        }
        let now = Instant::now();
        self.nat.resting.retain(|_, until| *until > now);
        let mut candidates: Vec<(PeerId, Multiaddr)> = self
            .nat
            .relays
            .iter()
            .filter(|(p, _)| {
                !self.nat.slots.contains_key(p)
                    && !self.nat.resting.contains_key(p)
                    && self.connected.get(p).is_some_and(|c| !c.relayed)
            })
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        candidates.sort_by_key(|(p, _)| !self.nat.bootstrap_peers.contains(p));
        for (peer, addr) in candidates {
            if self.nat.slots.len() >= WANTED_RELAYS {
                break;
            }
            let circuit = without_p2p(&addr)
                .with(Protocol::P2p(peer))
                .with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    info!(relay = %peer, address = %circuit, "asking relay for a slot");
                    self.nat.slots.insert(
                        peer,
                        Slot {
                            listener,
                            accepted: false,
                        },
                    );
                }
                Err(e) => {
                    warn!(relay = %peer, error = %e, "cannot listen through relay");
                    self.nat.resting.insert(peer, now + RELAY_RETRY);
                }
            }
        }
    }

    /// A listener closed: if it was a relay slot, rest that relay and look for another.
    pub(super) fn on_listener_closed(&mut self, listener: ListenerId, reason: String) {
        let Some(peer) = self
            .nat
            .slots
            .iter()
            .find(|(_, s)| s.listener == listener)
            .map(|(p, _)| *p)
        else {
            return;
        };
        self.nat.slots.remove(&peer);
        info!(relay = %peer, %reason, "relay slot closed; looking for another relay");
        self.nat.resting.insert(peer, Instant::now() + RELAY_RETRY);
        self.seek_relays();
    }

    pub(super) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if let Some(slot) = self.nat.slots.get_mut(&relay_peer_id) {
                    slot.accepted = true;
                }
                if !renewal {
                    info!(relay = %relay_peer_id, "relay holds a slot: reachable through it");
                }
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                debug!(peer = %src_peer_id, "peer connected to us through a relay")
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                debug!(relay = %relay_peer_id, "connected to a peer through a relay")
            }
        }
    }

    pub(super) fn on_relay_server(&mut self, event: relay::Event) {
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                info!(peer = %src_peer_id, "holding a relay slot for a peer")
            }
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                info!(peer = %src_peer_id, "relay slot denied (limits reached)")
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => debug!(from = %src_peer_id, to = %dst_peer_id, "relaying a connection"),
            other => debug!(event = ?other, "relay"),
        }
    }

    pub(super) fn on_dcutr(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => {
                self.nat.punched += 1;
                info!(peer = %event.remote_peer_id, "hole punching succeeded: direct connection");
            }
            Err(e) => {
                self.nat.punch_failed += 1;
                info!(peer = %event.remote_peer_id, error = %e, "hole punching failed; staying relayed");
            }
        }
    }

    /// `peer` holds every post of ours in `circle`, if we have any there.
    pub(super) fn note_seen(&mut self, peer: PeerId, circle: &str) {
        let me = crate::identity::peer_id_author(self.swarm.local_peer_id());
        let Some(me) = me else { return };
        let query = crate::store::Query {
            author: Some(me),
            circle: Some(circle.to_string()),
            status: crate::store::StatusFilter::Any,
            limit: 1,
            ..crate::store::Query::default()
        };
        match self.store.count(&query, now_ms()) {
            Ok(0) => {}
            Ok(_) => self.mark_seen(peer),
            Err(e) => debug!(error = %e, "cannot count own posts"),
        }
    }

    /// `peer` just received a post of ours.
    pub(super) fn mark_seen(&mut self, peer: PeerId) {
        debug!(%peer, "a peer has our posts");
        self.nat.last_seen = Some(SeenBy {
            peer_id: peer,
            at: now_ms(),
        });
    }

    /// A short while after a local post, ask one peer of its circle (a direct one if
    /// any) whether it has it: a sync that finds nothing of ours missing answers
    /// "can anyone see my offers?".
    pub(super) fn confirm_due(&mut self) {
        let now = Instant::now();
        if self.nat.confirm.iter().all(|(at, _)| *at > now) {
            return;
        }
        let due: Vec<String> = self
            .nat
            .confirm
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, c)| c.clone())
            .collect();
        self.nat.confirm.retain(|(at, _)| *at > now);
        for circle in due {
            let peers: Vec<PeerId> = self
                .circle_peers(&circle)
                .into_iter()
                .filter(|p| self.connected.get(p).is_some_and(|c| !c.relayed))
                .collect();
            if !peers.is_empty() {
                let pick = peers[rand::random::<usize>() % peers.len()];
                self.queue_sync(pick, circle);
            }
        }
    }
}
