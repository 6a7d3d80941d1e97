//! Circuit relay v2 on loopback (in-process nodes, real sockets): nodes that count as
//! private hold relay slots, are reached through them, move to another relay when
//! theirs goes away, and invites carry the relayed addresses. The same behaviour
//! behind real NAT is `tests/netns.rs`.

mod common;

use aidmesh::config::ReachabilityMode;
use aidmesh::net::Reachable;
use aidmesh::{Draft, NodeHandle};
use aidmesh_proto::{Category, Kind};
use common::{addr_of, spawn_node_with, wait_connected, wait_for, wait_until};
use libp2p::{Multiaddr, PeerId};

/// A relay: serves circuits; AutoNAT may count loopback so it learns it is public
/// (which a relay needs before it hands out slots).
async fn relay(dir: &std::path::Path) -> NodeHandle {
    spawn_node_with(dir, &[], &["commons"], |c| {
        c.relay.serve = true;
        c.network.autonat_only_global_ips = false;
    })
    .await
}

/// A node that acts as if behind NAT.
async fn home(dir: &std::path::Path, bootstrap: &[Multiaddr]) -> NodeHandle {
    spawn_node_with(dir, bootstrap, &["commons"], |c| {
        c.network.reachability = ReachabilityMode::Private;
        c.network.autonat_only_global_ips = false;
    })
    .await
}

async fn relays_of(node: &NodeHandle) -> Vec<PeerId> {
    node.status().await.unwrap().reachability.relays
}

fn draft(title: &str) -> Draft {
    Draft::new(Kind::Offer, Category::Food, title)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_node_is_reached_through_its_relay() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let r = relay(dirs[0].path()).await;
    let r_addr = addr_of(&r).await;
    let a = home(dirs[1].path(), std::slice::from_ref(&r_addr)).await;
    let b = home(dirs[2].path(), std::slice::from_ref(&r_addr)).await;

    wait_until("the relay is public", || async {
        r.status().await.unwrap().reachability.status == Reachable::Public
    })
    .await;
    wait_until("A holds a slot on the relay", || async {
        relays_of(&a).await == [r.peer_id()]
    })
    .await;
    let st = a.status().await.unwrap().reachability;
    assert_eq!(st.status, Reachable::Private);
    assert!(st.fixed);
    let relayed = st.relayed_addrs[0].clone();
    assert!(
        relayed.to_string().contains(&format!(
            "/p2p/{}/p2p-circuit/p2p/{}",
            r.peer_id(),
            a.peer_id()
        )),
        "{relayed}"
    );
    assert!(r.status().await.unwrap().reachability.relay_server);

    // An invite from A names the relayed address; B joins through it.
    let invite = a.invite("commons").await.unwrap();
    let joining = aidmesh::invite::read(&invite.encode().unwrap()).unwrap();
    assert!(
        joining.bootstrap.contains(&relayed),
        "{:?}",
        joining.bootstrap
    );
    let mut b_events = b.subscribe();
    b.dial(relayed).await.unwrap();
    wait_connected(&b, a.peer_id()).await;

    // A post from A reaches B, and A learns someone has it.
    let post = a.publish(draft("Bread from the bakery")).await.unwrap();
    wait_for(&mut b_events, "A's post on B", |e| {
        common::post_event(e, &post.id, 1)
    })
    .await;
    wait_until("A hears a peer has its post", || async {
        a.status()
            .await
            .unwrap()
            .reachability
            .last_seen_by_peer
            .is_some()
    })
    .await;
    for n in [&a, &b, &r] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_node_moves_to_another_relay_when_its_relay_goes_away() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut relays = Vec::new();
    for d in &dirs[..3] {
        relays.push(relay(d.path()).await);
    }
    let mut addrs = Vec::new();
    for r in &relays {
        addrs.push(addr_of(r).await);
    }
    let a = home(dirs[3].path(), &addrs).await;
    for r in &relays {
        wait_until("each relay is public", || async {
            r.status().await.unwrap().reachability.status == Reachable::Public
        })
        .await;
    }
    wait_until("A holds two relay slots", || async {
        relays_of(&a).await.len() == 2
    })
    .await;
    let held = relays_of(&a).await;
    let gone = relays.iter().position(|r| r.peer_id() == held[0]).unwrap();
    relays[gone].shutdown().await.unwrap();
    wait_until(
        "A holds two slots again, neither on the stopped relay",
        || async {
            let now = relays_of(&a).await;
            now.len() == 2 && !now.contains(&held[0])
        },
    )
    .await;
    a.shutdown().await.unwrap();
    for (i, r) in relays.iter().enumerate() {
        if i != gone {
            r.shutdown().await.unwrap();
        }
    }
}
