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
