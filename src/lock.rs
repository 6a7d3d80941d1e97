//! One node per data dir: `aidmesh run` holds an exclusive lock on
//! `<data-dir>/node.lock` for as long as it runs, with its process id written in it,
//! so a second node on the same data dir is refused at once with a sentence naming
//! the first, instead of failing later on the store's own lock.
//!
//! The lock is the operating system's (`flock`), so it goes away with the process,
//! even after `kill -9`; a stale file left behind is simply locked again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use fs2::FileExt;

use crate::DataDir;

/// The lock file's name in the data dir.
pub const FILE_NAME: &str = "node.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds it.
    #[error("another aidmesh node is already running with this data dir ({}); stop it first, or give this one its own --data-dir", match .pid { Some(p) => format!("pid {p}"), None => "pid unknown".to_string() })]
    Held {
        /// The other node's process id, if it wrote one.
        pid: Option<u32>,
    },
    /// The file could not be opened or written.
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The held lock; dropping it lets go.
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
}

fn path(data_dir: &DataDir) -> PathBuf {
    data_dir.path().join(FILE_NAME)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Takes the data dir's node lock (the data dir must exist) and writes this
/// process's id into it.
pub fn acquire(data_dir: &DataDir) -> Result<NodeLock, Error> {
    let path = path(data_dir);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    if file.try_lock_exclusive().is_err() {
        return Err(Error::Held {
            pid: read_pid(&mut file),
        });
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(NodeLock { _file: file })
}

/// The process id of the node holding the data dir's lock, if one does.
pub fn holder(data_dir: &DataDir) -> Option<Option<u32>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path(data_dir))
        .ok()?;
    if file.try_lock_exclusive().is_ok() {
        let _ = FileExt::unlock(&file);
        return None;
    }
    Some(read_pid(&mut file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::resolve(Some(dir.path().to_path_buf())).unwrap();
        assert!(holder(&data_dir).is_none());
        let held = acquire(&data_dir).unwrap();
        let me = std::process::id();
        assert_eq!(holder(&data_dir), Some(Some(me)));
        let err = acquire(&data_dir).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "another aidmesh node is already running with this data dir (pid {me})"
            )),
            "{err}"
        );
        drop(held);
        assert!(holder(&data_dir).is_none());
        acquire(&data_dir).unwrap();
    }
}
