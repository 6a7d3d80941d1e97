//! Standing alerts and own-post matches on real nodes over loopback: a post that
//! arrives by gossip or by sync raises one `match` event, never two; alerts survive a
//! restart.

mod common;

use aidmesh::alerts::{AlertFilter, AlertId, Target};
use aidmesh::proto::{Category, Kind, PostId};
use aidmesh::{Draft, Edit, Event, Origin};
use common::*;
use tokio::sync::broadcast;

fn bike_offer(title: &str) -> Draft {
    Draft {
        tags: vec!["bike".into()],
        location: Some("u4pruy".into()),
        ..Draft::new(Kind::Offer, Category::Transport, title)
    }
}

fn bike_alert() -> AlertFilter {
    AlertFilter {
        kind: Some(Kind::Offer),
        tag: Some("bike".into()),
        ..AlertFilter::default()
    }
}

/// The match events for `post`.
fn match_of(e: &Event, post: &PostId) -> Option<(Target, Origin, Vec<String>)> {
    match e {
        Event::Match {
            post: p,
            target,
            origin,
            reasons,
            ..
        } if &p.id == post => Some((target.clone(), *origin, reasons.clone())),
        _ => None,
    }
}

/// Every match event until the one for `marker` (which the matcher raises after any
/// earlier post's, since it handles posts in order).
async fn matches_until(
    rx: &mut broadcast::Receiver<Event>,
    marker: &PostId,
) -> Vec<(PostId, Target)> {
    let mut seen = Vec::new();
    wait_for(rx, "the marker post's match", |e| {
        if let Event::Match { post, target, .. } = e {
            seen.push((post.id, target.clone()));
            if &post.id == marker {
                return Some(());
            }
        }
        None
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossiped_post_alerts_once_for_an_alert_and_once_for_an_own_post() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = spawn_node(d1.path(), &[], &["commons"]).await;
    let b = spawn_node(d2.path(), &[addr_of(&a).await], &["commons"]).await;
    wait_connected(&a, b.peer_id()).await;
    let alert = b.add_alert(bike_alert()).unwrap();
    let need = b
        .publish(Draft {
            tags: vec!["bike".into()],
            location: Some("u4pruy".into()),
            ..Draft::new(Kind::Request, Category::Transport, "Bike for school")
        })
        .await
        .unwrap();
    let mut rx = b.subscribe();

    let offer = a.publish(bike_offer("Kids bike")).await.unwrap();
    let mut targets = Vec::new();
    wait_for(&mut rx, "both matches", |e| {
        let (target, origin, reasons) = match_of(e, &offer.id)?;
        assert_eq!(origin, Origin::Gossip);
        assert!(!reasons.is_empty());
        targets.push(target);
        (targets.len() == 2).then_some(())
    })
    .await;
    assert!(targets.contains(&Target::Alert { id: alert.id }));
    assert!(targets.contains(&Target::Post {
        id: need.id,
        title: need.title.clone()
    }));

    // A new revision of the same post, then a marker: the edit raises nothing.
    a.edit(
        &offer.id,
        Edit {
            title: Some("Kids bike, with lights".into()),
            ..Edit::default()
        },
    )
    .await
    .unwrap();
    wait_for(&mut rx, "the edit", |e| post_event(e, &offer.id, 2)).await;
    let marker = a.publish(bike_offer("Another bike")).await.unwrap();
    let seen = matches_until(&mut rx, &marker.id).await;
    assert!(
        seen.iter().all(|(p, _)| p != &offer.id),
        "the edit alerted again: {seen:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_fetched_by_sync_alerts_once_and_alerts_survive_a_restart() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = spawn_node(d1.path(), &[], &["commons"]).await;
    // A post that A stored before B existed and will not gossip again (a post
    // published with no peer would go out by gossip when B arrives): only sync can
    // bring it.
    let now = aidmesh::clock::now_ms();
    let someone = identity(9);
    let early = bike_offer("Bike made early")
        .into_post(someone.author(), now)
        .unwrap();
    a.store().insert(sign(&someone, &early), now).unwrap();

    let b = spawn_node(d2.path(), &[], &["commons"]).await;
    let alert = b.add_alert(bike_alert()).unwrap();
    let mut rx = b.subscribe();
    b.dial(addr_of(&a).await).await.unwrap();
    let (target, origin, reasons) = wait_for(&mut rx, "the synced post's match", |e| {
        match_of(e, &early.id)
    })
    .await;
    assert_eq!(target, Target::Alert { id: alert.id });
    assert_eq!(origin, Origin::Sync);
    assert_eq!(reasons, ["kind offer", "tag bike"]);

    // Restart B on the same data dir: the alert is still there and still fires, and
    // the post that already alerted does not again.
    let a_addr = addr_of(&a).await;
    b.shutdown().await.unwrap();
    drop(b);
    drop(rx);
    let b = spawn_node(d2.path(), &[a_addr], &["commons"]).await;
    let ids: Vec<AlertId> = b.alerts().list().iter().map(|a| a.id).collect();
    assert_eq!(ids, [alert.id]);
    let mut rx = b.subscribe();
    wait_connected(&b, a.peer_id()).await;
    let later = a
        .publish(bike_offer("Bike after the restart"))
        .await
        .unwrap();
    let seen = matches_until(&mut rx, &later.id).await;
    assert_eq!(seen, [(later.id, Target::Alert { id: alert.id })]);

    // Removing the alert stops it; bad filters are refused with the field named.
    b.remove_alert(alert.id).unwrap();
    assert!(b.alerts().list().is_empty());
    let err = b
        .add_alert(AlertFilter {
            near: Some("not-a-geohash".into()),
            ..AlertFilter::default()
        })
        .unwrap_err();
    match err {
        aidmesh::node::Error::Alerts(e) => assert_eq!(e.field(), Some("near")),
        other => panic!("unexpected error {other:?}"),
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_post_is_matched_like_one_from_the_network() {
    let d = tempfile::tempdir().unwrap();
    let node = spawn_node(d.path(), &[], &["commons"]).await;
    let alert = node.add_alert(bike_alert()).unwrap();
    let mut rx = node.subscribe();
    let now = aidmesh::clock::now_ms();
    let someone = identity(7);
    let post = bike_offer("Imported bike")
        .into_post(someone.author(), now)
        .unwrap();
    let signed = sign(&someone, &post);
    let results = node.import(vec![signed.clone()]).await.unwrap();
    assert!(results[0].as_ref().unwrap().changed());
    let (target, origin, _) =
        wait_for(&mut rx, "the import's match", |e| match_of(e, &post.id)).await;
    assert_eq!(target, Target::Alert { id: alert.id });
    assert_eq!(origin, Origin::Import);
    // Importing it again changes nothing and alerts nothing.
    let again = node.import(vec![signed]).await.unwrap();
    assert!(!again[0].as_ref().unwrap().changed());
    node.shutdown().await.unwrap();
}

#[test]
fn alerted_memory_survives_a_restart_and_forgets_expired_posts() {
    use aidmesh::alerts::Alerts;
    let dir = tempfile::tempdir().unwrap();
    let now = aidmesh::clock::now_ms();
    let me = identity(1);
    let expiring = |n: u32, expires_at: u64| aidmesh::proto::Post {
        expires_at,
        ..post(&me, n, MINUTE)
    };
    let live = expiring(1, now + 86_400_000);
    let gone = expiring(2, now + 1_000);
    let target = Target::Alert { id: AlertId(7) };
    {
        let db = sled::open(dir.path()).unwrap();
        let alerts = Alerts::open(&db).unwrap();
        assert!(alerts.first_time(&target, &live));
        assert!(alerts.first_time(&target, &gone));
        assert!(
            !alerts.first_time(&target, &live),
            "remembered before commit"
        );
        alerts.commit(now).unwrap();
        assert!(!alerts.first_time(&target, &gone));
        db.flush().unwrap();
    }
    let db = sled::open(dir.path()).unwrap();
    let alerts = Alerts::open(&db).unwrap();
    assert!(
        !alerts.first_time(&target, &live),
        "remembered across a restart"
    );
    assert!(
        !alerts.first_time(&target, &gone),
        "not swept before a commit"
    );
    assert!(alerts.first_time(&target, &expiring(3, now + 86_400_000)));
    // The first commit after open sweeps the memory of posts expired by then.
    alerts.commit(now + 2_000).unwrap();
    assert!(!alerts.first_time(&target, &live));
    assert!(
        alerts.first_time(&target, &gone),
        "an expired post's memory is forgotten"
    );
    assert_eq!(db.open_tree("alerted").unwrap().len(), 2);
}
