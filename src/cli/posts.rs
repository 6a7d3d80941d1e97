//! Posting and reading posts: `offer`, `request`, `list`, `show`, `edit`,
//! `withdraw`, `fulfil`.

use aidmesh::api::json::{DraftJson, EditJson};
use clap::{Args, Subcommand};

use super::output::{print_json, print_post, print_post_table};
use super::Ctx;

/// The post commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Post an offer; prints its id.
    Offer(PostArgs),
    /// Post a request; prints its id.
    Request(PostArgs),
    /// List posts, newest first (open ones unless --all).
    List(ListArgs),
    /// Show one post.
    Show {
        /// Post id (hex).
        id: String,
    },
    /// Change one of this node's posts (a new revision).
    Edit(EditArgs),
    /// Withdraw one of this node's posts.
    Withdraw {
        /// Post id (hex).
        id: String,
    },
    /// Mark one of this node's posts fulfilled.
    Fulfil {
        /// Post id (hex).
        id: String,
    },
}

/// `offer` and `request`.
#[derive(Args, Debug)]
pub struct PostArgs {
    /// One line saying what it is.
    title: String,
    /// Details.
    #[arg(long, default_value = "")]
    body: String,
    /// food, housing, transport, goods, skills, care, money or other
    #[arg(long, default_value = "other")]
    category: String,
    /// A tag, [a-z0-9-] (repeatable, at most 8)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Where, as a geohash of up to 6 characters (about 1 km)
    #[arg(long)]
    location: Option<String>,
    /// How many
    #[arg(long)]
    quantity: Option<u32>,
    /// How to reach you outside aidmesh
    #[arg(long)]
    contact: Option<String>,
    /// Circle [default: commons]
    #[arg(long)]
    circle: Option<String>,
    /// Lifetime, e.g. 3d or 12h (at most 90d)
    #[arg(long, default_value = "14d")]
    expires: String,
}

/// The post filters `list` and `alert add` share.
#[derive(Args, Debug)]
pub struct FilterArgs {
    /// offer or request
    #[arg(long)]
    pub kind: Option<String>,
    /// Category name
    #[arg(long)]
    pub category: Option<String>,
    /// Posts with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Posts in this geohash area (a prefix)
    #[arg(long)]
    pub near: Option<String>,
    /// Words that must start words of the title or body
    #[arg(long)]
    pub search: Option<String>,
    /// One circle
    #[arg(long)]
    pub circle: Option<String>,
}

/// `list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Include fulfilled and withdrawn posts
    #[arg(long)]
    all: bool,
    /// At most this many
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// `edit`.
#[derive(Args, Debug)]
pub struct EditArgs {
    /// Post id (hex).
    id: String,
    /// New title
    #[arg(long)]
    title: Option<String>,
    /// New body
    #[arg(long)]
    body: Option<String>,
    /// New category
    #[arg(long)]
    category: Option<String>,
    /// New tags (repeatable; replaces all)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// New location (geohash)
    #[arg(long)]
    location: Option<String>,
    /// New quantity
    #[arg(long)]
    quantity: Option<u32>,
    /// New contact
    #[arg(long)]
    contact: Option<String>,
    /// New lifetime from now, e.g. 3d
    #[arg(long)]
    expires: Option<String>,
}

/// Runs one of the post commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Offer(a) => publish(ctx, "offer", a).await,
        Command::Request(a) => publish(ctx, "request", a).await,
        Command::List(a) => list(ctx, a).await,
        Command::Show { id } => {
            let p = ctx.client()?.show(&id).await?;
            if ctx.json {
                print_json(&p)
            } else {
                print_post(&p);
                Ok(())
            }
        }
        Command::Edit(a) => edit(ctx, a).await,
        Command::Withdraw { id } => {
            let p = ctx.client()?.withdraw(&id).await?;
            if ctx.json {
                print_json(&p)
            } else {
                println!("withdrew {}", p.id);
                Ok(())
            }
        }
        Command::Fulfil { id } => {
            let p = ctx.client()?.fulfil(&id).await?;
            if ctx.json {
                print_json(&p)
            } else {
                println!("fulfilled {}", p.id);
                Ok(())
            }
        }
    }
}

fn draft(kind: &str, a: PostArgs) -> anyhow::Result<DraftJson> {
    // Check locally what can be checked, so a bad value never reaches the node.
    a.category
        .parse::<aidmesh::proto::Category>()
        .map_err(|e| anyhow::anyhow!("--category: {e}"))?;
    aidmesh::api::json::parse_duration_secs(&a.expires)
        .map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
    Ok(DraftJson {
        kind: Some(kind.into()),
        category: Some(a.category),
        title: a.title,
        body: a.body,
        tags: a.tags,
        location: a.location,
        quantity: a.quantity,
        contact: a.contact,
        circle: a.circle,
        expires_in: Some(a.expires),
    })
}

async fn publish(ctx: &Ctx, kind: &str, a: PostArgs) -> anyhow::Result<()> {
    let draft = draft(kind, a)?;
    let p = ctx.client()?.publish(&draft).await?;
    if ctx.json {
        print_json(&p)
    } else {
        println!("{}", p.id);
        Ok(())
    }
}

async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let mut q: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            q.push((k.to_string(), v));
        }
    };
    let f = a.filter;
    put("kind", f.kind);
    put("category", f.category);
    put("tag", f.tag);
    put("near", f.near);
    put("text", f.search);
    put("circle", f.circle);
    put("all", a.all.then(|| "true".to_string()));
    put("limit", Some(a.limit.to_string()));
    let posts = ctx.client()?.list(&q).await?;
    if ctx.json {
        print_json(&posts)
    } else {
        print_post_table(&posts);
        Ok(())
    }
}

async fn edit(ctx: &Ctx, a: EditArgs) -> anyhow::Result<()> {
    if let Some(cat) = &a.category {
        cat.parse::<aidmesh::proto::Category>()
            .map_err(|e| anyhow::anyhow!("--category: {e}"))?;
    }
    let edit = EditJson {
        category: a.category,
        title: a.title,
        body: a.body,
        tags: (!a.tags.is_empty()).then_some(a.tags),
        location: a.location,
        quantity: a.quantity,
        contact: a.contact,
        expires_in: a.expires,
    };
    let p = ctx.client()?.edit(&a.id, &edit).await?;
    if ctx.json {
        print_json(&p)
    } else {
        println!("{} revision {}", p.id, p.revision);
        Ok(())
    }
}
