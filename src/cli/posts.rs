//! Posting and reading posts: `offer`, `request`, `list`, `show`, `edit`,
//! `withdraw`, `fulfil`, `reopen`, `repost`.
//!
//! Ids are any unique prefix of at least 8 characters (the node resolves them, and
//! names the candidates of an ambiguous one). `list` and `show` read the store
//! directly when no node runs.

use aidmesh::api::json::{DraftJson, EditJson, PostJson};
use aidmesh::listing::{Listing, Within, DEFAULT_WITHIN_KM};
use aidmesh::store::{Query, StatusFilter};
use anyhow::Context;
use clap::{Args, Subcommand};

use super::args::{self, PLACE_HELP};
use super::output::{print_json, print_post, print_post_table};
use super::{note, offline, Ctx, Source};

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
        /// Post id, or a unique prefix of it (at least 8 characters).
        id: String,
    },
    /// Change one of this node's posts (a new revision; none if nothing changes).
    Edit(EditArgs),
    /// Withdraw one of this node's posts.
    Withdraw {
        /// Post id, or a unique prefix of it (at least 8 characters).
        id: String,
    },
    /// Mark one of this node's posts fulfilled.
    Fulfil {
        /// Post id, or a unique prefix of it (at least 8 characters).
        id: String,
    },
    /// Open a fulfilled post of this node's again.
    Reopen {
        /// Post id, or a unique prefix of it (at least 8 characters).
        id: String,
    },
    /// Post a fresh copy of one of this node's posts (a new id and a new lifetime;
    /// the old one is withdrawn if still open). For a post near its 90-day limit.
    Repost {
        /// Post id, or a unique prefix of it (at least 8 characters).
        id: String,
        /// Lifetime of the new post, e.g. 3d or 12h (at most 90d)
        #[arg(long, default_value = "14d")]
        expires: String,
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
    /// A tag (repeatable, at most 8); "Warm Clothes" is saved as warm-clothes
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long, long_help = PLACE_HELP, help = "Where: a geohash (any case) or LAT,LON; see --help")]
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
    /// Posts with this tag (repeatable for `list`: posts with every one)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    #[arg(long, long_help = PLACE_HELP, help = "Posts near this place: a geohash (any case) or LAT,LON; see --help")]
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
    /// With --near: how far from it, in km (between cell centres, as matches reckon)
    #[arg(long, value_name = "KM", requires = "near")]
    within: Option<f64>,
    /// Only this node's own posts
    #[arg(long)]
    mine: bool,
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
    /// Post id, or a unique prefix of it (at least 8 characters).
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
    /// New location: a geohash (any case) or LAT,LON
    #[arg(long, conflicts_with = "no_location")]
    location: Option<String>,
    /// Remove the location
    #[arg(long)]
    no_location: bool,
    /// New quantity
    #[arg(long, conflicts_with = "no_quantity")]
    quantity: Option<u32>,
    /// Remove the quantity
    #[arg(long)]
    no_quantity: bool,
    /// New contact
    #[arg(long, conflicts_with = "no_contact")]
    contact: Option<String>,
    /// Remove the contact
    #[arg(long)]
    no_contact: bool,
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
        Command::Show { id } => show(ctx, &id).await,
        Command::Edit(a) => edit(ctx, a).await,
        Command::Withdraw { id } => status(ctx, &id, Change::Withdraw).await,
        Command::Fulfil { id } => status(ctx, &id, Change::Fulfil).await,
        Command::Reopen { id } => status(ctx, &id, Change::Reopen).await,
        Command::Repost { id, expires } => repost(ctx, &id, &expires).await,
    }
}

fn category(flag: &str, text: &str) -> anyhow::Result<String> {
    let lower = text.trim().to_ascii_lowercase();
    lower
        .parse::<aidmesh::proto::Category>()
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    Ok(lower)
}

