//! Every sled tree and key layout of the store, in one place.
//!
//! Format 2 (this one) keeps on disk only what cannot be derived:
//! - `records`: `seq (u64 BE)` → `SignedPost` wire bytes, one key per post. `seq` is
//!   a record number per post id (from sled's id generator, so new posts append at
//!   the end of the tree); a newer revision overwrites its post's record in place.
//! - `blocked`: author(32) → empty.
//! - `swept`: post id(32) → the highest revision swept, its hash and when to forget
//!   it (see [`super::swept`]). Added within format 2: older code ignores the tree.
//! - `store`: `format` → format version (u32 BE); `analysis` → the version of the
//!   word analysis in `analysed`.
//! - `analysed`: `seq` → the record's word analysis, a cache checked by content hash
//!   (see [`super::analysed`]). Added within format 2: older code ignores the tree.
//!
//! Every index (by id, time, category, circle, tag, area, expiry, content hash, and
//! the sync items) is derived from the records at open and kept in memory: see
//! [`super::index`]. A write is therefore one sled key per post, and a group of writes
//! is one `apply_batch` on one tree, which sled recovers all or nothing.
//!
//! Format 1 (before format versions) had trees `posts`, `ids` and `index` and no
//! `store` tree; [`super::Store::open`] refuses it with [`super::Error::Format`].

use aidmesh_proto::{ContentHash, PostId};

use super::index::Seq;

/// Records: seq → wire bytes.
pub(super) const TREE_RECORDS: &str = "records";
/// Blocked authors.
pub(super) const TREE_BLOCKED: &str = "blocked";
/// Store metadata: the format version.
pub(super) const TREE_META: &str = "store";
/// The key of the format version in [`TREE_META`].
pub(super) const FORMAT_KEY: &[u8] = b"format";
/// The on-disk format this code reads and writes.
pub(super) const FORMAT_VERSION: u32 = 2;
/// Trees of format 1, which had no version key.
pub(super) const FORMAT1_TREES: &[&str] = &["posts", "ids", "index"];

/// The record key of `seq`.
pub(super) fn seq_key(seq: Seq) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The seq of a record key.
pub(super) fn parse_seq(bytes: &[u8]) -> Option<Seq> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The stored form of a format version.
pub(super) fn format_value(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// A format version read back.
pub(super) fn parse_format(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Swept post ids: id(32) → revision (u32 BE) ‖ content hash(32) ‖ forget_at (u64 BE).
pub(super) const TREE_SWEPT: &str = "swept";

/// The stored form of a swept id's memory.
pub(super) fn swept_value(s: &super::swept::Swept) -> [u8; 44] {
    let mut v = [0u8; 44];
    v[..4].copy_from_slice(&s.revision.to_be_bytes());
    v[4..36].copy_from_slice(&s.hash.0);
    v[36..].copy_from_slice(&s.forget_at.to_be_bytes());
    v
}

/// A swept id's memory read back.
pub(super) fn parse_swept(key: &[u8], value: &[u8]) -> Option<(PostId, super::swept::Swept)> {
    let id = PostId(key.try_into().ok()?);
    if value.len() != 44 {
        return None;
    }
    Some((
        id,
        super::swept::Swept {
            revision: u32::from_be_bytes(value[..4].try_into().ok()?),
            hash: ContentHash(value[4..36].try_into().ok()?),
            forget_at: u64::from_be_bytes(value[36..].try_into().ok()?),
        },
    ))
}
