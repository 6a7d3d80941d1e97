//! The `aidmesh` command line: arguments (clap), one file per command group, and the
//! text output in [`output`].
//!
//! # Layout
//! - [`node`]: `run`, `id`, `status`, `peers`, `invite`, `join` — the node itself.
//! - [`posts`]: `offer`, `request`, `list`, `show`, `edit`, `withdraw`, `fulfil`.
//! - [`matches`]: `matches` and `watch`.
//! - [`alerts`]: `alert add|list|remove`.
//! - [`circles`]: `circle join|leave|list`.
//! - [`messages`]: `reply`, `inbox`, `thread`, `send`, `promise`, `decline`, `done`.
//! - [`moderation`]: `block`, `unblock`.
//! - [`transfer`]: `export`, `import`.
//! - [`ui`]: `ui` — a one-time login link to the node's web page.
//! - [`output`]: how posts, matches and status read on a terminal.
//! - [`offline`]: reading the store directly when no node runs (`list`, `show`,
//!   `matches`, `export`).
//! - [`args`]: what flags take that clap does not know (places, tags, multiaddrs).
//!
//! # Adding a command group
//! Write `src/cli/<group>.rs` with a `#[derive(Subcommand)] pub enum Command` (its
//! variants are top-level subcommands, flattened into [`Command`]) and a
//! `pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()>`; then add one
//! variant to [`Command`] and one arm to [`dispatch`]. Commands that talk to the
//! running node get their client from [`Ctx::client`] (or, to read, [`Ctx::source`],
//! which falls back to the store on disk) and print JSON when [`Ctx::json`] is set
//! (through [`output::print_json`]); notes for the person go through [`note`].

use std::path::PathBuf;
use std::process::ExitCode;

use aidmesh::client::{self, ApiClient};
use aidmesh::DataDir;
use anyhow::Context;
use clap::{Parser, Subcommand};

pub mod alerts;
pub mod args;
pub mod circles;
pub mod matches;
pub mod messages;
pub mod moderation;
pub mod node;
pub mod offline;
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
    /// Circles: join, leave, list (with members connected).
    #[command(subcommand)]
    Circle(circles::Command),
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

/// Where a reading command gets its answers.
pub enum Source {
    /// The running node, through its API.
    Node(ApiClient),
    /// The store on disk, opened directly because no node runs.
    Disk(aidmesh::Store),
}

impl Ctx {
    /// A client for the node running on this data dir.
    pub fn client(&self) -> Result<ApiClient, client::Error> {
        ApiClient::from_data_dir(&self.data_dir)
    }

    /// The running node if there is one, else the store on disk (with a note saying
    /// so).
    pub async fn source(&self) -> anyhow::Result<Source> {
        let not_running = match self.client() {
            Ok(c) => match c.status().await {
                Ok(_) => return Ok(Source::Node(c)),
                Err(e @ client::Error::NotRunning(_)) => e,
                Err(e) => return Err(e.into()),
            },
            Err(e) => e,
        };
        if let Some(pid) = aidmesh::lock::holder(&self.data_dir) {
            let pid = pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"));
            anyhow::bail!(
                "the node running with this data dir ({pid}) does not answer on its API; \
                 wait for it to finish starting, or stop it"
            );
        }
        if !self.data_dir.db().exists() {
            return Err(not_running.into());
        }
        let store = offline::open_store(&self.data_dir)?;
        note(&format!(
            "no node is running; reading the posts stored in {}",
            self.data_dir.path().display()
        ));
        Ok(Source::Disk(store))
    }

    /// This node's identity, if it has one (never creates it).
    pub fn identity(&self) -> anyhow::Result<Option<aidmesh::Identity>> {
        let path = self.data_dir.identity_key();
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(
            aidmesh::Identity::load_or_create(&path).context("loading the node identity")?,
        ))
    }
}

/// Tells the person something worth knowing that is not the command's output: on
/// stderr, so that output stays clean for scripts.
pub fn note(text: &str) {
    eprintln!("note: {text}");
}

/// What to do about errors that have a remedy, said after the error itself.
fn advice(e: &anyhow::Error, db: Option<&std::path::Path>) -> Option<String> {
    use aidmesh::store::Error as S;
    let store_error = e.chain().find_map(|c| {
        c.downcast_ref::<S>()
            .or_else(|| match c.downcast_ref::<aidmesh::node::Error>() {
                Some(aidmesh::node::Error::Store(s)) => Some(s),
                _ => None,
            })
    })?;
    let db = db.map_or("the data dir's db".to_string(), |d| d.display().to_string());
    match store_error {
        // (A store in another format, or damaged at open, says what to do itself.)
        S::Corrupt(_) => Some(format!(
            "the post store cannot be read as it is. Stop the node, move {db} aside \
             (e.g. `mv {db} {db}.broken`) and start again: the key and settings stay, \
             and peers serve the posts again (your own only from peers that have them)."
        )),
        _ => None,
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
    let db = DataDir::resolve(cli.data_dir.clone()).ok().map(|d| d.db());
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(advice) = advice(&e, db.as_deref()) {
                eprintln!("{advice}");
            }
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
        Command::Circle(c) => circles::run(ctx, c).await,
        Command::Messages(c) => messages::run(ctx, c).await,
        Command::Moderation(c) => moderation::run(ctx, c).await,
        Command::Transfer(c) => transfer::run(ctx, c).await,
        Command::Ui(c) => ui::run(ctx, c).await,
    }
}
