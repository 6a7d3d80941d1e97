//! Closed circles and followed moderation on real nodes over loopback (real swarms,
//! real sled, port 0): a founder creates a closed circle and invites B; a stranger C
//! on the same name is refused by A and B and never relayed; B's posts flow; B (a
//! moderator) admits D; removing B with its invitees deletes their posts on every
//! member, also on one that was offline during the removal, and refuses new ones;
//! forged admissions are refused; a hide applies only where its signer is followed.

mod common;

use std::time::Duration;

use aidmesh::circles::Error as CircleError;
use aidmesh::clock::now_ms;
use aidmesh::node::Error as NodeError;
use aidmesh::proto::circle::{Action, Record, RecordError};
use aidmesh::proto::{Category, Kind, PostId};
use aidmesh::{Draft, NodeHandle};
use common::*;

/// Generous: membership records and posts travel by gossip and catch-up; this only
/// bounds the waiting.
const LONG: Duration = Duration::from_secs(120);
/// Shorter than the node's periodic sync (60 s), still generous: a newcomer's
/// catch-up must follow from its admission, not wait for the next round.
const BEFORE_PERIODIC_SYNC: Duration = Duration::from_secs(30);

fn draft(circle: &str, title: &str) -> Draft {
    Draft {
        circle: Some(circle.into()),
        ..Draft::new(Kind::Offer, Category::Food, title)
    }
}

fn member(node: &NodeHandle, circle: &str, who: &NodeHandle) -> bool {
    node.store()
        .gate()
        .is_member(circle, &who.identity().author())
}

async fn wait_member(node: &NodeHandle, circle: &str, who: &NodeHandle, what: &str) {
    wait_until_within(what, LONG, || async { member(node, circle, who) }).await;
}

async fn wait_has(node: &NodeHandle, id: &PostId, what: &str) {
    wait_until_within(what, LONG, || async { node.store().contains(id) }).await;
}

async fn wait_lacks(node: &NodeHandle, id: &PostId, what: &str) {
    wait_until_within(what, LONG, || async { !node.store().contains(id) }).await;
}

