//! Private messages about a post: the signed inner message, the sealed envelope that
//! travels, and the checks that open one. Specified in `proto/MESSAGES.md`.
//!
//! Sealing, in short: the sender signs `MESSAGE_DOMAIN ‖ bytes` (where `bytes` is the
//! encoded [`Message`]), pads the encoded [`SignedMessage`] to a size bucket and seals
//! it with a libsodium sealed box (X25519 + XSalsa20-Poly1305, one ephemeral key per
//! message) to the recipient's X25519 key, which is derived from its ed25519 identity.
//! The [`Envelope`] around it shows only the recipient, the expiry and the padded size.

use crypto_box::{PublicKey, SecretKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::bytes::byte_newtype;
use crate::codec::{self, CodecError};
use crate::post::{AuthorKey, PostId, UnknownName};
use crate::rules::MAX_CLOCK_SKEW_MS;
use crate::signed::Signature;

/// The envelope format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Domain separation of the sender's signature.
pub const MESSAGE_DOMAIN: &[u8] = b"aidmesh/message/v1";
/// Domain separation of conversation ids.
pub const CONVERSATION_DOMAIN: &[u8] = b"aidmesh/conversation/v1";
/// Longest message text, in bytes.
pub const MAX_TEXT_BYTES: usize = 2000;
/// Longest life of a message: its envelope expires at most this long after it was sent.
pub const MAX_LIFETIME_MS: u64 = 14 * 24 * 60 * 60 * 1000;
/// Padded plaintext sizes: a sealed message is one of these plus [`SEAL_OVERHEAD`].
pub const PAD_BUCKETS: [usize; 5] = [256, 512, 1024, 2048, 4096];
/// What a sealed box adds: the 32-byte ephemeral public key and the 16-byte tag.
pub const SEAL_OVERHEAD: usize = 48;
/// Largest padded plaintext.
pub const MAX_PADDED_BYTES: usize = 4096;
/// Largest encoded [`SignedMessage`] (the padding's 2-byte length prefix aside).
pub const MAX_SIGNED_MESSAGE_BYTES: usize = MAX_PADDED_BYTES - 2;
/// Largest encoded [`Message`].
pub const MAX_MESSAGE_BYTES: usize = MAX_SIGNED_MESSAGE_BYTES - Signature::LEN - 3;
/// Largest encoded [`Envelope`]: version, recipient, expiry, length prefix, sealed box.
pub const MAX_ENVELOPE_BYTES: usize = 1 + 32 + 9 + 3 + MAX_PADDED_BYTES + SEAL_OVERHEAD;

byte_newtype!(
    /// Names a conversation: `blake3(CONVERSATION_DOMAIN ‖ post ‖ asker)`, so one
    /// person has one conversation with a post's author about that post.
    ConversationId,
    32
);
byte_newtype!(
    /// Random, chosen by the sender: names one message (receipts refer to it, and a
    /// recipient refuses a second message with the same id).
    MessageId,
    16
);
byte_newtype!(
    /// `blake3` of an envelope's encoding: what a holding peer files it under.
    EnvelopeId,
    32
);

impl ConversationId {
    /// The conversation between `post`'s author and `asker` about `post`.
    pub fn derive(post: &PostId, asker: &AuthorKey) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(CONVERSATION_DOMAIN);
        h.update(&post.0);
        h.update(&asker.0);
        Self(*h.finalize().as_bytes())
    }
}

impl EnvelopeId {
    /// Hashes an envelope's encoding.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

/// What a text message does in the handover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Plain words: asking, answering, arranging.
    Reply,
    /// The author promises the item to this person (the post becomes `promised`).
    Promise,
    /// Either side calls it off; a promise is freed.
    Decline,
    /// The handover happened (the author marks the post `fulfilled`).
    Done,
}

