//! Catch-up sync benchmark: prints one JSON object per line; a program that prints
//! figures, not a timed test.
//!
//! Run: `cargo bench --bench sync` (both parts). Options: `--only reconcile` or
//! `--only e2e`, `--seed X` (default fixed), `--trials T` (seeds per
//! reconciliation case, for the spread of round trips and bytes; default 50, at most
//! 3 for N = 1,000,000), `--posts P` (end-to-end posts, default 100,000),
//! `--neg-frame BYTES` (negentropy frame size limit, default 0 = unlimited).
//! Build with `CARGO_BUILD_JOBS=1 cargo bench --bench sync --no-run` on small machines.
//! Node warnings go to stderr (`RUST_LOG` overrides the default `warn`).
//!
//! # Part 1: reconciliation cost, in memory
//!
//! Two sets of N items `(updated_at, 16-byte hash)` (random hashes, `updated_at`
//! uniform over 90 days) whose symmetric difference is d, half of it only on each
//! side, the differing items at random times. Cases: N = 100,000 with d = 0, 10,
//! 1,000, 10,000, and N = 1,000,000 with d = 10.
//!
//! `impl = "aidmesh"`: the real initiator state machine [`aidmesh::sync::Session`]
//! against a responder over a [`CodedSet`] (the items with their sketch, what
//! `Store::sync_view` hands out). Every message goes through the real wire codec
//! (`encode_request`/`decode_request`, `encode_response`/`decode_response`), and the
//! encoded lengths are the bytes counted. The responder, [`respond_items`], is a
//! re-implementation of the Hello/Estimate/More branches of `aidmesh::sync::respond`
//! over a coded set instead of a `Store` (a store of 1,000,000 signed posts would
//! take too long to fill); it follows that code line by line. The set does not
//! change during a session, which is what the responder's per-session snapshot
//! guarantees in the real node. A round trip is one request/response pair before the
//! first `Fetch`. Once the session asks for its first `Fetch`, every fetch is
//! answered with no posts (allowed: "fewer posts than asked for is no lie") so that
//! the fetch batches are collected; the union of their hashes must equal the
//! responder-only items (be some of them, when the session stops after three empty
//! answers in a row), and `summary.extra` / `summary.missing` must equal the
//! initiator-only / responder-only counts. Fetch requests are not counted in the
//! reconciliation bytes (`fetch_request_bytes` is printed on its own). `wall_ms`
//! covers `Session::start`, every round of both sides, and the codec. Building both
//! coded sets is `setup_ms` and not timed, like negentropy's storages: a node's
//! store keeps each circle's sketch up to date as posts come and go (about 20
//! symbol updates per post), so a session finds it ready.
//!
//! `impl = "negentropy"`: the `negentropy` crate 0.5.3 on the same keys: timestamp
//! `updated_at`, 32-byte id = the 16-byte hash followed by 16 zero bytes, frame size
//! limit 0 (unlimited) unless `--neg-frame` says otherwise. Round trips are the
//! client's messages (`initiate`, then each `Some` from `reconcile_with_ids`); bytes
//! are message lengths. `wall_ms` covers the rounds; building and sealing both
//! storages is `setup_ms`. Its `have`/`need` ids are checked like ours.
//!
//! Ratios are ours / theirs.
//!
//! # Part 2: end to end over loopback
//!
//! Node A (127.0.0.1 TCP, mDNS and the DHT off) gets P valid signed posts by 50
//! authors (`Identity::from_secret([i; 32])`, `Draft::into_post`, `Post::sign`) written
//! straight into its store with `insert_batch` in chunks of 1,000. Node B starts empty
//! with A as bootstrap peer. Timed from just before B's `Node::start` until B's store
//! holds P posts (polled every 5 ms); also reported: B's `Event::SyncFinished` for A
//! (fetched, missing, round trips, error), time to B's first synced post, and B's
//! `status()` byte counters.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aidmesh::proto::riblt::{CodedSet, Item, ITEM_HASH_BYTES};
use aidmesh::proto::sync::{
    decode_request, decode_response, encode_request, encode_response, Request, Response,
    MAX_SYMBOLS,
};
use aidmesh::proto::{Category, Kind, SignedPost};
use aidmesh::sync::{Failure, Next, Session};
use aidmesh::{Config, DataDir, Draft, Event, Identity, Node, NodeConfig, Origin};
use anyhow::{anyhow, bail, Context, Result};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

const DEFAULT_SEED: u64 = 0x5e7c_0a1d;
const CIRCLE: &str = "commons";
const DAY_MS: u64 = 86_400_000;
/// Spread of `updated_at` in part 1.
const SPAN_MS: u64 = 90 * DAY_MS;
/// Reconciliation requests after which a run counts as not converging (the session
/// itself gives up after 12).
const MAX_ROUNDS: u32 = 64;
/// Part 1 cases: (N, d).
const CASES: &[(usize, usize)] = &[
    (100_000, 0),
    (100_000, 10),
    (100_000, 1_000),
    (100_000, 10_000),
    (1_000_000, 10),
];
/// Part 2: how long B may take to catch up.
const E2E_TIMEOUT: Duration = Duration::from_secs(900);
const AUTHORS: u8 = 50;
/// Part 2 goals (issue #17): catch-up rate, and the first post within this of B's start.
const GOAL_POSTS_PER_S: f64 = 25_000.0;
const GOAL_FIRST_POST: Duration = Duration::from_millis(200);

