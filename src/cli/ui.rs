//! `aidmesh ui`: a one-time login link to the node's web page, opened in a browser
//! where there is a desktop.

use std::process::{Command as Process, Stdio};

use clap::{Args, Subcommand};

use super::output::print_json;
use super::Ctx;

/// The web page commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the node's web page: prints a one-time login link (its last line) and
    /// opens it in the browser where there is a desktop.
    Ui(UiArgs),
}

/// `ui` flags.
#[derive(Args, Debug)]
pub struct UiArgs {
    /// Only print the link; do not open a browser.
    #[arg(long)]
    no_open: bool,
}

/// Runs `ui`.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    let Command::Ui(args) = command;
    let url = ctx.client()?.ui_login().await?.url;
    let opened = !args.no_open && !ctx.json && has_desktop() && open(&url);
    if ctx.json {
        return print_json(&serde_json::json!({ "url": url }));
    }
    if opened {
        println!("Opened the node's page in your browser. If it did not open, use this link (it works once, for 10 minutes):");
    } else {
        println!("Open this link in your browser to use the node's page (it works once, for 10 minutes):");
    }
    println!("{url}");
    Ok(())
}

/// Whether a browser can be shown: always on macOS and Windows; on other systems
/// when an X11 or Wayland display is set.
fn has_desktop() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}

/// Starts the system's opener on `url`; whether it started.
fn open(url: &str) -> bool {
    let mut cmd = if cfg!(target_os = "macos") {
        Process::new("open")
    } else if cfg!(target_os = "windows") {
        let mut c = Process::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        Process::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}
