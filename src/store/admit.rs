//! Deciding one write against the indexes, without writing: revision order, swept
//! ids, blocked authors, the per-author quota and the circle budget (the rules of
//! `aidmesh_proto::limits`, specified in `proto/LIMITS.md`).
//!
//! The write path applies a [`Decision`] under the writer lock; the gossip relay asks
//! the same question read-only ([`super::Store::would_change`]) before it relays, so a
//! post this node would refuse is never relayed by it either.

use aidmesh_proto::limits::{self, AuthorQuota, Holding, Seniority, MAX_EVICTIONS_PER_POST};
use aidmesh_proto::VerifiedPost;

use super::gate::{Gate, Verdict};
use super::index::{Index, Seq};
use super::refused::{RefusalReason, Room};
use super::{Inserted, Limits, Refused};

/// Holders of a full circle looked at, at most, for one eviction.
const MAX_HOLDERS_TRIED: usize = 64;

/// Who is writing: the limits are the same, but a node refuses its own user's post
/// rather than evict another of the same author's posts for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// This node's own user.
    Local,
    /// A post from a peer (gossip, sync) or an import.
    Network,
}

/// What to do with one post.
#[derive(Debug)]
pub(super) enum Decision {
    /// Nothing to write: a duplicate, or an older revision than one stored or swept.
    Keep(Inserted),
    /// Refused; nothing is written.
    Refuse {
        /// What the caller is told.
        refused: Refused,
        /// What is remembered.
        reason: RefusalReason,
        /// What frees the refusal early.
        room: Option<Room>,
    },
    /// Write it.
    Write {
        /// Its record: the stored revision's, or `None` for a new post id.
        current: Option<Seq>,
        /// What the write does.
        outcome: Inserted,
        /// Posts to remove to make room, and why.
        evict: Vec<(Seq, RefusalReason, Room)>,
        /// The author holds nothing in a circle under pressure: the write needs a
        /// newcomer token (see `limits::NEWCOMER_POSTS_PER_MINUTE`).
        newcomer: bool,
    },
}

