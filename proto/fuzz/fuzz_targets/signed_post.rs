//! Fuzzes the path every byte string from the network takes: `SignedPost::decode`,
//! then `verify` and `verify_batch`, plus decoding the raw input as a bare `Post`
//! and re-encoding it. Errors are the expected outcome for almost every input; only
//! a panic (or a crash, hang or runaway allocation) in the library is a finding.
#![no_main]

use aidmesh_proto::{codec, verify_batch, Post, SignedPost, MAX_POST_BYTES};
use libfuzzer_sys::fuzz_target;

/// A fixed clock (2026-01-02T00:00:00Z), the `now_ms` of the golden vectors, so runs
/// are reproducible and the vectors' valid posts verify.
const NOW_MS: u64 = 1_767_312_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedPost::decode(data) {
        let single = signed.clone().verify(NOW_MS);
        let batch = verify_batch(vec![signed], NOW_MS);
        assert_eq!(
            batch.len(),
            1,
            "verify_batch must return one result per post"
        );
        // A batch of one must give exactly the result of verifying alone.
        assert_eq!(
            single, batch[0],
            "verify and verify_batch disagree on the same post"
        );
    }

    if let Ok(post) = codec::decode::<{ MAX_POST_BYTES }, Post>(data) {
        // Whatever decodes within the limit must encode again.
        codec::encode::<{ MAX_POST_BYTES }, _>(&post).expect("a decoded Post failed to re-encode");
    }
});
