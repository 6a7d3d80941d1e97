//! What a node stores: the limits that keep one key, or many fresh keys, from filling
//! every node of a circle. Specified in `proto/LIMITS.md`.
//!
//! Two rules, both pure functions of what a node holds, so every node applies them
//! the same way:
//!
//! - **Per-author quota** ([`AuthorQuota`]): of one author's unexpired posts in one
//!   circle, a node keeps at most [`MAX_LIVE_PER_AUTHOR`] live ones (open, or any
//!   status that is neither fulfilled nor withdrawn) and at most
//!   [`MAX_POSTS_PER_AUTHOR`] in all. The elder posts win: posts are ranked by
//!   [`Seniority`] (`created_at`, then id) and walked elder first, each kept while
//!   there is room for it. The set kept depends only on the set of posts, never on
//!   the order they arrived in, so honest nodes converge on the same set and sync
//!   never fights over it. A newcomer over the quota is refused (and not relayed);
//!   a backdated post can only push out the same author's younger posts.
//! - **Per-circle budget** ([`may_evict`]): a node keeps at most
//!   [`CIRCLE_BUDGET_POSTS`] posts and [`CIRCLE_BUDGET_BYTES`] of records per circle
//!   (defaults; a node may be configured otherwise). A full circle admits a post only
//!   by evicting one from the author holding the most, and never evicts a post that
//!   arrived before the newcomer's author was first seen in the circle in favour of
//!   it: a flood can only displace the flood.
//!
//! On top of these, while a circle is more than [`PRESSURE_PERCENT`] full a node
//! admits at most [`NEWCOMER_POSTS_PER_MINUTE`] posts per minute by authors it holds
//! no post from in that circle (a local rate, see [`NewcomerBucket`]).

use crate::post::{PostId, Status};

/// Most live posts (see [`is_live`]) one author keeps in one circle.
pub const MAX_LIVE_PER_AUTHOR: usize = 100;
/// Most posts of any status one author keeps in one circle. Fulfilled posts and
/// tombstones are not live but still take room; this bounds them.
pub const MAX_POSTS_PER_AUTHOR: usize = 1000;
/// Default most posts a node keeps per circle.
pub const CIRCLE_BUDGET_POSTS: u64 = 200_000;
/// Default most record bytes (signed wire bytes) a node keeps per circle: 1 GiB.
pub const CIRCLE_BUDGET_BYTES: u64 = 1 << 30;
/// Most posts one arriving post may evict to fit a full circle (a post is at most
/// 8 KiB, so by bytes one or two evictions of average posts make room).
pub const MAX_EVICTIONS_PER_POST: usize = 8;
/// Above this share of either budget, posts by authors new to the circle are rate
/// limited.
pub const PRESSURE_PERCENT: u64 = 50;
/// Posts by authors new to a circle a node admits per minute while the circle is
/// under pressure (also the burst).
pub const NEWCOMER_POSTS_PER_MINUTE: u32 = 120;

/// Whether a post in `status` counts against [`MAX_LIVE_PER_AUTHOR`]: every status
/// but fulfilled and withdrawn (so open, and promised where it exists).
pub fn is_live(status: Status) -> bool {
    !matches!(status, Status::Fulfilled | Status::Withdrawn)
}

/// A post's rank among its author's posts in a circle: the smaller is the elder and
/// wins a place first. `created_at` first, the id breaks ties (ids are unique per
/// author), so every node ranks the same posts the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seniority {
    /// `created_at` of the post's current revision.
    pub created_at: u64,
    /// The post id.
    pub id: PostId,
}

/// The per-author quota, applied to one author's unexpired posts in one circle.
///
/// Feed it the posts elder first (ascending [`Seniority`]); [`AuthorQuota::keeps`]
/// says for each whether it has a place.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorQuota {
    live: usize,
    total: usize,
}

impl AuthorQuota {
    /// An empty quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the next post (elder first), live or not, is kept; counts it if so.
    pub fn keeps(&mut self, live: bool) -> bool {
        if self.total >= MAX_POSTS_PER_AUTHOR || (live && self.live >= MAX_LIVE_PER_AUTHOR) {
            return false;
        }
        self.total += 1;
        self.live += usize::from(live);
        true
    }

    /// Live posts kept so far.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Posts kept so far.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// Which of `posts` (one author, one circle, unexpired; any order) the quota keeps:
/// one flag per input, in input order.
pub fn quota_keeps(posts: &[(Seniority, bool)]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..posts.len()).collect();
    order.sort_by_key(|&i| posts[i].0);
    let mut quota = AuthorQuota::new();
    let mut kept = vec![false; posts.len()];
    for i in order {
        kept[i] = quota.keeps(posts[i].1);
    }
    kept
}

/// An author's holding in a circle, as the budget sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    /// Posts the author holds in the circle.
    pub posts: u64,
    /// Local arrival number (increasing) of the author's earliest held post in the
    /// circle; `None` for an author the node holds nothing from.
    pub first_arrival: Option<u64>,
}

/// Whether a full circle may evict `victim_arrival` — the most recently arrived post
/// of `holder` — to admit a post by `newcomer`.
///
/// - A post that arrived before the newcomer's author was first seen in the circle is
///   never evicted for it (an author never seen evicts nothing): a flood of fresh
///   keys cannot displace what was there before it.
/// - And the holder must hold at least two posts more than the newcomer, or be
///   junior to it (first seen later): eviction moves towards equal shares and never
///   takes from a senior author holding as little as the newcomer.
///
/// Callers try holders by most posts first (ties: the most recently first seen), so
/// the budget takes from the authors holding the most.
pub fn may_evict(newcomer: Holding, holder: Holding, victim_arrival: u64) -> bool {
    let Some(newcomer_first) = newcomer.first_arrival else {
        return false;
    };
    if victim_arrival <= newcomer_first {
        return false;
    }
    let junior = holder.first_arrival.is_some_and(|h| h > newcomer_first);
    junior || holder.posts >= newcomer.posts.saturating_add(2)
}

