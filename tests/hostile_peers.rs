//! Peers that try to exhaust a node: gossip floods of valid posts (one key, many keys),
//! a forged sync peer claiming a huge set, thousands of raw connections to the p2p
//! port, and a second node on a port in use. Real nodes and raw libp2p peers over
//! loopback.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status};
use aidmesh::store::StatusFilter;
use aidmesh::{Draft, Identity, NodeHandle, Query};
use common::*;
use libp2p::futures::StreamExt;
use libp2p::{gossipsub, Multiaddr};

/// `count` valid posts by `who`, made now, numbered from `first`.
fn posts_by(who: &Identity, first: u32, count: u32) -> Vec<SignedPost> {
    let now = aidmesh::clock::now_ms();
    (first..first + count)
        .map(|i| {
            let mut nonce = [7u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
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
                title: format!("Flood post {i}"),
                body: "x".repeat(200),
                tags: vec![],
                location: None,
                quantity: None,
                contact: None,
                created_at: now - u64::from(i % 1000),
                updated_at: now - u64::from(i % 1000),
                expires_at: now + 7 * DAY,
            };
            sign(who, &post)
        })
        .collect()
}

/// Posts by `author` stored on `node`.
fn count_by(node: &NodeHandle, author: &Identity) -> u64 {
    node.store()
        .count(
            &Query {
                author: Some(author.author()),
                status: StatusFilter::Any,
                limit: 1,
                ..Query::default()
            },
            aidmesh::clock::now_ms(),
        )
        .unwrap()
}

/// A raw gossipsub peer that publishes everything it is handed as fast as gossipsub
/// takes it (a full queue drops, as a flooder would not care); it never validates.
async fn flooder(dial: Multiaddr) -> tokio::sync::mpsc::UnboundedSender<Vec<u8>> {
    let (mut swarm, topic) = gossip_swarm(dial, "commons", Duration::from_secs(120)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                data = rx.recv() => match data {
                    Some(d) => { let _ = swarm.behaviour_mut().publish(topic.clone(), d); }
                    None => break,
                },
                _ = swarm.select_next_some() => {}
            }
        }
    });
    tx
}