impl MessageKind {
    /// Every kind, in wire order.
    pub const ALL: &'static [MessageKind] = &[
        MessageKind::Reply,
        MessageKind::Promise,
        MessageKind::Decline,
        MessageKind::Done,
    ];

    /// The lowercase name used in JSON, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Reply => "reply",
            MessageKind::Promise => "promise",
            MessageKind::Decline => "decline",
            MessageKind::Done => "done",
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let lower = s.trim().to_ascii_lowercase();
        MessageKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == lower)
            .ok_or_else(|| UnknownName {
                what: "MessageKind",
                given: s.to_owned(),
                expected: "reply, promise, decline, done".into(),
            })
    }
}

/// How far a message got, as the recipient's signed receipt says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptState {
    /// Stored on the recipient's node.
    Delivered,
    /// Shown to the recipient.
    Read,
}

/// Automatic notices a node sends on its user's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notice {
    /// The post is promised to someone else (sent by the author's node to a new asker).
    Promised,
}

/// What a message carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Words from a person, with their role in the handover.
    Text {
        /// Reply, promise, decline or done.
        kind: MessageKind,
        /// At most [`MAX_TEXT_BYTES`]; a `Reply` is never empty.
        text: String,
    },
    /// The recipient's node saying a message arrived or was read.
    Receipt {
        /// The message it is about.
        of: MessageId,
        /// Delivered or read.
        state: ReceiptState,
    },
    /// A node's automatic notice.
    Notice(Notice),
}

/// The inner message, as the sender signs it.
///
/// The field order and the order of every enum's variants are the wire format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Random, unique per message.
    pub id: MessageId,
    /// The sender's identity key; signs the message.
    pub sender: AuthorKey,
    /// The recipient's identity key; must equal the envelope's.
    pub recipient: AuthorKey,
    /// The post the conversation is about.
    pub post: PostId,
    /// `ConversationId::derive(post, asker)`, the asker being sender or recipient.
    pub conversation: ConversationId,
    /// When it was written, ms since the Unix epoch.
    pub sent_at: u64,
    /// When every node drops it; must equal the envelope's, at most 14 days after
    /// `sent_at`.
    pub expires_at: u64,
    /// The content.
    pub body: Body,
}

/// A message's bytes and the sender's signature over `MESSAGE_DOMAIN ‖ bytes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage {
    /// The canonical encoding of a [`Message`].
    #[serde(with = "crate::bytes::hex_or_raw")]
    pub bytes: Vec<u8>,
    /// ed25519 over `MESSAGE_DOMAIN ‖ bytes`.
    pub signature: Signature,
}

/// What travels between nodes and what holding peers keep: all an observer sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`VERSION`].
    pub version: u8,
    /// Whose key the box is sealed to.
    pub recipient: AuthorKey,
    /// When every node drops it, ms since the Unix epoch.
    pub expires_at: u64,
    /// A sealed box of the padded [`SignedMessage`].
    #[serde(with = "crate::bytes::hex_or_raw")]
    pub sealed: Vec<u8>,
}

/// Why a message cannot be sealed or an envelope cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a well-formed encoding within the size limits.
    #[error("bad encoding: {0}")]
    Codec(#[from] CodecError),
    /// An envelope version this node does not speak.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// Sealed to someone else.
    #[error("the envelope is for another recipient")]
    WrongRecipient,
    /// Past its expiry.
    #[error("the message has expired")]
    Expired,
    /// Expires further ahead than 14 days (plus clock skew).
    #[error("the message lives longer than 14 days")]
    TooLong,
    /// The sealed box is not one of the padded sizes.
    #[error("sealed size {0} is not a padded size")]
    BadSize(usize),
    /// The box does not open with this key (not for us, or tampered with).
    #[error("the envelope does not decrypt")]
    Undecryptable,
    /// The padding is not the canonical one.
    #[error("bad padding")]
    BadPadding,
    /// The inner message breaks a rule.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// The envelope and the message inside disagree (recipient or expiry).
    #[error("the envelope does not match the message inside")]
    Mismatch,
    /// A key is not a valid ed25519 public key.
    #[error("bad key")]
    BadKey,
    /// The sender's signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Signing was asked of a key that is not the message's sender.
    #[error("the signing key is not the message's sender")]
    WrongKey,
    /// The box could not be sealed.
    #[error("cannot seal")]
    Seal,
}

