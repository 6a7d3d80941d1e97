//! Closed circles and followed moderation through the real `aidmesh` binary: two nodes
//! run by `aidmesh run` on loopback; `circle create --closed` prints the full name
//! last; short names resolve (or say they are ambiguous); `invite` / `join` admit; the
//! errors are plain sentences; `remove`, `hide` and `follow-moderation` work.

mod common;

use common::cli::*;

fn id_of(dir: &std::path::Path) -> String {
    ok(dir, &["id"]).trim().to_string()
}

#[test]
fn closed_circles_and_moderation_from_the_command_line() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = RunningNode::start(da.path());
    let b = RunningNode::start_with(db.path(), &["--bootstrap", &a.addr()]);
    let (a_id, b_id) = (id_of(da.path()), id_of(db.path()));

    let out = a.ok(&["circle", "create", "riverside", "--closed"]);
    let full = out.split_whitespace().last().unwrap().to_string();
    assert!(
        full.starts_with("riverside~") && full.len() == "riverside~".len() + 16,
        "{out}"
    );
    let err = fails(da.path(), &["circle", "create", "riverside"]);
    assert!(err.contains("open circles need no creating"), "{err}");

    // The short name resolves; the members list starts with the founder.
    let m = json(&a.ok(&["--json", "circle", "members", "riverside"]));
    assert_eq!(m["circle"], full.as_str());
    assert_eq!(m["founder"], a_id.as_str());
    let text = a.ok(&["circle", "members", "riverside"]);
    assert!(text.contains("founder") && text.contains(&a_id), "{text}");
    let err = fails(da.path(), &["circle", "members", "nowhere"]);
    assert!(err.contains("this node is in no circle called"), "{err}");
    let err = fails(da.path(), &["circle", "admit", "commons", &b_id]);
    assert!(err.contains("is open"), "{err}");

    // B joins with A's invite and shows up among A's members.
    let invite = json(&a.ok(&["--json", "invite", "--circle", "riverside"]));
    let code = invite["code"].as_str().unwrap().to_string();
    b.ok(&["join", &code]);
    wait_for("A lists B as a member", || {
        let m = json(&a.ok(&["--json", "circle", "members", &full]));
        m["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["peer_id"] == b_id.as_str())
            .then_some(())
    });
    let err = fails(db.path(), &["circle", "admit", "riverside", &a_id]);
    assert!(err.contains("not a moderator"), "{err}");

    // B founds its own riverside; A joining it as well makes the short name ambiguous.
    let out = b.ok(&["circle", "create", "riverside", "--closed"]);
    let b_full = out.split_whitespace().last().unwrap().to_string();
    assert_ne!(b_full, full);
    a.ok(&["circle", "join", &b_full]);
    let err = fails(da.path(), &["circle", "members", "riverside"]);
    assert!(
        err.contains("could be any of") && err.contains("give the full name"),
        "{err}"
    );
    let prefix = &full[..full.len() - 12];
    assert!(a.ok(&["circle", "members", prefix]).contains(&a_id));

    // Removal, a hide, following someone's moderation.
    let out = a.ok(&["circle", "remove", &full, &b_id, "--with-invitees"]);
    assert!(out.contains("removed") && out.contains(&b_id), "{out}");
    let m = json(&a.ok(&["--json", "circle", "members", &full]));
    assert!(m["removed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == b_id.as_str()));
    let post = a.ok(&["offer", "Soup for ten", "--category", "food"]);
    let id = post
        .split_whitespace()
        .find(|w| w.len() >= 16 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no id in {post}"))
        .to_string();
    let out = a.ok(&["hide", &id]);
    assert!(out.contains("hid post"), "{out}");
    let out = b.ok(&["follow-moderation", &a_id]);
    assert!(out.contains("following the moderation of"), "{out}");
    let config = std::fs::read_to_string(db.path().join("config.toml")).unwrap();
    assert!(
        config.contains("follow_moderation") && config.contains(&a_id),
        "{config}"
    );
    let f = json(&b.ok(&["--json", "follow-moderation", &a_id, "--stop"]));
    assert_eq!(f["changed"], true);
    a.stop();
    b.stop();
}
