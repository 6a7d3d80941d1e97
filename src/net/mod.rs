//! The network: one task owns the libp2p `Swarm` and everything that touches it.
//!
//! The rest of the node talks to it through [`Command`]s on an mpsc channel (replies
//! through oneshot senders) and hears from it through the node's [`Event`] broadcast.
//! Raw swarm events never leave this module. Gossiped posts are judged
//! ([`gossip::judge`]), written through the store, and only then accepted for relay.

pub mod address_book;
mod behaviour;
pub mod discovery;
pub mod frames;
pub mod gossip;
mod held;
mod links;
mod messages;
mod nat;
mod rate;
mod records;
mod relay_rate;
mod skew;
mod sync_driver;
mod writer;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, kad, mdns, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::clock::now_ms;
use crate::events::{Bus, Event, Origin};
use crate::store::{Inserted, Store};
use address_book::{without_p2p, AddressBook};
use behaviour::{Behaviour, BehaviourEvent, Settings};
pub use behaviour::{IDENTIFY_PROTOCOL, KAD_PROTOCOL};
pub use nat::{Reachability, Reachable, SeenBy};
pub use skew::ClockSkew;
use sync_driver::{Effect, SyncDriver};

/// Peers this node dials on its own (from the DHT, mDNS and the address book) before
/// it stops looking for more.
const TARGET_PEERS: usize = 8;
/// Address-book peers dialled at start.
const ADDRESS_BOOK_DIALS: usize = 32;
/// First and largest wait before redialling a bootstrap peer.
const REDIAL_MIN: Duration = Duration::from_secs(1);
const REDIAL_MAX: Duration = Duration::from_secs(300);
/// Posts waiting for a first subscribed peer, per circle.
const MAX_PENDING: usize = 1024;
/// How often each circle is reconciled with one random peer.
const SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// The gossip application score of a peer that broke the sync protocol (weighted
/// 10×: far below the graylist threshold of −80).
const LIAR_SCORE: f64 = -100.0;
/// How long start-up waits for the listeners.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Network failures at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport or a behaviour could not be built.
    #[error("cannot set up networking: {0}")]
    Setup(String),
    /// A listen address could not be used.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why (port in use, address not available, unsupported).
        reason: String,
    },
}

/// Requests to the network task.
pub(crate) enum Command {
    Publish {
        circle: String,
        data: Vec<u8>,
    },
    /// A membership or moderation record this node made (already in the membrane).
    PublishRecord {
        circle: String,
        data: Vec<u8>,
    },
    Join {
        circle: String,
        reply: oneshot::Sender<bool>,
    },
    Leave {
        circle: String,
        reply: oneshot::Sender<bool>,
    },
    /// Members connected and seen, per joined circle.
    CirclePeers(oneshot::Sender<Vec<CirclePeers>>),
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Sync {
        peer: PeerId,
        circle: String,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Status(oneshot::Sender<NetStatus>),
    /// A new outbox entry to deliver.
    MessageQueued(aidmesh_proto::message::MessageId),
    Shutdown(oneshot::Sender<()>),
}

/// A connected peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: PeerId,
    /// The address of the first connection.
    pub address: Multiaddr,
    /// Whether this node dialled it.
    pub outbound: bool,
    /// Connected since, ms since the epoch.
    pub since: u64,
    /// Reached only through a relay (no direct connection).
    pub relayed: bool,
    /// Open direct connections.
    #[serde(skip)]
    direct: u32,
}

/// How many members of one circle this node is connected to and has seen.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CirclePeers {
    /// The circle.
    pub circle: String,
    /// Connected peers subscribed to the circle.
    pub connected: u64,
    /// Distinct peers seen in the circle since start (subscribed, or found in the
    /// DHT), counted up to [`discovery::MAX_SEEN`].
    pub seen: u64,
}

/// The network's part of the node status.
#[derive(Clone, Debug, Serialize)]
pub struct NetStatus {
    /// Every listen address, ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Number of connected peers.
    pub connected_peers: usize,
    /// Subscribed circles.
    pub circles: Vec<String>,
    /// Members connected and seen, per subscribed circle.
    pub circle_peers: Vec<CirclePeers>,
    /// Bytes sent on all connections since start (after encryption and muxing).
    pub bytes_sent: u64,
    /// Bytes received on all connections since start.
    pub bytes_received: u64,
    /// The last sync with each peer.
    pub syncs: Vec<SyncStatus>,
    /// Whether and how others can reach this node.
    pub reachability: nat::Reachability,
    /// What the network shed or repaired, and the clock as peers see it.
    pub health: NetHealth,
}

/// Limits at work and repairs, for `status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetHealth {
    /// Peers' clocks as seen in their fresh posts, once enough authors were heard.
    pub clock_skew: Option<ClockSkew>,
    /// Posts dated ahead of our clock, held until their time.
    pub held_future_posts: usize,
    /// Gossip sends dropped because a peer's send queue was full.
    pub gossip_sends_dropped: u64,
    /// Gossip links found dead (send queue full for many heartbeats) and reconnected.
    pub gossip_links_repaired: u64,
    /// Gossip messages ignored because their sender was over its rate.
    pub gossip_over_peer_rate: u64,
    /// Gossip posts ignored because their author was over its relay rate.
    pub gossip_over_author_rate: u64,
    /// Gossip posts ignored because the store's write queue was full.
    pub gossip_write_queue_full: u64,
    /// Incoming connections refused by the connection limits.
    pub connections_refused: u64,
    /// Catch-up sync sessions running now.
    pub sync_sessions: usize,
}

