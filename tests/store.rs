//! The sled store on a real on-disk database: revisions, tombstones, indexes, queries,
//! expiry, blocking, batches and durability.

mod common;

use aidmesh::proto::{Category, Kind, Post, PostId, Status};
use aidmesh::store::{Inserted, Query, Refused, StatusFilter, FLUSH_EVERY_MS};
use aidmesh::{Identity, Store};
use common::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

fn titles(posts: &[aidmesh::proto::VerifiedPost]) -> Vec<String> {
    posts.iter().map(|p| p.post().title.clone()).collect()
}

fn q() -> Query {
    Query::default()
}

#[test]
fn insert_get_and_revisions() {
    let (_d, store) = open();
    let me = identity(1);
    let p1 = Post {
        tags: vec!["soup".into()],
        ..post(&me, 1, MINUTE)
    };
    assert_eq!(store.insert(sign(&me, &p1), NOW).unwrap(), Inserted::New);
    assert_eq!(
        store.insert(sign(&me, &p1), NOW).unwrap(),
        Inserted::Duplicate
    );
    assert_eq!(store.len(), 1);
    assert_eq!(store.get(&p1.id).unwrap().unwrap().post(), &p1);

    let p2 = Post {
        revision: 2,
        tags: vec!["stew".into()],
        title: "Stew instead".into(),
        updated_at: NOW,
        ..p1.clone()
    };
    assert_eq!(
        store.insert(sign(&me, &p2), NOW).unwrap(),
        Inserted::Updated { previous: 1 }
    );
    assert_eq!(
        store.insert(sign(&me, &p1), NOW).unwrap(),
        Inserted::Stale { current: 2 }
    );
    assert_eq!(store.len(), 1);
    assert_eq!(store.get(&p1.id).unwrap().unwrap().post(), &p2);
    // The old revision's index entries went with it.
    let by_old_tag = Query {
        tag: Some("soup".into()),
        ..q()
    };
    assert!(store.query(&by_old_tag, NOW).unwrap().is_empty());
    let by_new_tag = Query {
        tag: Some("stew".into()),
        ..q()
    };
    assert_eq!(
        titles(&store.query(&by_new_tag, NOW).unwrap()),
        ["Stew instead"]
    );
    assert!(store
        .query(
            &Query {
                text: Some("number".into()),
                ..q()
            },
            NOW
        )
        .unwrap()
        .is_empty());
}

#[test]
fn bad_posts_are_refused_and_change_nothing() {
    let (_d, store) = open();
    let me = identity(1);
    let good = post(&me, 1, MINUTE);
    let mut bad_sig = sign(&me, &good);
    bad_sig.signature.0[3] ^= 1;
    let err = store.insert(bad_sig, NOW).unwrap_err();
    assert!(
        matches!(err, aidmesh::store::Error::Refused(Refused::Invalid(_))),
        "{err}"
    );

    let too_long = Post {
        title: "t".repeat(121),
        ..post(&me, 2, MINUTE)
    };
    let err = store.insert(sign(&me, &too_long), NOW).unwrap_err();
    assert!(err.to_string().contains("title"), "{err}");

    let future = Post {
        created_at: NOW + 10 * MINUTE,
        updated_at: NOW + 10 * MINUTE,
        ..post(&me, 3, 0)
    };
    assert!(store.insert(sign(&me, &future), NOW).is_err());
    assert_eq!(store.len(), 0);
    assert!(store.get(&good.id).unwrap().is_none());
    assert!(store
        .query(
            &Query {
                status: StatusFilter::Any,
                ..q()
            },
            NOW
        )
        .unwrap()
        .is_empty());
}

#[test]
fn tombstone_keeps_old_revision_out() {
    let (_d, store) = open();
    let me = identity(1);
    let open_post = Post {
        body: "details".into(),
        ..post(&me, 1, MINUTE)
    };
    store.insert(sign(&me, &open_post), NOW).unwrap();
    let withdrawn = Post {
        revision: 2,
        status: Status::Withdrawn,
        body: String::new(),
        updated_at: NOW,
        ..open_post.clone()
    };
    store.insert(sign(&me, &withdrawn), NOW).unwrap();
    assert_eq!(
        store.insert(sign(&me, &open_post), NOW).unwrap(),
        Inserted::Stale { current: 2 }
    );
    assert!(
        store.query(&q(), NOW).unwrap().is_empty(),
        "open-only by default"
    );
    let all = store
        .query(
            &Query {
                status: StatusFilter::Any,
                ..q()
            },
            NOW,
        )
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].post().status, Status::Withdrawn);
}

