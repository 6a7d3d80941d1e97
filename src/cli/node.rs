//! The node itself: `run`, `id`, `status`, `peers`, `invite`, `join`.

use std::net::SocketAddr;

use aidmesh::client;
use aidmesh::{DataDir, Identity, Node, NodeConfig};
use anyhow::Context;
use clap::{Args, Subcommand};
use libp2p::Multiaddr;

use super::output::{print_json, print_status};
use super::Ctx;

/// The node's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node until interrupted (Ctrl-C or SIGTERM).
    Run(RunArgs),
    /// Print this node's peer id (creates the identity on first use).
    Id,
    /// Show connected peers.
    Peers,
    /// Show the node's status: reachability, addresses, peers, posts.
    Status,
    /// Print an invite code (and a QR code on a terminal) others can join with.
    Invite {
        /// The circle to invite to, one this node is in [default: the node's first circle]
        #[arg(long)]
        circle: Option<String>,
    },
    /// Join the circle and peers of an invite code (joining the circle if the node is
    /// not in it yet): saved to config.toml, and the running node (if any) joins at once.
    Join {
        /// The code (`AIDMESH1-...`).
        code: String,
    },
}

/// `aidmesh run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Listen on this address (repeatable) [default: /ip4/0.0.0.0/tcp/7651 and /ip4/0.0.0.0/udp/7651/quic-v1]
    #[arg(long, value_name = "MULTIADDR", value_parser = super::args::multiaddr)]
    listen: Vec<Multiaddr>,
    /// Join the network through this peer, e.g. /ip4/203.0.113.5/tcp/7651/p2p/12D3... (repeatable; added to config.toml's)
    #[arg(long, value_name = "MULTIADDR", value_parser = super::args::multiaddr)]
    bootstrap: Vec<Multiaddr>,
    /// Do not look for peers on the local network
    #[arg(long)]
    no_mdns: bool,
    /// Also be in this circle for this run (repeatable; added to config.toml's circles, not saved — `aidmesh circle join` saves)
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
    #[arg(long, value_name = "MULTIADDR", value_parser = super::args::multiaddr)]
    external_address: Vec<Multiaddr>,
    /// Join the circle and peers of this invite code first (saved to config.toml)
    #[arg(long, value_name = "CODE")]
    join: Option<String>,
}

/// Runs one of the node's commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Id => {
            ctx.data_dir.create()?;
            let identity = Identity::load_or_create(&ctx.data_dir.identity_key())
                .context("loading the node identity")?;
            println!("{}", identity.peer_id());
            Ok(())
        }
        Command::Run(args) => run_command(ctx, args).await,
        Command::Join { code } => join_command(ctx, &code).await,
        Command::Peers => peers_command(ctx).await,
        Command::Status => {
            let s = ctx.client()?.status().await?;
            if ctx.json {
                print_json(&s)
            } else {
                print_status(&s);
                Ok(())
            }
        }
        Command::Invite { circle } => invite_command(ctx, circle.as_deref()).await,
    }
}

async fn run_command(ctx: &Ctx, args: RunArgs) -> anyhow::Result<()> {
    let data_dir = &ctx.data_dir;
    data_dir.create()?;
    // Held until the node has stopped: one node per data dir.
    let _lock = aidmesh::lock::acquire(data_dir)?;
    if let Some(code) = &args.join {
        if aidmesh::invite::read(code)?.voucher.is_some() {
            anyhow::bail!(
                "this invite is to a closed circle: its admission is redeemed by the running                  node; start the node with `aidmesh run`, then use `aidmesh join CODE`"
            );
        }
        join_config(data_dir, code)?;
    }
    let mut config = NodeConfig::load(data_dir.clone())?;
    let net = &mut config.config.network;
    if !args.listen.is_empty() {
        net.listen = args.listen;
    }
    net.bootstrap.extend(args.bootstrap);
    if args.no_mdns {
        net.mdns = false;
    }
    for c in args.circle {
        if !net.circles.contains(&c) {
            net.circles.push(c);
        }
    }
    if args.kademlia_server {
        net.kademlia_server = Some(true);
    }
    net.external_addresses.extend(args.external_address);
    if args.relay {
        config.config.relay.serve = true;
    }
    config.config.validate()?;
    let default_dir = DataDir::platform_default().ok();
    let dir_flag = if default_dir.as_ref() == Some(data_dir) {
        String::new()
    } else {
        format!("--data-dir {} ", data_dir.path().display())
    };
    run_node(config, args.api, args.api_public, &dir_flag).await
}

/// What to do when the API address is taken, in one sentence.
fn api_error(e: aidmesh::api::Error) -> anyhow::Error {
    match e {
        aidmesh::api::Error::Bind { addr, source }
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            anyhow::anyhow!(
                "the API address {addr} is already in use (another aidmesh node, or another \
                 program); give this node another one with --api, e.g. --api 127.0.0.1:0 for any free port"
            )
        }
        other => other.into(),
    }
}