/// Whether a circle holding `posts` posts and `bytes` record bytes is under
/// pressure against the budgets `max_posts` and `max_bytes`.
pub fn under_pressure(posts: u64, bytes: u64, max_posts: u64, max_bytes: u64) -> bool {
    posts.saturating_mul(100) > max_posts.saturating_mul(PRESSURE_PERCENT)
        || bytes.saturating_mul(100) > max_bytes.saturating_mul(PRESSURE_PERCENT)
}

/// A token bucket for posts by authors new to a circle: [`NEWCOMER_POSTS_PER_MINUTE`]
/// tokens a minute, as many in a burst. Time is the caller's clock (ms), so the
/// bucket is deterministic in tests.
#[derive(Clone, Copy, Debug)]
pub struct NewcomerBucket {
    tokens: f64,
    at: u64,
}

impl NewcomerBucket {
    /// A full bucket at `now`.
    pub fn new(now: u64) -> Self {
        Self {
            tokens: f64::from(NEWCOMER_POSTS_PER_MINUTE),
            at: now,
        }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.at) as f64;
        let cap = f64::from(NEWCOMER_POSTS_PER_MINUTE);
        self.tokens = (self.tokens + elapsed * cap / 60_000.0).min(cap);
        self.at = self.at.max(now);
    }

    /// Whether the bucket is full again at `now` (it then holds no information).
    pub fn is_full(&mut self, now: u64) -> bool {
        self.refill(now);
        self.tokens >= f64::from(NEWCOMER_POSTS_PER_MINUTE)
    }

    /// Whether a token is available at `now`, without taking it.
    pub fn available(&mut self, now: u64) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes a token at `now`; false (and nothing taken) when there is none.
    pub fn take(&mut self, now: u64) -> bool {
        if !self.available(now) {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(created_at: u64, n: u8) -> Seniority {
        Seniority {
            created_at,
            id: PostId([n; 32]),
        }
    }

    #[test]
    fn the_elder_hundred_live_posts_are_kept() {
        let posts: Vec<(Seniority, bool)> =
            (0..150u64).map(|i| (s(1000 - i, i as u8), true)).collect();
        let kept = quota_keeps(&posts);
        // created_at 1000 - i: the last 100 inputs are the eldest.
        assert_eq!(kept.iter().filter(|k| **k).count(), MAX_LIVE_PER_AUTHOR);
        assert!(kept[50..].iter().all(|k| *k));
        assert!(kept[..50].iter().all(|k| !*k));
    }

    #[test]
    fn non_live_posts_take_room_only_in_the_total() {
        let mut q = AuthorQuota::new();
        for _ in 0..MAX_LIVE_PER_AUTHOR {
            assert!(q.keeps(true));
        }
        assert!(!q.keeps(true));
        for _ in MAX_LIVE_PER_AUTHOR..MAX_POSTS_PER_AUTHOR {
            assert!(q.keeps(false));
        }
        assert!(!q.keeps(false));
        assert_eq!(
            (q.live(), q.total()),
            (MAX_LIVE_PER_AUTHOR, MAX_POSTS_PER_AUTHOR)
        );
    }

    #[test]
    fn ties_in_created_at_are_broken_by_id() {
        let mut posts: Vec<(Seniority, bool)> = (0..=100u8).map(|n| (s(5, n), true)).collect();
        posts.reverse();
        let kept = quota_keeps(&posts);
        // Id [100; 32] is the largest: it is the one refused.
        assert!(!kept[0]);
        assert!(kept[1..].iter().all(|k| *k));
    }

    #[test]
    fn budget_never_evicts_what_was_there_before_the_newcomer() {
        let never_seen = Holding {
            posts: 0,
            first_arrival: None,
        };
        let big = Holding {
            posts: 900,
            first_arrival: Some(1),
        };
        assert!(!may_evict(never_seen, big, 50));
        let fresh = Holding {
            posts: 1,
            first_arrival: Some(100),
        };
        // The holder's newest post arrived before the newcomer: protected.
        assert!(!may_evict(fresh, big, 99));
        // Arrived after it, and the holder holds far more: evictable.
        assert!(may_evict(fresh, big, 101));
        // A senior holding about as little is never taken from...
        let small_senior = Holding {
            posts: 2,
            first_arrival: Some(1),
        };
        assert!(!may_evict(fresh, small_senior, 101));
        // ...but a junior is, whatever it holds.
        let junior = Holding {
            posts: 1,
            first_arrival: Some(150),
        };
        assert!(may_evict(fresh, junior, 151));
    }

    #[test]
    fn newcomer_bucket_refills_at_its_rate() {
        let mut b = NewcomerBucket::new(0);
        for _ in 0..NEWCOMER_POSTS_PER_MINUTE {
            assert!(b.take(0));
        }
        assert!(!b.take(0));
        assert!(!b.take(400));
        assert!(b.take(500));
        assert!(!b.take(500));
        assert!(b.take(60_000));
    }

    #[test]
    fn pressure_starts_past_half_of_either_budget() {
        assert!(!under_pressure(100, 10, 200, 1000));
        assert!(under_pressure(101, 10, 200, 1000));
        assert!(under_pressure(1, 501, 200, 1000));
    }
}