impl Error {
    /// A stable machine-readable code, e.g. `expired` or `signature`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Codec(_) => "malformed",
            Error::Version(_) => "version",
            Error::WrongRecipient => "wrong_recipient",
            Error::Expired => "expired",
            Error::TooLong => "too_long",
            Error::BadSize(_) => "bad_size",
            Error::Undecryptable => "undecryptable",
            Error::BadPadding => "bad_padding",
            Error::Invalid(_) => "invalid",
            Error::Mismatch => "mismatch",
            Error::BadKey => "bad_key",
            Error::BadSignature => "signature",
            Error::WrongKey => "wrong_key",
            Error::Seal => "seal",
        }
    }
}

/// The X25519 public key of an ed25519 identity: the birational map from the Edwards
/// point to its Montgomery form (libsodium's `crypto_sign_ed25519_pk_to_curve25519`).
pub fn x25519_public(identity: &AuthorKey) -> Result<[u8; 32], Error> {
    let key = verifying_key(identity)?;
    Ok(key.to_montgomery().to_bytes())
}

/// The X25519 secret of an ed25519 signing key: the first half of `SHA-512(seed)`
/// (libsodium's `crypto_sign_ed25519_sk_to_curve25519`; X25519 clamps it).
pub fn x25519_secret(key: &SigningKey) -> [u8; 32] {
    key.to_scalar_bytes()
}

fn verifying_key(k: &AuthorKey) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_bytes(&k.0)
        .ok()
        .filter(|k| !k.is_weak())
        .ok_or(Error::BadKey)
}

/// The smallest bucket that holds `len` bytes plus the 2-byte length prefix.
pub fn padded_len(len: usize) -> Option<usize> {
    PAD_BUCKETS.iter().copied().find(|b| *b >= len + 2)
}

/// Pads encoded signed-message bytes: `u16_le(len) ‖ bytes ‖ zeros` to the smallest bucket.
pub fn pad(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let total = padded_len(bytes.len()).ok_or(CodecError::TooLarge {
        len: bytes.len(),
        max: MAX_SIGNED_MESSAGE_BYTES,
    })?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
    out.resize(total, 0);
    Ok(out)
}

/// The bytes inside canonical padding (see [`pad`]).
pub fn unpad(padded: &[u8]) -> Result<&[u8], Error> {
    if padded.len() < 2 {
        return Err(Error::BadPadding);
    }
    let len = u16::from_le_bytes([padded[0], padded[1]]) as usize;
    let body = padded.get(2..2 + len).ok_or(Error::BadPadding)?;
    let canonical = padded_len(len) == Some(padded.len());
    if !canonical || padded[2 + len..].iter().any(|b| *b != 0) {
        return Err(Error::BadPadding);
    }
    Ok(body)
}

/// bincode counts a byte string's length against the limit both when it reserves and
/// when it reads, so values are decoded with twice the limit after the input length
/// itself was checked against it.
fn check_len(len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(CodecError::TooLarge { len, max }.into());
    }
    Ok(())
}

fn signed_message(bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(MESSAGE_DOMAIN.len() + bytes.len());
    msg.extend_from_slice(MESSAGE_DOMAIN);
    msg.extend_from_slice(bytes);
    msg
}

