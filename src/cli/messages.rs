//! Private replies: `reply`, `inbox`, `thread`, `send`, `promise`, `decline`, `done`.
//! Ids are full ids or unique prefixes of at least 8 characters.

use clap::Subcommand;
use serde_json::Value;

use super::output::print_json;
use super::Ctx;

/// The messaging commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Answer someone's post privately (prints the conversation id)
    Reply {
        /// The post's id (or a unique prefix of at least 8 characters)
        post: String,
        /// What to say (at most 2000 bytes)
        text: String,
    },
    /// Your conversations, and requests from people you never wrote to
    Inbox,
    /// The messages of one conversation (marks them read)
    Thread {
        /// The conversation's id (or a unique prefix)
        conversation: String,
    },
    /// Write in a conversation
    Send {
        /// The conversation's id (or a unique prefix)
        conversation: String,
        /// What to say
        text: String,
    },
    /// Promise your post's item to the person of this conversation (the post shows as
    /// promised)
    Promise {
        /// The conversation's id (or a unique prefix)
        conversation: String,
        /// An optional note
        #[arg(default_value = "")]
        text: String,
    },
    /// Call it off: frees a promised item again
    Decline {
        /// The conversation's id (or a unique prefix)
        conversation: String,
        /// An optional note
        #[arg(default_value = "")]
        text: String,
    },
    /// The handover happened (the author's post becomes fulfilled)
    Done {
        /// The conversation's id (or a unique prefix)
        conversation: String,
        /// An optional note
        #[arg(default_value = "")]
        text: String,
    },
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn when(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn print_conversation_line(c: &Value) {
    let last = &c["last"];
    let preview: String = s(last, "text").chars().take(60).collect();
    let flag = if c["promised"].as_bool() == Some(true) {
        " [promised]"
    } else if c["promised_elsewhere"].as_bool() == Some(true) {
        " [promised to someone else]"
    } else {
        ""
    };
    println!(
        "{}  {}  {} unread  {}{}\n    {} {}: {}",
        short(s(c, "id")),
        s(c, "title"),
        c["unread"].as_u64().unwrap_or(0),
        short(s(c, "peer")),
        flag,
        when(last["at"].as_u64().unwrap_or(0)),
        if last["mine"].as_bool() == Some(true) {
            "you"
        } else {
            "them"
        },
        preview
    );
}

fn print_sent(r: &Value, what: &str) {
    let c = &r["conversation"];
    println!("{}", s(c, "id"));
    if c["promised_elsewhere"].as_bool() == Some(true) && what == "reply" {
        eprintln!("note: this item is promised to someone else; the author may still answer");
    }
}

/// Runs one of the messaging commands.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        Command::Reply { post, text } => {
            let r = client.reply(&post, &text).await?;
            if ctx.json {
                return print_json(&r);
            }
            print_sent(&r, "reply");
        }
        Command::Inbox => {
            let r = client.inbox().await?;
            if ctx.json {
                return print_json(&r);
            }
            let convs = r["conversations"].as_array().cloned().unwrap_or_default();
            let reqs = r["requests"].as_array().cloned().unwrap_or_default();
            if convs.is_empty() && reqs.is_empty() {
                println!("no conversations yet");
            }
            if !reqs.is_empty() {
                println!("Requests (people you never wrote to):");
                reqs.iter().for_each(print_conversation_line);
            }
            if !convs.is_empty() {
                if !reqs.is_empty() {
                    println!();
                }
                println!("Conversations:");
                convs.iter().for_each(print_conversation_line);
            }
        }
        Command::Thread { conversation } => {
            let r = client.thread(&conversation).await?;
            if ctx.json {
                return print_json(&r);
            }
            let c = &r["conversation"];
            println!(
                "{} — with {} ({})",
                s(c, "title"),
                s(c, "peer"),
                if s(c, "role") == "author" {
                    "they asked about your post"
                } else {
                    "you asked"
                }
            );
            for m in r["messages"].as_array().cloned().unwrap_or_default() {
                let who = if m["mine"].as_bool() == Some(true) {
                    "you"
                } else {
                    "them"
                };
                let kind = s(&m, "kind");
                let tag = if kind == "reply" {
                    String::new()
                } else {
                    format!("[{kind}] ")
                };
                println!(
                    "{} {who} ({}): {tag}{}",
                    when(m["at"].as_u64().unwrap_or(0)),
                    s(&m, "state"),
                    s(&m, "text")
                );
            }
        }
        Command::Send { conversation, text } => {
            let r = client.send_message(&conversation, "reply", &text).await?;
            if ctx.json {
                return print_json(&r);
            }
            print_sent(&r, "send");
        }
        Command::Promise { conversation, text } => {
            handover(ctx, &client, &conversation, "promise", &text).await?
        }
        Command::Decline { conversation, text } => {
            handover(ctx, &client, &conversation, "decline", &text).await?
        }
        Command::Done { conversation, text } => {
            handover(ctx, &client, &conversation, "done", &text).await?
        }
    }
    Ok(())
}

async fn handover(
    ctx: &Ctx,
    client: &aidmesh::client::ApiClient,
    conversation: &str,
    kind: &str,
    text: &str,
) -> anyhow::Result<()> {
    let r = client.send_message(conversation, kind, text).await?;
    if ctx.json {
        return print_json(&r);
    }
    let c = &r["conversation"];
    let what = match kind {
        "promise" => "promised the item in",
        "decline" => "declined in",
        _ => "marked the handover done in",
    };
    println!("{what} conversation {}", s(c, "id"));
    Ok(())
}
