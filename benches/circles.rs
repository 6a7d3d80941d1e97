//! Circle discovery simulation: many real aidmesh nodes in one process, each in 1–3 of
//! 20 circles, connected only through a few public nodes that are in none of them.
//! Prints one JSON object per line, with the goal beside each figure; a program that
//! prints figures, not a timed test (not run in CI).
//!
//! Run: `cargo bench --bench circles` (50 members, 3 public nodes), or e.g.
//! `cargo bench --bench circles -- --members 200 --public 5 --seed 7`.
//!
//! For each mode (`discovery` off, then on), with fresh nodes:
//! 1. P public nodes (`commons` only, DHT servers), bootstrapped to each other.
//! 2. M members, each in 1–3 seeded random circles of 20, bootstrapped to one random
//!    public node. A member is reachable at its loopback address (given as its external
//!    address, as a relayed address would be) but is a DHT client, so no routing table
//!    holds it: the only ways to meet another member are the circle records.
//! 3. `time_to_circle_peer`: from the last member's start until every member of every
//!    circle with at least two members has at least one of them connected (or the
//!    60 s limit, then the share that had one is printed).
//! 4. `delivered_to_all_in_10s`: one post per (member, circle) pair, all published at
//!    once; the share of posts that reached every other member of their circle within
//!    10 s (gossip, or catch-up sync on connect).
//!
//! Members' ports are picked by binding port 0 and releasing it, because a provider
//! record needs the address before the node starts; a rare collision shows as a start
//! error.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aidmesh::proto::{Category, Kind, PostId};
use aidmesh::{Config, DataDir, Draft, Event, Node, NodeConfig, NodeHandle};
use anyhow::{Context, Result};
use libp2p::Multiaddr;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

const CIRCLES: usize = 20;
const CONNECT_LIMIT: Duration = Duration::from_secs(60);
const DELIVERY_WINDOW: Duration = Duration::from_secs(10);
/// Goals: every member has a circle peer within 30 s; 99 % of posts reach every member
/// of their circle within 10 s.
const GOAL_CONNECT_MS: u64 = 30_000;
const GOAL_DELIVERED: f64 = 0.99;

