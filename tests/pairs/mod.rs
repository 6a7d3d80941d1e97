//! The labelled matching set (`tests/data/matching_pairs.json`): realistic requests,
//! each with the offer meant to answer it, and distractor offers; loaded into a real
//! sled store and measured as recall of the intended offer.
//!
//! Shared by `tests/matching_pairs.rs` (floors) and `benches/matcher.rs` (figures).
#![allow(dead_code)]

use aidmesh::matcher;
use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, Status};
use aidmesh::{Identity, Store};
use serde::Deserialize;

/// The set, as committed.
pub const SET: &str = include_str!("../data/matching_pairs.json");

/// One post of the set, as written there.
#[derive(Clone, Debug, Deserialize)]
pub struct Spec {
    pub category: Category,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A request and the offer meant for it.
#[derive(Clone, Debug, Deserialize)]
pub struct Pair {
    pub lang: String,
    pub request: Spec,
    pub offer: Spec,
}

/// An offer meant for no request.
#[derive(Clone, Debug, Deserialize)]
pub struct Distractor {
    pub lang: String,
    #[serde(flatten)]
    pub spec: Spec,
}

/// The whole set.
#[derive(Clone, Debug, Deserialize)]
pub struct Set {
    pub pairs: Vec<Pair>,
    pub distractors: Vec<Distractor>,
}

/// Parses [`SET`].
pub fn set() -> Set {
    serde_json::from_str(SET).expect("tests/data/matching_pairs.json parses")
}

/// The 5-character geohash (about 5 km) of the city each language's posts are in.
fn city(lang: &str) -> &'static str {
    match lang {
        "en" => "gcpvj",
        "es" => "ezjmg",
        "fr" => "u09tv",
        "de" => "u33db",
        "it" => "u0nd9",
        "pt" => "eycs0",
        "nl" => "u173z",
        other => panic!("no city for language {other}"),
    }
}

const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
const DAY: u64 = 86_400_000;

/// The `n`th post of the set as a signed-ready post by its own author: placed in a
/// cell of its language's city (every seventh has no location), a few days old.
pub fn make(n: usize, kind: Kind, lang: &str, spec: &Spec, now: u64) -> (Identity, Post) {
    let who = Identity::from_secret(author_secret(n));
    let author = who.author();
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&(n as u64).to_be_bytes());
    let nonce = Nonce(nonce);
    let location = (n % 7 != 3).then(|| {
        let mut g = city(lang).to_string();
        g.push(ALPHABET[(n * 7 + 3) % ALPHABET.len()] as char);
        g
    });
    let age = (1 + (n as u64 * 5) % 10) * DAY / 2;
    let post = Post {
        id: PostId::derive(&author, &nonce),
        author,
        nonce,
        revision: 1,
        circle: "commons".into(),
        kind,
        status: Status::Open,
        category: spec.category,
        title: spec.title.clone(),
        body: spec.body.clone(),
        tags: spec.tags.clone(),
        location,
        quantity: None,
        contact: None,
        created_at: now - age,
        updated_at: now - age,
        expires_at: now - age + 30 * DAY,
    };
    (who, post)
}

fn author_secret(n: usize) -> [u8; 32] {
    let mut s = [7u8; 32];
    s[..8].copy_from_slice(&(n as u64 + 1).to_be_bytes());
    s
}

/// The set as posts: the requests (not stored) with their intended offers' ids, and
/// every offer (pairs' and distractors') by its own author.
pub struct Posts {
    /// Each request, its language, and the id of the offer meant for it.
    pub requests: Vec<(Identity, Post, String, PostId)>,
    /// Every offer of the set.
    pub offers: Vec<(Identity, Post)>,
}

/// Makes the posts of `set` at `now`.
pub fn posts(set: &Set, now: u64) -> Posts {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut requests = Vec::new();
    let mut offers = Vec::new();
    for p in &set.pairs {
        let (ow, offer) = make(next(), Kind::Offer, &p.lang, &p.offer, now);
        let (rw, request) = make(next(), Kind::Request, &p.lang, &p.request, now);
        requests.push((rw, request, p.lang.clone(), offer.id));
        offers.push((ow, offer));
    }
    for d in &set.distractors {
        offers.push(make(next(), Kind::Offer, &d.lang, &d.spec, now));
    }
    Posts { requests, offers }
}

/// Stores every offer of `posts` (and every request, as a real store would hold
/// them) in `store`.
pub fn store_all(store: &Store, posts: &Posts, now: u64) {
    let all = posts
        .offers
        .iter()
        .map(|(w, p)| (w, p))
        .chain(posts.requests.iter().map(|(w, p, _, _)| (w, p)))
        .map(|(w, p)| p.sign(w.signing_key()).expect("signs"))
        .collect();
    for r in store.insert_batch(all, now).expect("stored") {
        r.expect("set post accepted");
    }
}

/// How often the intended offer came first and within the first three.
#[derive(Clone, Debug, Default)]
pub struct Recall {
    /// Requests ranked.
    pub requests: usize,
    /// Intended offer ranked first.
    pub at1: usize,
    /// Intended offer in the first three.
    pub at3: usize,
    /// Requests whose offer was not first: title, language, the offer's rank (if in
    /// the first ten) and the titles ranked above it.
    pub misses: Vec<String>,
}

impl Recall {
    /// recall@1 as a fraction.
    pub fn r1(&self) -> f64 {
        self.at1 as f64 / self.requests as f64
    }
    /// recall@3 as a fraction.
    pub fn r3(&self) -> f64 {
        self.at3 as f64 / self.requests as f64
    }
}

/// Ranks every request of `posts` against `store` at `now`.
pub fn recall(store: &Store, posts: &Posts, now: u64) -> Recall {
    let mut r = Recall::default();
    for (_, request, lang, want) in &posts.requests {
        let found = matcher::rank(store, request, now, 10).expect("ranks");
        let at = found.iter().position(|m| &m.post.id == want);
        r.requests += 1;
        if at == Some(0) {
            r.at1 += 1;
        }
        if at.is_some_and(|i| i < 3) {
            r.at3 += 1;
        }
        if at != Some(0) {
            let above: Vec<&str> = found
                .iter()
                .take(at.unwrap_or(3))
                .map(|m| m.post.title.as_str())
                .collect();
            r.misses.push(format!(
                "[{lang}] {:?}: intended offer at {}, above it {above:?}",
                request.title,
                at.map_or("none of the first 10".into(), |i| (i + 1).to_string()),
            ));
        }
    }
    r
}
