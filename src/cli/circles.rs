//! Circles: `circle join`, `circle leave`, `circle list`; closed circles:
//! `circle create --closed`, `members`, `admit`, `remove`, `moderators`,
//! `moderator`, `block`.
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
    /// Found a closed circle: only those its founder or moderators admit can post in
    /// it. Prints its full name (name~id) last.
    Create {
        /// The name (1-48 characters a-z, 0-9 and -).
        name: String,
        /// Invite-only (the only kind `create` makes; open circles need no creating:
        /// `aidmesh circle join NAME`).
        #[arg(long)]
        closed: bool,
    },
    /// Show a closed circle's members: who admitted whom, and when.
    Members {
        /// The circle's full name, or an unambiguous short form.
        name: String,
    },
    /// Admit a peer to a closed circle (founder or moderator).
    Admit {
        /// The circle's full name, or an unambiguous short form.
        name: String,
        /// The peer id to admit.
        peer_id: String,
    },
    /// Remove a member from a closed circle (founder or moderator): its posts vanish
    /// from every member's node and new ones are refused.
    Remove {
        /// The circle's full name, or an unambiguous short form.
        name: String,
        /// The member's peer id.
        peer_id: String,
        /// Also remove everyone the member admitted (and theirs).
        #[arg(long)]
        with_invitees: bool,
        /// With --with-invitees: only those admitted in this last while, e.g. 2d or 6h
        /// [default: all of them]
        #[arg(long, value_name = "DURATION", requires = "with_invitees")]
        since: Option<humantime::Duration>,
    },
    /// Show a closed circle's founder and moderators.
    Moderators {
        /// The circle's full name, or an unambiguous short form.
        name: String,
    },
    /// Make a member a moderator (the founder only).
    Moderator {
        /// The circle's full name, or an unambiguous short form.
        name: String,
        /// The member's peer id.
        peer_id: String,
    },
    /// Add a peer to this node's signed blocklist in a circle (open or closed): nodes
    /// that follow this node's moderation stop storing and relaying its posts there.
    Block {
        /// The circle's full name, or an unambiguous short form.
        name: String,
        /// The peer id.
        peer_id: String,
    },
}

/// Runs one of the circle commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Join { name } => join(ctx, &name).await,
        Command::Leave { name, yes } => leave(ctx, &name, yes).await,
        Command::List => list(ctx).await,
        Command::Create { name, closed } => create(ctx, &name, closed).await,
        Command::Members { name } => members(ctx, &name, false).await,
        Command::Moderators { name } => members(ctx, &name, true).await,
        Command::Admit { name, peer_id } => peer_change(ctx, &name, "members", &peer_id).await,
        Command::Moderator { name, peer_id } => {
            peer_change(ctx, &name, "moderators", &peer_id).await
        }
        Command::Block { name, peer_id } => peer_change(ctx, &name, "blocklist", &peer_id).await,
        Command::Remove {
            name,
            peer_id,
            with_invitees,
            since,
        } => {
            let since = with_invitees.then(|| match since {
                Some(d) => aidmesh::clock::now_ms()
                    .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                None => 0,
            });
            let r = ctx.client()?.circle_remove(&name, &peer_id, since).await?;
            if ctx.json {
                return print_json(&r);
            }
            println!(
                "removed {} from circle {}: their posts are deleted here and on every member's node that hears of it",
                if r.removed.is_empty() { peer_id.clone() } else { r.removed.join(", ") },
                r.circle
            );
            Ok(())
        }
    }
}

async fn create(ctx: &Ctx, name: &str, closed: bool) -> anyhow::Result<()> {
    if !closed {
        anyhow::bail!(
            "open circles need no creating: `aidmesh circle join {name}` joins (or starts) one;              `aidmesh circle create {name} --closed` makes an invite-only one"
        );
    }
    let r = ctx.client()?.create_closed_circle(name).await?;
    if ctx.json {
        return print_json(&r);
    }
    println!(
        "created closed circle {name}: only members can post in it; invite with `aidmesh invite --circle {}`; full name {}",
        r.circle, r.circle
    );
    Ok(())
}

async fn members(ctx: &Ctx, name: &str, moderators: bool) -> anyhow::Result<()> {
    let m = ctx.client()?.circle_members(name, moderators).await?;
    if ctx.json {
        return print_json(&m);
    }
    println!(
        "circle {}: {} {} ({} membership records held)",
        m.circle,
        m.members.len(),
        if moderators {
            "founder and moderators"
        } else {
            "members"
        },
        m.records
    );
    println!(
        "{:<54}  {:<9}  {:<54}  ADMITTED",
        "PEER", "ROLE", "ADMITTED BY"
    );
    for i in &m.members {
        println!(
            "{:<54}  {:<9}  {:<54}  {} ago",
            i.peer_id,
            i.role,
            i.admitted_by,
            super::output::span(aidmesh::clock::now_ms().saturating_sub(i.admitted_at))
        );
    }
    if !moderators && !m.removed.is_empty() {
        println!("removed: {}", m.removed.join(", "));
    }
    Ok(())
}

async fn peer_change(ctx: &Ctx, name: &str, what: &str, peer: &str) -> anyhow::Result<()> {
    let r = ctx.client()?.circle_peer(name, what, peer).await?;
    if ctx.json {
        return print_json(&r);
    }
    match what {
        "members" => println!("admitted {peer} to circle {}", r.circle),
        "moderators" => println!("{peer} is now a moderator of circle {}", r.circle),
        _ => println!(
            "added {peer} to this node's blocklist in circle {}; nodes that follow your moderation stop taking its posts there",
            r.circle
        ),
    }
    Ok(())
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
