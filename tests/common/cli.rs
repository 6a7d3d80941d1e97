//! The real `aidmesh` binary for the CLI tests: commands against a data dir, and a
//! node run by `aidmesh run` on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `aidmesh --data-dir DIR`, without the caller's environment leaking in.
pub fn aidmesh(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aidmesh"));
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("AIDMESH_DATA_DIR")
        .env_remove("RUST_LOG");
    c
}

/// Runs a command; returns (success, stdout, stderr).
pub fn cmd(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out: Output = aidmesh(dir).args(args).output().expect("aidmesh runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// Runs a command that must succeed; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = cmd(dir, args);
    assert!(success, "aidmesh {args:?} failed:\n{out}\n{err}");
    out
}

/// Runs a command that must fail; returns stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = cmd(dir, args);
    assert!(!success, "aidmesh {args:?} succeeded:\n{out}");
    err
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Polls `check` until it gives a value: a wait for an event, bounded generously.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A node run by the binary on loopback; killed when dropped.
pub struct RunningNode {
    child: Child,
    pub dir: PathBuf,
    /// What `run` printed before "stop with Ctrl-C".
    pub banner: Vec<String>,
}

impl RunningNode {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Starts with more arguments to `run` (e.g. `--bootstrap ADDR`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let mut child = aidmesh(dir)
            .args([
                "run",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aidmesh run starts");
        let pid = child.id().to_string();
        // A stuck node must fail the test, not hang it.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(300));
            let _ = Command::new("kill").args(["-9", &pid]).status();
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("banner line");
            let last = line.contains("stop with Ctrl-C");
            banner.push(line);
            if last {
                break;
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        assert!(
            banner
                .iter()
                .any(|l| l.contains("aidmesh is running as 12D3KooW")),
            "{banner:?}"
        );
        Self {
            child,
            dir: dir.to_path_buf(),
            banner,
        }
    }

    /// The address the banner says to share.
    pub fn addr(&self) -> String {
        self.banner
            .iter()
            .flat_map(|l| l.split_whitespace())
            .find(|w| w.contains("/p2p/12D3KooW"))
            .expect("the banner shows the address to share")
            .to_string()
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A command against this node's data dir that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.dir, args)
    }

    /// A clean stop (SIGTERM): exits successfully and removes its API files.
    pub fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        let status = self.child.wait().expect("node exits");
        assert!(status.success(), "{status:?}");
        assert!(!self.dir.join("api.addr").exists());
    }

    /// `kill -9`: no chance to flush anything; the lock and api.addr stay behind.
    pub fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
