//! The single place where aidmesh values become bytes and back.
//!
//! Everything on the wire or on disk is bincode 2 (`standard` configuration: little
//! endian, variable-length integers) through serde. Decoding untrusted bytes always
//! goes through [`decode`] with an explicit byte limit, which bounds both the input
//! and every allocation the decoder makes, and rejects trailing bytes so one value has
//! exactly one accepted encoding length. Swapping the codec means changing this file.

use bincode::config::{self, Configuration, Limit};
use serde::{de::DeserializeOwned, Serialize};

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input is longer than the limit for this kind of value.
    #[error("{len} bytes exceed the limit of {max} bytes")]
    TooLarge {
        /// Length of the input (or of the encoding being produced).
        len: usize,
        /// The limit that applies.
        max: usize,
    },
    /// The bytes are not a valid encoding (truncated, bad tag, bad UTF-8, over a
    /// length limit, ...).
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A value decoded but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the canonical encoding of the value.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// The value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
}

fn standard() -> Configuration {
    config::standard()
}

fn limited<const N: usize>() -> Configuration<config::LittleEndian, config::Varint, Limit<N>> {
    config::standard().with_limit::<N>()
}

/// Encodes `value`. Fails if the encoding would exceed `MAX` bytes.
pub fn encode<const MAX: usize, T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, standard())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if bytes.len() > MAX {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX,
        });
    }
    Ok(bytes)
}

/// Decodes exactly one `T` from `bytes`, which must be at most `MAX` bytes long and
/// contain nothing after the value. The decoder never allocates more than `MAX` bytes.
pub fn decode<const MAX: usize, T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX,
        });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, limited::<MAX>())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

/// Like [`decode`], and also requires `bytes` to be exactly what [`encode`] produces for
/// the decoded value, so that a value has one encoding and one content hash.
pub fn decode_canonical<const MAX: usize, T: DeserializeOwned + Serialize>(
    bytes: &[u8],
) -> Result<T, CodecError> {
    let value: T = decode::<MAX, T>(bytes)?;
    let again = encode::<MAX, T>(&value)?;
    if again != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode::<64, _>(&(1u32, String::from("x"))).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<64, (u32, String)>(&bytes),
            Err(CodecError::TrailingBytes(1))
        );
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A Vec<u8> claiming u64::MAX elements: must fail on the limit, not try to
        // reserve the memory.
        let bytes = [253u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode::<1024, Vec<u8>>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_over_limit_input_and_output() {
        let big = vec![0u8; 100];
        assert!(matches!(
            encode::<50, _>(&big),
            Err(CodecError::TooLarge { max: 50, .. })
        ));
        assert!(matches!(
            decode::<50, Vec<u8>>(&[0u8; 51]),
            Err(CodecError::TooLarge { len: 51, max: 50 })
        ));
    }

    #[test]
    fn non_canonical_varint_is_rejected() {
        // 5 encoded with the 2-byte-marker form instead of a single byte.
        let long_form = [251u8, 5, 0];
        if let Ok(v) = decode::<16, u32>(&long_form) {
            assert_eq!(v, 5);
            assert_eq!(
                decode_canonical::<16, u32>(&long_form),
                Err(CodecError::NonCanonical)
            );
        }
    }
}
