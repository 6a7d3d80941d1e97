//! The highest revision of every swept post id, remembered until no revision of it
//! could still be valid, so that an old revision (with its contact, say) can never be
//! gossiped or synced back after its tombstone or a shortened revision expired.
//!
//! A revision's `expires_at` is at most 90 days after `created_at`, so once
//! `created_at + MAX_LIFETIME_MS` of the swept revision has passed, every older
//! revision with that `created_at` is expired and refused by the rules anyway.
//! Persisted in the `swept` tree (see [`super::keys`]); at most [`MAX_SWEPT`] ids,
//! the one to be forgotten soonest going first.

use std::collections::{BTreeSet, HashMap};

use aidmesh_proto::{ContentHash, PostId};

/// Most swept ids remembered (about 100 bytes each in memory, 76 on disk).
pub const MAX_SWEPT: usize = 200_000;

/// What is remembered of a swept post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Swept {
    /// The highest revision stored before the sweep.
    pub(super) revision: u32,
    /// Its content hash (ties between equal revisions).
    pub(super) hash: ContentHash,
    /// When the memory may go: `created_at + MAX_LIFETIME_MS`.
    pub(super) forget_at: u64,
}

/// The swept ids.
#[derive(Default)]
pub(super) struct SweptSet {
    map: HashMap<PostId, Swept>,
    by_forget: BTreeSet<(u64, PostId)>,
}

impl SweptSet {
    /// Remembers `id`; returns the ids dropped to stay within [`MAX_SWEPT`].
    pub(super) fn insert(&mut self, id: PostId, swept: Swept) -> Vec<PostId> {
        self.remove(&id);
        let mut dropped = Vec::new();
        while self.map.len() >= MAX_SWEPT {
            let Some(&(_, soonest)) = self.by_forget.iter().next() else {
                break;
            };
            self.remove(&soonest);
            dropped.push(soonest);
        }
        self.by_forget.insert((swept.forget_at, id));
        self.map.insert(id, swept);
        dropped
    }

    /// What is remembered of `id`.
    pub(super) fn get(&self, id: &PostId) -> Option<&Swept> {
        self.map.get(id)
    }

    /// Forgets `id`.
    pub(super) fn remove(&mut self, id: &PostId) {
        if let Some(s) = self.map.remove(id) {
            self.by_forget.remove(&(s.forget_at, *id));
        }
    }

    /// The ids whose memory may go at `now`.
    pub(super) fn forgettable(&self, now: u64) -> Vec<PostId> {
        self.by_forget
            .range(..=(now, PostId([u8::MAX; 32])))
            .map(|&(_, id)| id)
            .collect()
    }

    /// Number of ids remembered.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
