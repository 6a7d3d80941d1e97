//! Signed posts: how a post is signed, how bytes from the network become a
//! [`VerifiedPost`], and batch verification for catch-up sync.
//!
//! The signature covers `SIGNING_DOMAIN ‖ bytes`, where `bytes` is the post's encoding
//! exactly as it travels, so nothing is re-encoded before verification. Verification
//! runs the cheap checks first (size, decoding, every rule) and the ed25519 check last.
//!
//! One signature rule on every path: [`SignedPost::verify`] and [`verify_batch`] accept
//! exactly the same signatures, those `verify_strict` accepts. ed25519 batch
//! verification alone is weaker: it checks a random combination of the equations
//! (cofactorless) and does not reject a small-order or non-canonically encoded `R`,
//! so a signature whose nonce was ground to the identity passes a batch and fails
//! `verify_strict`. Such an `R` (and a small-order or non-canonical key) is refused
//! before any batch, so a post a batch accepted is one every peer accepts.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::bytes::byte_newtype;
use crate::codec::{self, CodecError};
use crate::keys;
use crate::post::{ContentHash, Post};
use crate::rules::{self, Field, Problem, ValidationError};

/// Domain separation: a post signature can never be mistaken for any other signature
/// made with the node's key.
pub const SIGNING_DOMAIN: &[u8] = b"aidmesh/post/v1";
/// Largest encoded [`Post`].
pub const MAX_POST_BYTES: usize = 8 * 1024;
/// Largest encoded [`SignedPost`]: the post, its length prefix and the signature.
pub const MAX_SIGNED_POST_BYTES: usize = MAX_POST_BYTES + 3 + Signature::LEN;
/// How many signatures one ed25519 batch checks at once.
pub const VERIFY_BATCH: usize = 64;

byte_newtype!(
    /// An ed25519 signature.
    Signature,
    64
);

impl Signature {
    /// The nonce point `R`: the first half of the signature.
    pub(crate) fn nonce(&self) -> &[u8; 32] {
        self.0.first_chunk().unwrap_or(&[0; 32])
    }
}

/// Why a post was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed encoding within the size limits.
    #[error("bad encoding: {0}")]
    Codec(#[from] CodecError),
    /// The post breaks a rule.
    #[error("invalid post: {0}")]
    Invalid(#[from] ValidationError),
    /// The signature is not the author's over these bytes.
    #[error("signature does not verify")]
    BadSignature,
    /// Signing was asked of a key that is not the post's author.
    #[error("the signing key is not the post's author")]
    WrongKey,
}

impl Error {
    /// A stable machine-readable code, e.g. `title.too_long` or `signature`.
    pub fn code(&self) -> String {
        match self {
            Error::Codec(e) => format!(
                "codec.{}",
                match e {
                    CodecError::TooLarge { .. } => "too_large",
                    CodecError::Malformed(_) => "malformed",
                    CodecError::TrailingBytes(_) => "trailing_bytes",
                    CodecError::NonCanonical => "non_canonical",
                    CodecError::Encode(_) => "encode",
                }
            ),
            Error::Invalid(e) => format!("{}.{}", e.field, e.problem.code()),
            Error::BadSignature => "signature".into(),
            Error::WrongKey => "wrong_key".into(),
        }
    }
}

/// A post's bytes and its author's signature over them, as they travel and are stored.
///
/// Nothing about a `SignedPost` is trusted until [`SignedPost::verify`] succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPost {
    /// The canonical encoding of a [`Post`].
    #[serde(with = "crate::bytes::hex_or_raw")]
    pub bytes: Vec<u8>,
    /// ed25519 over `SIGNING_DOMAIN ‖ bytes`.
    pub signature: Signature,
}

impl Post {
    /// Encodes and signs this post with its author's key. Does not check the rules
    /// (that needs a clock): callers that create posts run [`rules::validate`] first.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedPost, Error> {
        if key.verifying_key().to_bytes() != self.author.0 {
            return Err(Error::WrongKey);
        }
        let bytes = codec::encode::<MAX_POST_BYTES, _>(self)?;
        let signature = Signature(key.sign(&signed_message(&bytes)).to_bytes());
        Ok(SignedPost { bytes, signature })
    }
}

fn signed_message(bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + bytes.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(bytes);
    msg
}

/// A decoded post whose rules passed and whose key parsed: all that is left is the
/// signature check.
struct Prepared {
    post: Post,
    key: VerifyingKey,
    signature: ed25519_dalek::Signature,
}

