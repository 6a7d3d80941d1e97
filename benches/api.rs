//! Local API benchmark: throughput and latency of the real axum API over loopback
//! HTTP, with a store of 100,000 posts behind it. Prints one JSON object per line; it
//! is a program that prints figures, not a timed test.
//!
//! Run: `cargo bench --bench api` (100,000 posts, concurrency 1, 8 and 32, 10 s per
//! run), or e.g. `cargo bench --bench api -- --posts 20000 --concurrency 1,8 --secs 5`.
//! Other options: `--warmup-secs S` (unrecorded load before each run, default 1),
//! `--server-threads T` / `--client-threads T` (worker threads of the two tokio
//! runtimes, default 2 each), `--seed X`.
//!
//! Setup: a real [`aidmesh::Node`] on 127.0.0.1 TCP port 0 (mDNS and the DHT off, no
//! peers) with a sled store in a temporary directory, preloaded through
//! `Store::insert_batch` with signed posts by 500 authors. Every post carries one of
//! 50 tags (uniformly, so a tag selects about 2% of the posts) and sometimes a second
//! tag from a long tail of 1,000 that no query asks for; categories, circles (four),
//! kinds and geohashes vary; all are open and unexpired. The API is served by
//! `api::serve` on 127.0.0.1:0 and found through `api.addr` / `api.token` in the data
//! dir, as the CLI finds it.
//!
//! Load: C concurrent clients, each its own `reqwest::Client` (HTTP/1.1 keep-alive,
//! so C connections), each issuing one request at a time for a fixed duration; every
//! latency (request sent → whole body read) is recorded. The server runs on one
//! multi-thread tokio runtime and the load generator on another, but they share the
//! machine's cores: the figures include that contention, and the core count and
//! thread counts are printed.
//! - `get_posts_tag`: `GET /api/v1/posts?tag=<one of the 50, at random>&limit=50`,
//!   which must answer 200. Before the runs, each of the 50 tags is queried once and
//!   checked to return 50 posts that carry it.
//! - `post_posts`: `POST /api/v1/posts` with a valid draft (varied kind, category,
//!   tag, title, body; one of `WRITE_CIRCLES` joined circles, to stay within the
//!   per-author quota), which must answer 201; each is signed by the node, flushed to
//!   disk before the answer (`Store::insert_local`) and queued for gossip. Run after
//!   the GET runs, so those see exactly the preloaded store.
//!
//! Any other status or a transport error counts in `*_errors` (and is excluded from
//! the latencies); the bench exits non-zero after printing if there were any.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aidmesh::api::json::{DraftJson, PostJson};
use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status};
use aidmesh::{Config, DataDir, Identity, Node, NodeConfig, Store};
use anyhow::{bail, ensure, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const DEFAULT_SEED: u64 = 0x0a91_be4c;
const AUTHORS: usize = 500;
/// Posts per `insert_batch` call while preloading.
const PRELOAD_CHUNK: usize = 1000;
const LIMIT: usize = 50;
/// Circles the node joins for `post_posts`, at random: one author may hold at most
/// 100 open posts per circle (proto/LIMITS.md), so a 10 s write run spreads its posts
/// over enough circles to stay within the quota and measure writes, not refusals.
const WRITE_CIRCLES: usize = 400;
const CIRCLES: &[&str] = &[
    "commons", "commons", "commons", "eastside", "tenants", "parents",
];
/// The 50 tags that queries filter on.
const TAGS: &[&str] = &[
    "food",
    "bread",
    "soup",
    "groceries",
    "baby",
    "diapers",
    "formula",
    "clothes",
    "coats",
    "shoes",
    "winter",
    "furniture",
    "beds",
    "kitchen",
    "tools",
    "bikes",
    "car-ride",
    "moving",
    "boxes",
    "repairs",
    "plumbing",
    "electrical",
    "garden",
    "seeds",
    "books",
    "school",
    "tutoring",
    "laptops",
    "phones",
    "internet",
    "translation",
    "english",
    "paperwork",
    "legal",
    "housing",
    "rent",
    "shelter",
    "medical",
    "pharmacy",
    "clinic-ride",
    "elderly",
    "childcare",
    "pets",
    "dog-walking",
    "cleaning",
    "laundry",
    "company",
    "hygiene",
    "water",
    "heating",
];
const WORDS: &[&str] = &[
    "bread", "soup", "ride", "clinic", "bike", "tools", "drill", "ladder", "room", "bed", "coat",
    "winter", "school", "books", "laptop", "repair", "garden", "seeds", "eggs", "milk", "baby",
    "stroller", "chair", "table", "paint", "help", "moving", "boxes", "van", "lessons", "english",
    "math", "care", "elderly", "company", "walk", "dog", "fridge", "stove", "blanket", "tent",
    "water", "market", "weekend", "morning",
];
const DAY: u64 = 86_400_000;

struct Args {
    posts: usize,
    concurrency: Vec<usize>,
    secs: f64,
    warmup_secs: f64,
    server_threads: usize,
    client_threads: usize,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        posts: 100_000,
        concurrency: vec![1, 8, 32],
        secs: 10.0,
        warmup_secs: 1.0,
        server_threads: 2,
        client_threads: 2,
        seed: DEFAULT_SEED,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<String> {
            it.next().with_context(|| format!("{name} needs a value"))
        };
        let num = |name: &str, v: String| -> Result<f64> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .with_context(|| format!("{name} needs a non-negative number, got {v:?}"))
        };
        match a.as_str() {
            "--posts" => args.posts = num("--posts", value("--posts")?)? as usize,
            "--concurrency" | "-c" => {
                args.concurrency = value("--concurrency")?
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--concurrency takes a list such as 1,8,32")?;
            }
            "--secs" => args.secs = num("--secs", value("--secs")?)?,
            "--warmup-secs" => args.warmup_secs = num("--warmup-secs", value("--warmup-secs")?)?,
            "--server-threads" => {
                args.server_threads = num("--server-threads", value("--server-threads")?)? as usize
            }
            "--client-threads" => {
                args.client_threads = num("--client-threads", value("--client-threads")?)? as usize
            }
            "--seed" => args.seed = num("--seed", value("--seed")?)? as u64,
            // cargo bench adds `--bench`; ignore flags we do not know.
            _ => {}
        }
    }
    ensure!(args.posts > 0, "--posts must be at least 1");
    ensure!(
        !args.concurrency.is_empty() && args.concurrency.iter().all(|&c| c > 0),
        "--concurrency values must be at least 1"
    );
    ensure!(args.secs > 0.0, "--secs must be positive");
    ensure!(
        args.server_threads > 0 && args.client_threads > 0,
        "thread counts must be at least 1"
    );
    Ok(args)
}

