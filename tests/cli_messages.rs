//! The messaging commands with the real `aidmesh` binary: a reply written while the
//! post's author is away survives `kill -9` of the sender's node and is delivered when
//! both are back; then promise and done close the post on both nodes.

mod common;

use common::cli::{json, wait_for, RunningNode as Node};

fn thread_states(node: &Node, conv: &str) -> Vec<(bool, String, String)> {
    let t = json(&node.ok(&["--json", "thread", conv]));
    t["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["mine"].as_bool() == Some(true),
                m["kind"].as_str().unwrap_or("").to_string(),
                m["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_reply_survives_kill_9_and_the_handover_closes_the_post() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();

    // A offers a ladder; B, connected to A, sees it.
    let a = Node::start(a_dir.path());
    let post = a
        .ok(&[
            "offer",
            "Ladder to lend",
            "--category",
            "goods",
            "--body",
            "3 m aluminium",
        ])
        .trim()
        .to_string();
    assert_eq!(post.len(), 64, "offer prints the post id: {post}");
    let b = Node::start_with(b_dir.path(), &["--bootstrap", &a.addr()]);
    wait_for("B to see A's post", || {
        let list = json(&b.ok(&["--json", "list"]));
        list.as_array()?
            .iter()
            .any(|p| p["id"].as_str() == Some(&post))
            .then_some(())
    });

    // A goes away; B replies by a prefix of the id. Nobody can take it: it stays queued.
    a.stop();
    let conv = b
        .ok(&["reply", &post[..10], "Could I borrow it on Saturday?"])
        .trim()
        .to_string();
    assert!(conv.len() >= 12, "reply prints the conversation id: {conv}");
    assert_eq!(
        thread_states(&b, &conv),
        vec![(true, "reply".into(), "queued".into())]
    );

    // B's node dies without warning; the queued reply is on disk all the same.
    b.kill_hard();

    // Both come back; B delivers what it had queued.
    let a = Node::start(a_dir.path());
    let b = Node::start_with(b_dir.path(), &["--bootstrap", &a.addr()]);
    let inbox = wait_for("A to receive the reply", || {
        let inbox = json(&a.ok(&["--json", "inbox"]));
        let all: Vec<_> = ["requests", "conversations"]
            .iter()
            .flat_map(|k| inbox[*k].as_array().cloned().unwrap_or_default())
            .collect();
        (!all.is_empty()).then_some(all)
    });
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["id"].as_str(), Some(conv.as_str()));
    assert_eq!(
        inbox[0]["last"]["text"].as_str(),
        Some("Could I borrow it on Saturday?")
    );
    // Reading the thread marks it read, which B hears about.
    let read = thread_states(&a, &conv);
    assert_eq!(read, vec![(false, "reply".into(), "seen".into())]);
    wait_for("B to see its reply read", || {
        let s = thread_states(&b, &conv);
        (s == vec![(true, "reply".into(), "read".into())]).then_some(())
    });

    // A promises the ladder to B: B's node shows the post as promised.
    a.ok(&["promise", &conv[..12], "Yes, Saturday at 10"]);
    wait_for("B to see the post promised", || {
        let p = json(&b.ok(&["--json", "show", &post]));
        (p["status"].as_str() == Some("promised")).then_some(())
    });
    // The handover happened: the post is fulfilled on both nodes.
    b.ok(&["done", &conv]);
    wait_for("A's post to become fulfilled", || {
        let p = json(&a.ok(&["--json", "show", &post]));
        (p["status"].as_str() == Some("fulfilled")).then_some(())
    });
    wait_for("B to see it fulfilled", || {
        let p = json(&b.ok(&["--json", "show", &post]));
        (p["status"].as_str() == Some("fulfilled")).then_some(())
    });
    b.stop();
    a.stop();
}
