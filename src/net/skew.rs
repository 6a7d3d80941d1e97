//! Clock skew as seen in peers' posts: fresh gossip carries `updated_at` stamped by
//! its author a moment earlier, so the median offset from our clock over recent posts
//! of several authors tells whether our clock (or the circle's) is off.

use std::collections::VecDeque;

use aidmesh_proto::AuthorKey;
use serde::Serialize;

/// Recent samples kept.
const SAMPLES: usize = 64;
/// Fewest samples, and distinct authors among them, before an estimate is given.
const MIN_SAMPLES: usize = 8;
const MIN_AUTHORS: usize = 3;
/// Offsets beyond this are reported (in status and the log) as skew.
pub const SKEW_WARN_MS: i64 = 2 * 60 * 1000;

/// The estimate shown in `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockSkew {
    /// Median of (post time − our time) over recent fresh posts: positive when peers'
    /// posts are ahead of our clock (ours is behind), negative when behind.
    pub peers_ahead_ms: i64,
    /// Posts the estimate is based on.
    pub samples: usize,
    /// Whether the offset is large enough to matter (over two minutes either way).
    pub skewed: bool,
}

/// The estimator.
#[derive(Default)]
pub(crate) struct Skew {
    samples: VecDeque<(AuthorKey, i64)>,
    /// Whether the last estimate was skewed, so the log says so once per change.
    warned: bool,
}

impl Skew {
    /// Records a freshly gossiped post by `author` stamped `stamp`, received at `now`.
    /// Returns the estimate when it just crossed the warning threshold (either way).
    pub fn sample(&mut self, author: AuthorKey, stamp: u64, now: u64) -> Option<ClockSkew> {
        let offset = (stamp as i128 - now as i128).clamp(i64::MIN as i128, i64::MAX as i128);
        if self.samples.len() >= SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((author, offset as i64));
        let estimate = self.estimate()?;
        if estimate.skewed != self.warned {
            self.warned = estimate.skewed;
            return Some(estimate);
        }
        None
    }

    /// The current estimate, once enough authors were heard from.
    pub fn estimate(&self) -> Option<ClockSkew> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut authors: Vec<&AuthorKey> = self.samples.iter().map(|(a, _)| a).collect();
        authors.sort();
        authors.dedup();
        if authors.len() < MIN_AUTHORS {
            return None;
        }
        let mut offsets: Vec<i64> = self.samples.iter().map(|(_, o)| *o).collect();
        offsets.sort_unstable();
        let median = offsets[offsets.len() / 2];
        Some(ClockSkew {
            peers_ahead_ms: median,
            samples: offsets.len(),
            skewed: median.abs() > SKEW_WARN_MS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_780_000_000_000;
    const HOUR: u64 = 3_600_000;

    #[test]
    fn an_hour_behind_shows_once_enough_authors_agree() {
        let mut skew = Skew::default();
        let mut crossed = Vec::new();
        for i in 0..12u8 {
            if let Some(e) = skew.sample(AuthorKey([i % 4; 32]), NOW + HOUR + i as u64, NOW) {
                crossed.push(e);
            }
        }
        assert_eq!(crossed.len(), 1, "warned once");
        let e = skew.estimate().unwrap();
        assert!(e.skewed);
        assert!((e.peers_ahead_ms - HOUR as i64).abs() < 100);
    }

    #[test]
    fn one_author_or_small_delays_are_not_skew() {
        let mut skew = Skew::default();
        for i in 0..20u64 {
            skew.sample(AuthorKey([1; 32]), NOW + HOUR, NOW + i);
        }
        assert_eq!(skew.estimate(), None, "a single author proves nothing");
        let mut skew = Skew::default();
        for i in 0..20u8 {
            skew.sample(AuthorKey([i; 32]), NOW - 300, NOW);
        }
        assert!(!skew.estimate().unwrap().skewed);
    }
}
