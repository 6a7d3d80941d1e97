//! What a store keeps, on the real sled store (`proto/LIMITS.md`): the per-author
//! quota whatever the arrival order, the circle budget under a flood of fresh keys,
//! newcomers, remembered refusals, no resurrection after a sweep, a damaged database.
//! Across real nodes: the author's node refuses the 101st post (API 429), and two
//! nodes that got the same posts in opposite orders keep the same set and sync agrees,
//! and a node does not fetch again on the next sync what it refused.

mod common;

use std::collections::BTreeSet;

use aidmesh::proto::limits::{MAX_LIVE_PER_AUTHOR, NEWCOMER_POSTS_PER_MINUTE};
use aidmesh::proto::riblt::Item;
use aidmesh::proto::{PostId, SignedPost, Status};
use aidmesh::store::{Inserted, Limits, RefusalReason, Refused};
use aidmesh::{Identity, Store};
use common::*;

fn open_with(limits: Limits) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(&dir.path().join("db"), limits).unwrap();
    (dir, store)
}

fn open() -> (tempfile::TempDir, Store) {
    open_with(Limits::default())
}

fn item(s: &SignedPost) -> Item {
    let p = s.decode_post().unwrap();
    Item::new(p.updated_at, &s.content_hash())
}

fn ids_of(store: &Store, who: &Identity) -> BTreeSet<PostId> {
    store
        .by_author(&who.author())
        .unwrap()
        .iter()
        .map(|p| p.post().id)
        .collect()
}

/// `n` open posts by `who`; post `i` is `i` minutes old (so the last is the eldest).
fn posts_by(who: &Identity, n: u32, first: u32) -> Vec<SignedPost> {
    (first..first + n)
        .map(|i| sign(who, &post(who, i, u64::from(i) * MINUTE + MINUTE)))
        .collect()
}

fn wall_now() -> u64 {
    aidmesh::clock::now_ms()
}

#[test]
fn the_quota_keeps_the_elder_posts_whatever_the_arrival_order() {
    let x = identity(1);
    let posts = posts_by(&x, 130, 0);
    // The 100 eldest: numbers 30..130.
    let expected: BTreeSet<PostId> = posts[30..]
        .iter()
        .map(|s| s.decode_post().unwrap().id)
        .collect();

    // Youngest first: the first 100 are stored, then each elder one evicts the
    // youngest.
    let (_a, a) = open();
    for s in &posts {
        a.insert(s.clone(), NOW).unwrap();
    }
    // Eldest first: the last 30 (youngest) are refused.
    let (_b, b) = open();
    let mut refused = 0;
    for s in posts.iter().rev() {
        match a_insert(&b, s) {
            Err(aidmesh::store::Error::Refused(Refused::OverQuota { live: true, .. })) => {
                refused += 1
            }
            other => assert_eq!(other.unwrap(), Inserted::New),
        }
    }
    assert_eq!(refused, 30);
    // One batch in a shuffled order: posts of one group see each other.
    let (_c, c) = open();
    let mut shuffled = posts.clone();
    shuffled.sort_by_key(|s| *blake3::hash(&s.bytes).as_bytes());
    c.insert_batch(shuffled, NOW).unwrap();

    for store in [&a, &b, &c] {
        assert_eq!(ids_of(store, &x), expected);
        assert_eq!(store.author_usage(&x.author(), "commons"), (100, 100));
        // Every post not kept is remembered, so sync will not fetch it again.
        for s in &posts[..30] {
            assert!(
                store.is_refused(&item(s), NOW),
                "post not kept is not remembered"
            );
            assert_eq!(
                store.refusal(&item(s).hash, NOW),
                Some(RefusalReason::OverQuota)
            );
        }
    }
}

fn a_insert(store: &Store, s: &SignedPost) -> Result<Inserted, aidmesh::store::Error> {
    store.insert(s.clone(), NOW)
}

