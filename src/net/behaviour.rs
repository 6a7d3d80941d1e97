//! The composed libp2p behaviour of a node and how it is built.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour};
use libp2p::{gossipsub, identify, mdns, ping, request_response, StreamProtocol};

use super::gossip;

/// Our own Kademlia protocol, so aidmesh never joins the IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/aidmesh/kad/1.0.0");
/// Identify protocol version: peers with another major version are not aidmesh/1.
pub const IDENTIFY_PROTOCOL: &str = "/aidmesh/1.0.0";

/// How long one sync request may take before the session is abandoned.
const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub gossipsub: gossipsub::Behaviour,
    pub kad: Toggle<kad::Behaviour<MemoryStore>>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub sync: request_response::Behaviour<crate::sync::Codec>,
}

/// Settings the behaviour needs.
pub(crate) struct Settings {
    pub mdns: bool,
    pub kademlia: bool,
    pub kademlia_server: Option<bool>,
    pub heartbeat: Duration,
}

impl Behaviour {
    pub fn new(key: &Keypair, settings: &Settings) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip::config(settings.heartbeat)?,
        )
        .map_err(str::to_string)?;
        let (params, thresholds) = gossip::score_params();
        gossipsub.with_peer_score(params, thresholds)?;

        let mut kad = kad::Behaviour::with_config(
            peer_id,
            MemoryStore::new(peer_id),
            kad::Config::new(KAD_PROTOCOL),
        );
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
            gossipsub,
            kad: settings.kademlia.then_some(kad).into(),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            mdns: mdns.into(),
            sync: request_response::Behaviour::with_codec(
                crate::sync::Codec,
                [(
                    crate::sync::PROTOCOL,
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(SYNC_REQUEST_TIMEOUT),
            ),
        })
    }
}
