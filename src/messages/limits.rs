//! What a sender (or a peer pushing envelopes to hold) may make this node spend: the
//! settings (`[messages]` in `config.toml`) and the counters that enforce them.
//!
//! The counters are fixed windows kept in memory: a restart forgets them, which gives a
//! spammer at most one extra window per restart of the *recipient*, a cost it does not
//! control. The number of tracked keys is bounded too.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// New conversations a stranger may start with this node per day.
pub const DEFAULT_NEW_CONVERSATIONS_PER_DAY: u32 = 10;
/// Messages one sender may send this node per hour.
pub const DEFAULT_MESSAGES_PER_HOUR: u32 = 60;
/// Envelopes one peer may push to this node for others per hour.
pub const DEFAULT_HOLD_PUSHES_PER_HOUR: u32 = 120;
/// Envelopes held for one recipient.
pub const DEFAULT_HOLD_PER_RECIPIENT: usize = 64;
/// Envelopes held for everyone together (about 44 MB of ciphertext at most).
pub const DEFAULT_HOLD_TOTAL: usize = 10_000;
/// Most senders (or pushing peers) whose counters are kept at once.
const MAX_TRACKED: usize = 16_384;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// `[messages]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// New conversations one sender may open with this node per day.
    pub new_conversations_per_day: u32,
    /// Messages one sender may send this node per hour (receipts included).
    pub messages_per_hour: u32,
    /// Envelopes one peer may hand this node to hold for others per hour.
    pub hold_pushes_per_hour: u32,
    /// Envelopes this node holds for one recipient.
    pub hold_per_recipient: usize,
    /// Envelopes this node holds for others in total.
    pub hold_total: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            new_conversations_per_day: DEFAULT_NEW_CONVERSATIONS_PER_DAY,
            messages_per_hour: DEFAULT_MESSAGES_PER_HOUR,
            hold_pushes_per_hour: DEFAULT_HOLD_PUSHES_PER_HOUR,
            hold_per_recipient: DEFAULT_HOLD_PER_RECIPIENT,
            hold_total: DEFAULT_HOLD_TOTAL,
        }
    }
}

/// Fixed-window counters per key.
#[derive(Debug)]
pub struct Window<K> {
    limit: u32,
    width_ms: u64,
    counts: HashMap<K, (u64, u32)>,
}

impl<K: Eq + Hash + Clone> Window<K> {
    /// At most `limit` per `width_ms`.
    pub fn new(limit: u32, width_ms: u64) -> Self {
        Self {
            limit,
            width_ms,
            counts: HashMap::new(),
        }
    }

    /// Per hour.
    pub fn per_hour(limit: u32) -> Self {
        Self::new(limit, HOUR_MS)
    }

    /// Per day.
    pub fn per_day(limit: u32) -> Self {
        Self::new(limit, DAY_MS)
    }

    /// Whether one more is allowed for `key` at `now`, without counting it.
    pub fn allows(&self, key: &K, now: u64) -> bool {
        match self.counts.get(key) {
            Some((start, n)) if now < start + self.width_ms => *n < self.limit,
            _ => self.limit > 0,
        }
    }

    /// Counts one for `key` if allowed; returns whether it was.
    pub fn take(&mut self, key: &K, now: u64) -> bool {
        if !self.allows(key, now) {
            return false;
        }
        if self.counts.len() >= MAX_TRACKED && !self.counts.contains_key(key) {
            let width = self.width_ms;
            self.counts.retain(|_, (start, _)| now < *start + width);
            if self.counts.len() >= MAX_TRACKED {
                // Everyone tracked is active: refuse newcomers rather than forget a
                // limited sender.
                return false;
            }
        }
        let entry = self.counts.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.width_ms {
            *entry = (now, 0);
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_and_resets() {
        let mut w = Window::per_hour(2);
        assert!(w.take(&1, 0));
        assert!(w.take(&1, 10));
        assert!(!w.take(&1, 20));
        assert!(w.take(&2, 20), "another key has its own budget");
        assert!(w.take(&1, HOUR_MS), "a new window starts");
    }

    #[test]
    fn zero_allows_nothing() {
        let mut w = Window::per_day(0);
        assert!(!w.take(&"a", 0));
    }
}
