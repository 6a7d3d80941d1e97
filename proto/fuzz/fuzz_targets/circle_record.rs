//! Fuzzes what a node does with membership and moderation records from peers: a
//! gossiped `SignedRecord` (decode, `verify`, re-encode), the `/aidmesh/records/1`
//! request and response decoders, and the fold and catch-up over whatever verifies.
//! Errors are the expected outcome; only a panic, crash, hang, runaway allocation or a
//! failed assertion is a finding.
#![no_main]

use aidmesh_proto::circle::{
    checkpoints, common_prefix, decode_request, decode_response, Membership, OrderKey, Response,
    SignedRecord, VerifiedRecord,
};
use libfuzzer_sys::fuzz_target;

/// 2026-01-02T00:00:00Z, the `now_ms` of `proto/vectors/circles.json`.
const NOW_MS: u64 = 1_767_312_000_000;

fuzz_target!(|data: &[u8]| {
    let mut verified: Vec<VerifiedRecord> = Vec::new();
    let mut take = |s: SignedRecord| {
        if let Ok(v) = s.verify(NOW_MS) {
            let wire = s.encode().expect("a verified record re-encodes");
            assert_eq!(SignedRecord::decode(&wire).as_ref(), Ok(&s));
            verified.push(v);
        }
    };
    if let Ok(s) = SignedRecord::decode(data) {
        take(s);
    }
    let mut theirs = Vec::new();
    if let Ok(r) = decode_request(data) {
        theirs = r.checkpoints;
        r.offer.into_iter().for_each(&mut take);
    }
    if let Ok(Response::Records { records, .. }) = decode_response(data) {
        records.into_iter().for_each(&mut take);
    }
    verified.sort_by_key(|v| v.key());
    if let Some(first) = verified.first() {
        let circle = first.record().circle.clone();
        let m = Membership::fold(&circle, &verified);
        // Folding the same set in the same order gives the same membership.
        assert_eq!(Membership::fold(&circle, &verified), m);
    }
    let keys: Vec<OrderKey> = verified.iter().map(|v| v.key()).collect();
    let cps = checkpoints(&keys);
    assert_eq!(common_prefix(&keys, &cps), keys.len());
    assert!(common_prefix(&keys, &theirs) <= keys.len());
});