impl Message {
    /// Checks every rule that does not need a key or a clock... and the clock ones at
    /// `now` (ms since the epoch).
    pub fn validate(&self, now: u64) -> Result<(), Error> {
        if self.sender == self.recipient {
            return Err(Error::Invalid("sender and recipient are the same"));
        }
        if self.conversation != ConversationId::derive(&self.post, &self.sender)
            && self.conversation != ConversationId::derive(&self.post, &self.recipient)
        {
            return Err(Error::Invalid(
                "conversation id is not derived from the post",
            ));
        }
        if self.sent_at > now + MAX_CLOCK_SKEW_MS {
            return Err(Error::Invalid("sent in the future"));
        }
        if self.expires_at <= self.sent_at {
            return Err(Error::Invalid("expires before it was sent"));
        }
        if self.expires_at - self.sent_at > MAX_LIFETIME_MS {
            return Err(Error::TooLong);
        }
        if self.expires_at <= now {
            return Err(Error::Expired);
        }
        if let Body::Text { kind, text } = &self.body {
            if text.len() > MAX_TEXT_BYTES {
                return Err(Error::Invalid("text over 2000 bytes"));
            }
            if *kind == MessageKind::Reply && text.trim().is_empty() {
                return Err(Error::Invalid("a reply needs text"));
            }
            if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return Err(Error::Invalid("text holds control characters"));
            }
        }
        Ok(())
    }

    /// Encodes and signs this message with the sender's key.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedMessage, Error> {
        if key.verifying_key().to_bytes() != self.sender.0 {
            return Err(Error::WrongKey);
        }
        let bytes = codec::encode::<MAX_MESSAGE_BYTES, _>(self)?;
        let signature = Signature(key.sign(&signed_message(&bytes)).to_bytes());
        Ok(SignedMessage { bytes, signature })
    }

    /// Signs, pads and seals this message to its recipient, with the operating system's
    /// randomness for the ephemeral key.
    pub fn seal(&self, key: &SigningKey) -> Result<Envelope, Error> {
        self.seal_with(key, &mut rand_core::OsRng)
    }

    /// [`Message::seal`] with a chosen source of randomness (golden vectors use a
    /// seeded one; anything else must use [`Message::seal`]).
    pub fn seal_with(
        &self,
        key: &SigningKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Envelope, Error> {
        let signed = self.sign(key)?;
        let inner = codec::encode::<MAX_SIGNED_MESSAGE_BYTES, _>(&signed)?;
        let padded = pad(&inner)?;
        let public = PublicKey::from(x25519_public(&self.recipient)?);
        let sealed = public.seal(rng, &padded).map_err(|_| Error::Seal)?;
        Ok(Envelope {
            version: VERSION,
            recipient: self.recipient,
            expires_at: self.expires_at,
            sealed,
        })
    }
}

/// An envelope that opened: the message is the sender's, for this recipient, in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The decoded message.
    pub message: Message,
    /// Its bytes and signature, as the sender made them.
    pub signed: SignedMessage,
}

impl Envelope {
    /// Decodes an envelope received from outside (at most [`MAX_ENVELOPE_BYTES`],
    /// canonical encoding) and checks what anyone can check without the key: version,
    /// expiry at `now` and padded size. Holding peers accept nothing less.
    pub fn decode(wire: &[u8], now: u64) -> Result<Self, Error> {
        check_len(wire.len(), MAX_ENVELOPE_BYTES)?;
        let env: Envelope = codec::decode_canonical::<{ 2 * MAX_ENVELOPE_BYTES }, _>(wire)?;
        env.check(now)?;
        Ok(env)
    }

    /// The checks of [`Envelope::decode`] on a decoded envelope.
    pub fn check(&self, now: u64) -> Result<(), Error> {
        if self.version != VERSION {
            return Err(Error::Version(self.version));
        }
        if self.expires_at <= now {
            return Err(Error::Expired);
        }
        if self.expires_at > now + MAX_LIFETIME_MS + MAX_CLOCK_SKEW_MS {
            return Err(Error::TooLong);
        }
        let len = self.sealed.len();
        if !PAD_BUCKETS.iter().any(|b| b + SEAL_OVERHEAD == len) {
            return Err(Error::BadSize(len));
        }
        Ok(())
    }

