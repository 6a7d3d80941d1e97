//! Watches a running node for new requests and prints those that match a category, a
//! tag and/or an area, until interrupted.
//!
//! It shows the event stream of [`aidmesh::client::ApiClient`]: `events()` yields
//! `(name, json)` pairs from the node's local API (server-sent events), here the
//! `post_added` ones, whose `post` is a [`PostJson`]. The filters are checked up front
//! with the same rules the node applies to queries ([`aidmesh::Query::validate`]).
//!
//! Run a node, then watch it (and post a request from another terminal):
//!
//! ```sh
//! cargo run -- --data-dir /tmp/exnode run --no-mdns --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 &
//! cargo run --example watch_requests -- --data-dir /tmp/exnode --category transport --near u33
//! cargo run -- --data-dir /tmp/exnode request "Ride to the clinic" --category transport --location u33dc
//! cargo run --example watch_requests -- --help
//! ```
//!
//! `--existing` first prints the open requests the node already has; `--count N` stops
//! after N matches; `--json` prints one post per line as JSON. The data dir is
//! `--data-dir`, else `$AIDMESH_DATA_DIR`, else the default one. Logs go to stderr,
//! filtered by `RUST_LOG`. Exits 0 on Ctrl-C or after `--count` matches, non-zero if
//! no node runs there or the node stops.

use std::collections::HashSet;
use std::path::PathBuf;

use aidmesh::api::json::PostJson;
use aidmesh::client::ApiClient;
use aidmesh::proto::{Category, Kind, Status};
use aidmesh::store::QueryError;
use aidmesh::{DataDir, Query};
use anyhow::{bail, Context};
use clap::Parser;
use libp2p::futures::StreamExt;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Prints new requests on a running aidmesh node that match the given filters.
#[derive(Parser, Debug)]
struct Args {
    /// The running node's data dir [default: ~/.local/share/aidmesh]
    #[arg(long, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Only requests in this category (food, housing, transport, goods, skills, care,
    /// money or other)
    #[arg(long)]
    category: Option<Category>,

    /// Only requests carrying this tag
    #[arg(long)]
    tag: Option<String>,

    /// Only requests whose location starts with this geohash prefix (a shorter prefix
    /// is a wider area)
    #[arg(long, value_name = "GEOHASH-PREFIX")]
    near: Option<String>,

    /// Only requests in this circle
    #[arg(long)]
    circle: Option<String>,

    /// First print the matching open requests the node already has
    #[arg(long)]
    existing: bool,

    /// Stop after this many matching requests
    #[arg(long, value_name = "N")]
    count: Option<usize>,

    /// Print each request as one line of JSON
    #[arg(long)]
    json: bool,
}

/// The data of a `post_added` event.
#[derive(Deserialize)]
struct PostAdded {
    post: PostJson,
    /// `local`, `gossip` or `sync`.
    origin: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    // The filters as a store query: validated by the same rules the node uses.
    let filter = Query {
        kind: Some(Kind::Request),
        category: args.category,
        tag: args.tag.clone(),
        near: args.near.clone(),
        circle: args.circle.clone(),
        ..Query::default()
    };
    filter.validate().map_err(|e| match &e {
        // Name the flag, not the post field the rule is about (`near` checks `location`).
        QueryError::Filter(v) => anyhow::anyhow!("--{}: {}", e.field(), v.problem),
        _ => anyhow::anyhow!("--{}: {e}", e.field()),
    })?;

    let data_dir = DataDir::resolve(args.data_dir.clone())?;
    let client = ApiClient::from_data_dir(&data_dir)?;
    // Subscribe before listing, so nothing posted in between is missed.
    let mut events = std::pin::pin!(client.events().await?);
    eprintln!(
        "watching {} for requests{}; Ctrl-C to stop",
        data_dir.path().display(),
        describe(&filter)
    );

    let mut seen = HashSet::new();
    let mut printed = 0;
    let done = |printed: usize| args.count.is_some_and(|n| printed >= n);
    if args.existing {
        let posts = client
            .list(&url_params(&filter))
            .await
            .context("listing existing requests")?;
        // Oldest first, like the events that follow.
        for post in posts.iter().rev() {
            if done(printed) {
                return Ok(());
            }
            seen.insert(post.id.clone());
            show(post, "stored", args.json)?;
            printed += 1;
        }
    }

    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    while !done(printed) {
        let next = tokio::select! {
            next = events.next() => next,
            _ = &mut ctrl_c => return Ok(()),
        };
        let Some(event) = next else {
            bail!("the node closed the event stream (did it stop?)");
        };
        let (name, data) = event?;
        tracing::debug!(event = %name, "event");
        if name != "post_added" {
            continue;
        }
        let added: PostAdded =
            serde_json::from_value(data).context("reading a post_added event")?;
        if matches(&filter, &added.post) && seen.insert(added.post.id.clone()) {
            show(&added.post, &added.origin, args.json)?;
            printed += 1;
        }
    }
    Ok(())
}

/// Whether `post` is an open request passing every filter of `q` (the fields this
/// example sets).
fn matches(q: &Query, post: &PostJson) -> bool {
    post.status == Status::Open
        && q.kind.is_none_or(|k| post.kind == k)
        && q.category.is_none_or(|c| post.category == c)
        && q.circle.as_ref().is_none_or(|c| &post.circle == c)
        && q.tag.as_ref().is_none_or(|t| post.tags.contains(t))
        && q.near.as_ref().is_none_or(|prefix| {
            post.location
                .as_ref()
                .is_some_and(|l| l.starts_with(prefix.as_str()))
        })
}

/// The filters of `q` as URL parameters of `GET /posts`.
fn url_params(q: &Query) -> Vec<(String, String)> {
    let mut params = vec![("limit".to_string(), aidmesh::store::MAX_LIMIT.to_string())];
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            params.push((k.to_string(), v));
        }
    };
    put("kind", q.kind.map(|k| k.to_string()));
    put("category", q.category.map(|c| c.to_string()));
    put("tag", q.tag.clone());
    put("near", q.near.clone());
    put("circle", q.circle.clone());
    params
}

fn describe(q: &Query) -> String {
    let mut parts = Vec::new();
    if let Some(c) = q.category {
        parts.push(format!("category {c}"));
    }
    if let Some(t) = &q.tag {
        parts.push(format!("tag {t}"));
    }
    if let Some(n) = &q.near {
        parts.push(format!("near {n}"));
    }
    if let Some(c) = &q.circle {
        parts.push(format!("circle {c}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn show(post: &PostJson, how: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(post)?);
        return Ok(());
    }
    println!(
        "[{how}] {} request: {}   (id {}, by {})",
        post.category,
        post.title,
        post.id.get(..12).unwrap_or(&post.id),
        post.author
    );
    for line in post.body.lines() {
        println!("    | {line}");
    }
    let mut facts = Vec::new();
    if let Some(l) = &post.location {
        facts.push(format!("near {l}"));
    }
    if !post.tags.is_empty() {
        facts.push(format!("tags {}", post.tags.join(", ")));
    }
    if let Some(q) = post.quantity {
        facts.push(format!("quantity {q}"));
    }
    if let Some(c) = &post.contact {
        facts.push(format!("contact {c}"));
    }
    facts.push(format!("until {}", post.expires_at));
    println!("    {}", facts.join(" · "));
    Ok(())
}
