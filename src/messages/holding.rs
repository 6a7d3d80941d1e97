//! Envelopes this node holds for others: ciphertext it cannot read, kept until the
//! recipient asks for it ("anything for me?") or it expires.
//!
//! Bounded per recipient and in total ([`super::limits::Config`]). Key:
//! `recipient (32) ‖ envelope id (32)`; value: `expires_at (8, big endian) ‖ envelope`.
//! Nothing but what the envelope shows (recipient, expiry, size) is ever known here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aidmesh_proto::message::{Envelope, EnvelopeId, MAX_FETCH_BATCH};
use aidmesh_proto::AuthorKey;

use super::store::Error;

/// Why an envelope was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This recipient has as many envelopes waiting as allowed.
    Recipient,
    /// The node holds as many envelopes as allowed.
    Total,
}

/// The held envelopes.
#[derive(Clone)]
pub struct Holding {
    tree: sled::Tree,
    count: Arc<AtomicUsize>,
    per_recipient: usize,
    total: usize,
}

fn key(recipient: &AuthorKey, id: &EnvelopeId) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(&recipient.0);
    k[32..].copy_from_slice(&id.0);
    k
}

fn expiry(value: &[u8]) -> u64 {
    value
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Holding {
    /// Opens the `msg_held` tree of `db`.
    pub fn open(db: &sled::Db, per_recipient: usize, total: usize) -> Result<Self, Error> {
        let tree = db.open_tree("msg_held")?;
        let count = tree.len();
        Ok(Self {
            tree,
            count: Arc::new(AtomicUsize::new(count)),
            per_recipient,
            total,
        })
    }

    /// How many envelopes are held.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds `bytes` (the encoding of `envelope`, already checked by
    /// [`Envelope::decode`]). Holding the same envelope twice is one envelope.
    pub fn hold(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Result<(), Full>, Error> {
        let id = EnvelopeId::of(bytes);
        let k = key(&envelope.recipient, &id);
        if self.tree.contains_key(k)? {
            return Ok(Ok(()));
        }
        if self.len() >= self.total {
            return Ok(Err(Full::Total));
        }
        let waiting = self
            .tree
            .scan_prefix(envelope.recipient.0)
            .keys()
            .take(self.per_recipient)
            .count();
        if waiting >= self.per_recipient {
            return Ok(Err(Full::Recipient));
        }
        let mut value = Vec::with_capacity(8 + bytes.len());
        value.extend_from_slice(&envelope.expires_at.to_be_bytes());
        value.extend_from_slice(bytes);
        if self.tree.insert(k, value)?.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok(()))
    }

    /// Drops the `release`d envelopes of `recipient` (stored by it now), then returns up
    /// to [`MAX_FETCH_BATCH`] more of its live envelopes and whether more wait.
    pub fn fetch(
        &self,
        recipient: &AuthorKey,
        release: &[EnvelopeId],
        now: u64,
    ) -> Result<(Vec<Vec<u8>>, bool), Error> {
        for id in release {
            self.remove(&key(recipient, id))?;
        }
        let mut out = Vec::new();
        let mut more = false;
        for r in self.tree.scan_prefix(recipient.0) {
            let (k, v) = r?;
            if expiry(&v) <= now {
                self.remove(&k)?;
                continue;
            }
            if out.len() == MAX_FETCH_BATCH {
                more = true;
                break;
            }
            out.push(v[8..].to_vec());
        }
        Ok((out, more))
    }

    /// Recipients with envelopes waiting, for handing over to a recipient that is
    /// connected now.
    pub fn waiting_for(&self, recipient: &AuthorKey) -> Result<bool, Error> {
        Ok(self
            .tree
            .scan_prefix(recipient.0)
            .next()
            .transpose()?
            .is_some())
    }

    fn remove(&self, k: &[u8]) -> Result<(), Error> {
        if self.tree.remove(k)?.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Drops every expired envelope.
    pub fn sweep(&self, now: u64) -> Result<usize, Error> {
        let mut removed = 0;
        for r in self.tree.iter() {
            let (k, v) = r?;
            if expiry(&v) <= now {
                self.remove(&k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