/// The node answers its API-level status within a few seconds.
async fn responsive(node: &NodeHandle) {
    tokio::time::timeout(Duration::from_secs(10), node.status())
        .await
        .expect("the node answers while flooded")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_floods_of_valid_posts_are_limited_and_honest_posts_still_arrive() {
    let dv = tempfile::tempdir().unwrap();
    let dh = tempfile::tempdir().unwrap();
    let victim = spawn_node(dv.path(), &[], &["commons"]).await;
    let honest = spawn_node(dh.path(), &[addr_of(&victim).await], &["commons"]).await;
    wait_connected(&victim, honest.peer_id()).await;

    // Older honest posts, there before the flood.
    let mut rx = victim.subscribe();
    let mut older = Vec::new();
    for i in 0..3 {
        let p = honest
            .publish(Draft::new(Kind::Offer, Category::Food, format!("Soup {i}")))
            .await
            .unwrap();
        wait_for(&mut rx, "an honest post", |e| post_event(e, &p.id, 1)).await;
        older.push(p.id);
    }

    // 5,000 valid posts from one key, as fast as the raw peer can send them.
    let spammer = identity(200);
    let one_key = flooder(addr_of(&victim).await).await;
    for p in posts_by(&spammer, 0, 5_000) {
        one_key.send(p.encode().unwrap()).unwrap();
    }
    responsive(&victim).await;

    // 1,000 keys × 5 posts from another raw peer.
    let many_keys = flooder(addr_of(&victim).await).await;
    let sybils: Vec<Identity> = (0..1_000u32)
        .map(|i| {
            let mut secret = [9u8; 32];
            secret[..4].copy_from_slice(&i.to_be_bytes());
            Identity::from_secret(secret)
        })
        .collect();
    for who in &sybils {
        for p in posts_by(who, 0, 5) {
            many_keys.send(p.encode().unwrap()).unwrap();
        }
    }
    responsive(&victim).await;

    // The limits were at work.
    wait_until("the victim refuses part of the flood", || async {
        let h = victim.status().await.unwrap().health;
        h.gossip_over_peer_rate + h.gossip_over_author_rate > 0
    })
    .await;

    // An honest post from the third node still arrives, during the flood.
    let fresh = honest
        .publish(Draft::new(
            Kind::Request,
            Category::Transport,
            "Ride to the clinic",
        ))
        .await
        .unwrap();
    wait_for(&mut rx, "the honest post sent during the flood", |e| {
        post_event(e, &fresh.id, 1)
    })
    .await;
    responsive(&victim).await;

    let kept = count_by(&victim, &spammer);
    assert!(kept <= 100, "{kept} posts of the one key kept");
    let relayed = count_by(&honest, &spammer);
    assert!(relayed <= 100, "{relayed} posts of the one key relayed");
    let sybil_posts: u64 = sybils.iter().map(|s| count_by(&victim, s)).sum();
    assert!(
        sybil_posts < 5_000,
        "all {sybil_posts} posts of the many keys were taken"
    );
    for id in &older {
        assert!(
            victim.store().get(id).unwrap().is_some(),
            "older honest post kept"
        );
    }
    let health = victim.status().await.unwrap().health;
    assert!(health.gossip_over_peer_rate > 0, "{health:?}");
    victim.shutdown().await.unwrap();
    honest.shutdown().await.unwrap();
}

/// A raw peer that speaks `/aidmesh/sync/1` and gossipsub (so the node starts a sync
/// with it), and answers every reconciliation request with as many junk symbols as it
/// may, under a claimed set size of 2^40. Returns its peer id and a counter of the
/// symbols it sent.
async fn huge_set_liar(
    node: &NodeHandle,
) -> (libp2p::PeerId, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use aidmesh::proto::riblt::Symbol;
    use aidmesh::proto::sync::{Request, Response, MAX_SYMBOLS};
    use libp2p::request_response::{self, ProtocolSupport};
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(libp2p::swarm::NetworkBehaviour)]
    struct Liar {
        sync: request_response::Behaviour<aidmesh::sync::Codec>,
        gossipsub: gossipsub::Behaviour,
    }
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Liar {
            sync: request_response::Behaviour::with_codec(
                aidmesh::sync::Codec::default(),
                [(aidmesh::sync::PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(120)),
            ),
            gossipsub: gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossipsub::Config::default(),
            )
            .unwrap(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&aidmesh::net::gossip::topic("commons"))
        .unwrap();
    let id = *swarm.local_peer_id();
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    swarm.dial(addr_of(node).await).unwrap();
    let junk = |from: u32, n: u32| Response::Symbols {
        set_size: 1 << 40,
        from,
        symbols: vec![
            Symbol {
                checksum: 7,
                count: 3,
                ..Default::default()
            };
            n as usize
        ],
    };
    tokio::spawn(async move {
        loop {
            if let libp2p::swarm::SwarmEvent::Behaviour(LiarEvent::Sync(
                request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                },
            )) = swarm.select_next_some().await
            {
                let response = match aidmesh::proto::sync::decode_request(&request) {
                    Ok(Request::Hello { .. }) => junk(0, MAX_SYMBOLS),
                    Ok(Request::Estimate { from, .. }) => junk(from, MAX_SYMBOLS),
                    Ok(Request::More { from, to, .. }) => junk(from, to - from),
                    _ => Response::Posts { posts: vec![] },
                };
                if let Response::Symbols { symbols, .. } = &response {
                    counter.fetch_add(symbols.len() as u64, Ordering::Relaxed);
                }
                let bytes = aidmesh::proto::sync::encode_response(&response).unwrap();
                let _ = swarm.behaviour_mut().sync.send_response(channel, bytes);
            }
        }
    });
    wait_connected(node, id).await;
    (id, sent)
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_sync_peer_claiming_a_huge_set_leaves_memory_bounded() {
    let dv = tempfile::tempdir().unwrap();
    let victim = spawn_node(dv.path(), &[], &["commons"]).await;
    let mut rx = victim.subscribe();
    let before = rss();
    let (liar, sent) = huge_set_liar(&victim).await;
    let error = wait_for(&mut rx, "the sync with the liar to end", |e| match e {
        aidmesh::Event::SyncFinished { peer_id, error, .. } if *peer_id == liar => {
            Some(error.clone())
        }
        _ => None,
    })
    .await
    .expect("the session fails");
    assert!(error.contains("do not converge"), "{error}");
    let symbols = sent.load(std::sync::atomic::Ordering::Relaxed);
    let bound =
        (aidmesh::sync::MAX_SESSION_SYMBOLS + aidmesh::proto::sync::MAX_SYMBOLS as usize) as u64;
    assert!(symbols <= bound, "{symbols} symbols taken in");
    let grown = rss().saturating_sub(before);
    // The session holds at most MAX_SESSION_SYMBOLS × 40 bytes (32 MB); the liar's
    // responses pass through this same process too.
    assert!(grown < 200 << 20, "RSS grew by {} MB", grown >> 20);
    responsive(&victim).await;
    victim.shutdown().await.unwrap();
}

fn aidmesh_bin(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aidmesh"));
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("AIDMESH_DATA_DIR")
        .env_remove("RUST_LOG");
    c
}

/// Starts `aidmesh run` under `ulimit -n 1024` (soft and hard, as a stingy service
/// manager would), and returns it with its p2p listen address.
fn run_under_fd_limit(dir: &std::path::Path) -> (std::process::Child, String) {
    let bin = env!("CARGO_BIN_EXE_aidmesh");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(bin)
        .arg("--data-dir")
        .arg(dir)
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
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // A stuck node must fail the test, not outlive it.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(180));
        let _ = Command::new("kill").args(["-9", &pid]).status();
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut listening = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("listening") && line.contains("/tcp/") {
            listening = line
                .split("address=")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or(a).to_string());
        }
        if line.contains("aidmesh is running") {
            break;
        }
    }
    // Keep draining the log so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, listening.expect("the listen address is logged"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_connections_to_the_p2p_port_leave_the_api_answering() {
    // This process holds the 2,000 client ends.
    rlimit::increase_nofile_limit(8192).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = run_under_fd_limit(dir.path());
    let addr: Multiaddr = addr.parse().unwrap();
    let port = addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(p) => Some(p),
            _ => None,
        })
        .unwrap();
    let data_dir = aidmesh::DataDir::resolve(Some(dir.path().to_path_buf())).unwrap();
    let client = aidmesh::client::ApiClient::from_data_dir(&data_dir).unwrap();

    // 2,000 connections that never say a word, all held open.
    let mut held = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        // The node closing refused ones fast is the point; a refused connect is fine.
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            held.push(s);
        }
    }
    // With every connection still held open, the API answers every request.
    for _ in 0..10 {
        let status = tokio::time::timeout(Duration::from_secs(10), client.status())
            .await
            .expect("the API answers while the p2p port is flooded")
            .unwrap();
        assert!(status["peer_id"].as_str().is_some());
    }
    let status = client.status().await.unwrap();
    let refused = status["health"]["connections_refused"].as_u64().unwrap();
    assert!(refused > 0, "{status}");
    drop(held);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_second_node_on_a_port_in_use_fails_with_one_line() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let (mut first, addr) = run_under_fd_limit(d1.path());
    let addr = addr.split("/p2p/").next().unwrap().to_string();
    let out = aidmesh_bin(d2.path())
        .args([
            "run",
            "--no-mdns",
            "--listen",
            &addr,
            "--api",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the second node started");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(lines[0].contains("already in use"), "{err}");
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(first.wait().unwrap().success());
}

/// `count` valid posts by `count` authors, dated `ahead` ms ahead of this clock.
fn future_posts(count: u8, ahead: u64) -> Vec<SignedPost> {
    let now = aidmesh::clock::now_ms() + ahead;
    (0..count)
        .map(|i| {
            let who = identity(100 + i);
            let nonce = Nonce([i; 16]);
            let post = Post {
                id: PostId::derive(&who.author(), &nonce),
                author: who.author(),
                nonce,
                revision: 1,
                circle: "commons".into(),
                kind: Kind::Offer,
                status: Status::Open,
                category: Category::Food,
                title: format!("Tomorrow's bread {i}"),
                body: String::new(),
                tags: vec![],
                location: None,
                quantity: None,
                contact: None,
                created_at: now,
                updated_at: now,
                expires_at: now + 7 * DAY,
            };
            sign(&who, &post)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_dated_posts_are_held_not_fetched_again_and_show_as_clock_skew() {
    use aidmesh::proto::riblt::{self, Item};
    use aidmesh::proto::sync::{Request, Response};
    use libp2p::request_response;
    use std::sync::atomic::{AtomicU32, Ordering};

    let dv = tempfile::tempdir().unwrap();
    let victim = spawn_node(dv.path(), &[], &["commons"]).await;
    // A peer whose clock is an hour ahead of ours: its posts are an hour in our future.
    let posts = future_posts(8, 3_600_000);
    let mut items: Vec<Item> = posts
        .iter()
        .map(|p| Item::new(p.decode_post().unwrap().updated_at, &p.content_hash()))
        .collect();
    items.sort();
    let fetches = std::sync::Arc::new(AtomicU32::new(0));
    let counter = fetches.clone();
    let mut swarm = sync_swarm();
    let ahead = *swarm.local_peer_id();
    swarm.dial(addr_of(&victim).await).unwrap();
    let served = posts.clone();
    tokio::spawn(async move {
        loop {
            if let libp2p::swarm::SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = swarm.select_next_some().await
            {
                let response = match aidmesh::proto::sync::decode_request(&request) {
                    Ok(Request::Hello { first, .. }) => Response::Symbols {
                        set_size: items.len() as u64,
                        from: 0,
                        symbols: riblt::encode(&items, 0, first as usize),
                    },
                    Ok(Request::Fetch { hashes }) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let posts = served
                            .iter()
                            .filter(|p| hashes.iter().any(|h| p.content_hash().0[..16] == h[..]))
                            .cloned()
                            .collect();
                        Response::Posts { posts }
                    }
                    _ => Response::Refused {
                        reason: "no".into(),
                    },
                };
                let bytes = aidmesh::proto::sync::encode_response(&response).unwrap();
                let _ = swarm.behaviour_mut().send_response(channel, bytes);
            }
        }
    });
    wait_connected(&victim, ahead).await;

    let mut rx = victim.subscribe();
    for round in 0..2 {
        victim.sync_with(ahead, "commons").await.unwrap();
        let (fetched, error) = wait_for(&mut rx, "the sync to end", |e| match e {
            aidmesh::Event::SyncFinished {
                peer_id,
                fetched,
                error,
                ..
            } if *peer_id == ahead => Some((*fetched, error.clone())),
            _ => None,
        })
        .await;
        assert_eq!(error, None, "no blame for an honest peer with a fast clock");
        assert_eq!(fetched, if round == 0 { 8 } else { 0 }, "round {round}");
    }
    assert_eq!(
        fetches.load(Ordering::Relaxed),
        1,
        "fetched once, then skipped"
    );
    let health = victim.status().await.unwrap().health;
    assert_eq!(health.held_future_posts, 8);
    assert_eq!(victim.store().len(), 0, "not stored before their time");
    let skew = health.clock_skew.expect("eight posts by eight authors");
    assert!(skew.skewed, "{skew:?}");
    assert!(
        (3_500_000..3_700_000).contains(&skew.peers_ahead_ms),
        "{skew:?}"
    );
    victim.shutdown().await.unwrap();
}