impl SignedPost {
    /// Decodes a signed post received from outside (at most
    /// [`MAX_SIGNED_POST_BYTES`]). Does not verify it.
    pub fn decode(wire: &[u8]) -> Result<Self, Error> {
        let signed: SignedPost = codec::decode::<MAX_SIGNED_POST_BYTES, _>(wire)?;
        if signed.bytes.len() > MAX_POST_BYTES {
            return Err(CodecError::TooLarge {
                len: signed.bytes.len(),
                max: MAX_POST_BYTES,
            }
            .into());
        }
        Ok(signed)
    }

    /// The wire encoding. Fails only for a post over the size limit, which no
    /// verified post is.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(codec::encode::<MAX_SIGNED_POST_BYTES, _>(self)?)
    }

    /// Names this exact revision: `blake3(bytes)`.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(&self.bytes)
    }

    /// Decodes the post inside without checking rules or signature; only for bytes
    /// that were verified before (see [`VerifiedPost::assume_verified`]).
    pub fn decode_post(&self) -> Result<Post, CodecError> {
        codec::decode_canonical::<MAX_POST_BYTES, Post>(&self.bytes)
    }

    fn prepare(&self, now: u64) -> Result<Prepared, Error> {
        let post = self.decode_post()?;
        rules::validate(&post, now)?;
        let key = keys::strict_key(&post.author.0).ok_or(ValidationError {
            field: Field::Author,
            problem: Problem::BadKey,
        })?;
        if !keys::strict_nonce(self.signature.nonce()) {
            return Err(Error::BadSignature);
        }
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        Ok(Prepared {
            post,
            key,
            signature,
        })
    }

    /// Decodes the post, checks every rule at time `now` (ms since the epoch) and the
    /// author's signature.
    pub fn verify(self, now: u64) -> Result<VerifiedPost, Error> {
        let p = self.prepare(now)?;
        p.key
            .verify_strict(&signed_message(&self.bytes), &p.signature)
            .map_err(|_| Error::BadSignature)?;
        Ok(VerifiedPost::new(p.post, self))
    }
}

/// Verifies many posts at once, with ed25519 batch verification in groups of
/// [`VERIFY_BATCH`] (about twice the single-signature rate). A group that fails is
/// checked one by one, so one bad post costs its group the fast path but never makes
/// a good post fail. Results are in input order.
pub fn verify_batch(posts: Vec<SignedPost>, now: u64) -> Vec<Result<VerifiedPost, Error>> {
    let mut out: Vec<Option<Result<VerifiedPost, Error>>> = Vec::with_capacity(posts.len());
    let mut pending: Vec<(usize, Prepared, SignedPost)> = Vec::new();
    for (i, signed) in posts.into_iter().enumerate() {
        match signed.prepare(now) {
            Ok(p) => {
                out.push(None);
                pending.push((i, p, signed));
            }
            Err(e) => out.push(Some(Err(e))),
        }
    }
    for group in pending.chunks(VERIFY_BATCH) {
        let messages: Vec<Vec<u8>> = group
            .iter()
            .map(|(_, _, s)| signed_message(&s.bytes))
            .collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<_> = group.iter().map(|(_, p, _)| p.signature).collect();
        let keys: Vec<_> = group.iter().map(|(_, p, _)| p.key).collect();
        let all_good = ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok();
        for ((i, p, signed), msg) in group.iter().zip(&messages) {
            let ok = all_good || p.key.verify_strict(msg, &p.signature).is_ok();
            out[*i] = Some(if ok {
                Ok(VerifiedPost::new(p.post.clone(), signed.clone()))
            } else {
                Err(Error::BadSignature)
            });
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or(Err(Error::BadSignature)))
        .collect()
}

/// A post whose encoding, rules and signature have been checked: the only form in
/// which a post from outside enters the store or is relayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPost {
    post: Post,
    signed: SignedPost,
    hash: ContentHash,
}

impl VerifiedPost {
    fn new(post: Post, signed: SignedPost) -> Self {
        let hash = signed.content_hash();
        Self { post, signed, hash }
    }

    /// Rebuilds a verified post from bytes that this process verified earlier and kept
    /// (the store's own records), skipping the signature check and the check that the
    /// bytes are the post's one encoding (verification made both; re-encoding to
    /// compare was a third of a stored post's read). Never use it for bytes from the
    /// network.
    pub fn assume_verified(signed: SignedPost) -> Result<Self, CodecError> {
        let post = codec::decode::<MAX_POST_BYTES, Post>(&signed.bytes)?;
        Ok(Self::new(post, signed))
    }

    /// The decoded post.
    pub fn post(&self) -> &Post {
        &self.post
    }

    /// The bytes and signature as received.
    pub fn signed(&self) -> &SignedPost {
        &self.signed
    }

    /// `blake3` of the post's bytes.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    /// Splits into the decoded post and its signed bytes.
    pub fn into_parts(self) -> (Post, SignedPost) {
        (self.post, self.signed)
    }
}
