//! Posts this node refused, remembered (bounded) so that sync does not fetch them
//! again on every session.
//!
//! Sync reconciles sets of items (`updated_at`, first 16 bytes of the content hash):
//! a post a node refused stays in its peers' sets, so without a memory every session
//! would find it missing and fetch it again. Each refusal is remembered by the item's
//! hash until it can no longer matter ([`Refusal::until`]: the post's expiry for a
//! lasting reason, the moment a future-dated post becomes acceptable, a few minutes
//! for a rate limit), and refusals for lack of room are forgotten as soon as room
//! frees up (the author's own posts leave or stop being live, or the circle loses
//! posts), so that the next sync fetches them again.
//!
//! At most [`MAX_REFUSED`] refusals are kept; past that the one that would be
//! forgotten soonest goes first.

use std::collections::{BTreeSet, HashMap, HashSet};

use aidmesh_proto::riblt::ITEM_HASH_BYTES;
use aidmesh_proto::{AuthorKey, ContentHash};

/// Most refusals remembered (about 100 bytes each).
pub const MAX_REFUSED: usize = 100_000;
/// How long a refusal for a passing reason (a rate limit, an undecodable or badly
/// signed post) is remembered.
pub const RETRY_AFTER_MS: u64 = 10 * 60 * 1000;

/// The key a refusal is remembered by: the hash prefix sync items carry.
pub type RefusedKey = [u8; ITEM_HASH_BYTES];

/// The key of a content hash.
pub fn key_of(hash: &ContentHash) -> RefusedKey {
    let mut k = [0u8; ITEM_HASH_BYTES];
    k.copy_from_slice(&hash.0[..ITEM_HASH_BYTES]);
    k
}

/// Why a post was refused, as remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Its author is blocked on this node.
    Blocked,
    /// Its author already has as many posts in the circle as the quota allows, all
    /// elder (see `aidmesh_proto::limits`); also a post the quota evicted.
    OverQuota,
    /// The circle is at its budget and nothing may be evicted for it; also a post
    /// the budget evicted.
    CircleFull,
    /// Too many posts by authors new to the circle right now.
    Newcomers,
    /// A newer revision of the same post is stored (or was, until it expired).
    Superseded,
    /// Dated in the future beyond the allowed clock skew.
    Future,
    /// Undecodable, badly signed or breaking a rule.
    Invalid,
    /// A closed circle's post by someone who is not a current member.
    NotMember,
    /// Hidden or blocked by a moderator this node follows.
    Moderated,
    /// Of a circle this node has left (never remembered).
    Left,
}

impl RefusalReason {
    /// A stable machine-readable name.
    pub fn code(self) -> &'static str {
        match self {
            RefusalReason::Blocked => "blocked",
            RefusalReason::OverQuota => "over_quota",
            RefusalReason::CircleFull => "circle_full",
            RefusalReason::Newcomers => "newcomers",
            RefusalReason::Superseded => "superseded",
            RefusalReason::Future => "future",
            RefusalReason::Invalid => "invalid",
            RefusalReason::NotMember => "not_member",
            RefusalReason::Moderated => "moderated",
            RefusalReason::Left => "circle_left",
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What frees a refusal for lack of room.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Room {
    /// One author's quota in one circle.
    Author(AuthorKey, Box<str>),
    /// One circle's budget.
    Circle(Box<str>),
}

/// One remembered refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// Until when (ms since the epoch) it holds.
    pub until: u64,
    /// The author, when known (for unblocking).
    author: Option<AuthorKey>,
    /// What frees it early.
    room: Option<Room>,
}

/// The remembered refusals.
#[derive(Default)]
pub(super) struct RefusedSet {
    entries: HashMap<RefusedKey, Refusal>,
    /// By `until`, to forget the soonest first and prune expired ones.
    by_until: BTreeSet<(u64, RefusedKey)>,
    /// Refusals for lack of room, by the room that frees them.
    rooms: HashMap<Room, HashSet<RefusedKey>>,
}

impl RefusedSet {
    /// Remembers a refusal (replacing one of the same key).
    pub(super) fn note(
        &mut self,
        key: RefusedKey,
        reason: RefusalReason,
        until: u64,
        author: Option<AuthorKey>,
        room: Option<Room>,
    ) {
        self.forget(&key);
        while self.entries.len() >= MAX_REFUSED {
            let Some(&(_, soonest)) = self.by_until.iter().next() else {
                break;
            };
            self.forget(&soonest);
        }
        if let Some(r) = &room {
            self.rooms.entry(r.clone()).or_default().insert(key);
        }
        self.by_until.insert((until, key));
        self.entries.insert(
            key,
            Refusal {
                reason,
                until,
                author,
                room,
            },
        );
    }

