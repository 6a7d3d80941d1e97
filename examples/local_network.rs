//! Three aidmesh nodes in one process, talking over loopback TCP: an offer posted on
//! node 1 reaches nodes 2 and 3, and so does its withdrawal.
//!
//! It shows the library API a program embedding aidmesh uses: [`Node::start`] with a
//! [`NodeConfig`], and on the [`NodeHandle`]: `subscribe` (events), `publish`,
//! `withdraw`, `get`, `query`, `peers`, `status` and `shutdown`.
//!
//! Each node has its own temporary data dir (deleted at the end) and listens on
//! `/ip4/127.0.0.1/tcp/0`, any free port. mDNS and the Kademlia DHT are off, so the
//! nodes know each other only through their bootstrap addresses. By default they form
//! a line, 1 – 2 – 3: node 3 hears of node 1's posts only because node 2 relays them.
//! `--topology star` makes nodes 2 and 3 both join through node 1 instead.
//!
//! Run it:
//!
//! ```sh
//! cargo run --example local_network
//! cargo run --example local_network -- --topology star --timeout 60
//! RUST_LOG=aidmesh=debug cargo run --example local_network   # with the nodes' logs
//! cargo run --example local_network -- --help
//! ```
//!
//! It exits 0 when everything arrived everywhere, and non-zero with an error naming
//! what did not arrive when a step takes longer than `--timeout` seconds (default 30).
//! It only ever waits for events, never for a fixed time, and uses no fixed ports, so
//! CI runs it as a test.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use aidmesh::proto::{Category, Kind, Post, PostId, Status};
use aidmesh::store::StatusFilter;
use aidmesh::{Config, DataDir, Draft, Event, Node, NodeConfig, NodeHandle, Origin, Query};
use anyhow::{bail, ensure, Context};
use clap::{Parser, ValueEnum};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::broadcast::{self, error::RecvError};
use tracing_subscriber::EnvFilter;

/// Runs three aidmesh nodes on loopback, posts an offer on node 1, watches it and its
/// withdrawal reach nodes 2 and 3, then shuts everything down.
#[derive(Parser, Debug)]
struct Args {
    /// How the nodes connect
    #[arg(long, value_enum, default_value_t = Topology::Line)]
    topology: Topology,

    /// Seconds to wait for each step (connections, the offer, the withdrawal) before
    /// giving up with an error
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    /// Title of the offer node 1 posts
    #[arg(long, default_value = "Soup for ten, tonight")]
    title: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Topology {
    /// 1 – 2 – 3: node 2 joins through node 1, node 3 through node 2 (node 2 relays)
    Line,
    /// 2 – 1 – 3: nodes 2 and 3 both join through node 1
    Star,
}

/// A running node with its event receiver, subscribed before anything it should hear
/// about can happen.
struct Member {
    name: &'static str,
    node: NodeHandle,
    events: broadcast::Receiver<Event>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    // Declared before the nodes so they outlive them (dropped last).
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let mut members = Vec::new();
    let outcome = run(&args, &dirs, &mut members).await;

    // Shut down whatever started, whether or not the run succeeded.
    for m in &members {
        m.node
            .shutdown()
            .await
            .with_context(|| format!("shutting down {}", m.name))?;
    }
    outcome?;
    println!("all three nodes shut down cleanly");
    Ok(())
}

async fn run(
    args: &Args,
    dirs: &[tempfile::TempDir; 3],
    members: &mut Vec<Member>,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);

    // ---- start the network ----------------------------------------------------------
    let one = start("node 1", &dirs[0], Vec::new()).await?;
    let one_addr = address_of(&one.node).await?;
    println!("node 1 {} listening on {one_addr}", one.node.peer_id());
    members.push(one);

    let two = start("node 2", &dirs[1], vec![one_addr.clone()]).await?;
    let two_addr = address_of(&two.node).await?;
    println!("node 2 {} listening on {two_addr}", two.node.peer_id());
    members.push(two);

    let three_bootstrap = match args.topology {
        Topology::Line => two_addr,
        Topology::Star => one_addr,
    };
    let three = start("node 3", &dirs[2], vec![three_bootstrap]).await?;
    println!(
        "node 3 {} listening on {}",
        three.node.peer_id(),
        address_of(&three.node).await?
    );
    members.push(three);

    // Wait for the connections from the side that was already subscribed when they
    // opened, so no `PeerConnected` event can be missed.
    let (n2, n3) = (members[1].node.peer_id(), members[2].node.peer_id());
    match args.topology {
        Topology::Line => {
            wait_connected(&mut members[0], &[n2], timeout).await?;
            wait_connected(&mut members[1], &[n3], timeout).await?;
        }
        Topology::Star => wait_connected(&mut members[0], &[n2, n3], timeout).await?,
    }
    for m in members.iter() {
        let peers = m.node.peers().await?;
        let names: Vec<&str> = peers.iter().map(|p| name_of(members, &p.peer_id)).collect();
        println!("{} is connected to {}", m.name, names.join(" and "));
    }

    // ---- post an offer on node 1 and watch it arrive ---------------------------------
    let draft = Draft {
        body: "Lentil soup, bring a container. Door code 42.".into(),
        tags: vec!["soup".into(), "vegan".into()],
        location: Some("u33dc".into()),
        quantity: Some(10),
        contact: Some("knock at flat 3".into()),
        ..Draft::new(Kind::Offer, Category::Food, args.title.as_str())
    };
    let started = Instant::now();
    let offer = members[0].node.publish(draft).await?;
    println!(
        "\nnode 1 posted offer {} ({:?}, revision {})",
        offer.id, offer.title, offer.revision
    );
    for m in &mut members[1..] {
        let (post, origin) = wait_for_post(m, &offer.id, timeout, "the offer", |p| {
            p.status == Status::Open
        })
        .await?;
        ensure!(
            post == offer,
            "{} received a different post than node 1 made",
            m.name
        );
        println!(
            "  arrived on {} after {:?} by {origin:?}: {} {} \"{}\" near {}",
            m.name,
            started.elapsed(),
            post.kind,
            post.category,
            post.title,
            post.location.as_deref().unwrap_or("?")
        );
        // It is now in the node's store: browsing open food offers finds it.
        let found = m.node.query(&Query {
            kind: Some(Kind::Offer),
            category: Some(Category::Food),
            ..Query::default()
        })?;
        ensure!(
            found.iter().any(|p| p.post().id == offer.id),
            "{} stored the offer but a query does not find it",
            m.name
        );
    }

