//! aidmesh: a peer-to-peer node for mutual aid.
//!
//! People post offers and requests; every node keeps the posts of its circles in its
//! own sled store and shares them with other nodes over libp2p. The wire format lives
//! in the `aidmesh-proto` crate, re-exported here as [`proto`].
//!
//! # Layout
//! - [`data_dir`]: where a node keeps its files.
//! - [`identity`]: the node's ed25519 key and peer id.
//! - [`store`]: posts on sled — the single source of truth — with indexes, queries,
//!   expiry and blocking.
//! - [`clock`]: protocol time.
#![deny(missing_docs)]

pub mod clock;
pub mod data_dir;
pub mod identity;
pub mod store;

pub use aidmesh_proto as proto;
pub use data_dir::DataDir;
pub use identity::Identity;
pub use store::Store;
