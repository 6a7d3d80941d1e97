//! Token buckets: how fast a peer or an author may make this node work, by receive
//! time. Local policy (not part of any protocol), so each node may tune it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// A bucket's shape: it holds at most `burst` tokens and gains `per_sec` a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rate {
    /// Tokens a full bucket holds (the largest burst).
    pub burst: f64,
    /// Tokens regained per second (the sustained rate).
    pub per_sec: f64,
}

/// One bucket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.at = now;
    }

    /// Takes `cost` tokens if the bucket holds them.
    pub fn take(&mut self, rate: Rate, now: Instant, cost: f64) -> bool {
        self.refill(rate, now);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Takes `cost` tokens now, going into debt if need be, and says how long the
    /// caller should wait before doing the work (zero if the tokens were there).
    /// Refuses (`None`, nothing taken) when the wait would exceed `max_wait`.
    pub fn take_or_wait(
        &mut self,
        rate: Rate,
        now: Instant,
        cost: f64,
        max_wait: Duration,
    ) -> Option<Duration> {
        self.refill(rate, now);
        let short = cost - self.tokens;
        let wait = if short <= 0.0 {
            Duration::ZERO
        } else if rate.per_sec > 0.0 {
            Duration::from_secs_f64(short / rate.per_sec)
        } else {
            return None;
        };
        if wait > max_wait {
            return None;
        }
        self.tokens -= cost;
        Some(wait)
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * rate.per_sec >= rate.burst
    }
}

/// Buckets by key, at most `max` of them. A full bucket carries no information, so
/// when the table is full the full ones are dropped; if none is full the newcomer is
/// refused (it is one key among `max` others that are all busy).
pub(crate) struct Buckets<K> {
    rate: Rate,
    max: usize,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// An empty table.
    pub fn new(rate: Rate, max: usize) -> Self {
        Self {
            rate,
            max,
            map: HashMap::new(),
        }
    }

    /// Takes `cost` tokens from `key`'s bucket.
    pub fn take(&mut self, key: &K, now: Instant, cost: f64) -> bool {
        let rate = self.rate;
        match self.bucket(key, now) {
            Some(b) => b.take(rate, now, cost),
            None => false,
        }
    }

    /// [`Bucket::take_or_wait`] on `key`'s bucket.
    pub fn take_or_wait(
        &mut self,
        key: &K,
        now: Instant,
        cost: f64,
        max_wait: Duration,
    ) -> Option<Duration> {
        let rate = self.rate;
        self.bucket(key, now)?
            .take_or_wait(rate, now, cost, max_wait)
    }

    fn bucket(&mut self, key: &K, now: Instant) -> Option<&mut Bucket> {
        if !self.map.contains_key(key) {
            if self.map.len() >= self.max {
                let rate = self.rate;
                self.map.retain(|_, b| !b.is_full(rate, now));
                if self.map.len() >= self.max {
                    return None;
                }
            }
            self.map.insert(key.clone(), Bucket::full(self.rate, now));
        }
        self.map.get_mut(key)
    }

    /// Forgets `key` (its peer left).
    pub fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Buckets held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        burst: 3.0,
        per_sec: 1.0,
    };

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(RATE, t0);
        assert!((0..3).all(|_| b.take(RATE, t0, 1.0)));
        assert!(!b.take(RATE, t0, 1.0));
        assert!(b.take(RATE, t0 + Duration::from_secs(1), 1.0));
        assert!(!b.take(RATE, t0 + Duration::from_secs(1), 1.0));
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..3).all(|_| b.take(RATE, later, 1.0)));
        assert!(!b.take(RATE, later, 1.0));
    }

    #[test]
    fn waiting_is_bounded() {
        let t0 = Instant::now();
        let mut b = Bucket::full(RATE, t0);
        assert_eq!(
            b.take_or_wait(RATE, t0, 3.0, Duration::ZERO),
            Some(Duration::ZERO)
        );
        assert_eq!(
            b.take_or_wait(RATE, t0, 2.0, Duration::from_secs(5)),
            Some(Duration::from_secs(2))
        );
        // In debt by 2 now: 4 more would mean waiting 6 s.
        assert_eq!(b.take_or_wait(RATE, t0, 4.0, Duration::from_secs(5)), None);
    }

    #[test]
    fn the_table_is_bounded_and_drops_rested_buckets_first() {
        let t0 = Instant::now();
        let mut table = Buckets::new(RATE, 2);
        assert!(table.take(&1, t0, 1.0));
        assert!(table.take(&2, t0, 1.0));
        // Both busy: a third key is refused rather than growing the table.
        assert!(!table.take(&3, t0, 1.0));
        assert_eq!(table.len(), 2);
        // Once they have refilled they carry nothing and make room.
        assert!(table.take(&3, t0 + Duration::from_secs(2), 1.0));
        assert!(table.len() <= 2);
    }
}
