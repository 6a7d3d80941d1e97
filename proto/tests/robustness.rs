//! Property tests: no input makes decoding or verification panic, any change to a
//! signed post's bytes is refused, and encode→decode round-trips.

mod common;

use aidmesh_proto::{
    codec, verify_batch, AuthorKey, Category, Kind, Nonce, Post, PostId, SignedPost, Status,
    MAX_POST_BYTES,
};
use common::*;
use proptest::prelude::*;

fn slug(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z0-9-]{{1,{max}}}")).unwrap()
}

fn arb_post() -> impl Strategy<Value = Post> {
    (
        (
            any::<[u8; 16]>(),
            any::<u32>(),
            slug(48),
            prop::sample::select(Kind::ALL),
            prop::sample::select(Status::ALL),
            prop::sample::select(Category::ALL),
        ),
        (
            "\\PC{1,120}",
            "\\PC{0,300}",
            prop::collection::vec(slug(32), 0..8),
            prop::option::of("[0-9b-hjkmnp-z]{1,6}"),
            any::<Option<u32>>(),
            prop::option::of("\\PC{1,50}"),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (nonce, revision, circle, kind, status, category),
                (title, body, tags, location, quantity, contact, c, u, e),
            )| {
                let author = author();
                let nonce = Nonce(nonce);
                Post {
                    id: PostId::derive(&author, &nonce),
                    author,
                    nonce,
                    revision,
                    circle,
                    kind,
                    status,
                    category,
                    title,
                    body,
                    tags,
                    location,
                    quantity,
                    contact,
                    created_at: c,
                    updated_at: u,
                    expires_at: e,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_round_trips(post in arb_post()) {
        let bytes = codec::encode::<MAX_POST_BYTES, _>(&post).unwrap();
        let back: Post = codec::decode_canonical::<MAX_POST_BYTES, _>(&bytes).unwrap();
        prop_assert_eq!(&back, &post);
        let signed = post.sign(&key()).unwrap();
        let wire = signed.encode().unwrap();
        prop_assert_eq!(SignedPost::decode(&wire).unwrap(), signed);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..10_000)) {
        let now = T0 + DAY;
        if let Ok(signed) = SignedPost::decode(&bytes) {
            let _ = signed.clone().verify(now);
            let _ = verify_batch(vec![signed], now);
        }
        let _ = codec::decode::<MAX_POST_BYTES, Post>(&bytes);
    }

    #[test]
    fn any_mutation_is_refused(
        nonce in 0u8..255,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<Option<prop::sample::Index>>(),
    ) {
        let now = T0 + DAY;
        let wire = minimal(nonce).sign(&key()).unwrap().encode().unwrap();
        let mut bad = wire.clone();
        for (at, x) in &edits {
            let i = at.index(bad.len());
            bad[i] ^= x;
        }
        if let Some(c) = cut {
            bad.truncate(c.index(bad.len()));
        }
        prop_assume!(bad != wire);
        let result = SignedPost::decode(&bad).and_then(|s| s.verify(now));
        prop_assert!(result.is_err(), "a mutated post verified");
    }

    #[test]
    fn batch_agrees_with_single(bad in prop::collection::vec(any::<bool>(), 1..150)) {
        let now = T0 + DAY;
        let posts: Vec<SignedPost> = bad
            .iter()
            .enumerate()
            .map(|(i, &bad)| {
                let mut s = minimal((i % 250) as u8).sign(&key()).unwrap();
                if bad {
                    s.signature.0[0] ^= 1;
                }
                s
            })
            .collect();
        let single: Vec<bool> = posts.iter().map(|s| s.clone().verify(now).is_ok()).collect();
        let batch: Vec<bool> = verify_batch(posts, now).iter().map(Result::is_ok).collect();
        prop_assert_eq!(&single, &batch);
        let expected: Vec<bool> = bad.iter().map(|b| !b).collect();
        prop_assert_eq!(batch, expected);
    }
}

#[test]
fn batch_never_accepts_what_strict_refuses() {
    let now = T0 + DAY;
    let evil = sign_with_identity_r(&minimal(200));
    // The construction is what the issue describes: plain batch verification takes it.
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&author().0).unwrap();
    let mut msg = aidmesh_proto::SIGNING_DOMAIN.to_vec();
    msg.extend_from_slice(&evil.bytes);
    let sig = ed25519_dalek::Signature::from_bytes(&evil.signature.0);
    assert!(ed25519_dalek::verify_batch(&[&msg], &[sig], &[vk]).is_ok());
    assert!(vk.verify_strict(&msg, &sig).is_err());
    // aidmesh refuses it on both paths, alone and inside a full batch of good posts.
    assert_eq!(
        evil.clone().verify(now),
        Err(aidmesh_proto::Error::BadSignature)
    );
    let mut posts: Vec<SignedPost> = (0..63u8)
        .map(|i| minimal(i).sign(&key()).unwrap())
        .collect();
    posts.insert(17, evil);
    let results = verify_batch(posts, now);
    assert_eq!(results.len(), 64);
    for (i, r) in results.iter().enumerate() {
        if i == 17 {
            assert_eq!(r, &Err(aidmesh_proto::Error::BadSignature));
        } else {
            assert!(r.is_ok(), "good post {i} refused");
        }
    }
}

#[test]
fn text_that_lies_about_itself_is_refused_naming_the_field() {
    use aidmesh_proto::rules::{self, Field, Problem};
    let now = T0 + DAY;
    let cases: Vec<(Post, Field, Problem)> = vec![
        (
            Post {
                title: "a\u{202D}b".into(),
                ..minimal(1)
            },
            Field::Title,
            Problem::BadCharacter('\u{202D}'),
        ),
        (
            Post {
                body: "x\u{2066}y".into(),
                ..minimal(1)
            },
            Field::Body,
            Problem::BadCharacter('\u{2066}'),
        ),
        (
            Post {
                contact: Some("call \u{2068}me".into()),
                ..minimal(1)
            },
            Field::Contact,
            Problem::BadCharacter('\u{2068}'),
        ),
        (
            Post {
                title: "\u{FEFF}\u{200D} \u{E0041}".into(),
                ..minimal(1)
            },
            Field::Title,
            Problem::Invisible,
        ),
        (
            Post {
                title: "Cafe\u{301}".into(),
                ..minimal(1)
            },
            Field::Title,
            Problem::NotNormalized,
        ),
        (
            Post {
                contact: Some("A\u{30A}sa".into()),
                ..minimal(1)
            },
            Field::Contact,
            Problem::NotNormalized,
        ),
    ];
    for (post, field, problem) in cases {
        let err = rules::validate(&post, now).unwrap_err();
        assert_eq!(
            (err.field, err.problem.clone()),
            (field, problem),
            "{post:?}"
        );
        assert!(err.to_string().starts_with(field.as_str()));
    }
    // Normalised, the same words pass; visible text with a joiner passes.
    let fixed = Post {
        title: rules::normalize_text("Cafe\u{301}"),
        ..minimal(1)
    };
    assert_eq!(fixed.title, "Caf\u{e9}");
    rules::validate(&fixed, now).unwrap();
    rules::validate(
        &Post {
            title: "Family\u{200D}meal \u{1F35C}".into(),
            ..minimal(1)
        },
        now,
    )
    .unwrap();
}

#[test]
fn sign_refuses_a_key_that_is_not_the_author() {
    let mut post = minimal(1);
    post.author = AuthorKey([9u8; 32]);
    assert_eq!(post.sign(&key()), Err(aidmesh_proto::Error::WrongKey));
}

#[test]
fn valid_posts_verify_and_name_their_field_when_not() {
    let now = T0 + DAY;
    assert!(full().sign(&key()).unwrap().verify(now).is_ok());
    let cases: Vec<(Post, &str)> = vec![
        (
            Post {
                title: " \t".into(),
                ..minimal(1)
            },
            "title.empty",
        ),
        (
            Post {
                title: "a\u{1b}[2J".into(),
                ..minimal(1)
            },
            "title.bad_character",
        ),
        (
            Post {
                body: "x".repeat(4001),
                ..minimal(1)
            },
            "body.too_long",
        ),
        (
            Post {
                circle: String::new(),
                ..minimal(1)
            },
            "circle.empty",
        ),
        (
            Post {
                circle: "c".repeat(49),
                ..minimal(1)
            },
            "circle.too_long",
        ),
        (
            Post {
                tags: (0..9).map(|i| format!("t{i}")).collect(),
                ..minimal(1)
            },
            "tags.too_many",
        ),
        (
            Post {
                tags: vec!["a".into(), "a".into()],
                ..minimal(1)
            },
            "tags.duplicate",
        ),
        (
            Post {
                tags: vec!["t".repeat(33)],
                ..minimal(1)
            },
            "tags.too_long",
        ),
        (
            Post {
                location: Some("u33dc0x".into()),
                ..minimal(1)
            },
            "location.too_long",
        ),
        (
            Post {
                contact: Some("c".repeat(201)),
                ..minimal(1)
            },
            "contact.too_long",
        ),
        (
            Post {
                updated_at: T0 - 1,
                ..minimal(1)
            },
            "updated_at.out_of_order",
        ),
        (
            Post {
                expires_at: T0,
                ..minimal(1)
            },
            "expires_at.out_of_order",
        ),
    ];
    for (post, code) in cases {
        let err = post.sign(&key()).unwrap().verify(now).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
    }
}
