//! Rateless invertible Bloom lookup tables (Yang, Gilad, Alizadeh, "Practical Rateless
//! Set Reconciliation", SIGCOMM 2024), and a strata estimator for the size of a set
//! difference. Pure computation, no I/O; `proto/SYNC.md` specifies both bit for bit.
//!
//! Each side can produce an endless stream of *coded symbols* from its set. A peer
//! that receives a prefix of the other side's stream subtracts its own symbols for the
//! same indices and *peels*: a symbol holding exactly one item reveals it, removing it
//! exposes others. About 1.4–1.7 symbols per differing item suffice for large
//! differences, a little more for small ones.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::post::ContentHash;

/// Bytes of the content hash kept in a sync item: 128 bits tell revisions apart.
pub const ITEM_HASH_BYTES: usize = 16;

/// What sync reconciles: one post revision, as `(updated_at, content hash prefix)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    /// `updated_at` of the revision, ms since the epoch.
    pub updated_at: u64,
    /// The first 16 bytes of its content hash.
    pub hash: [u8; ITEM_HASH_BYTES],
}

impl Item {
    /// The item for a revision.
    pub fn new(updated_at: u64, hash: &ContentHash) -> Self {
        let mut h = [0u8; ITEM_HASH_BYTES];
        h.copy_from_slice(&hash.0[..ITEM_HASH_BYTES]);
        Self {
            updated_at,
            hash: h,
        }
    }

    fn words(&self) -> (u64, u64, u64) {
        let lo = u64::from_le_bytes(self.hash[..8].try_into().unwrap_or([0; 8]));
        let hi = u64::from_le_bytes(self.hash[8..].try_into().unwrap_or([0; 8]));
        (self.updated_at, lo, hi)
    }

    /// 64-bit checksum: non-linear in the item's bits, so a xor of several items
    /// does not pass for one.
    pub fn checksum(&self) -> u64 {
        let (t, lo, hi) = self.words();
        fmix(t ^ fmix(lo ^ fmix(hi ^ 0x6169_646d_6573_6831)))
    }

    fn xor(&mut self, other: &Item) {
        self.updated_at ^= other.updated_at;
        for (a, b) in self.hash.iter_mut().zip(other.hash.iter()) {
            *a ^= b;
        }
    }

    fn is_zero(&self) -> bool {
        self.updated_at == 0 && self.hash == [0; ITEM_HASH_BYTES]
    }
}

/// MurmurHash3's 64-bit finaliser.
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// An order-independent fingerprint of a set: the count and the wrapping sums of two
/// independent 64-bit hashes of every item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Number of items.
    pub count: u64,
    /// Σ checksum(item) mod 2^64.
    pub sum_a: u64,
    /// Σ fmix(checksum(item) ^ K) mod 2^64.
    pub sum_b: u64,
}

impl Fingerprint {
    /// Adds an item.
    pub fn add(&mut self, item: &Item) {
        self.apply(item.checksum(), 1);
    }

    /// Takes out an item that was added.
    pub fn remove(&mut self, item: &Item) {
        self.apply(item.checksum(), -1);
    }

    /// Adds (`direction` 1) or takes out (-1) the item with checksum `c`: every sum
    /// wraps, so multiplying by the direction subtracts.
    fn apply(&mut self, c: u64, direction: i64) {
        let d = direction as u64;
        self.count = self.count.wrapping_add(d);
        self.sum_a = self.sum_a.wrapping_add(c.wrapping_mul(d));
        self.sum_b = self
            .sum_b
            .wrapping_add(fmix(c ^ 0x5bd1_e995_5bd1_e995).wrapping_mul(d));
    }

    /// The fingerprint of `items`.
    pub fn of<'a>(items: impl IntoIterator<Item = &'a Item>) -> Self {
        let mut f = Self::default();
        for i in items {
            f.add(i);
        }
        f
    }
}

/// The indices of the coded symbols an item is mixed into: 0, then a pseudo-random
/// increasing sequence whose density at index `i` is about `1 / (1 + i/2)`.
struct Mapping {
    state: u64,
    last: u64,
}

