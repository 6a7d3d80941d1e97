//! Moving posts in and out: `export`, `import`.
//!
//! `import` takes either format, judged from the file's first line: the JSON lines
//! `export` writes (signed posts, verified like posts from the network, authors
//! kept), or a CSV file of drafts with a header row (as `examples/offers.csv`), which
//! this node posts as its own. Each refused line is named with its reason.

use std::path::PathBuf;

use aidmesh::api::json::RefusedLine;
use aidmesh::client;
use aidmesh::transfer::{self, Format};
use anyhow::Context;
use clap::Subcommand;

use super::output::print_json;
use super::{note, offline, Ctx, Source};

/// The transfer commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write every stored post as JSON lines of signed posts (verifiable anywhere);
    /// works with the node stopped too.
    Export,
    /// Import posts: JSON lines written by `export` (each verified), or a CSV file
    /// of drafts with a header row (title,kind,category,body,tags,location,quantity,
    /// contact,expires,circle; only title is required; tags separated by `;`), posted
    /// as this node's own. Says why each refused line was refused.
    Import {
        /// The file ("-" for standard input).
        file: PathBuf,
        /// For CSV rows without a kind column: offer or request
        #[arg(long, default_value = "offer")]
        kind: String,
        /// For CSV rows without a circle column [default: commons]
        #[arg(long)]
        circle: Option<String>,
    },
}

/// Runs one of the transfer commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export => {
            let lines = match ctx.source().await? {
                Source::Node(c) => c.export().await?,
                Source::Disk(store) => offline::export(&store)?,
            };
            print!("{lines}");
            Ok(())
        }
        Command::Import { file, kind, circle } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let kind = kind.trim().to_ascii_lowercase();
            kind.parse::<aidmesh::proto::Kind>()
                .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
            match transfer::detect(&text) {
                Format::JsonLines => import_lines(ctx, text).await,
                Format::Csv => import_csv(ctx, &text, &kind, circle.as_deref()).await,
            }
        }
    }
}

/// Prints the refused lines and the summary; an error when any line was refused, so
/// scripts can tell. `unnamed` counts refused lines the node did not name (it names
/// at most [`aidmesh::api::json::MAX_REFUSED_LINES`]).
fn finish(
    ctx: &Ctx,
    summary: String,
    refused: &[RefusedLine],
    unnamed: usize,
    json: serde_json::Value,
) -> anyhow::Result<()> {
    if ctx.json {
        print_json(&json)?;
    } else {
        for r in refused {
            println!("line {}: refused: {}", r.line, r.reason);
        }
        if unnamed > 0 {
            println!("… and {unnamed} more refused line(s)");
        }
        println!("{summary}");
    }
    if refused.is_empty() && unnamed == 0 {
        return Ok(());
    }
    let mut lines: Vec<String> = refused.iter().map(|r| r.line.to_string()).collect();
    if unnamed > 0 {
        lines.push("…".into());
    }
    anyhow::bail!(
        "{} line(s) refused (line {})",
        refused.len() + unnamed,
        lines.join(", ")
    )
}

async fn import_lines(ctx: &Ctx, text: String) -> anyhow::Result<()> {
    let r = ctx.client()?.import(text).await?;
    let summary = format!(
        "{} new, {} already known, {} refused",
        r.new, r.old, r.invalid
    );
    let json = serde_json::to_value(&r)?;
    let unnamed = r.invalid.saturating_sub(r.refused.len());
    finish(ctx, summary, &r.refused, unnamed, json)
}

async fn import_csv(ctx: &Ctx, text: &str, kind: &str, circle: Option<&str>) -> anyhow::Result<()> {
    let rows = transfer::read_csv(text, kind, circle).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = ctx.client()?;
    let mut posted = Vec::new();
    let mut refused = Vec::new();
    for row in rows {
        for (from, to) in &row.renamed_tags {
            note(&format!(
                "line {}: tag {from:?} is saved as {to:?}",
                row.line
            ));
        }
        let draft = match row.draft {
            Ok(d) => d,
            Err(reason) => {
                refused.push(RefusedLine {
                    line: row.line,
                    reason,
                });
                continue;
            }
        };
        match c.publish(&draft).await {
            Ok(p) => {
                if !ctx.json {
                    println!("line {}: posted {}  {}", row.line, p.id, p.title);
                }
                posted.push(serde_json::json!({ "line": row.line, "id": p.id }));
            }
            // The node checked the draft and refused it: its message names the field.
            Err(client::Error::Api { message, field, .. }) => refused.push(RefusedLine {
                line: row.line,
                reason: match field {
                    Some(f) if !message.contains(&f) => format!("{f}: {message}"),
                    _ => message,
                },
            }),
            // No node, or the connection broke: no point trying the other rows.
            Err(e) => return Err(e).context(format!("posting line {}", row.line)),
        }
    }
    let summary = format!("{} posted, {} refused", posted.len(), refused.len());
    let json = serde_json::json!({ "posted": posted, "refused": refused });
    finish(ctx, summary, &refused, 0, json)
}