/// The last catch-up sync with one peer.
#[derive(Clone, Debug, Serialize)]
pub struct SyncStatus {
    /// The peer.
    pub peer_id: PeerId,
    /// The circle of the last sync.
    pub circle: String,
    /// When it ended, ms since the epoch.
    pub at: u64,
    /// Whether it completed.
    pub ok: bool,
    /// Posts fetched from this peer by all syncs so far.
    pub fetched_total: u64,
    /// Round trips of the last sync.
    pub round_trips: u32,
}

/// What the network task needs at start.
pub(crate) struct NetConfig {
    pub keypair: libp2p::identity::Keypair,
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub circles: Vec<String>,
    pub mdns: bool,
    pub kademlia: bool,
    pub kademlia_server: Option<bool>,
    /// Announce and look up circle members in the DHT.
    pub circle_discovery: bool,
    pub idle_timeout: Duration,
    pub sweep_interval: Duration,
    pub external_addresses: Vec<Multiaddr>,
    pub autonat_only_global_ips: bool,
    pub reachability: crate::config::ReachabilityMode,
    pub relay: Option<crate::config::RelayConfig>,
    pub messages: crate::messages::Messages,
    /// Closed circles' membership and followed moderation.
    pub membrane: crate::circles::membrane::Membrane,
}

/// Where a bootstrap peer is in its dial / redial cycle. `backoff` is the wait
/// after the next failure; it doubles up to [`REDIAL_MAX`].
enum Redial {
    Dialing { id: ConnectionId, backoff: Duration },
    Connected(PeerId),
    Waiting { at: Instant, backoff: Duration },
}

struct Bootstrap {
    addr: Multiaddr,
    state: Redial,
}

/// The task that owns the swarm.
pub(crate) struct Network {
    swarm: Swarm<Behaviour>,
    store: Store,
    book: AddressBook,
    events: Bus,
    commands: mpsc::Receiver<Command>,
    circles: HashSet<String>,
    pending: HashMap<String, Vec<Vec<u8>>>,
    bootstrap: Vec<Bootstrap>,
    listen_addrs: Vec<Multiaddr>,
    connected: HashMap<PeerId, PeerInfo>,
    sweep_interval: Duration,
    /// Transport byte counters.
    metrics: libp2p::metrics::Registry,
    syncer: SyncDriver,
    /// Peers that broke the sync protocol: their gossip score stays at
    /// [`LIAR_SCORE`] whatever their relay-rate strikes say.
    liars: HashSet<PeerId>,
    relay_rate: relay_rate::RelayRate,
    /// Writes accepted gossip off the swarm task.
    writer: writer::Writer,
    links: links::Links,
    held: held::Held,
    skew: skew::Skew,
    connections_refused: u64,
    /// Peers disconnected to repair their gossip link, to dial again once closed.
    redial: HashMap<PeerId, Vec<Multiaddr>>,
    nat: nat::NatState,
    /// External addresses the operator set (never withdrawn by AutoNAT).
    operator_external: Vec<Multiaddr>,
    /// Private message delivery.
    messages: crate::messages::delivery::Driver,
    /// Finding circle members in the DHT.
    discovery: discovery::Discovery,
    /// Closed circles' membership and followed moderation.
    membrane: crate::circles::membrane::Membrane,
    /// The records catch-up exchange.
    records: records::Records,
}

fn setup<E: std::fmt::Display>(e: E) -> Error {
    Error::Setup(e.to_string())
}

