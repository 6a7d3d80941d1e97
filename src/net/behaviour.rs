//! The composed libp2p behaviour of a node and how it is built.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour};
use libp2p::{
    autonat, connection_limits, dcutr, gossipsub, identify, mdns, memory_connection_limits, ping,
    relay, request_response, StreamProtocol,
};

use super::gossip;
use crate::config::RelayConfig;

/// Our own Kademlia protocol, so aidmesh never joins the IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/aidmesh/kad/1.0.0");
/// Identify protocol version: peers with another major version are not aidmesh/1.
pub const IDENTIFY_PROTOCOL: &str = "/aidmesh/1.0.0";

/// How long one sync request may take before the session is abandoned.
const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one message push or fetch may take.
const MESSAGE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Incoming connections still in their handshake: a flood of raw TCP connections
/// stops here (the rest are closed as soon as they are accepted), leaving file
/// descriptors for the local API and for real peers.
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Dials in progress at once.
pub const MAX_PENDING_OUTGOING: u32 = 64;
/// Established incoming connections.
pub const MAX_ESTABLISHED_INCOMING: u32 = 256;
/// Established connections in all.
pub const MAX_ESTABLISHED: u32 = 384;
/// Connections to one peer (a direct and a relayed one, and a spare while a dial
/// races an incoming connection).
pub const MAX_ESTABLISHED_PER_PEER: u32 = 4;
/// New connections are refused while the process uses more than this share of the
/// machine's memory.
pub const MAX_MEMORY_SHARE: f64 = 0.8;

/// The connection limits every node runs with.
fn connection_limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
        .with_max_pending_outgoing(Some(MAX_PENDING_OUTGOING))
        .with_max_established_incoming(Some(MAX_ESTABLISHED_INCOMING))
        .with_max_established(Some(MAX_ESTABLISHED))
        .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER))
}

/// Every protocol a node speaks. The limits come first: a connection they refuse
/// costs the other behaviours nothing.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub memory: memory_connection_limits::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub kad: Toggle<kad::Behaviour<MemoryStore>>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub sync: request_response::Behaviour<crate::sync::Codec>,
    /// Private message delivery (`/aidmesh/msg/1`), driven by `messages::delivery`.
    pub messages: request_response::Behaviour<crate::messages::protocol::Codec>,
    /// Catch-up of membership and moderation records (`/aidmesh/records/1`), driven
    /// by `net::records`.
    pub records: request_response::Behaviour<super::records::Codec>,
    pub autonat: autonat::Behaviour,
    pub relay_client: relay::client::Behaviour,
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
}

/// Settings the behaviour needs.
pub(crate) struct Settings {
    pub mdns: bool,
    pub kademlia: bool,
    pub kademlia_server: Option<bool>,
    pub heartbeat: Duration,
    /// Serve circuit relay v2 with these limits.
    pub relay: Option<RelayConfig>,
    /// Let AutoNAT probe and answer for private (RFC 1918) addresses.
    pub autonat_only_global_ips: bool,
}

/// Our limits over libp2p's defaults (which keep their per-peer and per-IP rate
/// limiters).
fn relay_config(limits: &RelayConfig) -> relay::Config {
    relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: limits.max_reservations_per_peer,
        reservation_duration: Duration::from_secs(limits.reservation_duration_secs),
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: Duration::from_secs(limits.max_circuit_duration_secs),
        max_circuit_bytes: limits.max_circuit_bytes,
        ..relay::Config::default()
    }
}

/// AutoNAT: first probe soon after start, retry often while the answer is unsure.
fn autonat_config(only_global_ips: bool) -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(5),
        retry_interval: Duration::from_secs(20),
        throttle_server_period: Duration::from_secs(30),
        only_global_ips,
        ..autonat::Config::default()
    }
}

impl Behaviour {
    pub fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        settings: &Settings,
    ) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip::config(settings.heartbeat)?,
        )
        .map_err(str::to_string)?;
        let (params, thresholds) = gossip::score_params();
        gossipsub.with_peer_score(params, thresholds)?;

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config
            .set_provider_record_ttl(Some(super::discovery::RECORD_TTL))
            .set_provider_publication_interval(Some(super::discovery::PUBLICATION_INTERVAL));
        let mut kad = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_config);
        kad.set_mode(settings.kademlia_server.map(|server| {
            if server {
                kad::Mode::Server
            } else {
                kad::Mode::Client
            }
        }));

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                .with_agent_version(format!("aidmesh/{}", env!("CARGO_PKG_VERSION"))),
        );
        let mdns = if settings.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| format!("mDNS: {e}"))?,
            )
        } else {
            None
        };
        Ok(Self {
            limits: connection_limits::Behaviour::new(connection_limits()),
            memory: memory_connection_limits::Behaviour::with_max_percentage(MAX_MEMORY_SHARE),
            gossipsub,
            kad: settings.kademlia.then_some(kad).into(),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            mdns: mdns.into(),
            sync: request_response::Behaviour::with_codec(
                crate::sync::Codec::default(),
                [(
                    crate::sync::PROTOCOL,
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(SYNC_REQUEST_TIMEOUT),
            ),
            messages: request_response::Behaviour::with_codec(
                crate::messages::protocol::Codec::default(),
                [(
                    crate::messages::protocol::PROTOCOL,
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(MESSAGE_REQUEST_TIMEOUT),
            ),
            records: request_response::Behaviour::with_codec(
                super::records::Codec::default(),
                [(
                    super::records::PROTOCOL,
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(super::records::REQUEST_TIMEOUT),
            ),
            autonat: autonat::Behaviour::new(
                peer_id,
                autonat_config(settings.autonat_only_global_ips),
            ),
            relay_client,
            relay: settings
                .relay
                .as_ref()
                .map(|limits| relay::Behaviour::new(peer_id, relay_config(limits)))
                .into(),
            dcutr: dcutr::Behaviour::new(peer_id),
        })
    }
}
