//! The post: what one person offers or asks for, and the enums it is made of.
//!
//! The field order and the order of every enum's variants are the wire format (see
//! `proto/vectors/`): append, never reorder.

use serde::{Deserialize, Serialize};

use crate::bytes::byte_newtype;

byte_newtype!(
    /// A post's identity, stable across revisions: `blake3(author ‖ nonce)`.
    PostId,
    32
);
byte_newtype!(
    /// The author's ed25519 public key (the node's libp2p identity).
    AuthorKey,
    32
);
byte_newtype!(
    /// Random bytes chosen once by the author; with the author they derive the id, so
    /// nobody else can claim an id that another author already uses.
    Nonce,
    16
);
byte_newtype!(
    /// `blake3` of a post's encoded bytes: names one exact revision.
    ContentHash,
    32
);

impl PostId {
    /// Derives the id of the post that `author` creates with `nonce`.
    pub fn derive(author: &AuthorKey, nonce: &Nonce) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(&author.0);
        h.update(&nonce.0);
        Self(*h.finalize().as_bytes())
    }
}

impl ContentHash {
    /// Hashes encoded post bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

/// Whether a post gives or asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Something someone can give.
    Offer,
    /// Something someone needs.
    Request,
}

/// Where a post is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still wanted or available.
    Open,
    /// Done: the need was met or the offer taken.
    Fulfilled,
    /// Taken back by its author; kept as a body-less tombstone until it expires.
    Withdrawn,
    /// The author promised it to someone in a private conversation; still live (it can
    /// be freed again), but others should not expect it. Appended after `Withdrawn`:
    /// variant indexes are the wire format.
    Promised,
}

impl Status {
    /// Whether the post still stands: open, or promised but not yet handed over.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Open | Status::Promised)
    }
}

/// What a post is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Meals, groceries, produce.
    Food,
    /// A bed, a room, shelter.
    Housing,
    /// Rides, deliveries.
    Transport,
    /// Things: clothes, tools, furniture.
    Goods,
    /// Know-how: repairs, translation, tutoring.
    Skills,
    /// Childcare, elder care, company.
    Care,
    /// Money.
    Money,
    /// Anything else.
    Other,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every variant, in wire order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];

            /// The lowercase name used in JSON, the CLI and the API.
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),* }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                let lower = s.trim().to_ascii_lowercase();
                <$ty>::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == lower)
                    .ok_or_else(|| UnknownName {
                        what: stringify!($ty),
                        given: s.to_owned(),
                        expected: <$ty>::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

names!(Kind { Offer => "offer", Request => "request" });
names!(Status { Open => "open", Fulfilled => "fulfilled", Withdrawn => "withdrawn", Promised => "promised" });
names!(Category {
    Food => "food",
    Housing => "housing",
    Transport => "transport",
    Goods => "goods",
    Skills => "skills",
    Care => "care",
    Money => "money",
    Other => "other",
});

impl Kind {
    /// The kind that answers this one: offers answer requests and the reverse.
    pub fn opposite(self) -> Self {
        match self {
            Kind::Offer => Kind::Request,
            Kind::Request => Kind::Offer,
        }
    }
}

/// A name that is not one of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// The enum being parsed.
    pub what: &'static str,
    /// What was given.
    pub given: String,
    /// The accepted names.
    pub expected: String,
}

/// One revision of an offer or request, as its author signed it.
///
/// Every rule on the fields is in [`crate::rules`]; a `Post` that came from outside
/// the process is only trusted once it has passed [`crate::SignedPost::verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// `blake3(author ‖ nonce)`; stable across revisions.
    pub id: PostId,
    /// Public key that signs every revision.
    pub author: AuthorKey,
    /// Random bytes the id is derived from.
    pub nonce: Nonce,
    /// A higher revision of the same id replaces a lower one.
    pub revision: u32,
    /// Community scope, `[a-z0-9-]{1,48}`; `commons` by default.
    pub circle: String,
    /// Offer or request.
    pub kind: Kind,
    /// Open, fulfilled or withdrawn.
    pub status: Status,
    /// What it is about.
    pub category: Category,
    /// One line, 1–120 characters.
    pub title: String,
    /// Free text, at most 4000 bytes; empty once withdrawn.
    pub body: String,
    /// At most 8 tags, each `[a-z0-9-]{1,32}`.
    pub tags: Vec<String>,
    /// Geohash of at most 6 characters (about 1 km): coarse on purpose.
    pub location: Option<String>,
    /// How many, where that means something.
    pub quantity: Option<u32>,
    /// How to reach the author outside aidmesh, at most 200 bytes.
    pub contact: Option<String>,
    /// When the first revision was made, ms since the Unix epoch.
    pub created_at: u64,
    /// When this revision was made, ms since the Unix epoch.
    pub updated_at: u64,
    /// When every node drops the post, ms since the Unix epoch.
    pub expires_at: u64,
}

impl Post {
    /// Whether the post has expired at `now` (ms since the epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at <= now
    }
}