    /// The wire encoding.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(codec::encode::<MAX_ENVELOPE_BYTES, _>(self)?)
    }

    /// The id a holding peer files it under: `blake3` of its encoding.
    pub fn id(&self) -> Result<EnvelopeId, Error> {
        Ok(EnvelopeId::of(&self.encode()?))
    }

    /// Opens an envelope sealed to `key` at time `now`: decrypts, unpads, decodes,
    /// checks that the message inside names the same recipient and expiry, checks every
    /// rule and the sender's signature (strict ed25519). Replays are the caller's to
    /// refuse (by [`MessageId`]).
    pub fn open(&self, key: &SigningKey, now: u64) -> Result<Opened, Error> {
        self.check(now)?;
        if self.recipient.0 != key.verifying_key().to_bytes() {
            return Err(Error::WrongRecipient);
        }
        let secret = SecretKey::from(x25519_secret(key));
        let padded = secret
            .unseal(&self.sealed)
            .map_err(|_| Error::Undecryptable)?;
        let inner = unpad(&padded)?;
        check_len(inner.len(), MAX_SIGNED_MESSAGE_BYTES)?;
        let signed: SignedMessage =
            codec::decode_canonical::<{ 2 * MAX_SIGNED_MESSAGE_BYTES }, _>(inner)?;
        check_len(signed.bytes.len(), MAX_MESSAGE_BYTES)?;
        let message: Message =
            codec::decode_canonical::<{ 2 * MAX_MESSAGE_BYTES }, _>(&signed.bytes)?;
        if message.recipient != self.recipient || message.expires_at != self.expires_at {
            return Err(Error::Mismatch);
        }
        message.validate(now)?;
        let sender = verifying_key(&message.sender)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signed.signature.0);
        sender
            .verify_strict(&signed_message(&signed.bytes), &signature)
            .map_err(|_| Error::BadSignature)?;
        Ok(Opened { message, signed })
    }
}

// ---- the delivery protocol (`/aidmesh/msg/1`) ---------------------------------------

/// The libp2p protocol name of message delivery.
pub const PROTOCOL: &str = "/aidmesh/msg/1";
/// Most envelopes one fetch response carries (keeps a response far below a relayed
/// circuit's 128 KiB).
pub const MAX_FETCH_BATCH: usize = 16;
/// Largest encoded request.
pub const MAX_REQUEST_BYTES: usize = MAX_ENVELOPE_BYTES + 64 + MAX_FETCH_BATCH * 32;
/// Largest encoded response.
pub const MAX_RESPONSE_BYTES: usize = MAX_FETCH_BATCH * (MAX_ENVELOPE_BYTES + 3) + 64;

/// A request of the delivery protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// "Take this envelope": the recipient opens it; anyone else may hold it for the
    /// recipient.
    Push {
        /// An encoded [`Envelope`].
        #[serde(with = "crate::bytes::hex_or_raw")]
        envelope: Vec<u8>,
    },
    /// "Anything for me?": the holder answers with envelopes sealed to the asking
    /// peer's key, after dropping the ones the asker says it has stored.
    Fetch {
        /// Envelopes from the previous answer, now stored by the asker (at most
        /// [`MAX_FETCH_BATCH`]).
        release: Vec<EnvelopeId>,
    },
}

/// Why a push was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The envelope is malformed, expired, too long-lived or badly sized.
    Invalid,
    /// It is for this node but does not open or breaks a rule.
    Unopenable,
    /// The sender (or the pushing peer) is over its limit.
    RateLimited,
    /// The holder has no room (for this recipient or at all).
    Full,
}

/// A response of the delivery protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The recipient stored it (or had it already).
    Accepted,
    /// A holding peer keeps it for the recipient until it asks or it expires.
    Held,
    /// Not taken.
    Refused(Refusal),
    /// Envelopes held for the asker.
    Envelopes {
        /// Encoded [`Envelope`]s, at most [`MAX_FETCH_BATCH`].
        envelopes: Vec<serde_bytes::ByteBuf>,
        /// Whether more are waiting.
        more: bool,
    },
}

/// Encodes a delivery request.
pub fn encode_request(r: &Request) -> Result<Vec<u8>, CodecError> {
    codec::encode::<MAX_REQUEST_BYTES, _>(r)
}

