//! Gossip network benchmark: how fast and at what byte cost a post reaches every node
//! of a loopback mesh, for real aidmesh nodes and for bare gossipsub swarms on the
//! same topology. Prints one JSON object per line; it is a program that prints
//! figures, not a timed test.
//!
//! Run: `cargo bench --bench gossip` (node counts 20 and 100, 50 posts), or e.g.
//! `cargo bench --bench gossip -- 20 100 --posts 50`. Other options: `--idle-secs S`
//! (idle byte baseline window, default 15 = one ping interval), `--gap-ms G` (pause
//! between posts, default 50), `--seed X` (topology and publisher choice, default
//! fixed). Diagnostics: `--bare-validate` makes the bare swarms use
//! `validate_messages` with an immediate accept; `--bare-store` also has them judge
//! and store every post in an aidmesh store before accepting (what an aidmesh node
//! does before relaying), and prints those times. Build with
//! `CARGO_BUILD_JOBS=1 cargo bench --bench gossip --no-run` on small machines.
//!
//! All nodes share this machine's cores, so the figures include CPU contention between
//! nodes (a post's total per-node work is serialised over the cores); the 1-minute
//! load average at the start of each node count is printed for context.
//!
//! For each node count N:
//! 1. A seeded random connected topology: a random spanning tree plus random edges
//!    until every node has 3 peers, no node more than 5. Prints edges and diameter.
//! 2. `impl = "aidmesh"`: N [`aidmesh::Node`]s in this process on 127.0.0.1 (mDNS and
//!    the DHT off), connected along the edges with `NodeHandle::dial`. After the
//!    connections exist, a 3 s warm-up (three gossipsub heartbeats) lets the meshes
//!    form, then an idle window measures background bytes. Then M posts (body about
//!    200 bytes) are published one at a time from seeded random nodes; each is
//!    awaited on all N-1 other nodes (`Event::PostAdded` from gossip or catch-up sync)
//!    or for 10 s, after which the missing node×post pairs count as lost.
//! 3. `impl = "bare"`: N libp2p swarms with only gossipsub (TCP + noise + yamux,
//!    strict signing, the aidmesh mesh parameters and content-hash message ids, no
//!    application validation, no peer scoring), same topology, same publishers, same
//!    payload bytes (the aidmesh posts' signed wire encoding), same pacing.
//!
//! Figures per implementation: full-delivery time per post (the last of the N-1
//! nodes) p50/p99/max, per-node delivery latency p50/p99, bytes sent per post per
//! node (raw, and with the idle rate times the publishing time subtracted), lost
//! node×post pairs, and for the bare run duplicate receptions per node per post
//! (from gossipsub's own receive counters; the aidmesh node API does not expose
//! them). Finally the aidmesh/bare ratios of the full-delivery p50 and p99.
//!
//! Latencies run from just before the publish call (for aidmesh this includes
//! signing and the durable local store write, reported separately as
//! `publish_call`) to the moment the receiving node reports the message (for
//! aidmesh, when a subscriber task receives the event).

use std::collections::{BTreeSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aidmesh::proto::{Category, Kind, PostId};
use aidmesh::{Config, DataDir, Draft, Event, Node, NodeConfig, NodeHandle, Origin};
use anyhow::{bail, Context, Result};
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageId};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

const DEFAULT_SEED: u64 = 0x00a1_d3e5;
const MIN_DEGREE: usize = 3;
const MAX_DEGREE: usize = 5;
/// How long a post may take to reach everyone before the missing copies count as lost.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the nodes may take to connect along the edges.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);
/// The gossipsub heartbeat of both implementations.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Benchmark warm-up once every connection exists: three heartbeats for the meshes to
/// form (GRAFTs are only sent on heartbeats).
const WARMUP: Duration = Duration::from_secs(3);
const CIRCLE: &str = "commons";
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

const WORDS: &[&str] = &[
    "bread", "soup", "ride", "clinic", "bike", "tools", "drill", "ladder", "room", "bed", "coat",
    "winter", "school", "books", "laptop", "repair", "garden", "seeds", "eggs", "milk", "baby",
    "stroller", "chair", "table", "paint", "help", "moving", "boxes", "van", "lessons", "english",
    "math", "care", "elderly", "company", "walk", "dog", "fridge", "stove", "blanket", "tent",
];

// ---- arguments and output ---------------------------------------------------------

