//! Every sled tree and key layout of the store, in one place.
//!
//! Format 2 (this one) keeps on disk only what cannot be derived:
//! - `records`: `seq (u64 BE)` → `SignedPost` wire bytes, one key per post. `seq` is
//!   a record number per post id (from sled's id generator, so new posts append at
//!   the end of the tree); a newer revision overwrites its post's record in place.
//! - `blocked`: author(32) → empty.
//! - `store`: `format` → format version (u32 BE).
//!
//! Every index (by id, time, category, circle, tag, area, expiry, content hash, and
//! the sync items) is derived from the records at open and kept in memory: see
//! [`super::index`]. A write is therefore one sled key per post, and a group of writes
//! is one `apply_batch` on one tree, which sled recovers all or nothing.
//!
//! Format 1 (before format versions) had trees `posts`, `ids` and `index` and no
//! `store` tree; [`super::Store::open`] refuses it with [`super::Error::Format`].

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