    // ---- withdraw it and watch the withdrawal arrive ---------------------------------
    let started = Instant::now();
    let tombstone = members[0].node.withdraw(&offer.id).await?;
    println!(
        "\nnode 1 withdrew the offer (revision {}, body and contact dropped)",
        tombstone.revision
    );
    for m in &mut members[1..] {
        let (post, origin) = wait_for_post(m, &offer.id, timeout, "the withdrawal", |p| {
            p.status == Status::Withdrawn
        })
        .await?;
        ensure!(
            post.revision == tombstone.revision && post.body.is_empty() && post.contact.is_none(),
            "{} received a withdrawal that is not node 1's tombstone",
            m.name
        );
        let stored = m
            .node
            .get(&offer.id)?
            .context("the tombstone is not stored")?;
        let open = m.node.query(&Query::default())?;
        let all = m.node.query(&Query {
            status: StatusFilter::Any,
            ..Query::default()
        })?;
        println!(
            "  arrived on {} after {:?} by {origin:?}: stored as {} revision {}; \
             {} open posts, {} in all",
            m.name,
            started.elapsed(),
            stored.post().status,
            stored.post().revision,
            open.len(),
            all.len()
        );
        ensure!(
            open.iter().all(|p| p.post().id != offer.id),
            "{} still lists the withdrawn offer as open",
            m.name
        );
    }

    // Only the author's node may change a post.
    match members[1].node.withdraw(&offer.id).await {
        Err(aidmesh::node::Error::NotAuthor(_)) => {
            println!("\nnode 2 may not withdraw node 1's post, as expected")
        }
        other => bail!("node 2 withdrawing node 1's post should fail, got {other:?}"),
    }

    for m in members.iter() {
        let s = m.node.status().await?;
        println!(
            "{}: {} peers, {} posts stored, {} bytes sent, {} received",
            m.name, s.connected_peers, s.posts, s.bytes_sent, s.bytes_received
        );
    }
    Ok(())
}

/// Starts a node on loopback in `dir` and subscribes to its events at once.
async fn start(
    name: &'static str,
    dir: &tempfile::TempDir,
    bootstrap: Vec<Multiaddr>,
) -> anyhow::Result<Member> {
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.network.bootstrap = bootstrap;
    config.network.mdns = false;
    config.network.kademlia = false;
    let node = Node::start(NodeConfig {
        data_dir: data_dir(dir.path())?,
        config,
    })
    .await
    .with_context(|| format!("starting {name}"))?;
    let events = node.subscribe();
    Ok(Member { name, node, events })
}

fn data_dir(path: &Path) -> anyhow::Result<DataDir> {
    Ok(DataDir::resolve(Some(path.to_path_buf()))?)
}

/// The node's first listen address, ending in `/p2p/<peer id>`: what others bootstrap
/// to.
async fn address_of(node: &NodeHandle) -> anyhow::Result<Multiaddr> {
    node.status()
        .await?
        .listen_addrs
        .into_iter()
        .next()
        .context("the node has no listen address")
}

fn name_of<'a>(members: &'a [Member], peer: &PeerId) -> &'a str {
    members
        .iter()
        .find(|m| &m.node.peer_id() == peer)
        .map_or("an unknown peer", |m| m.name)
}

/// Waits until `m` has seen a `PeerConnected` event for every peer in `peers`.
async fn wait_connected(m: &mut Member, peers: &[PeerId], timeout: Duration) -> anyhow::Result<()> {
    let mut missing: HashSet<PeerId> = peers.iter().copied().collect();
    let what = format!("{} to connect to {} peer(s)", m.name, peers.len());
    next_event(m, timeout, &what, |e| {
        if let Event::PeerConnected { peer_id, .. } = e {
            missing.remove(peer_id);
        }
        missing.is_empty().then_some(())
    })
    .await
}

/// Waits until `m` stores a revision of post `id` that `accept` likes; returns it and
/// how it came (gossip or catch-up sync).
async fn wait_for_post(
    m: &mut Member,
    id: &PostId,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&Post) -> bool,
) -> anyhow::Result<(Post, Origin)> {
    let what = format!("{what} to reach {}", m.name);
    next_event(m, timeout, &what, |e| match e {
        Event::PostAdded { post, origin } | Event::PostUpdated { post, origin, .. }
            if &post.id == id && accept(post) =>
        {
            Some(((**post).clone(), *origin))
        }
        _ => None,
    })
    .await
}

/// Reads `m`'s events until `pick` returns `Some`, for at most `timeout`.
async fn next_event<T>(
    m: &mut Member,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let wait = async {
        loop {
            match m.events.recv().await {
                Ok(e) => {
                    if let Some(t) = pick(&e) {
                        return Ok(t);
                    }
                }
                // Only if thousands of events pile up unread; say so, keep going.
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(node = m.name, missed = n, "event receiver fell behind")
                }
                Err(RecvError::Closed) => bail!("{} stopped while waiting for {what}", m.name),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .with_context(|| format!("timed out after {timeout:?} waiting for {what}"))?
}
