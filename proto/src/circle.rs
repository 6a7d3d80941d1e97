//! Closed circles and moderation: names that carry their founder's key, signed
//! membership and moderation records, the rule that folds a set of records into one
//! membership on every node, and the catch-up exchange of records
//! (`/aidmesh/records/1`). Specified in `proto/CIRCLES.md`.
//!
//! # Names
//! A closed circle's full name is `name~id`, `id` = the first
//! [`CIRCLE_ID_CHARS`] lowercase hex characters of
//! `blake3(b"aidmesh/circle/v1" ‖ name ‖ founder key)`. Nobody else can make records
//! that count as the founder's, so nobody can found another circle of that full name.
//!
//! # Records
//! A [`Record`] names a circle, its signer, a time and an [`Action`]; a
//! [`SignedRecord`] is its canonical bincode bytes and the signer's ed25519 signature
//! over `RECORD_DOMAIN ‖ bytes`. [`SignedRecord::verify`] checks everything that does
//! not depend on other records; whether a record *takes effect* is decided by the
//! fold ([`Membership`]).
//!
//! # Convergence
//! Membership is the fold of every record of the circle in [`OrderKey`] order
//! `(at, rank, hash)`: the same set gives the same membership on every node, whatever
//! order the records arrived in. At one `at`, admissions come before moderator grants
//! and those before removals, so a removal wins over an admission of the same peer at
//! or before it. A record whose signer has no authority at its place in the order (not
//! the founder, not a current moderator) is void there.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::bytes::byte_newtype;
use crate::codec::{self, CodecError};
use crate::keys;
use crate::post::{AuthorKey, PostId};
use crate::rules::{check_circle, MAX_CIRCLE_CHARS, MAX_CLOCK_SKEW_MS};
use crate::signed::Signature;
use crate::ValidationError;

/// Separates a closed circle's name from its id.
pub const CLOSED_SEPARATOR: char = '~';
/// Hex characters of a closed circle's id (64 bits).
pub const CIRCLE_ID_CHARS: usize = 16;
/// Longest closed circle full name.
pub const MAX_CLOSED_CIRCLE_CHARS: usize = MAX_CIRCLE_CHARS + 1 + CIRCLE_ID_CHARS;
/// Domain of a closed circle's id.
pub const CIRCLE_ID_DOMAIN: &[u8] = b"aidmesh/circle/v1";
/// Domain separation of record signatures.
pub const RECORD_DOMAIN: &[u8] = b"aidmesh/circle-record/v1";
/// Largest encoded [`Record`] (a redemption carries its voucher).
pub const MAX_RECORD_BYTES: usize = 1024;
/// Largest encoded [`SignedRecord`].
pub const MAX_SIGNED_RECORD_BYTES: usize = MAX_RECORD_BYTES + 3 + Signature::LEN;
/// Most records a node keeps of one circle; beyond, new records are refused.
pub const MAX_RECORDS_PER_CIRCLE: usize = 32_768;
/// Most moderation records (hides, blocks) a node keeps of one signer in one circle.
pub const MAX_MODERATION_PER_SIGNER: usize = 1024;
/// Longest life of a voucher (an invite's admission).
pub const MAX_VOUCHER_LIFETIME_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// The catch-up exchange's libp2p protocol.
pub const PROTOCOL: &str = "/aidmesh/records/1";
/// Most records in one catch-up response.
pub const MAX_EXCHANGE_RECORDS: usize = 256;
/// Most checkpoints in one catch-up request (enough for 2^38 records).
pub const MAX_CHECKPOINTS: usize = 40;
/// Most records a requester pushes with its request (its own latest).
pub const MAX_OFFER: usize = 4;
/// Largest catch-up request.
pub const MAX_REQUEST_BYTES: usize =
    MAX_CLOSED_CIRCLE_CHARS + 8 + MAX_CHECKPOINTS * 48 + MAX_OFFER * (MAX_SIGNED_RECORD_BYTES + 3);
/// Largest catch-up response.
pub const MAX_RESPONSE_BYTES: usize = 8 + MAX_EXCHANGE_RECORDS * (MAX_SIGNED_RECORD_BYTES + 3);

byte_newtype!(
    /// A voucher's single-use id.
    VoucherId,
    16
);

/// The content hash of a record: `blake3(bytes)`.
pub type RecordHash = [u8; 32];