#[test]
fn room_freed_by_a_fulfilled_post_lets_a_refused_one_in() {
    let x = identity(2);
    let posts = posts_by(&x, 101, 0);
    let (_d, store) = open();
    for s in posts.iter().rev() {
        let _ = store.insert(s.clone(), NOW);
    }
    let youngest = &posts[0];
    assert!(store.is_refused(&item(youngest), NOW));
    // The author marks an elder post fulfilled: it is no longer live.
    let elder = posts[50].decode_post().unwrap();
    let done = aidmesh::proto::Post {
        revision: 2,
        status: Status::Fulfilled,
        updated_at: NOW - 1000,
        ..elder
    };
    assert_eq!(
        store.insert(sign(&x, &done), NOW).unwrap(),
        Inserted::Updated { previous: 1 }
    );
    assert!(
        !store.is_refused(&item(youngest), NOW),
        "room freed: the refusal is forgotten so sync fetches it again"
    );
    assert_eq!(store.insert(youngest.clone(), NOW).unwrap(), Inserted::New);
    assert_eq!(store.author_usage(&x.author(), "commons"), (100, 101));
}

#[test]
fn own_node_refuses_the_101st_live_post_and_evicts_nothing() {
    let me = identity(3);
    let (_d, store) = open();
    let now = wall_now();
    let mk = |i: u32| {
        let mut p = post(&me, i, 0);
        p.created_at = now - u64::from(200 - i) * 1000;
        p.updated_at = p.created_at;
        p.expires_at = p.created_at + 14 * DAY;
        sign(&me, &p).verify(now).unwrap()
    };
    for i in 0..MAX_LIVE_PER_AUTHOR as u32 {
        assert_eq!(store.insert_local(&mk(i)).unwrap(), Inserted::New);
    }
    let err = store.insert_local(&mk(150)).unwrap_err();
    assert!(
        matches!(
            err,
            aidmesh::store::Error::Refused(Refused::OverQuota { live: true, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("100 open posts"), "{err}");
    // Even a post elder than all of them is refused rather than evicting one.
    let mut elder = post(&me, 999, 0);
    elder.created_at = now - 10 * DAY;
    elder.updated_at = now - 10 * DAY;
    elder.expires_at = now + DAY;
    let elder = sign(&me, &elder).verify(now).unwrap();
    assert!(store.insert_local(&elder).is_err());
    assert_eq!(store.author_usage(&me.author(), "commons"), (100, 100));
}

#[test]
fn a_flood_of_fresh_keys_never_displaces_what_was_there() {
    let (_d, store) = open_with(Limits {
        circle_posts: 60,
        circle_bytes: 1 << 30,
        ..Limits::default()
    });
    // Six honest authors, five posts each, days old.
    let honest: Vec<Identity> = (10..16).map(identity).collect();
    let mut honest_posts = Vec::new();
    for (n, who) in honest.iter().enumerate() {
        for i in 0..5u32 {
            let p = post(who, i, DAY + u64::from(i) * MINUTE + n as u64);
            honest_posts.push(p.id);
            assert_eq!(store.insert(sign(who, &p), NOW).unwrap(), Inserted::New);
        }
    }
    // Forty fresh keys, five posts each.
    let sybils: Vec<Identity> = (100..140).map(identity).collect();
    let flood: Vec<SignedPost> = sybils.iter().flat_map(|who| posts_by(who, 5, 0)).collect();
    let outcomes = store.insert_batch(flood, NOW).unwrap();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(Refused::CircleFull { .. })))
        .count();
    assert!(refused > 0, "the budget never bit");
    assert!(store.len() <= 60, "over budget: {}", store.len());
    for id in &honest_posts {
        assert!(
            store.get(id).unwrap().is_some(),
            "an older honest post was evicted"
        );
    }
    // An honest author who was there before still gets a new post in: it evicts
    // the flood.
    let fresh_honest = post(&honest[0], 77, 0);
    assert_eq!(
        store.insert(sign(&honest[0], &fresh_honest), NOW).unwrap(),
        Inserted::New
    );
    assert!(store.len() <= 60);
    assert_eq!(store.circle_usage("commons").0, store.len());
    // A key never seen gets nothing in while the circle is full, and it is
    // remembered so sync does not fetch it again.
    let stranger = identity(200);
    let s = sign(&stranger, &post(&stranger, 1, 0));
    assert!(matches!(
        store.insert(s.clone(), NOW),
        Err(aidmesh::store::Error::Refused(Refused::CircleFull { .. }))
    ));
    assert!(store.is_refused(&item(&s), NOW));
}

#[test]
fn newcomers_are_rate_limited_once_a_circle_is_half_full() {
    let (_d, store) = open_with(Limits {
        circle_posts: 1000,
        circle_bytes: 1 << 30,
        ..Limits::default()
    });
    // 501 posts from six authors: over half of the budget.
    let old: Vec<SignedPost> = (20..26u8)
        .flat_map(|n| posts_by(&identity(n), 84, 0))
        .take(501)
        .collect();
    assert_eq!(old.len(), 501);
    assert!(store
        .insert_batch(old, NOW)
        .unwrap()
        .iter()
        .all(|o| o == &Ok(Inserted::New)));
    let newcomers: Vec<SignedPost> = (0..NEWCOMER_POSTS_PER_MINUTE + 10)
        .map(|i| {
            let who = identity(30 + (i % 200) as u8);
            sign(&who, &post(&who, 1000 + i, 0))
        })
        .collect();
    let outcomes = store.insert_batch(newcomers, NOW).unwrap();
    let limited = outcomes
        .iter()
        .filter(|o| matches!(o, Err(Refused::Newcomers { .. })))
        .count();
    assert_eq!(limited, 10);
    // A minute later there is room for newcomers again.
    let late = identity(250);
    assert_eq!(
        store
            .insert(sign(&late, &post(&late, 1, 0)), NOW + MINUTE)
            .unwrap(),
        Inserted::New
    );
}

#[test]
fn no_resurrection_after_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let me = identity(4);
    let rev1 = aidmesh::proto::Post {
        contact: Some("phone: 000".into()),
        ..post(&me, 1, MINUTE)
    };
    // The author shortens the post's life (and drops the contact).
    let rev2 = aidmesh::proto::Post {
        revision: 2,
        contact: None,
        updated_at: NOW,
        expires_at: NOW + MINUTE,
        ..rev1.clone()
    };
    {
        let store = Store::open(&path).unwrap();
        store.insert(sign(&me, &rev1), NOW).unwrap();
        store.insert(sign(&me, &rev2), NOW).unwrap();
        assert_eq!(store.sweep_expired(NOW + 2 * MINUTE).unwrap(), 1);
        assert!(store.get(&rev1.id).unwrap().is_none());
        assert_eq!(store.swept_count(), 1);
        // Revision 1 is still within its own life, but never comes back.
        assert_eq!(
            store.insert(sign(&me, &rev1), NOW + 3 * MINUTE).unwrap(),
            Inserted::Stale { current: 2 }
        );
        assert!(store.get(&rev1.id).unwrap().is_none());
        assert!(store.is_refused(&item(&sign(&me, &rev1)), NOW + 3 * MINUTE));
        store.flush().unwrap();
    }
    // The memory is on disk.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.swept_count(), 1);
    assert_eq!(
        store.insert(sign(&me, &rev1), NOW + 4 * MINUTE).unwrap(),
        Inserted::Stale { current: 2 }
    );
    // A higher revision is news, and is stored.
    let rev3 = aidmesh::proto::Post {
        revision: 3,
        updated_at: NOW + 5 * MINUTE,
        expires_at: NOW + DAY,
        ..rev2.clone()
    };
    assert_eq!(
        store.insert(sign(&me, &rev3), NOW + 5 * MINUTE).unwrap(),
        Inserted::New
    );
    store.sweep_expired(NOW + 2 * DAY).unwrap();
    // Forgotten once no revision could be valid any more.
    store.sweep_expired(rev1.created_at + 91 * DAY).unwrap();
    assert_eq!(store.swept_count(), 0);
}

