//! Flood benchmark (issue 12): a victim node and an honest publisher while a raw
//! libp2p peer floods the victim with valid posts from K keys at its full rate.
//! Prints one JSON object per line; a program that prints figures, not a timed test.
//!
//! Run: `cargo bench --bench flood` (K = 1, 100, 1000; 10,000 flood posts each), or
//! e.g. `cargo bench --bench flood -- 1 1000 --posts 20000 --honest 20`.
//!
//! For each K:
//! 1. The victim is the real `aidmesh` binary (its own process, so its RSS, disk and
//!    CPU are its own), on 127.0.0.1 with a fresh data dir. The honest publisher is an
//!    [`aidmesh::Node`] in this process, connected to the victim. Arrivals at the
//!    victim are read from its local API event stream.
//! 2. Quiet: an honest node publishes `--honest` posts (at most 20, an author's relay
//!    burst) 100 ms apart; each post's
//!    delivery time (publish call to the victim's `post_added` event) is recorded.
//! 3. Flood: a raw gossipsub peer connects to the victim and publishes `--posts` valid,
//!    signed posts by K keys (posts/K each) as fast as gossipsub takes them, while the
//!    a second honest node (another author) publishes `--honest` posts 100 ms apart.
//! 4. Figures: flood posts accepted (stored by the victim) and refused, honest delivery
//!    p50/p99 quiet and during the flood and their ratio (goal ≤ 2×), honest posts lost
//!    (not delivered within 10 s), the victim's RSS and disk before and after, and its
//!    CPU time per refused post.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aidmesh::client::ApiClient;
use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status};
use aidmesh::{Config, DataDir, Draft, Identity, Node, NodeConfig, NodeHandle};
use anyhow::{bail, Context, Result};
use libp2p::futures::StreamExt;
use libp2p::{gossipsub, Multiaddr};
use serde_json::json;
use tokio::sync::Mutex;

const DAY: u64 = 86_400_000;
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

fn emit(k: usize, metric: &str, value: impl Into<serde_json::Value>, unit: &str) {
    println!(
        "{}",
        json!({ "bench": "flood", "keys": k, "metric": metric, "value": value.into(), "unit": unit })
    );
}

fn emit_goal(k: usize, metric: &str, value: f64, unit: &str, goal: &str, met: bool) {
    println!(
        "{}",
        json!({ "bench": "flood", "keys": k, "metric": metric, "value": value, "unit": unit,
                "goal": goal, "goal_met": met })
    );
}

/// Victim process figures from /proc.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// User + system CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn disk_mb(dir: &std::path::Path) -> f64 {
    fn walk(p: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(p) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir) as f64 / 1_048_576.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The victim: `aidmesh run` in its own process.
struct Victim {
    child: std::process::Child,
    dir: tempfile::TempDir,
    addr: Multiaddr,
    client: ApiClient,
}

impl Victim {
    async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_aidmesh"))
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "run",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
            ])
            .env_remove("AIDMESH_DATA_DIR")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line?;
            if line.contains("listening") && line.contains("/p2p/") {
                addr = line
                    .split("address=")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .map(str::to_string);
            }
            if line.contains("aidmesh is running") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let addr: Multiaddr = addr.context("the victim logs its address")?.parse()?;
        let data_dir = DataDir::resolve(Some(dir.path().to_path_buf()))?;
        let client = ApiClient::from_data_dir(&data_dir)?;
        Ok(Self {
            child,
            dir,
            addr,
            client,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn posts(&self) -> Result<u64> {
        Ok(self.client.status().await?["posts"].as_u64().unwrap_or(0))
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

async fn honest_node(dir: &std::path::Path, bootstrap: Multiaddr) -> Result<NodeHandle> {
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.network.bootstrap = vec![bootstrap];
    config.network.mdns = false;
    config.network.kademlia = false;
    config.network.circles = vec!["commons".into()];
    Ok(Node::start(NodeConfig {
        data_dir: DataDir::resolve(Some(dir.to_path_buf()))?,
        config,
    })
    .await?)
}

/// Flood posts: `per_key` by each of `keys` fresh identities.
fn flood_posts(keys: usize, per_key: usize, seed: u32) -> Vec<Vec<u8>> {
    let now = aidmesh::clock::now_ms();
    let mut out = Vec::with_capacity(keys * per_key);
    for k in 0..keys {
        let mut secret = [0x5a; 32];
        secret[..4].copy_from_slice(&seed.to_be_bytes());
        secret[4..12].copy_from_slice(&(k as u64).to_be_bytes());
        let who = Identity::from_secret(secret);
        for i in 0..per_key {
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let nonce = Nonce(nonce);
            let post = Post {
                id: PostId::derive(&who.author(), &nonce),
                author: who.author(),
                nonce,
                revision: 1,
                circle: "commons".into(),
                kind: Kind::Offer,
                status: Status::Open,
                category: Category::Goods,
                title: format!("Free item {i}"),
                body: "y".repeat(1_000),
                tags: vec!["free".into()],
                location: None,
                quantity: None,
                contact: None,
                created_at: now - (i as u64 % 60_000),
                updated_at: now - (i as u64 % 60_000),
                expires_at: now + 30 * DAY,
            };
            let signed: SignedPost = post.sign(who.signing_key()).expect("signs");
            out.push(signed.encode().expect("encodes"));
        }
    }
    out
}

/// A raw gossipsub peer that publishes `posts` as fast as gossipsub takes them and
/// reports how many it handed over. It runs on its own OS thread and runtime, as an
/// attacker's machine would: sharing the honest node's tokio workers would make the
/// benchmark measure its own scheduler, not the victim.
fn flood(dial: Multiaddr, posts: Vec<Vec<u8>>) -> Result<std::thread::JoinHandle<Result<usize>>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(flood_on(dial, posts, ready_tx))
    });
    ready_rx
        .recv()
        .context("the flooder thread ended before it was ready")??;
    Ok(thread)
}