/// What a record does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// A moderator admits a peer.
    Admit {
        /// The peer admitted.
        member: AuthorKey,
    },
    /// The founder makes a member a moderator.
    Moderator {
        /// The member.
        member: AuthorKey,
    },
    /// A moderator removes a member and, with `invitees_since`, everyone the member
    /// admitted at or after that time (and theirs, transitively).
    Remove {
        /// The member removed.
        member: AuthorKey,
        /// Also remove those the member admitted at or after this time (ms).
        invitees_since: Option<u64>,
    },
    /// A moderator's single-use admission for whoever holds it (inside an invite
    /// code); travels only inside a [`Action::Redeem`].
    Voucher {
        /// Single-use id.
        id: VoucherId,
        /// Last time it may be redeemed (ms).
        expires_at: u64,
    },
    /// The holder of a voucher admits itself with it.
    Redeem {
        /// The voucher record, signed by a moderator.
        voucher: SignedRecord,
    },
    /// Hide a post (moderation; applies on nodes that follow the signer).
    Hide {
        /// The post.
        post: PostId,
    },
    /// Block an author in the circle (moderation; applies on nodes that follow the
    /// signer).
    Block {
        /// The author.
        author: AuthorKey,
    },
}

impl Action {
    /// The order of actions at the same time: admissions, grants, removals, the rest.
    pub fn rank(&self) -> u8 {
        match self {
            Action::Admit { .. } | Action::Redeem { .. } => 0,
            Action::Moderator { .. } => 1,
            Action::Remove { .. } => 2,
            Action::Hide { .. } | Action::Block { .. } => 3,
            Action::Voucher { .. } => 4,
        }
    }

    /// Whether this is a membership action (closed circles only).
    pub fn is_membership(&self) -> bool {
        !matches!(self, Action::Hide { .. } | Action::Block { .. })
    }
}

/// A membership or moderation record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The circle (a closed circle's full name for membership actions).
    pub circle: String,
    /// Who signs it.
    pub signer: AuthorKey,
    /// When it was made, ms since the epoch.
    pub at: u64,
    /// What it does.
    pub action: Action,
}

/// A record's bytes and its signer's signature, as they travel and are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The canonical encoding of a [`Record`].
    #[serde(with = "crate::bytes::hex_or_raw")]
    pub bytes: Vec<u8>,
    /// ed25519 over `RECORD_DOMAIN ‖ bytes`.
    pub signature: Signature,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Bad encoding or over a size limit.
    #[error("bad record encoding: {0}")]
    Codec(#[from] CodecError),
    /// The circle name breaks the rules.
    #[error("bad circle in record: {0}")]
    Circle(#[from] ValidationError),
    /// A membership record for an open circle.
    #[error("membership records exist only for closed circles (name~id), not {0:?}")]
    OpenCircle(String),
    /// Dated ahead of the clock by more than the allowed skew.
    #[error("record dated in the future")]
    InFuture,
    /// The signer is not a usable ed25519 key.
    #[error("record signer is not a usable ed25519 key")]
    BadKey,
    /// The signature does not verify.
    #[error("record signature does not verify")]
    BadSignature,
    /// A voucher outside a redemption, or a redemption whose voucher is bad.
    #[error("bad voucher: {0}")]
    Voucher(&'static str),
    /// Signing with a key that is not the record's signer.
    #[error("the signing key is not the record's signer")]
    WrongKey,
}

impl RecordError {
    /// A stable machine-readable code, e.g. `signature` or `codec.trailing_bytes`.
    pub fn code(&self) -> String {
        match self {
            RecordError::Codec(e) => format!(
                "codec.{}",
                match e {
                    CodecError::TooLarge { .. } => "too_large",
                    CodecError::Malformed(_) => "malformed",
                    CodecError::TrailingBytes(_) => "trailing_bytes",
                    CodecError::NonCanonical => "non_canonical",
                    CodecError::Encode(_) => "encode",
                }
            ),
            RecordError::Circle(_) => "circle".into(),
            RecordError::OpenCircle(_) => "open_circle".into(),
            RecordError::InFuture => "in_future".into(),
            RecordError::BadKey => "key".into(),
            RecordError::BadSignature => "signature".into(),
            RecordError::Voucher(_) => "voucher".into(),
            RecordError::WrongKey => "wrong_key".into(),
        }
    }
}

/// Where a record sits in the fold: `(at, rank, hash)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderKey {
    /// The record's time.
    pub at: u64,
    /// [`Action::rank`].
    pub rank: u8,
    /// Its content hash.
    pub hash: RecordHash,
}

/// A record whose encoding, stateless rules and signature(s) are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRecord {
    record: Record,
    signed: SignedRecord,
    key: OrderKey,
}