    /// The refusal of `key` still in force at `now`.
    pub(super) fn get(&self, key: &RefusedKey, now: u64) -> Option<&Refusal> {
        self.entries.get(key).filter(|r| r.until > now)
    }

    fn forget(&mut self, key: &RefusedKey) {
        let Some(r) = self.entries.remove(key) else {
            return;
        };
        self.by_until.remove(&(r.until, *key));
        if let Some(room) = &r.room {
            if let Some(set) = self.rooms.get_mut(room) {
                set.remove(key);
                if set.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
    }

    /// Forgets the refusals that room freed by `room` may now admit.
    pub(super) fn room_freed(&mut self, room: &Room) {
        if let Some(keys) = self.rooms.remove(room) {
            for k in keys {
                self.forget(&k);
            }
        }
    }

    /// Forgets the refusals of a post of `author` because it was blocked.
    pub(super) fn unblocked(&mut self, author: &AuthorKey) {
        let keys: Vec<RefusedKey> = self
            .entries
            .iter()
            .filter(|(_, r)| {
                r.reason == RefusalReason::Blocked && r.author.as_ref() == Some(author)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.forget(&k);
        }
    }

    /// Forgets every refusal that no longer holds at `now`.
    pub(super) fn prune(&mut self, now: u64) {
        while let Some(&(until, key)) = self.by_until.iter().next() {
            if until > now {
                break;
            }
            self.forget(&key);
        }
    }

    /// Number of refusals remembered.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u8) -> RefusedKey {
        [n; ITEM_HASH_BYTES]
    }

    #[test]
    fn refusals_expire_are_freed_by_room_and_stay_bounded() {
        let mut set = RefusedSet::default();
        let room = Room::Author(AuthorKey([1; 32]), "commons".into());
        set.note(
            k(1),
            RefusalReason::OverQuota,
            100,
            None,
            Some(room.clone()),
        );
        set.note(k(2), RefusalReason::Future, 50, None, None);
        assert!(set.get(&k(1), 0).is_some());
        assert!(set.get(&k(2), 50).is_none(), "a refusal ends at its time");
        set.room_freed(&room);
        assert!(set.get(&k(1), 0).is_none(), "room frees the quota refusal");
        assert!(set.rooms.is_empty());
        set.prune(60);
        assert_eq!(set.len(), 0);

        for i in 0..MAX_REFUSED as u64 + 10 {
            let mut key = [0u8; ITEM_HASH_BYTES];
            key[..8].copy_from_slice(&i.to_be_bytes());
            set.note(key, RefusalReason::Invalid, 1000 + i, None, None);
        }
        assert_eq!(set.len(), MAX_REFUSED);
        // The soonest to expire went first.
        let mut first = [0u8; ITEM_HASH_BYTES];
        first[..8].copy_from_slice(&0u64.to_be_bytes());
        assert!(set.get(&first, 0).is_none());
    }

    #[test]
    fn unblocking_forgets_that_authors_refusals() {
        let mut set = RefusedSet::default();
        let a = AuthorKey([3; 32]);
        set.note(k(1), RefusalReason::Blocked, 100, Some(a), None);
        set.note(
            k(2),
            RefusalReason::Blocked,
            100,
            Some(AuthorKey([4; 32])),
            None,
        );
        set.unblocked(&a);
        assert!(set.get(&k(1), 0).is_none());
        assert!(set.get(&k(2), 0).is_some());
    }
}
