//! Invite codes: one line a person can paste (or scan as a QR code) that holds a
//! circle and the addresses of a node to join it through.
//!
//! Text form: `AIDMESH1-` followed by base32 (RFC 4648, no padding) of
//! `bincode(Invite) ‖ blake3(bincode(Invite))[..4]`. Base32 survives chat apps, line
//! wrapping and case changes and fills a QR code's alphanumeric mode; the checksum
//! catches a truncated or mistyped code before anything is changed. Addresses are
//! binary multiaddrs, opaque here: the node parses them.

use serde::{Deserialize, Serialize};

use crate::circle::{self, Action, SignedRecord, MAX_CLOSED_CIRCLE_CHARS, MAX_SIGNED_RECORD_BYTES};
use crate::codec::{self, CodecError};
use crate::rules::check_circle;
use crate::ValidationError;

/// Every code starts with this; the digit is the format version.
pub const PREFIX: &str = "AIDMESH1-";
/// The family prefix, so a code of another version is told apart from a foreign one.
const FAMILY: &str = "AIDMESH";
/// Most addresses in one code.
pub const MAX_ADDRS: usize = 8;
/// Longest binary multiaddr accepted.
pub const MAX_ADDR_BYTES: usize = 256;
/// Largest encoded invite (before the checksum).
pub const MAX_INVITE_BYTES: usize =
    4 + MAX_CLOSED_CIRCLE_CHARS + MAX_ADDRS * (MAX_ADDR_BYTES + 2) + 4 + MAX_SIGNED_RECORD_BYTES;
const CHECKSUM_BYTES: usize = 4;

/// What an invite carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The circle to join.
    pub circle: String,
    /// Binary multiaddrs of the inviting node, each ending in `/p2p/<peer id>`.
    pub addrs: Vec<serde_bytes::ByteBuf>,
    /// For a closed circle: a moderator's single-use voucher (see `circle`), which
    /// the joining node redeems to become a member. Encoded only when present, so an
    /// invite to an open circle is byte for byte what earlier versions wrote.
    pub voucher: Option<SignedRecord>,
}

/// The encoding of an invite without a voucher (the original layout).
#[derive(Serialize, Deserialize)]
struct Plain {
    circle: String,
    addrs: Vec<serde_bytes::ByteBuf>,
}

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// Not an aidmesh invite at all.
    #[error("not an aidmesh invite code (it should start with {PREFIX})")]
    Foreign,
    /// An aidmesh invite of a version this build does not read.
    #[error("invite code version {0:?} is not supported by this aidmesh; update it")]
    Version(String),
    /// Characters outside base32.
    #[error("invite code has characters that do not belong in it: {0}")]
    Malformed(String),
    /// Too short, or the checksum does not match: cut off or mistyped.
    #[error("invite code is truncated or mistyped (its checksum does not match)")]
    Checksum,
    /// The checksum matches but the content is not a valid invite.
    #[error("invite code content is invalid: {0}")]
    Content(String),
}

impl From<CodecError> for InviteError {
    fn from(e: CodecError) -> Self {
        InviteError::Content(e.to_string())
    }
}

impl From<ValidationError> for InviteError {
    fn from(e: ValidationError) -> Self {
        InviteError::Content(e.to_string())
    }
}

impl Invite {
    /// An invite to `circle` through these binary multiaddrs.
    pub fn new(circle: impl Into<String>, addrs: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self {
            circle: circle.into(),
            addrs: addrs.into_iter().map(serde_bytes::ByteBuf::from).collect(),
            voucher: None,
        }
    }

    /// The same invite carrying `voucher`.
    pub fn with_voucher(mut self, voucher: SignedRecord) -> Self {
        self.voucher = Some(voucher);
        self
    }

    /// Checks the limits a decoded invite must meet.
    pub fn check(&self) -> Result<(), InviteError> {
        check_circle(&self.circle)?;
        if let Some(v) = &self.voucher {
            let record = v.decode_record()?;
            if record.circle != self.circle || !matches!(record.action, Action::Voucher { .. }) {
                return Err(InviteError::Content(
                    "its admission is not a voucher for this circle".into(),
                ));
            }
        } else if circle::is_closed(&self.circle) {
            return Err(InviteError::Content(
                "an invite to a closed circle without an admission".into(),
            ));
        }
        if self.addrs.is_empty() {
            return Err(InviteError::Content("no addresses".into()));
        }
        if self.addrs.len() > MAX_ADDRS {
            return Err(InviteError::Content(format!(
                "{} addresses, at most {MAX_ADDRS}",
                self.addrs.len()
            )));
        }
        if let Some(a) = self
            .addrs
            .iter()
            .find(|a| a.is_empty() || a.len() > MAX_ADDR_BYTES)
        {
            return Err(InviteError::Content(format!(
                "an address of {} bytes (1..={MAX_ADDR_BYTES})",
                a.len()
            )));
        }
        Ok(())
    }

    /// The text form.
    pub fn encode(&self) -> Result<String, InviteError> {
        self.check()?;
        let mut bytes = match self.voucher {
            Some(_) => codec::encode::<MAX_INVITE_BYTES, _>(self)?,
            None => codec::encode::<MAX_INVITE_BYTES, _>(&Plain {
                circle: self.circle.clone(),
                addrs: self.addrs.clone(),
            })?,
        };
        let sum = blake3::hash(&bytes);
        bytes.extend_from_slice(&sum.as_bytes()[..CHECKSUM_BYTES]);
        Ok(format!(
            "{PREFIX}{}",
            data_encoding::BASE32_NOPAD.encode(&bytes)
        ))
    }