struct Args {
    members: usize,
    public: usize,
    seed: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        members: 50,
        public: 3,
        seed: 0x00c1_5c1e,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().context("flag needs a value");
        match flag.as_str() {
            "--members" => a.members = value()?.parse()?,
            "--public" => a.public = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn emit(mode: &str, metric: &str, value: impl Into<Value>, unit: &str, goal: Option<Value>) {
    let mut line = serde_json::json!({
        "bench": "circles", "mode": mode, "metric": metric, "value": value.into(), "unit": unit,
    });
    if let Some(g) = goal {
        line["goal"] = g;
    }
    println!("{line}");
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn start(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> Result<NodeHandle> {
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.network.mdns = false;
    config.network.kademlia = true;
    tweak(&mut config);
    let data_dir = DataDir::resolve(Some(dir.to_path_buf()))?;
    Ok(Node::start(NodeConfig { data_dir, config }).await?)
}

struct World {
    _dirs: Vec<tempfile::TempDir>,
    public: Vec<NodeHandle>,
    members: Vec<NodeHandle>,
    /// Each member's circles.
    circles_of: Vec<Vec<String>>,
}

async fn build(a: &Args, discovery: bool) -> Result<World> {
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut dirs = Vec::new();
    let mut public = Vec::new();
    let mut public_addrs: Vec<Multiaddr> = Vec::new();
    for _ in 0..a.public {
        let dir = tempfile::tempdir()?;
        let boot = public_addrs.clone();
        let node = start(dir.path(), |c| {
            c.network.kademlia_server = Some(true);
            c.network.bootstrap = boot;
            c.network.circle_discovery = discovery;
        })
        .await?;
        public_addrs.push(node.status().await?.listen_addrs[0].clone());
        public.push(node);
        dirs.push(dir);
    }
    let names: Vec<String> = (0..CIRCLES).map(|i| format!("circle-{i:02}")).collect();
    let mut members = Vec::new();
    let mut circles_of = Vec::new();
    for _ in 0..a.members {
        let k = rng.gen_range(1..=3);
        let mine: Vec<String> = names.choose_multiple(&mut rng, k).cloned().collect();
        let boot = public_addrs[rng.gen_range(0..public_addrs.len())].clone();
        let port = free_port()?;
        let dir = tempfile::tempdir()?;
        let circles = mine.clone();
        let node = start(dir.path(), |c| {
            c.network.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
            c.network.external_addresses =
                vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
            c.network.kademlia_server = Some(false);
            c.network.bootstrap = vec![boot];
            c.network.circles = circles;
            c.network.circle_discovery = discovery;
        })
        .await?;
        members.push(node);
        circles_of.push(mine);
        dirs.push(dir);
    }
    Ok(World {
        _dirs: dirs,
        public,
        members,
        circles_of,
    })
}

/// (member, circle) pairs whose circle has another member.
fn pairs(w: &World) -> Vec<(usize, String)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for cs in &w.circles_of {
        for c in cs {
            *count.entry(c).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for (i, cs) in w.circles_of.iter().enumerate() {
        for c in cs {
            if count[c.as_str()] > 1 {
                out.push((i, c.clone()));
            }
        }
    }
    out
}

async fn connected_share(w: &World, pairs: &[(usize, String)]) -> Result<f64> {
    let mut ok = 0;
    let mut infos = HashMap::new();
    for (i, c) in pairs {
        if !infos.contains_key(i) {
            infos.insert(*i, w.members[*i].circle_infos().await?);
        }
        if infos[i]
            .iter()
            .any(|x| &x.circle == c && x.members_connected.unwrap_or(0) > 0)
        {
            ok += 1;
        }
    }
    Ok(ok as f64 / pairs.len().max(1) as f64)
}

/// The share of circles (with two members or more) whose members form one connected
/// graph through direct member-to-member connections: only then can gossip reach all.
async fn one_piece_share(w: &World) -> Result<f64> {
    let ids: Vec<libp2p::PeerId> = w.members.iter().map(|m| m.peer_id()).collect();
    let mut peers = Vec::new();
    for m in &w.members {
        let p: HashSet<libp2p::PeerId> = m.peers().await?.iter().map(|p| p.peer_id).collect();
        peers.push(p);
    }
    let mut members_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, cs) in w.circles_of.iter().enumerate() {
        for c in cs {
            members_of.entry(c).or_default().push(i);
        }
    }
    let (mut whole, mut total) = (0, 0);
    for members in members_of.values().filter(|m| m.len() > 1) {
        total += 1;
        let mut seen = HashSet::from([members[0]]);
        let mut stack = vec![members[0]];
        while let Some(i) = stack.pop() {
            for &j in members {
                if !seen.contains(&j) && peers[i].contains(&ids[j]) {
                    seen.insert(j);
                    stack.push(j);
                }
            }
        }
        if seen.len() == members.len() {
            whole += 1;
        }
    }
    Ok(whole as f64 / f64::from(total.max(1)))
}

async fn run(a: &Args, discovery: bool) -> Result<()> {
    let mode = if discovery {
        "discovery"
    } else {
        "no_discovery"
    };
    let w = build(a, discovery).await?;
    let started = Instant::now();
    let pairs = pairs(&w);
    emit(mode, "members", a.members as u64, "nodes", None);
    emit(
        mode,
        "member_circle_pairs",
        pairs.len() as u64,
        "pairs",
        None,
    );
    let mut reached = None;
    while started.elapsed() < CONNECT_LIMIT {
        if connected_share(&w, &pairs).await? >= 1.0 {
            reached = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let share = connected_share(&w, &pairs).await?;
    match reached {
        Some(t) => emit(
            mode,
            "time_to_circle_peer",
            t.as_millis() as u64,
            "ms",
            Some(GOAL_CONNECT_MS.into()),
        ),
        None => emit(
            mode,
            "time_to_circle_peer",
            Value::Null,
            "ms",
            Some(GOAL_CONNECT_MS.into()),
        ),
    }
    emit(
        mode,
        "members_with_circle_peer",
        share,
        "share",
        Some(1.0.into()),
    );
    emit(
        mode,
        "circles_in_one_piece",
        one_piece_share(&w).await?,
        "share",
        Some(1.0.into()),
    );

    // One post per (member, circle), all at once; who must receive each.
    let mut receivers: Vec<_> = w.members.iter().map(|m| m.subscribe()).collect();
    let mut expected: HashMap<PostId, HashSet<usize>> = HashMap::new();
    let mut members_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, cs) in w.circles_of.iter().enumerate() {
        for c in cs {
            members_of.entry(c).or_default().push(i);
        }
    }
    for (i, c) in &pairs {
        let post = w.members[*i]
            .publish(Draft {
                circle: Some(c.clone()),
                ..Draft::new(Kind::Offer, Category::Goods, format!("From member {i}"))
            })
            .await?;
        let others: HashSet<usize> = members_of[c.as_str()]
            .iter()
            .copied()
            .filter(|j| j != i)
            .collect();
        expected.insert(post.id, others);
    }
    let deadline = tokio::time::Instant::now() + DELIVERY_WINDOW;
    let mut got: HashMap<PostId, HashSet<usize>> = HashMap::new();
    let mut tasks = Vec::new();
    for (j, mut rx) in receivers.drain(..).enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Ok(Event::PostAdded { post, .. })) => seen.push(post.id),
                    Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
                    Ok(Err(RecvError::Closed)) | Err(_) => break,
                }
            }
            (j, seen)
        }));
    }
    for t in tasks {
        let (j, seen) = t.await?;
        for id in seen {
            got.entry(id).or_default().insert(j);
        }
    }
    let pairs_total: usize = expected.values().map(HashSet::len).sum();
    let pairs_got: usize = expected
        .iter()
        .map(|(id, want)| got.get(id).map_or(0, |g| want.intersection(g).count()))
        .sum();
    emit(
        mode,
        "receiver_copies_in_10s",
        pairs_got as f64 / pairs_total.max(1) as f64,
        "share",
        Some(GOAL_DELIVERED.into()),
    );
    let full = expected
        .iter()
        .filter(|(id, want)| got.get(id).is_some_and(|g| want.is_subset(g)))
        .count();
    emit(
        mode,
        "delivered_to_all_in_10s",
        full as f64 / expected.len().max(1) as f64,
        "share",
        Some(GOAL_DELIVERED.into()),
    );
    for n in w.members.iter().chain(&w.public) {
        n.shutdown().await?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        run(&a, false).await?;
        run(&a, true).await
    })
}