const WORDS: &[&str] = &[
    "bread", "soup", "ride", "clinic", "bike", "tools", "drill", "ladder", "room", "bed", "coat",
    "winter", "school", "books", "laptop", "repair", "garden", "seeds", "eggs", "milk", "baby",
    "stroller", "chair", "table", "paint", "help", "moving", "boxes", "van", "lessons", "english",
    "math", "care", "elderly", "company", "walk", "dog", "fridge", "stove", "blanket", "tent",
];

// ---- arguments and output ---------------------------------------------------------

struct Args {
    reconcile: bool,
    e2e: bool,
    seed: u64,
    trials: usize,
    posts: usize,
    neg_frame: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        reconcile: true,
        e2e: true,
        seed: DEFAULT_SEED,
        trials: 50,
        posts: 100_000,
        neg_frame: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--seed" => args.seed = value("--seed")?,
            "--trials" => args.trials = value("--trials")? as usize,
            "--posts" => args.posts = value("--posts")? as usize,
            "--neg-frame" => args.neg_frame = value("--neg-frame")?,
            "--only" => match it.next().as_deref() {
                Some("reconcile") => args.e2e = false,
                Some("e2e") => args.reconcile = false,
                other => bail!("--only reconcile|e2e, not {other:?}"),
            },
            // cargo bench adds `--bench`; ignore what we do not know.
            _ => {}
        }
    }
    if args.posts == 0 {
        bail!("--posts must be at least 1");
    }
    if args.neg_frame != 0 && args.neg_frame < 4096 {
        bail!("negentropy needs a frame size limit of 0 or at least 4096");
    }
    Ok(args)
}

/// One output line: `bench`, then the case, then metric, value, unit, then extras.
struct Line {
    part: &'static str,
    n: usize,
    d: usize,
    imp: Option<&'static str>,
}

impl Line {
    fn emit(&self, metric: &str, value: impl Into<Value>, unit: &str) {
        self.emit_with(metric, value, unit, &[]);
    }

    fn emit_with(
        &self,
        metric: &str,
        value: impl Into<Value>,
        unit: &str,
        extra: &[(&str, Value)],
    ) {
        let s = |v: &str| Value::from(v).to_string();
        let mut line = format!("{{\"bench\":\"sync\",\"part\":{}", s(self.part));
        if let Some(imp) = self.imp {
            line += &format!(",\"impl\":{}", s(imp));
        }
        line += &format!(
            ",\"metric\":{},\"value\":{},\"unit\":{},\"n\":{},\"d\":{}",
            s(metric),
            value.into(),
            s(unit),
            self.n,
            self.d
        );
        for (k, v) in extra {
            line += &format!(",{}:{}", s(k), v);
        }
        line.push('}');
        println!("{line}");
    }