impl Mapping {
    fn new(checksum: u64) -> Self {
        Self {
            state: checksum,
            last: 0,
        }
    }

    fn next_index(&mut self) -> u64 {
        self.state = self.state.wrapping_mul(0xda94_2042_e4dd_58b5);
        let r = self.state as f64;
        let step =
            ((self.last as f64 + 1.5) * ((1u64 << 32) as f64 / (r + 1.0).sqrt() - 1.0)).ceil();
        self.last = self.last.saturating_add(step.max(1.0) as u64);
        self.last
    }
}

/// One coded symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    /// Xor of the items mixed in.
    pub sum: Item,
    /// Xor of their checksums.
    pub checksum: u64,
    /// Number of items mixed in (after subtraction: local minus remote).
    pub count: i64,
}

impl Symbol {
    fn apply(&mut self, item: &Item, checksum: u64, direction: i64) {
        self.sum.xor(item);
        self.checksum ^= checksum;
        self.count = self.count.wrapping_add(direction);
    }

    fn subtract(&mut self, other: &Symbol) {
        self.sum.xor(&other.sum);
        self.checksum ^= other.checksum;
        self.count = self.count.wrapping_sub(other.count);
    }

    fn is_empty(&self) -> bool {
        self.count == 0 && self.checksum == 0 && self.sum.is_zero()
    }
}

impl Default for Item {
    fn default() -> Self {
        Self {
            updated_at: 0,
            hash: [0; ITEM_HASH_BYTES],
        }
    }
}

/// Whether the item with `checksum` is mixed into symbol `index`.
fn maps_to(checksum: u64, index: u64) -> bool {
    let mut m = Mapping::new(checksum);
    let mut idx = 0u64;
    while idx < index {
        idx = m.next_index();
    }
    idx == index
}

/// Mixes `item` (checksum `c`) with `direction` into each of `symbols` — indices
/// `from..from + symbols.len()` of a stream — that it maps to.
fn mix(symbols: &mut [Symbol], from: usize, item: &Item, c: u64, direction: i64) {
    let to = from.saturating_add(symbols.len()) as u64;
    let mut m = Mapping::new(c);
    let mut idx = 0u64;
    while idx < to {
        if let Some(s) = idx
            .checked_sub(from as u64)
            .and_then(|i| symbols.get_mut(i as usize))
        {
            s.apply(item, c, direction);
        }
        idx = m.next_index();
    }
}

/// Coded symbols `from..to` of `items`.
pub fn encode(items: &[Item], from: usize, to: usize) -> Vec<Symbol> {
    let mut out = vec![Symbol::default(); to.saturating_sub(from)];
    if out.is_empty() {
        return out;
    }
    for item in items {
        mix(&mut out, from, item, item.checksum(), 1);
    }
    out
}

/// Peels the difference between a remote set (known by its coded symbols) and the
/// local set, adding remote symbols as they arrive.
pub struct Decoder {
    local: CodedSet,
    /// remote − local, per index.
    symbols: Vec<Symbol>,
    /// Every item peeled so far.
    peeled: std::collections::HashSet<Item>,
    /// Set once the symbols contradict themselves.
    failed: bool,
    /// Items the remote has and we lack.
    remote_only: Vec<Item>,
    /// Items we have and the remote lacks.
    local_only: Vec<Item>,
}

impl Decoder {
    /// A decoder for the difference against `local`.
    pub fn new(local: CodedSet) -> Self {
        Self {
            local,
            symbols: Vec::new(),
            peeled: std::collections::HashSet::new(),
            failed: false,
            remote_only: Vec::new(),
            local_only: Vec::new(),
        }
    }

    /// The local set.
    pub fn local(&self) -> &CodedSet {
        &self.local
    }

    /// Symbols received so far.
    pub fn received(&self) -> usize {
        self.symbols.len()
    }