async fn flood_on(
    dial: Multiaddr,
    posts: Vec<Vec<u8>>,
    ready: std::sync::mpsc::Sender<Result<()>>,
) -> Result<usize> {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Strict)
                .max_transmit_size(aidmesh::net::gossip::MAX_TRANSMIT_SIZE)
                .heartbeat_initial_delay(Duration::from_millis(100))
                .build()
                .expect("config");
            gossipsub::Behaviour::<
                gossipsub::IdentityTransform,
                gossipsub::AllowAllSubscriptionFilter,
            >::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .expect("behaviour")
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let topic = aidmesh::net::gossip::topic("commons");
    swarm.behaviour_mut().subscribe(&topic)?;
    swarm.dial(dial)?;
    let subscribed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let libp2p::swarm::SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) =
                swarm.select_next_some().await
            {
                break;
            }
        }
    })
    .await
    .context("the flooder sees the victim's subscription");
    let failed = subscribed.is_err();
    let _ = ready.send(subscribed.map_err(|e| anyhow::anyhow!("{e:#}")));
    if failed {
        bail!("the flooder did not see the victim's subscription");
    }
    let mut sent = 0;
    let mut posts = posts.into_iter();
    loop {
        // Publish in small batches between polls of the swarm, so its queues drain.
        for data in posts.by_ref().take(64) {
            if swarm.behaviour_mut().publish(topic.clone(), data).is_ok() {
                sent += 1;
            }
        }
        if posts.len() == 0 {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(1), swarm.select_next_some()).await;
    }
    // Keep the connection up while the victim reads the rest.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), swarm.select_next_some()).await;
    }
    Ok(sent)
}

