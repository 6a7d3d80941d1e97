//! Standing alerts: `alert add`, `alert list`, `alert remove`.

use aidmesh::client;
use clap::{Args, Subcommand};

use super::output::print_json;
use super::posts::FilterArgs;
use super::Ctx;

/// `alert …`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Save an alert with the filters of `list`; prints its id.
    Add(AddArgs),
    /// Show the saved alerts.
    List,
    /// Delete an alert.
    Remove {
        /// The alert id, as `alert list` shows it (alert ids are short numbers).
        id: String,
    },
}

/// `alert add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// With --near: how far from it, in whole km (default 10, as `list`)
    #[arg(long, value_name = "KM", requires = "near")]
    within: Option<u32>,
}

/// Runs one of the alert commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Add(f) => add(ctx, f).await,
        Command::List => {
            let alerts = ctx.client()?.alerts().await?;
            if ctx.json {
                print_json(&alerts)?;
            } else if alerts.is_empty() {
                println!("no alerts");
            } else {
                for a in &alerts {
                    println!("{:<6}  {}", a.id, a.filter.reasons().join(", "));
                }
            }
            Ok(())
        }
        Command::Remove { id } => {
            let alert = ctx.client()?.remove_alert(&id).await?;
            if ctx.json {
                print_json(&alert)
            } else {
                println!("removed alert {}", alert.id);
                Ok(())
            }
        }
    }
}

async fn add(ctx: &Ctx, args: AddArgs) -> anyhow::Result<()> {
    let AddArgs { filter: f, within } = args;
    if f.kind.is_none()
        && f.category.is_none()
        && f.tags.is_empty()
        && f.near.is_none()
        && f.search.is_none()
        && f.circle.is_none()
    {
        anyhow::bail!(
            "an alert needs at least one filter: --kind, --category, --tag, --near, --search or --circle \
             (e.g. `aidmesh alert add --kind offer --tag bike`)"
        );
    }
    let mut tags = super::args::tags(f.tags)?;
    if tags.len() > 1 {
        anyhow::bail!("--tag: an alert takes one tag (save one alert per tag)");
    }
    // A place for an alert is a point: the posts within --within km of it.
    let near = f.near.map(|n| super::args::place("near", &n)).transpose()?;
    // Names are checked here so a typo never reaches the node; the rest (tag, near,
    // circle) by the node, with the same errors as `list`.
    let filter = aidmesh::alerts::AlertFilter {
        kind: f
            .kind
            .map(|k| k.trim().to_ascii_lowercase().parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
        category: f
            .category
            .map(|k| k.trim().to_ascii_lowercase().parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("--category: {e}"))?,
        tag: tags.pop(),
        near,
        within_km: within,
        search: f.search,
        circle: f.circle,
    };
    let alert = ctx
        .client()?
        .add_alert(&filter)
        .await
        .map_err(|e| match e {
            // Say which flag was wrong, in the flag's own name.
            client::Error::Api {
                field: Some(field),
                message,
                ..
            } => {
                let flag = if field == "within_km" {
                    "within"
                } else {
                    &field
                };
                anyhow::anyhow!("--{flag}: {message}")
            }
            other => other.into(),
        })?;
    if ctx.json {
        print_json(&alert)
    } else {
        println!("{}", alert.id);
        Ok(())
    }
}