    fn with_imp(&self, imp: &'static str) -> Line {
        Line {
            part: self.part,
            n: self.n,
            d: self.d,
            imp: Some(imp),
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

// ---- part 1: the two sets ---------------------------------------------------------

/// The initiator's and the responder's items, sorted like `Store::sync_items`
/// (by `updated_at`, then hash), and the true difference.
struct Sets {
    initiator: Vec<Item>,
    responder: Vec<Item>,
    initiator_only: Vec<Item>,
    responder_only: Vec<Item>,
}

fn make_sets(rng: &mut StdRng, n: usize, d: usize) -> Sets {
    assert!(d % 2 == 0 && d / 2 <= n);
    let half = d / 2;
    let common = n - half;
    let now = 1_780_272_000_000u64; // 2026-06-01
    let mut seen = HashSet::with_capacity(n + half);
    let mut fresh = |rng: &mut StdRng| loop {
        let item = Item {
            updated_at: now - rng.gen_range(0..SPAN_MS),
            hash: rng.gen(),
        };
        if seen.insert(item.hash) {
            return item;
        }
    };
    let shared: Vec<Item> = (0..common).map(|_| fresh(rng)).collect();
    let mut initiator_only: Vec<Item> = (0..half).map(|_| fresh(rng)).collect();
    let mut responder_only: Vec<Item> = (0..half).map(|_| fresh(rng)).collect();
    let mut initiator: Vec<Item> = shared.iter().chain(&initiator_only).copied().collect();
    let mut responder: Vec<Item> = shared.iter().chain(&responder_only).copied().collect();
    initiator.sort_unstable();
    responder.sort_unstable();
    initiator_only.sort_unstable();
    responder_only.sort_unstable();
    Sets {
        initiator,
        responder,
        initiator_only,
        responder_only,
    }
}

// ---- part 1: aidmesh --------------------------------------------------------------

/// `aidmesh::sync::respond` for `Hello`, `Estimate` and `More`, over an item list
/// instead of a `Store` + `ItemCache` (`cache.get` and `cache.session_items` would
/// return these items and this fingerprint). Mirrors src/sync.rs line by line; keep
/// the two in step. Also returns the strata estimate of an `Estimate`, for the
/// report.
fn respond_items(set: &CodedSet, request: Request) -> (Response, Option<u64>) {
    let refuse = |reason: String| Response::Refused { reason };
    match request {
        Request::Hello {
            circle: _,
            fingerprint,
            first,
        } => {
            if set.sketch().fingerprint() == fingerprint {
                (Response::InSync, None)
            } else {
                // The real responder also snapshots `items` for this peer's session here.
                (
                    symbols(set, 0, first.clamp(1, aidmesh::sync::MAX_FIRST_SYMBOLS)),
                    None,
                )
            }
        }
        Request::Estimate {
            circle: _,
            strata,
            from,
        } => {
            let Some(d) = set.sketch().strata().estimate_difference(&strata) else {
                return (refuse("malformed estimator".into()), None);
            };
            // ~1.5 symbols per difference for large ones; headroom for the estimate.
            let want = (d.saturating_mul(17) / 10).saturating_add(32);
            let to = want.clamp(from as u64 + 32, from as u64 + MAX_SYMBOLS as u64);
            (symbols(set, from, to.min(u32::MAX as u64) as u32), Some(d))
        }
        Request::More {
            circle: _,
            from,
            to,
        } => {
            if to <= from || to - from > MAX_SYMBOLS {
                return (refuse(format!("bad symbol range {from}..{to}")), None);
            }
            (symbols(set, from, to), None)
        }
        Request::Fetch { .. } => (refuse("fetch is not simulated".into()), None),
    }
}

/// `aidmesh::sync::symbols`.
fn symbols(set: &CodedSet, from: u32, to: u32) -> Response {
    Response::Symbols {
        set_size: set.len() as u64,
        from,
        symbols: set.symbols(from as usize, to as usize),
    }
}

#[derive(Default)]
struct Ours {
    /// Request/response pairs before the first fetch.
    round_trips: u32,
    /// `summary.round_trips` of the session.
    session_round_trips: u32,
    bytes_up: usize,
    bytes_down: usize,
    symbols: usize,
    /// The responder's strata estimate, if an `Estimate` was sent.
    estimate: Option<u64>,
    /// What went over the wire, e.g. `Hello>Symbols[0..32]`.
    trace: Vec<String>,
    wall: Duration,
    /// Building both sides' coded sets (not in `wall`).
    setup: Duration,
    initiator_time: Duration,
    responder_time: Duration,
    fetch_requests: usize,
    fetch_request_bytes: usize,
    /// Why the difference is wrong or the session failed; `None` if all is right.
    error: Option<String>,
}

fn describe_request(r: &Request) -> String {
    match r {
        Request::Hello { first, .. } => format!("Hello(first={first})"),
        Request::Estimate { from, .. } => format!("Estimate(from={from})"),
        Request::More { from, to, .. } => format!("More({from}..{to})"),
        Request::Fetch { hashes } => format!("Fetch({})", hashes.len()),
    }
}

fn describe_response(r: &Response) -> String {
    match r {
        Response::InSync => "InSync".into(),
        Response::Symbols { from, symbols, .. } => {
            format!("Symbols[{from}..{}]", *from as usize + symbols.len())
        }
        Response::Posts { posts } => format!("Posts({})", posts.len()),
        Response::Refused { reason } => format!("Refused({reason})"),
    }
}

fn run_ours(sets: &Sets) -> Result<Ours> {
    let mut out = Ours::default();
    // Both sides' sets with their sketches, as each node's store keeps them (built
    // item by item as posts arrive): not timed, like negentropy's sealed storage.
    let t = Instant::now();
    let local = CodedSet::new(sets.initiator.clone());
    let remote = CodedSet::new(sets.responder.clone());
    out.setup = t.elapsed();

    let t0 = Instant::now();
    let t = Instant::now();
    let (mut session, mut request) = Session::start(CIRCLE.into(), local);
    out.initiator_time += t.elapsed();

    // Reconcile until the first fetch or the end.
    let mut next_fetch = None;
    loop {
        if let Request::Fetch { .. } = request {
            next_fetch = Some(request);
            break;
        }
        if out.round_trips >= MAX_ROUNDS {
            out.error = Some(format!("no end after {} round trips", out.round_trips));
            break;
        }
        out.round_trips += 1;
        let bytes = encode_request(&request).map_err(|e| anyhow!("encode request: {e}"))?;
        out.bytes_up += bytes.len();
        let received = decode_request(&bytes).map_err(|e| anyhow!("decode request: {e}"))?;
        let t = Instant::now();
        let (response, estimate) = respond_items(&remote, received);
        out.responder_time += t.elapsed();
        out.estimate = out.estimate.or(estimate);
        out.trace.push(format!(
            "{}>{}",
            describe_request(&request),
            describe_response(&response)
        ));
        let bytes = encode_response(&response).map_err(|e| anyhow!("encode response: {e}"))?;
        out.bytes_down += bytes.len();
        let received = decode_response(&bytes).map_err(|e| anyhow!("decode response: {e}"))?;
        let t = Instant::now();
        let next = session.on_response(received);
        out.initiator_time += t.elapsed();
        match next {
            Ok(Next::Send(r)) => request = r,
            Ok(Next::Done) => break,
            Ok(Next::Store(_)) => {
                out.error = Some("posts to store before any fetch".into());
                break;
            }
            Err(f) => {
                out.error = Some(format!("session failed: {f}"));
                break;
            }
        }
    }
    out.wall = t0.elapsed();
    out.session_round_trips = session.summary.round_trips;
    out.symbols = session.summary.symbols;
    if out.error.is_some() {
        return Ok(out);
    }

    // Collect the fetch batches, answering each with no posts, until the session
    // stops waiting for a peer that serves nothing (three empty answers in a row,
    // no blame); then the fetched hashes must be some of the responder-only ones.
    let mut fetched: Vec<[u8; ITEM_HASH_BYTES]> = Vec::new();
    let mut all_fetched = true;
    while let Some(Request::Fetch { hashes }) = next_fetch.take() {
        let r = Request::Fetch { hashes };
        out.fetch_request_bytes += encode_request(&r)
            .map_err(|e| anyhow!("encode fetch: {e}"))?
            .len();
        out.fetch_requests += 1;
        let Request::Fetch { hashes } = r else {
            unreachable!()
        };
        fetched.extend(hashes);
        let next = session
            .on_response(Response::Posts { posts: Vec::new() })
            .and_then(|n| match n {
                Next::Store(p) if p.is_empty() => session.after_store(0, 0),
                other => Ok(other),
            });
        match next {
            Ok(Next::Send(r @ Request::Fetch { .. })) => next_fetch = Some(r),
            Ok(Next::Done) => {}
            Ok(other) => {
                out.error = Some(format!("unexpected step while fetching: {other:?}"));
                return Ok(out);
            }
            Err(Failure::Declined(_)) if out.fetch_requests >= 3 => all_fetched = false,
            Err(f) => {
                out.error = Some(format!("session failed while fetching: {f}"));
                return Ok(out);
            }
        }
    }

    // Is the difference exactly right?
    fetched.sort_unstable();
    let want: Vec<[u8; ITEM_HASH_BYTES]> = sets.responder_only.iter().map(|i| i.hash).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort_unstable();
    let mut problems = Vec::new();
    let fetched_right = if all_fetched {
        fetched == want_sorted
    } else {
        fetched.windows(2).all(|w| w[0] != w[1])
            && fetched.iter().all(|h| want_sorted.binary_search(h).is_ok())
    };
    if !fetched_right {
        problems.push(format!(
            "fetched {} hashes, {} responder-only items",
            fetched.len(),
            want.len()
        ));
    }
    if session.summary.extra != sets.initiator_only.len() {
        problems.push(format!(
            "summary.extra {} != {} initiator-only",
            session.summary.extra,
            sets.initiator_only.len()
        ));
    }
    if session.summary.missing != sets.responder_only.len() {
        problems.push(format!(
            "summary.missing {} != {} responder-only",
            session.summary.missing,
            sets.responder_only.len()
        ));
    }
    if out.session_round_trips != out.round_trips {
        problems.push(format!(
            "summary.round_trips {} != {} counted",
            out.session_round_trips, out.round_trips
        ));
    }
    if !problems.is_empty() {
        out.error = Some(problems.join("; "));
    }
    Ok(out)
}

// ---- part 1: negentropy -----------------------------------------------------------

struct Theirs {
    round_trips: u32,
    bytes_up: usize,
    bytes_down: usize,
    setup: Duration,
    wall: Duration,
    error: Option<String>,
}

fn neg_id(item: &Item) -> Id {
    let mut id = [0u8; 32];
    id[..ITEM_HASH_BYTES].copy_from_slice(&item.hash);
    Id::from_byte_array(id)
}

fn neg_storage(items: &[Item]) -> Result<NegentropyStorageVector> {
    let mut s = NegentropyStorageVector::with_capacity(items.len());
    for i in items {
        s.insert(i.updated_at, neg_id(i))
            .map_err(|e| anyhow!("negentropy insert: {e:?}"))?;
    }
    s.seal().map_err(|e| anyhow!("negentropy seal: {e:?}"))?;
    Ok(s)
}

fn run_negentropy(sets: &Sets, frame: u64) -> Result<Theirs> {
    let t = Instant::now();
    let client_store = neg_storage(&sets.initiator)?;
    let server_store = neg_storage(&sets.responder)?;
    let setup = t.elapsed();
    let neg = |e: negentropy::Error| anyhow!("negentropy: {e:?}");

    let t0 = Instant::now();
    let mut client = Negentropy::borrowed(&client_store, frame).map_err(neg)?;
    let mut server = Negentropy::borrowed(&server_store, frame).map_err(neg)?;
    let mut message = client.initiate().map_err(neg)?;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let mut out = Theirs {
        round_trips: 0,
        bytes_up: 0,
        bytes_down: 0,
        setup,
        wall: Duration::ZERO,
        error: None,
    };
    loop {
        if out.round_trips >= MAX_ROUNDS {
            out.error = Some(format!("no end after {} round trips", out.round_trips));
            break;
        }
        out.round_trips += 1;
        out.bytes_up += message.len();
        let reply = server.reconcile(&message).map_err(neg)?;
        out.bytes_down += reply.len();
        match client
            .reconcile_with_ids(&reply, &mut have, &mut need)
            .map_err(neg)?
        {
            Some(m) => message = m,
            None => break,
        }
    }
    out.wall = t0.elapsed();
    if out.error.is_none() {
        let sorted = |ids: &[Id]| {
            let mut v: Vec<Id> = ids.to_vec();
            v.sort_unstable();
            v
        };
        let (have, need) = (sorted(&have), sorted(&need));
        let want_have = sorted(&sets.initiator_only.iter().map(neg_id).collect::<Vec<_>>());
        let want_need = sorted(&sets.responder_only.iter().map(neg_id).collect::<Vec<_>>());
        if have != want_have || need != want_need {
            out.error = Some(format!(
                "have {} (want {}), need {} (want {})",
                have.len(),
                want_have.len(),
                need.len(),
                want_need.len()
            ));
        }
    }
    Ok(out)
}

// ---- part 1: driver ---------------------------------------------------------------

/// Goals: (most round trips, most bytes both ways) per d.
fn goal(d: usize) -> (u32, usize) {
    match d {
        0 => (3, 512),
        1..=10 => (3, 2_000),
        11..=1_000 => (3, 120_000),
        _ => (3, 1_200_000),
    }
}

fn reconcile_part(args: &Args) -> Result<()> {
    for (case, &(n, d)) in CASES.iter().enumerate() {
        let line = Line {
            part: "reconcile",
            n,
            d,
            imp: None,
        };
        let seed = args.seed.wrapping_add(case as u64 * 1_000_003);
        let mut rng = StdRng::seed_from_u64(seed);
        let sets = make_sets(&mut rng, n, d);

        let ours = run_ours(&sets)?;
        let o = line.with_imp("aidmesh");
        let ok = Value::from(ours.error.is_none());
        o.emit_with(
            "round_trips",
            ours.round_trips,
            "count",
            &[
                ("session_round_trips", ours.session_round_trips.into()),
                ("trace", ours.trace.join(", ").into()),
            ],
        );
        o.emit("bytes_to_responder", ours.bytes_up, "B");
        o.emit("bytes_to_initiator", ours.bytes_down, "B");
        o.emit("bytes_total", ours.bytes_up + ours.bytes_down, "B");
        o.emit_with(
            "symbols",
            ours.symbols,
            "count",
            &[
                (
                    "symbols_per_difference",
                    if d == 0 {
                        Value::Null
                    } else {
                        round3(ours.symbols as f64 / d as f64).into()
                    },
                ),
                (
                    "strata_estimate",
                    ours.estimate.map_or(Value::Null, Value::from),
                ),
            ],
        );
        o.emit_with(
            "wall_ms",
            ms(ours.wall),
            "ms",
            &[
                ("initiator_ms", ms(ours.initiator_time).into()),
                ("responder_ms", ms(ours.responder_time).into()),
                ("setup_ms", ms(ours.setup).into()),
            ],
        );
        o.emit_with(
            "fetch_request_bytes",
            ours.fetch_request_bytes,
            "B",
            &[("fetch_requests", ours.fetch_requests.into())],
        );
        o.emit_with(
            "difference_correct",
            ok.clone(),
            "bool",
            &[("error", ours.error.clone().map_or(Value::Null, Value::from))],
        );

        let theirs = run_negentropy(&sets, args.neg_frame)?;
        let t = line.with_imp("negentropy");
        let frame = [("frame_size_limit", Value::from(args.neg_frame))];
        t.emit_with("round_trips", theirs.round_trips, "count", &frame);
        t.emit("bytes_to_responder", theirs.bytes_up, "B");
        t.emit("bytes_to_initiator", theirs.bytes_down, "B");
        t.emit("bytes_total", theirs.bytes_up + theirs.bytes_down, "B");
        t.emit_with(
            "wall_ms",
            ms(theirs.wall),
            "ms",
            &[("setup_ms", ms(theirs.setup).into())],
        );
        t.emit_with(
            "difference_correct",
            theirs.error.is_none(),
            "bool",
            &[(
                "error",
                theirs.error.clone().map_or(Value::Null, Value::from),
            )],
        );

        let r = line.with_imp("ratio");
        let ratio = |a: usize, b: usize| {
            if b == 0 {
                Value::Null
            } else {
                round3(a as f64 / b as f64).into()
            }
        };
        let ours_total = ours.bytes_up + ours.bytes_down;
        let theirs_total = theirs.bytes_up + theirs.bytes_down;
        r.emit_with(
            "bytes_total_ratio",
            ratio(ours_total, theirs_total),
            "ours/theirs",
            &[("ours", ours_total.into()), ("theirs", theirs_total.into())],
        );
        r.emit_with(
            "bytes_to_responder_ratio",
            ratio(ours.bytes_up, theirs.bytes_up),
            "ours/theirs",
            &[
                ("ours", ours.bytes_up.into()),
                ("theirs", theirs.bytes_up.into()),
            ],
        );
        r.emit_with(
            "bytes_to_initiator_ratio",
            ratio(ours.bytes_down, theirs.bytes_down),
            "ours/theirs",
            &[
                ("ours", ours.bytes_down.into()),
                ("theirs", theirs.bytes_down.into()),
            ],
        );
        r.emit_with(
            "round_trips_ratio",
            ratio(ours.round_trips as usize, theirs.round_trips as usize),
            "ours/theirs",
            &[
                ("ours", ours.round_trips.into()),
                ("theirs", theirs.round_trips.into()),
            ],
        );
        // The goal: no slower than negentropy for small differences, at most
        // twice as slow for large ones.
        let wall_goal = if d <= 10 { 1.0 } else { 2.0 };
        let wall_ratio =
            (!theirs.wall.is_zero()).then(|| ours.wall.as_secs_f64() / theirs.wall.as_secs_f64());
        r.emit_with(
            "wall_ms_ratio",
            wall_ratio.map_or(Value::Null, |x| round3(x).into()),
            "ours/theirs",
            &[
                ("ours", ms(ours.wall).into()),
                ("theirs", ms(theirs.wall).into()),
                ("goal_max", wall_goal.into()),
                (
                    "goal_met",
                    wall_ratio.map_or(Value::Null, |x| (x <= wall_goal).into()),
                ),
            ],
        );

        // The spread over more seeds (ours only): the IBLT and the strata estimator
        // are randomised, so one run says little about the tail.
        let trials = if n >= 1_000_000 {
            args.trials.min(3)
        } else {
            args.trials
        }
        .max(1);
        let (max_rt, max_bytes) = goal(d);
        let mut runs = vec![ours];
        for k in 1..trials {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            runs.push(run_ours(&make_sets(&mut rng, n, d))?);
        }
        let total = |r: &Ours| r.bytes_up + r.bytes_down;
        let over_goal =
            |r: &Ours| r.error.is_some() || r.round_trips > max_rt || total(r) >= max_bytes;
        let mut rts: Vec<u32> = runs.iter().map(|r| r.round_trips).collect();
        let mut bytes: Vec<usize> = runs.iter().map(total).collect();
        rts.sort_unstable();
        bytes.sort_unstable();
        let pick =
            |v: &[usize], p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        let mut histogram = serde_json::Map::new();
        for r in &rts {
            let e = histogram.entry(r.to_string()).or_insert(Value::from(0u64));
            *e = Value::from(e.as_u64().unwrap_or(0) + 1);
        }
        let failures: Vec<Value> = runs
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                r.error
                    .as_ref()
                    .map(|e| Value::from(format!("trial {k}: {e}")))
            })
            .collect();
        let worst = runs
            .iter()
            .max_by_key(|r| (r.round_trips, total(r)))
            .expect("at least one run");
        let s = line.with_imp("aidmesh");
        let trials_field = ("trials", Value::from(runs.len()));
        s.emit_with(
            "round_trips_max",
            *rts.last().unwrap_or(&0),
            "count",
            &[
                trials_field.clone(),
                ("histogram", Value::Object(histogram)),
                ("worst_trace", worst.trace.join(", ").into()),
                (
                    "worst_strata_estimate",
                    worst.estimate.map_or(Value::Null, Value::from),
                ),
            ],
        );
        s.emit_with(
            "bytes_total_median",
            pick(&bytes, 0.5),
            "B",
            std::slice::from_ref(&trials_field),
        );
        s.emit_with(
            "bytes_total_p90",
            pick(&bytes, 0.9),
            "B",
            std::slice::from_ref(&trials_field),
        );
        s.emit_with(
            "bytes_total_max",
            *bytes.last().unwrap_or(&0),
            "B",
            std::slice::from_ref(&trials_field),
        );
        let mut ratios: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.estimate)
            .filter(|_| d > 0)
            .map(|e| e as f64 / d as f64)
            .collect();
        if !ratios.is_empty() {
            ratios.sort_by(f64::total_cmp);
            let at = |p: f64| {
                round3(
                    ratios[((p * ratios.len() as f64).ceil() as usize).clamp(1, ratios.len()) - 1],
                )
            };
            s.emit_with(
                "strata_estimate_ratio_median",
                at(0.5),
                "estimate/d",
                &[
                    trials_field.clone(),
                    ("estimates", ratios.len().into()),
                    ("min", round3(ratios[0]).into()),
                    ("p10", at(0.1).into()),
                    ("p90", at(0.9).into()),
                    ("max", round3(ratios[ratios.len() - 1]).into()),
                ],
            );
        }
        s.emit_with(
            "failures",
            failures.len(),
            "count",
            &[trials_field.clone(), ("errors", Value::from(failures))],
        );
        let over = runs.iter().filter(|r| over_goal(r)).count();
        s.emit_with(
            "goal_met",
            over == 0,
            "bool",
            &[
                trials_field,
                ("trials_over_goal", over.into()),
                ("goal_round_trips_max", max_rt.into()),
                ("goal_bytes_under", max_bytes.into()),
                ("first_run_met", Value::from(!over_goal(&runs[0]))),
            ],
        );
    }
    Ok(())
}

