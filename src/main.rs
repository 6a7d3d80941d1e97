//! The `aidmesh` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use std::net::SocketAddr;

use aidmesh::api::json::{DraftJson, EditJson, PostJson};
use aidmesh::client::{self, ApiClient};
use aidmesh::{DataDir, Identity, Node, NodeConfig};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use libp2p::futures::StreamExt;
use libp2p::Multiaddr;

/// A peer-to-peer node for mutual aid: offers and requests shared without a server.
#[derive(Parser, Debug)]
#[command(name = "aidmesh", version, about, propagate_version = true)]
struct Cli {
    /// Where the node keeps its key, settings and posts [default: ~/.local/share/aidmesh]
    #[arg(long, global = true, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Print JSON instead of text (commands that talk to a running node)
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node until interrupted (Ctrl-C or SIGTERM).
    Run(RunArgs),
    /// Print this node's peer id (creates the identity on first use).
    Id,
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
    /// Show connected peers.
    Peers,
    /// Show the node's status: reachability, addresses, peers, posts.
    Status,
    /// Print an invite code (and a QR code on a terminal) others can join with.
    Invite {
        /// The circle to invite to [default: the node's first circle]
        #[arg(long)]
        circle: Option<String>,
    },
    /// Join the circle and peers of an invite code: saved to config.toml, and the
    /// running node (if any) joins at once.
    Join {
        /// The code (`AIDMESH1-...`).
        code: String,
    },
    /// Stream events (new and changed posts, peers, matches) until interrupted.
    Watch {
        /// Only matches: arriving posts that fit an alert or match one of your posts
        #[arg(long)]
        matches: bool,
    },
    /// Show the best matches for each of this node's open posts (or for one post).
    Matches(MatchesArgs),
    /// Standing alerts: be told when a post that fits arrives.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Delete an author's posts and refuse them from now on.
    Block {
        /// The author's peer id.
        author: String,
    },
    /// Accept an author's posts again.
    Unblock {
        /// The author's peer id.
        author: String,
    },
    /// Write every stored post as JSON lines of signed posts (verifiable anywhere).
    Export,
    /// Import posts from a file written by `export`; each is verified.
    Import {
        /// The file ("-" for standard input).
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
struct PostArgs {
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
struct FilterArgs {
    /// offer or request
    #[arg(long)]
    kind: Option<String>,
    /// Category name
    #[arg(long)]
    category: Option<String>,
    /// Posts with this tag
    #[arg(long)]
    tag: Option<String>,
    /// Posts in this geohash area (a prefix)
    #[arg(long)]
    near: Option<String>,
    /// Words that must start words of the title or body
    #[arg(long)]
    search: Option<String>,
    /// One circle
    #[arg(long)]
    circle: Option<String>,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Include fulfilled and withdrawn posts
    #[arg(long)]
    all: bool,
    /// At most this many
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Args, Debug)]
struct MatchesArgs {
    /// Matches shown per post
    #[arg(long, default_value_t = 5)]
    limit: usize,
    /// Only the matches for this post (hex id; any post, not only yours)
    #[arg(long, value_name = "ID")]
    post: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AlertCommand {
    /// Save an alert with the filters of `list`; prints its id.
    Add(FilterArgs),
    /// Show the saved alerts.
    List,
    /// Delete an alert.
    Remove {
        /// The alert id.
        id: String,
    },
}

#[derive(Args, Debug)]
struct EditArgs {
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

#[derive(Args, Debug)]
struct RunArgs {
    /// Listen on this address (repeatable) [default: /ip4/0.0.0.0/tcp/7651 and /ip4/0.0.0.0/udp/7651/quic-v1]
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Join the network through this peer, e.g. /ip4/203.0.113.5/tcp/7651/p2p/12D3... (repeatable; added to config.toml's)
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<Multiaddr>,
    /// Do not look for peers on the local network
    #[arg(long)]
    no_mdns: bool,
    /// Subscribe to this circle (repeatable) [default: commons]
    #[arg(long, value_name = "NAME")]
    circle: Vec<String>,
    /// Answer DHT queries for others (for a public node, e.g. on a VPS)
    #[arg(long)]
    kademlia_server: bool,
    /// Serve the local API here (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = aidmesh::api::DEFAULT_ADDR)]
    api: SocketAddr,
    /// Allow the API on a non-loopback address (the token is still required)
    #[arg(long)]
    api_public: bool,
    /// Serve as a relay for nodes behind NAT (a public node, e.g. on a VPS)
    #[arg(long)]
    relay: bool,
    /// An address others reach this node on, e.g. /ip4/203.0.113.5/tcp/7651 (repeatable; for a VPS or a port forward)
    #[arg(long, value_name = "MULTIADDR")]
    external_address: Vec<Multiaddr>,
    /// Join the circle and peers of this invite code first (saved to config.toml)
    #[arg(long, value_name = "CODE")]
    join: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                let default = match cli.command {
                    // Kademlia warns about a lone node having no peers yet.
                    Command::Run(_) => "info,libp2p_kad=error",
                    _ => "warn",
                };
                tracing_subscriber::EnvFilter::new(default)
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // No node to talk to: a distinct code scripts can test for.
            match e.downcast_ref::<client::Error>() {
                Some(client::Error::NotRunning(_)) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = DataDir::resolve(cli.data_dir)?;
    match cli.command {
        Command::Id => {
            data_dir.create()?;
            let identity = Identity::load_or_create(&data_dir.identity_key())
                .context("loading the node identity")?;
            println!("{}", identity.peer_id());
            Ok(())
        }
        Command::Run(args) => {
            if let Some(code) = &args.join {
                join_config(&data_dir, code)?;
            }
            let mut config = NodeConfig::load(data_dir)?;
            let net = &mut config.config.network;
            if !args.listen.is_empty() {
                net.listen = args.listen;
            }
            net.bootstrap.extend(args.bootstrap);
            if args.no_mdns {
                net.mdns = false;
            }
            if !args.circle.is_empty() {
                net.circles = args.circle;
            }
            if args.kademlia_server {
                net.kademlia_server = Some(true);
            }
            net.external_addresses.extend(args.external_address);
            if args.relay {
                config.config.relay.serve = true;
            }
            config.config.validate()?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(run_node(config, args.api, args.api_public))
        }
        Command::Join { code } => {
            let joining = join_config(&data_dir, &code)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let live = runtime.block_on(async {
                let joined = match ApiClient::from_data_dir(&data_dir) {
                    Ok(c) => c.join(&code).await,
                    Err(e) => Err(e),
                };
                match joined {
                    Ok(j) => Ok(Some(j)),
                    Err(client::Error::NotRunning(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })?;
            if cli.json {
                print_json(&serde_json::json!({
                    "circle": joining.circle,
                    "bootstrap": joining.bootstrap,
                    "running_node_joined": live.is_some(),
                }))?;
            } else {
                println!(
                    "circle {} and {} peer address(es) saved to {}",
                    joining.circle,
                    joining.bootstrap.len(),
                    data_dir.config_file().display()
                );
                match live {
                    Some(j) => println!(
                        "the running node joined and dialled {} address(es)",
                        j.dialled
                    ),
                    None => println!("start the node with `aidmesh run` to connect"),
                }
            }
            Ok(())
        }
        command => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(client_command(&data_dir, command, cli.json))
        }
    }
}

/// Reads an invite code and records its circle and peers in the data dir's config.
/// A bad code or config is an error and changes nothing.
fn join_config(data_dir: &DataDir, code: &str) -> anyhow::Result<aidmesh::invite::Joining> {
    let joining = aidmesh::invite::read(code)?;
    data_dir.create()?;
    aidmesh::invite::save(&data_dir.config_file(), &joining)?;
    Ok(joining)
}

async fn run_node(config: NodeConfig, api: SocketAddr, api_public: bool) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let node = Node::start(config).await?;
    let server = match aidmesh::api::serve(node.clone(), api, api_public, &data_dir).await {
        Ok(s) => s,
        Err(e) => {
            node.shutdown().await?;
            return Err(e.into());
        }
    };
    let status = node.status().await?;
    tracing::info!(peer_id = %status.peer_id, api = %server.addr(), circles = ?status.circles, posts = status.posts, "aidmesh is running; Ctrl-C to stop");
    shutdown_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    node.shutdown().await?;
    Ok(())
}

fn print_status(s: &serde_json::Value) {
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = &s["reachability"];
    println!("peer id      {}", s["peer_id"].as_str().unwrap_or("?"));
    println!("version      {}", s["version"].as_str().unwrap_or("?"));
    println!("posts        {}", s["posts"]);
    println!("circles      {}", strs(&s["circles"]).join(", "));
    println!(
        "reachability {}{}",
        r["status"].as_str().unwrap_or("unknown"),
        if r["relay_server"].as_bool() == Some(true) {
            " (serving as a relay)"
        } else {
            ""
        }
    );
    println!(
        "peers        {} direct, {} through a relay",
        r["peers_direct"], r["peers_relayed"]
    );
    match r["last_seen_by_peer"]["at"].as_u64() {
        Some(at) => println!(
            "posts seen   by {} at {}",
            r["last_seen_by_peer"]["peer_id"].as_str().unwrap_or("?"),
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(at)
            )
        ),
        None => println!("posts seen   not yet confirmed by any peer"),
    }
    let direct = strs(&r["direct_addrs"]);
    let relayed = strs(&r["relayed_addrs"]);
    if direct.is_empty() && relayed.is_empty() {
        println!("reachable at (nothing confirmed yet)");
    } else {
        println!("reachable at");
        for a in direct.iter().chain(&relayed) {
            println!("  {a}");
        }
    }
    println!("listening on");
    for a in strs(&s["listen_addrs"]) {
        println!("  {a}");
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn print_post(p: &PostJson) {
    println!("{} {} · {} · {}", p.kind, p.category, p.status, p.title);
    println!("  id        {}", p.id);
    println!("  author    {}", p.author);
    println!("  circle    {}   revision {}", p.circle, p.revision);
    if !p.body.is_empty() {
        for line in p.body.lines() {
            println!("  | {line}");
        }
    }
    if !p.tags.is_empty() {
        println!("  tags      {}", p.tags.join(", "));
    }
    if let Some(l) = &p.location {
        println!("  location  {l}");
    }
    if let Some(q) = p.quantity {
        println!("  quantity  {q}");
    }
    if let Some(c) = &p.contact {
        println!("  contact   {c}");
    }
    println!("  updated   {}   expires {}", p.updated_at, p.expires_at);
}

fn post_args(kind: &str, a: PostArgs) -> anyhow::Result<DraftJson> {
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

async fn client_command(data_dir: &DataDir, command: Command, json: bool) -> anyhow::Result<()> {
    let c = ApiClient::from_data_dir(data_dir)?;
    match command {
        command @ (Command::Offer(_) | Command::Request(_)) => {
            let (kind, a) = match command {
                Command::Offer(a) => ("offer", a),
                Command::Request(a) => ("request", a),
                _ => unreachable!("matched offer or request above"),
            };
            let p = c.publish(&post_args(kind, a)?).await?;
            if json {
                print_json(&p)?
            } else {
                println!("{}", p.id)
            }
        }
        Command::List(a) => {
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
            let posts = c.list(&q).await?;
            if json {
                print_json(&posts)?;
            } else if posts.is_empty() {
                println!("no posts");
            } else {
                println!(
                    "{:<12}  {:<7}  {:<9}  {:<9}  {:<6}  TITLE",
                    "ID", "KIND", "CATEGORY", "STATUS", "WHERE"
                );
                for p in &posts {
                    println!(
                        "{:<12}  {:<7}  {:<9}  {:<9}  {:<6}  {}",
                        short(&p.id),
                        p.kind.as_str(),
                        p.category.as_str(),
                        p.status.as_str(),
                        p.location.as_deref().unwrap_or("-"),
                        p.title
                    );
                }
            }
        }
        Command::Show { id } => {
            let p = c.show(&id).await?;
            if json {
                print_json(&p)?
            } else {
                print_post(&p)
            }
        }
        Command::Edit(a) => {
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
            let p = c.edit(&a.id, &edit).await?;
            if json {
                print_json(&p)?
            } else {
                println!("{} revision {}", p.id, p.revision)
            }
        }
        Command::Withdraw { id } => {
            let p = c.withdraw(&id).await?;
            if json {
                print_json(&p)?
            } else {
                println!("withdrew {}", p.id)
            }
        }
        Command::Fulfil { id } => {
            let p = c.fulfil(&id).await?;
            if json {
                print_json(&p)?
            } else {
                println!("fulfilled {}", p.id)
            }
        }
        Command::Peers => {
            let peers = c.peers().await?;
            if json {
                print_json(&peers)?;
            } else {
                let list = peers.as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no peers connected");
                }
                for p in list {
                    println!(
                        "{}  {}{}",
                        p["peer_id"].as_str().unwrap_or("?"),
                        p["address"].as_str().unwrap_or("?"),
                        if p["relayed"] == true {
                            "  (through a relay)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        Command::Status => {
            let s = c.status().await?;
            if json {
                print_json(&s)?;
            } else {
                print_status(&s);
            }
        }
        Command::Invite { circle } => {
            let invite = c.invite(circle.as_deref()).await?;
            if json {
                print_json(&invite)?;
            } else {
                println!("{}", invite.code);
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    if let Ok(qr) = qrcode::QrCode::new(invite.code.as_bytes()) {
                        let art = qr
                            .render::<qrcode::render::unicode::Dense1x2>()
                            .quiet_zone(true)
                            .build();
                        println!("\n{art}");
                    }
                    println!(
                        "circle {} through {} address(es); join with: aidmesh join <code>",
                        invite.circle,
                        invite.addrs.len()
                    );
                }
            }
        }
        Command::Watch { matches } => {
            let mut events = std::pin::pin!(c.events().await?);
            while let Some(e) = events.next().await {
                let (name, data) = e?;
                if matches && name != "match" {
                    continue;
                }
                if json {
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
        }
        Command::Matches(a) => matches_command(&c, a, json).await?,
        Command::Alert(a) => alert_command(&c, a, json).await?,
        Command::Block { author } => {
            let r = c.block(&author).await?;
            if json {
                print_json(&r)?
            } else {
                println!("blocked {author}; removed {} posts", r["removed_posts"])
            }
        }
        Command::Unblock { author } => {
            let r = c.unblock(&author).await?;
            if json {
                print_json(&r)?
            } else {
                println!("unblocked {author}")
            }
        }
        Command::Export => print!("{}", c.export().await?),
        Command::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let r = c.import(text).await?;
            if json {
                print_json(&r)?
            } else {
                println!(
                    "{} new, {} already known, {} invalid",
                    r.new, r.old, r.invalid
                )
            }
        }
        Command::Run(_) | Command::Id | Command::Join { .. } => {}
    }
    Ok(())
}

fn print_match(m: &aidmesh::api::json::MatchJson) {
    println!(
        "  {:>5.2}  {:<7}  {}  [{}]  — {}",
        m.score,
        m.post.kind.as_str(),
        m.post.title,
        short(&m.post.id),
        m.reasons.join(", ")
    );
}

fn print_match_event(data: &serde_json::Value) {
    let post = &data["post"];
    let target = &data["target"];
    let what = match target["type"].as_str() {
        Some("alert") => format!("alert {}", target["id"]),
        _ => format!(
            "your post \"{}\" [{}]",
            target["title"].as_str().unwrap_or("?"),
            short(target["id"].as_str().unwrap_or("?"))
        ),
    };
    let reasons: Vec<&str> = data["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    println!(
        "match for {what}: {} {} — {} [{}] ({})",
        post["kind"].as_str().unwrap_or("?"),
        post["category"].as_str().unwrap_or("?"),
        post["title"].as_str().unwrap_or("?"),
        short(post["id"].as_str().unwrap_or("?")),
        reasons.join(", ")
    );
}

async fn matches_command(c: &ApiClient, a: MatchesArgs, json: bool) -> anyhow::Result<()> {
    if let Some(id) = a.post {
        let found = c.post_matches(&id, a.limit).await?;
        if json {
            print_json(&found)?;
        } else if found.is_empty() {
            println!("no matches");
        } else {
            found.iter().for_each(print_match);
        }
        return Ok(());
    }
    let all = c.matches(a.limit).await?;
    if json {
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

async fn alert_command(c: &ApiClient, a: AlertCommand, json: bool) -> anyhow::Result<()> {
    match a {
        AlertCommand::Add(f) => {
            // Names are checked here so a typo never reaches the node; the rest (tag,
            // near, circle) by the node, with the same errors as `list`.
            let filter = aidmesh::alerts::AlertFilter {
                kind: f
                    .kind
                    .map(|k| k.parse())
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
                category: f
                    .category
                    .map(|k| k.parse())
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--category: {e}"))?,
                tag: f.tag,
                near: f.near,
                search: f.search,
                circle: f.circle,
            };
            let alert = c.add_alert(&filter).await.map_err(|e| match e {
                // Say which flag was wrong, in the flag's own name.
                client::Error::Api {
                    field: Some(field),
                    message,
                    ..
                } => anyhow::anyhow!("--{field}: {message}"),
                other => other.into(),
            })?;
            if json {
                print_json(&alert)?
            } else {
                println!("{}", alert.id)
            }
        }
        AlertCommand::List => {
            let alerts = c.alerts().await?;
            if json {
                print_json(&alerts)?;
            } else if alerts.is_empty() {
                println!("no alerts");
            } else {
                for a in &alerts {
                    println!("{:<6}  {}", a.id, a.filter.reasons().join(", "));
                }
            }
        }
        AlertCommand::Remove { id } => {
            let alert = c.remove_alert(&id).await?;
            if json {
                print_json(&alert)?
            } else {
                println!("removed alert {}", alert.id)
            }
        }
    }
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