/// The id of closed circle `name` founded by `founder`.
pub fn circle_id(name: &str, founder: &AuthorKey) -> String {
    let mut h = blake3::Hasher::new();
    h.update(CIRCLE_ID_DOMAIN);
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update(&founder.0);
    hex::encode(&h.finalize().as_bytes()[..CIRCLE_ID_CHARS / 2])
}

/// The full name of closed circle `name` founded by `founder`.
pub fn closed_name(name: &str, founder: &AuthorKey) -> String {
    format!("{name}{CLOSED_SEPARATOR}{}", circle_id(name, founder))
}

/// `(name, id)` of a closed circle's full name; `None` for an open circle.
pub fn split_closed(circle: &str) -> Option<(&str, &str)> {
    circle.split_once(CLOSED_SEPARATOR)
}

/// Whether `circle` is a closed circle's full name.
pub fn is_closed(circle: &str) -> bool {
    circle.contains(CLOSED_SEPARATOR)
}

/// Whether `key` founded closed circle `circle`.
pub fn is_founder(circle: &str, key: &AuthorKey) -> bool {
    split_closed(circle).is_some_and(|(name, id)| circle_id(name, key) == id)
}

fn signed_message(bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(RECORD_DOMAIN.len() + bytes.len());
    msg.extend_from_slice(RECORD_DOMAIN);
    msg.extend_from_slice(bytes);
    msg
}