// ---- part 2: end to end -----------------------------------------------------------

fn node_config(dir: &std::path::Path, bootstrap: Vec<libp2p::Multiaddr>) -> Result<NodeConfig> {
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.network.bootstrap = bootstrap;
    config.network.mdns = false;
    config.network.kademlia = false;
    config.network.circles = vec![CIRCLE.to_string()];
    Ok(NodeConfig {
        data_dir: DataDir::resolve(Some(dir.to_path_buf()))?,
        config,
    })
}

/// `count` valid signed posts by at least [`AUTHORS`] authors, `updated_at` spread over the
/// last `count` seconds.
fn make_posts(count: usize, seed: u64) -> Result<Vec<SignedPost>> {
    // At least AUTHORS authors and at most 50 posts each: within the per-author quota
    // (100 open posts, `proto/LIMITS.md`), so every node keeps all `count`.
    let authors: Vec<Identity> = (0..count.div_ceil(50).max(usize::from(AUTHORS)))
        .map(|i| {
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            Identity::from_secret(secret)
        })
        .collect();
    let now = aidmesh::clock::now_ms();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let who = &authors[k % authors.len()];
        let words = |rng: &mut StdRng, n: usize| -> String {
            (0..n)
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let title_words = rng.gen_range(3..7);
        let body_words = rng.gen_range(10..40);
        let draft = Draft {
            body: words(&mut rng, body_words),
            tags: vec![format!("t{}", rng.gen_range(0..100))],
            ..Draft::new(
                if k % 2 == 0 {
                    Kind::Offer
                } else {
                    Kind::Request
                },
                Category::ALL[k % Category::ALL.len()],
                format!("{} {k}", words(&mut rng, title_words)),
            )
        };
        let post = draft.into_post(who.author(), now - (count - k) as u64 * 1_000)?;
        out.push(post.sign(who.signing_key())?);
    }
    Ok(out)
}

