//! Catch-up sync between real nodes over loopback: new nodes, healed partitions,
//! revisions made while a node was away, expiry, and peers that lie.

mod common;

use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status};
use aidmesh::store::StatusFilter;
use aidmesh::{Draft, Edit, Event, NodeHandle, Query};
use common::*;

fn draft(title: &str) -> Draft {
    Draft {
        body: "Pick up any evening".into(),
        ..Draft::new(Kind::Offer, Category::Goods, title)
    }
}

/// `n` valid posts by a few authors (at least 4, at most 50 posts each: within the
/// per-author quota of `proto/LIMITS.md`), made now.
fn posts(n: u32, seed: u8) -> Vec<SignedPost> {
    let now = aidmesh::clock::now_ms();
    let authors: Vec<_> = (0..n.div_ceil(50).max(4))
        .map(|i| {
            let mut secret = [seed; 32];
            secret[1..5].copy_from_slice(&i.to_be_bytes());
            aidmesh::Identity::from_secret(secret)
        })
        .collect();
    (0..n)
        .map(|i| {
            let who = &authors[i as usize % authors.len()];
            let mut nonce = [seed; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            let nonce = Nonce(nonce);
            let post = Post {
                id: PostId::derive(&who.author(), &nonce),
                author: who.author(),
                nonce,
                revision: 1,
                circle: "commons".into(),
                kind: Kind::Request,
                status: Status::Open,
                category: Category::Food,
                title: format!("Request {i} from batch {seed}"),
                body: "Any amount helps".into(),
                tags: vec![format!("t{}", i % 7)],
                location: None,
                quantity: None,
                contact: None,
                created_at: now - u64::from(i),
                updated_at: now - u64::from(i),
                expires_at: now + 7 * DAY,
            };
            sign(who, &post)
        })
        .collect()
}

fn all() -> Query {
    Query {
        status: StatusFilter::Any,
        limit: aidmesh::store::MAX_LIMIT,
        ..Query::default()
    }
}

async fn wait_for_count(node: &NodeHandle, n: u64) {
    wait_until(&format!("the node holds {n} posts"), || async {
        node.store().len() == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_catches_up_on_2000_posts() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = spawn_node(d1.path(), &[], &["commons"]).await;
    let held = posts(2000, 1);
    let ids: Vec<_> = held.iter().map(|s| s.decode_post().unwrap().id).collect();
    for r in a
        .store()
        .insert_batch(held, aidmesh::clock::now_ms())
        .unwrap()
    {
        r.unwrap();
    }
    let b = spawn_node(d2.path(), &[addr_of(&a).await], &["commons"]).await;
    let mut rx = b.subscribe();
    let (fetched, error) = wait_for(&mut rx, "B's sync with A", |e| match e {
        Event::SyncFinished {
            peer_id,
            fetched,
            error,
            ..
        } if *peer_id == a.peer_id() => Some((*fetched, error.clone())),
        _ => None,
    })
    .await;
    assert_eq!(error, None);
    assert_eq!(fetched, 2000);
    assert_eq!(b.store().len(), 2000);
    for id in &ids {
        assert!(b.get(id).unwrap().is_some());
    }
    let status = b.status().await.unwrap();
    let s = status
        .syncs
        .iter()
        .find(|s| s.peer_id == a.peer_id())
        .unwrap();
    assert!(
        s.ok && s.fetched_total >= 2000 && s.round_trips <= 4,
        "{s:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partitions_converge_to_the_union() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let a1 = spawn_node(dirs[0].path(), &[], &["commons"]).await;
    let a2 = spawn_node(dirs[1].path(), &[addr_of(&a1).await], &["commons"]).await;
    let b1 = spawn_node(dirs[2].path(), &[], &["commons"]).await;
    let b2 = spawn_node(dirs[3].path(), &[addr_of(&b1).await], &["commons"]).await;
    wait_connected(&a1, a2.peer_id()).await;
    wait_connected(&b1, b2.peer_id()).await;
    // Each side posts while the two cannot see each other.
    for (i, n) in [&a1, &a2, &b1, &b2].iter().enumerate() {
        for j in 0..5 {
            n.publish(draft(&format!("node {i} post {j}")))
                .await
                .unwrap();
        }
    }
    wait_for_count(&a1, 10).await;
    wait_for_count(&b2, 10).await;
    // The partition heals through one link.
    a1.dial(addr_of(&b1).await).await.unwrap();
    for n in [&a1, &a2, &b1, &b2] {
        wait_for_count(n, 20).await;
    }
    let titles = |n: &NodeHandle| {
        let mut t: Vec<String> = n
            .query(&all())
            .unwrap()
            .iter()
            .map(|p| p.post().title.clone())
            .collect();
        t.sort();
        t
    };
    assert_eq!(titles(&a2), titles(&b2));
    for n in [a1, a2, b1, b2] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_was_away_sees_edits_and_withdrawals_and_no_expired_post() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let fast_sweep = |c: &mut aidmesh::Config| c.store.sweep_interval_secs = 1;
    let a = spawn_node_with(d1.path(), &[], &["commons"], fast_sweep).await;
    let b = spawn_node_with(d2.path(), &[addr_of(&a).await], &["commons"], fast_sweep).await;
    wait_connected(&a, b.peer_id()).await;
    let edited = a.publish(draft("Will be edited")).await.unwrap();
    let withdrawn = a.publish(draft("Will be withdrawn")).await.unwrap();
    let short = a
        .publish(Draft {
            expires_in_secs: Some(2),
            ..draft("Expires soon")
        })
        .await
        .unwrap();
    wait_for_count(&b, 3).await;
    let b_id = b.peer_id();
    b.shutdown().await.unwrap();
    drop(b);

    a.edit(
        &edited.id,
        Edit {
            title: Some("Edited while B was away".into()),
            ..Edit::default()
        },
    )
    .await
    .unwrap();
    a.withdraw(&withdrawn.id).await.unwrap();
    // Let the short post expire and be swept on A while B is away.
    wait_until("the short post expires on A", || async {
        a.get(&short.id).unwrap().is_none()
    })
    .await;

    let b = spawn_node_with(d2.path(), &[], &["commons"], fast_sweep).await;
    assert_eq!(b.peer_id(), b_id);
    wait_until("B has the newer revisions", || async {
        let e = b.get(&edited.id).unwrap().map(|p| p.post().revision);
        let w = b.get(&withdrawn.id).unwrap().map(|p| p.post().status);
        e == Some(2) && w == Some(Status::Withdrawn)
    })
    .await;
    assert_eq!(
        b.get(&edited.id).unwrap().unwrap().post().title,
        "Edited while B was away"
    );
    // B's own copy of the expired post is swept, and it never comes back to A.
    wait_until("the short post is gone from B", || async {
        b.get(&short.id).unwrap().is_none()
    })
    .await;
    let mut rx = a.subscribe();
    a.sync_with(b.peer_id(), "commons").await.unwrap();
    wait_for(&mut rx, "a sync after B's return", |e| match e {
        Event::SyncFinished {
            peer_id,
            error: None,
            ..
        } if *peer_id == b.peer_id() => Some(()),
        _ => None,
    })
    .await;
    assert!(a.get(&short.id).unwrap().is_none());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A bare libp2p swarm that speaks `/aidmesh/sync/1` and answers every request with
/// `answer`; it dials `node` and returns its peer id.
async fn liar(
    node: &NodeHandle,
    answer: impl Fn(aidmesh::proto::sync::Request) -> aidmesh::proto::sync::Response + Send + 'static,
) -> libp2p::PeerId {
    use libp2p::futures::StreamExt;
    use libp2p::request_response;
    let mut swarm = sync_swarm();
    let id = *swarm.local_peer_id();
    swarm.dial(addr_of(node).await).unwrap();
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
                    Ok(r) => answer(r),
                    Err(_) => continue,
                };
                let bytes = aidmesh::proto::sync::encode_response(&response).unwrap();
                let _ = swarm.behaviour_mut().send_response(channel, bytes);
            }
        }
    });
    wait_connected(node, id).await;
    id
}

