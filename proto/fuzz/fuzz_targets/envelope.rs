//! Fuzzes what a node does with bytes pushed on `/aidmesh/msg/1`: the request and
//! response decoders, `Envelope::decode` and `open` with a fixed recipient key.
//! Errors are the expected outcome; only a panic, crash, hang or runaway allocation is
//! a finding.
#![no_main]

use aidmesh_proto::message::{decode_request, decode_response, Envelope, Request};
use aidmesh_proto::SigningKey;
use libfuzzer_sys::fuzz_target;

/// 2026-01-02T00:00:00Z, the `now_ms` of `proto/vectors/messages.json`.
const NOW_MS: u64 = 1_767_312_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = decode_response(data);
    let recipient = SigningKey::from_bytes(&[9u8; 32]);
    let envelope = match decode_request(data) {
        Ok(Request::Push { envelope }) => envelope,
        _ => data.to_vec(),
    };
    if let Ok(env) = Envelope::decode(&envelope, NOW_MS) {
        if let Ok(wire) = env.encode() {
            assert_eq!(wire, envelope, "a decoded envelope re-encodes to other bytes");
        }
        let _ = env.open(&recipient, NOW_MS);
    }
});
