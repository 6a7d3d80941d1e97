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
    let now = aidmesh::clock::now_ms();
    println!("  created   {} ({} ago)", p.created_at, age(p, now));
    println!("  updated   {}", p.updated_at);
    println!("  expires   {} ({})", p.expires_at, expires(p, now));
}

/// Characters of a peer id `list` shows: all ed25519 peer ids start `12D3KooW`, so
/// 16 leave 8 that tell authors apart, and still make a prefix `block` takes.
pub const SHORT_PEER: usize = 16;

/// An author as `list` shows it: `you`, or the start of the peer id.
pub fn who<'a>(author: &'a str, me: Option<&str>) -> &'a str {
    if me == Some(author) {
        "you"
    } else {
        author.get(..SHORT_PEER).unwrap_or(author)
    }
}

/// Milliseconds since the epoch of an RFC 3339 time from the API.
fn ms_of(rfc3339: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(rfc3339).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// A duration in ms, short: `45m`, `3h`, `12d`.
pub fn span(ms: u64) -> String {
    // To the nearest unit: a 14-day post made a second ago expires "in 14d".
    let mins = (ms + 30_000) / 60_000;
    match mins {
        m if m < 60 => format!("{m}m"),
        m if m < 60 * 24 => format!("{}h", (m + 30) / 60),
        m => format!("{}d", (m + 12 * 60) / (60 * 24)),
    }
}

/// How long ago a post was made: `3h`.
pub fn age(p: &PostJson, now: u64) -> String {
    ms_of(&p.created_at).map_or("?".into(), |t| span(now.saturating_sub(t)))
}

/// When a post expires: `in 5d`, or `expired`.
pub fn expires(p: &PostJson, now: u64) -> String {
    match ms_of(&p.expires_at) {
        Some(t) if t > now => format!("in {}", span(t - now)),
        Some(_) => "expired".into(),
        None => "?".into(),
    }
}

/// Posts as a table, one line each, as `list` prints them; `me` is this node's peer
/// id (its posts show as `you`), `with_status` adds the status column.
pub fn print_post_table(posts: &[PostJson], me: Option<&str>, with_status: bool) {
    if posts.is_empty() {
        println!("no posts");
        return;
    }
    let now = aidmesh::clock::now_ms();
    let whos: Vec<&str> = posts.iter().map(|p| who(&p.author, me)).collect();
    let who_w = whos.iter().map(|w| w.len()).max().unwrap_or(3).max(3);
    let circle_w = posts
        .iter()
        .map(|p| p.circle.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let status = |s: &str| {
        if with_status {
            format!("{s:<9}  ")
        } else {
            String::new()
        }
    };
    println!(
        "{:<12}  {:<7}  {:<9}  {}{:<who_w$}  {:<circle_w$}  {:<4}  {:<7}  {:<6}  TITLE",
        "ID",
        "KIND",
        "CATEGORY",
        status("STATUS"),
        "WHO",
        "CIRCLE",
        "AGE",
        "EXPIRES",
        "WHERE"
    );
    for (p, w) in posts.iter().zip(whos) {
        println!(
            "{:<12}  {:<7}  {:<9}  {}{:<who_w$}  {:<circle_w$}  {:<4}  {:<7}  {:<6}  {}",
            short(&p.id),
            p.kind.as_str(),
            p.category.as_str(),
            status(p.status.as_str()),
            w,
            p.circle,
            age(p, now),
            expires(p, now),
            p.location.as_deref().unwrap_or("-"),
            if !with_status && p.status == aidmesh::proto::Status::Promised {
                format!("{} (promised)", p.title)
            } else {
                p.title.clone()
            }
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
        n("gossip_write_queue_full"),
        "posts that arrived while the store's write queue was full",
    );
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
    let mut cut_off = Vec::new();
    for c in s["circle_peers"].as_array().into_iter().flatten() {
        let name = c["circle"].as_str().unwrap_or("?");
        let connected = c["connected"].as_u64().unwrap_or(0);
        println!(
            "  {name:<10} {connected} member(s) connected, {} seen",
            c["seen"].as_u64().unwrap_or(0)
        );
        if connected == 0 {
            cut_off.push(name.to_string());
        }
    }
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
    for c in cut_off {
        println!("warning: {}", aidmesh::circles::cut_off_warning(&c));
    }
}
