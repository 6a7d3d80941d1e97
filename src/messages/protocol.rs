//! The libp2p side of `/aidmesh/msg/1`: its name and its request-response codec, one
//! message per stream with a hard size limit ([`crate::net::frames`]). Decoding happens in [`super::delivery`],
//! through `proto`.

use aidmesh_proto::message::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
use libp2p::StreamProtocol;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new(aidmesh_proto::message::PROTOCOL);

/// Raw bytes in, raw bytes out, each bounded ([`MAX_REQUEST_BYTES`],
/// [`MAX_RESPONSE_BYTES`]).
pub type Codec = crate::net::frames::Frames<MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES>;