    /// Adds the remote's next symbols (indices `received()..`) and peels.
    pub fn add(&mut self, remote: &[Symbol]) {
        let from = self.symbols.len();
        let to = from + remote.len();
        let mut fresh = remote.to_vec();
        for (f, l) in fresh.iter_mut().zip(self.local.symbols(from, to)) {
            f.subtract(&l);
        }
        // Items already peeled are taken out of the new symbols too.
        for (item, dir) in self
            .remote_only
            .iter()
            .map(|i| (i, 1))
            .chain(self.local_only.iter().map(|i| (i, -1)))
        {
            mix(&mut fresh, from, item, item.checksum(), -dir);
        }
        self.symbols.extend(fresh);
        self.peel();
    }

    fn peel(&mut self) {
        let n = self.symbols.len();
        let mut queue: Vec<usize> = (0..n).collect();
        while let Some(i) = queue.pop() {
            if self.failed {
                return;
            }
            let s = self.symbols[i];
            if !(s.count == 1 || s.count == -1) || s.sum.checksum() != s.checksum {
                continue;
            }
            let item = s.sum;
            let c = item.checksum();
            // A pure symbol must be one the item maps to; and an item peels once. Either
            // failing means the symbols are not a coding of any set difference.
            // And no consistent input peels more items than there are symbols: the
            // sums are n linear equations. This also bounds the lists by n.
            if self.peeled.len() >= n || !maps_to(c, i as u64) || !self.peeled.insert(item) {
                self.failed = true;
                return;
            }
            let dir = s.count;
            if dir == 1 {
                self.remote_only.push(item);
            } else {
                self.local_only.push(item);
            }
            let mut m = Mapping::new(c);
            let mut idx = 0u64;
            while idx < n as u64 {
                self.symbols[idx as usize].apply(&item, c, -dir);
                queue.push(idx as usize);
                idx = m.next_index();
            }
        }
    }

    /// Whether the symbols proved inconsistent (a lying or changing peer): decoding
    /// can never complete.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Whether the whole difference is known: every symbol peeled to empty.
    pub fn is_complete(&self) -> bool {
        !self.symbols.is_empty() && self.symbols.iter().all(Symbol::is_empty)
    }

    /// Items only the remote has (to fetch).
    pub fn remote_only(&self) -> &[Item] {
        &self.remote_only
    }

    /// Items only we have.
    pub fn local_only(&self) -> &[Item] {
        &self.local_only
    }
}

/// Fewest coded symbols a [`Sketch`] keeps, from index 0: what a difference of up to
/// about 580 items needs (1.7 symbols per item and 32 more). 40 KiB.
pub const MIN_SKETCH_SYMBOLS: usize = 1024;
/// Most coded symbols a [`Sketch`] keeps: a difference of up to about 19,000 items.
/// 1.25 MiB, for a set of 65,536 items or more (20 bytes per item at most).
pub const MAX_SKETCH_SYMBOLS: usize = 32_768;

/// How many coded symbols a sketch of `n` items keeps: half as many as items, as a
/// power of two, within [`MIN_SKETCH_SYMBOLS`]..=[`MAX_SKETCH_SYMBOLS`]. A larger set
/// is likelier to meet a large difference (a peer that was away, a new node), and
/// each symbol kept saves every session that needs it a pass over the whole set.
pub fn sketch_symbols_for(n: usize) -> usize {
    (n / 2)
        .max(1)
        .next_power_of_two()
        .clamp(MIN_SKETCH_SYMBOLS, MAX_SKETCH_SYMBOLS)
}

/// What reconciling a set needs of it, kept up to date one item at a time instead of
/// computed from the whole set for every session: its [`Fingerprint`], its [`Strata`]
/// estimator and its first coded symbols (see [`sketch_symbols_for`]). Adding or
/// removing an item costs about 20 symbol updates; equal sets then answer a `Hello`
/// in constant time, and a difference the kept symbols cover is decoded without
/// looking at the items. Always equal to what [`Sketch::of`] computes for the same
/// set, whatever order the items came and went in (every part is a sum or a xor).
#[derive(Clone, Debug, Eq)]
pub struct Sketch {
    fingerprint: Fingerprint,
    strata: Strata,
    /// How many symbols are kept.
    kept: usize,
    /// Symbols `0..kept`; empty until the first item (an empty set's symbols are all
    /// zero).
    prefix: Vec<Symbol>,
}

