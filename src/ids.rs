//! Ids as people type them: any unique prefix of at least [`MIN_PREFIX`] characters
//! of a post id (hex) or a peer id (base58), resolved against what this node knows.
//!
//! `aidmesh list` prints the first 12 characters of a post id; a prefix that more
//! than one post (or peer) starts with is an error that lists them, so the person
//! can pick one instead of the node guessing.

use aidmesh_proto::{AuthorKey, PostId};
use libp2p::PeerId;

use crate::identity::{author_peer_id, peer_id_author};
use crate::store::Store;

/// The shortest prefix accepted.
pub const MIN_PREFIX: usize = 8;
/// How every ed25519 peer id starts; a peer id prefix needs [`MIN_PREFIX`]
/// characters beyond it.
pub const COMMON_PEER_PREFIX: &str = "12D3KooW";
/// At most this many candidates are named when a prefix is ambiguous.
pub const MAX_CANDIDATES: usize = 8;

/// Why an id could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer than [`MIN_PREFIX`] characters.
    #[error("{what} id {given:?} is too short: give at least {MIN_PREFIX} characters{} (as `aidmesh list` shows)",
        if *.what == "peer" { " after 12D3KooW" } else { "" })]
    TooShort {
        /// `post` or `peer`.
        what: &'static str,
        /// What was typed.
        given: String,
    },
    /// Not hexadecimal, so it cannot start a post id.
    #[error(
        "{0:?} is not a post id: post ids are hexadecimal (0-9, a-f), as `aidmesh list` shows them"
    )]
    NotPostId(String),
    /// Not a peer id and not the start of one this node knows.
    #[error("{0:?} is not a peer id (they look like 12D3KooW… and `aidmesh list` shows their start), nor the start of one this node knows")]
    NotPeerId(String),
    /// No stored post starts with the prefix.
    #[error("no post here has an id starting with {0}")]
    NoSuchPost(String),
    /// More than one id starts with the prefix.
    #[error("{given} is ambiguous: it starts {} {what} ids ({}{}); give more characters",
        .candidates.len(), .candidates.join(", "), if *.more { ", …" } else { "" })]
    Ambiguous {
        /// `post` or `peer`.
        what: &'static str,
        /// What was typed.
        given: String,
        /// Some of the ids it starts (at most [`MAX_CANDIDATES`]).
        candidates: Vec<String>,
        /// Whether there are more than those.
        more: bool,
    },
}

/// The stored post whose id is `text` or starts with it (any case, at least
/// [`MIN_PREFIX`] characters).
pub fn resolve_post(store: &Store, text: &str) -> Result<PostId, Error> {
    let given = text.trim().to_ascii_lowercase();
    if let Ok(id) = given.parse::<PostId>() {
        return Ok(id);
    }
    if !given.bytes().all(|b| b.is_ascii_hexdigit()) || given.is_empty() {
        return Err(Error::NotPostId(text.trim().to_string()));
    }
    if given.len() < MIN_PREFIX {
        return Err(Error::TooShort {
            what: "post",
            given,
        });
    }
    let found = store.ids_with_prefix(&given, MAX_CANDIDATES + 1);
    match found.as_slice() {
        [] => Err(Error::NoSuchPost(given)),
        [one] => Ok(*one),
        many => Err(ambiguous(
            "post",
            given,
            many.iter().map(|id| id.to_string()),
        )),
    }
}

/// The author whose peer id is `text`, or starts with it among `known` (the authors
/// and peers this node has seen). A full peer id is taken as it is, seen or not.
pub fn resolve_author(
    text: &str,
    known: impl IntoIterator<Item = AuthorKey>,
) -> Result<AuthorKey, Error> {
    let given = text.trim();
    if let Ok(peer) = given.parse::<PeerId>() {
        return peer_id_author(&peer).ok_or_else(|| Error::NotPeerId(given.to_string()));
    }
    let base58 = |c: char| c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l');
    if given.is_empty() || !given.chars().all(base58) {
        return Err(Error::NotPeerId(given.to_string()));
    }
    // Every ed25519 peer id starts with the same characters: they tell no one apart.
    let telling = given.strip_prefix(COMMON_PEER_PREFIX).unwrap_or(given);
    if telling.len() < MIN_PREFIX {
        return Err(Error::TooShort {
            what: "peer",
            given: given.to_string(),
        });
    }
    let mut found: Vec<(String, AuthorKey)> = known
        .into_iter()
        .filter_map(|a| Some((author_peer_id(&a)?.to_string(), a)))
        .filter(|(p, _)| p.starts_with(given))
        .collect();
    found.sort();
    found.dedup();
    match found.as_slice() {
        [] => Err(Error::NotPeerId(given.to_string())),
        [(_, one)] => Ok(*one),
        many => Err(ambiguous(
            "peer",
            given.to_string(),
            many.iter().map(|(p, _)| p.clone()),
        )),
    }
}

fn ambiguous(what: &'static str, given: String, ids: impl Iterator<Item = String>) -> Error {
    let mut candidates: Vec<String> = ids.take(MAX_CANDIDATES + 1).collect();
    let more = candidates.len() > MAX_CANDIDATES;
    candidates.truncate(MAX_CANDIDATES);
    Error::Ambiguous {
        what,
        given,
        candidates,
        more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn peer_ids_by_prefix() {
        let a = Identity::from_secret([1; 32]);
        let b = Identity::from_secret([2; 32]);
        let known = [a.author(), b.author()];
        let full = a.peer_id().to_string();
        assert_eq!(resolve_author(&full, []).unwrap(), a.author());
        assert_eq!(resolve_author(&full[..20], known).unwrap(), a.author());
        // Every ed25519 peer id starts "12D3KooW": that alone names no one.
        assert!(matches!(
            resolve_author("12D3KooW", known),
            Err(Error::TooShort { .. })
        ));
        assert!(matches!(
            resolve_author(&full[..16], [a.author(), a.author()]),
            Ok(k) if k == a.author()
        ));
        assert!(matches!(
            resolve_author("nonsense", known),
            Err(Error::NotPeerId(_))
        ));
        assert!(matches!(
            resolve_author("not a peer", known),
            Err(Error::NotPeerId(_))
        ));
        assert!(matches!(
            resolve_author("12D3", known),
            Err(Error::TooShort { .. })
        ));
    }
}
