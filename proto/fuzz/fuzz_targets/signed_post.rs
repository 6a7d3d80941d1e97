//! Fuzzes the path every byte string from the network takes: `SignedPost::decode`,
//! then `verify` and `verify_batch`, plus decoding the raw input as a bare `Post`
//! and re-encoding it, and the rules of `proto/LIMITS.md` on what decodes: text
//! normalisation, and the per-author quota. Errors are the expected outcome for
//! almost every input; only a panic (or a crash, hang or runaway allocation) in the
//! library is a finding.
#![no_main]

use aidmesh_proto::limits::{quota_keeps, Seniority, MAX_LIVE_PER_AUTHOR, MAX_POSTS_PER_AUTHOR};
use aidmesh_proto::{codec, limits, rules, verify_batch, Post, PostId, SignedPost, MAX_POST_BYTES};
use libfuzzer_sys::fuzz_target;

/// A fixed clock (2026-01-02T00:00:00Z), the `now_ms` of the golden vectors, so runs
/// are reproducible and the vectors' valid posts verify.
const NOW_MS: u64 = 1_767_312_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedPost::decode(data) {
        let single = signed.clone().verify(NOW_MS);
        // The same post twice and beside a copy with a flipped signature bit: a
        // batch must give each exactly what verifying it alone gives (strict: a
        // small-order or non-canonical R never passes a batch).
        let mut flipped = signed.clone();
        flipped.signature.0[63] ^= 0x01;
        let flipped_single = flipped.clone().verify(NOW_MS);
        let batch = verify_batch(vec![signed.clone(), flipped, signed], NOW_MS);
        assert_eq!(batch.len(), 3, "verify_batch must return one result per post");
        assert_eq!(single, batch[0], "verify and verify_batch disagree on the same post");
        assert_eq!(flipped_single, batch[1], "verify and verify_batch disagree");
        assert_eq!(single, batch[2], "verify and verify_batch disagree on the same post");
        if let Ok(v) = &single {
            // What verifies is valid free text: normalising changes nothing.
            let p = v.post();
            assert_eq!(rules::normalize_text(&p.title), p.title, "verified title not NFC");
            assert_eq!(rules::normalize_text(&p.body), p.body, "verified body not NFC");
        }
    }

    if let Ok(post) = codec::decode::<{ MAX_POST_BYTES }, Post>(data) {
        // Whatever decodes within the limit must encode again.
        codec::encode::<{ MAX_POST_BYTES }, _>(&post).expect("a decoded Post failed to re-encode");
        // Normalisation is idempotent and yields text the rules accept as NFC.
        let once = rules::normalize_text(&post.body);
        assert_eq!(rules::normalize_text(&once), once, "normalize_text not idempotent");
    }

    // The quota over posts built from the input: never more than the limits, and
    // the same kept set whatever the order.
    let posts: Vec<(Seniority, bool)> = data
        .chunks(3)
        .enumerate()
        .map(|(i, c)| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (
                Seniority {
                    created_at: u64::from(c[0]),
                    id: PostId(id),
                },
                c.get(1).is_some_and(|b| b & 1 == 1),
            )
        })
        .collect();
    let kept = quota_keeps(&posts);
    let live = posts.iter().zip(&kept).filter(|(p, k)| **k && p.1).count();
    assert!(live <= MAX_LIVE_PER_AUTHOR);
    assert!(kept.iter().filter(|k| **k).count() <= MAX_POSTS_PER_AUTHOR);
    let mut reversed = posts.clone();
    reversed.reverse();
    let mut kept_rev = quota_keeps(&reversed);
    kept_rev.reverse();
    assert_eq!(kept, kept_rev, "the quota depends on input order");
    let _ = limits::is_live(aidmesh_proto::Status::Open);
});