impl Network {
    /// Builds the swarm, starts every listener and waits until each has an address (or
    /// fails), then subscribes and dials. Nothing is spawned yet.
    pub(crate) async fn start(
        config: NetConfig,
        store: Store,
        events: Bus,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Self, Error> {
        let settings = Settings {
            mdns: config.mdns,
            kademlia: config.kademlia,
            kademlia_server: config.kademlia_server,
            heartbeat: Duration::from_secs(1),
            relay: config.relay.clone(),
            autonat_only_global_ips: config.autonat_only_global_ips,
        };
        let mut metrics = libp2p::metrics::Registry::default();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(setup)?
            .with_quic()
            .with_dns()
            .map_err(setup)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(setup)?
            .with_bandwidth_metrics(&mut metrics)
            .with_behaviour(|key, relay_client| {
                Behaviour::new(key, relay_client, &settings)
                    .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
            })
            .map_err(setup)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
            .build();
        let book = AddressBook::open(store.db()).map_err(setup)?;

        for addr in &config.listen {
            refuse_port_in_use(addr)?;
        }
        let mut waiting = HashMap::new();
        for addr in &config.listen {
            let id = swarm.listen_on(addr.clone()).map_err(|e| Error::Listen {
                addr: addr.clone(),
                reason: listen_reason(&e),
            })?;
            waiting.insert(id, addr.clone());
        }
        let mut listen_addrs = Vec::new();
        let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
        tokio::pin!(deadline);
        while !waiting.is_empty() {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { listener_id, address } => {
                        waiting.remove(&listener_id);
                        listen_addrs.push(address);
                    }
                    SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                        if let Some(addr) = waiting.remove(&listener_id) {
                            let reason = match reason {
                                Err(e) => e.to_string(),
                                Ok(()) => "listener closed".into(),
                            };
                            return Err(Error::Listen { addr, reason });
                        }
                    }
                    SwarmEvent::ListenerError { listener_id, error } => {
                        if let Some(addr) = waiting.remove(&listener_id) {
                            return Err(Error::Listen { addr, reason: error.to_string() });
                        }
                    }
                    _ => {}
                },
                _ = &mut deadline => {
                    let addr = waiting.into_values().next().unwrap_or_else(Multiaddr::empty);
                    return Err(Error::Listen { addr, reason: "no address after 10 s".into() });
                }
            }
        }

        let writer = writer::Writer::start(store.clone(), events.clone())
            .map_err(|e| Error::Setup(format!("cannot start the gossip writer: {e}")))?;
        let syncer = SyncDriver::new(
            store.clone(),
            events.clone(),
            crate::identity::peer_id_author(swarm.local_peer_id()),
        );
        let mut net = Self {
            swarm,
            store,
            book,
            events,
            commands,
            circles: HashSet::new(),
            pending: HashMap::new(),
            bootstrap: Vec::new(),
            listen_addrs: Vec::new(),
            connected: HashMap::new(),
            sweep_interval: config.sweep_interval,
            metrics,
            syncer,
            liars: HashSet::new(),
            relay_rate: relay_rate::RelayRate::default(),
            writer,
            links: links::Links::default(),
            held: held::Held::default(),
            skew: skew::Skew::default(),
            connections_refused: 0,
            redial: HashMap::new(),
            nat: nat::NatState::new(
                config.relay.is_some(),
                config.kademlia_server,
                config.reachability,
            ),
            operator_external: config.external_addresses.clone(),
            messages: crate::messages::delivery::Driver::new(config.messages),
            discovery: discovery::Discovery::new(config.kademlia && config.circle_discovery),
            records: records::Records::new(config.membrane.clone()),
            membrane: config.membrane,
        };
        for addr in &config.external_addresses {
            info!(address = %addr, "external address (from config)");
            net.swarm.add_external_address(addr.clone());
        }
        net.set_kad_mode();
        for address in listen_addrs {
            net.add_listen_addr(address);
        }
        for circle in &config.circles {
            net.join(circle);
        }
        for addr in config.bootstrap {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                net.note_bootstrap_peer(peer);
            }
            let state = net.dial_bootstrap(&addr, REDIAL_MIN);
            net.bootstrap.push(Bootstrap { addr, state });
        }
        match net.book.recent(ADDRESS_BOOK_DIALS, now_ms()) {
            Ok(entries) => {
                for e in entries {
                    net.kad_add(&e.peer, &e.addrs);
                    let opts = DialOpts::peer_id(e.peer)
                        .addresses(e.addrs)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(err) = net.swarm.dial(opts) {
                        debug!(peer = %e.peer, %err, "address book dial failed");
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read the address book"),
        }
        Ok(net)
    }

    /// Runs until shut down or until every command sender is gone; flushes the store
    /// on the way out.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut sweep = tokio::time::interval(self.sweep_interval);
        let mut resync = tokio::time::interval(SYNC_INTERVAL);
        resync.reset();
        let mut shutdown_reply = None;
        loop {
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(c) => self.on_command(c),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(finished) = self.syncer.finished() => {
                    self.with_sync(|sync, ctx| sync.on_finished(ctx, finished));
                }
                _ = tick.tick() => self.on_tick(),
                _ = sweep.tick() => self.sweep(),
                _ = resync.tick() => self.periodic_sync(),
            }
        }
        self.writer.finish().await;
        if let Err(e) = self.store.flush_async().await {
            warn!(error = %e, "flushing the store at shutdown failed");
        }
        info!("network stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn kad_add(&mut self, peer: &PeerId, addrs: &[Multiaddr]) {
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            for a in addrs {
                kad.add_address(peer, a.clone());
            }
        }
    }

    fn sweep(&mut self) {
        match self.store.sweep_expired(now_ms()) {
            Ok(0) => {}
            Ok(n) => info!(removed = n, "swept expired posts"),
            Err(e) => warn!(error = %e, "expiry sweep failed"),
        }
        self.messages.sweep(now_ms());
    }

    fn full_addr(&self, addr: Multiaddr) -> Multiaddr {
        let addr = without_p2p(&addr);
        addr.with(Protocol::P2p(*self.swarm.local_peer_id()))
    }

    fn add_listen_addr(&mut self, address: Multiaddr) {
        let full = self.full_addr(address);
        info!(address = %full, "listening");
        if !self.listen_addrs.contains(&full) {
            self.listen_addrs.push(full);
        }
    }

    fn join(&mut self, circle: &str) -> bool {
        let topic = gossip::topic(circle);
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        let _ = gs.set_topic_params(topic.clone(), gossip::topic_score_params());
        if let Err(e) = gs.subscribe(&gossip::records_topic(circle)) {
            warn!(circle, error = %e, "cannot subscribe to the circle's records");
        }
        match gs.subscribe(&topic) {
            Ok(new) => {
                self.circles.insert(circle.to_string());
                self.discovery.join(circle, Instant::now());
                info!(circle, "joined circle");
                self.sync_circle_with_all(circle, None);
                new
            }
            Err(e) => {
                warn!(circle, error = %e, "cannot subscribe");
                false
            }
        }
    }

    fn dial_bootstrap(&mut self, addr: &Multiaddr, backoff: Duration) -> Redial {
        let opts = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::Always)
                .build(),
            _ => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => Redial::Dialing { id, backoff },
            Err(e) => {
                warn!(%addr, error = %e, retry_in = ?backoff, "cannot dial bootstrap peer");
                Redial::Waiting {
                    at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(REDIAL_MAX),
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        for i in 0..self.bootstrap.len() {
            if let Redial::Waiting { at, backoff } = self.bootstrap[i].state {
                if at <= now {
                    let addr = self.bootstrap[i].addr.clone();
                    debug!(%addr, "redialling bootstrap peer");
                    self.bootstrap[i].state = self.dial_bootstrap(&addr, backoff);
                }
            }
        }
        self.confirm_due();
        self.seek_relays();
        self.with_sync(|sync, ctx| sync.tick(ctx));
        self.release_held();
        for (peer, score) in self.relay_rate.decay(now) {
            self.set_strike_score(peer, score);
        }
        self.poll_messages();
        self.discover();
        if !self.pending.is_empty() {
            let circles: Vec<String> = self.pending.keys().cloned().collect();
            for c in circles {
                self.flush_pending(&c);
            }
        }
    }

    fn publish(&mut self, circle: &str, data: Vec<u8>) {
        let topic = gossip::topic(circle);
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, data.clone())
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
            | Err(gossipsub::PublishError::AllQueuesFull(_)) => {
                let queue = self.pending.entry(circle.to_string()).or_default();
                if queue.len() < MAX_PENDING {
                    queue.push(data);
                }
                debug!(
                    circle,
                    "no peers for the circle yet; post will go out when one appears"
                );
            }
            Err(e) => warn!(circle, error = %e, "publish failed"),
        }
    }

    fn flush_pending(&mut self, circle: &str) {
        let Some(queue) = self.pending.remove(circle) else {
            return;
        };
        for data in queue {
            self.publish(circle, data);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { circle, data } => {
                // The node handle refuses posts for circles the node is not in.
                if !self.circles.contains(&circle) {
                    warn!(
                        circle,
                        "not publishing a post of a circle this node is not in"
                    );
                    return;
                }
                self.publish(&circle, data);
                self.nat
                    .confirm
                    .push((Instant::now() + nat::CONFIRM_DELAY, circle));
            }
            Command::PublishRecord { circle, data } => {
                let topic = gossip::records_topic(&circle);
                match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
                    // Peers that join later get it through the catch-up exchange.
                    Err(e) => debug!(circle, error = %e, "record not published now"),
                }
                if aidmesh_proto::circle::is_closed(&circle) {
                    // A newcomer's redemption: the circle's peers may have refused
                    // it their records a moment ago, not knowing it as a member.
                    // The catch-up request offers the record, so they learn it even
                    // before gossip brings it, and serve.
                    let peers = self.circle_peers(&circle);
                    let rr = &mut self.swarm.behaviour_mut().records;
                    for peer in peers {
                        self.records.ask_again(rr, peer, &circle);
                    }
                }
            }
            Command::Join { circle, reply } => {
                let new = self.join(&circle);
                let _ = reply.send(new);
            }
            Command::Leave { circle, reply } => {
                let topic = gossip::topic(&circle);
                let was = self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .unsubscribe(&gossip::records_topic(&circle));
                self.circles.remove(&circle);
                self.pending.remove(&circle);
                self.nat.confirm.retain(|(_, c)| c != &circle);
                if let Some(key) = self.discovery.leave(&circle) {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.stop_providing(&key);
                    }
                }
                if was {
                    info!(circle, "left circle");
                }
                let _ = reply.send(was);
            }
            Command::CirclePeers(reply) => {
                let _ = reply.send(self.circle_peer_counts());
            }
            Command::Dial { addr, reply } => {
                let result = self.swarm.dial(addr).map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Command::Sync { peer, circle } => self.queue_sync(peer, circle),
            Command::Peers(reply) => {
                let mut peers: Vec<PeerInfo> = self.connected.values().cloned().collect();
                peers.sort_by_key(|p| p.since);
                let _ = reply.send(peers);
            }
            Command::Status(reply) => {
                let mut circles: Vec<String> = self.circles.iter().cloned().collect();
                circles.sort();
                let (bytes_sent, bytes_received) = bandwidth(&self.metrics);
                let _ = reply.send(NetStatus {
                    listen_addrs: self.listen_addrs.clone(),
                    connected_peers: self.connected.len(),
                    circles,
                    circle_peers: self.circle_peer_counts(),
                    bytes_sent,
                    bytes_received,
                    syncs: self.syncer.statuses(),
                    reachability: self.reachability(),
                    health: NetHealth {
                        clock_skew: self.skew.estimate(),
                        held_future_posts: self.held.len(),
                        gossip_sends_dropped: self.links.dropped,
                        gossip_links_repaired: self.links.repaired,
                        gossip_over_peer_rate: self.relay_rate.over_peer,
                        gossip_over_author_rate: self.relay_rate.over_author,
                        gossip_write_queue_full: self.writer.full,
                        connections_refused: self.connections_refused,
                        sync_sessions: self.syncer.running(),
                    },
                });
            }
            Command::MessageQueued(id) => self.message_queued(id),
            Command::Shutdown(_) => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } if nat::is_relayed(&address) => {
                info!(address = %self.full_addr(address), "reachable through a relay");
            }
            SwarmEvent::NewListenAddr { address, .. } => self.add_listen_addr(address),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                let reason = match reason {
                    Ok(()) => "closed".to_string(),
                    Err(e) => e.to_string(),
                };
                self.on_listener_closed(listener_id, reason);
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                debug!(?listener_id, %error, "listener error");
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = self.full_addr(address);
                self.listen_addrs.retain(|a| a != &full);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                connection_id,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
                if endpoint.is_dialer() {
                    if let Err(e) =
                        self.book
                            .record(&peer_id, std::slice::from_ref(&address), now_ms())
                    {
                        warn!(error = %e, "address book write failed");
                    }
                }
                for b in &mut self.bootstrap {
                    if matches!(b.state, Redial::Dialing { id, .. } if id == connection_id) {
                        info!(peer = %peer_id, addr = %b.addr, "connected to bootstrap peer");
                        b.state = Redial::Connected(peer_id);
                    }
                }
                let relayed = endpoint.is_relayed();
                let info = self.connected.entry(peer_id).or_insert_with(|| PeerInfo {
                    peer_id,
                    address: address.clone(),
                    outbound: endpoint.is_dialer(),
                    since: now_ms(),
                    relayed,
                    direct: 0,
                });
                let was_relayed = info.relayed;
                if !relayed {
                    info.direct += 1;
                    info.relayed = false;
                    if was_relayed {
                        // Hole punched (or dialled directly): now worth a sync.
                        info.address = address.clone();
                        let circles: Vec<String> = self.circles.iter().cloned().collect();
                        for c in circles {
                            if self.circle_peers(&c).contains(&peer_id) {
                                self.queue_sync(peer_id, c);
                            }
                        }
                    }
                }
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, %address, relayed, "peer connected");
                    self.events.send(Event::PeerConnected { peer_id, address });
                    self.message_peer_connected(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                ..
            } if num_established > 0 => {
                if let Some(info) = self.connected.get_mut(&peer_id) {
                    if !endpoint.is_relayed() {
                        info.direct = info.direct.saturating_sub(1);
                    }
                    info.relayed = info.direct == 0;
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                debug!(peer = %peer_id, "peer disconnected");
                self.connected.remove(&peer_id);
                self.with_sync(|sync, ctx| sync.peer_gone(ctx, &peer_id));
                self.relay_rate.forget(&peer_id);
                if let Some(addrs) = self.redial.remove(&peer_id) {
                    let opts = DialOpts::peer_id(peer_id)
                        .addresses(addrs)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        warn!(peer = %peer_id, error = %e, "cannot reconnect to repair the gossip link");
                    }
                }
                self.links.forget(&peer_id, Instant::now());
                self.events.send(Event::PeerDisconnected { peer_id });
                self.messages.on_disconnected(&peer_id);
                for b in &mut self.bootstrap {
                    if matches!(b.state, Redial::Connected(p) if p == peer_id) {
                        info!(addr = %b.addr, "lost bootstrap peer; will redial");
                        b.state = Redial::Waiting {
                            at: Instant::now() + REDIAL_MIN,
                            backoff: REDIAL_MIN,
                        };
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                let mut bootstrap = false;
                for b in &mut self.bootstrap {
                    if let Redial::Dialing { id, backoff } = b.state {
                        if id != connection_id {
                            continue;
                        }
                        bootstrap = true;
                        warn!(addr = %b.addr, error = %error, retry_in = ?backoff, "bootstrap peer unreachable");
                        b.state = Redial::Waiting {
                            at: Instant::now() + backoff,
                            backoff: (backoff * 2).min(REDIAL_MAX),
                        };
                    }
                }
                if !bootstrap {
                    debug!(peer = ?peer_id, error = %error, "dial failed");
                }
            }
            SwarmEvent::IncomingConnectionError {
                error: libp2p::swarm::ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                self.connections_refused += 1;
                debug!(from = %send_back_addr, %cause, "incoming connection refused by the connection limits");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let (acceptance, to_store) = self.on_gossip(&propagation_source, &message);
                // Relay first, write second: the sled write is off the forwarding path.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                if let Some(verified) = to_store {
                    self.writer.write(propagation_source, verified);
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                debug!(peer = %peer_id, topic = %topic, "peer subscribed");
                if let Some(circle) = gossip::circle_of(&topic).map(str::to_string) {
                    self.discovery.seen(&circle, peer_id);
                    self.flush_pending(&circle);
                    if self.circles.contains(&circle) {
                        self.queue_sync(peer_id, circle);
                    }
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let speaks_kad = info.protocols.contains(&KAD_PROTOCOL);
                let addrs: Vec<Multiaddr> =
                    info.listen_addrs.into_iter().filter(is_dialable).collect();
                let direct = self
                    .connected
                    .get(&peer_id)
                    .filter(|c| c.outbound && !c.relayed)
                    .map(|c| c.address.clone())
                    .or_else(|| addrs.iter().find(|a| !nat::is_relayed(a)).cloned());
                self.note_relay_candidate(peer_id, &info.protocols, direct);
                if speaks_kad {
                    self.kad_add(&peer_id, &addrs);
                }
                if !addrs.is_empty() {
                    if let Err(e) = self.book.record(&peer_id, &addrs, now_ms()) {
                        warn!(error = %e, "address book write failed");
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) if self.connected.len() < TARGET_PEERS && !self.connected.contains_key(&peer) => {
                let opts = DialOpts::peer_id(peer)
                    .addresses(addresses.into_vec())
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, .. })
                if self.discovery.circle_of(&id).is_some() =>
            {
                self.on_discovery_query(id, result)
            }
            BehaviourEvent::Messages(event) => self.on_message_event(event),
            BehaviourEvent::Records(event) => {
                let rr = &mut self.swarm.behaviour_mut().records;
                if let Some((peer, circle)) = self.records.on_event(rr, &self.circles, event) {
                    // New members' posts may have been refused a moment ago.
                    self.with_sync(|sync, ctx| sync.queue_again(ctx, peer, circle));
                }
            }
            BehaviourEvent::Sync(event) => self.with_sync(|sync, ctx| sync.on_event(ctx, event)),
            BehaviourEvent::Gossipsub(gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            }) => {
                let failed = failed_messages.priority + failed_messages.non_priority;
                if self.links.on_slow(peer_id, failed, Instant::now()) {
                    self.repair_link(peer_id);
                }
            }
            BehaviourEvent::Autonat(event) => self.on_autonat(event),
            BehaviourEvent::RelayClient(event) => self.on_relay_client(event),
            BehaviourEvent::Relay(event) => self.on_relay_server(event),
            BehaviourEvent::Dcutr(event) => self.on_dcutr(event),
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    debug!(%peer, %addr, "found on the local network");
                    self.kad_add(&peer, std::slice::from_ref(&addr));
                    if !self.connected.contains_key(&peer) {
                        let opts = DialOpts::peer_id(peer)
                            .addresses(vec![addr])
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        let _ = self.swarm.dial(opts);
                    }
                }
            }
            _ => {}
        }
    }

    /// Members connected and seen, per subscribed circle, by name.
    fn circle_peer_counts(&self) -> Vec<CirclePeers> {
        let mut out: Vec<CirclePeers> = self
            .circles
            .iter()
            .map(|c| CirclePeers {
                circle: c.clone(),
                connected: self.circle_peers(c).len() as u64,
                seen: self.discovery.seen_count(c) as u64,
            })
            .collect();
        out.sort_by(|a, b| a.circle.cmp(&b.circle));
        out
    }

    /// One discovery round: announces and look-ups that are due.
    fn discover(&mut self) {
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
            return;
        };
        let dht_peers = kad.kbuckets().any(|b| b.num_entries() > 0);
        let mut external: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        external.sort();
        external.dedup();
        let counts: HashMap<String, usize> = self
            .circles
            .iter()
            .map(|c| (c.clone(), self.circle_peers(c).len()))
            .collect();
        let connected = |c: &str| counts.get(c).copied().unwrap_or(0);
        let actions = self.discovery.due(&discovery::Now {
            at: Instant::now(),
            dht_peers,
            external: &external,
            connected: &connected,
        });
        for action in actions {
            let (circle, announce) = match &action {
                discovery::Action::Announce(c) => (c, true),
                discovery::Action::Lookup(c) => (c, false),
            };
            let Some(key) = self.discovery.key(circle) else {
                continue;
            };
            let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
                return;
            };
            let query = if announce {
                match kad.start_providing(key) {
                    Ok(id) => {
                        debug!(
                            circle,
                            addresses = external.len(),
                            "announcing circle membership in the DHT"
                        );
                        Some(id)
                    }
                    Err(e) => {
                        warn!(circle, error = %e, "cannot announce circle membership");
                        None
                    }
                }
            } else {
                debug!(
                    circle,
                    members = connected(circle),
                    "looking up circle members in the DHT"
                );
                Some(kad.get_providers(key))
            };
            self.discovery.started(&action, query, &external);
        }
    }

    /// Progress of a discovery query: dial found members while the query still holds
    /// their addresses (from their provider records).
    fn on_discovery_query(&mut self, id: kad::QueryId, result: kad::QueryResult) {
        match result {
            kad::QueryResult::StartProviding(r) => {
                if let Err(e) = &r {
                    debug!(error = %e, "circle announcement did not reach the DHT");
                }
                self.discovery.announced(id, r.is_ok());
            }
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                let me = *self.swarm.local_peer_id();
                let connected = &self.connected;
                let dial = self.discovery.on_providers(
                    id,
                    providers,
                    &me,
                    |p| connected.contains_key(p),
                    Instant::now(),
                );
                let circle = self.discovery.circle_of(&id).unwrap_or("").to_string();
                for peer in dial {
                    info!(circle, %peer, "found a circle member in the DHT; dialling");
                    let opts = DialOpts::peer_id(peer)
                        .addresses(self.book.addrs_of(&peer))
                        .extend_addresses_through_behaviour()
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        debug!(%peer, error = %e, "cannot dial circle member");
                    }
                }
            }
            kad::QueryResult::GetProviders(_) => self.discovery.lookup_done(id),
            _ => {}
        }
    }

    fn circle_peers(&self, circle: &str) -> Vec<PeerId> {
        let hash = gossip::topic(circle).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(p, _)| *p)
            .collect()
    }

    fn sync_circle_with_all(&mut self, circle: &str, except: Option<PeerId>) {
        for p in self.circle_peers(circle) {
            if Some(p) != except {
                self.queue_sync(p, circle.to_string());
            }
        }
    }

    fn periodic_sync(&mut self) {
        let circles: Vec<String> = self.circles.iter().cloned().collect();
        for circle in circles {
            let peers = self.circle_peers(&circle);
            if !peers.is_empty() {
                let pick = peers[rand::random::<usize>() % peers.len()];
                self.queue_sync(pick, circle);
            }
        }
    }

    fn queue_sync(&mut self, peer: PeerId, circle: String) {
        // Records first: a closed circle's posts are taken from members only, so the
        // membership must be known before the posts come.
        let rr = &mut self.swarm.behaviour_mut().records;
        self.records.ask(rr, peer, &circle, 0);
        self.with_sync(|sync, ctx| sync.queue(ctx, peer, circle));
    }

    /// Lends the sync driver what it needs for one call, then does what it asks.
    fn with_sync<R>(
        &mut self,
        f: impl FnOnce(&mut SyncDriver, &mut sync_driver::Ctx<'_>) -> R,
    ) -> R {
        let held = &self.held;
        let held_keys = |circle: &str| held.keys_of(circle);
        let mut ctx = sync_driver::Ctx {
            rr: &mut self.swarm.behaviour_mut().sync,
            connected: &self.connected,
            circles: &self.circles,
            held: &held_keys,
        };
        let r = f(&mut self.syncer, &mut ctx);
        self.apply_sync_effects();
        r
    }

    fn apply_sync_effects(&mut self) {
        loop {
            let effects = self.syncer.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                match effect {
                    Effect::Penalise(peer) => {
                        self.liars.insert(peer);
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .set_application_score(&peer, LIAR_SCORE);
                    }
                    Effect::Seen { peer, circle } => self.note_seen(peer, &circle),
                    Effect::FetchedOurs(peer) => self.mark_seen(peer),
                    Effect::Cascade { circle, except } => {
                        self.sync_circle_with_all(&circle, Some(except))
                    }
                    Effect::Future(posts) => {
                        for p in posts {
                            self.hold(p);
                        }
                    }
                }
            }
        }
    }

    /// A peer's gossip link died (its send queue stayed full): close the connection
    /// and dial it again, so both sides get fresh gossipsub streams; sync on connect
    /// brings over what the dead link lost. Without an address to dial back, the
    /// connection is left alone.
    fn repair_link(&mut self, peer: PeerId) {
        let mut addrs: Vec<Multiaddr> = self
            .connected
            .get(&peer)
            .filter(|c| c.outbound && !c.relayed)
            .map(|c| c.address.clone())
            .into_iter()
            .collect();
        addrs.extend(self.book.addrs_of(&peer));
        if addrs.is_empty() {
            warn!(%peer, "gossip link to peer looks dead (send queue full), and there is no address to reconnect to");
            return;
        }
        warn!(%peer, "gossip link to peer looks dead (send queue full for {} heartbeats); reconnecting", links::DEAD_AFTER);
        self.redial.insert(peer, addrs);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Keeps a post dated ahead of our clock aside until its time.
    fn hold(&mut self, signed: aidmesh_proto::SignedPost) {
        let now = now_ms();
        let author = signed.decode_post().ok().map(|p| (p.author, p.updated_at));
        match self.held.offer(signed, now) {
            Ok(ahead) => {
                debug!(
                    ahead_ms = ahead,
                    "holding a post dated ahead of our clock until its time"
                );
                if let Some((author, stamp)) = author {
                    self.skew_sample(author, stamp, now);
                }
            }
            Err(held::NotHeld::Full) => {
                debug!("too many future-dated posts held; dropping one")
            }
            Err(_) => {}
        }
    }

    /// Stores the held posts whose time has come.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let now = now_ms();
        let due = self.held.due(now);
        if due.is_empty() {
            return;
        }
        let decoded: Vec<Option<aidmesh_proto::Post>> =
            due.iter().map(|s| s.decode_post().ok()).collect();
        match self.store.insert_batch(due, now) {
            Ok(outcomes) => {
                for (outcome, post) in outcomes.into_iter().zip(decoded) {
                    if let (Ok(o), Some(post)) = (outcome, post) {
                        announce(&self.events, &post, o, Origin::Sync);
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot store posts held until their time"),
        }
    }

    fn skew_sample(&mut self, author: aidmesh_proto::AuthorKey, stamp: u64, now: u64) {
        if let Some(e) = self.skew.sample(author, stamp, now) {
            if e.skewed {
                warn!(
                    peers_ahead_ms = e.peers_ahead_ms,
                    samples = e.samples,
                    "peers' posts are consistently {} our clock by {}; check this machine's clock (posts more than 5 minutes ahead are held until their time)",
                    if e.peers_ahead_ms > 0 { "ahead of" } else { "behind" },
                    humantime::format_duration(Duration::from_secs(e.peers_ahead_ms.unsigned_abs() / 1000)),
                );
            } else {
                info!(
                    peers_ahead_ms = e.peers_ahead_ms,
                    "peers' clocks agree with ours again"
                );
            }
        }
    }

    /// Sets a peer's gossip application score for its relay-rate strikes (a peer that
    /// broke the sync protocol keeps its harsher score).
    fn set_strike_score(&mut self, peer: PeerId, score: f64) {
        if !self.liars.contains(&peer) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, score);
        }
    }

    /// Judges a gossiped post: whether gossipsub may relay it, and the post to store
    /// when it is new here. Only valid posts that change the store (new, or a newer
    /// revision, by an author not blocked here), within the sending peer's and the
    /// author's relay rates, are accepted and relayed.
    fn on_gossip(
        &mut self,
        from: &PeerId,
        message: &gossipsub::Message,
    ) -> (MessageAcceptance, Option<Box<aidmesh_proto::VerifiedPost>>) {
        if let Some(circle) = gossip::records_circle_of(&message.topic) {
            return (self.on_gossip_record(from, circle, &message.data), None);
        }
        let Some(circle) = gossip::circle_of(&message.topic) else {
            return (MessageAcceptance::Reject, None);
        };
        if !self.circles.contains(circle) {
            return (MessageAcceptance::Ignore, None);
        }
        let at = Instant::now();
        // The peer's rate first: it costs nothing, and a flood never reaches the
        // signature check.
        let verdict = self.relay_rate.peer(from, at);
        if verdict != relay_rate::Verdict::Pass {
            if let Some(score) = self.relay_rate.strike(*from, &verdict, at) {
                debug!(peer = %from, score, "peer over its gossip rate; lowering its score");
                self.set_strike_score(*from, score);
            }
            return (MessageAcceptance::Ignore, None);
        }
        let now = now_ms();
        let verified = match gossip::judge(&message.data, circle, now) {
            gossip::Verdict::Valid(v) => v,
            gossip::Verdict::Reject(reason) => {
                warn!(peer = %from, %reason, "rejected gossip message; penalising the sender");
                return (MessageAcceptance::Reject, None);
            }
            gossip::Verdict::Ahead(signed) => {
                self.hold(*signed);
                return (MessageAcceptance::Ignore, None);
            }
            gossip::Verdict::Ignore(reason) => {
                debug!(peer = %from, %reason, "ignored gossip message");
                return (MessageAcceptance::Ignore, None);
            }
        };
        match self.store.would_change(&verified) {
            Ok(true) => {
                let post = verified.post();
                let verdict = self.relay_rate.author(&post.author, at);
                if verdict != relay_rate::Verdict::Pass {
                    debug!(peer = %from, "author over its relay rate; not relaying");
                    if let Some(score) = self.relay_rate.strike(*from, &verdict, at) {
                        self.set_strike_score(*from, score);
                    }
                    return (MessageAcceptance::Ignore, None);
                }
                if !self.writer.has_room() {
                    debug!(peer = %from, "the store's write queue is full; not relaying");
                    return (MessageAcceptance::Ignore, None);
                }
                let (author, stamp) = (post.author, post.updated_at);
                self.skew_sample(author, stamp, now);
                (MessageAcceptance::Accept, Some(verified))
            }
            Ok(false) => (MessageAcceptance::Ignore, None),
            Err(e) => {
                warn!(error = %e, "cannot read the store for a gossiped post");
                (MessageAcceptance::Ignore, None)
            }
        }
    }
}

