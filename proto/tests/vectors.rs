//! Golden vectors: `proto/vectors/posts.json` holds posts signed with a fixed key, their
//! exact encodings and signatures, and invalid inputs with the error each must give.
//! If the wire format drifts, this test fails.
//!
//! To rewrite the file after a deliberate format change (a new protocol version):
//! `AIDMESH_BLESS=1 cargo test -p aidmesh-proto --test vectors`.

mod common;

use aidmesh_proto::{Post, PostId, Signature, SignedPost, Status};
use common::*;
use serde::{Deserialize, Serialize};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/posts.json");

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vectors {
    about: String,
    signing_key_seed: String,
    author: String,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Valid {
    name: String,
    now_ms: u64,
    post: Post,
    post_bytes: String,
    signature: String,
    signed_post: String,
    content_hash: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Invalid {
    name: String,
    now_ms: u64,
    signed_post: String,
    error: String,
}

fn valid(name: &str, post: Post) -> Valid {
    let signed = post.sign(&key()).unwrap();
    Valid {
        name: name.into(),
        now_ms: T0 + DAY,
        post_bytes: hex::encode(&signed.bytes),
        signature: signed.signature.to_string(),
        signed_post: hex::encode(signed.encode().unwrap()),
        content_hash: signed.content_hash().to_string(),
        post,
    }
}

fn invalid(name: &str, wire: Vec<u8>, error: &str) -> Invalid {
    Invalid {
        name: name.into(),
        now_ms: T0 + DAY,
        signed_post: hex::encode(wire),
        error: error.into(),
    }
}

fn signed_wire(post: &Post) -> Vec<u8> {
    post.sign(&key()).unwrap().encode().unwrap()
}

fn generate() -> Vectors {
    let withdrawn = Post {
        status: Status::Withdrawn,
        body: String::new(),
        contact: None,
        revision: 3,
        updated_at: T0 + 7_200_000,
        ..full()
    };
    let fulfilled = Post {
        status: Status::Fulfilled,
        tags: (1..=8).map(|i| format!("tag-{i}")).collect(),
        quantity: Some(u32::MAX),
        ..minimal(3)
    };
    // `Promised` was appended as variant 3 (MESSAGES.md, the handover): its encoding
    // is pinned so older variants keep their numbers.
    let promised = Post {
        status: Status::Promised,
        revision: 2,
        updated_at: T0 + 3_600_000,
        ..full()
    };

    let mut bad_sig = minimal(1).sign(&key()).unwrap();
    bad_sig.signature.0[10] ^= 0x01;
    let mut other_key_sig = minimal(1).sign(&key()).unwrap();
    other_key_sig.signature = {
        let other = aidmesh_proto::SigningKey::from_bytes(&[8u8; 32]);
        let mut p = minimal(1);
        p.author = aidmesh_proto::AuthorKey(other.verifying_key().to_bytes());
        p.id = PostId::derive(&p.author, &p.nonce);
        p.sign(&other).unwrap().signature
    };
    let good = signed_wire(&minimal(1));
    let mut trailing = good.clone();
    trailing.push(0);
    let mut wrong_id = minimal(1);
    wrong_id.id.0[0] ^= 0xff;

    Vectors {
        about: "aidmesh post wire format v1: bincode 2 standard config; signature = \
                ed25519(seed) over b\"aidmesh/post/v1\" || post_bytes"
            .into(),
        signing_key_seed: hex::encode(SEED),
        author: author().to_string(),
        valid: vec![
            valid("minimal_offer", minimal(1)),
            valid("full_request", full()),
            valid("withdrawn_tombstone", withdrawn),
            valid("fulfilled_max_tags", fulfilled),
            valid("promised_request", promised),
        ],
        invalid: vec![
            invalid("bad_signature", bad_sig.encode().unwrap(), "signature"),
            invalid(
                "signature_by_another_key",
                other_key_sig.encode().unwrap(),
                "signature",
            ),
            invalid(
                "oversize_title",
                signed_wire(&Post {
                    title: "x".repeat(121),
                    ..minimal(1)
                }),
                "title.too_long",
            ),
            invalid(
                "future_timestamp",
                signed_wire(&Post {
                    created_at: T0 + DAY + 6 * 60_000,
                    updated_at: T0 + DAY + 6 * 60_000,
                    expires_at: T0 + 3 * DAY,
                    ..minimal(1)
                }),
                "created_at.in_future",
            ),
            invalid(
                "expired",
                signed_wire(&Post {
                    expires_at: T0 + DAY,
                    ..minimal(1)
                }),
                "expires_at.expired",
            ),
            invalid(
                "lifetime_over_90_days",
                signed_wire(&Post {
                    expires_at: T0 + 91 * DAY,
                    ..minimal(1)
                }),
                "expires_at.too_far_ahead",
            ),
            invalid("id_not_derived", signed_wire(&wrong_id), "id.id_mismatch"),
            invalid(
                "withdrawn_with_body",
                signed_wire(&Post {
                    status: Status::Withdrawn,
                    body: "still here".into(),
                    ..minimal(1)
                }),
                "body.not_allowed",
            ),
            invalid(
                "bad_tag",
                signed_wire(&Post {
                    tags: vec!["Food".into()],
                    ..minimal(1)
                }),
                "tags.bad_character",
            ),
            invalid(
                "bad_geohash",
                signed_wire(&Post {
                    location: Some("u33a".into()),
                    ..minimal(1)
                }),
                "location.bad_character",
            ),
            invalid(
                "truncated",
                good[..good.len() - 10].to_vec(),
                "codec.malformed",
            ),
            invalid("trailing_byte", trailing, "codec.trailing_bytes"),
            invalid(
                "bidi_override_title",
                signed_wire(&Post {
                    title: "Free \u{202E}gnissim eb ot\u{202C} soup".into(),
                    ..minimal(1)
                }),
                "title.bad_character",
            ),
            invalid(
                "bidi_isolate_body",
                signed_wire(&Post {
                    body: "Pick up at \u{2067}the shop\u{2069}".into(),
                    ..minimal(1)
                }),
                "body.bad_character",
            ),
            invalid(
                "invisible_title",
                signed_wire(&Post {
                    title: "\u{200B}\u{2800}\u{3164}".into(),
                    ..minimal(1)
                }),
                "title.invisible",
            ),
            invalid(
                "not_nfc_body",
                signed_wire(&Post {
                    // "é" as e + combining acute: NFC is the single U+00E9.
                    body: "Cafe\u{301} open".into(),
                    ..minimal(1)
                }),
                "body.not_nfc",
            ),
            invalid(
                "r_is_identity",
                sign_with_identity_r(&minimal(1)).encode().unwrap(),
                "signature",
            ),
            invalid("empty", vec![], "codec.malformed"),
            invalid(
                "oversize_message",
                vec![0u8; aidmesh_proto::MAX_SIGNED_POST_BYTES + 1],
                "codec.too_large",
            ),
        ],
    }
}

fn check(result: Result<aidmesh_proto::VerifiedPost, aidmesh_proto::Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => e.code(),
    }
}

#[test]
fn vectors_pin_the_wire_format() {
    let generated = generate();
    if std::env::var_os("AIDMESH_BLESS").is_some() {
        let json = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(FILE, json).unwrap();
    }
    let text = std::fs::read_to_string(FILE).expect("proto/vectors/posts.json is missing");
    let file: Vectors = serde_json::from_str(&text).unwrap();
    let key = aidmesh_proto::SigningKey::from_bytes(
        &hex::decode(&file.signing_key_seed)
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(file.author, hex::encode(key.verifying_key().to_bytes()));
    assert!(file.valid.len() >= 4 && file.invalid.len() >= 10);

    for v in &file.valid {
        // The post as fields encodes to exactly the pinned bytes and signature.
        let signed = v.post.sign(&key).unwrap();
        assert_eq!(
            hex::encode(&signed.bytes),
            v.post_bytes,
            "{}: bytes",
            v.name
        );
        assert_eq!(
            signed.signature.to_string(),
            v.signature,
            "{}: signature",
            v.name
        );
        assert_eq!(
            hex::encode(signed.encode().unwrap()),
            v.signed_post,
            "{}: signed encoding",
            v.name
        );
        // And the pinned bytes decode and verify to the same post.
        let wire = hex::decode(&v.signed_post).unwrap();
        let verified = SignedPost::decode(&wire).unwrap().verify(v.now_ms).unwrap();
        assert_eq!(verified.post(), &v.post, "{}", v.name);
        assert_eq!(verified.hash().to_string(), v.content_hash, "{}", v.name);
        let sig: Signature = v.signature.parse().unwrap();
        assert_eq!(verified.signed().signature, sig);
    }
    for v in &file.invalid {
        let wire = hex::decode(&v.signed_post).unwrap();
        let got = check(SignedPost::decode(&wire).and_then(|s| s.verify(v.now_ms)));
        assert_eq!(got, v.error, "{}", v.name);
    }
    assert_eq!(
        file, generated,
        "the generator and the vector file disagree"
    );
}
