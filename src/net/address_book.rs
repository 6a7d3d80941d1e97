//! The persisted address book: peers this node has reached and how, so a restarted
//! node finds its peers again without flags. Kept in the store's database (tree
//! `peers`), encoded with the proto codec.

use aidmesh_proto::codec;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

const TREE: &str = "peers";
/// Addresses kept per peer.
const MAX_ADDRS: usize = 8;
/// Largest stored record.
const MAX_RECORD: usize = 4096;
/// Peers not seen for this long are forgotten.
pub const FORGET_AFTER_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Address-book failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// sled failed.
    #[error("address book I/O error: {0}")]
    Sled(#[from] sled::Error),
}

#[derive(Serialize, Deserialize, Default)]
struct Record {
    addrs: Vec<String>,
    last_seen: u64,
}

/// A peer and the addresses it was last reached at.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The peer.
    pub peer: PeerId,
    /// Where it listens.
    pub addrs: Vec<Multiaddr>,
    /// When it was last connected, ms since the epoch.
    pub last_seen: u64,
}

/// Handle on the `peers` tree.
#[derive(Clone)]
pub struct AddressBook {
    tree: sled::Tree,
}

impl AddressBook {
    /// Opens the address book inside `db`.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        Ok(Self {
            tree: db.open_tree(TREE)?,
        })
    }

    /// Records that `peer` is reachable at `addrs` (most useful first) at `now`.
    pub fn record(&self, peer: &PeerId, addrs: &[Multiaddr], now: u64) -> Result<(), Error> {
        let key = peer.to_bytes();
        let mut record = self
            .tree
            .get(&key)?
            .and_then(|raw| codec::decode::<MAX_RECORD, Record>(&raw).ok())
            .unwrap_or_default();
        let mut merged: Vec<String> = addrs.iter().map(|a| without_p2p(a).to_string()).collect();
        merged.append(&mut record.addrs);
        let mut seen = std::collections::HashSet::new();
        merged.retain(|a| seen.insert(a.clone()));
        merged.truncate(MAX_ADDRS);
        let record = Record {
            addrs: merged,
            last_seen: now,
        };
        if let Ok(bytes) = codec::encode::<MAX_RECORD, _>(&record) {
            self.tree.insert(key, bytes)?;
        }
        Ok(())
    }

    /// The addresses recorded for `peer` (none if unknown or unreadable).
    pub fn addrs_of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.tree
            .get(peer.to_bytes())
            .ok()
            .flatten()
            .and_then(|raw| codec::decode::<MAX_RECORD, Record>(&raw).ok())
            .map(|r| r.addrs.iter().filter_map(|a| a.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The most recently seen peers first, at most `limit`, forgetting stale ones.
    /// Records that do not decode are dropped: the book is a cache.
    pub fn recent(&self, limit: usize, now: u64) -> Result<Vec<Entry>, Error> {
        let mut entries = Vec::new();
        for item in self.tree.iter() {
            let (key, raw) = item?;
            let parsed = PeerId::from_bytes(&key)
                .ok()
                .zip(codec::decode::<MAX_RECORD, Record>(&raw).ok());
            match parsed {
                Some((peer, r)) if now.saturating_sub(r.last_seen) < FORGET_AFTER_MS => entries
                    .push(Entry {
                        peer,
                        addrs: r.addrs.iter().filter_map(|a| a.parse().ok()).collect(),
                        last_seen: r.last_seen,
                    }),
                _ => {
                    self.tree.remove(key)?;
                }
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
        entries.truncate(limit);
        Ok(entries)
    }
}

/// `addr` without a trailing `/p2p/<id>`.
/// (a relayed address keeps its relay's `/p2p/<relay id>/p2p-circuit`).
pub fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(
        addr.iter().last(),
        Some(libp2p::multiaddr::Protocol::P2p(_))
    ) {
        addr.pop();
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_trailing_peer_id_is_stripped() {
        let relay = PeerId::random();
        let me = PeerId::random();
        let circuit: Multiaddr = format!("/ip4/10.0.0.1/udp/1/quic-v1/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        let full = circuit.clone().with(libp2p::multiaddr::Protocol::P2p(me));
        assert_eq!(without_p2p(&full), circuit);
        assert_eq!(without_p2p(&circuit), circuit);
    }

    #[test]
    fn records_merge_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let peer = PeerId::random();
        let a: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let b: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let book = AddressBook::open(&db).unwrap();
            book.record(&peer, std::slice::from_ref(&a), 10).unwrap();
            book.record(&peer, &[b.clone(), a.clone()], 20).unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let book = AddressBook::open(&db).unwrap();
        let got = book.recent(10, 30).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].addrs, vec![b, a]);
        assert!(book.recent(10, 20 + FORGET_AFTER_MS).unwrap().is_empty());
    }
}