impl Record {
    /// Encodes and signs the record with its signer's key.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedRecord, RecordError> {
        if key.verifying_key().to_bytes() != self.signer.0 {
            return Err(RecordError::WrongKey);
        }
        let bytes = codec::encode::<MAX_RECORD_BYTES, _>(self)?;
        let signature = Signature(key.sign(&signed_message(&bytes)).to_bytes());
        Ok(SignedRecord { bytes, signature })
    }

    /// The checks that need no other record, at `now`.
    fn check(&self, now: u64, nested: bool) -> Result<(), RecordError> {
        check_circle(&self.circle)?;
        if self.action.is_membership() && !is_closed(&self.circle) {
            return Err(RecordError::OpenCircle(self.circle.clone()));
        }
        if self.at > now.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(RecordError::InFuture);
        }
        match &self.action {
            Action::Voucher { expires_at, .. } => {
                if !nested {
                    return Err(RecordError::Voucher(
                        "a voucher travels only inside an invite or a redemption",
                    ));
                }
                if *expires_at < self.at || *expires_at - self.at > MAX_VOUCHER_LIFETIME_MS {
                    return Err(RecordError::Voucher("expiry before issue or over 30 days"));
                }
            }
            Action::Redeem { voucher } => {
                if nested {
                    return Err(RecordError::Voucher("a redemption inside a redemption"));
                }
                let v = voucher.verify_inner(now, true)?;
                let Action::Voucher { expires_at, .. } = v.record.action else {
                    return Err(RecordError::Voucher("a redemption of something else"));
                };
                if v.record.circle != self.circle {
                    return Err(RecordError::Voucher("a voucher for another circle"));
                }
                if self.at < v.record.at || self.at > expires_at {
                    return Err(RecordError::Voucher(
                        "redeemed before issue or after expiry",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl SignedRecord {
    /// Decodes a signed record from outside. Does not verify it.
    pub fn decode(wire: &[u8]) -> Result<Self, RecordError> {
        let signed: SignedRecord = codec::decode::<MAX_SIGNED_RECORD_BYTES, _>(wire)?;
        if signed.bytes.len() > MAX_RECORD_BYTES {
            return Err(CodecError::TooLarge {
                len: signed.bytes.len(),
                max: MAX_RECORD_BYTES,
            }
            .into());
        }
        Ok(signed)
    }

    /// The wire encoding.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        Ok(codec::encode::<MAX_SIGNED_RECORD_BYTES, _>(self)?)
    }

    /// `blake3(bytes)`.
    pub fn hash(&self) -> RecordHash {
        *blake3::hash(&self.bytes).as_bytes()
    }

    /// Decodes the record inside without checking anything; only for bytes verified
    /// before.
    pub fn decode_record(&self) -> Result<Record, CodecError> {
        codec::decode_canonical::<MAX_RECORD_BYTES, Record>(&self.bytes)
    }

    fn verify_inner(&self, now: u64, nested: bool) -> Result<VerifiedRecord, RecordError> {
        let record = self.decode_record()?;
        record.check(now, nested)?;
        let key = keys::strict_key(&record.signer.0).ok_or(RecordError::BadKey)?;
        if !keys::strict_nonce(self.signature.nonce()) {
            return Err(RecordError::BadSignature);
        }
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&signed_message(&self.bytes), &signature)
            .map_err(|_| RecordError::BadSignature)?;
        Ok(VerifiedRecord::new(record, self.clone()))
    }

    /// Decodes and checks the record at `now`: encoding, circle, time, voucher, and
    /// the signer's signature (and the voucher's).
    pub fn verify(&self, now: u64) -> Result<VerifiedRecord, RecordError> {
        self.verify_inner(now, false)
    }

    /// Checks a voucher as an invite carries it (a voucher record on its own).
    pub fn verify_voucher(&self, now: u64) -> Result<VerifiedRecord, RecordError> {
        let v = self.verify_inner(now, true)?;
        match v.record.action {
            Action::Voucher { .. } => Ok(v),
            _ => Err(RecordError::Voucher("not a voucher")),
        }
    }
}

impl VerifiedRecord {
    fn new(record: Record, signed: SignedRecord) -> Self {
        let key = OrderKey {
            at: record.at,
            rank: record.action.rank(),
            hash: signed.hash(),
        };
        Self {
            record,
            signed,
            key,
        }
    }

    /// Rebuilds a record this process verified and stored earlier, without checking
    /// it again. Never for bytes from the network.
    pub fn assume_verified(signed: SignedRecord) -> Result<Self, CodecError> {
        let record = signed.decode_record()?;
        Ok(Self::new(record, signed))
    }

    /// The decoded record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Its bytes and signature.
    pub fn signed(&self) -> &SignedRecord {
        &self.signed
    }

    /// Its place in the fold.
    pub fn key(&self) -> OrderKey {
        self.key
    }
}

/// How a member got in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// The moderator who admitted it (its own key for the founder).
    pub by: AuthorKey,
    /// When, ms.
    pub at: u64,
}

/// How a peer was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// The moderator who removed it (the one who removed its admitter, for a member
    /// removed with its admitter's invitees).
    pub by: AuthorKey,
    /// When, ms.
    pub at: u64,
}

/// The membership of a closed circle: the fold of its records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    circle: String,
    /// The founder, once a record signed by it is known.
    pub founder: Option<AuthorKey>,
    /// Current members (the founder among them once known) and how they got in.
    pub members: BTreeMap<AuthorKey, Admission>,
    /// Current moderators (besides the founder).
    pub moderators: BTreeSet<AuthorKey>,
    /// Peers removed and not admitted again.
    pub removed: BTreeMap<AuthorKey, Removal>,
    /// Vouchers redeemed.
    used: BTreeSet<VoucherId>,
    /// Who each member admitted, for removals with invitees.
    admitted_by: BTreeMap<AuthorKey, BTreeSet<AuthorKey>>,
}

impl Membership {
    /// The empty membership of `circle`.
    pub fn new(circle: &str) -> Self {
        Self {
            circle: circle.to_string(),
            ..Self::default()
        }
    }