#[test]
fn refusals_are_remembered_by_reason() {
    let (_d, store) = open();
    let bad = identity(5);
    store.block(&bad.author()).unwrap();
    let s = sign(&bad, &post(&bad, 1, MINUTE));
    assert!(store.insert(s.clone(), NOW).is_err());
    assert_eq!(
        store.refusal(&item(&s).hash, NOW),
        Some(RefusalReason::Blocked)
    );
    store.unblock(&bad.author()).unwrap();
    assert!(!store.is_refused(&item(&s), NOW));

    // Superseded: an older revision of a stored post.
    let me = identity(6);
    let p1 = post(&me, 1, MINUTE);
    let p2 = aidmesh::proto::Post {
        revision: 2,
        updated_at: NOW,
        ..p1.clone()
    };
    store.insert(sign(&me, &p2), NOW).unwrap();
    store.insert(sign(&me, &p1), NOW).unwrap();
    assert_eq!(
        store.refusal(&item(&sign(&me, &p1)).hash, NOW),
        Some(RefusalReason::Superseded)
    );

    // Future-dated: kept out until it becomes acceptable.
    let future = aidmesh::proto::Post {
        created_at: NOW + 10 * MINUTE,
        updated_at: NOW + 10 * MINUTE,
        expires_at: NOW + DAY,
        ..post(&me, 2, 0)
    };
    let f = sign(&me, &future);
    assert!(store.insert(f.clone(), NOW).is_err());
    assert_eq!(
        store.refusal(&item(&f).hash, NOW),
        Some(RefusalReason::Future)
    );
    assert!(!store.is_refused(&item(&f), NOW + 5 * MINUTE));
    assert_eq!(store.insert(f, NOW + 5 * MINUTE).unwrap(), Inserted::New);

    // Undecodable or badly signed: remembered for a while.
    let mut forged = sign(&me, &post(&me, 3, 0));
    forged.signature.0[5] ^= 1;
    let results = store.insert_batch(vec![forged.clone()], NOW).unwrap();
    assert!(results[0].as_ref().is_err_and(Refused::is_senders_fault));
    assert_eq!(
        store.refusal(&item(&forged).hash, NOW),
        Some(RefusalReason::Invalid)
    );
    assert!(store.refused_count() >= 3);
}

