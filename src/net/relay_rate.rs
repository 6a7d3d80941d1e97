//! How fast this node relays gossip: token buckets per sending peer and per author,
//! by receive time (local policy; stored posts are bounded by the `proto` quotas).
//!
//! A message over either limit is ignored: not stored, not relayed, no gossipsub
//! penalty (an honest relayer can forward a burst it did not cause). A peer that keeps
//! sending over its own limit collects strikes, which decay, and each strike lowers
//! its gossipsub application score; a sustained flood gets it graylisted, after which
//! gossipsub drops its messages before they cost a signature check.

use std::collections::HashMap;
use std::time::Duration;

use aidmesh_proto::AuthorKey;
use libp2p::PeerId;
use tokio::time::Instant;

use super::rate::{Buckets, Rate};

/// Messages one peer may send us: bursts of 100, 40 a second sustained. A quiet
/// circle sees a few posts a minute; a peer relaying a busy one stays far below.
pub const PEER_RATE: Rate = Rate {
    burst: 100.0,
    per_sec: 40.0,
};
/// New posts (or revisions) one author may get relayed through us: bursts of 20, then
/// one every 5 s. An author has at most 100 live posts per circle anyway.
pub const AUTHOR_RATE: Rate = Rate {
    burst: 20.0,
    per_sec: 0.2,
};
/// Authors and peers whose buckets are remembered (a rested bucket is forgotten first).
const MAX_AUTHORS: usize = 65_536;
const MAX_PEERS: usize = 4_096;
/// Strikes halve every minute: a peer that stops flooding recovers within minutes.
const STRIKE_HALF_LIFE: Duration = Duration::from_secs(60);
/// Strikes per point of application score (gossipsub weighs each point 10×; −8
/// points reach the graylist threshold of −80 — about 80 messages over the limit).
const STRIKES_PER_POINT: f64 = 10.0;
/// Lowest score strikes alone give (the sync ban gives −100).
const MIN_STRIKE_SCORE: f64 = -50.0;
/// A message over the author's limit weighs this fraction of a strike on the peer
/// that relayed it: honest relayers pass on floods they did not start.
const AUTHOR_STRIKE: f64 = 0.1;

/// What the limits say about one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within both limits.
    Pass,
    /// Over the sending peer's limit.
    PeerOver,
    /// Over the author's limit.
    AuthorOver,
}

/// The buckets and strikes.
pub(crate) struct RelayRate {
    peers: Buckets<PeerId>,
    authors: Buckets<AuthorKey>,
    /// Strikes per peer, and when they were last decayed; and the score last set.
    strikes: HashMap<PeerId, Strikes>,
    /// Messages ignored for the sending peer's rate.
    pub over_peer: u64,
    /// Messages ignored for the author's rate.
    pub over_author: u64,
}

struct Strikes {
    count: f64,
    at: Instant,
    score: f64,
}

impl Default for RelayRate {
    fn default() -> Self {
        Self {
            peers: Buckets::new(PEER_RATE, MAX_PEERS),
            authors: Buckets::new(AUTHOR_RATE, MAX_AUTHORS),
            strikes: HashMap::new(),
            over_peer: 0,
            over_author: 0,
        }
    }
}

impl RelayRate {
    /// Charges one message from `peer`, before it is decoded or verified.
    pub fn peer(&mut self, peer: &PeerId, now: Instant) -> Verdict {
        if self.peers.take(peer, now, 1.0) {
            Verdict::Pass
        } else {
            self.over_peer += 1;
            Verdict::PeerOver
        }
    }

    /// Charges one verified post that would change the store, by `author`.
    pub fn author(&mut self, author: &AuthorKey, now: Instant) -> Verdict {
        if self.authors.take(author, now, 1.0) {
            Verdict::Pass
        } else {
            self.over_author += 1;
            Verdict::AuthorOver
        }
    }

    /// Records a strike for `verdict` against `peer`; returns the application score to
    /// set when it moved by a whole point.
    pub fn strike(&mut self, peer: PeerId, verdict: &Verdict, now: Instant) -> Option<f64> {
        let weight = match verdict {
            Verdict::Pass => return None,
            Verdict::PeerOver => 1.0,
            Verdict::AuthorOver => AUTHOR_STRIKE,
        };
        let s = self.strikes.entry(peer).or_insert(Strikes {
            count: 0.0,
            at: now,
            score: 0.0,
        });
        let elapsed = now.saturating_duration_since(s.at).as_secs_f64();
        s.count = s.count * 0.5f64.powf(elapsed / STRIKE_HALF_LIFE.as_secs_f64()) + weight;
        s.at = now;
        let score = (-(s.count / STRIKES_PER_POINT).floor()).max(MIN_STRIKE_SCORE);
        if score != s.score {
            s.score = score;
            return Some(score);
        }
        None
    }

    /// Scores to restore for peers whose strikes decayed (called now and then).
    pub fn decay(&mut self, now: Instant) -> Vec<(PeerId, f64)> {
        let mut changed = Vec::new();
        self.strikes.retain(|peer, s| {
            let elapsed = now.saturating_duration_since(s.at).as_secs_f64();
            s.count *= 0.5f64.powf(elapsed / STRIKE_HALF_LIFE.as_secs_f64());
            s.at = now;
            let score = (-(s.count / STRIKES_PER_POINT).floor()).max(MIN_STRIKE_SCORE);
            if score != s.score {
                s.score = score;
                changed.push((*peer, score));
            }
            s.count >= 0.5 || s.score != 0.0
        });
        changed
    }

    /// The peer left.
    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.strikes.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_peer_is_limited_and_its_score_falls_then_recovers() {
        let mut r = RelayRate::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        let mut passed = 0;
        let mut last_score = 0.0;
        for _ in 0..1000 {
            let v = r.peer(&peer, t0);
            if v == Verdict::Pass {
                passed += 1;
            }
            if let Some(s) = r.strike(peer, &v, t0) {
                last_score = s;
            }
        }
        assert_eq!(passed, PEER_RATE.burst as usize);
        assert_eq!(r.over_peer, 1000 - PEER_RATE.burst as u64);
        assert!(last_score <= -8.0, "graylisted: {last_score}");
        assert!(last_score >= MIN_STRIKE_SCORE);
        // An honest peer is untouched by the other's flood.
        assert_eq!(r.peer(&PeerId::random(), t0), Verdict::Pass);
        // Strikes decay once the flood stops.
        let later = r.decay(t0 + Duration::from_secs(3600));
        assert_eq!(later, vec![(peer, 0.0)]);
    }

    #[test]
    fn an_author_gets_its_burst_then_its_rate() {
        let mut r = RelayRate::default();
        let author = AuthorKey([9; 32]);
        let t0 = Instant::now();
        let passed = (0..100)
            .filter(|_| r.author(&author, t0) == Verdict::Pass)
            .count();
        assert_eq!(passed, AUTHOR_RATE.burst as usize);
        assert_eq!(
            r.author(&author, t0 + Duration::from_secs(5)),
            Verdict::Pass
        );
        assert_eq!(r.author(&AuthorKey([8; 32]), t0), Verdict::Pass);
        // Relaying an author's flood weighs little on the relayer.
        let peer = PeerId::random();
        let moved = (0..50)
            .filter_map(|_| r.strike(peer, &Verdict::AuthorOver, t0))
            .count();
        assert_eq!(moved, 0);
    }
}
