//! Watches a running node's matches and prints a suggested reply for each, until
//! interrupted.
//!
//! It shows the `match` events of [`aidmesh::client::ApiClient::events`]: the node
//! raises one when a post arriving from elsewhere (gossip, sync or import) fits one of
//! its standing alerts (`aidmesh alert add ...`) or matches one of its own open posts.
//! Each event names the arriving post, what it matched and why; this example turns
//! that into a reply you could send through the post's contact. With `--existing` it
//! first goes through the current best matches of the node's own open posts
//! (`GET /api/v1/matches`). It only suggests: nothing is sent anywhere.
//!
//! Run a node, save an alert, then watch (and post a matching offer from another
//! node or import one):
//!
//! ```sh
//! cargo run -- --data-dir /tmp/exnode run --no-mdns --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 &
//! cargo run -- --data-dir /tmp/exnode alert add --kind offer --tag bike
//! cargo run -- --data-dir /tmp/exnode request "Bike for school" --category transport --tag bike
//! cargo run --example auto_reply -- --data-dir /tmp/exnode --existing
//! cargo run --example auto_reply -- --help
//! ```
//!
//! `--count N` stops after N suggestions; `--json` prints one suggestion per line as
//! JSON. The data dir is `--data-dir`, else `$AIDMESH_DATA_DIR`, else the default
//! one. Logs go to stderr, filtered by `RUST_LOG`. Exits 0 on Ctrl-C or after
//! `--count` suggestions, non-zero if no node runs there or the node stops.

use std::collections::HashSet;
use std::path::PathBuf;

use aidmesh::api::json::PostJson;
use aidmesh::client::ApiClient;
use aidmesh::DataDir;
use anyhow::{bail, Context};
use clap::Parser;
use libp2p::futures::StreamExt;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Prints a suggested reply for every match a running aidmesh node reports.
#[derive(Parser, Debug)]
struct Args {
    /// The running node's data dir [default: ~/.local/share/aidmesh]
    #[arg(long, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// First suggest replies for the best current match of each of the node's own
    /// open posts
    #[arg(long)]
    existing: bool,

    /// Stop after this many suggestions
    #[arg(long, value_name = "N")]
    count: Option<usize>,

    /// Print each suggestion as one line of JSON
    #[arg(long)]
    json: bool,
}

/// The data of a `match` event.
#[derive(Deserialize)]
struct MatchEvent {
    /// The arriving post.
    post: PostJson,
    /// `gossip`, `sync` or `import`.
    origin: String,
    /// What it matched: `{"type": "alert", "id": 3}` or
    /// `{"type": "post", "id": "…", "title": "…"}`.
    target: serde_json::Value,
    /// Why: `category food`, `1 tag`, `~3 km`, `tag bike`, ...
    reasons: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    let data_dir = DataDir::resolve(args.data_dir.clone())?;
    let client = ApiClient::from_data_dir(&data_dir)?;
    // Subscribe before listing, so nothing that arrives in between is missed.
    let mut events = std::pin::pin!(client.events().await?);
    eprintln!(
        "watching {} for matches; Ctrl-C to stop",
        data_dir.path().display()
    );

    let mut seen = HashSet::new();
    let mut printed = 0;
    let done = |printed: usize| args.count.is_some_and(|n| printed >= n);
    if args.existing {
        let mine = client.matches(1).await.context("listing current matches")?;
        for own in &mine {
            let Some(best) = own.matches.first() else {
                continue;
            };
            if done(printed) {
                return Ok(());
            }
            seen.insert(best.post.id.clone());
            let about = format!("your {} \"{}\"", own.post.kind, own.post.title);
            show(&best.post, &about, &best.reasons, "stored", args.json)?;
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
        if name != "match" {
            continue;
        }
        let m: MatchEvent = serde_json::from_value(data).context("reading a match event")?;
        // One suggestion per post, even if it matched an alert and an own post.
        if !seen.insert(m.post.id.clone()) {
            continue;
        }
        let about = match m.target["type"].as_str() {
            Some("post") => format!(
                "your post \"{}\"",
                m.target["title"].as_str().unwrap_or("?")
            ),
            _ => format!("alert {}", m.target["id"]),
        };
        show(&m.post, &about, &m.reasons, &m.origin, args.json)?;
        printed += 1;
    }
    Ok(())
}

/// The reply a person might send to the author of `post`.
fn suggest(post: &PostJson) -> String {
    let what = post.title.trim_end_matches(['.', '!', '?']);
    match post.kind.as_str() {
        "offer" => format!(
            "Hi! I saw your offer \"{what}\" on aidmesh. Is it still available? It would help \
             a lot{}. When and where could I pick it up?",
            post.quantity
                .map(|q| format!(" (you mention {q})"))
                .unwrap_or_default()
        ),
        _ => format!(
            "Hi! I saw your request \"{what}\" on aidmesh and I think I can help. \
             How should we arrange it?"
        ),
    }
}

fn show(
    post: &PostJson,
    about: &str,
    reasons: &[String],
    origin: &str,
    json: bool,
) -> anyhow::Result<()> {
    let reply = suggest(post);
    if json {
        println!(
            "{}",
            serde_json::json!({ "post": post.id, "about": about, "reasons": reasons,
                "origin": origin, "contact": post.contact, "reply": reply })
        );
        return Ok(());
    }
    println!(
        "{} {} — {} [{}] for {about} ({})",
        post.kind,
        post.category,
        post.title,
        post.id.get(..12).unwrap_or(&post.id),
        reasons.join(", ")
    );
    match &post.contact {
        Some(c) => println!("  contact: {c}"),
        None => println!("  no contact given: reply through your circle"),
    }
    println!("  suggested reply: {reply}");
    Ok(())
}
