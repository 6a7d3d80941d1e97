//! Matches and the event stream: `matches`, `watch`.

use clap::{Args, Subcommand};
use libp2p::futures::StreamExt;

use super::output::{print_json, print_match, print_match_event, short};
use super::Ctx;

/// The match commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stream events (new and changed posts, peers, matches) until interrupted.
    Watch {
        /// Only matches: arriving posts that fit an alert or match one of your posts
        #[arg(long)]
        matches: bool,
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
    /// Only the matches for this post (hex id; any post, not only yours)
    #[arg(long, value_name = "ID")]
    post: Option<String>,
}

/// Runs one of the match commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Watch { matches } => watch(ctx, matches).await,
        Command::Matches(a) => matches(ctx, a).await,
    }
}

async fn watch(ctx: &Ctx, only_matches: bool) -> anyhow::Result<()> {
    let c = ctx.client()?;
    let mut events = std::pin::pin!(c.events().await?);
    while let Some(e) = events.next().await {
        let (name, data) = e?;
        if only_matches && name != "match" {
            continue;
        }
        if ctx.json {
            println!("{}", serde_json::json!({ "event": name, "data": data }));
        } else if name == "match" {
            print_match_event(&data);
        } else if let Some(post) = data.get("post") {
            println!(
                "{name}: {} {} — {} [{}]",
                post["kind"].as_str().unwrap_or("?"),
                post["category"].as_str().unwrap_or("?"),
                post["title"].as_str().unwrap_or("?"),
                short(post["id"].as_str().unwrap_or("?"))
            );
        } else {
            println!("{name}: {data}");
        }
    }
    Ok(())
}

async fn matches(ctx: &Ctx, a: MatchesArgs) -> anyhow::Result<()> {
    let c = ctx.client()?;
    if let Some(id) = a.post {
        let found = c.post_matches(&id, a.limit).await?;
        if ctx.json {
            print_json(&found)?;
        } else if found.is_empty() {
            println!("no matches");
        } else {
            found.iter().for_each(print_match);
        }
        return Ok(());
    }
    let all = c.matches(a.limit).await?;
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