#[test]
fn a_damaged_database_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).unwrap();
        let who = identity(7);
        let posts: Vec<SignedPost> = (0..100u8)
            .flat_map(|n| {
                let who = identity(40 + n);
                (0..4u32)
                    .map(move |i| {
                        let mut p = post(&who, i, MINUTE);
                        p.body = "x".repeat(3500);
                        sign(&who, &p)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let _ = who;
        store.insert_batch(posts, NOW).unwrap();
        store.flush().unwrap();
    }
    let file = path.join("db");
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(len > 1024 * 1024, "db file is only {len} bytes");
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 512 * 1024).unwrap();
    drop(f);
    match Store::open(&path) {
        Err(e @ aidmesh::store::Error::Damaged { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("move it aside"), "{msg}");
            assert!(msg.contains("peers will serve the posts again"), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
        // sled recovered what it could: fine, as long as it did not panic.
        Ok(store) => {
            let _ = store.len();
        }
        Err(other) => panic!("not a damaged-store error: {other:?}"),
    }
}

// ---- real nodes -----------------------------------------------------------------------

fn draft(n: u32) -> aidmesh::Draft {
    aidmesh::Draft::new(
        aidmesh::proto::Kind::Offer,
        aidmesh::proto::Category::Goods,
        format!("Spare thing {n}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authors_node_refuses_the_101st_open_post_with_429() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = spawn_node(a_dir.path(), &[], &["commons"]).await;
    let b = spawn_node(b_dir.path(), &[addr_of(&a).await], &["commons"]).await;
    wait_connected(&b, a.peer_id()).await;
    let mut first = None;
    for n in 0..MAX_LIVE_PER_AUTHOR as u32 {
        let p = a.publish(draft(n)).await.unwrap();
        first.get_or_insert(p.id);
    }
    let err = a.publish(draft(100)).await.unwrap_err();
    assert!(
        matches!(
            err,
            aidmesh::node::Error::Store(aidmesh::store::Error::Refused(Refused::OverQuota { .. }))
        ),
        "{err:?}"
    );
    // The local API says so with 429 and a code.
    let api = aidmesh::api::serve(
        a.clone(),
        "127.0.0.1:0".parse().unwrap(),
        false,
        &aidmesh::DataDir::resolve(Some(a_dir.path().to_path_buf())).unwrap(),
    )
    .await
    .unwrap();
    let client = aidmesh::client::ApiClient::from_data_dir(
        &aidmesh::DataDir::resolve(Some(a_dir.path().to_path_buf())).unwrap(),
    )
    .unwrap();
    let json = aidmesh::api::json::DraftJson {
        kind: Some("offer".into()),
        title: "One too many".into(),
        ..Default::default()
    };
    match client.publish(&json).await {
        Err(aidmesh::client::Error::Api {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!((status, code.as_str()), (429, "over_quota"));
            assert!(
                message.contains("fulfil or withdraw one first"),
                "{message}"
            );
            assert!(!message.contains('\n'));
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    // Withdrawing one makes room again.
    a.withdraw(&first.unwrap()).await.unwrap();
    a.publish(draft(101)).await.unwrap();
    // The other node holds the same 100 live posts.
    let author = a.identity().author();
    wait_until("b holds a's 100 live posts and the tombstone", || async {
        b.store().author_usage(&author, "commons") == (100, 101)
    })
    .await;
    drop(api);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_got_posts_in_opposite_orders_keep_the_same_set_and_sync_agrees() {
    let x = identity(9);
    let posts = posts_by(&x, 130, 0);
    let mut posts_now: Vec<SignedPost> = Vec::new();
    // Re-date the posts to the wall clock: nodes check expiry against it.
    let now = wall_now();
    for s in &posts {
        let mut p = s.decode_post().unwrap();
        let age = NOW - p.created_at;
        p.created_at = now - age;
        p.updated_at = now - age;
        p.expires_at = now - age + 14 * DAY;
        posts_now.push(sign(&x, &p));
    }
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = spawn_node(a_dir.path(), &[], &["commons"]).await;
    let mut reversed = posts_now.clone();
    reversed.reverse();
    a.import(posts_now.clone()).await.unwrap();
    let b = spawn_node(b_dir.path(), &[], &["commons"]).await;
    b.import(reversed).await.unwrap();
    assert_eq!(ids_of(a.store(), &x), ids_of(b.store(), &x));
    assert_eq!(ids_of(a.store(), &x).len(), 100);

    let mut events = b.subscribe();
    b.dial(addr_of(&a).await).await.unwrap();
    wait_connected(&b, a.peer_id()).await;
    b.sync_with(a.peer_id(), "commons").await.unwrap();
    let (missing, error) = wait_for(&mut events, "sync finished", |e| match e {
        aidmesh::Event::SyncFinished {
            circle,
            missing,
            error,
            ..
        } if circle == "commons" => Some((*missing, error.clone())),
        _ => None,
    })
    .await;
    // The same kept set on both: nothing to fetch, nothing to fight over.
    assert_eq!((missing, error), (0, None));
    assert_eq!(ids_of(a.store(), &x), ids_of(b.store(), &x));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// The next sync of `commons` that `events` tells of: what it found missing and fetched.
async fn next_sync(
    events: &mut tokio::sync::broadcast::Receiver<aidmesh::Event>,
) -> (usize, usize) {
    wait_for(events, "sync finished", |e| match e {
        aidmesh::Event::SyncFinished {
            circle,
            missing,
            fetched,
            error,
            ..
        } if circle == "commons" => {
            assert_eq!(error, &None, "sync failed");
            Some((*missing, *fetched))
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_is_fetched_once_not_on_every_sync() {
    let x = identity(11);
    let now = wall_now();
    let posts: Vec<SignedPost> = (0..12u64)
        .map(|i| {
            let mut p = post(&x, i as u32, MINUTE);
            p.created_at = now - (i + 1) * MINUTE;
            p.updated_at = p.created_at;
            p.expires_at = p.created_at + 14 * DAY;
            sign(&x, &p)
        })
        .collect();
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = spawn_node(a_dir.path(), &[], &["commons"]).await;
    a.import(posts.clone()).await.unwrap();
    let b = spawn_node(b_dir.path(), &[], &["commons"]).await;
    b.store().block(&x.author()).unwrap();
    let mut events = b.subscribe();
    b.dial(addr_of(&a).await).await.unwrap();

    // The sync on connect fetches the posts and the store refuses them (blocked
    // author), remembering the refusals...
    assert_eq!(next_sync(&mut events).await, (12, 12));
    assert!(ids_of(b.store(), &x).is_empty());
    for s in &posts {
        assert!(b.store().is_refused(&item(s), wall_now()));
    }
    // ... so the next sync still finds them missing but fetches none of them.
    b.sync_with(a.peer_id(), "commons").await.unwrap();
    assert_eq!(next_sync(&mut events).await, (12, 0));

    // Unblocked, the author's posts are fetched again (a sync that was already
    // running when the block was lifted may still skip them: the next one fetches).
    b.store().unblock(&x.author()).unwrap();
    for _ in 0..3 {
        b.sync_with(a.peer_id(), "commons").await.unwrap();
        if next_sync(&mut events).await.1 == 12 {
            break;
        }
    }
    assert_eq!(ids_of(b.store(), &x).len(), 12);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