#[test]
fn equal_revisions_converge_on_the_same_winner() {
    let me = identity(1);
    let a = post(&me, 1, MINUTE);
    let b = Post {
        title: "Another text, same revision".into(),
        ..a.clone()
    };
    let (_d1, s1) = open();
    let (_d2, s2) = open();
    s1.insert(sign(&me, &a), NOW).unwrap();
    s1.insert(sign(&me, &b), NOW).unwrap();
    s2.insert(sign(&me, &b), NOW).unwrap();
    s2.insert(sign(&me, &a), NOW).unwrap();
    let h1 = s1.get(&a.id).unwrap().unwrap().hash();
    let h2 = s2.get(&a.id).unwrap().unwrap().hash();
    assert_eq!(h1, h2);
}

fn seeded() -> (tempfile::TempDir, Store) {
    let (d, store) = open();
    let alice = identity(1);
    let bob = identity(2);
    let posts = [
        Post {
            title: "Fresh bread every morning".into(),
            tags: vec!["bread".into(), "bakery".into()],
            location: Some("u33dc0".into()),
            ..post(&alice, 1, 10 * MINUTE)
        },
        Post {
            kind: Kind::Request,
            category: Category::Transport,
            title: "Ride to the CLINIC".into(),
            body: "Wheelchair, folds small".into(),
            tags: vec!["ride".into()],
            location: Some("u33db2".into()),
            circle: "east-side".into(),
            ..post(&bob, 2, 5 * MINUTE)
        },
        Post {
            category: Category::Goods,
            title: "Bicycles for kids".into(),
            body: "Two small bikes".into(),
            tags: vec!["bike".into()],
            location: Some("u0yjj1".into()),
            ..post(&alice, 3, MINUTE)
        },
        Post {
            status: Status::Fulfilled,
            title: "Bread was taken".into(),
            tags: vec!["bread".into()],
            ..post(&bob, 4, 2 * MINUTE)
        },
        Post {
            title: "Old bread".into(),
            tags: vec!["bread".into()],
            expires_at: NOW + MINUTE,
            ..post(&bob, 5, 30 * MINUTE)
        },
    ];
    for p in &posts {
        let who = if p.author == alice.author() {
            &alice
        } else {
            &bob
        };
        store.insert(sign(who, p), NOW).unwrap();
    }
    (d, store)
}

#[test]
fn queries_use_every_filter_newest_first() {
    let (d, store) = seeded();
    check_every_filter(&store);
    // The indexes rebuilt at open answer the same.
    drop(store);
    let store = Store::open(&d.path().join("db")).unwrap();
    check_every_filter(&store);
    let items = store.sync_items("commons", NOW).unwrap();
    assert_eq!(items.len(), 4, "every post of the circle is a sync item");
    assert!(items.windows(2).all(|w| w[0] <= w[1]), "in order");
    assert_eq!(store.sweep_expired(NOW + 2 * MINUTE).unwrap(), 1);
    check_after_sweep(&store);
}

fn check_after_sweep(store: &Store) {
    assert_eq!(
        titles(
            &store
                .query(
                    &Query {
                        tag: Some("bread".into()),
                        status: StatusFilter::Any,
                        ..q()
                    },
                    NOW
                )
                .unwrap()
        ),
        ["Bread was taken", "Fresh bread every morning"]
    );
}

