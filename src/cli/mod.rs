//! The `aidmesh` command line: arguments (clap), one file per command group, and the
//! text output in [`output`].
//!
//! # Layout
//! - [`node`]: `run`, `id`, `status`, `peers`, `invite`, `join` — the node itself.
//! - [`posts`]: `offer`, `request`, `list`, `show`, `edit`, `withdraw`, `fulfil`.
//! - [`matches`]: `matches` and `watch`.
//! - [`alerts`]: `alert add|list|remove`.
//! - [`messages`]: `reply`, `inbox`, `thread`, `send`, `promise`, `decline`, `done`.
//! - [`moderation`]: `block`, `unblock`.
//! - [`transfer`]: `export`, `import`.
//! - [`ui`]: `ui` — a one-time login link to the node's web page.
//! - [`output`]: how posts, matches and status read on a terminal.
//!
//! # Adding a command group
//! Write `src/cli/<group>.rs` with a `#[derive(Subcommand)] pub enum Command` (its
//! variants are top-level subcommands, flattened into [`Command`]) and a
//! `pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()>`; then add one
//! variant to [`Command`] and one arm to [`dispatch`]. Commands that talk to the
//! running node get their client from [`Ctx::client`] and print JSON when
//! [`Ctx::json`] is set (through [`output::print_json`]).

use std::path::PathBuf;
use std::process::ExitCode;

use aidmesh::client::{self, ApiClient};
use aidmesh::DataDir;
use anyhow::Context;
use clap::{Parser, Subcommand};

pub mod alerts;
pub mod matches;
pub mod messages;
pub mod moderation;
pub mod node;
pub mod output;
pub mod posts;
pub mod transfer;
pub mod ui;

/// A peer-to-peer node for mutual aid: offers and requests shared without a server.
#[derive(Parser, Debug)]
#[command(name = "aidmesh", version, about, propagate_version = true)]
pub struct Cli {
    /// Where the node keeps its key, settings and posts [default: ~/.local/share/aidmesh]
    #[arg(long, global = true, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Print JSON instead of text (commands that talk to a running node)
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

/// Every subcommand, one flattened enum per command group (see the module docs).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The node itself.
    #[command(flatten)]
    Node(node::Command),
    /// Posting and reading posts.
    #[command(flatten)]
    Posts(posts::Command),
    /// Matches and the event stream.
    #[command(flatten)]
    Matches(matches::Command),
    /// Standing alerts: be told when a post that fits arrives.
    #[command(subcommand)]
    Alert(alerts::Command),
    /// Private replies and the handover.
    #[command(flatten)]
    Messages(messages::Command),
    /// Blocking authors.
    #[command(flatten)]
    Moderation(moderation::Command),
    /// Export and import.
    #[command(flatten)]
    Transfer(transfer::Command),
    /// The node's web page.
    #[command(flatten)]
    Ui(ui::Command),
}

/// What every command gets: where the node's files are and how to print.
pub struct Ctx {
    /// The node's data dir.
    pub data_dir: DataDir,
    /// Print JSON instead of text.
    pub json: bool,
}

impl Ctx {
    /// A client for the node running on this data dir.
    pub fn client(&self) -> Result<ApiClient, client::Error> {
        ApiClient::from_data_dir(&self.data_dir)
    }
}

/// Logs to stderr, filtered by `RUST_LOG`; by default `run` shows what the node does
/// and every other command only warnings.
pub fn init_logging(cli: &Cli) {
    let default = match cli.command {
        // Kademlia warns about a lone node having no peers yet.
        Command::Node(node::Command::Run(_)) => "info,libp2p_kad=error",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Runs one command and says how it went: 0, 1 with one `error:` line, or 2 when no
/// node runs for the data dir (a distinct code scripts can test for).
pub fn run(cli: Cli) -> ExitCode {
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<client::Error>() {
                Some(client::Error::NotRunning(_)) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        data_dir: DataDir::resolve(cli.data_dir)?,
        json: cli.json,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(dispatch(&ctx, cli.command))
}

/// One arm per command group.
async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Node(c) => node::run(ctx, c).await,
        Command::Posts(c) => posts::run(ctx, c).await,
        Command::Matches(c) => matches::run(ctx, c).await,
        Command::Alert(c) => alerts::run(ctx, c).await,
        Command::Messages(c) => messages::run(ctx, c).await,
        Command::Moderation(c) => moderation::run(ctx, c).await,
        Command::Transfer(c) => transfer::run(ctx, c).await,
        Command::Ui(c) => ui::run(ctx, c).await,
    }
}
