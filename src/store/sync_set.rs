//! One circle's sync items (every stored revision, tombstones included) with their
//! reconciliation [`Sketch`] kept in step with every write, so that a sync session
//! starts from the fingerprint, the strata estimator and the first coded symbols
//! as they stand instead of computing them from the whole circle (`proto/SYNC.md`).
//!
//! Items leave the sync set when they expire, before the sweep removes them: a view
//! at `now` is the kept sketch with the expired-but-unswept items taken out (few: the
//! sweep runs every minute or so). The last view is kept until the set changes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aidmesh_proto::riblt::{
    sketch_symbols_for, CodedSet, Fingerprint, Item, Sketch, ITEM_HASH_BYTES,
};

use super::index::Seq;

/// A sync item with what the store needs beside it: `(updated_at, hash prefix,
/// expires_at, seq)`.
pub(super) type SyncKey = (u64, [u8; ITEM_HASH_BYTES], u64, Seq);

fn item(k: &SyncKey) -> Item {
    Item {
        updated_at: k.0,
        hash: k.1,
    }
}

/// One circle's sync items and their sketch.
#[derive(Debug, Default)]
pub(super) struct SyncSet {
    /// The items, in item order.
    keys: BTreeSet<SyncKey>,
    /// The sketch of every key, expired ones not yet swept included.
    sketch: Arc<Sketch>,
    /// The last view handed out and how many expired items it left out; cleared by
    /// every change of the keys.
    view: Mutex<Option<(usize, CodedSet)>>,
}

impl SyncSet {
    /// The set of `keys` (the store's open).
    pub(super) fn of(keys: Vec<SyncKey>) -> Self {
        let keys: BTreeSet<SyncKey> = keys.into_iter().collect();
        let kept = sketch_symbols_for(keys.len());
        Self {
            sketch: Arc::new(Sketch::of_keeping(keys.iter().map(item), kept)),
            keys,
            view: Mutex::default(),
        }
    }

    /// Adds a key; whether it was new.
    pub(super) fn insert(&mut self, key: SyncKey) -> bool {
        if !self.keys.insert(key) {
            return false;
        }
        let kept = sketch_symbols_for(self.keys.len());
        if kept > self.sketch.kept() {
            // The set outgrew its sketch: keep more symbols, computed once (the
            // number doubles each time, so this costs little per item).
            self.changed();
            self.sketch = Arc::new(Sketch::of_keeping(self.keys.iter().map(item), kept));
        } else {
            self.changed().add(&item(&key));
        }
        true
    }

    /// Removes a key; whether it was there.
    pub(super) fn remove(&mut self, key: &SyncKey) -> bool {
        if !self.keys.remove(key) {
            return false;
        }
        self.changed().remove(&item(key));
        true
    }

    /// The sketch to change, after dropping the kept view (so that the sketch is
    /// copied only if a running session still holds it).
    fn changed(&mut self) -> &mut Sketch {
        *self.view.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        Arc::make_mut(&mut self.sketch)
    }

    /// Whether no key is left.
    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The items that have not expired at `now`, in item order.
    pub(super) fn items(&self, now: u64) -> Vec<Item> {
        self.keys
            .iter()
            .filter(|(_, _, expires_at, _)| *expires_at > now)
            .map(item)
            .collect()
    }

    /// The fingerprint of the items that have not expired, `expired` being those of
    /// the set that have.
    pub(super) fn fingerprint(&self, expired: &[Item]) -> Fingerprint {
        let mut f = self.sketch.fingerprint();
        for i in expired {
            f.remove(i);
        }
        f
    }

    /// The items that have not expired at `now` and their sketch, `expired` being
    /// those of the set that have. The expired ones only grow until the set changes
    /// (the sweep changes it), so their number tells whether the kept view is still
    /// right.
    pub(super) fn view(&self, expired: &[Item], now: u64) -> CodedSet {
        let mut kept = self.view.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, view)) = kept.as_ref() {
            if *n == expired.len() {
                return view.clone();
            }
        }
        let mut sketch = self.sketch.clone();
        if !expired.is_empty() {
            let s = Arc::make_mut(&mut sketch);
            for i in expired {
                s.remove(i);
            }
        }
        let view = CodedSet::from_parts(Arc::new(self.items(now)), sketch);
        *kept = Some((expired.len(), view.clone()));
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64, expires_at: u64) -> SyncKey {
        let mut h = [0u8; ITEM_HASH_BYTES];
        h.copy_from_slice(&blake3::hash(&n.to_le_bytes()).as_bytes()[..ITEM_HASH_BYTES]);
        (1_000 + n, h, expires_at, n)
    }

    #[test]
    fn views_follow_writes_and_expiry() {
        let mut set = SyncSet::of((0..50).map(|n| key(n, 10_000)).collect());
        let first = set.view(&[], 5_000);
        assert_eq!(first.len(), 50);
        assert_eq!(first.sketch(), &Sketch::of(first.items()));
        // A session holding a view keeps its set while the circle changes.
        assert!(set.insert(key(50, 6_000)));
        assert!(!set.insert(key(50, 6_000)));
        assert!(set.remove(&key(3, 10_000)));
        assert!(!set.remove(&key(3, 10_000)));
        assert_eq!(first.len(), 50);
        assert_eq!(first.sketch(), &Sketch::of(first.items()));
        let now = set.view(&[], 5_000);
        assert_eq!(now.len(), 50);
        assert_eq!(now.sketch(), &Sketch::of(now.items()));
        assert_eq!(set.fingerprint(&[]), now.sketch().fingerprint());
        // Once key 50 expires it leaves the view, before any sweep.
        let expired = [item(&key(50, 6_000))];
        let later = set.view(&expired, 6_000);
        assert_eq!(later.len(), 49);
        assert_eq!(later.sketch(), &Sketch::of(later.items()));
        assert_eq!(set.fingerprint(&expired), later.sketch().fingerprint());
        assert_eq!(set.items(6_000), later.items());
    }

    #[test]
    fn a_growing_set_keeps_more_symbols() {
        let mut set = SyncSet::default();
        for n in 0..5_000 {
            set.insert(key(n, 10_000));
        }
        assert_eq!(set.sketch.kept(), sketch_symbols_for(5_000));
        let view = set.view(&[], 0);
        assert_eq!(view.sketch(), &Sketch::of(view.items()));
        assert_eq!(
            view.symbols(0, 4_100),
            aidmesh_proto::riblt::encode(view.items(), 0, 4_100)
        );
    }
}