struct SyncEvent {
    at: Duration,
    missing: usize,
    fetched: usize,
    round_trips: u32,
    error: Option<String>,
}

async fn e2e_part(args: &Args) -> Result<()> {
    let p = args.posts;
    let line = Line {
        part: "e2e",
        n: p,
        d: p,
        imp: Some("aidmesh"),
    };

    let t = Instant::now();
    let posts = tokio::task::spawn_blocking({
        let seed = args.seed;
        move || make_posts(p, seed)
    })
    .await??;
    line.emit("make_posts_ms", ms(t.elapsed()), "ms");

    let dir_a = tempfile::tempdir()?;
    let dir_b = tempfile::tempdir()?;
    let a = Node::start(node_config(dir_a.path(), Vec::new())?).await?;
    let t = Instant::now();
    let store = a.store().clone();
    let refused = tokio::task::spawn_blocking(move || -> Result<usize> {
        let now = aidmesh::clock::now_ms();
        let mut refused = 0;
        let mut posts = posts;
        while !posts.is_empty() {
            let rest = posts.split_off(posts.len().min(1_000));
            for r in store.insert_batch(posts, now)? {
                if r.is_err() {
                    refused += 1;
                }
            }
            posts = rest;
        }
        Ok(refused)
    })
    .await??;
    if refused > 0 || a.store().len() != p as u64 {
        bail!(
            "A refused {refused} posts and holds {} of {p}",
            a.store().len()
        );
    }
    let fill = t.elapsed();
    line.emit_with(
        "fill_a_ms",
        ms(fill),
        "ms",
        &[(
            "insert_batch_posts_per_s",
            (p as f64 / fill.as_secs_f64()).round().into(),
        )],
    );
    let a_addr = a
        .status()
        .await?
        .listen_addrs
        .first()
        .cloned()
        .context("A has no listen address")?;
    let a_peer = a.peer_id();

    // B: timed from just before its start.
    let t0 = Instant::now();
    let b = Node::start(node_config(dir_b.path(), vec![a_addr])?).await?;
    let started = t0.elapsed();
    let mut rx = b.subscribe();
    let (sync_tx, sync_rx) = tokio::sync::oneshot::channel::<SyncEvent>();
    let (first_tx, mut first_rx) = tokio::sync::oneshot::channel::<Duration>();
    let watcher = tokio::spawn(async move {
        let mut sync_tx = Some(sync_tx);
        let mut first_tx = Some(first_tx);
        let mut lagged = 0u64;
        let mut other_syncs = Vec::new();
        loop {
            match rx.recv().await {
                Ok(Event::PostAdded {
                    origin: Origin::Sync,
                    ..
                }) => {
                    if let Some(tx) = first_tx.take() {
                        let _ = tx.send(t0.elapsed());
                    }
                }
                Ok(Event::SyncFinished {
                    peer_id,
                    missing,
                    fetched,
                    round_trips,
                    error,
                    ..
                }) => {
                    let e = SyncEvent {
                        at: t0.elapsed(),
                        missing,
                        fetched,
                        round_trips,
                        error,
                    };
                    match (peer_id == a_peer, sync_tx.take()) {
                        (true, Some(tx)) => {
                            let _ = tx.send(e);
                        }
                        (_, tx) => {
                            sync_tx = tx;
                            other_syncs.push(e);
                        }
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => break,
            }
        }
        (lagged, other_syncs)
    });

    let caught_up = tokio::time::timeout(E2E_TIMEOUT, async {
        while b.store().len() < p as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let elapsed = t0.elapsed();
    let held = b.store().len();
    let event = tokio::time::timeout(Duration::from_secs(30), sync_rx)
        .await
        .ok()
        .and_then(Result::ok);
    let first = first_rx.try_recv().ok();
    let status = b.status().await?;
    let a_status = a.status().await?;

    line.emit("node_start_ms", ms(started), "ms");
    line.emit_with(
        "time_to_first_synced_post_ms",
        first.map_or(Value::Null, |d| ms(d).into()),
        "ms",
        &[
            ("goal_max", ms(GOAL_FIRST_POST).into()),
            (
                "goal_met",
                first.is_some_and(|d| d < GOAL_FIRST_POST).into(),
            ),
        ],
    );
    line.emit_with(
        "catch_up_ms",
        ms(elapsed),
        "ms",
        &[
            ("caught_up", caught_up.is_ok().into()),
            ("b_posts", held.into()),
        ],
    );
    let rate = held as f64 / elapsed.as_secs_f64();
    line.emit_with(
        "posts_per_s",
        rate.round(),
        "posts/s",
        &[
            ("goal_min", GOAL_POSTS_PER_S.into()),
            (
                "goal_met",
                (caught_up.is_ok() && rate >= GOAL_POSTS_PER_S).into(),
            ),
        ],
    );
    match &event {
        Some(e) => line.emit_with(
            "sync_finished_ms",
            ms(e.at),
            "ms",
            &[
                ("fetched", e.fetched.into()),
                ("missing", e.missing.into()),
                ("round_trips", e.round_trips.into()),
                ("error", e.error.clone().map_or(Value::Null, Value::from)),
            ],
        ),
        None => line.emit_with(
            "sync_finished_ms",
            Value::Null,
            "ms",
            &[("error", "no SyncFinished event from A within 30 s".into())],
        ),
    }
    line.emit_with(
        "b_bytes_received",
        status.bytes_received,
        "B",
        &[
            ("b_bytes_sent", status.bytes_sent.into()),
            (
                "per_post",
                round3(status.bytes_received as f64 / p as f64).into(),
            ),
        ],
    );
    let syncs: Vec<Value> = status
        .syncs
        .iter()
        .chain(a_status.syncs.iter())
        .map(|s| Value::from(format!("{s:?}")))
        .collect();
    line.emit_with(
        "sync_status",
        Value::Null,
        "",
        &[
            ("b_then_a", Value::from(syncs)),
            ("a_posts", a_status.posts.into()),
        ],
    );

    b.shutdown().await?;
    a.shutdown().await?;
    drop(b);
    let (lagged, other_syncs) = watcher.await?;
    let others: Vec<Value> = other_syncs
        .iter()
        .map(|e| {
            Value::from(format!(
                "at {} ms: missing {} fetched {} round trips {} error {:?}",
                ms(e.at),
                e.missing,
                e.fetched,
                e.round_trips,
                e.error
            ))
        })
        .collect();
    line.emit_with(
        "b_events_lagged",
        lagged,
        "count",
        &[("later_sync_events", Value::from(others))],
    );
    Ok(())
}

// ---- main -------------------------------------------------------------------------

fn main() -> Result<()> {
    let args = parse_args()?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    if args.reconcile {
        reconcile_part(&args)?;
    }
    if args.e2e {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(e2e_part(&args))?;
    }
    Ok(())
}
