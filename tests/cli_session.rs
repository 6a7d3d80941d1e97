//! The real `aidmesh` binary as a person uses it: a node started with `aidmesh run`,
//! then the commands of the README against it — ids by prefix, places as LAT,LON and
//! distance, editing, import with reasons, the messages for common mistakes — and the
//! reading commands with the node stopped.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::cli::{aidmesh, cmd, fails, json, ok, RunningNode};

#[test]
fn posting_listing_and_editing_through_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = RunningNode::start(d);
    assert!(node.banner.iter().any(|l| l.contains("/p2p/12D3KooW")));
    assert!(node.banner.iter().any(|l| l.contains("invite")));

    // A second node on the same data dir is refused at once, naming the first.
    let err = fails(d, &["run", "--no-mdns", "--api", "127.0.0.1:0"]);
    let pid = node.pid();
    assert!(
        err.contains(&format!(
            "another aidmesh node is already running with this data dir (pid {pid})"
        )),
        "{err}"
    );

    // Tags are normalised with a note; LAT,LON becomes the 6-character cell.
    let (success, coats, err) = cmd(
        d,
        &[
            "offer",
            "Winter coats",
            "--category",
            "Goods",
            "--tag",
            "Warm Clothes",
            "--tag",
            "kids",
            "--location",
            "52.5219,13.4132",
            "--contact",
            "door 3",
            "--quantity",
            "3",
        ],
    );
    assert!(success, "{err}");
    let coats = coats.trim().to_string();
    assert!(err.contains("\"warm-clothes\""), "{err}");
    assert!(err.contains("u33dc1"), "{err}");
    let shown = json(&ok(d, &["--json", "show", &coats[..8]]));
    assert_eq!(shown["tags"], serde_json::json!(["warm-clothes", "kids"]));
    assert_eq!(shown["location"], "u33dc1");

    // The case: a post at u33db2 is ~2 km from u33dc, in another cell.
    let soup = ok(
        d,
        &[
            "offer",
            "Soup",
            "--category",
            "food",
            "--location",
            "U33DB2",
        ],
    );
    let far = ok(d, &["offer", "Far away", "--location", "u4pruy"]);
    let ids = |args: &[&str]| -> Vec<String> {
        json(&ok(d, &[&["--json", "list"], args].concat()))
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    let near = ids(&["--near", "u33dc"]);
    assert!(near.contains(&soup.trim().to_string()), "{near:?}");
    assert!(near.contains(&coats), "{near:?}");
    assert!(!near.contains(&far.trim().to_string()), "{near:?}");
    let close = ids(&["--near", "52.5219,13.4132", "--within", "1"]);
    assert_eq!(close, std::slice::from_ref(&coats));
    assert_eq!(
        ids(&["--tag", "kids", "--tag", "warm-clothes"]),
        std::slice::from_ref(&coats)
    );
    assert!(ids(&["--tag", "kids", "--tag", "soup"]).is_empty());
    assert_eq!(ids(&["--mine"]).len(), 3);

    // The table says who, circle, age and expiry.
    let table = ok(d, &["list"]);
    assert!(table.contains("WHO") && table.contains("CIRCLE"), "{table}");
    assert!(
        table.contains("you") && table.contains("commons"),
        "{table}"
    );
    assert!(table.contains("in 14d"), "{table}");

    // A word that happens to be a geohash is read, with a warning.
    let (success, _, err) = cmd(d, &["request", "Help in Essen", "--location", "essen"]);
    assert!(success && err.contains("place name"), "{err}");
    // Mistakes, in words.
    let err = fails(d, &["offer", "Soon gone", "--expires", "0d"]);
    assert!(err.contains("expiry must be in the future"), "{err}");
    let err = fails(d, &["offer", "Somewhere", "--location", "Paris"]);
    assert!(
        err.contains("not a geohash") && err.contains("LAT,LON"),
        "{err}"
    );
    let err = fails(d, &["block", "nonsense"]);
    assert!(err.contains("not a peer id"), "{err}");
    let me = ok(d, &["id"]);
    let err = fails(d, &["block", me.trim()]);
    assert!(err.contains("cannot block itself"), "{err}");
    let err = fails(d, &["alert", "add"]);
    assert!(err.contains("--kind") && err.contains("--near"), "{err}");
    let err = fails(d, &["show", "abc"]);
    assert!(err.contains("at least 8 characters"), "{err}");

    // Editing: clearing fields, and an edit that changes nothing makes no revision.
    let out = ok(d, &["edit", &coats[..10], "--quantity", "3"]);
    assert!(out.contains("nothing changed"), "{out}");
    let out = ok(d, &["edit", &coats[..10], "--no-contact", "--no-quantity"]);
    assert!(out.contains("revision 2"), "{out}");
    let shown = json(&ok(d, &["--json", "show", &coats]));
    assert_eq!(shown["contact"], serde_json::Value::Null);
    assert_eq!(shown["quantity"], serde_json::Value::Null);
    assert_eq!(shown["location"], "u33dc1");
    ok(d, &["fulfil", &coats[..12]]);
    let out = ok(d, &["fulfil", &coats[..12]]);
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(json(&ok(d, &["--json", "show", &coats]))["revision"], 3);
    ok(d, &["reopen", &coats[..12]]);
    let shown = json(&ok(d, &["--json", "show", &coats]));
    assert_eq!(
        (shown["status"].as_str(), shown["revision"].as_u64()),
        (Some("open"), Some(4))
    );
    // Reposting: a fresh post with the same content; the old one is withdrawn.
    let (success, fresh, err) = cmd(d, &["repost", &coats[..12]]);
    assert!(success, "{err}");
    let fresh = fresh.trim();
    assert_ne!(fresh, coats);
    assert_eq!(
        json(&ok(d, &["--json", "show", fresh]))["title"],
        "Winter coats"
    );
    assert_eq!(
        json(&ok(d, &["--json", "show", &coats]))["status"],
        "withdrawn"
    );

    node.stop();
}

