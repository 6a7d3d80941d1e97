//! The per-author quota is a function of the set of posts, not of their arrival
//! order: a node that admits posts one at a time, refusing a newcomer without a place
//! and evicting what the quota no longer keeps, ends with the set the quota keeps of
//! all of them, whatever the order.

use std::collections::BTreeMap;

use aidmesh_proto::limits::{
    quota_keeps, AuthorQuota, Seniority, MAX_LIVE_PER_AUTHOR, MAX_POSTS_PER_AUTHOR,
};
use aidmesh_proto::PostId;
use proptest::prelude::*;

/// One node's holding of one author's posts in one circle.
#[derive(Default)]
struct Node {
    held: BTreeMap<Seniority, bool>,
}

impl Node {
    /// Admits one post the way the store does: walk elder first with the newcomer in
    /// its place; refuse it without a place, else evict what lost its place.
    fn admit(&mut self, s: Seniority, live: bool) {
        let mut all = self.held.clone();
        all.insert(s, live);
        let mut quota = AuthorQuota::new();
        let mut keep = BTreeMap::new();
        let mut newcomer_kept = false;
        for (sen, l) in all {
            if quota.keeps(l) {
                keep.insert(sen, l);
                newcomer_kept |= sen == s;
            }
        }
        if newcomer_kept {
            self.held = keep;
        }
    }
}

fn posts() -> impl Strategy<Value = Vec<(Seniority, bool)>> {
    // Few distinct created_at values, so ties (broken by id) are common; enough
    // posts to pass both limits.
    prop::collection::vec(
        (0u64..50, any::<bool>(), prop::bool::weighted(0.2)),
        1..1400,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (t, live_bias, dead))| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                id[31] = (t as u8).wrapping_mul(37);
                (
                    Seniority {
                        created_at: t,
                        id: PostId(id),
                    },
                    live_bias && !dead,
                )
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn arrival_order_does_not_change_what_is_kept(
        posts in posts(),
        seed in any::<u64>(),
    ) {
        let kept = quota_keeps(&posts);
        let expected: BTreeMap<Seniority, bool> = posts
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p)
            .collect();
        let live = expected.values().filter(|l| **l).count();
        prop_assert!(live <= MAX_LIVE_PER_AUTHOR);
        prop_assert!(expected.len() <= MAX_POSTS_PER_AUTHOR);

        // In input order, in reverse, and shuffled.
        let mut shuffled = posts.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let reversed: Vec<_> = posts.iter().rev().copied().collect();
        for order in [&posts, &reversed, &shuffled] {
            let mut node = Node::default();
            for &(s, live) in order {
                node.admit(s, live);
            }
            prop_assert_eq!(&node.held, &expected);
        }
    }
}