impl Network {
    /// Judges a gossiped membership or moderation record: kept (and relayed) when it
    /// takes effect here; a record that breaks the rules is the sender's fault.
    fn on_gossip_record(&mut self, from: &PeerId, circle: &str, data: &[u8]) -> MessageAcceptance {
        if !self.circles.contains(circle) {
            return MessageAcceptance::Ignore;
        }
        let verdict = self.relay_rate.peer(from, Instant::now());
        if verdict != relay_rate::Verdict::Pass {
            return MessageAcceptance::Ignore;
        }
        let signed = match aidmesh_proto::circle::SignedRecord::decode(data) {
            Ok(s) => s,
            Err(e) => {
                warn!(peer = %from, error = %e, "malformed record on gossip; penalising the sender");
                return MessageAcceptance::Reject;
            }
        };
        if !signed.decode_record().is_ok_and(|r| r.circle == circle) {
            warn!(peer = %from, "record for another circle on a circle's topic; penalising the sender");
            return MessageAcceptance::Reject;
        }
        match self.membrane.ingest(vec![signed], now_ms()) {
            Ok(i) if !i.accepted.is_empty() => {
                if aidmesh_proto::circle::is_closed(circle) {
                    // Posts of members admitted just now may have been refused.
                    let (peer, circle) = (*from, circle.to_string());
                    self.with_sync(|sync, ctx| sync.queue_again(ctx, peer, circle));
                }
                MessageAcceptance::Accept
            }
            Ok(i) => match i.invalid.first() {
                Some(aidmesh_proto::circle::RecordError::InFuture) | None => {
                    MessageAcceptance::Ignore
                }
                Some(e) => {
                    warn!(peer = %from, error = %e, "invalid record on gossip; penalising the sender");
                    MessageAcceptance::Reject
                }
            },
            Err(e) => {
                warn!(error = %e, "cannot store a gossiped record");
                MessageAcceptance::Ignore
            }
        }
    }
}

