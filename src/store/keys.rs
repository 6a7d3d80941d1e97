//! Every sled key layout of the store, in one place.
//!
//! Trees:
//! - `posts`:   `seq (u64 BE)` → `SignedPost` wire bytes. `seq` is a small internal
//!   number per post id, so index entries carry 8 bytes instead of a 32-byte id.
//! - `ids`:     `post id (32)` → `seq (u64 BE)`.
//! - `index`:   secondary indexes, empty values; first byte says which index:
//!   - `T` `newest` `seq`                      every post, newest first
//!   - `G` category `newest` `seq`
//!   - `C` circle `0` `newest` `seq`, `#` tag `0` …
//!   - `L` geohash `0` `newest` `seq`           areas: a prefix scan, then a sort
//!   - `A` author(32) `seq`                     blocking
//!   - `E` expires_at (u64 BE) `seq`            expiry sweep
//!   - `Y` circle `0` updated_at (u64 BE) hash(32) expires_at (u64 BE) `seq`:
//!     the sync items of a circle
//!   - `H` content hash(32) `seq`               fetch by hash (sync)
//! - `blocked`: author(32) → empty.
//!
//! `newest` is `u64::MAX - updated_at` big-endian, so an ascending scan is newest
//! first. Circle, tag and geohash values never contain a zero byte, which makes `0`
//! an unambiguous terminator.
//!
//! Every index entry costs an insert on every write, so only filters that are often
//! selective have one: kind and status are checked on the posts an index yields, and
//! text search scans newest first and stops at the limit.

use aidmesh_proto::{AuthorKey, ContentHash, Post};

pub(super) const TREE_POSTS: &str = "posts";
pub(super) const TREE_IDS: &str = "ids";
pub(super) const TREE_INDEX: &str = "index";
pub(super) const TREE_BLOCKED: &str = "blocked";

pub(super) const ALL: u8 = b'T';
pub(super) const CATEGORY: u8 = b'G';
pub(super) const CIRCLE: u8 = b'C';
pub(super) const TAG: u8 = b'#';
pub(super) const PLACE: u8 = b'L';
pub(super) const AUTHOR: u8 = b'A';
pub(super) const EXPIRY: u8 = b'E';
pub(super) const SYNC: u8 = b'Y';
pub(super) const HASH: u8 = b'H';

pub(super) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub(super) fn parse_seq(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The seq at the end of an index key.
pub(super) fn seq_suffix(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    parse_seq(&key[start..])
}

fn newest(updated_at: u64) -> [u8; 8] {
    (u64::MAX - updated_at).to_be_bytes()
}

/// The prefix of a time-ordered index: `tag value [0]`.
pub(super) fn ordered_prefix(tag: u8, value: &[u8], terminated: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + value.len() + 16);
    k.push(tag);
    k.extend_from_slice(value);
    if terminated {
        k.push(0);
    }
    k
}

fn ordered(tag: u8, value: &[u8], terminated: bool, updated_at: u64, seq: u64) -> Vec<u8> {
    let mut k = ordered_prefix(tag, value, terminated);
    k.extend_from_slice(&newest(updated_at));
    k.extend_from_slice(&seq_key(seq));
    k
}

pub(super) fn author_prefix(author: &AuthorKey) -> Vec<u8> {
    ordered_prefix(AUTHOR, &author.0, false)
}

/// `E` followed by `expires_at`: every expiry key below it has expired by then.
pub(super) fn expiry_bound(now: u64) -> Vec<u8> {
    let mut k = vec![EXPIRY];
    k.extend_from_slice(&now.saturating_add(1).to_be_bytes());
    k
}

/// Prefix of a circle's sync items.
pub(super) fn sync_prefix(circle: &str) -> Vec<u8> {
    ordered_prefix(SYNC, circle.as_bytes(), true)
}

/// `(updated_at, hash, expires_at)` from a sync key (after its prefix).
pub(super) fn parse_sync(rest: &[u8]) -> Option<(u64, [u8; 32], u64)> {
    if rest.len() != 8 + 32 + 8 + 8 {
        return None;
    }
    let updated = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let hash: [u8; 32] = rest[8..40].try_into().ok()?;
    let expires = u64::from_be_bytes(rest[40..48].try_into().ok()?);
    Some((updated, hash, expires))
}

/// Prefix of the hash index for a content-hash prefix.
pub(super) fn hash_prefix(prefix: &[u8]) -> Vec<u8> {
    ordered_prefix(HASH, prefix, false)
}

/// Every index key of `post` (whose content hash is `hash`) stored under `seq`.
pub(super) fn index_keys(post: &Post, hash: &ContentHash, seq: u64) -> Vec<Vec<u8>> {
    let t = post.updated_at;
    let mut keys = vec![
        ordered(ALL, &[], false, t, seq),
        ordered(CATEGORY, &[post.category as u8], false, t, seq),
        ordered(CIRCLE, post.circle.as_bytes(), true, t, seq),
    ];
    for tag in &post.tags {
        keys.push(ordered(TAG, tag.as_bytes(), true, t, seq));
    }
    if let Some(place) = &post.location {
        keys.push(ordered(PLACE, place.as_bytes(), true, t, seq));
    }
    let mut a = author_prefix(&post.author);
    a.extend_from_slice(&seq_key(seq));
    keys.push(a);
    let mut e = vec![EXPIRY];
    e.extend_from_slice(&post.expires_at.to_be_bytes());
    e.extend_from_slice(&seq_key(seq));
    keys.push(e);
    let mut y = sync_prefix(&post.circle);
    y.extend_from_slice(&post.updated_at.to_be_bytes());
    y.extend_from_slice(&hash.0);
    y.extend_from_slice(&post.expires_at.to_be_bytes());
    y.extend_from_slice(&seq_key(seq));
    keys.push(y);
    let mut h = hash_prefix(&hash.0);
    h.extend_from_slice(&seq_key(seq));
    keys.push(h);
    keys
}
