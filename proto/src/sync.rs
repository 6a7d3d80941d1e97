//! Wire messages of `/aidmesh/sync/1`, the catch-up protocol (see `proto/SYNC.md`).

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::riblt::{Fingerprint, Strata, Symbol, ITEM_HASH_BYTES};
use crate::SignedPost;

/// The libp2p protocol name.
pub const PROTOCOL: &str = "/aidmesh/sync/1";
/// Largest request on the wire.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response on the wire.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Coded symbols a responder sends after a `Hello` that does not match: enough for
/// differences of up to about a dozen items in one round trip.
pub const FIRST_SYMBOLS: u32 = 32;
/// Most coded symbols in one response (at most 43 bytes each, so a response stays
/// under [`MAX_RESPONSE_BYTES`]).
pub const MAX_SYMBOLS: u32 = 90_000;
/// Most posts asked for, or served, in one exchange.
pub const MAX_FETCH: usize = 256;

/// What the initiator of a sync sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// "This is my set of `circle`": answered by `InSync` or the first `first` coded
    /// symbols of the responder's set.
    Hello {
        /// The circle reconciled.
        circle: String,
        /// The initiator's set.
        fingerprint: Fingerprint,
        /// How many symbols to send if the sets differ.
        first: u32,
    },
    /// "Not decoded yet; here is my strata estimator": answered by the symbols from
    /// `from` up to what the responder estimates the difference needs.
    Estimate {
        /// The circle reconciled.
        circle: String,
        /// The initiator's estimator.
        strata: Strata,
        /// The next symbol index the initiator needs.
        from: u32,
    },
    /// "Still not decoded": answered by symbols `from..to`.
    More {
        /// The circle reconciled.
        circle: String,
        /// First index.
        from: u32,
        /// One past the last index.
        to: u32,
    },
    /// The posts whose content hash starts with these prefixes.
    Fetch {
        /// At most [`MAX_FETCH`] 16-byte content hash prefixes.
        hashes: Vec<[u8; ITEM_HASH_BYTES]>,
    },
}

/// What the responder answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Same fingerprint: nothing to do.
    InSync,
    /// Coded symbols `from..from + symbols.len()` of the responder's set.
    Symbols {
        /// Number of items in the responder's set (bounds how many symbols an honest
        /// responder can make the initiator need).
        set_size: u64,
        /// Index of the first symbol.
        from: u32,
        /// The symbols.
        symbols: Vec<Symbol>,
    },
    /// The posts asked for that the responder still has (expired ones are gone).
    Posts {
        /// Signed posts, at most [`MAX_FETCH`].
        posts: Vec<SignedPost>,
    },
    /// The responder will not answer (it banned the initiator, a local error, a
    /// malformed request); the initiator ends the session without blame.
    Refused {
        /// Why, for the log.
        reason: String,
    },
}

/// Encodes a request.
pub fn encode_request(r: &Request) -> Result<Vec<u8>, CodecError> {
    codec::encode::<MAX_REQUEST_BYTES, _>(r)
}

/// Decodes a request received from a peer.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    codec::decode::<MAX_REQUEST_BYTES, _>(bytes)
}

/// Encodes a response.
pub fn encode_response(r: &Response) -> Result<Vec<u8>, CodecError> {
    codec::encode::<MAX_RESPONSE_BYTES, _>(r)
}

/// Decodes a response received from a peer.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    codec::decode::<MAX_RESPONSE_BYTES, _>(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riblt::{encode, Item};

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let items: Vec<Item> = (0..50u64)
            .map(|i| Item::new(i, &crate::ContentHash([i as u8; 32])))
            .collect();
        let reqs = [
            Request::Hello {
                circle: "commons".into(),
                fingerprint: Fingerprint::of(&items),
                first: FIRST_SYMBOLS,
            },
            Request::Estimate {
                circle: "commons".into(),
                strata: Strata::of(&items),
                from: 32,
            },
            Request::Fetch {
                hashes: vec![[7; 16]; 3],
            },
        ];
        for r in reqs {
            assert_eq!(decode_request(&encode_request(&r).unwrap()).unwrap(), r);
        }
        let resp = Response::Symbols {
            set_size: 50,
            from: 0,
            symbols: encode(&items, 0, 32),
        };
        let bytes = encode_response(&resp).unwrap();
        assert!(
            bytes.len() < 32 * 40,
            "{} bytes for 32 symbols",
            bytes.len()
        );
        assert_eq!(decode_response(&bytes).unwrap(), resp);
        assert!(decode_request(b"\xff\xff\xff\xff").is_err());
        assert!(decode_response(&[]).is_err());
        assert!(decode_request(&vec![0u8; MAX_REQUEST_BYTES + 1]).is_err());
    }
}
