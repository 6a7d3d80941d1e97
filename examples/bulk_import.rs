//! Posts many offers at once from a CSV file to a running node, through its local API
//! (with the same CSV reader as `aidmesh import`, `aidmesh::transfer`), and reports what was posted and, for each row that failed, its line number and the
//! reason (the node's error names the field at fault).
//!
//! The file starts with a header naming its columns, in any order:
//! `title,kind,category,body,tags,location,quantity,contact,expires,circle`. Only
//! `title` is required (`kind` defaults to offer); an empty cell means "not set". `tags` are separated by `;`, `expires` is a
//! lifetime such as `7d` or `12h`. A field holding commas, quotes or line breaks is
//! written in double quotes, with quotes inside it doubled (`"Bring a ""big"" bag"`).
//! See `examples/offers.csv`, whose fourth offer is deliberately invalid.
//!
//! Run a node, then import:
//!
//! ```sh
//! cargo run -- --data-dir /tmp/exnode run --no-mdns --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 &
//! cargo run --example bulk_import -- --data-dir /tmp/exnode examples/offers.csv
//! cargo run --example bulk_import -- --dry-run examples/offers.csv   # check only, no node needed
//! cargo run --example bulk_import -- --help
//! ```
//!
//! `--dry-run` checks every row against the same rules the node applies, offline,
//! and posts nothing. The data dir is `--data-dir`, else `$AIDMESH_DATA_DIR`, else the
//! default one. Logs go to stderr, filtered by `RUST_LOG`. Exits 0 when every row was
//! posted (or, with `--dry-run`, is valid), non-zero when any row failed or the file
//! cannot be read; a node that cannot be reached stops the import at once.

use std::path::PathBuf;

use aidmesh::api::json::{parse_duration_secs, DraftJson};
use aidmesh::client::{self, ApiClient};
use aidmesh::proto::{Category, Kind};
use aidmesh::{transfer, DataDir, Draft, Identity};
use anyhow::{bail, Context};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Posts the offers in a CSV file to a running aidmesh node.
#[derive(Parser, Debug)]
struct Args {
    /// The running node's data dir [default: ~/.local/share/aidmesh]
    #[arg(long, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The CSV file: a header row, then one offer per row
    file: PathBuf,

    /// Circle to post in [default: commons]
    #[arg(long)]
    circle: Option<String>,

    /// Only check the rows (with the node's rules, offline); post nothing
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let file = args.file.display();
    // The same reader as `aidmesh import`: one parser, one set of column rules.
    let rows = transfer::read_csv(&text, "offer", args.circle.as_deref())
        .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let total = rows.len();

    let client = if args.dry_run {
        None
    } else {
        let data_dir = DataDir::resolve(args.data_dir.clone())?;
        Some(ApiClient::from_data_dir(&data_dir)?)
    };
    // Dry runs sign nothing; a throwaway author lets the node's own checks run offline.
    let scratch = Identity::generate();

    let mut ok = 0;
    let mut failures = Vec::new();
    for row in rows {
        let line = row.line;
        for (from, to) in &row.renamed_tags {
            println!("line {line}: note: tag {from:?} is saved as {to}");
        }
        let draft = match row.draft {
            Ok(d) => d,
            Err(reason) => {
                println!("line {line}: skipped: {reason}");
                failures.push(line);
                continue;
            }
        };
        let title = draft.title.clone();
        let outcome = match &client {
            None => check_offline(&draft, &scratch).map(|()| "valid".to_string()),
            Some(c) => match c.publish(&draft).await {
                Ok(post) => Ok(format!("posted {}", post.id)),
                // The node checked the offer and refused it: its message names the field.
                Err(client::Error::Api { message, field, .. }) => Err(match field {
                    Some(f) if !message.contains(&f) => format!("{f}: {message}"),
                    _ => message,
                }),
                // No node, or the connection broke: no point trying the other rows.
                Err(e) => return Err(e).with_context(|| format!("posting line {line} of {file}")),
            },
        };
        match outcome {
            Ok(what) => {
                println!("line {line}: {what}  {title:?}");
                ok += 1;
            }
            Err(reason) => {
                println!("line {line}: refused: {reason}");
                failures.push(line);
            }
        }
    }

    let verb = if args.dry_run { "valid" } else { "posted" };
    println!("{ok} of {total} offers {verb}, {} failed", failures.len());
    if !failures.is_empty() {
        let lines: Vec<String> = failures.iter().map(|l| l.to_string()).collect();
        bail!(
            "{} row(s) of {file} failed, on line(s) {}",
            failures.len(),
            lines.join(", ")
        );
    }
    Ok(())
}

/// Checks a draft the way the node would, without a node: the names and the lifetime
/// as the API parses them, then every post rule.
fn check_offline(d: &DraftJson, scratch: &Identity) -> Result<(), String> {
    let category = match d.category.as_deref() {
        Some(c) => c.parse().map_err(|e| format!("category: {e}"))?,
        None => Category::Other,
    };
    let expires_in_secs = d
        .expires_in
        .as_deref()
        .map(parse_duration_secs)
        .transpose()
        .map_err(|e| format!("expires_in: {e}"))?;
    let kind = match d.kind.as_deref() {
        Some(k) => k.parse().map_err(|e| format!("kind: {e}"))?,
        None => Kind::Offer,
    };
    let draft = Draft {
        body: d.body.clone(),
        tags: d.tags.clone(),
        location: d.location.clone(),
        quantity: d.quantity,
        contact: d.contact.clone(),
        circle: d.circle.clone(),
        expires_in_secs,
        ..Draft::new(kind, category, d.title.as_str())
    };
    draft
        .into_post(scratch.author(), aidmesh::clock::now_ms())
        .map(|_| ())
        .map_err(|e| e.to_string())
}