impl PartialEq for Sketch {
    /// Two sketches of the same set are equal whatever number of symbols each keeps.
    fn eq(&self, other: &Self) -> bool {
        let at = |p: &[Symbol], i: usize| p.get(i).copied().unwrap_or_default();
        let n = self.prefix.len().max(other.prefix.len());
        self.fingerprint == other.fingerprint
            && self.strata == other.strata
            && (0..n).all(|i| {
                (i >= self.kept || i >= other.kept) || at(&self.prefix, i) == at(&other.prefix, i)
            })
    }
}

impl Default for Sketch {
    fn default() -> Self {
        Self::keeping(MIN_SKETCH_SYMBOLS)
    }
}

impl Sketch {
    /// The sketch of the empty set, keeping `kept` symbols.
    pub fn keeping(kept: usize) -> Self {
        Self {
            fingerprint: Fingerprint::default(),
            strata: Strata::empty(),
            kept: kept.min(MAX_SKETCH_SYMBOLS),
            prefix: Vec::new(),
        }
    }

    /// The sketch of `items`, keeping as many symbols as [`sketch_symbols_for`] says.
    pub fn of(items: &[Item]) -> Self {
        Self::of_keeping(items.iter().copied(), sketch_symbols_for(items.len()))
    }

    /// The sketch of `items`, keeping `kept` symbols.
    pub fn of_keeping(items: impl IntoIterator<Item = Item>, kept: usize) -> Self {
        let mut s = Self::keeping(kept);
        for item in items {
            s.add(&item);
        }
        s
    }

    /// How many symbols are kept.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Adds an item the set did not hold.
    pub fn add(&mut self, item: &Item) {
        self.apply(item, 1);
    }

    /// Takes out an item the set held.
    pub fn remove(&mut self, item: &Item) {
        self.apply(item, -1);
    }

    fn apply(&mut self, item: &Item, direction: i32) {
        let c = item.checksum();
        self.fingerprint.apply(c, i64::from(direction));
        self.strata.apply(c, direction);
        if self.prefix.is_empty() {
            self.prefix = vec![Symbol::default(); self.kept];
        }
        mix(&mut self.prefix, 0, item, c, i64::from(direction));
    }

    /// The set's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The set's strata estimator.
    pub fn strata(&self) -> &Strata {
        &self.strata
    }

    /// How many items the set holds.
    pub fn len(&self) -> u64 {
        self.fingerprint.count
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.fingerprint.count == 0
    }
}

/// A set of items with its [`Sketch`]: what one side of a reconciliation encodes from
/// and decodes against. Cheap to clone (both parts are shared).
#[derive(Clone, Debug, Default)]
pub struct CodedSet {
    items: Arc<Vec<Item>>,
    sketch: Arc<Sketch>,
}

impl CodedSet {
    /// The coded set of `items` (computes the sketch: linear in the set).
    pub fn new(items: Vec<Item>) -> Self {
        let sketch = Arc::new(Sketch::of(&items));
        Self {
            items: Arc::new(items),
            sketch,
        }
    }

    /// A coded set from a sketch kept up to date beside the items; `sketch` must be
    /// the sketch of `items` (as [`Sketch::of`] would compute it), or this side's
    /// symbols are wrong and its decoding fails.
    pub fn from_parts(items: Arc<Vec<Item>>, sketch: Arc<Sketch>) -> Self {
        Self { items, sketch }
    }

    /// The items.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The sketch.
    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }

    /// How many items the set holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Coded symbols `from..to` of the set (as [`encode`]): copied from the sketch as
    /// far as it reaches, the rest encoded from the items.
    pub fn symbols(&self, from: usize, to: usize) -> Vec<Symbol> {
        if to <= from {
            return Vec::new();
        }
        let kept = &self.sketch.prefix;
        let split = to.min(kept.len()).max(from);
        let mut out = Vec::with_capacity(to - from);
        out.extend_from_slice(kept.get(from..split).unwrap_or(&[]));
        out.extend(encode(&self.items, split, to));
        out
    }
}

