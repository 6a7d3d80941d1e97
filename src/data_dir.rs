//! Where a node keeps its files, and the names of those files.
//!
//! The directory is `--data-dir`, else `$AIDMESH_DATA_DIR` (both handled by the CLI),
//! else the platform data dir (`~/.local/share/aidmesh` on Linux).

use std::path::{Path, PathBuf};

/// The environment variable that names the data dir.
pub const ENV_VAR: &str = "AIDMESH_DATA_DIR";

/// Problems finding or creating the data dir.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No home directory to put the default data dir in.
    #[error(
        "cannot find a default data dir (no home directory); pass --data-dir or set {ENV_VAR}"
    )]
    NoDefault,
    /// The directory could not be created.
    #[error("cannot create data dir {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A node's data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The given directory, or the platform default when `None`.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Self, Error> {
        match explicit {
            Some(root) => Ok(Self { root }),
            None => Self::platform_default(),
        }
    }

    /// `~/.local/share/aidmesh` on Linux, the equivalent elsewhere.
    pub fn platform_default() -> Result<Self, Error> {
        let dirs = directories::ProjectDirs::from("", "", "aidmesh").ok_or(Error::NoDefault)?;
        Ok(Self {
            root: dirs.data_dir().to_path_buf(),
        })
    }

    /// Creates the directory (mode 0700: it holds the node's secret key) if missing.
    pub fn create(&self) -> Result<(), Error> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&self.root).map_err(|source| Error::Create {
            path: self.root.clone(),
            source,
        })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The node's secret key.
    pub fn identity_key(&self) -> PathBuf {
        self.root.join("identity.key")
    }

    /// Optional settings.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The sled database.
    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }

    /// Address of the local API while the node runs.
    pub fn api_addr(&self) -> PathBuf {
        self.root.join("api.addr")
    }

    /// Bearer token of the local API while the node runs.
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api.token")
    }
}