fn check_every_filter(store: &Store) {
    let run = |query: Query| titles(&store.query(&query, NOW).unwrap());
    assert_eq!(
        run(q()),
        [
            "Bicycles for kids",
            "Ride to the CLINIC",
            "Fresh bread every morning",
            "Old bread"
        ]
    );
    assert_eq!(
        run(Query {
            kind: Some(Kind::Request),
            ..q()
        }),
        ["Ride to the CLINIC"]
    );
    assert_eq!(
        run(Query {
            circle: Some("east-side".into()),
            ..q()
        }),
        ["Ride to the CLINIC"]
    );
    assert_eq!(
        run(Query {
            category: Some(Category::Goods),
            ..q()
        }),
        ["Bicycles for kids"]
    );
    assert_eq!(
        run(Query {
            tag: Some("bread".into()),
            ..q()
        }),
        ["Fresh bread every morning", "Old bread"]
    );
    assert_eq!(
        run(Query {
            tag: Some("bread".into()),
            status: StatusFilter::Any,
            ..q()
        }),
        ["Bread was taken", "Fresh bread every morning", "Old bread"]
    );
    assert_eq!(
        run(Query {
            status: StatusFilter::Only(Status::Fulfilled),
            ..q()
        }),
        ["Bread was taken"]
    );
    assert_eq!(
        run(Query {
            near: Some("u33d".into()),
            ..q()
        }),
        ["Ride to the CLINIC", "Fresh bread every morning"]
    );
    assert_eq!(
        run(Query {
            near: Some("u33dc0".into()),
            ..q()
        }),
        ["Fresh bread every morning"]
    );
    assert_eq!(
        run(Query {
            text: Some("clinic".into()),
            ..q()
        }),
        ["Ride to the CLINIC"]
    );
    assert_eq!(
        run(Query {
            text: Some("WHEEL".into()),
            ..q()
        }),
        ["Ride to the CLINIC"]
    );
    assert_eq!(
        run(Query {
            text: Some("bike".into()),
            ..q()
        }),
        ["Bicycles for kids"]
    );
    assert_eq!(
        run(Query {
            text: Some("bread".into()),
            ..q()
        }),
        ["Fresh bread every morning", "Old bread"]
    );
    assert!(run(Query {
        text: Some("bread ride".into()),
        ..q()
    })
    .is_empty());
    assert_eq!(
        run(Query {
            text: Some("b".into()),
            kind: Some(Kind::Offer),
            ..q()
        }),
        [
            "Bicycles for kids",
            "Fresh bread every morning",
            "Old bread"
        ]
    );
    assert_eq!(
        run(Query {
            author: Some(identity(2).author()),
            ..q()
        }),
        ["Ride to the CLINIC", "Old bread"]
    );
    assert_eq!(
        run(Query {
            tag: Some("bread".into()),
            text: Some("fresh".into()),
            ..q()
        }),
        ["Fresh bread every morning"]
    );
    assert_eq!(
        run(Query {
            limit: 2,
            offset: 1,
            ..q()
        }),
        ["Ride to the CLINIC", "Fresh bread every morning"]
    );
    assert_eq!(
        run(Query {
            text: Some("fresh".into()),
            limit: 1,
            offset: 1,
            ..q()
        }),
        Vec::<String>::new()
    );
    assert_eq!(store.count(&q(), NOW).unwrap(), 4);
    // Expired posts never show, swept or not.
    assert_eq!(
        run(Query {
            tag: Some("bread".into()),
            ..q()
        })
        .len(),
        2
    );
    assert_eq!(store.query(&q(), NOW + 2 * MINUTE).unwrap().len(), 3);
}

#[test]
fn bad_filters_name_the_field() {
    let (_d, store) = open();
    for (query, field) in [
        (
            Query {
                tag: Some("Bad Tag".into()),
                ..q()
            },
            "tags",
        ),
        (
            Query {
                circle: Some(String::new()),
                ..q()
            },
            "circle",
        ),
        (
            Query {
                near: Some("abc".into()),
                ..q()
            },
            "near",
        ),
        (Query { limit: 0, ..q() }, "limit"),
        (
            Query {
                limit: 100_000,
                ..q()
            },
            "limit",
        ),
    ] {
        match store.query(&query, NOW) {
            Err(aidmesh::store::Error::Query(e)) => assert_eq!(e.field(), field, "{e}"),
            other => panic!("expected a query error for {field}, got {other:?}"),
        }
    }
}