/// The first lines `run` prints: where others reach this node and what to do next.
async fn banner(node: &aidmesh::NodeHandle, api: SocketAddr, dir_flag: &str) {
    // The listen addresses appear a moment after start: wait for one, briefly.
    let mut status = node.status().await.ok();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while status.as_ref().is_some_and(|s| s.listen_addrs.is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        status = node.status().await.ok();
    }
    let Some(status) = status else { return };
    let loopback = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
            libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    let share = status
        .listen_addrs
        .iter()
        .find(|a| !loopback(a))
        .or(status.listen_addrs.first());
    println!("aidmesh is running as {}", status.peer_id);
    match share {
        Some(a) => println!("  others on your network can connect to: {a}"),
        None => println!("  not listening for peers yet"),
    }
    println!("  invite someone:     aidmesh {dir_flag}invite");
    println!(
        "  post an offer:      aidmesh {dir_flag}offer \"Spare bike\" --category goods --location <geohash or LAT,LON>"
    );
    println!("  see what is around: aidmesh {dir_flag}list    (local API on {api})");
    println!("  stop with Ctrl-C");
}

async fn run_node(
    config: NodeConfig,
    api: SocketAddr,
    api_public: bool,
    dir_flag: &str,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    // Listen for signals before saying "running": a SIGTERM sent the moment the node
    // says so must stop it cleanly, not kill it.
    let stop = shutdown_signal().await?;
    let node = Node::start(config).await?;
    let server = match aidmesh::api::serve(node.clone(), api, api_public, &data_dir).await {
        Ok(s) => s,
        Err(e) => {
            node.shutdown().await?;
            return Err(api_error(e));
        }
    };
    banner(&node, server.addr(), dir_flag).await;
    let status = node.status().await?;
    tracing::info!(peer_id = %status.peer_id, api = %server.addr(), circles = ?status.circles, posts = status.posts, "aidmesh is running; Ctrl-C to stop");
    stop.await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    node.shutdown().await?;
    Ok(())
}

/// Installs the Ctrl-C and SIGTERM handlers now; the future ends at the first signal.
async fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>>
{
    #[cfg(unix)]
    let mut term = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?
    };
    // `ctrl_c` installs its handler on first poll: poll it once now.
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let _ = libp2p::futures::poll!(&mut ctrl_c);
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            r = &mut ctrl_c => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        ctrl_c.await.context("waiting for Ctrl-C")?;
        Ok(())
    })
}

/// Reads an invite code and records its circle and peers in the data dir's config.
/// A bad code or config is an error and changes nothing.
fn join_config(data_dir: &DataDir, code: &str) -> anyhow::Result<aidmesh::invite::Joining> {
    let joining = aidmesh::invite::read(code)?;
    data_dir.create()?;
    aidmesh::invite::save(&data_dir.config_file(), &joining)?;
    Ok(joining)
}

async fn join_command(ctx: &Ctx, code: &str) -> anyhow::Result<()> {
    if aidmesh::invite::read(code)?.voucher.is_some() {
        // The admission is redeemed (signed) by the node: it must be running.
        let c = ctx.client().map_err(|_| {
            anyhow::anyhow!(
                "this invite is to a closed circle and is redeemed by the running node;                  start it with `aidmesh run` first"
            )
        })?;
        c.status().await.map_err(|_| {
            anyhow::anyhow!(
                "this invite is to a closed circle and is redeemed by the running node;                  start it with `aidmesh run` first"
            )
        })?;
    }
    let joining = join_config(&ctx.data_dir, code)?;
    let joined = match ctx.client() {
        Ok(c) => c.join(code).await,
        Err(e) => Err(e),
    };
    let live = match joined {
        Ok(j) => Some(j),
        Err(client::Error::NotRunning(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if ctx.json {
        return print_json(&serde_json::json!({
            "circle": joining.circle,
            "bootstrap": joining.bootstrap,
            "running_node_joined": live.is_some(),
        }));
    }
    println!(
        "circle {} and {} peer address(es) saved to {}",
        joining.circle,
        joining.bootstrap.len(),
        ctx.data_dir.config_file().display()
    );
    match live {
        Some(j) => println!(
            "the running node joined and dialled {} address(es)",
            j.dialled
        ),
        None => println!("start the node with `aidmesh run` to connect"),
    }
    Ok(())
}

async fn peers_command(ctx: &Ctx) -> anyhow::Result<()> {
    let peers = ctx.client()?.peers().await?;
    if ctx.json {
        return print_json(&peers);
    }
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
    Ok(())
}

async fn invite_command(ctx: &Ctx, circle: Option<&str>) -> anyhow::Result<()> {
    let invite = ctx.client()?.invite(circle).await?;
    if ctx.json {
        return print_json(&invite);
    }
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
    Ok(())
}
