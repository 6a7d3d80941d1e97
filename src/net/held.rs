//! Posts dated ahead of this node's clock, kept aside until their time instead of
//! being refused and fetched again on every sync.
//!
//! A post may be at most [`MAX_CLOCK_SKEW_MS`] ahead of the clock of the node that
//! stores it. When a peer's clock (or ours) is off by more, its new posts arrive
//! "from the future". They are verified as of the time they become valid, held here
//! (bounded in count and in how far ahead), and written to the store when due; sync
//! does not fetch them again meanwhile.

use std::collections::{BTreeMap, HashMap};

use aidmesh_proto::riblt::ITEM_HASH_BYTES;
use aidmesh_proto::rules::MAX_CLOCK_SKEW_MS;
use aidmesh_proto::SignedPost;

/// Most posts held at once (each at most ~8.3 KB: under 9 MB).
pub const MAX_HELD: usize = 1024;
/// Posts due further ahead than this are dropped: no honest clock is a day off.
pub const MAX_AHEAD_MS: u64 = 24 * 60 * 60 * 1000;

type Key = [u8; ITEM_HASH_BYTES];

/// Why a post was not held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotHeld {
    /// Not ahead of the clock at all.
    NotAhead,
    /// Due more than [`MAX_AHEAD_MS`] ahead.
    TooFarAhead,
    /// Invalid even at its own time (bad signature, broken rule).
    Invalid,
    /// Held already.
    Duplicate,
    /// [`MAX_HELD`] posts due sooner are held.
    Full,
}

/// The posts held aside, by due time.
#[derive(Default)]
pub(crate) struct Held {
    by_due: BTreeMap<(u64, Key), (String, SignedPost)>,
    keys: HashMap<Key, u64>,
}

impl Held {
    /// Holds `signed` until it becomes valid, if it is ahead of `now` by more than
    /// the skew the rules allow but valid at its own time. Returns how far ahead it
    /// was (ms).
    pub fn offer(&mut self, signed: SignedPost, now: u64) -> Result<u64, NotHeld> {
        let post = signed.decode_post().map_err(|_| NotHeld::Invalid)?;
        let stamp = post.created_at.max(post.updated_at);
        let due = stamp.saturating_sub(MAX_CLOCK_SKEW_MS);
        if due <= now {
            return Err(NotHeld::NotAhead);
        }
        if due - now > MAX_AHEAD_MS {
            return Err(NotHeld::TooFarAhead);
        }
        let key = key_of(&signed);
        if self.keys.contains_key(&key) {
            return Err(NotHeld::Duplicate);
        }
        // Every rule and the signature, as of the moment it becomes valid.
        let signed = signed
            .verify(due)
            .map_err(|_| NotHeld::Invalid)?
            .signed()
            .clone();
        if self.keys.len() >= MAX_HELD {
            // Keep the ones due soonest.
            let Some((&latest, _)) = self.by_due.iter().next_back() else {
                return Err(NotHeld::Full);
            };
            if latest.0 <= due {
                return Err(NotHeld::Full);
            }
            self.by_due.remove(&latest);
            self.keys.remove(&latest.1);
        }
        self.keys.insert(key, due);
        self.by_due.insert((due, key), (post.circle, signed));
        Ok(stamp - now)
    }

    /// Takes the posts that are due at `now`.
    pub fn due(&mut self, now: u64) -> Vec<SignedPost> {
        let later = self
            .by_due
            .split_off(&(now.saturating_add(1), [0; ITEM_HASH_BYTES]));
        let due = std::mem::replace(&mut self.by_due, later);
        due.into_iter()
            .map(|((_, key), (_, signed))| {
                self.keys.remove(&key);
                signed
            })
            .collect()
    }

    /// Keys held for `circle`, for sync not to fetch them again.
    pub fn keys_of(&self, circle: &str) -> Vec<Key> {
        self.by_due
            .iter()
            .filter(|(_, (c, _))| c == circle)
            .map(|((_, k), _)| *k)
            .collect()
    }

    /// Posts held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether this key is held.
    #[cfg(test)]
    fn holds(&self, key: &Key) -> bool {
        self.keys.contains_key(key)
    }
}

/// The sync key of a post: the first 16 bytes of its content hash.
pub(crate) fn key_of(signed: &SignedPost) -> Key {
    let mut key = [0u8; ITEM_HASH_BYTES];
    key.copy_from_slice(&signed.content_hash().0[..ITEM_HASH_BYTES]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::Draft;
    use aidmesh_proto::{Category, Kind};

    const NOW: u64 = 1_780_000_000_000;
    const HOUR: u64 = 3_600_000;

    fn post_at(n: u8, at: u64) -> SignedPost {
        let me = crate::Identity::from_secret([n; 32]);
        Draft::new(Kind::Offer, Category::Food, "Soup")
            .into_post(me.author(), at)
            .unwrap()
            .sign(me.signing_key())
            .unwrap()
    }

    #[test]
    fn a_post_from_an_hour_ahead_is_held_until_its_time() {
        let mut held = Held::default();
        let p = post_at(1, NOW + HOUR);
        assert_eq!(held.offer(p.clone(), NOW), Ok(HOUR));
        assert!(held.holds(&key_of(&p)));
        assert_eq!(held.keys_of("commons"), vec![key_of(&p)]);
        assert!(held.keys_of("elsewhere").is_empty());
        assert_eq!(held.offer(p.clone(), NOW), Err(NotHeld::Duplicate));
        assert!(held.due(NOW + HOUR / 2).is_empty());
        let due = held.due(NOW + HOUR - MAX_CLOCK_SKEW_MS);
        assert_eq!(due, vec![p.clone()]);
        assert!(held.is_empty());
        // Valid by then.
        assert!(due[0]
            .clone()
            .verify(NOW + HOUR - MAX_CLOCK_SKEW_MS)
            .is_ok());
    }

    #[test]
    fn only_posts_ahead_and_valid_are_held() {
        let mut held = Held::default();
        assert_eq!(held.offer(post_at(1, NOW), NOW), Err(NotHeld::NotAhead));
        assert_eq!(
            held.offer(post_at(1, NOW + 2 * MAX_AHEAD_MS), NOW),
            Err(NotHeld::TooFarAhead)
        );
        let mut bad = post_at(1, NOW + HOUR);
        bad.signature.0[0] ^= 1;
        assert_eq!(held.offer(bad, NOW), Err(NotHeld::Invalid));
    }

    #[test]
    fn the_table_is_bounded_and_keeps_what_is_due_soonest() {
        let mut held = Held::default();
        for i in 0..MAX_HELD as u64 {
            let p = post_at((i % 200) as u8 + 1, NOW + HOUR + i * 1000);
            held.offer(p, NOW).unwrap();
        }
        assert_eq!(held.len(), MAX_HELD);
        assert_eq!(
            held.offer(post_at(201, NOW + 2 * HOUR), NOW),
            Err(NotHeld::Full)
        );
        assert!(held.offer(post_at(202, NOW + HOUR / 2), NOW).is_ok());
        assert_eq!(held.len(), MAX_HELD);
    }
}
