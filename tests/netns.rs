//! Real hosts behind real NAT: network namespaces joined by veth pairs.
//!
//! ```text
//!   h1 (192.168.1.2) ─ r1 [NAT] ─┐                 ┌─ r2 [NAT] ─ h2 (192.168.2.2)
//!                    10.201.1.2   └─ net (10.200.0.1, relay node) ─┘   10.201.2.2
//! ```
//! `net` is the internet and the VPS at once: it routes between the two home routers
//! and runs `aidmesh run --relay`. `r1`/`r2` masquerade their home network (nftables),
//! so h1 and h2 cannot reach each other directly. Shows: both home nodes learn they
//! are private and reserve a slot on the relay, the relay learns it is public, a post
//! from h1 reaches h2, h1 learns a peer has its post, and an invite from h2 lets h1
//! connect to it through the relay; whether hole punching then made the connection
//! direct is printed (it depends on the NAT), not asserted.
//!
//! Needs root, iproute2 and nftables (`.ci/run` installs nftables). Without them the
//! test says why and skips. Every namespace is named after this process (`am<pid>-`),
//! so only namespaces this test made are touched; all of them are deleted on the way
//! out, also when an assertion fails, and a later run deletes those of a run that was
//! killed. Nodes use the default port 7651: each namespace has
//! its own ports, so nothing can collide.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(90);
const RELAY_IP: &str = "10.200.0.1";

