//! The matcher on a real sled store with a fixed clock: who matches, in what order and
//! why; and live matching of arriving posts against alerts and own posts.

mod common;

use aidmesh::alerts::{AlertFilter, AlertId, Alerts, Target};
use aidmesh::matcher::{self, live::Watcher, Match};
use aidmesh::proto::{Category, Kind, Post, Status};
use aidmesh::{Event, Identity, Origin, Store};
use common::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

/// An open food offer by `who` with a title, tags and location, `age` ms old.
fn offer(who: &Identity, n: u32, title: &str, tags: &[&str], location: Option<&str>) -> Post {
    Post {
        title: title.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        location: location.map(str::to_string),
        ..post(who, n, MINUTE)
    }
}

fn request(who: &Identity, n: u32, title: &str, tags: &[&str], location: Option<&str>) -> Post {
    Post {
        kind: Kind::Request,
        ..offer(who, n, title, tags, location)
    }
}

fn put(store: &Store, who: &Identity, p: &Post) {
    store.insert(sign(who, p), NOW).unwrap();
}

fn titles(found: &[Match]) -> Vec<&str> {
    found.iter().map(|m| m.post.title.as_str()).collect()
}

fn reasons(m: &Match) -> Vec<String> {
    m.scored.reasons.iter().map(ToString::to_string).collect()
}

