//! The `circle_record` fuzz target's checks as a property test, so they run without
//! cargo-fuzz: no bytes make record decoding, verification, the fold or the catch-up
//! helpers panic; a verified record re-encodes to its bytes; any flipped bit of a
//! valid record is refused or reads as another record; the fold does not depend on the
//! arrival order.

use aidmesh_proto::circle::{
    checkpoints, common_prefix, decode_request, decode_response, Membership, OrderKey, Response,
    SignedRecord, VerifiedRecord,
};
use proptest::prelude::*;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/circles.json");
const NOW_MS: u64 = 1_767_312_000_000;

/// The fuzz target's body.
fn exercise(data: &[u8]) {
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
        assert_eq!(Membership::fold(&circle, &verified), m);
    }
    let keys: Vec<OrderKey> = verified.iter().map(|v| v.key()).collect();
    assert_eq!(common_prefix(&keys, &checkpoints(&keys)), keys.len());
    assert!(common_prefix(&keys, &theirs) <= keys.len());
}

fn seeds() -> Vec<Vec<u8>> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let mut out: Vec<Vec<u8>> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["invalid"].as_array().unwrap())
        .map(|r| hex::decode(r["signed_record"].as_str().unwrap()).unwrap())
        .collect();
    out.push(hex::decode(v["catch_up_request"].as_str().unwrap()).unwrap());
    out
}

#[test]
fn every_seed_and_every_flipped_bit_of_one_is_handled() {
    for seed in seeds() {
        exercise(&seed);
        let valid = SignedRecord::decode(&seed).is_ok_and(|s| s.verify(NOW_MS).is_ok());
        for i in 0..seed.len() * 8 {
            let mut m = seed.clone();
            m[i / 8] ^= 1 << (i % 8);
            exercise(&m);
            if !valid {
                continue;
            }
            if let Ok(s) = SignedRecord::decode(&m) {
                if let Ok(v) = s.verify(NOW_MS) {
                    // A valid record with one bit changed, in its bytes or its
                    // signature, never verifies.
                    panic!("a flipped bit still verifies: {:?}", v.record());
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&data);
    }

    #[test]
    fn truncations_and_splices_of_seeds_never_panic(i in 0usize..20, cut in 0usize..1200, b in any::<u8>()) {
        let s = seeds();
        let mut seed = s[i % s.len()].clone();
        seed.truncate(cut.min(seed.len()));
        exercise(&seed);
        seed.push(b);
        exercise(&seed);
    }
}