#[test]
fn sweep_removes_expired_posts_and_their_index_entries() {
    let (_d, store) = seeded();
    assert_eq!(store.len(), 5);
    assert_eq!(store.sweep_expired(NOW).unwrap(), 0);
    assert_eq!(store.sweep_expired(NOW + 2 * MINUTE).unwrap(), 1);
    assert_eq!(store.len(), 4);
    let later = NOW + 2 * MINUTE;
    let any = Query {
        status: StatusFilter::Any,
        ..q()
    };
    assert!(!titles(&store.query(&any, later).unwrap()).contains(&"Old bread".to_string()));
    // Nothing of it is left for an index to find, even before its expiry time.
    let old_id = post(&identity(2), 5, 0).id;
    assert!(store.get(&old_id).unwrap().is_none());
    assert_eq!(
        titles(
            &store
                .query(
                    &Query {
                        text: Some("old".into()),
                        ..any.clone()
                    },
                    NOW
                )
                .unwrap()
        ),
        Vec::<String>::new()
    );
    // An expired post cannot be inserted again.
    let me = identity(2);
    let expired = Post {
        expires_at: NOW + MINUTE,
        title: "Old bread".into(),
        tags: vec!["bread".into()],
        ..post(&me, 5, 30 * MINUTE)
    };
    assert!(store.insert(sign(&me, &expired), later).is_err());
    assert_eq!(store.sweep_expired(NOW + 100 * DAY).unwrap(), 4);
    assert!(store.is_empty());
}

#[test]
fn blocking_deletes_and_refuses_an_author() {
    let (_d, store) = seeded();
    let bob = identity(2);
    assert_eq!(store.block(&bob.author()).unwrap(), 3);
    assert!(store.is_blocked(&bob.author()).unwrap());
    assert_eq!(store.blocked().unwrap(), vec![bob.author()]);
    assert_eq!(store.len(), 2);
    let any = Query {
        status: StatusFilter::Any,
        ..q()
    };
    assert!(store
        .query(&any, NOW)
        .unwrap()
        .iter()
        .all(|p| p.post().author != bob.author()));
    let again = post(&bob, 9, MINUTE);
    let err = store.insert(sign(&bob, &again), NOW).unwrap_err();
    assert!(matches!(
        err,
        aidmesh::store::Error::Refused(Refused::Blocked(_))
    ));
    assert!(store.unblock(&bob.author()).unwrap());
    assert_eq!(
        store.insert(sign(&bob, &again), NOW).unwrap(),
        Inserted::New
    );
}

#[test]
fn a_circle_being_left_takes_no_post_until_joined_again() {
    let (_d, store) = seeded();
    let bob = identity(2);
    let riverside = |n| Post {
        circle: "riverside".into(),
        ..post(&bob, n, MINUTE)
    };
    assert_eq!(
        store.insert(sign(&bob, &riverside(20)), NOW).unwrap(),
        Inserted::New
    );
    // A leave marks the circle in the gate, then removes its posts: a write decided
    // after the mark is refused, one decided before it is taken by the removal.
    store.gate().leave("riverside");
    let late = sign(&bob, &riverside(21));
    let err = store.insert(late.clone(), NOW).unwrap_err();
    assert!(
        matches!(&err, aidmesh::store::Error::Refused(r @ Refused::CircleLeft { circle }) if circle == "riverside" && r.code() == "circle_left" && !r.is_senders_fault()),
        "{err}"
    );
    assert_eq!(store.remove_circle("riverside").unwrap(), 1);
    assert_eq!(store.circle_summary("riverside").posts, 0);
    assert_eq!(
        store.circle_summary("commons").posts,
        4,
        "other circles untouched"
    );
    // Not remembered as refused: should the node join again, sync fetches it.
    let item = aidmesh::proto::riblt::Item::new(
        late.decode_post().unwrap().updated_at,
        &late.content_hash(),
    );
    assert!(!store.is_refused(&item, NOW));
    store.gate().join("riverside");
    assert_eq!(store.insert(late, NOW).unwrap(), Inserted::New);
}

