//! Web page benchmark (issue #14): what a browser downloads for the board, how long
//! the node takes to serve the board and a post page over a large store, and what an
//! open live page costs.
//!
//! Run: `cargo bench --bench web` (add `-- --posts 20000` for a quicker run).
//!
//! 1. A node with 50 posts: the bytes of the board's HTML plus its CSS and JS
//!    (uncompressed; goal under 60 KB) and the count of external requests (URLs in
//!    the page that point elsewhere; goal 0).
//! 2. A node with `--posts` (default 100,000) signed posts in `commons`, preloaded with
//!    `Store::insert_batch`: p50/p99 of `GET /` (the board, first page, 50 posts) and
//!    of `GET /posts/{id}` (a random post: details, matches, the author's other posts),
//!    one request at a time over loopback HTTP with a session cookie.
//! 3. Memory per open live page: the process's RSS before and after opening 50
//!    `/live` streams, divided by 50 (the client's side of each connection, in the same
//!    process, is counted too: an upper bound).
//!
//! Prints one JSON object per line.

use std::path::Path;
use std::time::{Duration, Instant};

use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status};
use aidmesh::{Config, DataDir, Identity, Node, NodeConfig, NodeHandle, Store};
use anyhow::{ensure, Context, Result};
use libp2p::futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const DAY: u64 = 86_400_000;
const AUTHORS: usize = 500;
const SAMPLES: usize = 300;
const LIVE_PAGES: usize = 50;
const WORDS: &[&str] = &[
    "bread", "soup", "ride", "clinic", "bike", "tools", "drill", "ladder", "room", "bed", "coat",
    "winter", "school", "books", "laptop", "repair", "garden", "seeds", "eggs", "milk", "baby",
    "stroller", "chair", "table", "paint", "help", "moving", "boxes", "van", "lessons",
];
const TAGS: &[&str] = &[
    "food", "bikes", "coats", "tools", "books", "rides", "care", "rent",
];

fn emit(metric: &str, value: impl Into<Value>, unit: &str, goal: Option<(&str, bool)>) {
    let mut v = serde_json::json!({ "bench": "web", "metric": metric, "value": value.into(), "unit": unit });
    if let Some((g, met)) = goal {
        v["goal"] = g.into();
        v["goal_met"] = met.into();
    }
    println!("{v}");
}

