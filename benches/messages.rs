//! Private message benchmark: prints one JSON object per line.
//!
//! Run: `cargo bench --bench messages` (or, without a release build,
//! `cargo test --bench messages`, which runs it in the dev profile with optimised
//! dependencies). Figures:
//! - `seal_open_us_*`: sign + pad + seal, and open + verify, of one message.
//! - `envelope_bytes_*`: the envelope on the wire for a given text length.
//! - `held_disk_mb_per_10k` / `held_rss_mb_per_10k`: a holding peer's sled disk use and
//!   resident memory growth for 10,000 held envelopes (200-byte texts).
//! - `delivery_direct_ms_p50/p99`: reply on one node until the event on the author's
//!   node, two connected nodes over loopback.
//! - `delivery_held_ms_p50/p99`: the same when the two only share a third node, which
//!   holds the envelope and hands it over.

use std::time::{Duration, Instant};

use aidmesh::messages::holding::Holding;
use aidmesh::proto::message::{
    Body, ConversationId, Envelope, Message, MessageId, MessageKind, MAX_LIFETIME_MS,
};
use aidmesh::proto::{Category, Kind, PostId};
use aidmesh::{Config, DataDir, Draft, Event, Identity, Node, NodeConfig, NodeHandle};

fn line(metric: &str, value: f64, unit: &str, goal: Option<(f64, bool)>) {
    let mut v =
        serde_json::json!({"bench": "messages", "metric": metric, "value": value, "unit": unit});
    if let Some((g, lower_is_better)) = goal {
        v["goal"] = g.into();
        v["goal_met"] = (if lower_is_better {
            value <= g
        } else {
            value >= g
        })
        .into();
    }
    println!("{v}");
}

fn message(from: &Identity, to: &Identity, n: u32, text: &str, now: u64) -> Message {
    let post = PostId([(n % 251) as u8; 32]);
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    Message {
        id: MessageId(id),
        sender: from.author(),
        recipient: to.author(),
        post,
        conversation: ConversationId::derive(&post, &from.author()),
        sent_at: now,
        expires_at: now + MAX_LIFETIME_MS,
        body: Body::Text {
            kind: MessageKind::Reply,
            text: text.into(),
        },
    }
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn crypto() {
    let (a, b) = (
        Identity::from_secret([1; 32]),
        Identity::from_secret([2; 32]),
    );
    let now = aidmesh::clock::now_ms();
    for len in [10usize, 200, 1000, 2000] {
        let text = "x".repeat(len);
        let env = message(&a, &b, 1, &text, now)
            .seal(a.signing_key())
            .unwrap();
        line(
            &format!("envelope_bytes_text_{len}"),
            env.encode().unwrap().len() as f64,
            "bytes",
            None,
        );
    }
    let text = "y".repeat(200);
    let n = 2000;
    let m = message(&a, &b, 1, &text, now);
    let t = Instant::now();
    let mut envs = Vec::with_capacity(n);
    for _ in 0..n {
        envs.push(m.seal(a.signing_key()).unwrap());
    }
    let seal = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for e in &envs {
        e.open(b.signing_key(), now).unwrap();
    }
    let open = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    line("seal_us_text_200", seal, "us", Some((500.0, true)));
    line("open_us_text_200", open, "us", Some((500.0, true)));
    line(
        "seal_open_us_text_200",
        seal + open,
        "us",
        Some((1000.0, true)),
    );
}

fn holding() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let holding = Holding::open(&db, 100, 10_000).unwrap();
    let sender = Identity::from_secret([3; 32]);
    let recipients: Vec<Identity> = (0..100u8)
        .map(|i| Identity::from_secret([i + 10; 32]))
        .collect();
    let now = aidmesh::clock::now_ms();
    let text = "z".repeat(200);
    let envs: Vec<(Envelope, Vec<u8>)> = (0..10_000u32)
        .map(|i| {
            let to = &recipients[(i % 100) as usize];
            let e = message(&sender, to, i, &text, now)
                .seal(sender.signing_key())
                .unwrap();
            let w = e.encode().unwrap();
            (e, w)
        })
        .collect();
    let before = rss_kb();
    let t = Instant::now();
    for (e, w) in &envs {
        holding.hold(e, w).unwrap().unwrap();
    }
    db.flush().unwrap();
    let took = t.elapsed();
    let after = rss_kb();
    let disk = db.size_on_disk().unwrap();
    line("held_envelopes", holding.len() as f64, "count", None);
    line(
        "held_disk_mb_per_10k",
        disk as f64 / 1e6,
        "MB",
        Some((100.0, true)),
    );
    line(
        "held_rss_mb_per_10k",
        after.saturating_sub(before) as f64 / 1024.0,
        "MB",
        Some((64.0, true)),
    );
    line(
        "hold_us_per_envelope",
        took.as_secs_f64() * 1e6 / 10_000.0,
        "us",
        None,
    );
}

async fn node(dir: &std::path::Path, bootstrap: Vec<libp2p::Multiaddr>) -> NodeHandle {
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    config.network.bootstrap = bootstrap;
    config.network.mdns = false;
    config.network.kademlia = false;
    config.network.circles = vec!["commons".into()];
    config.messages.messages_per_hour = 10_000;
    Node::start(NodeConfig {
        data_dir: DataDir::resolve(Some(dir.to_path_buf())).unwrap(),
        config,
    })
    .await
    .unwrap()
}

async fn wait<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn latency(name: &str, author: &NodeHandle, asker: &NodeHandle, rounds: usize) {
    let post = author
        .publish(Draft {
            kind: Kind::Offer,
            category: Category::Goods,
            title: format!("Bench post {name}"),
            body: String::new(),
            tags: vec![],
            location: None,
            quantity: None,
            contact: None,
            circle: Some("commons".into()),
            expires_in_secs: None,
        })
        .await
        .unwrap();
    wait(|| async { asker.get(&post.id).unwrap().is_some() }).await;
    let mut events = author.subscribe();
    let mut ms = Vec::new();
    for i in 0..rounds {
        let text = format!("{name} message {i}");
        let t = Instant::now();
        asker.reply(&post.id, &text).await.unwrap();
        loop {
            match events.recv().await {
                Ok(Event::Message { message, .. }) if message.text == text => break,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    line(
        &format!("delivery_{name}_ms_p50"),
        percentile(&mut ms, 0.5),
        "ms",
        Some((100.0, true)),
    );
    line(
        &format!("delivery_{name}_ms_p99"),
        percentile(&mut ms, 0.99),
        "ms",
        Some((500.0, true)),
    );
}

async fn networks() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // Direct: two connected nodes.
    let a = node(da.path(), vec![]).await;
    let a_addr = a.status().await.unwrap().listen_addrs[0].clone();
    let b = node(db.path(), vec![a_addr]).await;
    wait(|| async {
        b.peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == a.peer_id())
    })
    .await;
    latency("direct", &a, &b, 50).await;
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    drop((a, b));

    // Held: the two only share a third node.
    let (de, df, dg) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let c = node(dc.path(), vec![]).await;
    let c_addr = c.status().await.unwrap().listen_addrs[0].clone();
    let e = node(de.path(), vec![c_addr.clone()]).await;
    let f = node(df.path(), vec![c_addr]).await;
    wait(|| async {
        f.peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == c.peer_id())
    })
    .await;
    wait(|| async {
        e.peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == c.peer_id())
    })
    .await;
    latency("held", &e, &f, 50).await;
    drop(dg);
    for n in [c, e, f] {
        n.shutdown().await.unwrap();
    }
}

fn main() {
    crypto();
    holding();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(networks());
}
