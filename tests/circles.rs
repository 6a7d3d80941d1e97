//! Circles on real nodes over loopback: members who share no peer but a public node
//! outside their circle find each other through the DHT; leaving a circle stops its
//! posts and drops them; posting or inviting outside the node's circles is refused.

mod common;

use std::time::Duration;

use aidmesh::circles::{CircleInfo, Error as CircleError};
use aidmesh::config::ReachabilityMode;
use aidmesh::node::Error as NodeError;
use aidmesh::proto::{Category, Kind};
use aidmesh::{Draft, NodeHandle};
use common::*;

/// Relay slots, AutoNAT and DHT look-ups take several rounds of their own timers:
/// generous, as everywhere, and only a bound on waiting for events.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(150);

fn draft(circle: &str, title: &str) -> Draft {
    Draft {
        circle: Some(circle.into()),
        ..Draft::new(Kind::Offer, Category::Food, title)
    }
}

async fn info(node: &NodeHandle, circle: &str) -> CircleInfo {
    node.circle_infos()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.circle == circle)
        .expect("the node is in the circle")
}

async fn wait_long<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let ok = tokio::time::timeout(DISCOVERY_TIMEOUT, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "timed out waiting until {what}");
}

/// A public node only in `commons`: a relay (AutoNAT may count loopback, so it learns
/// it is public) and a DHT server.
async fn public_node(dir: &std::path::Path) -> NodeHandle {
    spawn_node_with(dir, &[], &["commons"], |c| {
        c.relay.serve = true;
        c.network.kademlia = true;
        c.network.kademlia_server = Some(true);
        c.network.autonat_only_global_ips = false;
    })
    .await
}

/// A member behind NAT (as far as it knows) in `riverside` only, bootstrapped to
/// `public` alone.
async fn member(dir: &std::path::Path, public: &libp2p::Multiaddr) -> NodeHandle {
    spawn_node_with(dir, std::slice::from_ref(public), &["riverside"], |c| {
        c.network.kademlia = true;
        c.network.reachability = ReachabilityMode::Private;
        c.network.autonat_only_global_ips = false;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_bootstrapped_to_a_node_outside_their_circle_find_each_other_in_the_dht() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let p = public_node(dirs[0].path()).await;
    let p_addr = addr_of(&p).await;
    let a = member(dirs[1].path(), &p_addr).await;
    let b = member(dirs[2].path(), &p_addr).await;
    assert!(info(&a, "riverside").await.cut_off);

    // Found through the provider records (carrying the members' relayed addresses),
    // not through the public node, which has no riverside peers to offer.
    wait_long("A and B are connected as riverside members", || async {
        info(&a, "riverside").await.members_connected == Some(1)
            && info(&b, "riverside").await.members_connected == Some(1)
    })
    .await;
    let peers = a.peers().await.unwrap();
    assert!(peers.iter().any(|x| x.peer_id == b.peer_id()));
    assert!(!info(&a, "riverside").await.cut_off);
    assert!(info(&a, "riverside").await.members_seen >= Some(1));

    let mut a_events = a.subscribe();
    let mut b_events = b.subscribe();
    let from_a = a
        .publish(draft("riverside", "Soup at the river"))
        .await
        .unwrap();
    wait_for(&mut b_events, "A's post on B", |e| {
        post_event(e, &from_a.id, 1)
    })
    .await;
    let from_b = b
        .publish(draft("riverside", "Bread at the bridge"))
        .await
        .unwrap();
    wait_for(&mut a_events, "B's post on A", |e| {
        post_event(e, &from_b.id, 1)
    })
    .await;
    // The public node stores nothing of a circle it is not in.
    assert!(p.get(&from_a.id).unwrap().is_none());
    let st = b.status().await.unwrap();
    let river = st
        .circle_peers
        .iter()
        .find(|c| c.circle == "riverside")
        .unwrap();
    assert_eq!(river.connected, 1);
    for n in [a, b, p] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_circle_stops_its_posts_and_drops_them_and_outsiders_cannot_post() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = spawn_node(dirs[0].path(), &[], &["commons", "riverside"]).await;
    let b = spawn_node(dirs[1].path(), &[addr_of(&a).await], &["commons"]).await;
    wait_connected(&a, b.peer_id()).await;

    // Not in riverside yet: posting and inviting are refused, with the way in.
    let e = b
        .publish(draft("riverside", "Too early"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, NodeError::Membership(CircleError::NotMember { circle }) if circle == "riverside"),
        "{e}"
    );
    assert!(
        e.to_string().contains("aidmesh circle join riverside"),
        "{e}"
    );
    assert!(matches!(
        b.invite("riverside").await,
        Err(NodeError::Membership(CircleError::NotMember { .. }))
    ));

    let mut b_events = b.subscribe();
    assert!(b.join_circle("riverside").await.unwrap());
    assert!(!b.join_circle("riverside").await.unwrap());
    let first = a
        .publish(draft("riverside", "Before leaving"))
        .await
        .unwrap();
    wait_for(&mut b_events, "the riverside post on B", |e| {
        post_event(e, &first.id, 1)
    })
    .await;
    let own = b.publish(draft("riverside", "B's own")).await.unwrap();
    assert_eq!(info(&b, "riverside").await.posts, 2);
    // The join was saved.
    let saved = aidmesh::Config::load(&dirs[1].path().join("config.toml")).unwrap();
    assert!(saved.network.circles.contains(&"riverside".to_string()));

    let left = b.leave_circle("riverside").await.unwrap();
    assert_eq!(left.removed_posts, 2);
    assert!(b.get(&first.id).unwrap().is_none() && b.get(&own.id).unwrap().is_none());
    assert!(!b.circles().contains(&"riverside".to_string()));
    let saved = aidmesh::Config::load(&dirs[1].path().join("config.toml")).unwrap();
    assert_eq!(saved.network.circles, ["commons"]);
    assert!(matches!(
        b.leave_circle("riverside").await,
        Err(NodeError::Membership(CircleError::NotMember { .. }))
    ));
    assert!(matches!(
        b.leave_circle("commons").await,
        Err(NodeError::Membership(CircleError::LastCircle { .. }))
    ));
    wait_until("A sees B leave riverside", || async {
        info(&a, "riverside").await.members_connected == Some(0)
    })
    .await;

    // A riverside post after leaving never arrives; a later commons post does, so by
    // then the riverside one would have too.
    let after = a
        .publish(draft("riverside", "After leaving"))
        .await
        .unwrap();
    let marker = a.publish(draft("commons", "For everyone")).await.unwrap();
    wait_for(&mut b_events, "the commons marker on B", |e| {
        post_event(e, &marker.id, 1)
    })
    .await;
    assert!(b.get(&after.id).unwrap().is_none());
    assert!(info(&a, "riverside").await.cut_off);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
