//! Several real nodes over loopback TCP: relay along a line, edits and withdrawals,
//! hostile peers, circles, restarts.

mod common;

use aidmesh::proto::{Category, Kind, Status};
use aidmesh::store::StatusFilter;
use aidmesh::{Draft, Edit, Query};
use common::*;

fn draft(title: &str) -> Draft {
    Draft {
        body: "Come by after six".into(),
        tags: vec!["soup".into()],
        ..Draft::new(Kind::Offer, Category::Food, title)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_travels_along_a_line_with_its_edits_and_withdrawal() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = spawn_node(dirs[0].path(), &[], &["commons"]).await;
    let b = spawn_node(dirs[1].path(), &[addr_of(&a).await], &["commons"]).await;
    let c = spawn_node(dirs[2].path(), &[addr_of(&b).await], &["commons"]).await;
    wait_connected(&a, b.peer_id()).await;
    wait_connected(&c, b.peer_id()).await;
    let mut a_events = a.subscribe();
    let mut b_events = b.subscribe();

    let post = c.publish(draft("Soup for ten")).await.unwrap();
    for (rx, name) in [(&mut a_events, "A"), (&mut b_events, "B")] {
        let got = wait_for(rx, &format!("the post on {name}"), |e| {
            post_event(e, &post.id, 1)
        })
        .await;
        assert_eq!(got, post);
    }
    let edited = c
        .edit(
            &post.id,
            Edit {
                title: Some("Soup for twenty".into()),
                ..Edit::default()
            },
        )
        .await
        .unwrap();
    let got = wait_for(&mut a_events, "the edit on A", |e| {
        post_event(e, &post.id, 2)
    })
    .await;
    assert_eq!(got.title, "Soup for twenty");
    assert_eq!(got, edited);

    c.withdraw(&post.id).await.unwrap();
    for (rx, name) in [(&mut a_events, "A"), (&mut b_events, "B")] {
        let got = wait_for(rx, &format!("the withdrawal on {name}"), |e| {
            post_event(e, &post.id, 3)
        })
        .await;
        assert_eq!(got.status, Status::Withdrawn);
        assert!(got.body.is_empty());
    }
    let stored = a.get(&post.id).unwrap().unwrap();
    assert_eq!(stored.post().status, Status::Withdrawn);
    assert!(a.query(&Query::default()).unwrap().is_empty());

    let status = a.status().await.unwrap();
    assert!(status.bytes_received > 0 && status.bytes_sent > 0);
    assert_eq!(status.connected_peers, 1);
    // The line held: A and C never connected, so B relayed everything.
    assert!(!a
        .peers()
        .await
        .unwrap()
        .iter()
        .any(|p| p.peer_id == c.peer_id()));
    // Only the author may change a post.
    assert!(matches!(
        a.withdraw(&post.id).await,
        Err(aidmesh::node::Error::NotAuthor(_))
    ));
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_made_alone_goes_out_when_a_peer_arrives() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = spawn_node(d1.path(), &[], &["commons"]).await;
    let post = a.publish(draft("Made while alone")).await.unwrap();
    let b = spawn_node(d2.path(), &[addr_of(&a).await], &["commons"]).await;
    let mut rx = b.subscribe();
    if b.get(&post.id).unwrap().is_none() {
        wait_for(&mut rx, "the queued post", |e| post_event(e, &post.id, 1)).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_store_only_the_circles_they_joined() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let x = spawn_node(d1.path(), &[], &["commons", "x"]).await;
    let y = spawn_node(d2.path(), &[addr_of(&x).await], &["commons"]).await;
    wait_connected(&x, y.peer_id()).await;
    let mut rx = y.subscribe();
    let secret = x
        .publish(Draft {
            circle: Some("x".into()),
            ..draft("Only for circle x")
        })
        .await
        .unwrap();
    // A later post in a shared circle: once it is on Y, the earlier one would be too.
    let marker = x.publish(draft("For everyone")).await.unwrap();
    wait_for(&mut rx, "the commons post", |e| {
        post_event(e, &marker.id, 1)
    })
    .await;
    assert!(y.get(&secret.id).unwrap().is_none());
    let all = Query {
        status: StatusFilter::Any,
        ..Query::default()
    };
    assert_eq!(y.query(&all).unwrap().len(), 1);

    // Joining the circle at run time starts the flow.
    y.join_circle("x").await.unwrap();
    wait_until("Y sees X subscribed to x", || async {
        y.status().await.unwrap().circles.contains(&"x".to_string())
    })
    .await;
    let later = x
        .publish(Draft {
            circle: Some("x".into()),
            ..draft("Second post in x")
        })
        .await
        .unwrap();
    wait_for(&mut rx, "the circle-x post after joining", |e| {
        post_event(e, &later.id, 1)
    })
    .await;
    x.shutdown().await.unwrap();
    y.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_posts_and_finds_its_peers() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = spawn_node(d1.path(), &[], &["commons"]).await;
    let b = spawn_node(d2.path(), &[addr_of(&a).await], &["commons"]).await;
    wait_connected(&a, b.peer_id()).await;
    let mut rx = a.subscribe();
    let post = b.publish(draft("Before the restart")).await.unwrap();
    wait_for(&mut rx, "the post on A", |e| post_event(e, &post.id, 1)).await;
    let b_id = b.peer_id();
    b.shutdown().await.unwrap();
    drop(b);
    wait_until("A sees B go", || async {
        !a.peers().await.unwrap().iter().any(|p| p.peer_id == b_id)
    })
    .await;

    // No bootstrap flag this time: the address book must lead B back to A.
    let b = spawn_node(d2.path(), &[], &["commons"]).await;
    assert_eq!(b.peer_id(), b_id);
    assert_eq!(b.get(&post.id).unwrap().unwrap().post(), &post);
    wait_connected(&b, a.peer_id()).await;
    let mut rx = a.subscribe();
    let after = b.publish(draft("After the restart")).await.unwrap();
    wait_for(&mut rx, "a post after the restart", |e| {
        post_event(e, &after.id, 1)
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A correctly signed post whose encoding is far over the 8 KiB limit.
fn oversized_signed_post(who: &aidmesh::Identity) -> Vec<u8> {
    use aidmesh::proto::{codec, SignedPost, SIGNING_DOMAIN};
    use ed25519_dalek::Signer;
    let mut post = draft("Huge")
        .into_post(who.author(), aidmesh::clock::now_ms())
        .unwrap();
    post.body = "x".repeat(20_000);
    let bytes = codec::encode::<65_536, _>(&post).unwrap();
    let msg = [SIGNING_DOMAIN, &bytes].concat();
    let signature = aidmesh::proto::Signature(who.signing_key().sign(&msg).to_bytes());
    codec::encode::<65_536, _>(&SignedPost { bytes, signature }).unwrap()
}

fn wire(who: &aidmesh::Identity, d: Draft) -> (aidmesh::proto::PostId, Vec<u8>) {
    let post = d.into_post(who.author(), aidmesh::clock::now_ms()).unwrap();
    let signed = post.sign(who.signing_key()).unwrap();
    (post.id, signed.encode().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_neither_stored_nor_relayed() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let b = spawn_node(d1.path(), &[], &["commons"]).await;
    let b_addr = addr_of(&b).await;
    let c = spawn_node(d2.path(), std::slice::from_ref(&b_addr), &["commons"]).await;
    wait_connected(&b, c.peer_id()).await;
    let mut observer = raw_peer(b_addr.clone(), "commons").await;
    let mut b_events = b.subscribe();

    let mallory = identity(66);
    let mut bad_signature = wire(&mallory, draft("Forged")).1;
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x40;
    let wrong_circle = wire(
        &mallory,
        Draft {
            circle: Some("elsewhere".into()),
            ..draft("Wrong topic")
        },
    )
    .1;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xffnot a post at all".to_vec()),
        ("bad signature", bad_signature),
        ("oversized", oversized_signed_post(&mallory)),
        ("wrong circle", wrong_circle),
    ];
    let mut markers = Vec::new();
    for (i, (name, payload)) in bad.iter().enumerate() {
        // One hostile peer per kind, each followed by a valid post on the same
        // connection: once B has the valid one, it has judged the bad one.
        let evil = raw_peer(b_addr.clone(), "commons").await;
        evil.publish.send(payload.clone()).unwrap();
        let (id, good) = wire(
            &identity(70 + i as u8),
            draft(&format!("Honest after {name}")),
        );
        evil.publish.send(good).unwrap();
        wait_for(
            &mut b_events,
            &format!("the valid post after {name}"),
            |e| post_event(e, &id, 1),
        )
        .await;
        markers.push(id);
    }
    let all = Query {
        status: StatusFilter::Any,
        ..Query::default()
    };
    let stored: Vec<_> = b.query(&all).unwrap().iter().map(|p| p.post().id).collect();
    assert_eq!(
        stored.len(),
        markers.len(),
        "only the valid posts were stored"
    );
    assert!(markers.iter().all(|m| stored.contains(m)));
    let on_c = c.query(&all).unwrap();
    assert!(
        on_c.iter().all(|p| markers.contains(&p.post().id)),
        "C stored only valid posts too"
    );

    // B relayed the valid posts to the observer and none of the bad ones.
    let mut seen = Vec::new();
    let relayed_all = tokio::time::timeout(TIMEOUT, async {
        while seen.len() < markers.len() {
            let data = observer.received.recv().await.unwrap();
            for (name, payload) in &bad {
                assert_ne!(&data, payload, "B relayed the {name} message");
            }
            seen.push(data);
        }
    })
    .await;
    assert!(
        relayed_all.is_ok(),
        "the observer got {} of {} valid posts",
        seen.len(),
        markers.len()
    );

    // And the honest nodes keep working.
    let mut c_events = c.subscribe();
    let post = b.publish(draft("Still here")).await.unwrap();
    wait_for(&mut c_events, "an honest post on C", |e| {
        post_event(e, &post.id, 1)
    })
    .await;
    b.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
}
