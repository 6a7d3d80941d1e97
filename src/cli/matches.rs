//! Matches and the event stream: `matches`, `watch`.

use aidmesh::api::json::PostJson;
use clap::{Args, Subcommand};
use libp2p::futures::StreamExt;

use super::output::{print_json, print_match, short, who};
use super::{note, offline, Ctx, Source};

/// The match commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print one line per event (new and changed posts, matches) until interrupted
    /// or the node stops.
    Watch {
        /// Only matches: arriving posts that fit an alert or match one of your posts
        #[arg(long)]
        matches: bool,
        /// Also peers coming and going, and catch-up syncs
        #[arg(long, short)]
        verbose: bool,
    },
    /// Show the best matches for each of this node's open posts (or for one post).
    Matches(MatchesArgs),
}

/// `matches`.
#[derive(Args, Debug)]
pub struct MatchesArgs {
    /// Matches shown per post
    #[arg(long, default_value_t = 5)]
    limit: usize,
    /// Only the matches for this post (id or a unique prefix; any post, not only yours)
    #[arg(long, value_name = "ID")]
    post: Option<String>,
}

/// Runs one of the match commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Watch { matches, verbose } => watch(ctx, matches, verbose).await,
        Command::Matches(a) => matches(ctx, a).await,
    }
}

async fn watch(ctx: &Ctx, only_matches: bool, verbose: bool) -> anyhow::Result<()> {
    let c = ctx.client()?;
    let me = ctx.identity()?.map(|i| i.peer_id().to_string());
    let mut first = true;
    loop {
        let stream = match c.events().await {
            Ok(s) => s,
            // Gone between the check below and reconnecting: it stopped.
            Err(_) if !first => break,
            Err(e) => return Err(e.into()),
        };
        let mut events = std::pin::pin!(stream);
        if first {
            note("watching the node's events; Ctrl-C to stop");
            first = false;
        }
        while let Some(e) = events.next().await {
            let Ok((name, data)) = e else {
                break;
            };
            if only_matches && name != "match" {
                continue;
            }
            if ctx.json {
                println!("{}", serde_json::json!({ "event": name, "data": data }));
            } else if let Some(line) = event_line(&name, &data, me.as_deref(), verbose) {
                println!("{line}");
            }
        }
        // The node ends a quiet stream after a while: carry on if it still answers.
        match c.status().await {
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    note("the node stopped; watch ends");
    Ok(())
}

/// One readable line for an event, or `None` for the noise left out without
/// `--verbose`.
pub fn event_line(
    name: &str,
    data: &serde_json::Value,
    me: Option<&str>,
    verbose: bool,
) -> Option<String> {
    let str_of = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let post = || serde_json::from_value::<PostJson>(data["post"].clone()).ok();
    let describe = |p: &PostJson| {
        let place = p
            .location
            .as_deref()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        format!(
            "{} ({}) by {}{place}: {} [{}]",
            p.kind,
            p.category,
            who(&p.author, me),
            p.title,
            short(&p.id)
        )
    };
    match name {
        "post_added" => post().map(|p| format!("new {}", describe(&p))),
        "post_updated" => post().map(|p| {
            let what = match p.status {
                aidmesh::proto::Status::Withdrawn => "withdrawn",
                aidmesh::proto::Status::Fulfilled => "fulfilled",
                _ => "changed",
            };
            // A withdrawn post keeps no body: its title is all there is to show.
            format!("{what} {}", describe(&p))
        }),
        "match" => {
            let p = post()?;
            let target = &data["target"];
            let what = match target["type"].as_str() {
                Some("alert") => format!("alert {}", target["id"]),
                _ => format!(
                    "your post \"{}\" [{}]",
                    str_of(&target["title"]),
                    short(target["id"].as_str().unwrap_or("?"))
                ),
            };
            let reasons: Vec<&str> = data["reasons"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
                .unwrap_or_default();
            Some(format!(
                "match for {what}: {} ({})",
                describe(&p),
                reasons.join(", ")
            ))
        }
        "peer_connected" if verbose => Some(format!(
            "peer {} connected ({})",
            str_of(&data["peer_id"]),
            str_of(&data["address"])
        )),
        "peer_disconnected" if verbose => {
            Some(format!("peer {} disconnected", str_of(&data["peer_id"])))
        }
        "sync_finished" if verbose => Some(match data["error"].as_str() {
            Some(e) => format!(
                "catch-up of circle {} with {} failed: {e}",
                str_of(&data["circle"]),
                str_of(&data["peer_id"])
            ),
            None => format!(
                "caught up circle {} with {}: {} post(s) fetched",
                str_of(&data["circle"]),
                str_of(&data["peer_id"]),
                data["fetched"]
            ),
        }),
        "peer_connected" | "peer_disconnected" | "sync_finished" => None,
        other if verbose => Some(format!("{other}: {data}")),
        _ => None,
    }
}

async fn matches(ctx: &Ctx, a: MatchesArgs) -> anyhow::Result<()> {
    let source = ctx.source().await?;
    if let Some(id) = a.post {
        let found = match &source {
            Source::Node(c) => c.post_matches(&id, a.limit).await?,
            Source::Disk(store) => offline::post_matches(store, &id, a.limit)?,
        };
        if ctx.json {
            print_json(&found)?;
        } else if found.is_empty() {
            println!("no matches");
        } else {
            found.iter().for_each(print_match);
        }
        return Ok(());
    }
    let all = match &source {
        Source::Node(c) => c.matches(a.limit).await?,
        Source::Disk(store) => match ctx.identity()? {
            Some(me) => offline::matches(store, &me.author(), a.limit)?,
            None => Vec::new(),
        },
    };
    if ctx.json {
        return print_json(&all);
    }
    if all.is_empty() {
        println!("no open posts of yours to match");
    }
    for pm in &all {
        let p = &pm.post;
        println!(
            "{} {} · {} [{}]",
            p.kind.as_str(),
            p.category.as_str(),
            p.title,
            short(&p.id)
        );
        if pm.matches.is_empty() {
            println!("  no matches yet");
        }
        pm.matches.iter().for_each(print_match);
    }
    Ok(())
}
