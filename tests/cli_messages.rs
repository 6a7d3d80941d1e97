//! The messaging commands with the real `aidmesh` binary: a reply written while the
//! post's author is away survives `kill -9` of the sender's node and is delivered when
//! both are back; then promise and done close the post on both nodes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn aidmesh(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aidmesh"));
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("AIDMESH_DATA_DIR")
        .env_remove("RUST_LOG");
    c
}

/// Runs a command that must succeed; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = aidmesh(dir).args(args).output().expect("aidmesh runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "aidmesh {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Polls `check` until it returns a value; the wait is for an event, bounded generously.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A node run by the binary, killed when dropped.
struct Node {
    child: Child,
    dir: PathBuf,
    /// The address others connect to, from the banner.
    addr: String,
}

impl Node {
    fn start(dir: &Path, bootstrap: Option<&str>) -> Self {
        let mut cmd = aidmesh(dir);
        cmd.args([
            "run",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ]);
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aidmesh run starts");
        let pid = child.id().to_string();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(300));
            let _ = Command::new("kill").args(["-9", &pid]).status();
        });
        let mut addr = None;
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        for line in lines.by_ref() {
            let line = line.expect("banner line");
            if let Some(a) = line
                .split_whitespace()
                .find(|w| w.contains("/p2p/12D3KooW"))
            {
                addr = Some(a.to_string());
            }
            if line.contains("stop with Ctrl-C") {
                break;
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            dir: dir.to_path_buf(),
            addr: addr.expect("the banner shows the address to share"),
        }
    }

    /// A clean stop (SIGTERM) that must exit successfully.
    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        let status = self.child.wait().expect("node exits");
        assert!(status.success(), "{status:?}");
    }

    /// `kill -9`: no chance to flush anything.
    fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        // A killed node leaves its lock and api.addr behind; the next start must cope.
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&self.dir, args)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let a = Node::start(a_dir.path(), None);
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
    let b = Node::start(b_dir.path(), Some(&a.addr));
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
    let a = Node::start(a_dir.path(), None);
    let b = Node::start(b_dir.path(), Some(&a.addr));
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
