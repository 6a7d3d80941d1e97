//! aidmesh: a peer-to-peer node for mutual aid.
//!
//! People post offers and requests; every node keeps the posts of its circles in its
//! own sled store and shares them with other nodes over libp2p. The wire format lives
//! in the `aidmesh-proto` crate, re-exported here as [`proto`].
//!
//! # Layout
//! - [`node`]: [`Node::start`] and [`NodeHandle`], the async API over everything below.
//! - [`net`]: the task that owns the libp2p swarm; [`net::gossip`] (topics, validation,
//!   scoring), [`net::address_book`] (peers remembered across restarts) and the
//!   reachability it reports ([`net::Reachability`]: AutoNAT, relay slots, hole
//!   punching).
//! - [`circles`]: membership kept in `config.toml` (join, leave, what `circle list`
//!   shows); members are found through the DHT by [`net::discovery`]. Closed
//!   circles and followed moderation: [`circles::membrane`] (signed records folded
//!   into the gate every post write asks, [`store::gate`]; `proto/CIRCLES.md`).
//! - [`invite`]: invite codes turned into a circle and bootstrap peers in `config.toml`.
//! - [`store`]: posts on sled — the single source of truth — with indexes, queries,
//!   expiry, blocking and the membrane's gate.
//! - [`draft`]: turning what a person types into a post, edits and status changes.
//! - [`events`]: what subscribers hear about.
//! - [`matcher`]: ranking offers against requests, and live matching of arriving posts
//!   against [`alerts`] (standing filters) and the node's own posts.
//! - [`messages`]: private replies about a post: sealing, delivery (direct or held by
//!   peers of the circle), receipts, the handover (`promise`, `decline`, `done`).
//! - [`web`]: the node's own web page at `/` on the API address (server-rendered,
//!   logged in through `aidmesh ui`).
//! - [`ids`], [`places`], [`listing`]: what people type — id prefixes, geohashes and
//!   `LAT,LON`, listings by several tags and by distance.
//! - [`transfer`]: export lines and CSV files of drafts, read line by line.
//! - [`lock`]: one running node per data dir.
//! - [`words`]: text to word stems in the post's language, shared by the matcher and
//!   text search.
//! - [`config`]: settings from defaults, `config.toml` and flags.
//! - [`identity`], [`data_dir`], [`clock`]: the key, the files, the time.
#![deny(missing_docs)]

pub mod alerts;
pub mod api;
pub mod circles;
pub mod client;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod draft;
pub mod events;
pub mod identity;
pub mod ids;
pub mod invite;
pub mod listing;
pub mod lock;
pub mod matcher;
pub mod messages;
pub mod net;
pub mod node;
pub mod places;
pub mod store;
pub mod sync;
pub mod transfer;
pub mod web;
pub mod words;

pub use aidmesh_proto as proto;
pub use config::Config;
pub use data_dir::DataDir;
pub use draft::{Draft, Edit};
pub use events::{Event, Origin};
pub use identity::Identity;
pub use node::{Node, NodeConfig, NodeHandle, NodeStatus};
pub use store::{Query, Store};
