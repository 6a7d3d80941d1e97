//! Blocking authors: `block`, `unblock`.

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