struct Args {
    sizes: Vec<usize>,
    posts: usize,
    idle: Duration,
    gap: Duration,
    seed: u64,
    /// Diagnostic: the bare swarms validate like aidmesh (`validate_messages` and an
    /// immediate accept) ...
    bare_validate: bool,
    /// ... and also judge and store each post in their own store before accepting.
    bare_store: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        sizes: Vec::new(),
        posts: 50,
        idle: Duration::from_secs(15),
        gap: Duration::from_millis(50),
        seed: DEFAULT_SEED,
        bare_validate: false,
        bare_store: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--posts" => args.posts = value("--posts")? as usize,
            "--idle-secs" => args.idle = Duration::from_secs(value("--idle-secs")?),
            "--gap-ms" => args.gap = Duration::from_millis(value("--gap-ms")?),
            "--seed" => args.seed = value("--seed")?,
            "--bare-validate" => args.bare_validate = true,
            "--bare-store" => {
                args.bare_validate = true;
                args.bare_store = true;
            }
            // cargo bench adds `--bench`; ignore flags we do not know.
            other => {
                if let Ok(n) = other.parse::<usize>() {
                    if n < 2 {
                        bail!("need at least 2 nodes, got {n}");
                    }
                    args.sizes.push(n);
                }
            }
        }
    }
    if args.sizes.is_empty() {
        args.sizes = vec![20, 100];
    }
    if args.posts == 0 {
        bail!("--posts must be at least 1");
    }
    Ok(args)
}

/// One output line. `imp` is `aidmesh`, `bare`, or `None` for figures of the topology
/// or comparisons.
struct Line<'a> {
    nodes: usize,
    imp: Option<&'a str>,
}

impl Line<'_> {
    fn emit(&self, metric: &str, value: impl Into<Value>, unit: &str) {
        self.emit_note(metric, value, unit, None);
    }

    fn emit_note(&self, metric: &str, value: impl Into<Value>, unit: &str, note: Option<&str>) {
        let s = |v: &str| Value::from(v).to_string();
        let mut line = format!("{{\"bench\":\"gossip\",\"nodes\":{}", self.nodes);
        if let Some(imp) = self.imp {
            line += &format!(",\"impl\":{}", s(imp));
        }
        line += &format!(
            ",\"metric\":{},\"value\":{},\"unit\":{}",
            s(metric),
            value.into(),
            s(unit)
        );
        if let Some(note) = note {
            line += &format!(",\"note\":{}", s(note));
        }
        line.push('}');
        println!("{line}");
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms_or_null(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| ms(d).into())
}

// ---- topology ---------------------------------------------------------------------

struct Topology {
    edges: Vec<(usize, usize)>,
    adj: Vec<Vec<usize>>,
}

impl Topology {
    /// A random spanning tree (no node above [`MAX_DEGREE`]) plus random edges until
    /// every node has [`MIN_DEGREE`] peers (or all others, for tiny N). Retries in the
    /// rare case the last low-degree nodes cannot be paired.
    fn random(n: usize, rng: &mut StdRng) -> Self {
        let min = MIN_DEGREE.min(n - 1);
        'attempt: loop {
            let mut adj: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            for k in 1..n {
                let open: Vec<usize> = order[..k]
                    .iter()
                    .copied()
                    .filter(|&v| adj[v].len() < MAX_DEGREE)
                    .collect();
                // A tree always has a leaf, so `open` is never empty.
                let parent = open[rng.gen_range(0..open.len())];
                adj[order[k]].insert(parent);
                adj[parent].insert(order[k]);
            }
            loop {
                let low: Vec<usize> = (0..n).filter(|&v| adj[v].len() < min).collect();
                let Some(&a) = low.choose(rng) else { break };
                let free = |v: usize| v != a && !adj[a].contains(&v) && adj[v].len() < MAX_DEGREE;
                let mut cands: Vec<usize> = low.iter().copied().filter(|&v| free(v)).collect();
                if cands.is_empty() {
                    cands = (0..n).filter(|&v| free(v)).collect();
                }
                let Some(&b) = cands.choose(rng) else {
                    continue 'attempt;
                };
                adj[a].insert(b);
                adj[b].insert(a);
            }
            let adj: Vec<Vec<usize>> = adj.into_iter().map(|s| s.into_iter().collect()).collect();
            let edges = adj
                .iter()
                .enumerate()
                .flat_map(|(a, peers)| peers.iter().filter(move |&&b| a < b).map(move |&b| (a, b)))
                .collect();
            return Self { edges, adj };
        }
    }

    fn degree(&self, v: usize) -> usize {
        self.adj[v].len()
    }

    /// Hops from `s` to every node (the topology is connected by construction).
    fn distances(&self, s: usize) -> Vec<usize> {
        let mut dist = vec![usize::MAX; self.adj.len()];
        dist[s] = 0;
        let mut queue = VecDeque::from([s]);
        while let Some(v) = queue.pop_front() {
            for &w in &self.adj[v] {
                if dist[w] == usize::MAX {
                    dist[w] = dist[v] + 1;
                    queue.push_back(w);
                }
            }
        }
        dist
    }

    /// Longest shortest path.
    fn diameter(&self) -> usize {
        (0..self.adj.len())
            .flat_map(|s| self.distances(s))
            .max()
            .unwrap_or(0)
    }
}