/// One output line; `concurrency` is set for the figures of one load run.
fn emit(concurrency: Option<usize>, metric: &str, value: impl Into<Value>, unit: &str) {
    let s = |v: &str| Value::from(v).to_string();
    let mut line = String::from("{\"bench\":\"api\"");
    if let Some(c) = concurrency {
        line += &format!(",\"concurrency\":{c}");
    }
    line += &format!(
        ",\"metric\":{},\"value\":{},\"unit\":{}}}",
        s(metric),
        value.into(),
        s(unit)
    );
    println!("{line}");
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn words(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn geohash(rng: &mut StdRng) -> String {
    let a = aidmesh::proto::rules::GEOHASH_ALPHABET.as_bytes();
    (0..6)
        .map(|_| a[rng.gen_range(0..a.len())] as char)
        .collect()
}

/// A preloaded post by `who`; returns it with the index of its query tag.
fn make_post(rng: &mut StdRng, who: &Identity, now: u64) -> (Post, usize) {
    let author = who.author();
    let nonce = Nonce(rng.gen());
    let tag = rng.gen_range(0..TAGS.len());
    let mut tags = vec![TAGS[tag].to_string()];
    if rng.gen_bool(0.5) {
        tags.push(format!("x{}", rng.gen_range(0..1000)));
    }
    let created = now - rng.gen_range(0..30 * DAY);
    let title_words = rng.gen_range(3..8);
    let body_words = rng.gen_range(15..80);
    let post = Post {
        id: PostId::derive(&author, &nonce),
        author,
        nonce,
        revision: 1,
        circle: CIRCLES[rng.gen_range(0..CIRCLES.len())].into(),
        kind: if rng.gen() {
            Kind::Offer
        } else {
            Kind::Request
        },
        status: Status::Open,
        category: Category::ALL[rng.gen_range(0..Category::ALL.len())],
        title: words(rng, title_words),
        body: words(rng, body_words),
        tags,
        location: Some(geohash(rng)),
        quantity: rng.gen::<bool>().then(|| rng.gen_range(1..20)),
        contact: Some("phone 000 000 000".into()),
        created_at: created,
        updated_at: created,
        expires_at: created + 60 * DAY,
    };
    (post, tag)
}

/// Fills the store at `db` with `n` signed posts; returns the posts per query tag.
fn preload(db: &Path, n: usize, seed: u64) -> Result<Vec<usize>> {
    let now = aidmesh::clock::now_ms();
    let mut rng = StdRng::seed_from_u64(seed);
    // At most 50 posts per author: within the per-author quota (100 open posts,
    // `proto/LIMITS.md`), so the store keeps all `n`.
    let authors: Vec<Identity> = (0..AUTHORS.max(n.div_ceil(50)))
        .map(|_| Identity::from_secret(rng.gen()))
        .collect();
    let mut per_tag = vec![0usize; TAGS.len()];
    let posts: Vec<(usize, Post)> = (0..n)
        .map(|i| {
            let a = i % authors.len();
            let (p, tag) = make_post(&mut rng, &authors[a], now);
            per_tag[tag] += 1;
            (a, p)
        })
        .collect();

    let t = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = n.div_ceil(threads);
    let signed: Vec<SignedPost> = std::thread::scope(|s| {
        let handles: Vec<_> = posts
            .chunks(per_thread)
            .map(|chunk| {
                let authors = &authors;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(a, p)| p.sign(authors[*a].signing_key()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing thread"))
            .collect::<Result<Vec<Vec<_>>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    eprintln!("signed {n} posts in {:.1} s", t.elapsed().as_secs_f64());
    drop(posts);

    let store = Store::open(db)?;
    let t = Instant::now();
    let mut done = 0;
    let mut signed = signed.into_iter();
    loop {
        let chunk: Vec<SignedPost> = signed.by_ref().take(PRELOAD_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        for r in store.insert_batch(chunk, now)? {
            let outcome = r.context("a preloaded post was refused")?;
            ensure!(outcome.changed(), "a preloaded post was not new");
        }
        done += len;
        if done % 10_000 < PRELOAD_CHUNK || done == n {
            eprintln!(
                "preloaded {done}/{n} posts ({:.0} posts/s)",
                done as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    store.flush()?;
    let elapsed = t.elapsed();
    ensure!(store.len() == n as u64, "store holds {} posts", store.len());
    emit(None, "posts", n as u64, "count");
    emit(
        None,
        "preload_insert_batch",
        round2(n as f64 / elapsed.as_secs_f64()),
        "posts/s",
    );
    emit(None, "disk_bytes", store.size_on_disk()?, "bytes");
    Ok(per_tag)
}

/// What one load run is doing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    GetTag,
    Post,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::GetTag => "get_posts_tag",
            Op::Post => "post_posts",
        }
    }

    fn expected(self) -> reqwest::StatusCode {
        match self {
            Op::GetTag => reqwest::StatusCode::OK,
            Op::Post => reqwest::StatusCode::CREATED,
        }
    }
}

/// Where the API is and how to talk to it.
struct Target {
    base: String,
    token: String,
}

impl Target {
    fn client() -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?)
    }

    fn request(&self, http: &reqwest::Client, op: Op, rng: &mut StdRng) -> reqwest::RequestBuilder {
        let req = match op {
            Op::GetTag => http.get(format!(
                "{}/posts?tag={}&limit={LIMIT}",
                self.base,
                TAGS[rng.gen_range(0..TAGS.len())]
            )),
            Op::Post => {
                let title_words = rng.gen_range(3..8);
                let body_words = rng.gen_range(15..80);
                let draft = DraftJson {
                    kind: Some(if rng.gen() { "offer" } else { "request" }.into()),
                    category: Some(
                        Category::ALL[rng.gen_range(0..Category::ALL.len())]
                            .as_str()
                            .into(),
                    ),
                    title: words(rng, title_words),
                    body: words(rng, body_words),
                    tags: vec![TAGS[rng.gen_range(0..TAGS.len())].into()],
                    location: Some(geohash(rng)),
                    quantity: rng.gen::<bool>().then(|| rng.gen_range(1..20)),
                    contact: Some("phone 000 000 000".into()),
                    circle: Some(format!("bench-{}", rng.gen_range(0..WRITE_CIRCLES))),
                    ..DraftJson::default()
                };
                http.post(format!("{}/posts", self.base)).json(&draft)
            }
        };
        req.bearer_auth(&self.token)
    }
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    body_bytes: u64,
    first_error: Option<String>,
}

async fn client_loop(
    target: Arc<Target>,
    op: Op,
    until: Instant,
    seed: u64,
) -> Result<(Tally, Instant)> {
    let http = Target::client()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    while Instant::now() < until {
        let req = target.request(&http, op, &mut rng);
        let t = Instant::now();
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(body) if status == op.expected() => Ok(body.len()),
                    Ok(body) => Err(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    )),
                    Err(e) => Err(format!("reading the body: {e}")),
                }
            }
            Err(e) => Err(format!("sending: {e}")),
        };
        let elapsed = t.elapsed();
        match outcome {
            Ok(len) => {
                tally.latencies.push(elapsed);
                tally.body_bytes += len as u64;
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    Ok((tally, Instant::now()))
}

/// `c` clients doing `op` for `secs`; returns the merged tally and the wall time.
async fn load(
    target: &Arc<Target>,
    op: Op,
    c: usize,
    secs: f64,
    seed: u64,
) -> Result<(Tally, Duration)> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..c)
        .map(|i| {
            tokio::spawn(client_loop(
                target.clone(),
                op,
                until,
                seed ^ ((i as u64 + 1) << 32),
            ))
        })
        .collect();
    let mut all = Tally::default();
    let mut end = start;
    for t in tasks {
        let (tally, done) = t.await??;
        end = end.max(done);
        all.latencies.extend(tally.latencies);
        all.errors += tally.errors;
        all.body_bytes += tally.body_bytes;
        if all.first_error.is_none() {
            all.first_error = tally.first_error;
        }
    }
    Ok((all, end - start))
}

/// Runs and reports `op` at every concurrency; returns the errors seen.
async fn measure(target: &Arc<Target>, op: Op, args: &Args) -> Result<u64> {
    let mut errors = 0;
    for (k, &c) in args.concurrency.iter().enumerate() {
        let seed = args.seed ^ ((k as u64 + 1) << 16) ^ (op as u64);
        if args.warmup_secs > 0.0 {
            let (w, _) = load(target, op, c, args.warmup_secs, seed ^ 1).await?;
            errors += w.errors;
            if let Some(e) = &w.first_error {
                eprintln!(
                    "{} warm-up, {c} clients: {} errors, first: {e}",
                    op.name(),
                    w.errors
                );
            }
        }
        let (mut tally, wall) = load(target, op, c, args.secs, seed).await?;
        tally.latencies.sort();
        let ok = tally.latencies.len();
        let name = op.name();
        let at = Some(c);
        let (rate_metric, rate_unit) = match op {
            Op::GetTag => ("rate", "req/s"),
            Op::Post => ("rate", "posts/s"),
        };
        emit(
            at,
            &format!("{name}_{rate_metric}"),
            round2(ok as f64 / wall.as_secs_f64()),
            rate_unit,
        );
        if ok > 0 {
            emit(
                at,
                &format!("{name}_p50"),
                ms(percentile(&tally.latencies, 0.5)),
                "ms",
            );
            emit(
                at,
                &format!("{name}_p99"),
                ms(percentile(&tally.latencies, 0.99)),
                "ms",
            );
            emit(
                at,
                &format!("{name}_max"),
                ms(*tally.latencies.last().unwrap()),
                "ms",
            );
            emit(
                at,
                &format!("{name}_response_bytes_mean"),
                round2(tally.body_bytes as f64 / ok as f64),
                "bytes",
            );
        }
        emit(at, &format!("{name}_ok"), ok, "requests");
        emit(at, &format!("{name}_errors"), tally.errors, "requests");
        if let Some(e) = &tally.first_error {
            eprintln!("{name}, {c} clients: {} errors, first: {e}", tally.errors);
        }
        errors += tally.errors;
    }
    Ok(errors)
}

/// Checks, before timing anything, that the API answers what the load expects.
async fn check(target: &Target, per_tag: &[usize]) -> Result<()> {
    let http = Target::client()?;
    for (i, tag) in TAGS.iter().enumerate() {
        let resp = http
            .get(format!("{}/posts?tag={tag}&limit={LIMIT}", target.base))
            .bearer_auth(&target.token)
            .send()
            .await?;
        ensure!(
            resp.status() == 200,
            "GET posts?tag={tag}: HTTP {}",
            resp.status()
        );
        let posts: Vec<PostJson> = resp.json().await?;
        ensure!(
            posts.len() == LIMIT.min(per_tag[i]),
            "GET posts?tag={tag} gave {} posts, expected {}",
            posts.len(),
            LIMIT.min(per_tag[i])
        );
        ensure!(
            posts.iter().all(|p| p.tags.iter().any(|t| t == tag)),
            "GET posts?tag={tag} gave a post without the tag"
        );
    }
    let mut rng = StdRng::seed_from_u64(7);
    let resp = target.request(&http, Op::Post, &mut rng).send().await?;
    ensure!(resp.status() == 201, "POST posts: HTTP {}", resp.status());
    let post: PostJson = resp.json().await?;
    ensure!(post.revision == 1, "POST posts answered {post:?}");
    let resp = http.get(format!("{}/posts", target.base)).send().await?;
    ensure!(
        resp.status() == 401,
        "GET posts without the token: HTTP {}",
        resp.status()
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    emit(None, "cores", cores, "count");
    emit(None, "server_threads", args.server_threads, "count");
    emit(None, "client_threads", args.client_threads, "count");
    emit(None, "run_secs", args.secs, "s");

    let dir = tempfile::tempdir()?;
    let data_dir = DataDir::resolve(Some(dir.path().join("node")))?;
    data_dir.create()?;
    let per_tag = preload(&data_dir.db(), args.posts, args.seed)?;
    let mean_slice = per_tag.iter().sum::<usize>() as f64 / per_tag.len() as f64;
    emit(None, "tag_slice_mean", round2(mean_slice), "posts");
    emit(
        None,
        "tag_slice_fraction",
        round2(100.0 * mean_slice / args.posts as f64),
        "%",
    );

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .thread_name("api-server")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("load-client")
        .enable_all()
        .build()?;

    let (node, server) = server_rt.block_on(async {
        let mut config = Config::default();
        config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        config.network.mdns = false;
        config.network.kademlia = false;
        config
            .network
            .circles
            .extend((0..WRITE_CIRCLES).map(|i| format!("bench-{i}")));
        let node = Node::start(NodeConfig {
            data_dir: data_dir.clone(),
            config,
        })
        .await?;
        let server =
            aidmesh::api::serve(node.clone(), "127.0.0.1:0".parse()?, false, &data_dir).await?;
        anyhow::Ok((node, server))
    })?;
    ensure!(
        node.store().len() == args.posts as u64,
        "the node sees {} posts",
        node.store().len()
    );
    let addr = std::fs::read_to_string(data_dir.api_addr()).context("reading api.addr")?;
    let token = std::fs::read_to_string(data_dir.api_token()).context("reading api.token")?;
    let target = Arc::new(Target {
        base: format!("http://{}/api/v1", addr.trim()),
        token: token.trim().to_string(),
    });
    eprintln!("API at {}", target.base);

    let errors = client_rt.block_on(async {
        check(&target, &per_tag).await?;
        let mut errors = measure(&target, Op::GetTag, &args).await?;
        errors += measure(&target, Op::Post, &args).await?;
        anyhow::Ok(errors)
    })?;
    drop(client_rt);

    server_rt.block_on(async {
        server.shutdown().await;
        node.shutdown().await
    })?;
    emit(None, "posts_after", node.store().len(), "count");
    drop(node);
    drop(server_rt);
    if errors > 0 {
        bail!("{errors} requests failed (see the *_errors lines and stderr)");
    }
    Ok(())
}
