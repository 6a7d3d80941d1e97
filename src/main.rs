//! The `aidmesh` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use aidmesh::{DataDir, Identity};
use anyhow::Context;
use clap::{Parser, Subcommand};

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
    /// Print this node's peer id (creates the identity on first use).
    Id,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
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
        }
    }
    Ok(())
}
