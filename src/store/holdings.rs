//! Who holds what in each circle: the in-memory view the limits of
//! `aidmesh_proto::limits` are decided on. Part of the [`super::index::Index`], kept in
//! step with every write and rebuilt from the records at open like the rest of it.
//!
//! - per author and circle, the author's posts by seniority (`created_at`, id) for the
//!   per-author quota, and by arrival (record number) for the budget;
//! - per circle, how many posts and record bytes it holds, and its holders ordered by
//!   how much they hold, so the budget finds the author holding the most at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aidmesh_proto::limits::{self, Holding, Seniority};
use aidmesh_proto::AuthorKey;

use super::index::{Entry, Seq};

/// One author's posts in one circle.
#[derive(Default, Debug)]
pub(super) struct AuthorPosts {
    /// By seniority, elder first.
    pub(super) by_seniority: BTreeMap<Seniority, Seq>,
    /// By arrival on this node (record numbers grow), earliest first.
    pub(super) arrivals: BTreeSet<Seq>,
    /// How many are live (expired ones not yet swept included).
    pub(super) live: usize,
}

impl AuthorPosts {
    /// The budget's view of this author.
    pub(super) fn holding(&self) -> Holding {
        Holding {
            posts: self.arrivals.len() as u64,
            first_arrival: self.arrivals.first().copied(),
        }
    }
}

/// One circle's totals and holders.
#[derive(Default, Debug)]
pub(super) struct CircleHold {
    /// Posts held, tombstones and expired ones not yet swept included.
    pub(super) posts: u64,
    /// Their record bytes.
    pub(super) bytes: u64,
    /// `(posts held, first arrival, author)`: the last holds the most, ties to the
    /// most recently first seen.
    holders: BTreeSet<(u64, Seq, AuthorKey)>,
}

impl CircleHold {
    /// Holders from the one holding the most down.
    pub(super) fn holders_by_most(&self) -> impl Iterator<Item = AuthorKey> + '_ {
        self.holders.iter().rev().map(|&(_, _, a)| a)
    }
}

/// The holdings of every circle.
#[derive(Default)]
pub(super) struct Holdings {
    authors: HashMap<(AuthorKey, Box<str>), AuthorPosts>,
    circles: HashMap<Box<str>, CircleHold>,
}

fn holder_key(author: AuthorKey, posts: &AuthorPosts) -> Option<(u64, Seq, AuthorKey)> {
    let h = posts.holding();
    Some((h.posts, h.first_arrival?, author))
}

impl Holdings {
    /// Counts a stored post.
    pub(super) fn insert(&mut self, seq: Seq, e: &Entry) {
        let posts = self
            .authors
            .entry((e.author, e.circle.clone()))
            .or_default();
        let circle = self.circles.entry(e.circle.clone()).or_default();
        if let Some(k) = holder_key(e.author, posts) {
            circle.holders.remove(&k);
        }
        posts.by_seniority.insert(seniority(e), seq);
        posts.arrivals.insert(seq);
        posts.live += usize::from(limits::is_live(e.status));
        circle.posts += 1;
        circle.bytes += u64::from(e.bytes);
        if let Some(k) = holder_key(e.author, posts) {
            circle.holders.insert(k);
        }
    }

    /// Stops counting a stored post.
    pub(super) fn remove(&mut self, seq: Seq, e: &Entry) {
        let key = (e.author, e.circle.clone());
        let Some(posts) = self.authors.get_mut(&key) else {
            return;
        };
        let Some(circle) = self.circles.get_mut(&e.circle) else {
            return;
        };
        if let Some(k) = holder_key(e.author, posts) {
            circle.holders.remove(&k);
        }
        if posts.arrivals.remove(&seq) {
            posts.by_seniority.remove(&seniority(e));
            posts.live -= usize::from(limits::is_live(e.status));
            circle.posts -= 1;
            circle.bytes -= u64::from(e.bytes);
        }
        if let Some(k) = holder_key(e.author, posts) {
            circle.holders.insert(k);
        }
        if posts.arrivals.is_empty() {
            self.authors.remove(&key);
        }
        if circle.posts == 0 {
            self.circles.remove(&e.circle);
        }
    }

    /// `author`'s posts in `circle`, if any.
    pub(super) fn of(&self, author: &AuthorKey, circle: &str) -> Option<&AuthorPosts> {
        // The map is keyed by owned names; a short-lived key is the price of a
        // tuple key.
        self.authors.get(&(*author, circle.into()))
    }

    /// `circle`'s totals, if it holds anything.
    pub(super) fn circle(&self, circle: &str) -> Option<&CircleHold> {
        self.circles.get(circle)
    }

    /// Whether nothing is counted (for tests of the index).
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.authors.is_empty() && self.circles.is_empty()
    }
}

/// A stored post's seniority.
pub(super) fn seniority(e: &Entry) -> Seniority {
    Seniority {
        created_at: e.created_at,
        id: e.id,
    }
}
