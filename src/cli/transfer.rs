//! Moving posts in and out: `export`, `import`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::output::print_json;
use super::Ctx;

/// The transfer commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write every stored post as JSON lines of signed posts (verifiable anywhere).
    Export,
    /// Import posts from a file written by `export`; each is verified.
    Import {
        /// The file ("-" for standard input).
        file: PathBuf,
    },
}

/// Runs one of the transfer commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export => {
            print!("{}", ctx.client()?.export().await?);
            Ok(())
        }
        Command::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let r = ctx.client()?.import(text).await?;
            if ctx.json {
                print_json(&r)
            } else {
                println!(
                    "{} new, {} already known, {} invalid",
                    r.new, r.old, r.invalid
                );
                Ok(())
            }
        }
    }
}
