//! Gossip links that stopped carrying messages. gossipsub reports, at each heartbeat,
//! the peers it could not queue messages for ("Send Queue full"). Those drops are
//! counted for `status`; a peer whose queue stays full for [`DEAD_AFTER`] heartbeats
//! in a row has a dead link (its reader is gone or its stream was closed), and is
//! reconnected: a new connection gets new gossipsub streams, and catch-up sync on
//! connect brings over what the dead link lost.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// Heartbeats in a row with dropped sends before a link counts as dead.
pub const DEAD_AFTER: u32 = 10;
/// The longest gap between two reports that still counts as "in a row" (heartbeats
/// are 1 s apart).
const IN_A_ROW: Duration = Duration::from_millis(2_500);
/// A peer is reconnected at most this often.
const REPAIR_EVERY: Duration = Duration::from_secs(120);

/// Per-peer send trouble.
#[derive(Default)]
pub(crate) struct Links {
    slow: HashMap<PeerId, Slow>,
    /// Sends dropped since start.
    pub dropped: u64,
    /// Links reconnected since start.
    pub repaired: u64,
}

struct Slow {
    in_a_row: u32,
    last: Instant,
    repaired: Option<Instant>,
}

impl Links {
    /// gossipsub could not send `failed` messages to `peer` in the last heartbeat.
    /// Returns whether the link should be repaired now.
    pub fn on_slow(&mut self, peer: PeerId, failed: usize, now: Instant) -> bool {
        self.dropped += failed as u64;
        let s = self.slow.entry(peer).or_insert(Slow {
            in_a_row: 0,
            last: now,
            repaired: None,
        });
        if now.saturating_duration_since(s.last) > IN_A_ROW {
            s.in_a_row = 0;
        }
        s.in_a_row += 1;
        s.last = now;
        let rested = s
            .repaired
            .is_none_or(|at| now.saturating_duration_since(at) >= REPAIR_EVERY);
        if s.in_a_row >= DEAD_AFTER && rested {
            s.in_a_row = 0;
            s.repaired = Some(now);
            self.repaired += 1;
            return true;
        }
        false
    }

    /// The peer left. What is kept is the time of a recent repair, so a peer that
    /// comes back is not reconnected again at once.
    pub fn forget(&mut self, peer: &PeerId, now: Instant) {
        let recent = |s: &Slow| {
            s.repaired
                .is_some_and(|at| now.saturating_duration_since(at) < REPAIR_EVERY)
        };
        match self.slow.get_mut(peer) {
            Some(s) if recent(s) => s.in_a_row = 0,
            _ => {
                self.slow.remove(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_full_for_ten_heartbeats_is_repaired_once_in_a_while() {
        let mut links = Links::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        let beat = |i: u64| t0 + Duration::from_secs(i);
        let repairs: Vec<u64> = (0..30)
            .filter(|&i| links.on_slow(peer, 5, beat(i)))
            .collect();
        assert_eq!(repairs, vec![9], "once, then it rests");
        assert_eq!(links.dropped, 150);
        assert_eq!(links.repaired, 1);
        // Scattered drops are not a dead link.
        let other = PeerId::random();
        assert!(!(0..30).any(|i| links.on_slow(other, 1, beat(i * 5))));
    }
}