/// Decodes a delivery request from outside.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX_REQUEST_BYTES,
        });
    }
    let r: Request = codec::decode::<{ 2 * MAX_REQUEST_BYTES }, _>(bytes)?;
    if let Request::Fetch { release } = &r {
        if release.len() > MAX_FETCH_BATCH {
            return Err(CodecError::TooLarge {
                len: release.len(),
                max: MAX_FETCH_BATCH,
            });
        }
    }
    Ok(r)
}

/// Encodes a delivery response.
pub fn encode_response(r: &Response) -> Result<Vec<u8>, CodecError> {
    codec::encode::<MAX_RESPONSE_BYTES, _>(r)
}

/// Decodes a delivery response from outside.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX_RESPONSE_BYTES,
        });
    }
    let r: Response = codec::decode::<{ 2 * MAX_RESPONSE_BYTES }, _>(bytes)?;
    if let Response::Envelopes { envelopes, .. } = &r {
        if envelopes.len() > MAX_FETCH_BATCH {
            return Err(CodecError::TooLarge {
                len: envelopes.len(),
                max: MAX_FETCH_BATCH,
            });
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn author(k: &SigningKey) -> AuthorKey {
        AuthorKey(k.verifying_key().to_bytes())
    }

    const NOW: u64 = 1_780_272_000_000;

    fn message(from: &SigningKey, to: &SigningKey, text: &str) -> Message {
        let post = PostId([7; 32]);
        Message {
            id: MessageId([1; 16]),
            sender: author(from),
            recipient: author(to),
            post,
            conversation: ConversationId::derive(&post, &author(from)),
            sent_at: NOW,
            expires_at: NOW + MAX_LIFETIME_MS,
            body: Body::Text {
                kind: MessageKind::Reply,
                text: text.into(),
            },
        }
    }

    #[test]
    fn seal_and_open() {
        let (a, b, c) = (key(1), key(2), key(3));
        let m = message(&a, &b, "is the bike still there?");
        let env = m.seal(&a).unwrap();
        assert_eq!(env.sealed.len(), 256 + SEAL_OVERHEAD);
        let wire = env.encode().unwrap();
        let back = Envelope::decode(&wire, NOW).unwrap();
        assert_eq!(back.open(&b, NOW).unwrap().message, m);
        assert_eq!(back.open(&c, NOW), Err(Error::WrongRecipient));
        let mut misaddressed = back.clone();
        misaddressed.recipient = author(&c);
        assert_eq!(misaddressed.open(&c, NOW), Err(Error::Undecryptable));
        assert_eq!(back.open(&b, NOW + MAX_LIFETIME_MS), Err(Error::Expired));
    }

    #[test]
    fn longest_text_fits_the_largest_bucket() {
        let (a, b) = (key(1), key(2));
        let m = message(&a, &b, &"é".repeat(MAX_TEXT_BYTES / 2));
        let env = m.seal(&a).unwrap();
        let wire = env.encode().unwrap();
        assert!(wire.len() <= MAX_ENVELOPE_BYTES);
        let back = Envelope::decode(&wire, NOW).unwrap();
        assert!(back.open(&b, NOW).is_ok());
        let push = encode_request(&Request::Push {
            envelope: wire.clone(),
        })
        .unwrap();
        assert!(decode_request(&push).is_ok());
        let full = Response::Envelopes {
            envelopes: vec![serde_bytes::ByteBuf::from(wire); MAX_FETCH_BATCH],
            more: true,
        };
        assert!(decode_response(&encode_response(&full).unwrap()).is_ok());
        let too_long = message(&a, &b, &"x".repeat(MAX_TEXT_BYTES + 1));
        assert!(too_long.validate(NOW).is_err());
    }

    #[test]
    fn padding_is_canonical() {
        let p = pad(b"abc").unwrap();
        assert_eq!(p.len(), 256);
        assert_eq!(unpad(&p).unwrap(), b"abc");
        let mut dirty = p.clone();
        dirty[200] = 1;
        assert_eq!(unpad(&dirty), Err(Error::BadPadding));
        let mut wide = p;
        wide.resize(512, 0);
        assert_eq!(unpad(&wide), Err(Error::BadPadding));
    }
}