    /// Folds `records`, which must be in [`OrderKey`] order and of this circle.
    pub fn fold<'a>(circle: &str, records: impl IntoIterator<Item = &'a VerifiedRecord>) -> Self {
        let mut m = Self::new(circle);
        for r in records {
            m.apply(r);
        }
        m
    }

    /// Whether `key` is a current member.
    pub fn is_member(&self, key: &AuthorKey) -> bool {
        self.members.contains_key(key) || is_founder(&self.circle, key)
    }

    /// Whether `key` may admit and remove: the founder or a current moderator.
    pub fn is_moderator(&self, key: &AuthorKey) -> bool {
        is_founder(&self.circle, key)
            || (self.moderators.contains(key) && self.members.contains_key(key))
    }

    /// Notes the founder at its first record; returns whether it was new.
    fn note_founder(&mut self, signer: &AuthorKey, at: u64) -> bool {
        if self.founder.is_none() && is_founder(&self.circle, signer) {
            self.founder = Some(*signer);
            self.members
                .entry(*signer)
                .or_insert(Admission { by: *signer, at });
            return true;
        }
        false
    }

    fn admit(&mut self, member: AuthorKey, by: AuthorKey, at: u64) -> bool {
        if self.members.contains_key(&member) {
            return false;
        }
        self.members.insert(member, Admission { by, at });
        self.admitted_by.entry(by).or_default().insert(member);
        self.removed.remove(&member);
        true
    }

    fn remove(&mut self, member: AuthorKey, by: AuthorKey, at: u64) {
        if let Some(a) = self.members.remove(&member) {
            if let Some(set) = self.admitted_by.get_mut(&a.by) {
                set.remove(&member);
            }
        }
        self.moderators.remove(&member);
        self.removed.insert(member, Removal { by, at });
    }

    /// Applies the next record in order. Returns whether it took effect (a void
    /// record changes nothing).
    pub fn apply(&mut self, r: &VerifiedRecord) -> bool {
        let rec = &r.record;
        if rec.circle != self.circle {
            return false;
        }
        let signer = rec.signer;
        // The founder's first record makes the founder known: it takes effect.
        let revealed = self.note_founder(&signer, rec.at);
        let effect = match &rec.action {
            Action::Admit { member } => {
                self.is_moderator(&signer) && self.admit(*member, signer, rec.at)
            }
            Action::Moderator { member } => {
                if !is_founder(&self.circle, &signer) || !self.members.contains_key(member) {
                    return false;
                }
                self.moderators.insert(*member)
            }
            Action::Remove {
                member,
                invitees_since,
            } => {
                if !self.is_moderator(&signer)
                    || is_founder(&self.circle, member)
                    || !self.members.contains_key(member)
                {
                    return false;
                }
                self.remove(*member, signer, rec.at);
                if let Some(since) = invitees_since {
                    let mut work = vec![*member];
                    while let Some(x) = work.pop() {
                        let invitees: Vec<AuthorKey> = self
                            .admitted_by
                            .get(&x)
                            .map(|s| s.iter().copied().collect())
                            .unwrap_or_default();
                        for y in invitees {
                            let late = self.members.get(&y).is_some_and(|a| a.at >= *since);
                            if late && !is_founder(&self.circle, &y) {
                                self.remove(y, signer, rec.at);
                                work.push(y);
                            }
                        }
                    }
                }
                true
            }
            Action::Redeem { voucher } => {
                let Ok(v) = voucher.decode_record() else {
                    return false;
                };
                let Action::Voucher { id, .. } = v.action else {
                    return false;
                };
                if self.used.contains(&id) || !self.is_moderator(&v.signer) {
                    return false;
                }
                if self.admit(signer, v.signer, rec.at) {
                    self.used.insert(id);
                    true
                } else {
                    false
                }
            }
            Action::Voucher { .. } | Action::Hide { .. } | Action::Block { .. } => false,
        };
        revealed || effect
    }
}

/// A prefix of a record set, as the requester of a catch-up describes it: the first
/// `count` records in order, the last of which has `last`, and the XOR of their
/// hashes' first 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Records in the prefix.
    pub count: u32,
    /// Time of its last record.
    pub last_at: u64,
    /// First 16 bytes of its last record's hash.
    pub last_hash: [u8; 16],
    /// XOR of the first 16 bytes of every hash in the prefix.
    pub fingerprint: [u8; 16],
}

fn head16(h: &RecordHash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&h[..16]);
    out
}

fn xor(acc: &mut [u8; 16], h: &RecordHash) {
    for (a, b) in acc.iter_mut().zip(h.iter()) {
        *a ^= b;
    }
}