/// Honest posts published 100 ms apart; returns their delivery times (ms) at the
/// victim and how many did not arrive within [`DELIVERY_TIMEOUT`].
async fn honest_round(
    honest: &NodeHandle,
    arrivals: &Arc<Mutex<HashMap<String, Instant>>>,
    count: usize,
    label: &str,
) -> Result<(Vec<f64>, usize)> {
    let mut sent = Vec::new();
    for i in 0..count {
        let start = Instant::now();
        let post = honest
            .publish(Draft::new(
                Kind::Request,
                Category::Transport,
                format!("Ride needed {label} {i}"),
            ))
            .await?;
        sent.push((post.id.to_string(), start));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let got = arrivals.lock().await;
        if sent.iter().all(|(id, _)| got.contains_key(id)) || Instant::now() > deadline {
            let mut times: Vec<f64> = sent
                .iter()
                .filter_map(|(id, start)| {
                    got.get(id)
                        .map(|at| at.saturating_duration_since(*start).as_secs_f64() * 1e3)
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let lost = sent.len() - times.len();
            return Ok((times, lost));
        }
        drop(got);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(keys: usize, total: usize, honest_count: usize) -> Result<()> {
    let victim = Victim::start().await?;
    // One honest author per round: an author's relay rate (a burst of 20, then one post
    // per 5 s) would otherwise hold back the second round's posts whatever the flood.
    let (qdir, fdir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let honest_quiet = honest_node(qdir.path(), victim.addr.clone()).await?;
    let honest_flood = honest_node(fdir.path(), victim.addr.clone()).await?;
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    {
        let events = victim.client.events().await?;
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(Ok((name, data))) = events.next().await {
                if name == "post_added" {
                    if let Some(id) = data["post"]["id"].as_str() {
                        arrivals.lock().await.insert(id.to_string(), Instant::now());
                    }
                }
            }
        });
    }
    // Connected, and meshes formed (a few gossipsub heartbeats).
    let deadline = Instant::now() + Duration::from_secs(30);
    while victim.client.status().await?["connected_peers"].as_u64() < Some(2) {
        if Instant::now() > deadline {
            bail!("the honest nodes did not connect");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (quiet, quiet_lost) = honest_round(&honest_quiet, &arrivals, honest_count, "quiet").await?;
    let posts_before = victim.posts().await?;
    let rss_before = rss_mb(victim.pid());
    let disk_before = disk_mb(victim.dir.path());
    let cpu_before = cpu_secs(victim.pid());

    let per_key = total.div_ceil(keys);
    let posts =
        tokio::task::spawn_blocking(move || flood_posts(keys, per_key, keys as u32)).await?;
    let flood_len = posts.len();
    let flooder = {
        let addr = victim.addr.clone();
        tokio::task::spawn_blocking(move || flood(addr, posts)).await??
    };
    let started = Instant::now();
    let (during, during_lost) =
        honest_round(&honest_flood, &arrivals, honest_count, "flood").await?;
    let sent = tokio::task::spawn_blocking(move || flooder.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the flooder thread panicked"))??;
    let flood_secs = started.elapsed().as_secs_f64();
    // Let the victim finish what is in flight.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts_after = victim.posts().await?;
    let cpu = cpu_secs(victim.pid()) - cpu_before;
    let rss_after = rss_mb(victim.pid());
    let disk_after = disk_mb(victim.dir.path());
    let status = victim.client.status().await?;

    let honest_stored = (honest_count - during_lost) as u64;
    let accepted = posts_after
        .saturating_sub(posts_before)
        .saturating_sub(honest_stored);
    let refused = (sent as u64).saturating_sub(accepted);
    emit(keys, "flood_posts_made", flood_len as u64, "posts");
    emit(keys, "flood_posts_sent", sent as u64, "posts");
    emit(keys, "flood_rate", sent as f64 / flood_secs, "posts/s");
    emit(keys, "flood_accepted", accepted, "posts");
    emit(keys, "flood_refused", refused, "posts");
    emit(
        keys,
        "over_peer_rate",
        status["health"]["gossip_over_peer_rate"].clone(),
        "messages",
    );
    emit(
        keys,
        "over_author_rate",
        status["health"]["gossip_over_author_rate"].clone(),
        "messages",
    );
    let (q50, q99) = (percentile(&quiet, 0.5), percentile(&quiet, 0.99));
    let (d50, d99) = (percentile(&during, 0.5), percentile(&during, 0.99));
    emit(keys, "honest_p50_quiet", q50, "ms");
    emit(keys, "honest_p99_quiet", q99, "ms");
    emit(keys, "honest_p50_flood", d50, "ms");
    emit(keys, "honest_p99_flood", d99, "ms");
    emit(keys, "honest_lost_quiet", quiet_lost as u64, "posts");
    emit_goal(
        keys,
        "honest_lost_flood",
        during_lost as f64,
        "posts",
        "0",
        during_lost == 0,
    );
    // Sub-millisecond quiet figures would make any ratio look bad: floor them at 1 ms.
    let r50 = d50 / q50.max(1.0);
    let r99 = d99 / q99.max(1.0);
    emit_goal(keys, "honest_p50_ratio", r50, "x", "<= 2", r50 <= 2.0);
    emit_goal(keys, "honest_p99_ratio", r99, "x", "<= 2", r99 <= 2.0);
    emit(keys, "victim_rss_before", rss_before, "MB");
    emit_goal(
        keys,
        "victim_rss_after",
        rss_after,
        "MB",
        "<= before + 100",
        rss_after <= rss_before + 100.0,
    );
    emit(keys, "victim_disk_before", disk_before, "MB");
    emit_goal(
        keys,
        "victim_disk_after",
        disk_after,
        "MB",
        "<= before + 50",
        disk_after <= disk_before + 50.0,
    );
    emit(keys, "victim_cpu", cpu, "s");
    if refused > 0 {
        emit(
            keys,
            "victim_cpu_per_refused",
            cpu * 1e6 / refused as f64,
            "us",
        );
    }
    honest_quiet.shutdown().await?;
    honest_flood.shutdown().await?;
    victim.stop();
    Ok(())
}

fn main() -> Result<()> {
    let mut keys = Vec::new();
    let mut total = 10_000;
    let mut honest = 20;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--posts" => total = args.next().context("--posts N")?.parse()?,
            "--honest" => honest = args.next().context("--honest N")?.parse()?,
            "--bench" => {}
            k => keys.push(
                k.parse::<usize>()
                    .with_context(|| format!("not a key count: {k}"))?,
            ),
        }
    }
    if keys.is_empty() {
        keys = vec![1, 100, 1_000];
    }
    if !(1..=20).contains(&honest) {
        bail!("--honest takes 1 to 20: an honest author's relay burst is 20 posts");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        for k in keys {
            run(k, total, honest).await?;
        }
        Ok(())
    })
}