fn draft(kind: &str, a: PostArgs) -> anyhow::Result<DraftJson> {
    // Check locally what can be checked, so a bad value never reaches the node.
    let category = category("category", &a.category)?;
    args::lifetime("expires", &a.expires)?;
    Ok(DraftJson {
        kind: Some(kind.into()),
        category: Some(category),
        title: a.title,
        body: a.body,
        tags: args::tags(a.tags)?,
        location: a
            .location
            .map(|l| args::place("location", &l))
            .transpose()?,
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

/// The listing `list`'s flags ask for; `own` is this node's author key.
fn listing(a: &ListArgs, own: Option<aidmesh::proto::AuthorKey>) -> anyhow::Result<Listing> {
    let f = &a.filter;
    let mut query = Query {
        kind: f
            .kind
            .as_deref()
            .map(|k| k.trim().to_ascii_lowercase().parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
        category: f
            .category
            .as_deref()
            .map(|c| category("category", c)?.parse().context("--category"))
            .transpose()?,
        circle: f.circle.clone(),
        text: f.search.clone(),
        limit: a.limit,
        ..Query::default()
    };
    if a.all {
        query.status = StatusFilter::Any;
    }
    if a.mine {
        // No identity yet: nothing can be this node's; an unknown key finds nothing.
        query.author = Some(own.unwrap_or(aidmesh::proto::AuthorKey([0; 32])));
    }
    let mut tags = args::tags(f.tags.clone())?.into_iter();
    query.tag = tags.next();
    let within = match &f.near {
        Some(near) => Some(Within {
            around: args::place("near", near)?,
            km: a.within.unwrap_or(DEFAULT_WITHIN_KM),
        }),
        None => None,
    };
    let listing = Listing {
        query,
        more_tags: tags.collect(),
        within,
    };
    listing.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(listing)
}

/// The API's URL parameters for a listing.
fn params(l: &Listing, own_peer: Option<&str>) -> Vec<(String, String)> {
    let q = &l.query;
    let mut p: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| p.push((k.to_string(), v));
    if let Some(k) = q.kind {
        put("kind", k.as_str().into());
    }
    if let Some(c) = q.category {
        put("category", c.as_str().into());
    }
    if let Some(c) = &q.circle {
        put("circle", c.clone());
    }
    if let Some(t) = &q.text {
        put("text", t.clone());
    }
    if let Some(t) = &q.tag {
        let all: Vec<String> = std::iter::once(t.clone())
            .chain(l.more_tags.iter().cloned())
            .collect();
        put("tag", all.join(","));
    }
    if let Some(w) = &l.within {
        put("near", w.around.clone());
        put("within_km", w.km.to_string());
    }
    if q.author.is_some() {
        put("author", own_peer.unwrap_or_default().to_string());
    }
    if q.status == StatusFilter::Any {
        put("all", "true".into());
    }
    put("limit", q.limit.to_string());
    p
}

async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let me = ctx.identity()?;
    let listing = listing(&a, me.as_ref().map(|i| i.author()))?;
    if a.mine && me.is_none() {
        note("this data dir has no identity yet, so no post is yours");
    }
    let me_peer = me.as_ref().map(|i| i.peer_id().to_string());
    let posts: Vec<PostJson> = match ctx.source().await? {
        Source::Node(c) => c.list(&params(&listing, me_peer.as_deref())).await?,
        Source::Disk(store) => offline::list(&store, &listing)?,
    };
    if ctx.json {
        print_json(&posts)
    } else {
        print_post_table(&posts, me_peer.as_deref(), a.all);
        Ok(())
    }
}

async fn show(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let p = match ctx.source().await? {
        Source::Node(c) => c.show(id).await?,
        Source::Disk(store) => offline::show(&store, id)?,
    };
    if ctx.json {
        print_json(&p)
    } else {
        print_post(&p);
        Ok(())
    }
}

async fn edit(ctx: &Ctx, a: EditArgs) -> anyhow::Result<()> {
    let category = a
        .category
        .as_deref()
        .map(|c| category("category", c))
        .transpose()?;
    if let Some(e) = &a.expires {
        args::lifetime("expires", e)?;
    }
    let mut clear = Vec::new();
    for (on, field) in [
        (a.no_location, "location"),
        (a.no_quantity, "quantity"),
        (a.no_contact, "contact"),
    ] {
        if on {
            clear.push(field.to_string());
        }
    }
    let edit = EditJson {
        category,
        title: a.title,
        body: a.body,
        tags: if a.tags.is_empty() {
            None
        } else {
            Some(args::tags(a.tags)?)
        },
        location: a
            .location
            .map(|l| args::place("location", &l))
            .transpose()?,
        quantity: a.quantity,
        contact: a.contact,
        expires_in: a.expires,
        clear,
    };
    let c = ctx.client()?;
    let before = c.show(&a.id).await?;
    let p = c.edit(&before.id, &edit).await?;
    if ctx.json {
        return print_json(&p);
    }
    if p.revision == before.revision {
        println!("nothing changed: {} stays at revision {}", p.id, p.revision);
    } else {
        println!("{} revision {}", p.id, p.revision);
    }
    Ok(())
}

/// The status changes.
#[derive(Clone, Copy)]
enum Change {
    Withdraw,
    Fulfil,
    Reopen,
}

async fn status(ctx: &Ctx, id: &str, change: Change) -> anyhow::Result<()> {
    let c = ctx.client()?;
    let before = c.show(id).await?;
    let p = match change {
        Change::Withdraw => c.withdraw(&before.id).await?,
        Change::Fulfil => c.fulfil(&before.id).await?,
        Change::Reopen => c.reopen(&before.id).await?,
    };
    if ctx.json {
        return print_json(&p);
    }
    let done = match change {
        Change::Withdraw => "withdrew",
        Change::Fulfil => "fulfilled",
        Change::Reopen => "reopened",
    };
    if p.revision == before.revision {
        println!(
            "nothing changed: {} is already {} (revision {})",
            p.id, p.status, p.revision
        );
    } else {
        println!("{done} {}", p.id);
    }
    Ok(())
}

async fn repost(ctx: &Ctx, id: &str, expires: &str) -> anyhow::Result<()> {
    args::lifetime("expires", expires)?;
    let c = ctx.client()?;
    let old = c.show(id).await?;
    let me = ctx.identity()?.map(|i| i.peer_id().to_string());
    if me.as_deref() != Some(old.author.as_str()) {
        anyhow::bail!(
            "{} is not this node's post; only your own posts can be reposted",
            old.id
        );
    }
    if old.status == aidmesh::proto::Status::Withdrawn {
        anyhow::bail!(
            "{} is withdrawn and kept no body or contact; post it anew with `aidmesh {}`",
            old.id,
            old.kind
        );
    }
    let draft = DraftJson {
        kind: Some(old.kind.as_str().into()),
        category: Some(old.category.as_str().into()),
        title: old.title.clone(),
        body: old.body.clone(),
        tags: old.tags.clone(),
        location: old.location.clone(),
        quantity: old.quantity,
        contact: old.contact.clone(),
        circle: Some(old.circle.clone()),
        expires_in: Some(expires.to_string()),
    };
    let new = c.publish(&draft).await?;
    let withdrawn = if old.status == aidmesh::proto::Status::Open {
        Some(c.withdraw(&old.id).await?)
    } else {
        None
    };
    if ctx.json {
        return print_json(&serde_json::json!({ "post": new, "withdrawn": withdrawn }));
    }
    println!("{}", new.id);
    if withdrawn.is_some() {
        note(&format!("the old post {} is withdrawn", old.id));
    }
    Ok(())
}
