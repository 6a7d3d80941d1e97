//! `aidmesh-proto`: the wire format of aidmesh.
//!
//! # Layout
//! - [`post`]: [`Post`] and its ids and enums — the data model.
//! - [`rules`]: every rule a post obeys, checked by [`rules::validate`].
//! - [`limits`]: what a node stores of each author and circle (quota, budget),
//!   the same rules on every node (`proto/LIMITS.md`).
//! - [`signed`]: [`SignedPost`] (bytes + signature), signing, verification and batch
//!   verification into [`VerifiedPost`].
//! - [`message`]: private messages about a post: signed, padded, sealed to the
//!   recipient ([`message::Envelope`]), and the delivery protocol's requests.
//! - [`circle`]: closed circles' names, signed membership and moderation records,
//!   how membership converges, and the record catch-up exchange (`proto/CIRCLES.md`).
//! - [`invite`]: invite codes (a circle and addresses to join through).
//! - [`codec`]: the one place that encodes and decodes, always with a byte limit.
//!
//! Golden encodings in `proto/vectors/` pin the format; `tests/vectors.rs` fails if it
//! drifts.
#![deny(missing_docs)]

mod bytes;
pub mod circle;
pub mod codec;
pub mod invite;
mod keys;
pub mod limits;
pub mod message;
pub mod post;
pub mod riblt;
pub mod rules;
pub mod signed;
pub mod sync;

pub use bytes::ParseHexError;
pub use codec::CodecError;
pub use post::{AuthorKey, Category, ContentHash, Kind, Nonce, Post, PostId, Status, UnknownName};
pub use rules::{validate, Field, Problem, ValidationError};
pub use signed::{
    verify_batch, Error, Signature, SignedPost, VerifiedPost, MAX_POST_BYTES,
    MAX_SIGNED_POST_BYTES, SIGNING_DOMAIN,
};

/// Re-exported so callers sign with the same key type this crate verifies with.
pub use ed25519_dalek::SigningKey;
