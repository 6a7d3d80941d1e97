//! Posts an offer to a node that is already running, through its local HTTP API, and
//! prints the new post as JSON.
//!
//! It shows [`aidmesh::client::ApiClient`]: `from_data_dir` finds the node through the
//! `api.addr` and `api.token` files that `aidmesh run` keeps in its data dir, and
//! `publish` sends a [`DraftJson`]. The node checks the draft against every rule; when
//! it refuses, the error names the field at fault.
//!
//! Run a node, then post to it:
//!
//! ```sh
//! cargo run -- --data-dir /tmp/exnode run --no-mdns --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 &
//! cargo run --example post_offer -- --data-dir /tmp/exnode "Winter coats, kids sizes" \
//!     --category goods --tag coats --tag kids --location u33dc --expires 3d \
//!     --body "Three coats, ages 4 to 8"
//! cargo run --example post_offer -- --help
//! ```
//!
//! The data dir is `--data-dir`, else `$AIDMESH_DATA_DIR`, else the default one
//! (`~/.local/share/aidmesh` on Linux), as for `aidmesh` itself. Logs go to stderr,
//! filtered by `RUST_LOG`. Exits non-zero if no node runs there or the node refuses
//! the offer.

use std::path::PathBuf;

use aidmesh::api::json::DraftJson;
use aidmesh::client::{self, ApiClient};
use aidmesh::DataDir;
use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Posts an offer to a running aidmesh node and prints it as JSON.
#[derive(Parser, Debug)]
struct Args {
    /// The running node's data dir [default: ~/.local/share/aidmesh]
    #[arg(long, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// One line saying what is offered
    title: String,

    /// Details
    #[arg(long, default_value = "")]
    body: String,

    /// food, housing, transport, goods, skills, care, money or other
    #[arg(long, default_value = "other")]
    category: String,

    /// A tag, [a-z0-9-] (repeatable, at most 8)
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,

    /// Where, as a geohash of up to 6 characters (about 1 km), e.g. u33dc
    #[arg(long, value_name = "GEOHASH")]
    location: Option<String>,

    /// How many
    #[arg(long)]
    quantity: Option<u32>,

    /// How to reach you outside aidmesh
    #[arg(long)]
    contact: Option<String>,

    /// Circle to post in [default: commons]
    #[arg(long)]
    circle: Option<String>,

    /// Lifetime, e.g. 3d, 12h or 90m (at most 90d) [default: 14d]
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    let data_dir = DataDir::resolve(args.data_dir)?;
    tracing::debug!(data_dir = %data_dir.path().display(), "looking for the node");
    let client = ApiClient::from_data_dir(&data_dir)?;

    let draft = DraftJson {
        kind: Some("offer".into()),
        category: Some(args.category),
        title: args.title,
        body: args.body,
        tags: args.tags,
        location: args.location,
        quantity: args.quantity,
        contact: args.contact,
        circle: args.circle,
        expires_in: args.expires,
    };
    let post = match client.publish(&draft).await {
        Ok(post) => post,
        // The node checked the draft and refused it; say which field.
        Err(client::Error::Api {
            field: Some(field),
            message,
            ..
        }) => anyhow::bail!("the node refused the offer: {}", naming(&field, message)),
        Err(e) => return Err(e).context("posting the offer"),
    };
    println!("{}", serde_json::to_string_pretty(&post)?);
    Ok(())
}

/// The API's message, prefixed with the field at fault unless it already names it.
fn naming(field: &str, message: String) -> String {
    if message.contains(field) {
        message
    } else {
        format!("{field}: {message}")
    }
}
