//! The real `aidmesh` binary: identity, start-up errors, clean shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn aidmesh(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aidmesh"));
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("AIDMESH_DATA_DIR")
        .env_remove("RUST_LOG");
    c
}

#[test]
fn id_is_created_once_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let first = aidmesh(dir.path()).arg("id").output().unwrap();
    let second = aidmesh(dir.path()).arg("id").output().unwrap();
    assert!(first.status.success() && second.status.success());
    let id = String::from_utf8(first.stdout).unwrap();
    assert!(id.trim().starts_with("12D3KooW"), "{id}");
    assert_eq!(id, String::from_utf8(second.stdout).unwrap());
    // The environment variable names the data dir too.
    let env = Command::new(env!("CARGO_BIN_EXE_aidmesh"))
        .arg("id")
        .env("AIDMESH_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(env.stdout).unwrap(), id);
    let version = aidmesh(dir.path()).arg("--version").output().unwrap();
    assert!(String::from_utf8(version.stdout)
        .unwrap()
        .starts_with("aidmesh "));
}

#[test]
fn a_corrupt_key_is_an_error_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("identity.key"), b"garbage").unwrap();
    let out = aidmesh(dir.path()).arg("id").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("identity key") && err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("identity.key")).unwrap(),
        b"garbage"
    );
}

fn run_fails(dir: &std::path::Path, args: &[&str], expect: &str) {
    let out = aidmesh(dir)
        .arg("run")
        .arg("--no-mdns")
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "run {args:?} succeeded");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(lines[0].contains(expect), "{err}");
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    run_fails(
        dir.path(),
        &["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")],
        "cannot listen on",
    );
    run_fails(
        dir.path(),
        &["--listen", "/ip4/1.2.3/tcp/1"],
        "invalid value",
    );
    run_fails(dir.path(), &["--circle", "Not A Circle"], "network.circles");
    std::fs::write(dir.path().join("config.toml"), "[network]\nmdsn = true\n").unwrap();
    run_fails(dir.path(), &[], "mdsn");
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = aidmesh(dir.path())
        .args([
            "run",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // A stuck node must fail the test, not hang it.
    let watchdog_pid = pid.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        let _ = Command::new("kill").args(["-9", &watchdog_pid]).status();
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut listening = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("listening") && line.contains("/p2p/") {
            listening = line.split("address=").nth(1).map(str::to_string);
        }
        if line.contains("aidmesh is running") {
            break;
        }
    }
    let addr = listening.expect("the listen address is logged");
    assert!(
        addr.contains("/tcp/") && addr.contains("/p2p/12D3KooW"),
        "{addr}"
    );
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}; log: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("network stopped")),
        "{rest:?}"
    );
}