// ---- posts and results --------------------------------------------------------------

struct PostSpec {
    publisher: usize,
    draft: Draft,
}

fn make_posts(m: usize, n: usize, rng: &mut StdRng) -> Vec<PostSpec> {
    (0..m)
        .map(|i| {
            let word = |rng: &mut StdRng| WORDS[rng.gen_range(0..WORDS.len())];
            let title = format!("Bench post {i}: {} and {}", word(rng), word(rng));
            let mut body = String::new();
            while body.len() < 200 {
                if !body.is_empty() {
                    body.push(' ');
                }
                body.push_str(word(rng));
            }
            PostSpec {
                publisher: rng.gen_range(0..n),
                draft: Draft {
                    body,
                    tags: vec!["bench".into()],
                    ..Draft::new(Kind::Offer, Category::Food, title)
                },
            }
        })
        .collect()
}

/// What one implementation's run measured.
#[derive(Default)]
struct RunStats {
    start: Duration,
    connect: Duration,
    /// Full-delivery time of each post that reached every node.
    full: Vec<Duration>,
    /// Posts that missed at least one node.
    incomplete: usize,
    /// Every (node, post) delivery latency.
    per_node: Vec<Duration>,
    /// node×post pairs not delivered within [`POST_TIMEOUT`].
    lost: usize,
    /// Deliveries of a post that arrived after its timeout.
    late: usize,
    /// Delivery latencies by hop distance from the publisher.
    by_hop: Vec<Vec<Duration>>,
    /// How long each publish call took (aidmesh only).
    publish_calls: Vec<Duration>,
    idle_bytes: u64,
    idle_wall: Duration,
    publish_bytes: u64,
    publish_wall: Duration,
    /// Receptions without and with duplicate filtering, over the publishing phase.
    received: Option<(u64, u64)>,
    /// Mean gossipsub mesh size after the warm-up (bare only).
    mesh: Option<f64>,
    /// `--bare-store` only: judge and store times inside the swarm task.
    ingest: Option<(Vec<Duration>, Vec<Duration>)>,
    /// aidmesh only: deliveries that came by catch-up sync rather than gossip.
    by_sync: Option<u64>,
    /// Event-channel lag (aidmesh only): events a subscriber missed.
    lagged: u64,
}

