//! How things read on a terminal: posts, the post table, matches, status. Every
//! command's `--json` goes through [`print_json`] instead.

use aidmesh::api::json::{MatchJson, PostJson};

/// Prints `v` as pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// The first 12 characters of an id, as `list` shows it.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// One post in full, as `show` prints it.
pub fn print_post(p: &PostJson) {
    println!("{} {} · {} · {}", p.kind, p.category, p.status, p.title);
    println!("  id        {}", p.id);
    println!("  author    {}", p.author);
    println!("  circle    {}   revision {}", p.circle, p.revision);
    if !p.body.is_empty() {
        for line in p.body.lines() {
            println!("  | {line}");
        }
    }
    if !p.tags.is_empty() {
        println!("  tags      {}", p.tags.join(", "));
    }
    if let Some(l) = &p.location {
        println!("  location  {l}");
    }
    if let Some(q) = p.quantity {
        println!("  quantity  {q}");
    }
    if let Some(c) = &p.contact {
        println!("  contact   {c}");
    }
    println!("  updated   {}   expires {}", p.updated_at, p.expires_at);
}

/// Posts as a table, one line each, as `list` prints them.
pub fn print_post_table(posts: &[PostJson]) {
    if posts.is_empty() {
        println!("no posts");
        return;
    }
    println!(
        "{:<12}  {:<7}  {:<9}  {:<9}  {:<6}  TITLE",
        "ID", "KIND", "CATEGORY", "STATUS", "WHERE"
    );
    for p in posts {
        println!(
            "{:<12}  {:<7}  {:<9}  {:<9}  {:<6}  {}",
            short(&p.id),
            p.kind.as_str(),
            p.category.as_str(),
            p.status.as_str(),
            p.location.as_deref().unwrap_or("-"),
            p.title
        );
    }
}

/// One ranked match, indented under the post it is for.
pub fn print_match(m: &MatchJson) {
    println!(
        "  {:>5.2}  {:<7}  {}  [{}]  — {}",
        m.score,
        m.post.kind.as_str(),
        m.post.title,
        short(&m.post.id),
        m.reasons.join(", ")
    );
}

/// A `match` event of the event stream, as one line.
pub fn print_match_event(data: &serde_json::Value) {
    let post = &data["post"];
    let target = &data["target"];
    let what = match target["type"].as_str() {
        Some("alert") => format!("alert {}", target["id"]),
        _ => format!(
            "your post \"{}\" [{}]",
            target["title"].as_str().unwrap_or("?"),
            short(target["id"].as_str().unwrap_or("?"))
        ),
    };
    let reasons: Vec<&str> = data["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    println!(
        "match for {what}: {} {} — {} [{}] ({})",
        post["kind"].as_str().unwrap_or("?"),
        post["category"].as_str().unwrap_or("?"),
        post["title"].as_str().unwrap_or("?"),
        short(post["id"].as_str().unwrap_or("?")),
        reasons.join(", ")
    );
}

/// The node's status, as `status` prints it.
/// The `health` part of the status: the clock as peers see it, and what the limits
/// shed (only what happened; a quiet node prints one line).
fn print_health(h: &serde_json::Value) {
    let n = |k: &str| h[k].as_u64().unwrap_or(0);
    match h["clock_skew"]["peers_ahead_ms"].as_i64() {
        Some(ms) if h["clock_skew"]["skewed"].as_bool() == Some(true) => println!(
            "clock        peers' posts are {} {} our clock: check this machine's time",
            humantime::format_duration(std::time::Duration::from_secs(ms.unsigned_abs() / 1000)),
            if ms > 0 { "ahead of" } else { "behind" }
        ),
        Some(_) => println!("clock        agrees with peers"),
        None => println!("clock        not enough posts from peers to compare yet"),
    }
    let mut shed = Vec::new();
    let mut note = |count: u64, what: &str| {
        if count > 0 {
            shed.push(format!("{count} {what}"));
        }
    };
    note(n("gossip_over_peer_rate"), "messages over a peer's rate");
    note(n("gossip_over_author_rate"), "posts over an author's rate");
    note(
        n("gossip_sends_dropped"),
        "gossip sends dropped (queue full)",
    );
    note(n("gossip_links_repaired"), "dead gossip links reconnected");
    note(n("connections_refused"), "connections refused");
    note(
        n("held_future_posts"),
        "future-dated posts held until their time",
    );
    if shed.is_empty() {
        println!("limits       nothing refused");
    } else {
        println!("limits       {}", shed.join(", "));
    }
}

pub fn print_status(s: &serde_json::Value) {
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = &s["reachability"];
    println!("peer id      {}", s["peer_id"].as_str().unwrap_or("?"));
    println!("version      {}", s["version"].as_str().unwrap_or("?"));
    println!("posts        {}", s["posts"]);
    println!("circles      {}", strs(&s["circles"]).join(", "));
    println!(
        "reachability {}{}",
        r["status"].as_str().unwrap_or("unknown"),
        if r["relay_server"].as_bool() == Some(true) {
            " (serving as a relay)"
        } else {
            ""
        }
    );
    println!(
        "peers        {} direct, {} through a relay",
        r["peers_direct"], r["peers_relayed"]
    );
    match r["last_seen_by_peer"]["at"].as_u64() {
        Some(at) => println!(
            "posts seen   by {} at {}",
            r["last_seen_by_peer"]["peer_id"].as_str().unwrap_or("?"),
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(at)
            )
        ),
        None => println!("posts seen   not yet confirmed by any peer"),
    }
    print_health(&s["health"]);
    let direct = strs(&r["direct_addrs"]);
    let relayed = strs(&r["relayed_addrs"]);
    if direct.is_empty() && relayed.is_empty() {
        println!("reachable at (nothing confirmed yet)");
    } else {
        println!("reachable at");
        for a in direct.iter().chain(&relayed) {
            println!("  {a}");
        }
    }
    println!("listening on");
    for a in strs(&s["listen_addrs"]) {
        println!("  {a}");
    }
}