#[test]
fn import_says_why_each_refused_line_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = RunningNode::start(d);
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/offers.csv");
    let (success, out, err) = cmd(d, &["import", csv]);
    assert!(!success, "a refused row fails the import: {out}");
    assert!(
        out.contains("line 5: refused: category") && out.contains("furniture"),
        "{out}"
    );
    assert!(out.contains("4 posted, 1 refused"), "{out}");
    assert!(err.contains("1 line(s) refused (line 5)"), "{err}");

    // JSON lines: an export imports as known posts; broken lines are named.
    let export = ok(d, &["export"]);
    assert_eq!(export.lines().count(), 4);
    let file = d.join("lines.jsonl");
    std::fs::write(
        &file,
        format!("{export}{{\"signed_post\":\"zz\"}}\n\nnot json\n"),
    )
    .unwrap();
    let (_, out, _) = cmd(d, &["import", file.to_str().unwrap()]);
    assert!(
        out.contains("line 5: refused: signed_post is not hex"),
        "{out}"
    );
    assert!(out.contains("line 7: refused: not an export line"), "{out}");
    assert!(out.contains("0 new, 4 already known, 2 refused"), "{out}");
    node.stop();
}

#[test]
fn watch_prints_readable_lines_and_ends_when_the_node_stops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = RunningNode::start(d);
    let mut watch = aidmesh(d)
        .args(["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // `watch` says on stderr when it is subscribed: post after that.
    let mut notes = BufReader::new(watch.stderr.take().unwrap()).lines();
    let said = notes.next().expect("a note").unwrap();
    assert!(said.contains("watching"), "{said}");
    let id = ok(d, &["offer", "Spare bike", "--category", "goods"]);
    let id = id.trim();
    let first = lines.next().expect("a line").unwrap();
    assert!(first.contains(&id[..12]), "{first}");
    assert!(
        first.starts_with("new offer (goods) by you: Spare bike"),
        "{first}"
    );
    ok(d, &["withdraw", id]);
    let next = lines.next().expect("a line").unwrap();
    assert!(next.starts_with("withdrawn offer"), "{next}");
    assert!(!next.contains('{'), "{next}");
    node.stop();
    assert!(lines.next().is_none());
    let status = watch.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn reading_commands_work_with_the_node_stopped() {
    use aidmesh::proto::{Nonce, PostId};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let me = common::identity(7);
    // Two posts whose ids share their first 8 hex characters (4 bytes): a prefix of
    // 8 is ambiguous between them, a longer one is not.
    let author = me.author();
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0u64..)
        .find_map(|n| {
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&n.to_be_bytes());
            let id = PostId::derive(&author, &Nonce(nonce));
            let key: [u8; 4] = id.0[..4].try_into().unwrap();
            seen.insert(key, nonce)
                .filter(|other| *other != nonce)
                .map(|other| (other, nonce))
        })
        .unwrap();
    let now = aidmesh::clock::now_ms();
    let make = |nonce: [u8; 16], title: &str, location: &str| {
        let mut p = common::post(&me, 0, 0);
        p.nonce = Nonce(nonce);
        p.id = PostId::derive(&author, &p.nonce);
        p.title = title.into();
        p.location = Some(location.into());
        p.created_at = now - 1000;
        p.updated_at = now - 1000;
        p.expires_at = now + 86_400_000;
        p.sign(me.signing_key()).unwrap().verify(now).unwrap()
    };
    let pa = make(a, "Bread to share", "u33dc1");
    let pb = make(b, "Bread wanted", "u33db2");
    {
        // The data dir as a node leaves it: its key, and posts in its store.
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(
            d.join("identity.key"),
            me.keypair().to_protobuf_encoding().unwrap(),
        )
        .unwrap();
        let store = aidmesh::Store::open(&d.join("db")).unwrap();
        store.insert_local(&pa).unwrap();
        store.insert_local(&pb).unwrap();
        store.flush().unwrap();
    }
    let ida = pa.post().id.to_string();
    let idb = pb.post().id.to_string();
    assert_eq!(ida[..8], idb[..8]);

    let (success, out, err) = cmd(d, &["list"]);
    assert!(success, "{err}");
    assert!(err.contains("no node is running"), "{err}");
    assert!(
        out.contains("Bread to share") && out.contains("Bread wanted"),
        "{out}"
    );
    assert!(out.contains("you"), "{out}");
    let near = ok(d, &["list", "--near", "u33dc", "--within", "5"]);
    assert!(near.contains("Bread wanted"), "{near}");

    let err = fails(d, &["show", &ida[..8]]);
    assert!(err.contains("ambiguous"), "{err}");
    assert!(err.contains(&ida) && err.contains(&idb), "{err}");
    let shown = ok(d, &["show", &ida[..12]]);
    assert!(shown.contains("Bread to share"), "{shown}");
    let found = ok(d, &["--json", "matches", "--post", &ida[..12]]);
    assert!(json(&found).is_array(), "{found}");
    let mine = json(&ok(d, &["--json", "matches"]));
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
    let export = ok(d, &["export"]);
    assert_eq!(export.lines().count(), 2);

    // Commands that change posts still need the node, and say so (exit code 2).
    let out = aidmesh(d).args(["fulfil", &ida]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Nothing was changed on disk by reading.
    let store = aidmesh::Store::open(&d.join("db")).unwrap();
    assert_eq!(store.len(), 2);
}

#[test]
fn start_up_mistakes_say_the_right_form_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = fails(d, &["run", "--no-mdns", "--listen", "127.0.0.1:0"]);
    assert!(err.contains("/ip4/127.0.0.1/tcp/0"), "{err}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = busy.local_addr().unwrap().to_string();
    let err = fails(
        d,
        &[
            "run",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            &api,
        ],
    );
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("in use") || l.contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "said once:\n{err}");
    assert!(
        errors[0].contains(&format!("the API address {api} is already in use")),
        "{err}"
    );
}