#[test]
fn batch_insert_keeps_good_posts_and_reports_each() {
    let (_d, store) = open();
    let me = identity(1);
    let mut batch = Vec::new();
    for n in 0..300 {
        // 100 posts per author: the per-author quota (`proto/LIMITS.md`) is not what
        // this test is about.
        let who = identity(1 + (n / 100) as u8);
        let mut s = sign(&who, &post(&who, n, MINUTE));
        if n % 50 == 7 {
            s.signature.0[0] ^= 1;
        }
        batch.push(s);
    }
    // Two revisions of one id in the same batch: the higher one wins.
    let first = post(&me, 1000, MINUTE);
    let second = Post {
        revision: 2,
        title: "second".into(),
        ..first.clone()
    };
    batch.push(sign(&me, &second));
    batch.push(sign(&me, &first));
    let results = store.insert_batch(batch, NOW).unwrap();
    assert_eq!(results.len(), 302);
    let bad = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(bad, 6);
    assert!(results[7].is_err() && results[8].is_ok());
    assert_eq!(results[300], Ok(Inserted::New));
    assert_eq!(results[301], Ok(Inserted::Stale { current: 2 }));
    assert_eq!(store.len(), 295);
    assert_eq!(
        store.get(&first.id).unwrap().unwrap().post().title,
        "second"
    );
    // And again: all duplicates now.
    let again: Vec<_> = (10..20).map(|n| sign(&me, &post(&me, n, MINUTE))).collect();
    assert!(store
        .insert_batch(again, NOW)
        .unwrap()
        .iter()
        .all(|r| r == &Ok(Inserted::Duplicate)));
}

#[test]
fn reopened_store_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let me = identity(1);
    let ids: Vec<PostId> = {
        let store = Store::open(&dir.path().join("db")).unwrap();
        let ids = (0..20)
            .map(|n| {
                let p = post(&me, n, MINUTE);
                store.insert_local(&verified(&me, &p)).unwrap();
                p.id
            })
            .collect();
        store.block(&identity(9).author()).unwrap();
        ids
    };
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.len(), 20);
    for id in &ids {
        assert!(store.get(id).unwrap().is_some());
    }
    assert!(store.is_blocked(&identity(9).author()).unwrap());
}

#[test]
fn a_second_open_of_the_same_db_is_a_clear_error() {
    let (dir, _store) = open();
    match Store::open(&dir.path().join("db")) {
        Err(e) => assert!(e.to_string().contains("cannot open the store"), "{e}"),
        Ok(_) => panic!("two stores on one database"),
    }
}

/// Child half of `acknowledged_local_posts_survive_kill_9`: writes posts and
/// acknowledges each on stdout, then waits to be killed.
#[test]
fn kill9_child() {
    let Some(dir) = std::env::var_os("AIDMESH_KILL9_DIR") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let me = identity(1);
    for n in 0..25 {
        store
            .insert_local(&verified(&me, &post(&me, n, MINUTE)))
            .unwrap();
        println!("ACK {n}");
    }
    loop {
        std::thread::park();
    }
}

#[test]
fn acknowledged_local_posts_survive_kill_9() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env("AIDMESH_KILL9_DIR", &db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A stuck child must fail the test, not hang it.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
    });
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0;
    for line in BufReader::new(stdout).lines() {
        // libtest prints "test kill9_child ... " before the first line of output.
        acked += line.unwrap().matches("ACK ").count();
        if acked >= 25 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(acked, 25);
    let store = Store::open(&db).unwrap();
    let me = identity(1);
    for n in 0..25 {
        assert!(
            store.get(&post(&me, n, MINUTE).id).unwrap().is_some(),
            "post {n} lost"
        );
    }
}

/// The raw sled database under a store, once the store has let go of it.
fn raw_db(path: &std::path::Path) -> sled::Db {
    for _ in 0..40 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    panic!("cannot open {}", path.display());
}

