//! The `aidmesh` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use aidmesh::{DataDir, Identity, Node, NodeConfig};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use libp2p::Multiaddr;

/// A peer-to-peer node for mutual aid: offers and requests shared without a server.
#[derive(Parser, Debug)]
#[command(name = "aidmesh", version, about, propagate_version = true)]
struct Cli {
    /// Where the node keeps its key, settings and posts [default: ~/.local/share/aidmesh]
    #[arg(long, global = true, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node until interrupted (Ctrl-C or SIGTERM).
    Run(RunArgs),
    /// Print this node's peer id (creates the identity on first use).
    Id,
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
            ExitCode::FAILURE
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
            config.config.validate()?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(run_node(config))
        }
    }
}

async fn run_node(config: NodeConfig) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    let status = node.status().await?;
    tracing::info!(peer_id = %status.peer_id, circles = ?status.circles, posts = status.posts, "aidmesh is running; Ctrl-C to stop");
    shutdown_signal().await?;
    tracing::info!("shutting down");
    node.shutdown().await?;
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
