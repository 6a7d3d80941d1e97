//! Posts built from a fixed key, shared by the vector and property tests.
#![allow(dead_code)]

use aidmesh_proto::{AuthorKey, Category, Kind, Nonce, Post, PostId, SigningKey, Status};

/// The seed of the key every vector is signed with.
pub const SEED: [u8; 32] = [7u8; 32];
/// 2026-01-01T00:00:00Z in ms.
pub const T0: u64 = 1_767_225_600_000;
pub const DAY: u64 = 86_400_000;

pub fn key() -> SigningKey {
    SigningKey::from_bytes(&SEED)
}

pub fn author() -> AuthorKey {
    AuthorKey(key().verifying_key().to_bytes())
}

/// A valid open offer with every optional field empty.
pub fn minimal(nonce_byte: u8) -> Post {
    let author = author();
    let nonce = Nonce([nonce_byte; 16]);
    Post {
        id: PostId::derive(&author, &nonce),
        author,
        nonce,
        revision: 1,
        circle: "commons".into(),
        kind: Kind::Offer,
        status: Status::Open,
        category: Category::Food,
        title: "Soup for ten people".into(),
        body: String::new(),
        tags: vec![],
        location: None,
        quantity: None,
        contact: None,
        created_at: T0,
        updated_at: T0,
        expires_at: T0 + 14 * DAY,
    }
}

/// A valid request using every field.
pub fn full() -> Post {
    Post {
        kind: Kind::Request,
        category: Category::Transport,
        circle: "east-side-42".into(),
        title: "Ride to the clinic — Tuesday 9:00".into(),
        body: "Wheelchair fits folded.\nCan pay for fuel. Grüße!".into(),
        tags: vec!["ride".into(), "clinic".into(), "wheelchair".into()],
        location: Some("u33dc0".into()),
        quantity: Some(1),
        contact: Some("signal: +00 000 000".into()),
        revision: 2,
        updated_at: T0 + 3_600_000,
        ..minimal(2)
    }
}

/// `post` signed with a nonce ground to `r = 0`: `R` is the identity (a small-order
/// point) and `s = H(R ‖ A ‖ M)·a`, so `[s]B = R + [H]A` holds and a cofactorless
/// batch accepts it, while `verify_strict` refuses the small-order `R`.
pub fn sign_with_identity_r(post: &Post) -> aidmesh_proto::SignedPost {
    use curve25519_dalek::scalar::Scalar;
    use sha2::Digest;
    let good = post.sign(&key()).unwrap();
    let mut r = [0u8; 32];
    r[0] = 1; // the identity (0, 1), compressed
    let mut msg = aidmesh_proto::SIGNING_DOMAIN.to_vec();
    msg.extend_from_slice(&good.bytes);
    let h = sha2::Sha512::new()
        .chain_update(r)
        .chain_update(author().0)
        .chain_update(&msg)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h);
    let s = Scalar::from_bytes_mod_order_wide(&wide) * key().to_scalar();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s.to_bytes());
    aidmesh_proto::SignedPost {
        bytes: good.bytes,
        signature: aidmesh_proto::Signature(sig),
    }
}
