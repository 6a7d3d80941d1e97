//! Property tests of private messages: any text within the rules seals and opens to the
//! same message, for the recipient only; arbitrary bytes never panic any decoder.

use aidmesh_proto::message::{
    decode_request, decode_response, Body, ConversationId, Envelope, Message, MessageId,
    MessageKind, MAX_ENVELOPE_BYTES, MAX_LIFETIME_MS,
};
use aidmesh_proto::{AuthorKey, PostId, SigningKey};
use proptest::prelude::*;

const NOW: u64 = 1_767_312_000_000;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_open_round_trip(
        text in "[a-zA-Zé ✓\n]{1,600}",
        kind in prop::sample::select(MessageKind::ALL),
        life in 1u64..MAX_LIFETIME_MS,
        id in any::<[u8; 16]>(),
    ) {
        let (a, b, c) = (key(1), key(2), key(3));
        let post = PostId([5; 32]);
        let sender = AuthorKey(a.verifying_key().to_bytes());
        let m = Message {
            id: MessageId(id),
            sender,
            recipient: AuthorKey(b.verifying_key().to_bytes()),
            post,
            conversation: ConversationId::derive(&post, &sender),
            sent_at: NOW,
            expires_at: NOW + life,
            body: Body::Text { kind, text: format!("x{text}") },
        };
        let wire = m.seal(&a).unwrap().encode().unwrap();
        prop_assert!(wire.len() <= MAX_ENVELOPE_BYTES);
        let env = Envelope::decode(&wire, NOW).unwrap();
        prop_assert_eq!(env.open(&b, NOW).unwrap().message, m);
        prop_assert!(env.open(&c, NOW).is_err());
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        if let Ok(env) = Envelope::decode(&bytes, NOW) {
            let _ = env.open(&key(2), NOW);
        }
    }
}