#[test]
fn a_store_in_the_old_format_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        // Format 1: `posts` seq → wire, `ids` id → seq, `index`, and no version.
        let me = identity(1);
        let p = post(&me, 1, MINUTE);
        let db = raw_db(&path);
        let seq = 7u64.to_be_bytes();
        db.open_tree("posts")
            .unwrap()
            .insert(seq, sign(&me, &p).encode().unwrap())
            .unwrap();
        db.open_tree("ids").unwrap().insert(p.id.0, &seq).unwrap();
        db.flush().unwrap();
    }
    match Store::open(&path) {
        Err(e @ aidmesh::store::Error::Format { .. }) => {
            assert!(
                matches!(
                    e,
                    aidmesh::store::Error::Format {
                        found: None,
                        expected: 2,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("format 1"), "{e}");
        }
        Err(e) => panic!("expected a format error, got {e}"),
        Ok(_) => panic!("an old-format store was opened"),
    }
    // Refusing it changed nothing.
    let db = raw_db(&path);
    assert_eq!(db.open_tree("posts").unwrap().len(), 1);
}

#[test]
fn a_store_in_an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Store::open(&path).unwrap());
    {
        let db = raw_db(&path);
        let meta = db.open_tree("store").unwrap();
        assert_eq!(
            meta.get(b"format").unwrap().as_deref(),
            Some(&2u32.to_be_bytes()[..])
        );
        meta.insert(b"format", &3u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Store::open(&path),
        Err(aidmesh::store::Error::Format {
            found: Some(3),
            expected: 2,
            ..
        })
    ));
}

#[test]
fn open_repairs_what_an_interrupted_block_or_write_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let alice = identity(1);
    let bob = identity(2);
    let first = post(&alice, 1, 2 * MINUTE);
    let second = Post {
        revision: 2,
        title: "second".into(),
        ..first.clone()
    };
    {
        let store = Store::open(&path).unwrap();
        store.insert_local(&verified(&alice, &second)).unwrap();
        for n in 0..3 {
            store
                .insert_local(&verified(&bob, &post(&bob, n, MINUTE)))
                .unwrap();
        }
        assert_eq!(store.len(), 4);
    }
    {
        // A block that reached the disk without its deletions, and (which no write
        // of this store does) a stale second record of alice's post.
        let db = raw_db(&path);
        db.open_tree("blocked")
            .unwrap()
            .insert(bob.author().0, &[])
            .unwrap();
        db.open_tree("records")
            .unwrap()
            .insert(
                u64::MAX.to_be_bytes(),
                sign(&alice, &first).encode().unwrap(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    for _ in 0..2 {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.len(), 1);
        let all: Vec<_> = store.all().collect::<Result<_, _>>().unwrap();
        assert_eq!(titles(&all), vec!["second".to_string()]);
        assert_eq!(store.get(&first.id).unwrap().unwrap().post().revision, 2);
        assert!(store.is_blocked(&bob.author()).unwrap());
        assert!(store.get(&post(&bob, 0, MINUTE).id).unwrap().is_none());
        let any = Query {
            status: StatusFilter::Any,
            ..q()
        };
        assert_eq!(titles(&store.query(&any, NOW).unwrap()), vec!["second"]);
    }
}

#[test]
fn stored_word_analyses_are_checked_and_repaired_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let me = identity(1);
    let texts = [
        "Warm winter coat",
        "Ride to the clinic",
        "Busco ayuda con la mudanza",
    ];
    let ids: Vec<PostId> = {
        let store = Store::open(&path).unwrap();
        texts
            .iter()
            .enumerate()
            .map(|(n, t)| {
                let p = Post {
                    title: (*t).into(),
                    ..post(&me, n as u32, MINUTE)
                };
                store.insert_local(&verified(&me, &p)).unwrap();
                p.id
            })
            .collect()
    };
    let search = |store: &Store, text: &str| {
        let found = store
            .query(
                &Query {
                    text: Some(text.into()),
                    ..q()
                },
                NOW,
            )
            .unwrap();
        found.iter().map(|p| p.post().id).collect::<Vec<_>>()
    };
    {
        // One analysis damaged, one belonging to another post, one missing, and one
        // of a record that does not exist.
        let db = raw_db(&path);
        let analysed = db.open_tree("analysed").unwrap();
        let keys: Vec<_> = analysed.iter().keys().map(Result::unwrap).collect();
        assert_eq!(keys.len(), 3, "every post's analysis is stored");
        let first = analysed.get(&keys[0]).unwrap().unwrap();
        analysed.insert(&keys[1], first).unwrap();
        analysed.insert(&keys[0], &b"garbage"[..]).unwrap();
        analysed.remove(&keys[2]).unwrap();
        analysed
            .insert(u64::MAX.to_be_bytes(), &b"orphan"[..])
            .unwrap();
        db.flush().unwrap();
    }
    for _ in 0..2 {
        let store = Store::open(&path).unwrap();
        assert_eq!(search(&store, "coats"), vec![ids[0]]);
        assert_eq!(search(&store, "riding clinics"), vec![ids[1]]);
        assert_eq!(search(&store, "mudanzas"), vec![ids[2]]);
    }
    let db = raw_db(&path);
    let analysed = db.open_tree("analysed").unwrap();
    assert_eq!(
        analysed.len(),
        3,
        "the orphan is gone, the others rewritten"
    );
    assert!(analysed.get(u64::MAX.to_be_bytes()).unwrap().is_none());
}