/// Strata in a [`Strata`] estimator; stratum `i` holds items whose checksum has `i`
/// trailing zeros, so it samples the set at rate 2^-(i+1).
pub const STRATA: usize = 20;
/// Cells per stratum.
pub const STRATUM_CELLS: usize = 16;

/// One cell of a stratum's invertible Bloom lookup table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Xor of item checksums.
    pub key: u64,
    /// Xor of a second hash of those checksums (for purity).
    pub check: u32,
    /// Number of items.
    pub count: i32,
}

/// A strata estimator of the size of a set difference (Eppstein et al., "What's the
/// difference?", SIGCOMM 2011): small, and subtractable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strata {
    /// `STRATA × STRATUM_CELLS` cells, stratum-major.
    pub cells: Vec<Cell>,
}

fn cell_check(key: u64) -> u32 {
    (fmix(key ^ 0x7374_7261_7461_0001) >> 32) as u32
}

fn cell_indices(key: u64) -> [usize; 3] {
    let h = fmix(key ^ 0x7374_7261_7461_0002);
    let per = STRATUM_CELLS / 3;
    [
        (h % per as u64) as usize,
        per + ((h >> 21) % per as u64) as usize,
        2 * per + ((h >> 42) % (STRATUM_CELLS - 2 * per) as u64) as usize,
    ]
}

impl Strata {
    /// The estimator of the empty set.
    pub fn empty() -> Self {
        Self {
            cells: vec![Cell::default(); STRATA * STRATUM_CELLS],
        }
    }

    /// The estimator of `items`.
    pub fn of(items: &[Item]) -> Self {
        let mut s = Self::empty();
        for item in items {
            s.apply(item.checksum(), 1);
        }
        s
    }

    /// Adds (`direction` 1) or takes out (-1) the item with checksum `key`.
    fn apply(&mut self, key: u64, direction: i32) {
        let stratum = (key.trailing_zeros() as usize).min(STRATA - 1);
        let check = cell_check(key);
        for j in cell_indices(key) {
            if let Some(c) = self.cells.get_mut(stratum * STRATUM_CELLS + j) {
                c.key ^= key;
                c.check ^= check;
                c.count = c.count.wrapping_add(direction);
            }
        }
    }

