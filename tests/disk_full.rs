//! A full disk: the store's write fails with a clear error and the post that got the
//! error is not readable afterwards. The disk is "filled" with the process's file
//! size limit (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored), which the kernel enforces
//! like a full disk (`EFBIG` instead of `ENOSPC`) and which needs no privileges; this
//! file is its own test binary, so the limit touches nothing else.

mod common;

use aidmesh::store::{Error, Inserted};
use aidmesh::Store;
use common::*;

fn set_file_size_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system calls with valid arguments; this binary runs one test.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

fn largest_file(dir: &std::path::Path) -> u64 {
    let mut max = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        max = max.max(if m.is_dir() {
            largest_file(&e.path())
        } else {
            m.len()
        });
    }
    max
}

#[test]
fn a_full_disk_is_a_clear_error_and_the_post_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::open(&path).unwrap();
    let now = aidmesh::clock::now_ms();
    let fresh = |who: &aidmesh::Identity, i: u32| {
        let mut p = post(who, i, 0);
        p.created_at = now;
        p.updated_at = now;
        p.expires_at = now + DAY;
        p.body = "x".repeat(3900);
        sign(who, &p).verify(now).unwrap()
    };
    let me = identity(1);
    let first = fresh(&me, 0);
    assert_eq!(store.insert_local(&first).unwrap(), Inserted::New);

    set_file_size_limit(largest_file(&path));
    let mut failed = None;
    'outer: for n in 0..200u8 {
        let who = identity(10 + n);
        for i in 0..50u32 {
            let p = fresh(&who, i);
            match store.insert_local(&p) {
                Ok(_) => {}
                Err(e) => {
                    failed = Some((p, e));
                    break 'outer;
                }
            }
        }
    }
    set_file_size_limit(u64::MAX);
    let (p, e) = failed.expect("the file size limit never bit");
    assert!(
        matches!(e, Error::DiskFull(_)),
        "not a disk-full error: {e:?}"
    );
    assert!(e.is_disk_full());
    let msg = e.to_string();
    assert!(msg.contains("disk holding the store is full"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(
        store.get(&p.post().id).unwrap_or(None).is_none(),
        "the post that got the error is readable"
    );
    assert!(store
        .by_author(&p.post().author)
        .unwrap_or_default()
        .iter()
        .all(|q| q.post().id != p.post().id));
    // What was stored before is still there.
    assert!(store.get(&first.post().id).unwrap().is_some());
}