#[test]
fn only_open_unexpired_posts_of_the_opposite_kind_same_circle_match_and_category_is_a_signal() {
    let (_d, store) = open();
    let (me, a, b) = (identity(1), identity(2), identity(3));
    let need = request(&me, 1, "Soup for a family", &["soup"], Some("u4pruy"));
    put(&store, &me, &need);

    let good = offer(&a, 1, "Good", &["soup"], Some("u4pruy"));
    // Another category: a candidate when it shares a tag or word, ranked below.
    let housing = Post {
        category: Category::Housing,
        ..offer(&a, 2, "Housing", &["soup"], Some("u4pruy"))
    };
    let unrelated = Post {
        category: Category::Housing,
        ..offer(&a, 9, "A room", &["room"], Some("u4pruy"))
    };
    let other_circle = Post {
        circle: "elsewhere".into(),
        ..offer(&a, 3, "Other circle", &["soup"], Some("u4pruy"))
    };
    let also_request = request(&b, 4, "Also a request", &["soup"], Some("u4pruy"));
    let withdrawn = Post {
        status: Status::Withdrawn,
        body: String::new(),
        contact: None,
        ..offer(&b, 5, "Withdrawn", &["soup"], Some("u4pruy"))
    };
    let fulfilled = Post {
        status: Status::Fulfilled,
        ..offer(&b, 6, "Fulfilled", &["soup"], Some("u4pruy"))
    };
    // Made 20 days ago for 14 days: expired by NOW.
    let expired = offer(&b, 7, "Expired", &["soup"], Some("u4pruy"));
    let expired = Post {
        created_at: NOW - 20 * DAY,
        updated_at: NOW - 20 * DAY,
        expires_at: NOW - 6 * DAY,
        ..expired
    };
    let mine = offer(&me, 8, "My own offer", &["soup"], Some("u4pruy"));
    for p in [&good, &housing, &unrelated, &other_circle] {
        put(&store, &a, p);
    }
    for p in [&also_request, &withdrawn, &fulfilled] {
        put(&store, &b, p);
    }
    store
        .insert(sign(&b, &expired), expired.updated_at + 1)
        .unwrap();
    put(&store, &me, &mine);

    let found = matcher::rank(&store, &need, NOW, 10).unwrap();
    assert_eq!(titles(&found), ["Good", "Housing"]);
    assert_eq!(found[0].scored.reasons[0].to_string(), "category food");
    assert_eq!(reasons(&found[1])[0], "1 tag");
    // The ranking is the same from the offer's side.
    let mut back = titles(&matcher::rank(&store, &good, NOW, 10).unwrap())
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    back.sort();
    assert_eq!(back, ["Also a request", "Soup for a family"]);
    // A withdrawn post has no matches of its own.
    assert!(matcher::rank(&store, &withdrawn, NOW, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn nearer_beats_farther_and_unlocated_matches_below_near() {
    let (_d, store) = open();
    let (me, a) = (identity(1), identity(2));
    let need = request(&me, 1, "Bread", &[], Some("u4pruy"));
    // Same cell, the next cell but one (a few km), another country, and no location.
    put(&store, &a, &offer(&a, 1, "Here", &[], Some("u4pruy")));
    put(&store, &a, &offer(&a, 2, "Nearby", &[], Some("u4prv")));
    put(&store, &a, &offer(&a, 3, "Far away", &[], Some("gcpvj0")));
    put(&store, &a, &offer(&a, 4, "Anywhere", &[], None));

    let found = matcher::rank(&store, &need, NOW, 10).unwrap();
    assert_eq!(titles(&found), ["Here", "Nearby", "Anywhere", "Far away"]);
    assert!(reasons(&found[0]).contains(&"<1 km".to_string()));
    assert!(reasons(&found[1])
        .iter()
        .any(|r| r.starts_with('~') && r.ends_with(" km")));
    assert!(reasons(&found[2]).contains(&"anywhere".to_string()));
}

#[test]
fn more_shared_tags_and_words_rank_higher() {
    let (_d, store) = open();
    let (me, a) = (identity(1), identity(2));
    let need = request(
        &me,
        1,
        "Winter coats for children",
        &["winter", "kids", "clothes"],
        None,
    );
    put(&store, &a, &offer(&a, 1, "Spare things", &["winter"], None));
    put(
        &store,
        &a,
        &offer(&a, 2, "More things", &["winter", "kids", "clothes"], None),
    );
    put(
        &store,
        &a,
        &offer(&a, 3, "Some things", &["kids", "winter"], None),
    );
    put(&store, &a, &offer(&a, 4, "Nothing shared", &[], None));
    let found = matcher::rank(&store, &need, NOW, 10).unwrap();
    assert_eq!(
        titles(&found),
        [
            "More things",
            "Some things",
            "Spare things",
            "Nothing shared"
        ]
    );
    assert!(reasons(&found[0]).contains(&"3 tags".to_string()));
    assert!(reasons(&found[1]).contains(&"2 tags".to_string()));

    // Shared words count, whatever the case, accents and plural.
    let words = request(&me, 2, "Crêpes et galettes", &[], None);
    put(
        &store,
        &a,
        &offer(&a, 5, "CREPE pan and a galette", &[], None),
    );
    put(&store, &a, &offer(&a, 6, "A frying pan", &[], None));
    let found = matcher::rank(&store, &words, NOW, 2).unwrap();
    assert_eq!(found[0].post.title, "CREPE pan and a galette");
    assert!(reasons(&found[0]).contains(&"2 words".to_string()));
}

#[test]
fn quantity_fit_and_freshness_break_ties() {
    let (_d, store) = open();
    let (me, a) = (identity(1), identity(2));
    let need = Post {
        quantity: Some(10),
        ..request(&me, 1, "Meals", &[], None)
    };
    put(
        &store,
        &a,
        &Post {
            quantity: Some(4),
            ..offer(&a, 1, "Four", &[], None)
        },
    );
    put(
        &store,
        &a,
        &Post {
            quantity: Some(12),
            ..offer(&a, 2, "Twelve", &[], None)
        },
    );
    let older = Post {
        created_at: NOW - 10 * DAY,
        updated_at: NOW - 10 * DAY,
        ..offer(&a, 3, "Older", &[], None)
    };
    put(&store, &a, &older);
    let found = matcher::rank(&store, &need, NOW, 10).unwrap();
    assert_eq!(titles(&found), ["Twelve", "Four", "Older"]);
    assert!(reasons(&found[0]).contains(&"quantity fits".to_string()));
    assert!(reasons(&found[1]).contains(&"quantity 4 of 10".to_string()));
    // Deterministic: the same store and clock give the same ranking.
    assert_eq!(found, matcher::rank(&store, &need, NOW, 10).unwrap());
    // The limit keeps the best.
    assert_eq!(
        titles(&matcher::rank(&store, &need, NOW, 1).unwrap()),
        ["Twelve"]
    );
}

fn match_targets(events: &[Event]) -> Vec<Target> {
    events
        .iter()
        .map(|e| match e {
            Event::Match { target, .. } => target.clone(),
            other => panic!("not a match event: {other:?}"),
        })
        .collect()
}

#[test]
fn arriving_posts_alert_once_per_alert_and_own_post() {
    let (_d, store) = open();
    let alerts = Alerts::open(store.db()).unwrap();
    let (me, a) = (identity(1), identity(2));
    let watcher = Watcher::new(store.clone(), alerts.clone(), me.author());
    let bikes = alerts
        .add(
            AlertFilter {
                kind: Some(Kind::Offer),
                tag: Some("bike".into()),
                ..AlertFilter::default()
            },
            NOW,
        )
        .unwrap();
    let mine = request(&me, 1, "Bike for school", &["bike"], Some("u4pruy"));
    put(&store, &me, &mine);

    let arriving = offer(&a, 1, "Kids bike", &["bike"], Some("u4pruy"));
    put(&store, &a, &arriving);
    let events = watcher.check(&arriving, Origin::Gossip, NOW).unwrap();
    assert_eq!(
        match_targets(&events),
        [
            Target::Alert { id: bikes.id },
            Target::Post {
                id: mine.id,
                title: mine.title.clone()
            }
        ]
    );
    let Event::Match { reasons, score, .. } = &events[1] else {
        unreachable!()
    };
    assert!(score.unwrap() >= matcher::MATCH_THRESHOLD);
    assert!(reasons.contains(&"1 tag".to_string()), "{reasons:?}");
    let Event::Match { reasons, .. } = &events[0] else {
        unreachable!()
    };
    assert_eq!(reasons, &["kind offer", "tag bike"]);

    // Again (re-delivered) or as a new revision: no second alert.
    assert!(watcher
        .check(&arriving, Origin::Sync, NOW)
        .unwrap()
        .is_empty());
    let edited = Post {
        revision: 2,
        title: "Kids bike, with lights".into(),
        ..arriving.clone()
    };
    assert!(watcher
        .check(&edited, Origin::Gossip, NOW)
        .unwrap()
        .is_empty());

    // Posts that do not fit raise nothing; this node's own posts never alert.
    let unrelated = Post {
        category: Category::Skills,
        ..offer(&a, 2, "Piano lessons", &[], None)
    };
    assert!(watcher
        .check(&unrelated, Origin::Gossip, NOW)
        .unwrap()
        .is_empty());
    let own_offer = offer(&me, 9, "My bike", &["bike"], None);
    assert!(watcher
        .check(&own_offer, Origin::Import, NOW)
        .unwrap()
        .is_empty());

    // A removed alert no longer fires.
    alerts.remove(bikes.id).unwrap();
    let another = offer(&a, 3, "Another bike", &["bike"], None);
    let events = watcher.check(&another, Origin::Gossip, NOW).unwrap();
    assert!(events.iter().all(|e| !matches!(
        e,
        Event::Match {
            target: Target::Alert { .. },
            ..
        }
    )));
}

#[test]
fn alerts_and_their_memory_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let a = identity(2);
    let first = offer(&a, 1, "Soup", &["soup"], None);
    let alert_id = {
        let store = Store::open(&path).unwrap();
        let alerts = Alerts::open(store.db()).unwrap();
        let alert = alerts
            .add(
                AlertFilter {
                    search: Some("soup".into()),
                    ..AlertFilter::default()
                },
                NOW,
            )
            .unwrap();
        let watcher = Watcher::new(store.clone(), alerts.clone(), identity(1).author());
        assert_eq!(watcher.check(&first, Origin::Gossip, NOW).unwrap().len(), 1);
        // What the node's watcher task does once no further post waits.
        alerts.commit(NOW).unwrap();
        store.flush().unwrap();
        alert.id
    };
    let store = Store::open(&path).unwrap();
    let alerts = Alerts::open(store.db()).unwrap();
    assert_eq!(alerts.list().len(), 1);
    assert_eq!(alerts.list()[0].id, alert_id);
    let watcher = Watcher::new(store.clone(), alerts.clone(), identity(1).author());
    assert!(watcher.check(&first, Origin::Sync, NOW).unwrap().is_empty());
    let second = offer(&a, 2, "More soup", &[], None);
    assert_eq!(watcher.check(&second, Origin::Sync, NOW).unwrap().len(), 1);
    // New alerts get new ids after a restart.
    let next = alerts
        .add(
            AlertFilter {
                kind: Some(Kind::Request),
                ..AlertFilter::default()
            },
            NOW,
        )
        .unwrap();
    assert_ne!(next.id, alert_id);
}

#[test]
fn bad_alert_filters_are_refused_naming_the_filter() {
    let (_d, store) = open();
    let alerts = Alerts::open(store.db()).unwrap();
    let cases = [
        (
            AlertFilter {
                near: Some("u4pa".into()),
                ..AlertFilter::default()
            },
            "near",
        ),
        (
            AlertFilter {
                tag: Some("Not A Tag".into()),
                ..AlertFilter::default()
            },
            "tags",
        ),
        (
            AlertFilter {
                circle: Some("UPPER".into()),
                ..AlertFilter::default()
            },
            "circle",
        ),
        (AlertFilter::default(), "filter"),
    ];
    for (filter, field) in cases {
        let err = alerts.add(filter.clone(), NOW).unwrap_err();
        assert_eq!(err.field(), Some(field), "{filter:?}: {err}");
        assert!(!err.to_string().is_empty());
    }
    assert!(alerts.list().is_empty());
    assert!(matches!(
        alerts.remove(aidmesh::alerts::AlertId(42)),
        Err(aidmesh::alerts::Error::NotFound(_))
    ));
}

#[test]
fn an_alert_near_a_place_fires_within_its_radius_as_list_reckons_it() {
    let (_d, store) = open();
    let alerts = Alerts::open(store.db()).unwrap();
    // The centres of u33dc and u33db2 are about 4 km apart, of u33dc and u33dk0 14 km.
    let near = alerts
        .add(
            AlertFilter {
                near: Some("u33dc".into()),
                within_km: Some(5),
                ..AlertFilter::default()
            },
            NOW,
        )
        .unwrap();
    let default_radius = alerts
        .add(
            AlertFilter {
                near: Some("u0yjj".into()),
                ..AlertFilter::default()
            },
            NOW,
        )
        .unwrap();
    let watcher = Watcher::new(store.clone(), alerts.clone(), identity(1).author());
    let a = identity(2);
    let fired = |p: &Post| -> Vec<AlertId> {
        put(&store, &a, p);
        watcher
            .check(p, Origin::Gossip, NOW)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Event::Match {
                    target: Target::Alert { id },
                    ..
                } => Some(id),
                _ => None,
            })
            .collect()
    };
    let next_cell = offer(&a, 1, "Soup", &[], Some("u33db2"));
    assert_eq!(
        fired(&next_cell),
        vec![near.id],
        "4 km away, in another cell"
    );
    let far = offer(&a, 2, "Soup", &[], Some("u33dk0"));
    assert!(fired(&far).is_empty(), "beyond 5 km");
    let nowhere = offer(&a, 3, "Soup", &[], None);
    assert!(fired(&nowhere).is_empty(), "no location, no distance");
    let same_cell = offer(&a, 4, "Soup", &[], Some("u0yjj1"));
    assert_eq!(
        fired(&same_cell),
        vec![default_radius.id],
        "within the default 10 km"
    );
    assert_eq!(near.filter.reasons(), ["within 5 km of u33dc"]);

    for (bad, why) in [
        (
            AlertFilter {
                near: Some("u33dc".into()),
                within_km: Some(0),
                ..AlertFilter::default()
            },
            "between 1 and",
        ),
        (
            AlertFilter {
                tag: Some("soup".into()),
                within_km: Some(5),
                ..AlertFilter::default()
            },
            "needs a place",
        ),
    ] {
        let e = alerts.add(bad, NOW).unwrap_err();
        assert_eq!(e.field(), Some("within_km"));
        assert!(e.to_string().contains(why), "{e}");
    }
}
