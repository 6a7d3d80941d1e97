//! Store and wire-format benchmark: prints one JSON object per line.
//!
//! Run: `cargo bench --bench store` (optionally `-- 20000` for fewer posts).
//! Figures: sign, verify (single and batch), encode, decode, network ingest
//! (decode + batch verify + store), local insert with a flush each, query latency for
//! a tag filter and text searches (`search_common`, `search_rare`, `search_absent`,
//! `search_plural` p50/p99, with a goal of 5 ms), on-disk bytes per post, the time to reopen the
//! store, the memory the store holds after ingest, and peak RSS: `peak_rss_setup` while
//! the benchmark makes its posts, `peak_rss` from the first store open to the end (the
//! stores plus the wire bytes the benchmark holds for ingest, about 55 MB at 100,000),
//! and the resident memory of a real node (`aidmesh run`) started on the store
//! (`node_rss_after_restart`, goal 150 MB + 0.5 KB per post).

use std::time::{Duration, Instant};

use aidmesh::proto::{
    codec, verify_batch, Category, Kind, Nonce, Post, PostId, SignedPost, Status, MAX_POST_BYTES,
};
use aidmesh::store::Query;
use aidmesh::{Identity, Store};
use rand::{rngs::StdRng, Rng, SeedableRng};

const WORDS: &[&str] = &[
    "bread", "soup", "ride", "clinic", "bike", "tools", "drill", "ladder", "room", "bed", "coat",
    "winter", "school", "books", "laptop", "repair", "garden", "seeds", "eggs", "milk", "baby",
    "stroller", "chair", "table", "paint", "help", "moving", "boxes", "van", "lessons", "english",
    "math", "care", "elderly", "company", "walk", "dog", "fridge", "stove", "blanket", "tent",
    "water", "market", "weekend", "morning",
];

fn now_ms() -> u64 {
    aidmesh::clock::now_ms()
}

fn make_post(rng: &mut StdRng, who: &Identity, now: u64) -> Post {
    let author = who.author();
    let nonce = Nonce(rng.gen());
    let pick = |rng: &mut StdRng, n: usize| -> Vec<&str> {
        (0..n)
            .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
            .collect()
    };
    let title_words = rng.gen_range(3..8);
    let title = pick(rng, title_words).join(" ");
    let body_words = rng.gen_range(15..80);
    let body = pick(rng, body_words).join(" ");
    let mut tags: Vec<String> = (0..rng.gen_range(1..4))
        .map(|_| format!("t{}", rng.gen_range(0..200)))
        .collect();
    tags.sort();
    tags.dedup();
    let gh: String = (0..6)
        .map(|_| {
            let a = aidmesh::proto::rules::GEOHASH_ALPHABET.as_bytes();
            a[rng.gen_range(0..a.len())] as char
        })
        .collect();
    let created = now - rng.gen_range(0..30 * 86_400_000u64);
    Post {
        id: PostId::derive(&author, &nonce),
        author,
        nonce,
        revision: 1,
        circle: "commons".into(),
        kind: if rng.gen() {
            Kind::Offer
        } else {
            Kind::Request
        },
        status: Status::Open,
        category: Category::ALL[rng.gen_range(0..Category::ALL.len())],
        title,
        body,
        tags,
        location: Some(gh),
        quantity: rng.gen::<bool>().then(|| rng.gen_range(1..20)),
        contact: Some("phone 000 000 000".into()),
        created_at: created,
        updated_at: created,
        expires_at: created + 60 * 86_400_000,
    }
}

fn emit(metric: &str, value: f64, unit: &str) {
    println!(
        r#"{{"bench": "store", "metric": "{metric}", "value": {value:.2}, "unit": "{unit}"}}"#
    );
}

/// A figure with the goal it is held to (lower is better).
fn emit_goal(metric: &str, value: f64, unit: &str, goal: f64) {
    println!(
        r#"{{"bench": "store", "metric": "{metric}", "value": {value:.2}, "unit": "{unit}", "goal": {goal:.2}, "goal_met": {}}}"#,
        value <= goal
    );
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Restarts the peak RSS count from the current RSS (Linux `clear_refs` 5).
fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("cannot reset the peak RSS; peak_rss includes the setup");
    }
}