async fn join_with_invite(inviter: &NodeHandle, joiner: &NodeHandle, circle: &str) {
    let code = inviter.invite(circle).await.unwrap().encode().unwrap();
    let joining = aidmesh::invite::read(&code).unwrap();
    assert!(
        joining.voucher.is_some(),
        "a closed circle's invite carries a voucher"
    );
    joiner.join_invite(&joining).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_circle_keeps_out_strangers_and_removed_members_everywhere() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = spawn_node(dirs[0].path(), &[], &["commons"]).await;
    let a_addr = addr_of(&a).await;
    let full = a.create_closed_circle("riverside").await.unwrap();
    assert!(full.starts_with("riverside~"), "{full}");
    assert_eq!(a.resolve_circle("riverside").unwrap(), full);
    assert!(matches!(
        a.resolve_circle("elsewhere"),
        Err(NodeError::Membership(CircleError::UnknownCircle { .. }))
    ));

    // B joins with A's invite and becomes a member on both nodes.
    let b = spawn_node(dirs[1].path(), std::slice::from_ref(&a_addr), &["commons"]).await;
    wait_connected(&b, a.peer_id()).await;
    join_with_invite(&a, &b, &full).await;
    assert!(
        member(&b, &full, &b),
        "B's own redemption of the founder's voucher"
    );
    wait_member(&a, &full, &b, "A admits B (redemption pushed in catch-up)").await;

    // C: a stranger on the same name with no admission, speaking raw gossip.
    let c = identity(77);
    let mut c_peer = raw_peer(a_addr.clone(), &full).await;
    let c_post = draft(&full, "Spam from a stranger")
        .into_post(c.author(), now_ms())
        .unwrap();
    let c_signed = c_post.sign(c.signing_key()).unwrap();
    c_peer.publish.send(c_signed.encode().unwrap()).unwrap();
    assert!(matches!(
        a.store().insert(c_signed.clone(), now_ms()),
        Err(aidmesh::store::Error::Refused(
            aidmesh::store::Refused::NotMember { .. }
        ))
    ));
    // B's posts flow; A's post after C's reaches B, C's never does.
    let b_post = b.publish(draft(&full, "Soup from B")).await.unwrap();
    wait_has(&a, &b_post.id, "A has B's post").await;
    let a_post = a.publish(draft(&full, "Bread from A")).await.unwrap();
    wait_has(&b, &a_post.id, "B has A's post").await;
    assert!(!a.store().contains(&c_post.id), "A refused C's post");
    assert!(
        !b.store().contains(&c_post.id),
        "C's post was never relayed to B"
    );
    while let Ok(m) = c_peer.received.try_recv() {
        assert_ne!(m, c_signed.encode().unwrap());
    }

    // A makes B a moderator; B admits D with an invite of its own.
    a.circle_grant_moderator(&full, &b.peer_id()).await.unwrap();
    wait_until_within("B sees itself a moderator", LONG, || async {
        b.membrane()
            .membership(&full)
            .is_some_and(|m| m.is_moderator(&b.identity().author()))
    })
    .await;
    let d = spawn_node(dirs[2].path(), std::slice::from_ref(&a_addr), &["commons"]).await;
    wait_connected(&d, a.peer_id()).await;
    join_with_invite(&b, &d, &full).await;
    wait_member(&a, &full, &d, "A admits D (B's voucher)").await;
    wait_member(&d, &full, &d, "D learns it is in").await;
    let members = a.circle_members(&full).unwrap();
    let d_entry = members
        .members
        .iter()
        .find(|m| m.peer_id == d.peer_id().to_string())
        .expect("D listed");
    assert_eq!(d_entry.admitted_by, b.peer_id().to_string());
    let d_post = d.publish(draft(&full, "Tools from D")).await.unwrap();
    wait_has(&a, &d_post.id, "A has D's post").await;

    // E joins, catches up, then goes offline.
    let e = spawn_node(dirs[3].path(), std::slice::from_ref(&a_addr), &["commons"]).await;
    wait_connected(&e, a.peer_id()).await;
    join_with_invite(&a, &e, &full).await;
    for (id, what) in [
        (&b_post.id, "E catches up B's post"),
        (&d_post.id, "E catches up D's post"),
    ] {
        wait_until_within(what, BEFORE_PERIODIC_SYNC, || async {
            e.store().contains(id)
        })
        .await;
    }
    let e_peer = e.peer_id();
    e.shutdown().await.unwrap();
    drop(e);
    wait_until_within("A sees E gone", LONG, || async {
        !a.peers().await.unwrap().iter().any(|p| p.peer_id == e_peer)
    })
    .await;

    // A removes B and everyone B admitted.
    let removed = a.circle_remove(&full, &b.peer_id(), Some(0)).await.unwrap();
    assert!(removed.contains(&b.peer_id().to_string()), "{removed:?}");
    assert!(removed.contains(&d.peer_id().to_string()), "{removed:?}");
    assert!(!a.store().contains(&b_post.id) && !a.store().contains(&d_post.id));
    wait_until_within("D learns it was removed", LONG, || async {
        !member(&d, &full, &d)
    })
    .await;
    assert!(matches!(
        d.publish(draft(&full, "After removal")).await,
        Err(NodeError::Store(aidmesh::store::Error::Refused(
            aidmesh::store::Refused::NotMember { .. }
        )))
    ));
    let late = draft(&full, "Still trying")
        .into_post(d.identity().author(), now_ms())
        .unwrap()
        .sign(d.identity().signing_key())
        .unwrap();
    assert!(
        a.store().insert(late, now_ms()).is_err(),
        "new posts refused"
    );

    // E comes back: the removal reaches it by catch-up, and their posts vanish there.
    let e = spawn_node(
        dirs[3].path(),
        std::slice::from_ref(&a_addr),
        &["commons", full.as_str()],
    )
    .await;
    wait_lacks(&e, &b_post.id, "B's post vanishes on E").await;
    wait_lacks(&e, &d_post.id, "D's post vanishes on E").await;
    assert!(!member(&e, &full, &b) && !member(&e, &full, &d));
    assert!(e.store().contains(&a_post.id), "A's post stays");

    // Forged admissions: by a non-moderator, and with a voucher of another circle.
    let forged = Record {
        circle: full.clone(),
        signer: c.author(),
        at: now_ms(),
        action: Action::Admit { member: c.author() },
    }
    .sign(c.signing_key())
    .unwrap();
    let i = a.membrane().ingest(vec![forged], now_ms()).unwrap();
    assert!(
        i.accepted.is_empty(),
        "an admission by a non-moderator is void"
    );
    let other = a.create_closed_circle("elsewhere").await.unwrap();
    let other_code = a.invite(&other).await.unwrap();
    let redeem = Record {
        circle: full.clone(),
        signer: c.author(),
        at: now_ms(),
        action: Action::Redeem {
            voucher: other_code.voucher.unwrap(),
        },
    }
    .sign(c.signing_key())
    .unwrap();
    let i = a.membrane().ingest(vec![redeem], now_ms()).unwrap();
    assert!(i.accepted.is_empty());
    assert!(matches!(i.invalid.first(), Some(RecordError::Voucher(_))));
    assert!(!a.store().gate().is_member(&full, &c.author()));
    assert!(matches!(
        b.circle_admit(&full, &c.peer_id()).await,
        Err(NodeError::Membership(CircleError::NotModerator { .. }))
    ));

    // Moderation in the open circle: D follows A, not B.
    assert!(d.follow_moderation(&a.peer_id(), true).await.unwrap());
    let p1 = e.publish(draft("commons", "Hidden by B")).await.unwrap();
    let p2 = e.publish(draft("commons", "Hidden by A")).await.unwrap();
    for (n, what) in [(&a, "A"), (&b, "B"), (&d, "D")] {
        wait_has(n, &p1.id, &format!("{what} has p1")).await;
        wait_has(n, &p2.id, &format!("{what} has p2")).await;
    }
    b.hide(&p1.id).await.unwrap();
    a.hide(&p2.id).await.unwrap();
    wait_lacks(&d, &p2.id, "A's hide applies on D").await;
    assert!(d.store().contains(&p1.id), "B's hide does nothing on D");
    assert!(
        a.store().contains(&p2.id),
        "A follows nobody: its own hide is for others"
    );
    assert!(b.store().contains(&p2.id), "B does not follow A");
    assert!(matches!(
        d.store().insert(p2_signed(&e, &p2.id), now_ms()),
        Err(aidmesh::store::Error::Refused(
            aidmesh::store::Refused::Moderated
        ))
    ));

    for n in [a, b, d, e] {
        n.shutdown().await.unwrap();
    }
}

/// The signed post `id` as `node` stores it.
fn p2_signed(node: &NodeHandle, id: &PostId) -> aidmesh::proto::SignedPost {
    node.store()
        .get(id)
        .unwrap()
        .expect("stored")
        .signed()
        .clone()
}