/// Waits until every node other than the publisher reported `want` or `deadline`
/// passes. Deliveries of other (earlier, timed-out) messages count as late.
async fn collect<K: Eq + Hash>(
    rx: &mut mpsc::UnboundedReceiver<(usize, K, Instant)>,
    want: &K,
    n: usize,
    publisher: usize,
    deadline: Instant,
    late: &mut usize,
) -> Vec<Option<Instant>> {
    let mut got = vec![None; n];
    let mut count = 0;
    while count < n - 1 {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some((idx, key, at))) => {
                if &key != want {
                    *late += 1;
                } else if idx != publisher && got[idx].is_none() {
                    got[idx] = Some(at);
                    count += 1;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    got
}

impl RunStats {
    fn record(&mut self, t0: Instant, publisher: usize, got: &[Option<Instant>], hops: &[usize]) {
        let mut last = Duration::ZERO;
        let mut complete = true;
        for (idx, at) in got.iter().enumerate() {
            if idx == publisher {
                continue;
            }
            match at {
                Some(at) => {
                    let d = at.saturating_duration_since(t0);
                    self.per_node.push(d);
                    if self.by_hop.len() <= hops[idx] {
                        self.by_hop.resize(hops[idx] + 1, Vec::new());
                    }
                    self.by_hop[hops[idx]].push(d);
                    last = last.max(d);
                }
                None => {
                    self.lost += 1;
                    complete = false;
                }
            }
        }
        if complete {
            self.full.push(last);
        } else {
            self.incomplete += 1;
        }
    }

    fn print(&mut self, line: &Line, posts: usize) {
        let n = line.nodes;
        self.full.sort();
        self.per_node.sort();
        self.publish_calls.sort();
        line.emit("start", ms(self.start), "ms");
        line.emit("connect", ms(self.connect), "ms");
        if let Some(mesh) = self.mesh {
            line.emit("mesh_size_mean", round3(mesh), "peers");
        }
        line.emit(
            "full_delivery_p50",
            ms_or_null(percentile(&self.full, 50.0)),
            "ms",
        );
        line.emit(
            "full_delivery_p99",
            ms_or_null(percentile(&self.full, 99.0)),
            "ms",
        );
        line.emit(
            "full_delivery_max",
            ms_or_null(self.full.last().copied()),
            "ms",
        );
        line.emit_note(
            "posts_incomplete",
            self.incomplete,
            "posts",
            Some("posts missing on at least one node after 10 s; not in full_delivery_*"),
        );
        line.emit(
            "node_delivery_p50",
            ms_or_null(percentile(&self.per_node, 50.0)),
            "ms",
        );
        line.emit(
            "node_delivery_p99",
            ms_or_null(percentile(&self.per_node, 99.0)),
            "ms",
        );
        for (hop, times) in self.by_hop.iter_mut().enumerate().skip(1) {
            times.sort();
            line.emit_note(
                &format!("node_delivery_p50_hop{hop}"),
                ms_or_null(percentile(times, 50.0)),
                "ms",
                Some("nodes this many hops from the publisher"),
            );
        }
        if let Some((judge, store)) = &self.ingest {
            for (what, t) in [("judge", judge), ("store", store)] {
                for p in [50.0, 99.0] {
                    line.emit_note(
                        &format!("in_task_{what}_p{p}"),
                        ms_or_null(percentile(t, p)),
                        "ms",
                        Some("--bare-store diagnostic, timed inside the swarm task"),
                    );
                }
            }
        }
        if !self.publish_calls.is_empty() {
            line.emit_note(
                "publish_call_p50",
                ms_or_null(percentile(&self.publish_calls, 50.0)),
                "ms",
                Some("NodeHandle::publish: sign, verify, durable store write, hand-off"),
            );
        }
        let per = (posts * n) as f64;
        let idle_rate = self.idle_bytes as f64 / self.idle_wall.as_secs_f64().max(1e-9);
        let idle_share = idle_rate * self.publish_wall.as_secs_f64();
        line.emit(
            "idle_bytes_sent_per_node",
            round3(idle_rate / n as f64),
            "B/s",
        );
        line.emit("publish_phase", ms(self.publish_wall), "ms");
        line.emit_note(
            "bytes_sent_per_post_per_node",
            round3(self.publish_bytes as f64 / per),
            "B",
            Some("all traffic during the publishing phase / (posts × nodes)"),
        );
        line.emit_note(
            "bytes_sent_per_post_per_node_net",
            round3((self.publish_bytes as f64 - idle_share) / per),
            "B",
            Some("minus the idle rate (measured before publishing) × publishing time"),
        );
        match self.received {
            Some((unfiltered, filtered)) => {
                let receivers = (posts * (n - 1)) as f64;
                line.emit_note(
                    "duplicates_per_node_per_post",
                    round3(unfiltered.saturating_sub(filtered) as f64 / receivers),
                    "messages",
                    Some("gossipsub receive counters (unfiltered - filtered) / (posts × receiving nodes); Event::Message comes once per message id so cannot show them"),
                );
            }
            None => line.emit_note(
                "duplicates_per_node_per_post",
                Value::Null,
                "messages",
                Some("not visible through the aidmesh node API; see the bare run"),
            ),
        }
        line.emit("lost", self.lost, "node_posts");
        if let Some(k) = self.by_sync {
            line.emit_note(
                "delivered_by_sync",
                k,
                "node_posts",
                Some("PostAdded with origin sync (catch-up) instead of gossip"),
            );
        }
        line.emit("late", self.late, "node_posts");
        if self.lagged > 0 {
            line.emit("event_lagged", self.lagged, "events");
        }
    }
}

// ---- aidmesh nodes --------------------------------------------------------------------

async fn total_sent(nodes: &[NodeHandle]) -> Result<u64> {
    let mut sum = 0;
    for node in nodes {
        sum += node.status().await?.bytes_sent;
    }
    Ok(sum)
}

/// Runs the aidmesh nodes; returns the figures and each post's signed wire bytes.
async fn run_aidmesh(
    topo: &Topology,
    posts: &[PostSpec],
    args: &Args,
) -> Result<(RunStats, Vec<Vec<u8>>)> {
    let n = topo.adj.len();
    let mut stats = RunStats::default();
    let started = Instant::now();
    let dirs = (0..n)
        .map(|_| tempfile::tempdir())
        .collect::<Result<Vec<_>, _>>()?;
    let mut nodes = Vec::with_capacity(n);
    for dir in &dirs {
        let mut config = Config::default();
        config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        config.network.bootstrap = Vec::new();
        config.network.mdns = false;
        config.network.kademlia = false;
        config.network.circles = vec![CIRCLE.to_string()];
        let data_dir = DataDir::resolve(Some(dir.path().to_path_buf()))?;
        nodes.push(Node::start(NodeConfig { data_dir, config }).await?);
    }
    let mut addrs = Vec::with_capacity(n);
    for node in &nodes {
        let status = node.status().await?;
        addrs.push(
            status
                .listen_addrs
                .first()
                .cloned()
                .context("no listen address")?,
        );
    }
    stats.start = started.elapsed();

    let connecting = Instant::now();
    for &(a, b) in &topo.edges {
        nodes[a].dial(addrs[b].clone()).await?;
    }
    let mut pending: Vec<usize> = (0..n).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            let peers = nodes[i].peers().await?.len();
            if peers > topo.degree(i) {
                bail!(
                    "aidmesh node {i} has {peers} peers, more than its {} edges",
                    topo.degree(i)
                );
            }
            if peers < topo.degree(i) {
                still.push(i);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if connecting.elapsed() > CONNECT_TIMEOUT {
            bail!(
                "aidmesh: {} nodes still lack peers after {CONNECT_TIMEOUT:?}",
                pending.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    stats.connect = connecting.elapsed();
    // Warm-up, not synchronisation: the meshes form on heartbeats, and the node API
    // does not show them.
    tokio::time::sleep(WARMUP).await;

    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, PostId, Instant)>();
    let lagged = Arc::new(AtomicU64::new(0));
    let by_sync = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(n);
    for (idx, node) in nodes.iter().enumerate() {
        let mut events = node.subscribe();
        let tx = tx.clone();
        let lagged = lagged.clone();
        let by_sync = by_sync.clone();
        readers.push(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::PostAdded { post, origin }) if origin != Origin::Local => {
                        let at = Instant::now();
                        if origin == Origin::Sync {
                            by_sync.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = tx.send((idx, post.id, at));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(k)) => {
                        lagged.fetch_add(k, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }));
    }
    drop(tx);

    let idle_from = Instant::now();
    let before_idle = total_sent(&nodes).await?;
    tokio::time::sleep(args.idle).await;
    let before = total_sent(&nodes).await?;
    stats.idle_wall = idle_from.elapsed();
    stats.idle_bytes = before - before_idle;

    let publishing = Instant::now();
    let mut wire = Vec::with_capacity(posts.len());
    for spec in posts {
        let node = &nodes[spec.publisher];
        let t0 = Instant::now();
        let post = node.publish(spec.draft.clone()).await?;
        stats.publish_calls.push(t0.elapsed());
        wire.push(post.sign(node.identity().signing_key())?.encode()?);
        let got = collect(
            &mut rx,
            &post.id,
            n,
            spec.publisher,
            t0 + POST_TIMEOUT,
            &mut stats.late,
        )
        .await;
        stats.record(t0, spec.publisher, &got, &topo.distances(spec.publisher));
        tokio::time::sleep(args.gap).await;
    }
    let after = total_sent(&nodes).await?;
    stats.publish_wall = publishing.elapsed();
    stats.publish_bytes = after - before;
    while rx.try_recv().is_ok() {
        stats.late += 1;
    }
    stats.lagged = lagged.load(Ordering::Relaxed);
    stats.by_sync = Some(by_sync.load(Ordering::Relaxed));

    for r in readers {
        r.abort();
    }
    for node in &nodes {
        node.shutdown().await?;
    }
    drop(nodes);
    drop(dirs);
    Ok((stats, wire))
}

// ---- bare gossipsub swarms -------------------------------------------------------------

type Gossip =
    gossipsub::Behaviour<gossipsub::IdentityTransform, gossipsub::AllowAllSubscriptionFilter>;

fn content_id(message: &gossipsub::Message) -> MessageId {
    MessageId::from(&blake3::hash(&message.data).as_bytes()[..20])
}

/// The aidmesh gossipsub settings without `validate_messages` (and without scoring).
fn bare_config(validate: bool) -> Result<gossipsub::Config> {
    let mut builder = gossipsub::ConfigBuilder::default();
    if validate {
        builder.validate_messages();
    }
    builder
        .max_transmit_size(aidmesh::net::gossip::MAX_TRANSMIT_SIZE)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .message_id_fn(content_id)
        .mesh_n(6)
        .mesh_n_low(4)
        .mesh_n_high(12)
        .mesh_outbound_min(2)
        .heartbeat_interval(HEARTBEAT)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .build()
        .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))
}

/// Judge and store times of the `--bare-store` diagnostic.
type IngestTimes = Arc<std::sync::Mutex<Vec<(Duration, Duration)>>>;

enum BareCmd {
    Dial(Multiaddr),
    Publish(Vec<u8>),
    Stats(oneshot::Sender<BareStats>),
}

struct BareStats {
    bytes_sent: u64,
    connected: usize,
    subscribed: usize,
    mesh: usize,
    received_unfiltered: u64,
    received: u64,
}

struct BareNode {
    commands: mpsc::UnboundedSender<BareCmd>,
    addr: Multiaddr,
    task: tokio::task::JoinHandle<()>,
}

impl BareNode {
    async fn stats(&self) -> Result<BareStats> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(BareCmd::Stats(tx))
            .map_err(|_| anyhow::anyhow!("bare node stopped"))?;
        Ok(rx.await?)
    }
}

/// Sums the samples of a Prometheus text encoding whose line contains `name` and
/// `label` (empty: any); the text encoding is the registry's only read interface.
fn metric_sum(registry: &libp2p::metrics::Registry, name: &str, label: &str) -> u64 {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return 0;
    }
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn spawn_bare(
    idx: usize,
    validate: bool,
    store: Option<(aidmesh::Store, IngestTimes)>,
    topic: IdentTopic,
    deliveries: mpsc::UnboundedSender<(usize, MessageId, Instant)>,
) -> Result<BareNode> {
    let mut bandwidth = libp2p::metrics::Registry::default();
    let mut gossip_metrics = libp2p::metrics::Registry::default();
    let config = bare_config(validate)?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_bandwidth_metrics(&mut bandwidth)
        .with_behaviour(|key| {
            Gossip::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
                .map(|b| b.with_metrics(&mut gossip_metrics, gossipsub::MetricsConfig::default()))
                .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();
    swarm.behaviour_mut().subscribe(&topic)?;
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .context("bare swarm got no listen address")?;
    let addr = addr.with(libp2p::multiaddr::Protocol::P2p(*swarm.local_peer_id()));

    let (commands, mut command_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut subscribed = std::collections::HashSet::<PeerId>::new();
        let mut connected = std::collections::HashSet::<PeerId>::new();
        loop {
            tokio::select! {
                biased;
                command = command_rx.recv() => match command {
                    Some(BareCmd::Dial(a)) => {
                        if let Err(e) = swarm.dial(a) {
                            eprintln!("bare node {idx}: dial failed: {e}");
                        }
                    }
                    Some(BareCmd::Publish(data)) => {
                        if let Err(e) = swarm.behaviour_mut().publish(topic.clone(), data) {
                            eprintln!("bare node {idx}: publish failed: {e}");
                        }
                    }
                    Some(BareCmd::Stats(reply)) => {
                        let _ = reply.send(BareStats {
                            bytes_sent: metric_sum(&bandwidth, "libp2p_bandwidth", "direction=\"Outbound\""),
                            connected: connected.len(),
                            subscribed: subscribed.len(),
                            mesh: swarm.behaviour().mesh_peers(&topic.hash()).count(),
                            received_unfiltered: metric_sum(&gossip_metrics, "topic_msg_recv_counts_unfiltered_total", ""),
                            received: metric_sum(&gossip_metrics, "topic_msg_recv_counts_total", ""),
                        });
                    }
                    None => break,
                },
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(gossipsub::Event::Message { message_id, message, propagation_source }) => {
                        let at = Instant::now();
                        if let Some((store, times)) = &store {
                            if let aidmesh::net::gossip::Verdict::Valid(v) =
                                aidmesh::net::gossip::judge(&message.data, CIRCLE, aidmesh::clock::now_ms())
                            {
                                let judged = Instant::now();
                                let _ = store.insert_verified(&v);
                                let stored = Instant::now();
                                times.lock().unwrap().push((judged - at, stored - judged));
                            }
                        }
                        if validate {
                            swarm.behaviour_mut().report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                gossipsub::MessageAcceptance::Accept,
                            );
                        }
                        let _ = deliveries.send((idx, message_id, at));
                    }
                    SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) => {
                        subscribed.insert(peer_id);
                    }
                    SwarmEvent::Behaviour(gossipsub::Event::Unsubscribed { peer_id, .. }) => {
                        subscribed.remove(&peer_id);
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        connected.insert(peer_id);
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        connected.remove(&peer_id);
                        subscribed.remove(&peer_id);
                    }
                    _ => {}
                },
            }
        }
    });
    Ok(BareNode {
        commands,
        addr,
        task,
    })
}