/// Resident memory now (VmRSS), in MB.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let now = now_ms();
    let mut rng = StdRng::seed_from_u64(42);
    // At least 50 authors and at most 50 posts each: within the per-author quota
    // (100 open posts, `proto/LIMITS.md`), so the store keeps all `n`.
    let authors: Vec<Identity> = (0..n.div_ceil(50).max(50)).map(author_key).collect();
    let posts: Vec<(usize, Post)> = (0..n)
        .map(|i| {
            let a = i % authors.len();
            let mut p = make_post(&mut rng, &authors[a], now);
            // Rare words for the search figures: in one post of 5,000 each.
            if i % 5000 == 17 {
                p.body.push_str(" sourdough starter");
            }
            if i % 5000 == 2500 {
                p.title.push_str(" accordion");
            }
            (a, p)
        })
        .collect();
    emit("posts", n as f64, "count");

    let t = Instant::now();
    let encoded: Vec<Vec<u8>> = posts
        .iter()
        .map(|(_, p)| codec::encode::<MAX_POST_BYTES, _>(p).unwrap())
        .collect();
    emit("encode", rate(n, t.elapsed()), "posts/s");
    let raw_bytes: usize = encoded.iter().map(Vec::len).sum();
    emit(
        "encoded_post_bytes_mean",
        raw_bytes as f64 / n as f64,
        "bytes",
    );

    let t = Instant::now();
    for b in &encoded {
        let p: Post = codec::decode_canonical::<MAX_POST_BYTES, _>(b).unwrap();
        std::hint::black_box(p);
    }
    emit("decode", rate(n, t.elapsed()), "posts/s");
    drop(encoded);

    let t = Instant::now();
    let signed: Vec<SignedPost> = posts
        .iter()
        .map(|(a, p)| p.sign(authors[*a].signing_key()).unwrap())
        .collect();
    emit("sign", rate(n, t.elapsed()), "posts/s");
    drop(posts);
    let wire: Vec<Vec<u8>> = signed.iter().map(|s| s.encode().unwrap()).collect();
    let wire_bytes: usize = wire.iter().map(Vec::len).sum();

    let t = Instant::now();
    for s in &signed {
        s.clone().verify(now).unwrap();
    }
    emit("verify_single", rate(n, t.elapsed()), "posts/s");

    // In calls of 1,000 as ingest makes them, so that the benchmark does not hold a
    // second copy of every post.
    let t = Instant::now();
    let ok: usize = signed
        .chunks(1000)
        .map(|c| {
            verify_batch(c.to_vec(), now)
                .iter()
                .filter(|r| r.is_ok())
                .count()
        })
        .sum();
    assert_eq!(ok, n);
    emit("verify_batch64", rate(n, t.elapsed()), "posts/s");
    // Only the first posts are needed as `SignedPost`s from here on.
    let local: Vec<SignedPost> = signed.into_iter().take(2_000).collect();

    // Network ingest: wire bytes → decode → batch verify → store, 1,000 per call as
    // catch-up sync would hand them over.
    // The peak so far is this benchmark's own posts (every copy it made); from here
    // on, the peak is the stores' plus the wire bytes still held for ingest.
    emit("peak_rss_setup", peak_rss_mb(), "MB");
    reset_peak_rss();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let rss_before_ingest = rss_mb();
    let t = Instant::now();
    for chunk in wire.chunks(1000) {
        let batch: Vec<SignedPost> = chunk
            .iter()
            .map(|w| SignedPost::decode(w).unwrap())
            .collect();
        for r in store.insert_batch(batch, now).unwrap() {
            r.unwrap();
        }
    }
    store.flush().unwrap();
    emit("ingest_network_batch", rate(n, t.elapsed()), "posts/s");
    // What the store itself holds in memory once the posts are in (the peak below is
    // mostly this benchmark's own copies of the posts).
    emit("store_rss_growth", rss_mb() - rss_before_ingest, "MB");

    // Gossip-style ingest, one post at a time (decode + verify + store).
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(&dir2.path().join("db")).unwrap();
    let m = n.min(20_000);
    let t = Instant::now();
    for w in &wire[..m] {
        store2.insert(SignedPost::decode(w).unwrap(), now).unwrap();
    }
    emit("ingest_network_single", rate(m, t.elapsed()), "posts/s");
    drop(store2);

    // This node's own posts: flushed before each call returns.
    let dir3 = tempfile::tempdir().unwrap();
    let store3 = Store::open(&dir3.path().join("db")).unwrap();
    let m = local.len();
    let t = Instant::now();
    for s in &local {
        store3
            .insert_local(&s.clone().verify(now).unwrap())
            .unwrap();
    }
    emit("insert_local_flushed", rate(m, t.elapsed()), "posts/s");
    drop(store3);

    let on_disk = store.size_on_disk().unwrap();
    emit("disk_bytes_per_post", on_disk as f64 / n as f64, "bytes");
    emit(
        "disk_vs_signed_posts",
        on_disk as f64 / wire_bytes as f64,
        "ratio",
    );

    // Reopening rebuilds whatever the store derives from its records.
    drop(store);
    let t = Instant::now();
    let store = Store::open(&dir.path().join("db")).unwrap();
    // Goal (issue #17): under 0.3 s at 100,000 posts.
    emit_goal("reopen", t.elapsed().as_secs_f64() * 1e3, "ms", 300.0);
    assert_eq!(store.len(), n as u64);

    let mut query_bench = |name: &str, make: &mut dyn FnMut(&mut StdRng) -> Query| {
        let mut times = Vec::new();
        let mut results = 0usize;
        for _ in 0..1000 {
            let q = make(&mut rng);
            let t = Instant::now();
            results += store.query(&q, now).unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        emit(&format!("query_{name}_p50"), percentile(&times, 0.5), "us");
        emit(&format!("query_{name}_p99"), percentile(&times, 0.99), "us");
        emit(
            &format!("query_{name}_results_mean"),
            results as f64 / 1000.0,
            "posts",
        );
    };
    query_bench("tag_limit50", &mut |rng| Query {
        tag: Some(format!("t{}", rng.gen_range(0..200))),
        ..Query::default()
    });
    query_bench("text_limit50", &mut |rng| Query {
        text: Some(WORDS[rng.gen_range(0..WORDS.len())].into()),
        ..Query::default()
    });
    query_bench("text2_limit50", &mut |rng| Query {
        text: Some(format!(
            "{} {}",
            WORDS[rng.gen_range(0..WORDS.len())],
            WORDS[rng.gen_range(0..WORDS.len())]
        )),
        ..Query::default()
    });
    // Text search through the stem index: a common word, a rare one (in a few
    // posts: the bench's words never include it, so it is planted), one nobody used,
    // and a plural that must find the singular. Goal: the worst case within a few ms.
    let search_bench = |name: &str, terms: &[&str]| {
        let mut times = Vec::new();
        let mut results = 0usize;
        for i in 0..1000 {
            let q = Query {
                text: Some(terms[i % terms.len()].into()),
                ..Query::default()
            };
            let t = Instant::now();
            results += store.query(&q, now).unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        emit_goal(
            &format!("search_{name}_p50"),
            percentile(&times, 0.5),
            "us",
            5000.0,
        );
        emit_goal(
            &format!("search_{name}_p99"),
            percentile(&times, 0.99),
            "us",
            5000.0,
        );
        emit(
            &format!("search_{name}_results_mean"),
            results as f64 / 1000.0,
            "posts",
        );
    };
    search_bench("common", &["bread", "ladder", "winter", "garden"]);
    search_bench("rare", &["sourdough", "accordion"]);
    search_bench("absent", &["xylophone", "zeppelin", "quokka"]);
    search_bench("plural", &["rides", "coats", "chairs"]);
    query_bench("near4_category_limit50", &mut |rng| {
        let a = aidmesh::proto::rules::GEOHASH_ALPHABET.as_bytes();
        Query {
            near: Some((0..2).map(|_| a[rng.gen_range(0..32)] as char).collect()),
            category: Some(Category::ALL[rng.gen_range(0..8)]),
            ..Query::default()
        }
    });
    emit("peak_rss", peak_rss_mb(), "MB");
    drop(store);
    node_rss(dir.path(), n, None);
    node_rss(dir.path(), n, Some(32));
}

/// A real node (`aidmesh run`, its own process) started on the data dir whose store
/// holds the `n` posts: its resident memory once it says it is running, against the
/// goal of 150 MB + 0.5 KB per post; with the default sled cache, or `cache_mb`.
fn node_rss(data_dir: &std::path::Path, n: usize, cache_mb: Option<u64>) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let config = data_dir.join("config.toml");
    match cache_mb {
        Some(mb) => std::fs::write(&config, format!("[store]\ncache_mb = {mb}\n")).unwrap(),
        None => {
            let _ = std::fs::remove_file(&config);
        }
    }
    let label = cache_mb.map_or_else(|| "default".to_string(), |mb| format!("{mb}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidmesh"))
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "run",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .env_remove("AIDMESH_DATA_DIR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts aidmesh run");
    let t = Instant::now();
    let stderr = child.stderr.take().expect("stderr");
    let mut running = false;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if line.contains("aidmesh is running") {
            running = true;
            break;
        }
    }
    assert!(running, "the node did not start");
    emit(
        &format!("node_start_cache_{label}"),
        t.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    // Drain the log so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let status = |key: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    let goal = 150.0 + 0.5 * n as f64 / 1024.0;
    emit_goal(
        &format!("node_rss_after_restart_cache_{label}"),
        status("VmRSS:"),
        "MB",
        goal,
    );
    emit_goal(
        &format!("node_peak_rss_after_restart_cache_{label}"),
        status("VmHWM:"),
        "MB",
        goal,
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Author number `i` (a fixed key per number).
fn author_key(i: usize) -> Identity {
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    Identity::from_secret(secret)
}