/// Posts per batch of `kill9_batch_child`.
const KILL9_BATCH: u32 = 100;

/// Child half of `a_batch_is_stored_whole_or_not_at_all_across_kill_9`: stores
/// batches of posts (tagged with their batch number) as fast as it can and reports
/// each, until it is killed.
#[test]
fn kill9_batch_child() {
    let Some(dir) = std::env::var_os("AIDMESH_KILL9_BATCH_DIR") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    for b in 0..10_000u32 {
        // One author per batch: the per-author quota (100 open posts) is not what this
        // test is about.
        let mut secret = [7u8; 32];
        secret[..4].copy_from_slice(&b.to_be_bytes());
        let me = Identity::from_secret(secret);
        let batch = (0..KILL9_BATCH)
            .map(|i| {
                let p = Post {
                    tags: vec![format!("b{b}")],
                    ..post(&me, b * KILL9_BATCH + i, MINUTE)
                };
                sign(&me, &p)
            })
            .collect();
        for r in store.insert_batch(batch, NOW).unwrap() {
            assert_eq!(r, Ok(Inserted::New));
        }
        println!("BATCH {b}");
    }
    loop {
        std::thread::park();
    }
}

#[test]
fn a_batch_is_stored_whole_or_not_at_all_across_kill_9() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_batch_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AIDMESH_KILL9_BATCH_DIR", &db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
    });
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = 0;
    while acked < 5 {
        match lines.next() {
            Some(line) => acked += line.unwrap().matches("BATCH ").count(),
            None => break,
        }
    }
    assert_eq!(acked, 5, "the child stopped early");
    // Past sled's background flush of the first batches, and in the middle of writing
    // later ones.
    std::thread::sleep(std::time::Duration::from_millis(3 * FLUSH_EVERY_MS));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = Store::open(&db).unwrap();
    let all: Vec<_> = store.all().collect::<Result<_, _>>().unwrap();
    assert_eq!(store.len(), all.len() as u64);
    assert!(all.len() >= KILL9_BATCH as usize, "nothing was flushed");
    assert_eq!(all.len() % KILL9_BATCH as usize, 0, "a batch was cut");
    let any = Query {
        status: StatusFilter::Any,
        ..q()
    };
    let batches = all.len() as u32 / KILL9_BATCH;
    for b in 0..batches + 2 {
        let tagged = Query {
            tag: Some(format!("b{b}")),
            ..any.clone()
        };
        let want = if b < batches { KILL9_BATCH } else { 0 };
        assert_eq!(store.count(&tagged, NOW).unwrap(), u64::from(want), "b{b}");
    }
    // Every index finds every stored post, and nothing else.
    assert_eq!(store.count(&any, NOW).unwrap(), all.len() as u64);
    assert_eq!(store.sync_items("commons", NOW).unwrap().len(), all.len());
    for p in &all {
        assert_eq!(store.get(&p.post().id).unwrap().as_ref(), Some(p));
        assert_eq!(
            store
                .get_by_hash_prefix(&p.hash().0[..16])
                .unwrap()
                .as_ref(),
            Some(p)
        );
    }
}
