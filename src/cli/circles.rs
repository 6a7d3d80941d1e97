//! Circles: `circle join`, `circle leave`, `circle list`.
//!
//! With a node running, these go through its API and take effect at once (the node
//! saves the change in `config.toml`). With none running, they edit `config.toml`
//! (and `leave` deletes the circle's posts from the store on disk), so the next
//! `aidmesh run` starts with the change.

use std::io::{BufRead, IsTerminal, Write};

use aidmesh::circles::{self, CircleInfo};
use aidmesh::client::{self, ApiClient};
use aidmesh::config::Config;
use anyhow::Context;
use clap::Subcommand;

use super::output::print_json;
use super::{note, Ctx};

/// `circle …`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Join a circle: see and relay its posts, post in it, find its members. Saved in
    /// config.toml.
    Join {
        /// The circle's name (1-48 characters a-z, 0-9 and -).
        name: String,
    },
    /// Leave a circle: stop receiving and relaying its posts and delete them from this
    /// node (your own posts there included). Asks first on a terminal.
    Leave {
        /// The circle's name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show the circles this node is in: members connected and seen, posts, last
    /// activity.
    List,
}

/// Runs one of the circle commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Join { name } => join(ctx, &name).await,
        Command::Leave { name, yes } => leave(ctx, &name, yes).await,
        Command::List => list(ctx).await,
    }
}

/// The running node's client, or `None` when no node runs for the data dir.
async fn running(ctx: &Ctx) -> anyhow::Result<Option<ApiClient>> {
    let c = match ctx.client() {
        Ok(c) => c,
        Err(client::Error::NotRunning(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match c.status().await {
        Ok(_) => Ok(Some(c)),
        Err(client::Error::NotRunning(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Refuses to edit the files of a node that runs but does not answer.
fn offline_lock(ctx: &Ctx) -> anyhow::Result<aidmesh::lock::NodeLock> {
    ctx.data_dir.create()?;
    aidmesh::lock::acquire(&ctx.data_dir).context(
        "a node is starting or running with this data dir but does not answer on its API; \
         wait for it to finish starting, or stop it",
    )
}

async fn join(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    circles::check_name(name)?;
    let (new, live) = match running(ctx).await? {
        Some(c) => (c.join_circle(name).await?.new, true),
        None => {
            let _lock = offline_lock(ctx)?;
            (circles::join(&ctx.data_dir.config_file(), name)?, false)
        }
    };
    if ctx.json {
        return print_json(&serde_json::json!({
            "circle": name, "new": new, "running_node_joined": live,
        }));
    }
    if !new {
        println!("this node is already in circle {name}");
    } else if live {
        println!(
            "joined circle {name}; saved in {}",
            ctx.data_dir.config_file().display()
        );
        println!("  the node is looking for its members now; `aidmesh circle list` shows how many are connected");
    } else {
        println!(
            "joined circle {name}; saved in {}",
            ctx.data_dir.config_file().display()
        );
        println!(
            "  no node is running: it will be in the circle when you start it with `aidmesh run`"
        );
    }
    Ok(())
}

/// Asks "are you sure" on a terminal; without one, `--yes` is needed.
fn confirm(name: &str, posts: u64) -> anyhow::Result<bool> {
    let question = format!(
        "Leave circle {name} and delete its {posts} post(s) from this node, your own included? [y/N] "
    );
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "leaving circle {name} deletes its {posts} post(s) from this node; pass --yes to confirm"
        );
    }
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

async fn leave(ctx: &Ctx, name: &str, yes: bool) -> anyhow::Result<()> {
    circles::check_name(name)?;
    let left = match running(ctx).await? {
        Some(c) => {
            let infos = c.circles().await?;
            let Some(info) = infos.iter().find(|i| i.circle == name) else {
                return Err(circles::Error::NotMember {
                    circle: name.to_string(),
                }
                .into());
            };
            if !yes && !confirm(name, info.posts)? {
                println!("nothing changed");
                return Ok(());
            }
            c.leave_circle(name).await?
        }
        None => {
            let _lock = offline_lock(ctx)?;
            let path = ctx.data_dir.config_file();
            let config = Config::load(&path)?;
            if !config.network.circles.iter().any(|c| c == name) {
                return Err(circles::Error::NotMember {
                    circle: name.to_string(),
                }
                .into());
            }
            let store = if ctx.data_dir.db().exists() {
                Some(super::offline::open_store(&ctx.data_dir)?)
            } else {
                None
            };
            let posts = store.as_ref().map_or(0, |s| s.circle_summary(name).posts);
            if !yes && !confirm(name, posts)? {
                println!("nothing changed");
                return Ok(());
            }
            circles::leave(&path, name)?;
            let removed = match &store {
                Some(s) => s.remove_circle(name)? as u64,
                None => 0,
            };
            circles::Left {
                circle: name.to_string(),
                was_member: true,
                removed_posts: removed,
            }
        }
    };
    if ctx.json {
        return print_json(&left);
    }
    println!(
        "left circle {name}: {} post(s) deleted from this node; it no longer receives or relays the circle's posts",
        left.removed_posts
    );
    Ok(())
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let infos = match running(ctx).await? {
        Some(c) => c.circles().await?,
        None => {
            let config = Config::load(&ctx.data_dir.config_file())?;
            let store =
                if ctx.data_dir.db().exists() && aidmesh::lock::holder(&ctx.data_dir).is_none() {
                    Some(super::offline::open_store(&ctx.data_dir)?)
                } else {
                    None
                };
            note("no node is running: members connected are unknown; showing config.toml and the stored posts");
            config
                .network
                .circles
                .iter()
                .map(|c| CircleInfo::offline(c, store.as_ref()))
                .collect()
        }
    };
    if ctx.json {
        return print_json(&infos);
    }
    print_circles(&infos);
    Ok(())
}

/// The circle table, then a warning for each circle the node is cut off from.
pub fn print_circles(infos: &[CircleInfo]) {
    let w = infos
        .iter()
        .map(|i| i.circle.chars().count())
        .max()
        .unwrap_or(0)
        .max("CIRCLE".len());
    println!(
        "{:<w$}  {:>9}  {:>12}  {:>5}  LAST ACTIVITY",
        "CIRCLE", "CONNECTED", "MEMBERS SEEN", "POSTS"
    );
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    for i in infos {
        let last = i.last_activity.map_or("never".to_string(), |at| {
            format!(
                "{} ago",
                super::output::span(aidmesh::clock::now_ms().saturating_sub(at))
            )
        });
        println!(
            "{:<w$}  {:>9}  {:>12}  {:>5}  {last}",
            i.circle,
            opt(i.members_connected),
            opt(i.members_seen),
            i.posts
        );
    }
    for i in infos.iter().filter(|i| i.cut_off) {
        println!("warning: {}", circles::cut_off_warning(&i.circle));
    }
}