/// Tells subscribers about a store change.
pub(crate) fn announce(
    events: &Bus,
    post: &aidmesh_proto::Post,
    outcome: Inserted,
    origin: Origin,
) {
    let event = match outcome {
        Inserted::New => Event::PostAdded {
            post: Box::new(post.clone()),
            origin,
        },
        Inserted::Updated { previous } => Event::PostUpdated {
            post: Box::new(post.clone()),
            previous_revision: previous,
            origin,
        },
        Inserted::Duplicate | Inserted::Stale { .. } => return,
    };
    events.send(event);
}

/// Totals of libp2p's bandwidth counters (outbound, inbound), read through the
/// Prometheus text encoding, which is the registry's only read interface.
fn bandwidth(registry: &libp2p::metrics::Registry) -> (u64, u64) {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return (0, 0);
    }
    let (mut out, mut inn) = (0u64, 0u64);
    for line in text
        .lines()
        .filter(|l| l.contains("bandwidth") && !l.starts_with('#'))
    {
        let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if line.contains("direction=\"Outbound\"") {
            out += v as u64;
        } else if line.contains("direction=\"Inbound\"") {
            inn += v as u64;
        }
    }
    (out, inn)
}

/// Whether an address is on this machine only.
pub fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// Fails if `addr` names a fixed port that another process listens on. libp2p sets
/// `SO_REUSEPORT` on its listeners, so a second node on the same TCP port would start
/// and share it (dials then reach either node at random); a plain bind, which the
/// kernel refuses on a port in use, tells first.
fn refuse_port_in_use(addr: &Multiaddr) -> Result<(), Error> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(n) => port = Some((n, true)),
            Protocol::Udp(n) => port = Some((n, false)),
            _ => {}
        }
    }
    let (Some(ip), Some((port, tcp))) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    let at = std::net::SocketAddr::new(ip, port);
    let probe = if tcp {
        std::net::TcpListener::bind(at).map(drop)
    } else {
        std::net::UdpSocket::bind(at).map(drop)
    };
    match probe {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::Listen {
            addr: addr.clone(),
            reason: format!(
                "{} port {port} is already in use (another aidmesh node?); stop it or choose another port with --listen",
                if tcp { "TCP" } else { "UDP" }
            ),
        }),
        // Anything else (address not on this machine, no permission) is for the real
        // listener to report.
        _ => Ok(()),
    }
}

fn listen_reason<E: std::error::Error>(e: &libp2p::TransportError<E>) -> String {
    match e {
        libp2p::TransportError::MultiaddrNotSupported(a) => {
            format!("address not supported ({a}); use e.g. /ip4/0.0.0.0/tcp/7651 or /ip4/0.0.0.0/udp/7651/quic-v1")
        }
        libp2p::TransportError::Other(e) => {
            let mut msg = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                let s = s.to_string();
                if !msg.contains(&s) {
                    msg = format!("{msg}: {s}");
                }
                source = source.and_then(|e| e.source());
            }
            msg
        }
    }
}