/// The checkpoints of a sorted record set: prefixes of length `n`, `n-1`, `n-2`,
/// `n-4`, ... (at most [`MAX_CHECKPOINTS`]).
pub fn checkpoints(sorted: &[OrderKey]) -> Vec<Checkpoint> {
    let n = sorted.len();
    let mut lens = Vec::new();
    let mut back = 0usize;
    while back < n && lens.len() < MAX_CHECKPOINTS {
        lens.push(n - back);
        back = if back == 0 { 1 } else { back * 2 };
    }
    let mut prefix = vec![[0u8; 16]; n + 1];
    for (i, k) in sorted.iter().enumerate() {
        let mut acc = prefix[i];
        xor(&mut acc, &k.hash);
        prefix[i + 1] = acc;
    }
    lens.into_iter()
        .map(|len| Checkpoint {
            count: len as u32,
            last_at: sorted[len - 1].at,
            last_hash: head16(&sorted[len - 1].hash),
            fingerprint: prefix[len],
        })
        .collect()
}

/// Where the responder's sorted set starts differing from the requester's: the
/// length of the longest checkpoint prefix the responder holds exactly (0 if none).
/// The responder sends its records from there.
pub fn common_prefix(sorted: &[OrderKey], theirs: &[Checkpoint]) -> usize {
    let mut prefix = vec![[0u8; 16]; sorted.len() + 1];
    for (i, k) in sorted.iter().enumerate() {
        let mut acc = prefix[i];
        xor(&mut acc, &k.hash);
        prefix[i + 1] = acc;
    }
    let mut best = 0usize;
    for cp in theirs.iter().take(MAX_CHECKPOINTS) {
        // Our records up to and including the checkpoint's last one.
        let len = sorted.partition_point(|k| (k.at, head16(&k.hash)) <= (cp.last_at, cp.last_hash));
        if len as u64 == u64::from(cp.count) && prefix[len] == cp.fingerprint && len > best {
            best = len;
        }
    }
    best
}

/// What the requester of a catch-up sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The circle.
    pub circle: String,
    /// Its record set, as checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// Its own latest records (a new member's redemption), at most [`MAX_OFFER`].
    pub offer: Vec<SignedRecord>,
}

/// What the responder answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Its records after the common prefix, in order, at most
    /// [`MAX_EXCHANGE_RECORDS`]; `more` when it holds more after them.
    Records {
        /// The records.
        records: Vec<SignedRecord>,
        /// Whether there are more.
        more: bool,
    },
    /// The responder does not serve this circle to the requester (not a member, or
    /// not in the circle).
    Denied,
}

/// Encodes a request.
pub fn encode_request(r: &Request) -> Result<Vec<u8>, CodecError> {
    codec::encode::<MAX_REQUEST_BYTES, _>(r)
}

/// Decodes a request from outside, checking its counts.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    let r: Request = codec::decode::<MAX_REQUEST_BYTES, _>(bytes)?;
    if r.checkpoints.len() > MAX_CHECKPOINTS || r.offer.len() > MAX_OFFER {
        return Err(CodecError::Malformed(
            "too many checkpoints or offers".into(),
        ));
    }
    Ok(r)
}

/// Encodes a response.
pub fn encode_response(r: &Response) -> Result<Vec<u8>, CodecError> {
    codec::encode::<MAX_RESPONSE_BYTES, _>(r)
}