/// Decides `v` (a record of `bytes` bytes) at `now`.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide(
    index: &Index,
    gate: &Gate,
    v: &VerifiedPost,
    bytes: u32,
    limits: &Limits,
    mode: Mode,
    now: u64,
) -> Decision {
    let p = v.post();
    let hash = v.hash();
    // Circles left, closed circles' membership and followed moderation: the same
    // answer on every write path (gossip, sync, import, this node's own posts).
    match gate.check(&p.circle, &p.author, &p.id) {
        Verdict::Pass => {}
        Verdict::NotMember => {
            return Decision::Refuse {
                refused: Refused::NotMember {
                    circle: p.circle.clone(),
                },
                reason: RefusalReason::NotMember,
                room: Some(Room::Circle(p.circle.as_str().into())),
            }
        }
        Verdict::Left => {
            return Decision::Refuse {
                refused: Refused::CircleLeft {
                    circle: p.circle.clone(),
                },
                reason: RefusalReason::Left,
                room: None,
            }
        }
        Verdict::Moderated => {
            return Decision::Refuse {
                refused: Refused::Moderated,
                reason: RefusalReason::Moderated,
                room: Some(Room::Circle(p.circle.as_str().into())),
            }
        }
    }
    if index.is_blocked(&p.author) {
        return Decision::Refuse {
            refused: Refused::Blocked(p.author),
            reason: RefusalReason::Blocked,
            room: None,
        };
    }
    if let Some(s) = index.swept.get(&p.id) {
        if (p.revision, hash) <= (s.revision, s.hash) {
            return Decision::Keep(Inserted::Stale {
                current: s.revision,
            });
        }
    }
    let current = index.by_id(&p.id);
    if let Some((_, e)) = current {
        if (p.revision, hash) <= (e.revision, e.hash) {
            return Decision::Keep(if e.hash == hash {
                Inserted::Duplicate
            } else {
                Inserted::Stale {
                    current: e.revision,
                }
            });
        }
    }
    let outcome = match current {
        None => Inserted::New,
        Some((_, e)) => Inserted::Updated {
            previous: e.revision,
        },
    };
    // The record this write replaces, when it is in the same circle (a revision that
    // moves circles leaves the old one).
    let replaced = current.filter(|(_, e)| *e.circle == *p.circle);

    // The per-author quota: walk the author's posts in the circle elder first, this
    // one among them.
    let held = index.holdings.of(&p.author, &p.circle);
    let live = limits::is_live(p.status);
    let author_room = || Room::Author(p.author, p.circle.as_str().into());
    let mut evict: Vec<(Seq, RefusalReason, Room)> = Vec::new();
    if let Some(held) = held {
        let others = held.arrivals.len() - usize::from(replaced.is_some());
        let live_others =
            held.live - usize::from(replaced.is_some_and(|(_, e)| limits::is_live(e.status)));
        let fits = others < limits::MAX_POSTS_PER_AUTHOR
            && (!live || live_others < limits::MAX_LIVE_PER_AUTHOR);
        if !fits {
            let me = Seniority {
                created_at: p.created_at,
                id: p.id,
            };
            let mut quota = AuthorQuota::new();
            let mut placed: Option<bool> = None;
            for (sen, &seq) in &held.by_seniority {
                if placed.is_none() && me < *sen {
                    placed = Some(quota.keeps(live));
                }
                if replaced.is_some_and(|(r, _)| r == seq) {
                    continue;
                }
                let Some(e) = index.entry(seq) else {
                    continue;
                };
                if e.is_expired(now) {
                    continue;
                }
                if !quota.keeps(limits::is_live(e.status)) {
                    evict.push((seq, RefusalReason::OverQuota, author_room()));
                }
            }
            let kept = match placed {
                Some(k) => k,
                None => quota.keeps(live),
            };
            if !kept || (mode == Mode::Local && !evict.is_empty()) {
                return Decision::Refuse {
                    refused: Refused::OverQuota {
                        circle: p.circle.clone(),
                        live,
                    },
                    reason: RefusalReason::OverQuota,
                    room: Some(author_room()),
                };
            }
        }
    }

    // The circle budget.
    let circle = index.holdings.circle(&p.circle);
    let (mut posts, mut total) = circle.map_or((0, 0), |c| (c.posts, c.bytes));
    let pressure_before =
        limits::under_pressure(posts, total, limits.circle_posts, limits.circle_bytes);
    match replaced {
        Some((_, e)) => total -= u64::from(e.bytes),
        None => posts += 1,
    }
    total += u64::from(bytes);
    for (seq, _, _) in &evict {
        if let Some(e) = index.entry(*seq) {
            posts -= 1;
            total -= u64::from(e.bytes);
        }
    }
    let over = |posts: u64, total: u64| posts > limits.circle_posts || total > limits.circle_bytes;
    if over(posts, total) {
        let newcomer = held.map_or(
            Holding {
                posts: 0,
                first_arrival: None,
            },
            |h| h.holding(),
        );
        let circle_room = || Room::Circle(p.circle.as_str().into());
        let mut budget_evictions = 0;
        if let Some(circle) = circle {
            for holder in circle.holders_by_most().take(MAX_HOLDERS_TRIED) {
                if holder == p.author {
                    continue;
                }
                let Some(theirs) = index.holdings.of(&holder, &p.circle) else {
                    continue;
                };
                let Some(&victim) = theirs.arrivals.last() else {
                    continue;
                };
                if !limits::may_evict(newcomer, theirs.holding(), victim) {
                    continue;
                }
                let Some(e) = index.entry(victim) else {
                    continue;
                };
                evict.push((victim, RefusalReason::CircleFull, circle_room()));
                posts -= 1;
                total -= u64::from(e.bytes);
                budget_evictions += 1;
                if !over(posts, total) || budget_evictions >= MAX_EVICTIONS_PER_POST {
                    break;
                }
            }
        }
        if over(posts, total) {
            return Decision::Refuse {
                refused: Refused::CircleFull {
                    circle: p.circle.clone(),
                },
                reason: RefusalReason::CircleFull,
                room: Some(circle_room()),
            };
        }
    }
    Decision::Write {
        current: current.map(|(seq, _)| seq),
        outcome,
        evict,
        newcomer: mode == Mode::Network && held.is_none() && pressure_before,
    }
}
