//! Blocking authors: `block`, `unblock`; moderation others can follow: `hide`,
//! `follow-moderation`.

use clap::Subcommand;

use super::output::print_json;
use super::Ctx;

/// The moderation commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Delete an author's posts and refuse them from now on.
    Block {
        /// The author's peer id, or a unique prefix of it (as `list` shows).
        author: String,
    },
    /// Accept an author's posts again.
    Unblock {
        /// The author's peer id, or a unique prefix of it among the blocked ones.
        author: String,
    },
    /// Publish a signed hide of a post: nodes that follow your moderation stop
    /// storing, relaying and showing it. Nothing forces anyone else.
    Hide {
        /// The post id, or a unique prefix of at least 8 characters.
        id: String,
    },
    /// Follow a key's hides and blocklists (saved in config.toml): they apply to what
    /// this node stores, relays and shows.
    FollowModeration {
        /// The moderator's peer id.
        peer_id: String,
        /// Stop following it instead.
        #[arg(long)]
        stop: bool,
    },
}

/// Runs one of the moderation commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Block { author } => {
            let r = ctx.client()?.block(&author).await?;
            if ctx.json {
                print_json(&r)
            } else {
                let who = r["author"].as_str().unwrap_or(&author);
                println!("blocked {who}; removed {} posts", r["removed_posts"]);
                Ok(())
            }
        }
        Command::Hide { id } => {
            let r = ctx.client()?.hide(&id).await?;
            if ctx.json {
                return print_json(&r);
            }
            println!(
                "hid post {id} in circle {}: nodes that follow your moderation drop it",
                r.circle
            );
            Ok(())
        }
        Command::FollowModeration { peer_id, stop } => {
            let r = ctx.client()?.follow_moderation(&peer_id, !stop).await?;
            if ctx.json {
                return print_json(&r);
            }
            match (stop, r.changed) {
                (false, true) => {
                    println!("following the moderation of {peer_id}; saved in config.toml")
                }
                (false, false) => println!("already following the moderation of {peer_id}"),
                (true, true) => println!("no longer following the moderation of {peer_id}"),
                (true, false) => println!("this node was not following {peer_id}"),
            }
            Ok(())
        }
        Command::Unblock { author } => {
            let r = ctx.client()?.unblock(&author).await?;
            if ctx.json {
                print_json(&r)
            } else {
                println!("unblocked {}", r["author"].as_str().unwrap_or(&author));
                Ok(())
            }
        }
    }
}
