//! Helpers shared by the integration tests.
#![allow(dead_code)]

use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status, VerifiedPost};
use aidmesh::Identity;

pub const MINUTE: u64 = 60_000;
pub const DAY: u64 = 86_400_000;
/// A fixed "now" for store tests: 2026-06-01T00:00:00Z.
pub const NOW: u64 = 1_780_272_000_000;

pub mod cli;

/// A deterministic identity per number.
pub fn identity(n: u8) -> Identity {
    Identity::from_secret([n; 32])
}

/// An open offer by `who`, numbered `n`, created `age` ms before [`NOW`].
pub fn post(who: &Identity, n: u32, age: u64) -> Post {
    let author = who.author();
    let mut nonce = [0u8; 16];
    nonce[..4].copy_from_slice(&n.to_be_bytes());
    let nonce = Nonce(nonce);
    Post {
        id: PostId::derive(&author, &nonce),
        author,
        nonce,
        revision: 1,
        circle: "commons".into(),
        kind: Kind::Offer,
        status: Status::Open,
        category: Category::Food,
        title: format!("Post number {n}"),
        body: String::new(),
        tags: vec![],
        location: None,
        quantity: None,
        contact: None,
        created_at: NOW - age,
        updated_at: NOW - age,
        expires_at: NOW - age + 14 * DAY,
    }
}

pub fn sign(who: &Identity, post: &Post) -> SignedPost {
    post.sign(who.signing_key()).expect("test post signs")
}

pub fn verified(who: &Identity, post: &Post) -> VerifiedPost {
    sign(who, post).verify(NOW).expect("test post is valid")
}

// ---- multi-node helpers -------------------------------------------------------------

use std::future::Future;
use std::time::Duration;

use aidmesh::{Config, DataDir, Event, Node, NodeConfig, NodeHandle};
use libp2p::Multiaddr;
use tokio::sync::broadcast;

/// Generous: these wait for events, they do not time anything.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A node on 127.0.0.1 TCP port 0, mDNS and the DHT off (so the topology is exactly
/// the one the test builds), in `dir`.
pub async fn spawn_node(
    dir: &std::path::Path,
    bootstrap: &[Multiaddr],
    circles: &[&str],
) -> NodeHandle {
    spawn_node_with(dir, bootstrap, circles, |_| {}).await
}

/// [`spawn_node`] with a chance to change the configuration.
pub async fn spawn_node_with(
    dir: &std::path::Path,
    bootstrap: &[Multiaddr],
    circles: &[&str],
    tweak: impl FnOnce(&mut Config),
) -> NodeHandle {
    // Logs show with a failing test's output when RUST_LOG is set.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    config.network.bootstrap = bootstrap.to_vec();
    config.network.mdns = false;
    config.network.kademlia = false;
    config.network.circles = circles.iter().map(|c| c.to_string()).collect();
    tweak(&mut config);
    Node::start(NodeConfig {
        data_dir: DataDir::resolve(Some(dir.to_path_buf())).unwrap(),
        config,
    })
    .await
    .expect("node starts")
}

/// The node's first full listen address (with `/p2p/<id>`).
pub async fn addr_of(node: &NodeHandle) -> Multiaddr {
    node.status().await.unwrap().listen_addrs[0].clone()
}

/// Waits for an event that `pick` maps to `Some`.
pub async fn wait_for<T>(
    rx: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("node closed while waiting for {what}")
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `cond` until it holds (for state that has no event of its own).
pub async fn wait_until<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until_within(what, TIMEOUT, cond).await
}

/// [`wait_until`] with another timeout.
pub async fn wait_until_within<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let ok = tokio::time::timeout(timeout, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "timed out waiting until {what}");
}

/// Waits until `node` is connected to `peer`.
pub async fn wait_connected(node: &NodeHandle, peer: libp2p::PeerId) {
    wait_until("peers connect", || async {
        node.peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == peer)
    })
    .await;
}

/// Picks the post-added or post-updated event for `id` with revision `rev`.
pub fn post_event(e: &Event, id: &PostId, rev: u32) -> Option<Post> {
    match e {
        Event::PostAdded { post, .. } | Event::PostUpdated { post, .. }
            if &post.id == id && post.revision == rev =>
        {
            Some((**post).clone())
        }
        _ => None,
    }
}

// ---- a raw gossipsub peer, for sending what no aidmesh node would ------------------

use libp2p::futures::StreamExt;
use libp2p::gossipsub;
use libp2p::request_response::{self, ProtocolSupport};
use tokio::sync::mpsc;

/// A bare libp2p swarm with only gossipsub, connected to one node: it publishes any
/// bytes it is given and reports every message it receives.
pub struct RawPeer {
    pub publish: mpsc::UnboundedSender<Vec<u8>>,
    pub received: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// A bare swarm with only gossipsub, subscribed to `circle` and dialled to `dial`;
/// returned once it sees the node's subscription, so a publish has somewhere to go.
pub async fn gossip_swarm(
    dial: Multiaddr,
    circle: &str,
    idle: Duration,
) -> (libp2p::Swarm<gossipsub::Behaviour>, gossipsub::IdentTopic) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Strict)
                .max_transmit_size(aidmesh::net::gossip::MAX_TRANSMIT_SIZE)
                .heartbeat_initial_delay(Duration::from_millis(100))
                .build()
                .unwrap();
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
                .unwrap()
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    let topic = aidmesh::net::gossip::topic(circle);
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    swarm.dial(dial).unwrap();
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let libp2p::swarm::SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) =
                swarm.select_next_some().await
            {
                break;
            }
        }
    })
    .await
    .expect("raw peer sees the node's subscription");
    (swarm, topic)
}

/// A bare swarm that speaks only `/aidmesh/sync/1`, for peers that answer sync
/// requests as the test decides.
pub fn sync_swarm() -> libp2p::Swarm<request_response::Behaviour<aidmesh::sync::Codec>> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                aidmesh::sync::Codec::default(),
                [(aidmesh::sync::PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

pub async fn raw_peer(dial: Multiaddr, circle: &str) -> RawPeer {
    let (mut swarm, topic) = gossip_swarm(dial, circle, Duration::from_secs(60)).await;

    let (publish_tx, mut publish_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (received_tx, received_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                data = publish_rx.recv() => match data {
                    Some(d) => { swarm.behaviour_mut().publish(topic.clone(), d).unwrap(); }
                    None => break,
                },
                event = swarm.select_next_some() => {
                    if let libp2p::swarm::SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) = event {
                        let _ = received_tx.send(message.data);
                    }
                }
            }
        }
    });
    RawPeer {
        publish: publish_tx,
        received: received_rx,
    }
}