fn words(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn signed_posts(n: usize, seed: u64) -> Result<Vec<SignedPost>> {
    let now = aidmesh::clock::now_ms();
    let mut rng = StdRng::seed_from_u64(seed);
    // At most 50 posts per author: within the per-author quota (100 open posts,
    // `proto/LIMITS.md`), so the store keeps all `n`.
    let authors: Vec<Identity> = (0..AUTHORS.max(n.div_ceil(50)).min(n))
        .map(|_| Identity::from_secret(rng.gen()))
        .collect();
    let posts: Vec<(usize, Post)> = (0..n)
        .map(|i| {
            let a = i % authors.len();
            let author = authors[a].author();
            let nonce = Nonce(rng.gen());
            let created = now - rng.gen_range(0..30 * DAY);
            let (tw, bw) = (rng.gen_range(3..8), rng.gen_range(15..80));
            let post = Post {
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
                title: words(&mut rng, tw),
                body: words(&mut rng, bw),
                tags: vec![TAGS[rng.gen_range(0..TAGS.len())].to_string()],
                location: Some(format!("u33d{}", ['b', 'c', 'f', 'g'][rng.gen_range(0..4)])),
                quantity: rng.gen::<bool>().then(|| rng.gen_range(1..20)),
                contact: None,
                created_at: created,
                updated_at: created,
                expires_at: created + 60 * DAY,
            };
            (a, post)
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n.div_ceil(threads).max(1);
    let signed = std::thread::scope(|s| {
        let hs: Vec<_> = posts
            .chunks(per)
            .map(|c| {
                let authors = &authors;
                s.spawn(move || {
                    c.iter()
                        .map(|(a, p)| p.sign(authors[*a].signing_key()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("signing thread"))
            .collect::<Result<Vec<Vec<_>>, _>>()
    })?;
    Ok(signed.into_iter().flatten().collect())
}

fn preload(db: &Path, n: usize) -> Result<Vec<PostId>> {
    let now = aidmesh::clock::now_ms();
    let signed = signed_posts(n, 0x3eb)?;
    let store = Store::open(db)?;
    let mut ids = Vec::with_capacity(n);
    let mut it = signed.into_iter();
    loop {
        let chunk: Vec<SignedPost> = it.by_ref().take(1000).collect();
        if chunk.is_empty() {
            break;
        }
        for r in store.insert_batch(chunk, now)? {
            r.context("a preloaded post was refused")?;
        }
    }
    for p in store.all() {
        ids.push(p?.post().id);
    }
    store.flush()?;
    Ok(ids)
}

struct Served {
    node: NodeHandle,
    server: aidmesh::api::ApiServer,
    base: String,
    cookie: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn serve(posts: usize) -> Result<(Served, Vec<PostId>)> {
    let dir = tempfile::tempdir()?;
    let data_dir = DataDir::resolve(Some(dir.path().join("node")))?;
    data_dir.create()?;
    let t = Instant::now();
    let ids = tokio::task::block_in_place(|| preload(&data_dir.db(), posts))?;
    eprintln!(
        "preloaded {posts} posts in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut config = Config::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.network.mdns = false;
    config.network.kademlia = false;
    let node = Node::start(NodeConfig {
        data_dir: data_dir.clone(),
        config,
    })
    .await?;
    let server =
        aidmesh::api::serve(node.clone(), "127.0.0.1:0".parse()?, false, &data_dir).await?;
    let base = format!("http://{}", server.addr());
    let token = std::fs::read_to_string(data_dir.api_token())?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login: Value = http
        .post(format!("{base}/api/v1/ui/login"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({}))
        .send()
        .await?
        .json()
        .await?;
    let url = login["url"].as_str().context("a login url")?;
    let r = http.get(url).send().await?;
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_string();
    Ok((
        Served {
            node,
            server,
            base,
            cookie,
            http,
            _dir: dir,
        },
        ids,
    ))
}

impl Served {
    async fn get(&self, path: &str) -> Result<String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        ensure!(r.status() == 200, "{path}: HTTP {}", r.status());
        Ok(r.text().await?)
    }

    async fn stop(self) -> Result<()> {
        self.server.shutdown().await;
        self.node.shutdown().await?;
        Ok(())
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i].as_secs_f64() * 1e6).round() / 1e3
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// URLs in the page that leave this node (`http…`, `//…`) in src, href or action.
fn external_requests(html: &str) -> usize {
    ["src=\"", "href=\"", "action=\""]
        .iter()
        .map(|attr| {
            html.match_indices(attr)
                .filter(|(i, _)| {
                    let v = &html[i + attr.len()..];
                    v.starts_with("http") || v.starts_with("//")
                })
                .count()
        })
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut posts = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--posts" {
            posts = args.next().context("--posts needs a number")?.parse()?;
        }
    }

    // 1. Page weight of the board with 50 posts.
    let (small, _) = serve(50).await?;
    let html = small.get("/").await?;
    ensure!(
        html.matches("<article class=\"card").count() == 50,
        "the board shows 50 posts"
    );
    let css = small.get(aidmesh::web::assets::css_path()).await?;
    let js = small.get(aidmesh::web::assets::js_path()).await?;
    let total = html.len() + css.len() + js.len();
    emit("board_50_html_bytes", html.len(), "bytes", None);
    emit("css_bytes", css.len(), "bytes", None);
    emit("js_bytes", js.len(), "bytes", None);
    emit(
        "board_50_total_bytes",
        total,
        "bytes",
        Some(("< 61440", total < 61_440)),
    );
    let ext = external_requests(&html);
    emit(
        "board_external_requests",
        ext,
        "count",
        Some(("0", ext == 0)),
    );
    small.stop().await?;

    // 2. Serving the board and a post page over a large store.
    let (big, ids) = serve(posts).await?;
    emit("posts", posts, "count", None);
    for _ in 0..20 {
        big.get("/").await?;
    }
    let mut board = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        big.get("/").await?;
        board.push(t.elapsed());
    }
    board.sort();
    emit("board_p50", pct(&board, 0.5), "ms", None);
    emit("board_p99", pct(&board, 0.99), "ms", None);
    let mut rng = StdRng::seed_from_u64(7);
    let mut page = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let id = ids[rng.gen_range(0..ids.len())];
        let t = Instant::now();
        big.get(&format!("/posts/{id}")).await?;
        page.push(t.elapsed());
    }
    page.sort();
    emit("post_page_p50", pct(&page, 0.5), "ms", None);
    emit("post_page_p99", pct(&page, 0.99), "ms", None);

    // 3. Memory per open live page.
    let before = rss_kib().context("reading /proc/self/status")?;
    let mut streams = Vec::with_capacity(LIVE_PAGES);
    for _ in 0..LIVE_PAGES {
        let r = big
            .http
            .get(format!("{}/live?view=board", big.base))
            .header("cookie", &big.cookie)
            .send()
            .await?;
        ensure!(r.status() == 200, "live: HTTP {}", r.status());
        streams.push(r.bytes_stream());
    }
    // One event through every stream, so each is fully set up.
    big.node
        .publish(aidmesh::Draft::new(
            Kind::Offer,
            Category::Food,
            "Live bench post",
        ))
        .await?;
    for s in &mut streams {
        let mut seen = String::new();
        while !seen.contains("Live bench post") {
            let chunk = tokio::time::timeout(Duration::from_secs(30), s.next())
                .await
                .context("a live event")?
                .context("stream ended")??;
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let after = rss_kib().context("reading /proc/self/status")?;
    let per = after.saturating_sub(before) as f64 / LIVE_PAGES as f64;
    emit("live_page_rss", (per * 10.0).round() / 10.0, "KiB", None);
    drop(streams);
    big.stop().await?;
    Ok(())
}
