//! End to end through the real binary: two `aidmesh run` processes on loopback, the
//! CLI client and the HTTP API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aidmesh::client::{ApiClient, Error as ClientError};
use libp2p::futures::StreamExt;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `aidmesh run`; killed when dropped.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
    p2p: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aidmesh(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aidmesh"));
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("AIDMESH_DATA_DIR")
        .env_remove("RUST_LOG");
    c
}

fn start(bootstrap: Option<&str>) -> Running {
    match bootstrap {
        Some(b) => start_with(&["--bootstrap", b]),
        None => start_with(&[]),
    }
}

/// Starts `aidmesh run` on loopback with extra flags.
fn start_with(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = aidmesh(dir.path());
    cmd.args([
        "run",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
    ]);
    cmd.args(extra);
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Read the log on a thread: the listen address first, then keep draining it.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains("listening") && line.contains("/tcp/") {
                if let Some(a) = line.split("address=").nth(1) {
                    let _ = tx.send(a.trim().to_string());
                    sent = true;
                }
            }
        }
    });
    let p2p = rx.recv_timeout(TIMEOUT).expect("node logs its address");
    let running = Running { child, dir, p2p };
    let deadline = Instant::now() + TIMEOUT;
    while !running.dir.path().join("api.addr").exists() {
        assert!(Instant::now() < deadline, "API files never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = aidmesh(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn list_json(dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["list", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = cli(dir, &args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn data_dir(p: &Path) -> aidmesh::DataDir {
    aidmesh::DataDir::resolve(Some(PathBuf::from(p))).unwrap()
}

#[test]
fn an_offer_made_with_the_cli_reaches_another_node_and_so_does_its_withdrawal() {
    let one = start(None);
    let two = start(Some(&one.p2p));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client_two = ApiClient::from_data_dir(&data_dir(two.dir.path())).unwrap();
    // Watch node two's events over SSE while node one posts.
    let mut events = rt.block_on(async { Box::pin(client_two.events().await.unwrap()) });

    let (code, out, err) = cli(
        one.dir.path(),
        &[
            "offer",
            "Winter coats, kids sizes",
            "--category",
            "goods",
            "--tag",
            "coats",
            "--location",
            "u33dc",
            "--expires",
            "3d",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 64, "{out}");

    wait_until("the offer shows on node two", || {
        list_json(two.dir.path(), &["--tag", "coats"])
            .iter()
            .any(|p| p["id"] == id.as_str())
    });
    let seen = rt.block_on(async {
        tokio::time::timeout(TIMEOUT, async {
            while let Some(e) = events.next().await {
                let (name, data) = e.unwrap();
                if name == "post_added" && data["post"]["id"] == id.as_str() {
                    return data;
                }
            }
            panic!("event stream ended");
        })
        .await
        .expect("SSE delivers post_added")
    });
    assert_eq!(seen["post"]["category"], "goods");
    assert_eq!(seen["post"]["kind"], "offer");
    assert!(seen["post"]["expires_at"].as_str().unwrap().ends_with('Z'));

    let (code, _, err) = cli(one.dir.path(), &["withdraw", &id]);
    assert_eq!(code, 0, "{err}");
    wait_until("the withdrawal shows on node two", || {
        list_json(two.dir.path(), &["--all"])
            .iter()
            .any(|p| p["id"] == id.as_str() && p["status"] == "withdrawn")
    });
    assert!(list_json(two.dir.path(), &[])
        .iter()
        .all(|p| p["id"] != id.as_str()));
    // Node two cannot withdraw a post it did not make.
    let (code, _, err) = cli(two.dir.path(), &["withdraw", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("only its author"), "{err}");
}

#[test]
fn the_api_requires_the_token_and_names_bad_fields() {
    let one = start(None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = data_dir(one.dir.path());
    let addr = std::fs::read_to_string(dir.api_addr()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.api_token())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let wrong = ApiClient::new(addr.trim(), "not-the-token", "x".into()).unwrap();
    match rt.block_on(wrong.status()) {
        Err(ClientError::Api { status: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    let client = ApiClient::from_data_dir(&dir).unwrap();
    let bad = aidmesh::api::json::DraftJson {
        kind: Some("offer".into()),
        title: "   ".into(),
        ..Default::default()
    };
    match rt.block_on(client.publish(&bad)) {
        Err(ClientError::Api {
            status: 400, field, ..
        }) => assert_eq!(field.as_deref(), Some("title")),
        other => panic!("expected 400 on title, got {other:?}"),
    }
    let bad_tag = aidmesh::api::json::DraftJson {
        kind: Some("request".into()),
        title: "Ride".into(),
        tags: vec!["Not OK".into()],
        ..Default::default()
    };
    match rt.block_on(client.publish(&bad_tag)) {
        Err(ClientError::Api {
            status: 400, field, ..
        }) => assert_eq!(field.as_deref(), Some("tags")),
        other => panic!("expected 400 on tags, got {other:?}"),
    }
    match rt.block_on(client.list(&[("near".into(), "abc".into())])) {
        Err(ClientError::Api {
            status: 400, field, ..
        }) => assert_eq!(field.as_deref(), Some("near")),
        other => panic!("expected 400 on near, got {other:?}"),
    }
    match rt.block_on(client.show(&"0".repeat(64))) {
        Err(ClientError::Api { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    // Nothing was posted by the bad drafts.
    assert!(rt
        .block_on(client.list(&[("all".into(), "true".into())]))
        .unwrap()
        .is_empty());
    // CLI input errors name the problem and post nothing.
    let (code, _, err) = cli(one.dir.path(), &["request", "Ride", "--expires", "soon"]);
    assert_ne!(code, 0);
    assert!(err.contains("--expires"), "{err}");
    let (code, _, err) = cli(one.dir.path(), &["request", "Ride", "--location", "abc!"]);
    assert_ne!(code, 0);
    assert!(err.contains("location"), "{err}");
    assert!(rt
        .block_on(client.list(&[("all".into(), "true".into())]))
        .unwrap()
        .is_empty());
}

#[test]
fn with_no_node_running_the_cli_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(dir.path(), &["list"]);
    assert_eq!(code, 2);
    assert!(err.contains("aidmesh run"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn export_then_import_restores_every_post_with_valid_signatures() {
    let one = start(None);
    for title in ["Bread", "Soup", "Rice"] {
        let (code, _, err) = cli(one.dir.path(), &["offer", title, "--category", "food"]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, exported, err) = cli(one.dir.path(), &["export"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(exported.lines().count(), 3);
    // Every line verifies on its own, without any node.
    for line in exported.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let wire = hex::decode(v["signed_post"].as_str().unwrap()).unwrap();
        let signed = aidmesh::proto::SignedPost::decode(&wire).unwrap();
        signed.verify(aidmesh::clock::now_ms()).unwrap();
    }
    let file = one.dir.path().join("export.jsonl");
    std::fs::write(
        &file,
        format!("{exported}{{\"signed_post\": \"00ff\"}}\nnot json\n"),
    )
    .unwrap();

    let two = start(None);
    let (code, out, err) = cli(
        two.dir.path(),
        &["import", file.to_str().unwrap(), "--json"],
    );
    // Refused lines make the import fail, each named with its reason.
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 line(s) refused (line 4, 5)"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["refused"][0]["line"], 4);
    assert!(
        report["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not decode as a signed post"),
        "{report}"
    );
    assert_eq!(report["refused"][1]["line"], 5);
    assert_eq!(
        (
            report["new"].as_u64(),
            report["old"].as_u64(),
            report["invalid"].as_u64()
        ),
        (Some(3), Some(0), Some(2))
    );
    let mut titles: Vec<String> = list_json(two.dir.path(), &[])
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    assert_eq!(titles, ["Bread", "Rice", "Soup"]);
    let (_, out, _) = cli(two.dir.path(), &["import", file.to_str().unwrap()]);
    assert!(out.contains("0 new, 3 already known, 2 refused"), "{out}");
}

#[test]
fn an_invite_lets_a_fresh_node_join_with_one_command() {
    let a = start(None);
    // Inviting to (and posting in) a circle this node is not in is refused.
    let (code, _, err) = cli(a.dir.path(), &["invite", "--circle", "riverside"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("not in circle") && err.contains("aidmesh circle join riverside"),
        "{err}"
    );
    let (code, _, err) = cli(a.dir.path(), &["circle", "join", "riverside"]);
    assert_eq!(code, 0, "{err}");
    let (code, id, err) = cli(
        a.dir.path(),
        &[
            "offer",
            "Soup for ten",
            "--category",
            "food",
            "--circle",
            "riverside",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    let (code, invite, err) = cli(a.dir.path(), &["invite", "--circle", "riverside"]);
    assert_eq!(code, 0, "{err}");
    let invite = invite.trim().to_string();
    assert!(invite.starts_with("AIDMESH1-"), "{invite}");
    // Not a terminal: the code alone, no QR art.
    assert_eq!(invite.lines().count(), 1);

    // Bad codes are refused and change nothing.
    let fresh = tempfile::tempdir().unwrap();
    let mut cut = invite.clone();
    cut.truncate(invite.len() - 5);
    for (bad, expect) in [
        (cut.as_str(), "truncated"),
        ("AIDMESH9-ABCDEF", "version"),
        ("https://example.org/join", "not an aidmesh invite"),
    ] {
        let (code, _, err) = cli(fresh.path(), &["join", bad]);
        assert_ne!(code, 0);
        assert!(err.contains(expect), "{bad}: {err}");
    }
    assert!(!fresh.path().join("config.toml").exists());

    // One command: a fresh node joins the circle through A and gets its post.
    let b = start_with(&["--join", &invite]);
    wait_until("A's post reaches the fresh node", || {
        list_json(b.dir.path(), &["--circle", "riverside"])
            .iter()
            .any(|p| p["id"] == id.as_str())
    });
    let config = std::fs::read_to_string(b.dir.path().join("config.toml")).unwrap();
    assert!(
        config.contains("riverside") && config.contains(&a.p2p),
        "{config}"
    );
    // The invite joined B to riverside, a circle it was not in: it is listed, and
    // connected to A there.
    wait_until("B lists riverside with A connected", || {
        let (_, out, _) = cli(b.dir.path(), &["circle", "list", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .any(|c| c["circle"] == "riverside" && c["members_connected"] == 1)
    });
}

/// Starts `aidmesh run` on loopback in `dir` (kept by the caller across restarts).
fn start_in(dir: &Path) -> Child {
    let mut child = aidmesh(dir)
        .args([
            "run",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !dir.join("api.addr").exists() {
        assert!(Instant::now() < deadline, "API files never appeared");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("aidmesh run exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Stops a node the way Ctrl-C does and waits for it.
fn stop(mut child: Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    #[cfg(not(unix))]
    let _ = child.kill();
    let _ = child.wait();
}

fn circles_json(dir: &Path) -> Vec<serde_json::Value> {
    let (code, out, err) = cli(dir, &["circle", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn names(circles: &[serde_json::Value]) -> Vec<String> {
    circles
        .iter()
        .map(|c| c["circle"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn circles_joined_by_the_cli_stay_across_restarts_and_leaving_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No node running: the CLI edits config.toml.
    std::fs::write(
        d.join("config.toml"),
        "# my node\n[network]\nmdns = false\n",
    )
    .unwrap();
    let (code, out, err) = cli(d, &["circle", "join", "riverside"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no node is running"), "{out}");
    let (code, _, err) = cli(d, &["circle", "join", "Not A Circle"]);
    assert_ne!(code, 0);
    assert!(err.contains("circle"), "{err}");
    assert_eq!(names(&circles_json(d)), ["commons", "riverside"]);
    assert!(std::fs::read_to_string(d.join("config.toml"))
        .unwrap()
        .contains("# my node"));

    // Running: joined at once, and still there after a restart.
    let node = start_in(d);
    let (code, out, err) = cli(d, &["circle", "join", "harbour"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("joined circle harbour"), "{out}");
    let listed = circles_json(d);
    assert_eq!(names(&listed), ["commons", "riverside", "harbour"]);
    assert_eq!(listed[2]["members_connected"], 0);
    assert_eq!(listed[2]["cut_off"], true);
    let (_, out, _) = cli(d, &["circle", "list"]);
    assert!(
        out.contains("0 members connected — invite someone or add a bootstrap peer in this circle"),
        "{out}"
    );
    let (_, out, _) = cli(d, &["status"]);
    assert!(
        out.contains("warning: circle harbour: 0 members connected"),
        "{out}"
    );

    // Posting outside the node's circles is refused with the way in.
    let (code, _, err) = cli(
        d,
        &[
            "offer",
            "Bike",
            "--category",
            "goods",
            "--circle",
            "elsewhere",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("aidmesh circle join elsewhere"), "{err}");
    let (code, _, err) = cli(
        d,
        &[
            "offer",
            "Boat trip",
            "--category",
            "transport",
            "--circle",
            "harbour",
        ],
    );
    assert_eq!(code, 0, "{err}");
    stop(node);

    let node = start_in(d);
    assert_eq!(names(&circles_json(d)), ["commons", "riverside", "harbour"]);
    let st = aidmesh::Config::load(&d.join("config.toml")).unwrap();
    assert_eq!(st.network.circles, ["commons", "riverside", "harbour"]);

    // Leaving deletes the circle's posts: not without --yes when nobody can be asked.
    let (code, _, err) = cli(d, &["circle", "leave", "harbour"]);
    assert_ne!(code, 0);
    assert!(err.contains("--yes") && err.contains("1 post"), "{err}");
    let (code, out, err) = cli(d, &["circle", "leave", "harbour", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 post(s) deleted"), "{out}");
    assert_eq!(names(&circles_json(d)), ["commons", "riverside"]);
    let (code, _, err) = cli(d, &["circle", "leave", "harbour", "--yes"]);
    assert_ne!(code, 0);
    assert!(err.contains("not in circle"), "{err}");
    stop(node);

    // Stopped again: leaving edits the file.
    let (code, _, err) = cli(d, &["circle", "leave", "riverside", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(d, &["circle", "leave", "commons", "--yes"]);
    assert_ne!(code, 0);
    assert!(err.contains("only circle"), "{err}");
    assert_eq!(names(&circles_json(d)), ["commons"]);
}

#[test]
fn alerts_and_matches_through_the_cli_and_the_api() {
    let one = start(None);
    let two = start(Some(&one.p2p));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client_one = ApiClient::from_data_dir(&data_dir(one.dir.path())).unwrap();

    // Alerts: add, list, and a bad filter named in the error.
    let (code, out, err) = cli(
        one.dir.path(),
        &["alert", "add", "--kind", "offer", "--tag", "bike"],
    );
    assert_eq!(code, 0, "{err}");
    let alert_id: u64 = out.trim().parse().unwrap();
    let (code, out, err) = cli(one.dir.path(), &["alert", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["id"], alert_id);
    assert_eq!(alerts[0]["filter"]["tag"], "bike");
    let (code, _, err) = cli(one.dir.path(), &["alert", "add", "--near", "u4pa"]);
    assert_ne!(code, 0);
    assert!(err.contains("near"), "{err}");
    match rt.block_on(client_one.add_alert(&Default::default())) {
        Err(ClientError::Api {
            status: 400, field, ..
        }) => assert_eq!(field.as_deref(), Some("filter")),
        other => panic!("expected 400, got {other:?}"),
    }

    // Node one needs a bike; node two offers one: a `match` event, and `matches`.
    let (code, out, err) = cli(
        one.dir.path(),
        &[
            "request",
            "Bike for school",
            "--category",
            "transport",
            "--tag",
            "bike",
            "--location",
            "u4pruy",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let need = out.trim().to_string();
    let mut events = rt.block_on(async { Box::pin(client_one.events().await.unwrap()) });
    let (code, out, err) = cli(
        two.dir.path(),
        &[
            "offer",
            "Kids bike",
            "--category",
            "transport",
            "--tag",
            "bike",
            "--location",
            "u4pruv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let offer = out.trim().to_string();
    let targets = rt.block_on(async {
        tokio::time::timeout(TIMEOUT, async {
            let mut targets = Vec::new();
            while let Some(e) = events.next().await {
                let (name, data) = e.unwrap();
                if name == "match" {
                    assert_eq!(data["post"]["id"], offer.as_str());
                    assert_eq!(data["origin"], "gossip");
                    targets.push(data["target"].clone());
                    if targets.len() == 2 {
                        return targets;
                    }
                }
            }
            panic!("event stream ended");
        })
        .await
        .expect("SSE delivers two match events")
    });
    assert!(targets
        .iter()
        .any(|t| t["type"] == "alert" && t["id"] == alert_id));
    assert!(targets
        .iter()
        .any(|t| t["type"] == "post" && t["id"] == need.as_str()));

    let (code, out, err) = cli(one.dir.path(), &["matches", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["post"]["id"], need.as_str());
    let best = &all[0]["matches"][0];
    assert_eq!(best["post"]["id"], offer.as_str());
    let reasons: Vec<&str> = best["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"category transport"), "{reasons:?}");
    assert!(reasons.contains(&"1 tag"), "{reasons:?}");
    let (code, out, err) = cli(one.dir.path(), &["matches"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Kids bike") && out.contains("category transport"),
        "{out}"
    );

    let one_post = rt.block_on(client_one.post_matches(&offer, 3)).unwrap();
    assert_eq!(one_post[0].post.id, need);

    let (code, out, err) = cli(one.dir.path(), &["alert", "remove", &alert_id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed"), "{out}");
    let (code, _, err) = cli(one.dir.path(), &["alert", "remove", &alert_id.to_string()]);
    assert_ne!(code, 0);
    assert!(err.contains("no alert"), "{err}");
}