/// Decodes a response from outside, checking its counts.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    let r: Response = codec::decode::<MAX_RESPONSE_BYTES, _>(bytes)?;
    if let Response::Records { records, .. } = &r {
        if records.len() > MAX_EXCHANGE_RECORDS {
            return Err(CodecError::Malformed("too many records".into()));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_312_000_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }
    fn author(k: &SigningKey) -> AuthorKey {
        AuthorKey(k.verifying_key().to_bytes())
    }
    fn rec(circle: &str, k: &SigningKey, at: u64, action: Action) -> VerifiedRecord {
        Record {
            circle: circle.into(),
            signer: author(k),
            at,
            action,
        }
        .sign(k)
        .unwrap()
        .verify(NOW)
        .unwrap()
    }
    fn sorted(mut v: Vec<VerifiedRecord>) -> Vec<VerifiedRecord> {
        v.sort_by_key(|r| r.key());
        v
    }

    #[test]
    fn names_bind_the_founder() {
        let f = author(&key(1));
        let c = closed_name("riverside", &f);
        assert!(c.starts_with("riverside~") && c.len() == "riverside~".len() + 16);
        assert!(check_circle(&c).is_ok());
        assert!(is_founder(&c, &f));
        assert!(!is_founder(&c, &author(&key(2))));
        assert!(check_circle("riverside~XYZ").is_err());
        assert!(check_circle("riverside~0123").is_err());
    }

    #[test]
    fn fold_admits_removes_and_converges_in_any_arrival_order() {
        let (fk, bk, ck, dk) = (key(1), key(2), key(3), key(4));
        let (b, c, d) = (author(&bk), author(&ck), author(&dk));
        let circle = closed_name("riverside", &author(&fk));
        let records = vec![
            rec(
                &circle,
                &fk,
                10,
                Action::Admit {
                    member: author(&fk),
                },
            ),
            rec(&circle, &fk, 20, Action::Admit { member: b }),
            rec(&circle, &fk, 30, Action::Moderator { member: b }),
            rec(&circle, &bk, 40, Action::Admit { member: d }),
            // Not a moderator: void.
            rec(&circle, &ck, 41, Action::Admit { member: c }),
            rec(
                &circle,
                &fk,
                50,
                Action::Remove {
                    member: b,
                    invitees_since: Some(0),
                },
            ),
            // B after its removal: void.
            rec(&circle, &bk, 60, Action::Admit { member: c }),
        ];
        let m = Membership::fold(&circle, &sorted(records.clone()));
        assert!(m.is_member(&author(&fk)));
        assert!(!m.is_member(&b) && !m.is_member(&c) && !m.is_member(&d));
        assert!(m.removed.contains_key(&b) && m.removed.contains_key(&d));
        let mut rev = records;
        rev.reverse();
        assert_eq!(Membership::fold(&circle, &sorted(rev)), m);
    }

    #[test]
    fn removal_wins_at_the_same_time_and_vouchers_are_single_use() {
        let (fk, bk, ck) = (key(1), key(2), key(3));
        let (b, c) = (author(&bk), author(&ck));
        let circle = closed_name("riverside", &author(&fk));
        let m = Membership::fold(
            &circle,
            &sorted(vec![
                rec(&circle, &fk, 20, Action::Admit { member: b }),
                rec(
                    &circle,
                    &fk,
                    20,
                    Action::Remove {
                        member: b,
                        invitees_since: None,
                    },
                ),
            ]),
        );
        assert!(!m.is_member(&b));
        let voucher = Record {
            circle: circle.clone(),
            signer: author(&fk),
            at: 100,
            action: Action::Voucher {
                id: VoucherId([7; 16]),
                expires_at: 200,
            },
        }
        .sign(&fk)
        .unwrap();
        let redeem = |k: &SigningKey, at| {
            rec(
                &circle,
                k,
                at,
                Action::Redeem {
                    voucher: voucher.clone(),
                },
            )
        };
        let m = Membership::fold(&circle, &sorted(vec![redeem(&bk, 150), redeem(&ck, 160)]));
        assert!(m.is_member(&b) && !m.is_member(&c));
        assert_eq!(m.members[&b].by, author(&fk));
        // Expired, or for another circle: refused outright.
        let late = Record {
            circle: circle.clone(),
            signer: b,
            at: 201,
            action: Action::Redeem {
                voucher: voucher.clone(),
            },
        }
        .sign(&bk)
        .unwrap();
        assert!(matches!(late.verify(NOW), Err(RecordError::Voucher(_))));
        let other = closed_name("elsewhere", &author(&fk));
        let wrong = Record {
            circle: other,
            signer: b,
            at: 150,
            action: Action::Redeem { voucher },
        }
        .sign(&bk)
        .unwrap();
        assert!(matches!(wrong.verify(NOW), Err(RecordError::Voucher(_))));
    }

    #[test]
    fn checkpoints_find_the_common_prefix() {
        let keys: Vec<OrderKey> = (0..1000u64)
            .map(|i| OrderKey {
                at: i,
                rank: 0,
                hash: *blake3::hash(&i.to_le_bytes()).as_bytes(),
            })
            .collect();
        let cps = checkpoints(&keys[..900]);
        assert!(cps.len() <= 12);
        assert_eq!(common_prefix(&keys, &cps), 900);
        assert_eq!(common_prefix(&keys[..900], &cps), 900);
        assert_eq!(common_prefix(&keys[..500], &cps), 388);
        assert_eq!(common_prefix(&keys, &[]), 0);
        assert!(checkpoints(&[]).is_empty());
    }
}
