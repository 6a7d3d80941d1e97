//! Which ed25519 keys and signature nonces the strict rule accepts, decided from their
//! bytes where that is possible, and the keys that passed, kept for the authors seen
//! last.
//!
//! `verify_strict` refuses a key or nonce `R` that is not the one canonical encoding
//! of its point, or whose point is of small order. Batch verification does not, so
//! both are checked before any batch (see [`crate::signed`]). Deciding that by
//! decompressing and compressing the point again costs two field exponentiations per
//! point, most of the CPU of verifying a post in a batch. From the bytes:
//! - an encoding is canonical iff its `y` is below p = 2^255 − 19 and its sign bit is
//!   clear where `x` is 0, which is only at `y` = ±1 (decompressing reduces `y` mod p
//!   and takes any sign for `x` = 0, so these are exactly the encodings that do not
//!   come back from a round trip);
//! - a point of small order is one of the eight points of the 8-torsion subgroup, so a
//!   canonical `R` is of small order iff its bytes are one of their eight encodings.
//!
//! A nonce that passes both yet is no point at all fails the batch (which decompresses
//! it) and then `verify_strict`, like any other bad signature.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use curve25519_dalek::constants::EIGHT_TORSION;
use ed25519_dalek::VerifyingKey;

/// Keys kept; the table is emptied when full, so a flood of fresh keys costs each of
/// them one decompression and honest authors one more.
const CACHED_KEYS: usize = 4096;

/// Whether `bytes` are the canonical encoding of a point, if they encode one.
pub(crate) fn canonical_encoding(bytes: &[u8; 32]) -> bool {
    let sign = bytes[31] & 0x80 != 0;
    let top = bytes[31] & 0x7f;
    // y >= p = 2^255 - 19 (little-endian ed ff .. ff 7f) only if every byte above
    // the lowest is at its largest.
    let high_all_ones = top == 0x7f && bytes[1..31].iter().all(|b| *b == 0xff);
    if high_all_ones && bytes[0] >= 0xed {
        return false;
    }
    if sign {
        let y_is_one = bytes[0] == 1 && top == 0 && bytes[1..31].iter().all(|b| *b == 0);
        let y_is_minus_one = high_all_ones && bytes[0] == 0xec;
        if y_is_one || y_is_minus_one {
            return false;
        }
    }
    true
}

/// The canonical encodings of the eight points of small order.
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static TABLE: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    TABLE.get_or_init(|| EIGHT_TORSION.map(|p| p.compress().to_bytes()))
}

/// Whether a signature's `R` (its first 32 bytes) is what `verify_strict` demands: a
/// canonical encoding of a point that is not of small order.
pub(crate) fn strict_nonce(r: &[u8; 32]) -> bool {
    canonical_encoding(r) && !small_order_encodings().contains(r)
}

/// The key `bytes` encode, if `verify_strict` would accept it: a canonical encoding
/// of a point not of small order.
pub(crate) fn strict_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    static KEYS: OnceLock<Mutex<HashMap<[u8; 32], VerifyingKey>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| Mutex::new(HashMap::with_capacity(CACHED_KEYS)));
    // A poisoned table only means another thread panicked while holding it: the
    // entries are still whole keys that passed.
    if let Some(key) = keys.lock().unwrap_or_else(|e| e.into_inner()).get(bytes) {
        return Some(*key);
    }
    if !canonical_encoding(bytes) {
        return None;
    }
    let key = VerifyingKey::from_bytes(bytes)
        .ok()
        .filter(|k| !k.is_weak())?;
    let mut table = keys.lock().unwrap_or_else(|e| e.into_inner());
    if table.len() >= CACHED_KEYS {
        table.clear();
    }
    table.insert(*bytes, key);
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use proptest::prelude::*;

    /// The reference: decompress, then compress again and compare.
    fn round_trips(bytes: &[u8; 32]) -> Option<curve25519_dalek::EdwardsPoint> {
        let point = CompressedEdwardsY(*bytes).decompress()?;
        (point.compress().to_bytes() == *bytes).then_some(point)
    }

    /// Every encoding whose `y` is within 20 of 0, 1, p − 1 or p (and so of 2^255),
    /// with both signs: where the non-canonical ones are.
    fn edges() -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for low in 0u8..=20 {
            for high in [0x00u8, 0x7f] {
                for sign in [0u8, 0x80] {
                    let mut b = [if high == 0 { 0 } else { 0xff }; 32];
                    b[0] = if high == 0 { low } else { 0xff - low };
                    b[31] = high | sign;
                    out.push(b);
                }
            }
        }
        out
    }

    #[test]
    fn canonical_from_bytes_agrees_with_a_round_trip_at_the_edges() {
        for b in edges() {
            if let Some(p) = CompressedEdwardsY(b).decompress() {
                assert_eq!(
                    canonical_encoding(&b),
                    p.compress().to_bytes() == b,
                    "{}",
                    hex::encode(b)
                );
            }
        }
    }

    #[test]
    fn the_non_canonical_encodings_are_refused() {
        // y = p (reduces to 0), y = p + 1 (to 1), and x = 0 with the sign bit set.
        let mut y_is_p = [0xff; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        let mut y_is_p_plus_1 = y_is_p;
        y_is_p_plus_1[0] = 0xee;
        let mut one_negative = [0; 32];
        one_negative[0] = 1;
        one_negative[31] = 0x80;
        for b in [y_is_p, y_is_p_plus_1, one_negative] {
            assert!(CompressedEdwardsY(b).decompress().is_some());
            assert!(round_trips(&b).is_none());
            assert!(!canonical_encoding(&b));
            assert!(!strict_nonce(&b));
            assert!(strict_key(&b).is_none());
        }
    }

    #[test]
    fn every_small_order_point_is_refused_as_nonce_and_key() {
        for p in EIGHT_TORSION {
            let b = p.compress().to_bytes();
            assert!(!strict_nonce(&b), "{}", hex::encode(b));
            assert!(strict_key(&b).is_none(), "{}", hex::encode(b));
        }
    }

    #[test]
    fn a_real_key_and_nonce_pass() {
        use ed25519_dalek::{Signer, SigningKey};
        let key = SigningKey::from_bytes(&[7; 32]);
        let signature = key.sign(b"hello");
        assert_eq!(
            strict_key(key.verifying_key().as_bytes()),
            Some(key.verifying_key())
        );
        // Twice: the second answer comes from the table.
        assert_eq!(
            strict_key(key.verifying_key().as_bytes()),
            Some(key.verifying_key())
        );
        assert!(strict_nonce(signature.r_bytes()));
    }

    proptest! {
        #[test]
        fn agrees_with_decompress_and_compress(bytes in any::<[u8; 32]>()) {
            let reference = round_trips(&bytes);
            if let Some(point) = reference {
                prop_assert!(canonical_encoding(&bytes));
                prop_assert_eq!(strict_nonce(&bytes), !point.is_small_order());
                prop_assert_eq!(strict_key(&bytes).is_some(), !point.is_small_order());
            } else if CompressedEdwardsY(bytes).decompress().is_some() {
                prop_assert!(!canonical_encoding(&bytes));
            } else {
                // Not a point: only the key, which must decompress, is refused.
                prop_assert!(strict_key(&bytes).is_none());
            }
        }
    }
}