    /// Estimates `|self Δ other|`; `None` if `other` is malformed.
    pub fn estimate_difference(&self, other: &Strata) -> Option<u64> {
        if self.cells.len() != STRATA * STRATUM_CELLS || other.cells.len() != self.cells.len() {
            return None;
        }
        let mut found = 0u64;
        for stratum in (0..STRATA).rev() {
            let base = stratum * STRATUM_CELLS;
            let mut cells: Vec<Cell> = (0..STRATUM_CELLS)
                .map(|j| {
                    let (a, b) = (self.cells[base + j], other.cells[base + j]);
                    Cell {
                        key: a.key ^ b.key,
                        check: a.check ^ b.check,
                        count: a.count.wrapping_sub(b.count),
                    }
                })
                .collect();
            let mut decoded = 0u64;
            let mut progress = true;
            while progress {
                progress = false;
                for j in 0..STRATUM_CELLS {
                    let c = cells[j];
                    let indices = cell_indices(c.key);
                    // Pure: one item, and this cell is one of its cells (otherwise
                    // removing it would not clear this cell and peeling would loop).
                    if (c.count == 1 || c.count == -1)
                        && cell_check(c.key) == c.check
                        && indices.contains(&j)
                    {
                        for k in indices {
                            let t = &mut cells[k];
                            t.key ^= c.key;
                            t.check ^= c.check;
                            t.count = t.count.wrapping_sub(c.count);
                        }
                        decoded += 1;
                        progress = decoded <= 2 * STRATUM_CELLS as u64;
                    }
                }
            }
            if cells.iter().any(|c| c.count != 0 || c.key != 0) {
                // This stratum is too full to decode: scale what the sparser ones held.
                return Some((found + decoded.max(1)) << (stratum + 1));
            }
            found += decoded;
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(range: std::ops::Range<u64>) -> Vec<Item> {
        range
            .map(|i| {
                let h = blake3::hash(&i.to_le_bytes());
                Item::new(1_000 + i, &ContentHash(*h.as_bytes()))
            })
            .collect()
    }

    fn reconcile(a: &[Item], b: &[Item]) -> (usize, Vec<Item>, Vec<Item>) {
        // a decodes against b's stream.
        let mut d = Decoder::new(CodedSet::new(a.to_vec()));
        let mut sent = 0;
        while !d.is_complete() {
            let next = (sent * 2).max(8);
            d.add(&encode(b, sent, next));
            sent = next;
            assert!(sent < 100_000, "did not converge");
        }
        let mut r = d.remote_only().to_vec();
        let mut l = d.local_only().to_vec();
        r.sort();
        l.sort();
        (sent, r, l)
    }

    #[test]
    fn finds_both_sides_of_the_difference() {
        let a = items(0..1000);
        let b = items(10..1020);
        let (_, remote_only, local_only) = reconcile(&a, &b);
        assert_eq!(remote_only, items(1000..1020));
        assert_eq!(local_only, items(0..10));
    }

    #[test]
    fn equal_sets_complete_with_one_symbol() {
        let a = items(0..500);
        let mut d = Decoder::new(CodedSet::new(a.clone()));
        d.add(&encode(&a, 0, 1));
        assert!(d.is_complete());
        assert!(d.remote_only().is_empty() && d.local_only().is_empty());
    }

    #[test]
    fn symbols_per_difference_are_few() {
        let a = items(0..20_000);
        let b = items(1_000..21_000);
        let mut d = Decoder::new(CodedSet::new(a));
        let mut sent = 0;
        while !d.is_complete() {
            d.add(&encode(&b, sent, sent + 100));
            sent += 100;
        }
        // 2,000 differences: the paper's ~1.35-1.7 symbols each.
        assert!(sent <= 3_600, "{sent} symbols for 2,000 differences");
        assert_eq!(d.remote_only().len() + d.local_only().len(), 2_000);
    }

    #[test]
    fn estimator_is_in_the_right_range() {
        let base = items(0..50_000);
        for d in [0u64, 20, 200, 2_000, 20_000] {
            let other = items(d..50_000 + d);
            let est = Strata::of(&base)
                .estimate_difference(&Strata::of(&other))
                .unwrap();
            let truth = 2 * d;
            assert!(
                est >= truth / 3 && est <= truth * 3 + 16,
                "d={truth}: estimated {est}"
            );
        }
    }

    #[test]
    fn inconsistent_symbols_fail_instead_of_looping() {
        // One item placed only in symbol 5: it "peels" there but is missing from
        // symbol 0, which every item maps to.
        let it = items(0..1)[0];
        let mut lone = riblt_symbol(&it);
        if maps_to(it.checksum(), 5) {
            lone.count = 1;
        }
        let mut symbols = vec![Symbol::default(); 25];
        symbols[5] = lone;
        let mut d = Decoder::new(CodedSet::default());
        d.add(&symbols);
        assert!(!d.is_complete());
        // Garbage with extreme counts neither panics nor loops.
        let mut d = Decoder::new(CodedSet::new(items(0..10)));
        d.add(
            &[Symbol {
                count: i64::MIN,
                checksum: 1,
                ..Default::default()
            }; 40],
        );
        assert!(!d.is_complete());
    }

    fn riblt_symbol(item: &Item) -> Symbol {
        Symbol {
            sum: *item,
            checksum: item.checksum(),
            count: 1,
        }
    }

    #[test]
    fn forged_estimators_terminate() {
        let mut forged = Strata::of(&items(0..100));
        for c in forged.cells.iter_mut() {
            c.count = 1;
            c.check = cell_check(c.key);
        }
        let _ = Strata::of(&items(0..100)).estimate_difference(&forged);
        let extreme = Strata {
            cells: vec![
                Cell {
                    key: 3,
                    check: cell_check(3),
                    count: i32::MIN
                };
                STRATA * STRATUM_CELLS
            ],
        };
        let _ = Strata::of(&[]).estimate_difference(&extreme);
    }

    #[test]
    fn a_sketch_kept_up_to_date_equals_one_computed_afresh() {
        let all = items(0..3_000);
        let mut kept = Sketch::default();
        // Add everything out of order, take a third out again, put some of it back.
        for i in all.iter().rev() {
            kept.add(i);
        }
        for i in all.iter().step_by(3) {
            kept.remove(i);
        }
        for i in all.iter().step_by(6) {
            kept.add(i);
        }
        let now: Vec<Item> = all
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 3 != 0 || n % 6 == 0)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(kept, Sketch::of(&now));
        assert_eq!(kept.fingerprint(), Fingerprint::of(&now));
        assert_eq!(kept.strata(), &Strata::of(&now));
        assert_eq!(kept.len(), now.len() as u64);
        // Emptied, it is the empty set's.
        for i in &now {
            kept.remove(i);
        }
        assert!(kept.is_empty());
        assert_eq!(kept, Sketch::default());
        assert_eq!(kept.fingerprint(), Fingerprint::default());
        assert_eq!(kept.strata(), &Strata::empty());
        let empty = CodedSet::from_parts(Arc::new(Vec::new()), Arc::new(kept));
        assert_eq!(empty.symbols(0, 40), vec![Symbol::default(); 40]);
    }

    #[test]
    fn coded_set_symbols_are_the_encoding_on_both_sides_of_the_kept_prefix() {
        let set = items(0..2_000);
        let coded = CodedSet::new(set.clone());
        let k = coded.sketch().kept();
        assert_eq!(k, MIN_SKETCH_SYMBOLS);
        for (from, to) in [
            (0, 1),
            (0, 32),
            (32, 200),
            (k - 10, k),
            (k - 10, k + 10),
            (k, k + 64),
            (k + 100, k + 300),
            (5, 5),
        ] {
            assert_eq!(
                coded.symbols(from, to),
                encode(&set, from, to),
                "{from}..{to}"
            );
        }
        assert!(coded.symbols(9, 3).is_empty());
        assert_eq!(
            CodedSet::default().symbols(0, 8),
            vec![Symbol::default(); 8]
        );
    }

    #[test]
    fn decoding_beyond_the_kept_prefix_finds_the_whole_difference() {
        // 6,000 differences need more symbols than the sketches keep.
        let a = items(0..6_000);
        let b = items(3_000..9_000);
        let remote = CodedSet::new(b);
        let mut d = Decoder::new(CodedSet::new(a));
        let mut sent = 0;
        while !d.is_complete() {
            d.add(&remote.symbols(sent, sent + 1_000));
            sent += 1_000;
            assert!(sent < 40_000, "did not converge");
        }
        assert!(sent > remote.sketch().kept());
        assert_eq!(d.remote_only().len(), 3_000);
        assert_eq!(d.local_only().len(), 3_000);
    }

    #[test]
    fn larger_sets_keep_more_symbols_within_bounds() {
        assert_eq!(sketch_symbols_for(0), MIN_SKETCH_SYMBOLS);
        assert_eq!(sketch_symbols_for(2_048), MIN_SKETCH_SYMBOLS);
        assert_eq!(sketch_symbols_for(2_050), 2 * MIN_SKETCH_SYMBOLS);
        assert_eq!(sketch_symbols_for(10_000), 8_192);
        assert_eq!(sketch_symbols_for(100_000), MAX_SKETCH_SYMBOLS);
        assert_eq!(sketch_symbols_for(usize::MAX), MAX_SKETCH_SYMBOLS);
        assert_eq!(Sketch::keeping(usize::MAX).kept(), MAX_SKETCH_SYMBOLS);
        // Sketches of one set keeping different numbers of symbols are equal.
        let set = items(0..100);
        assert_eq!(
            Sketch::of_keeping(set.iter().copied(), 2_048),
            Sketch::of(&set)
        );
        assert_ne!(
            Sketch::of_keeping(set[1..].iter().copied(), 2_048),
            Sketch::of(&set)
        );
    }

    #[test]
    fn fingerprints_ignore_order() {
        let mut a = items(0..100);
        let f = Fingerprint::of(&a);
        a.reverse();
        assert_eq!(Fingerprint::of(&a), f);
        assert_ne!(Fingerprint::of(&a[1..]), f);
    }
}