/// The namespaces and node processes of one run; torn down on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    nodes: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        // The logs tell why a run failed; AIDMESH_TEST_LOGS=1 shows them always.
        if std::thread::panicking() || std::env::var_os("AIDMESH_TEST_LOGS").is_some() {
            for name in ["relay", "h1", "h2"] {
                let log = self.dir.path().join(format!("{name}.log"));
                if let Ok(text) = std::fs::read_to_string(&log) {
                    eprintln!("---- {name} log (last 60 lines) ----");
                    let lines: Vec<&str> = text.lines().collect();
                    for l in &lines[lines.len().saturating_sub(60)..] {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

fn sh(args: &[&str]) -> Result<Output, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn add_ns(&mut self, name: &str) -> Result<(), String> {
        let ns = self.ns(name);
        sh(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Runs a command inside a namespace.
    fn exec(&self, name: &str, args: &[&str]) -> Result<Output, String> {
        let ns = self.ns(name);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// A veth pair between two namespaces, addressed and up.
    fn link(&self, a: (&str, &str, &str), b: (&str, &str, &str)) -> Result<(), String> {
        let (ns_a, ns_b) = (self.ns(a.0), self.ns(b.0));
        sh(&[
            "ip", "-n", &ns_a, "link", "add", a.1, "type", "veth", "peer", "name", b.1, "netns",
            &ns_b,
        ])?;
        for (ns, dev, addr) in [(&ns_a, a.1, a.2), (&ns_b, b.1, b.2)] {
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev])?;
            sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// Deletes namespaces left by earlier runs of this test that were killed before
    /// they could clean up: named `am<pid>-...` after a process that no longer exists.
    fn remove_stale() {
        let Ok(out) = sh(&["ip", "netns", "list"]) else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(pid) = name
                .strip_prefix("am")
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = sh(&["ip", "netns", "del", name]);
            }
        }
    }

    fn build() -> Result<Lab, String> {
        Self::remove_stale();
        let mut lab = Lab {
            prefix: format!("am{}-", std::process::id()),
            namespaces: Vec::new(),
            nodes: Vec::new(),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        for ns in ["net", "r1", "h1", "r2", "h2"] {
            lab.add_ns(ns)?;
        }
        // The internet, with the relay's public address on its loopback.
        lab.exec(
            "net",
            &["ip", "addr", "add", &format!("{RELAY_IP}/32"), "dev", "lo"],
        )?;
        lab.exec("net", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        for (i, lan) in [(1, "192.168.1"), (2, "192.168.2")] {
            let r = format!("r{i}");
            let h = format!("h{i}");
            let wan = format!("10.201.{i}");
            lab.link(
                ("net", &format!("isp{i}"), &format!("{wan}.1/24")),
                (&r, "wan", &format!("{wan}.2/24")),
            )?;
            lab.link(
                (&r, "lan", &format!("{lan}.1/24")),
                (&h, "eth0", &format!("{lan}.2/24")),
            )?;
            lab.exec(
                &r,
                &["ip", "route", "add", "default", "via", &format!("{wan}.1")],
            )?;
            lab.exec(
                &h,
                &["ip", "route", "add", "default", "via", &format!("{lan}.1")],
            )?;
            lab.exec(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            // A home router: masquerade outgoing, drop unsolicited incoming (dropped,
            // not refused, so a stray packet leaves no connection-tracking entry).
            let rules = r#"
table ip nat {
    chain home_nat {
        type nat hook postrouting priority 100;
        oifname "wan" masquerade
    }
}
table ip filter {
    chain home_forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
    }
    chain home_input {
        type filter hook input priority 0; policy accept;
        iifname "wan" ct state new drop
    }
}
"#;
            let path = lab.dir.path().join(format!("{r}.nft"));
            std::fs::write(&path, rules).map_err(|e| e.to_string())?;
            lab.exec(&r, &["nft", "-f", &path.to_string_lossy()])?;
        }
        Ok(lab)
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `aidmesh run` in namespace `ns` with the data dir `name`.
    fn start(&mut self, ns: &str, name: &str, args: &[&str]) {
        let dir = self.data_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        // Addresses here are private (10.x, 192.168.x): let AutoNAT count them.
        std::fs::write(
            dir.join("config.toml"),
            "[network]\nautonat_only_global_ips = false\n",
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .arg(env!("CARGO_BIN_EXE_aidmesh"))
            .arg("--data-dir")
            .arg(&dir)
            .args(["run", "--no-mdns", "--api", "127.0.0.1:0"])
            .args(args)
            .env_remove("AIDMESH_DATA_DIR")
            .env("RUST_LOG", "info,libp2p_kad=error,libp2p_dcutr=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.push(child);
        let deadline = Instant::now() + TIMEOUT;
        while !dir.join("api.addr").exists() {
            assert!(Instant::now() < deadline, "{name} never started its API");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the CLI against the node `name` inside namespace `ns`.
    fn cli(&self, ns: &str, name: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .arg(env!("CARGO_BIN_EXE_aidmesh"))
            .arg("--data-dir")
            .arg(self.data_dir(name))
            .args(args)
            .env_remove("AIDMESH_DATA_DIR")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, ns: &str, name: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (ok, out, err) = self.cli(ns, name, &all);
        assert!(ok, "{name} {args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name} {args:?}: {e}: {out}"))
    }

    fn status(&self, ns: &str, name: &str) -> serde_json::Value {
        self.json(ns, name, &["status"])
    }
}

/// Polls `cond` (every 250 ms) until it holds or [`TIMEOUT`] passes.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    for tool in ["ip", "nft", "sysctl"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let probe = format!("am{}-probe", std::process::id());
    match sh(&["ip", "netns", "add", &probe]) {
        Ok(_) => {
            let _ = sh(&["ip", "netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("cannot create network namespaces: {e}")),
    }
}

fn relayed(status: &serde_json::Value) -> bool {
    status["reachability"]["relayed_addrs"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

fn reach(status: &serde_json::Value) -> String {
    status["reachability"]["status"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

#[test]
fn home_nodes_behind_nat_reach_each_other_through_a_public_relay() {
    if let Some(why) = unsupported() {
        eprintln!("SKIPPED: the NAT test needs root, iproute2 and nftables: {why}");
        return;
    }
    let mut lab = Lab::build().unwrap_or_else(|e| panic!("building the namespaces: {e}"));

    lab.start(
        "net",
        "relay",
        &[
            "--relay",
            "--external-address",
            &format!("/ip4/{RELAY_IP}/tcp/7651"),
            "--external-address",
            &format!("/ip4/{RELAY_IP}/udp/7651/quic-v1"),
        ],
    );
    let relay_id = lab.status("net", "relay")["peer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bootstrap = format!("/ip4/{RELAY_IP}/udp/7651/quic-v1/p2p/{relay_id}");
    lab.start("h1", "h1", &["--bootstrap", &bootstrap]);
    lab.start("h2", "h2", &["--bootstrap", &bootstrap]);

    // The NAT really is in the way: h1 cannot open a connection to h2's node, neither
    // at its private address nor at its router's public one.
    for target in ["192.168.2.2", "10.201.2.2"] {
        let probe = format!("timeout 3 bash -c 'echo > /dev/tcp/{target}/7651'");
        assert!(
            lab.exec("h1", &["sh", "-c", &probe]).is_err(),
            "h1 reached {target}:7651 directly"
        );
    }

    wait_until("both home nodes are private and hold a relay slot", || {
        ["h1", "h2"].iter().all(|h| {
            let s = lab.status(h, h);
            reach(&s) == "private" && relayed(&s)
        })
    });
    wait_until("the relay knows it is public", || {
        reach(&lab.status("net", "relay")) == "public"
    });
    let relay_status = lab.status("net", "relay");
    assert_eq!(relay_status["reachability"]["relay_server"], true);
    for h in ["h1", "h2"] {
        let s = lab.status(h, h);
        let addrs = s["reachability"]["relayed_addrs"].as_array().unwrap();
        assert!(
            addrs.iter().all(|a| a
                .as_str()
                .unwrap()
                .contains(&format!("/p2p/{relay_id}/p2p-circuit/p2p/"))),
            "{h}: {addrs:?}"
        );
        assert_eq!(s["reachability"]["relays"][0], relay_id.as_str(), "{h}");
        assert!(s["reachability"]["direct_addrs"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    // A post from one home reaches the other.
    let (ok, id, err) = lab.cli(
        "h1",
        "h1",
        &["offer", "Spare bike for a week", "--category", "transport"],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_string();
    wait_until("h1's offer shows on h2", || {
        lab.json("h2", "h2", &["list"])
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["id"] == id.as_str()))
    });
    wait_until("h1 learns that a peer has its post", || {
        lab.status("h1", "h1")["reachability"]["last_seen_by_peer"]["at"].is_u64()
    });

    // An invite from h2 (relayed addresses only) lets h1 connect to it.
    let invite = lab.json("h2", "h2", &["invite"]);
    let addrs = invite["addrs"].as_array().unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .any(|a| a.as_str().unwrap().contains("/p2p-circuit/")),
        "{addrs:?}"
    );
    let h2_id = lab.status("h2", "h2")["peer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _, err) = lab.cli("h1", "h1", &["join", invite["code"].as_str().unwrap()]);
    assert!(ok, "{err}");
    wait_until("h1 is connected to h2", || {
        lab.json("h1", "h1", &["peers"])
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["peer_id"] == h2_id.as_str()))
    });
    // Hole punching: report, don't demand (it depends on the NAT's behaviour).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (punched, failed) = loop {
        let r = [lab.status("h1", "h1"), lab.status("h2", "h2")];
        let sum = |k: &str| -> u64 {
            r.iter()
                .map(|s| s["reachability"][k].as_u64().unwrap_or(0))
                .sum()
        };
        let (ok, bad) = (sum("hole_punches_succeeded"), sum("hole_punches_failed"));
        if ok + bad > 0 || Instant::now() > deadline {
            break (ok, bad);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let peers = lab.json("h1", "h1", &["peers"]);
    let h2 = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == h2_id.as_str())
        .cloned()
        .unwrap_or_default();
    eprintln!(
        "NAT test: hole punching succeeded {punched}, failed {failed}; h1 sees h2 {} at {}",
        if h2["relayed"] == true {
            "through the relay"
        } else {
            "directly"
        },
        h2["address"]
    );
    let config = std::fs::read_to_string(lab.data_dir("h1").join("config.toml")).unwrap();
    assert!(
        config.contains(&h2_id),
        "the invite's peers were saved: {config}"
    );
}