async fn sync_error(node: &NodeHandle, peer: libp2p::PeerId) -> Option<String> {
    let mut rx = node.subscribe();
    node.sync_with(peer, "commons").await.unwrap();
    wait_for(&mut rx, "the sync with the liar to end", |e| match e {
        Event::SyncFinished { peer_id, error, .. } if *peer_id == peer => Some(error.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_sync_peers_end_their_session_and_change_nothing() {
    use aidmesh::proto::riblt::{self, Item};
    use aidmesh::proto::sync::{Request, Response};
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let honest = spawn_node(d1.path(), &[], &["commons"]).await;

    // 1. Well-formed symbols that never decode, as many as asked for.
    let junk_symbols = |from: u32, n: u32| Response::Symbols {
        set_size: 5,
        from,
        symbols: vec![
            riblt::Symbol {
                checksum: 7,
                count: 3,
                ..Default::default()
            };
            n as usize
        ],
    };
    let junk = liar(&honest, move |req| match req {
        Request::Hello { first, .. } => junk_symbols(0, first),
        Request::Estimate { from, .. } => junk_symbols(from, 200),
        Request::More { from, to, .. } => junk_symbols(from, to - from),
        Request::Fetch { .. } => Response::Refused {
            reason: "no".into(),
        },
    })
    .await;
    let err = sync_error(&honest, junk).await.expect("the session fails");
    assert!(err.contains("do not converge"), "{err}");

    // 2. Announces a post, then serves a forged one under that hash.
    let mut forged = posts(1, 40).remove(0);
    forged.signature.0[0] ^= 1;
    let item = Item::new(
        forged.decode_post().unwrap().updated_at,
        &forged.content_hash(),
    );
    let serve = forged.clone();
    let forger = liar(&honest, move |req| match req {
        Request::Hello { .. } => Response::Symbols {
            set_size: 1,
            from: 0,
            symbols: riblt::encode(&[item], 0, 32),
        },
        Request::Fetch { .. } => Response::Posts {
            posts: vec![serve.clone()],
        },
        _ => Response::Refused {
            reason: "no".into(),
        },
    })
    .await;
    let err = sync_error(&honest, forger)
        .await
        .expect("the session fails");
    assert!(err.contains("invalid"), "{err}");

    // 3. Announces another post (not the forged one: the honest node remembers it
    // refused that and does not fetch it again), then serves a valid post nobody
    // asked for.
    let announced = posts(1, 60).remove(0);
    let announced = Item::new(
        announced.decode_post().unwrap().updated_at,
        &announced.content_hash(),
    );
    let unasked = posts(1, 50).remove(0);
    let pusher = liar(&honest, move |req| match req {
        Request::Hello { .. } => Response::Symbols {
            set_size: 1,
            from: 0,
            symbols: riblt::encode(&[announced], 0, 32),
        },
        Request::Fetch { .. } => Response::Posts {
            posts: vec![unasked.clone()],
        },
        _ => Response::Refused {
            reason: "no".into(),
        },
    })
    .await;
    let err = sync_error(&honest, pusher)
        .await
        .expect("the session fails");
    assert!(err.contains("not asked for"), "{err}");

    assert_eq!(honest.store().len(), 0, "nothing from a liar was stored");
    // A liar is not synced with again for a while.
    assert!(honest
        .status()
        .await
        .unwrap()
        .syncs
        .iter()
        .any(|s| s.peer_id == junk && !s.ok));

    // The honest node keeps working with honest peers.
    let other = spawn_node(d2.path(), &[addr_of(&honest).await], &["commons"]).await;
    wait_connected(&honest, other.peer_id()).await;
    let mut rx = other.subscribe();
    let post = honest.publish(draft("Still serving")).await.unwrap();
    wait_for(&mut rx, "an honest post", |e| post_event(e, &post.id, 1)).await;
    honest.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_post_in_the_first_of_several_batches_ends_the_session_there() {
    use aidmesh::proto::riblt::{self, Item, ITEM_HASH_BYTES};
    use aidmesh::proto::sync::{Request, Response};
    let d1 = tempfile::tempdir().unwrap();
    let honest = spawn_node(d1.path(), &[], &["commons"]).await;
    // 600 posts, three fetches; the newest (fetched first) is forged.
    let mut served = posts(600, 70);
    served[0].signature.0[0] ^= 1;
    let mut items: Vec<Item> = served
        .iter()
        .map(|s| Item::new(s.decode_post().unwrap().updated_at, &s.content_hash()))
        .collect();
    items.sort();
    let symbols = move |from: u32, to: u32| Response::Symbols {
        set_size: 600,
        from,
        symbols: riblt::encode(&items, from as usize, to as usize),
    };
    let liar_peer = liar(&honest, move |req| match req {
        Request::Hello { first, .. } => symbols(0, first),
        Request::Estimate { from, .. } => symbols(from, from + 1_000),
        Request::More { from, to, .. } => symbols(from, to),
        Request::Fetch { hashes } => Response::Posts {
            posts: served
                .iter()
                .filter(|s| {
                    hashes
                        .iter()
                        .any(|h| h[..] == s.content_hash().0[..ITEM_HASH_BYTES])
                })
                .cloned()
                .collect(),
        },
    })
    .await;
    let err = sync_error(&honest, liar_peer)
        .await
        .expect("the session fails");
    assert!(err.contains("invalid"), "{err}");
    // The valid posts of the forged batch are kept; the batch fetched while it was
    // being stored is not.
    assert_eq!(honest.store().len(), 255);
    honest.shutdown().await.unwrap();
}
