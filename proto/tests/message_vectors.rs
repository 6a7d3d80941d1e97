//! Golden vectors of private messages: `proto/vectors/messages.json` holds messages
//! signed and sealed with fixed keys and a seeded ephemeral key, every intermediate
//! encoding, and invalid envelopes with the error each must give. If the format drifts,
//! this test fails.
//!
//! To rewrite the file after a deliberate format change:
//! `AIDMESH_BLESS=1 cargo test -p aidmesh-proto --test message_vectors`.

use aidmesh_proto::codec;
use aidmesh_proto::message::{
    pad, x25519_public, x25519_secret, Body, ConversationId, Envelope, EnvelopeId, Message,
    MessageId, MessageKind, Notice, ReceiptState, SignedMessage, MAX_LIFETIME_MS,
    MAX_SIGNED_MESSAGE_BYTES, MESSAGE_DOMAIN,
};
use aidmesh_proto::{AuthorKey, PostId, Signature, SigningKey};
use ed25519_dalek::Signer;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/messages.json");
/// 2026-01-02T00:00:00Z.
const NOW: u64 = 1_767_312_000_000;
const SENDER_SEED: [u8; 32] = [7u8; 32];
const RECIPIENT_SEED: [u8; 32] = [9u8; 32];

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vectors {
    about: String,
    sender_seed: String,
    sender: String,
    recipient_seed: String,
    recipient: String,
    recipient_x25519_public: String,
    recipient_x25519_secret: String,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Valid {
    name: String,
    now_ms: u64,
    ephemeral_rng_seed: u64,
    message: Message,
    message_bytes: String,
    signature: String,
    signed_message: String,
    padded_len: usize,
    envelope: String,
    envelope_id: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Invalid {
    name: String,
    now_ms: u64,
    envelope: String,
    error: String,
}

fn sender() -> SigningKey {
    SigningKey::from_bytes(&SENDER_SEED)
}

fn recipient() -> SigningKey {
    SigningKey::from_bytes(&RECIPIENT_SEED)
}

fn key_of(k: &SigningKey) -> AuthorKey {
    AuthorKey(k.verifying_key().to_bytes())
}

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn message(n: u8, body: Body) -> Message {
    let post = PostId([0x42; 32]);
    Message {
        id: MessageId([n; 16]),
        sender: key_of(&sender()),
        recipient: key_of(&recipient()),
        post,
        conversation: ConversationId::derive(&post, &key_of(&sender())),
        sent_at: NOW - 60_000,
        expires_at: NOW - 60_000 + MAX_LIFETIME_MS,
        body,
    }
}

fn text(kind: MessageKind, t: &str) -> Body {
    Body::Text {
        kind,
        text: t.into(),
    }
}

fn valid(name: &str, seed: u64, m: Message) -> Valid {
    let signed = m.sign(&sender()).unwrap();
    let inner = codec::encode::<MAX_SIGNED_MESSAGE_BYTES, _>(&signed).unwrap();
    let env = m.seal_with(&sender(), &mut rng(seed)).unwrap();
    let wire = env.encode().unwrap();
    Valid {
        name: name.into(),
        now_ms: NOW,
        ephemeral_rng_seed: seed,
        message_bytes: hex::encode(&signed.bytes),
        signature: signed.signature.to_string(),
        signed_message: hex::encode(&inner),
        padded_len: pad(&inner).unwrap().len(),
        envelope: hex::encode(&wire),
        envelope_id: EnvelopeId::of(&wire).to_string(),
        message: m,
    }
}

fn invalid(name: &str, wire: Vec<u8>, error: &str) -> Invalid {
    Invalid {
        name: name.into(),
        now_ms: NOW,
        envelope: hex::encode(wire),
        error: error.into(),
    }
}

/// Seals arbitrary padded bytes to the recipient, outside the checks of `seal`.
fn raw_envelope(padded: &[u8], expires_at: u64, seed: u64) -> Vec<u8> {
    let public = crypto_box::PublicKey::from(x25519_public(&key_of(&recipient())).unwrap());
    let sealed = public.seal(&mut rng(seed), padded).unwrap();
    Envelope {
        version: 1,
        recipient: key_of(&recipient()),
        expires_at,
        sealed,
    }
    .encode()
    .unwrap()
}

fn signed_by(m: &Message, key: &SigningKey) -> Vec<u8> {
    let bytes = codec::encode::<4096, _>(m).unwrap();
    let mut msg = MESSAGE_DOMAIN.to_vec();
    msg.extend_from_slice(&bytes);
    let signed = SignedMessage {
        bytes,
        signature: Signature(key.sign(&msg).to_bytes()),
    };
    codec::encode::<MAX_SIGNED_MESSAGE_BYTES, _>(&signed).unwrap()
}

fn generate() -> Vectors {
    let reply = message(1, text(MessageKind::Reply, "Is the bike still there?"));
    let good = reply.seal_with(&sender(), &mut rng(1)).unwrap();

    let mut expired = good.clone();
    expired.expires_at = NOW;
    let mut re_addressed = good.clone();
    re_addressed.recipient = key_of(&sender());
    let mut tampered = good.clone();
    let n = tampered.sealed.len();
    tampered.sealed[n - 1] ^= 1;
    let mut version = good.clone();
    version.version = 2;
    let mut bad_size = good.clone();
    bad_size.sealed.truncate(300);
    let mut prolonged = good.clone();
    prolonged.expires_at += 1;

    let short = message(8, text(MessageKind::Reply, "hi"));
    let inner = signed_by(&short, &sender());
    let mut dirty = pad(&inner).unwrap();
    let last = dirty.len() - 1;
    dirty[last] = 1;
    let mut wide = pad(&inner).unwrap();
    wide.resize(1024, 0);
    let forged = pad(&signed_by(&reply, &SigningKey::from_bytes(&[8u8; 32]))).unwrap();
    let long = message(9, text(MessageKind::Reply, &"x".repeat(2001)));
    let too_long = pad(&signed_by(&long, &sender())).unwrap();
    let other_conv = Message {
        conversation: ConversationId([1; 32]),
        ..message(10, text(MessageKind::Reply, "hello"))
    };
    let bad_conv = pad(&signed_by(&other_conv, &sender())).unwrap();

    Vectors {
        about: "aidmesh private message v1 (proto/MESSAGES.md): bincode 2 standard config; \
                signature = ed25519(sender) over b\"aidmesh/message/v1\" || message_bytes; \
                padded = u16_le(len) || signed_message || zeros to 256/512/1024/2048/4096; \
                sealed = crypto_box_seal(padded, x25519(recipient)) with the ephemeral key \
                drawn from rand 0.8 StdRng::seed_from_u64(ephemeral_rng_seed)"
            .into(),
        sender_seed: hex::encode(SENDER_SEED),
        sender: key_of(&sender()).to_string(),
        recipient_seed: hex::encode(RECIPIENT_SEED),
        recipient: key_of(&recipient()).to_string(),
        recipient_x25519_public: hex::encode(x25519_public(&key_of(&recipient())).unwrap()),
        recipient_x25519_secret: hex::encode(x25519_secret(&recipient())),
        valid: vec![
            valid("reply", 1, reply.clone()),
            valid(
                "promise_empty_text",
                2,
                message(2, text(MessageKind::Promise, "")),
            ),
            valid(
                "done_unicode",
                3,
                message(3, text(MessageKind::Done, "Merci ! Übergabe erledigt ✓")),
            ),
            valid(
                "decline_multiline",
                4,
                message(4, text(MessageKind::Decline, "Sorry,\nfound one already.")),
            ),
            valid(
                "receipt_read",
                5,
                message(
                    5,
                    Body::Receipt {
                        of: MessageId([1; 16]),
                        state: ReceiptState::Read,
                    },
                ),
            ),
            valid(
                "notice_promised",
                6,
                message(6, Body::Notice(Notice::Promised)),
            ),
            valid(
                "longest_text",
                7,
                message(7, text(MessageKind::Reply, &"é".repeat(1000))),
            ),
        ],
        invalid: vec![
            invalid("expired", expired.encode().unwrap(), "expired"),
            invalid(
                "wrong_recipient",
                re_addressed.encode().unwrap(),
                "wrong_recipient",
            ),
            invalid(
                "tampered_ciphertext",
                tampered.encode().unwrap(),
                "undecryptable",
            ),
            invalid("unknown_version", version.encode().unwrap(), "version"),
            invalid("not_a_padded_size", bad_size.encode().unwrap(), "bad_size"),
            invalid(
                "expiry_changed_outside",
                prolonged.encode().unwrap(),
                "mismatch",
            ),
            invalid(
                "dirty_padding",
                raw_envelope(&dirty, short.expires_at, 11),
                "bad_padding",
            ),
            invalid(
                "padding_not_smallest_bucket",
                raw_envelope(&wide, short.expires_at, 12),
                "bad_padding",
            ),
            invalid(
                "signed_by_another_key",
                raw_envelope(&forged, reply.expires_at, 13),
                "signature",
            ),
            invalid(
                "text_over_2000_bytes",
                raw_envelope(&too_long, long.expires_at, 14),
                "invalid",
            ),
            invalid(
                "conversation_not_derived",
                raw_envelope(&bad_conv, other_conv.expires_at, 15),
                "invalid",
            ),
            invalid(
                "truncated",
                good.encode().unwrap()[..100].to_vec(),
                "malformed",
            ),
        ],
    }
}

#[test]
fn vectors_match_the_file() {
    let fresh = generate();
    if std::env::var_os("AIDMESH_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(FILE, text).unwrap();
    }
    let stored: Vectors =
        serde_json::from_str(&std::fs::read_to_string(FILE).expect("vectors file")).unwrap();
    assert_eq!(stored, fresh, "the message wire format drifted from {FILE}");
}

#[test]
fn valid_vectors_open_and_invalid_ones_fail_as_stated() {
    let v: Vectors = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    for case in &v.valid {
        let wire = hex::decode(&case.envelope).unwrap();
        let env = Envelope::decode(&wire, case.now_ms).unwrap();
        let opened = env.open(&recipient(), case.now_ms).unwrap();
        assert_eq!(opened.message, case.message, "{}", case.name);
        assert_eq!(hex::encode(&opened.signed.bytes), case.message_bytes);
        assert_eq!(env.sealed.len(), case.padded_len + 48, "{}", case.name);
        // The sender cannot open what it sealed for someone else.
        assert!(env.open(&sender(), case.now_ms).is_err());
    }
    for case in &v.invalid {
        let wire = hex::decode(&case.envelope).unwrap();
        let code = match Envelope::decode(&wire, case.now_ms) {
            Err(e) => e.code(),
            Ok(env) => match env.open(&recipient(), case.now_ms) {
                Err(e) => e.code(),
                Ok(_) => panic!("{} opened", case.name),
            },
        };
        assert_eq!(code, case.error, "{}", case.name);
    }
}
