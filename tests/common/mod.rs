//! Helpers shared by the integration tests.
#![allow(dead_code)]

use aidmesh::proto::{Category, Kind, Nonce, Post, PostId, SignedPost, Status, VerifiedPost};
use aidmesh::Identity;

pub const MINUTE: u64 = 60_000;
pub const DAY: u64 = 86_400_000;
/// A fixed "now" for store tests: 2026-06-01T00:00:00Z.
pub const NOW: u64 = 1_780_272_000_000;

/// A deterministic identity per number.
pub fn identity(n: u8) -> Identity {
    Identity::from_secret([n; 32])
}

/// An open offer by `who`, numbered `n`, created `age` ms before [`NOW`].
pub fn post(who: &Identity, n: u32, age: u64) -> Post {
    let author = who.author();
    let mut nonce = [0u8; 16];
    nonce[..4].copy_from_slice(&n.to_be_bytes());
    let nonce = Nonce(nonce);
    Post {
        id: PostId::derive(&author, &nonce),
        author,
        nonce,
        revision: 1,
        circle: "commons".into(),
        kind: Kind::Offer,
        status: Status::Open,
        category: Category::Food,
        title: format!("Post number {n}"),
        body: String::new(),
        tags: vec![],
        location: None,
        quantity: None,
        contact: None,
        created_at: NOW - age,
        updated_at: NOW - age,
        expires_at: NOW - age + 14 * DAY,
    }
}

pub fn sign(who: &Identity, post: &Post) -> SignedPost {
    post.sign(who.signing_key()).expect("test post signs")
}

pub fn verified(who: &Identity, post: &Post) -> VerifiedPost {
    sign(who, post).verify(NOW).expect("test post is valid")
}