async fn bare_totals(nodes: &[BareNode]) -> Result<(u64, u64, u64)> {
    let (mut sent, mut unfiltered, mut received) = (0, 0, 0);
    for node in nodes {
        let s = node.stats().await?;
        sent += s.bytes_sent;
        unfiltered += s.received_unfiltered;
        received += s.received;
    }
    Ok((sent, unfiltered, received))
}

async fn run_bare(
    topo: &Topology,
    posts: &[PostSpec],
    wire: &[Vec<u8>],
    args: &Args,
) -> Result<RunStats> {
    let n = topo.adj.len();
    let mut stats = RunStats::default();
    let topic = aidmesh::net::gossip::topic(CIRCLE);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut nodes = Vec::with_capacity(n);
    let mut dirs = Vec::new();
    let times = IngestTimes::default();
    for idx in 0..n {
        let store = if args.bare_store {
            let dir = tempfile::tempdir()?;
            let store = aidmesh::Store::open(&dir.path().join("db"))?;
            dirs.push(dir);
            Some((store, times.clone()))
        } else {
            None
        };
        nodes.push(spawn_bare(idx, args.bare_validate, store, topic.clone(), tx.clone()).await?);
    }
    drop(tx);
    stats.start = started.elapsed();

    let connecting = Instant::now();
    for &(a, b) in &topo.edges {
        nodes[a]
            .commands
            .send(BareCmd::Dial(nodes[b].addr.clone()))
            .map_err(|_| anyhow::anyhow!("bare node stopped"))?;
    }
    let mut pending: Vec<usize> = (0..n).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            let s = nodes[i].stats().await?;
            if s.connected > topo.degree(i) {
                bail!(
                    "bare node {i} has {} peers, more than its {} edges",
                    s.connected,
                    topo.degree(i)
                );
            }
            if s.connected < topo.degree(i) || s.subscribed < topo.degree(i) {
                still.push(i);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if connecting.elapsed() > CONNECT_TIMEOUT {
            bail!(
                "bare: {} nodes still lack peers after {CONNECT_TIMEOUT:?}",
                pending.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    stats.connect = connecting.elapsed();
    // Warm-up as for aidmesh: three heartbeats for the meshes to form.
    tokio::time::sleep(WARMUP).await;
    let mut mesh = 0;
    for node in &nodes {
        mesh += node.stats().await?.mesh;
    }
    stats.mesh = Some(mesh as f64 / n as f64);

    let idle_from = Instant::now();
    let (before_idle, _, _) = bare_totals(&nodes).await?;
    tokio::time::sleep(args.idle).await;
    let (before, unfiltered0, received0) = bare_totals(&nodes).await?;
    stats.idle_wall = idle_from.elapsed();
    stats.idle_bytes = before - before_idle;

    let publishing = Instant::now();
    for (spec, data) in posts.iter().zip(wire) {
        let id = MessageId::from(&blake3::hash(data).as_bytes()[..20]);
        let t0 = Instant::now();
        nodes[spec.publisher]
            .commands
            .send(BareCmd::Publish(data.clone()))
            .map_err(|_| anyhow::anyhow!("bare node stopped"))?;
        let got = collect(
            &mut rx,
            &id,
            n,
            spec.publisher,
            t0 + POST_TIMEOUT,
            &mut stats.late,
        )
        .await;
        stats.record(t0, spec.publisher, &got, &topo.distances(spec.publisher));
        tokio::time::sleep(args.gap).await;
    }
    let (after, unfiltered1, received1) = bare_totals(&nodes).await?;
    stats.publish_wall = publishing.elapsed();
    stats.publish_bytes = after - before;
    stats.received = Some((unfiltered1 - unfiltered0, received1 - received0));
    while rx.try_recv().is_ok() {
        stats.late += 1;
    }

    for node in nodes {
        drop(node.commands);
        let _ = node.task.await;
    }
    drop(dirs);
    let times = std::mem::take(&mut *times.lock().unwrap_or_else(|p| p.into_inner()));
    if !times.is_empty() {
        let (mut judge, mut store): (Vec<Duration>, Vec<Duration>) = times.into_iter().unzip();
        judge.sort();
        store.sort();
        stats.ingest = Some((judge, store));
    }
    Ok(stats)
}

/// The work an aidmesh node does on each gossiped post before it lets gossipsub
/// relay it (decode, verify, store), timed alone on a fresh store.
fn ingest_probe(wire: &[Vec<u8>]) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let store = aidmesh::Store::open(&dir.path().join("db"))?;
    let mut times = Vec::with_capacity(wire.len());
    for data in wire {
        let t = Instant::now();
        match aidmesh::net::gossip::judge(data, CIRCLE, aidmesh::clock::now_ms()) {
            aidmesh::net::gossip::Verdict::Valid(v) => {
                store.insert_verified(&v)?;
            }
            other => bail!("a benchmark post was not valid: {other:?}"),
        }
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

// ---- main ------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    for &n in &args.sizes {
        let mut rng = StdRng::seed_from_u64(args.seed ^ n as u64);
        let topo = Topology::random(n, &mut rng);
        let line = Line {
            nodes: n,
            imp: None,
        };
        if let Some(load) = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        {
            line.emit("loadavg_1m", load, "load");
        }
        line.emit("edges", topo.edges.len(), "edges");
        line.emit("diameter", topo.diameter(), "hops");
        let degrees: Vec<usize> = (0..n).map(|v| topo.degree(v)).collect();
        line.emit(
            "degree_min",
            degrees.iter().min().copied().unwrap_or(0),
            "peers",
        );
        line.emit(
            "degree_max",
            degrees.iter().max().copied().unwrap_or(0),
            "peers",
        );
        line.emit("posts", args.posts, "posts");
        let posts = make_posts(args.posts, n, &mut rng);

        let (mut ours, wire) = run_aidmesh(&topo, &posts, &args).await?;
        let mean_wire = wire.iter().map(Vec::len).sum::<usize>() as f64 / wire.len() as f64;
        line.emit("post_wire_bytes_mean", round3(mean_wire), "B");
        let probe = wire.clone();
        let ingest = tokio::task::spawn_blocking(move || ingest_probe(&probe)).await??;
        line.emit_note(
            "ingest_p50",
            ms_or_null(percentile(&ingest, 50.0)),
            "ms",
            Some("aidmesh per-hop work before relaying (judge + Store::insert_verified), alone"),
        );
        ours.print(
            &Line {
                nodes: n,
                imp: Some("aidmesh"),
            },
            args.posts,
        );

        let mut bare = run_bare(&topo, &posts, &wire, &args).await?;
        bare.print(
            &Line {
                nodes: n,
                imp: Some("bare"),
            },
            args.posts,
        );

        for (metric, p) in [
            ("ratio_full_delivery_p50", 50.0),
            ("ratio_full_delivery_p99", 99.0),
        ] {
            let ratio = match (percentile(&ours.full, p), percentile(&bare.full, p)) {
                (Some(a), Some(b)) if !b.is_zero() => {
                    Value::from(round3(a.as_secs_f64() / b.as_secs_f64()))
                }
                _ => Value::Null,
            };
            line.emit_note(metric, ratio, "x", Some("aidmesh / bare"));
        }
    }
    Ok(())
}