    /// Reads a code, ignoring case and whitespace (a code wrapped over lines still
    /// reads).
    pub fn decode(text: &str) -> Result<Self, InviteError> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let Some(rest) = clean.strip_prefix(FAMILY) else {
            return Err(InviteError::Foreign);
        };
        let Some(body) = clean.strip_prefix(PREFIX) else {
            let version: String = rest.chars().take_while(|c| *c != '-').take(8).collect();
            return Err(InviteError::Version(version));
        };
        if body.len() > (MAX_INVITE_BYTES + CHECKSUM_BYTES) * 8 / 5 + 1 {
            return Err(InviteError::Content("code too long".into()));
        }
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|e| match e.kind {
                data_encoding::DecodeKind::Length => InviteError::Checksum,
                _ => InviteError::Malformed(e.to_string()),
            })?;
        if bytes.len() <= CHECKSUM_BYTES {
            return Err(InviteError::Checksum);
        }
        let (payload, sum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        if blake3::hash(payload).as_bytes()[..CHECKSUM_BYTES] != *sum {
            return Err(InviteError::Checksum);
        }
        let invite = match codec::decode_canonical::<MAX_INVITE_BYTES, Plain>(payload) {
            Ok(p) => Invite {
                circle: p.circle,
                addrs: p.addrs,
                voucher: None,
            },
            Err(_) => {
                let invite: Invite = codec::decode_canonical::<MAX_INVITE_BYTES, _>(payload)?;
                if invite.voucher.is_none() {
                    return Err(InviteError::Content("non-canonical invite".into()));
                }
                invite
            }
        };
        invite.check()?;
        Ok(invite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            circle: "riverside".into(),
            addrs: vec![
                serde_bytes::ByteBuf::from(vec![4, 127, 0, 0, 1, 6, 0x1d, 0xe3]),
                serde_bytes::ByteBuf::from(vec![4, 10, 0, 0, 1, 6, 0x1d, 0xe3]),
            ],
            voucher: None,
        }
    }

    #[test]
    fn round_trips_through_text_in_any_case_and_wrapping() {
        let code = sample().encode().unwrap();
        assert!(code.starts_with(PREFIX));
        assert!(code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'));
        assert_eq!(Invite::decode(&code).unwrap(), sample());
        let wrapped = format!("  {}\n{}  ", &code[..20].to_lowercase(), &code[20..]);
        assert_eq!(Invite::decode(&wrapped).unwrap(), sample());
    }

    #[test]
    fn truncated_mistyped_and_foreign_codes_are_refused() {
        let code = sample().encode().unwrap();
        for cut in [
            code.len() - 1,
            code.len() - 3,
            PREFIX.len() + 2,
            PREFIX.len(),
        ] {
            assert!(
                matches!(
                    Invite::decode(&code[..cut]),
                    Err(InviteError::Checksum | InviteError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        let mut typo = code.clone().into_bytes();
        let i = PREFIX.len() + 5;
        typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            Invite::decode(std::str::from_utf8(&typo).unwrap()),
            Err(InviteError::Checksum)
        );
        assert_eq!(Invite::decode("hello"), Err(InviteError::Foreign));
        assert_eq!(
            Invite::decode("/ip4/1.2.3.4/tcp/7651"),
            Err(InviteError::Foreign)
        );
        assert!(matches!(
            Invite::decode(&code.replace("AIDMESH1-", "AIDMESH2-")),
            Err(InviteError::Version(v)) if v == "2"
        ));
        assert!(matches!(
            Invite::decode(&format!("{PREFIX}!!!!")),
            Err(InviteError::Malformed(_))
        ));
    }

    #[test]
    fn bad_content_is_refused_even_with_a_good_checksum() {
        let mut bad = sample();
        bad.circle = "Bad Circle".into();
        assert!(bad.encode().is_err());
        let mut none = sample();
        none.addrs.clear();
        assert!(none.encode().is_err());
        // Forge a well-checksummed code around the bad content: still refused.
        for invite in [bad, none] {
            let mut bytes = codec::encode::<MAX_INVITE_BYTES, _>(&invite).unwrap();
            let sum = blake3::hash(&bytes);
            bytes.extend_from_slice(&sum.as_bytes()[..CHECKSUM_BYTES]);
            let code = format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes));
            assert!(matches!(
                Invite::decode(&code),
                Err(InviteError::Content(_))
            ));
        }
    }

    #[test]
    fn a_closed_circle_invite_carries_its_voucher() {
        use crate::circle::{closed_name, Record, VoucherId};
        use crate::AuthorKey;
        let key = crate::SigningKey::from_bytes(&[1; 32]);
        let me = AuthorKey(key.verifying_key().to_bytes());
        let circle = closed_name("riverside", &me);
        let voucher = Record {
            circle: circle.clone(),
            signer: me,
            at: 1,
            action: Action::Voucher {
                id: VoucherId([3; 16]),
                expires_at: 2,
            },
        }
        .sign(&key)
        .unwrap();
        let mut invite = sample().with_voucher(voucher);
        invite.circle = circle;
        let code = invite.encode().unwrap();
        assert_eq!(Invite::decode(&code).unwrap(), invite);
        // A closed circle without a voucher, or a voucher for another circle: refused.
        let mut bare = invite.clone();
        bare.voucher = None;
        assert!(bare.encode().is_err());
        let mut other = invite;
        other.circle = "elsewhere".into();
        assert!(other.encode().is_err());
    }
}
