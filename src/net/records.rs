//! Drives the catch-up exchange of membership and moderation records
//! (`/aidmesh/records/1`, `proto/CIRCLES.md`): whenever the node syncs a circle with a
//! peer it also asks for the records it lacks, pages through a long difference, and
//! answers peers' requests. The protocol itself (checkpoints, common prefix, who is
//! served) is in `aidmesh_proto::circle` and [`crate::circles::membrane`]; this file
//! only moves bytes between them and the swarm.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aidmesh_proto::circle::{
    self, decode_request, decode_response, encode_request, encode_response,
};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::{PeerId, StreamProtocol};
use tracing::{debug, warn};

use crate::circles::membrane::Membrane;
use crate::clock::now_ms;

/// The libp2p protocol.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new(circle::PROTOCOL);
/// The request-response codec: bounded frames.
pub type Codec =
    crate::net::frames::Frames<{ circle::MAX_REQUEST_BYTES }, { circle::MAX_RESPONSE_BYTES }>;
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most pages one catch-up fetches before it waits for the next sync.
const MAX_ROUNDS: u32 = 64;
/// Most exchanges in flight at once.
const MAX_IN_FLIGHT: usize = 64;

/// One exchange in flight.
struct Pending {
    peer: PeerId,
    circle: String,
    round: u32,
}

/// The exchange's state on the swarm task.
pub(crate) struct Records {
    membrane: Membrane,
    pending: HashMap<OutboundRequestId, Pending>,
    /// Exchanges in flight to make once more when they are answered: this node made
    /// a record since the request left, and the peer should have it (see
    /// [`Records::ask_again`]). Never more than `pending`.
    again: HashSet<(PeerId, String)>,
    /// Bytes received in responses since start (for the benchmark and status).
    pub bytes_received: u64,
}

impl Records {
    pub(crate) fn new(membrane: Membrane) -> Self {
        Self {
            membrane,
            pending: HashMap::new(),
            again: HashSet::new(),
            bytes_received: 0,
        }
    }

    /// Asks `peer` for the records of `circle` this node lacks.
    pub(crate) fn ask(
        &mut self,
        rr: &mut request_response::Behaviour<Codec>,
        peer: PeerId,
        circle: &str,
        round: u32,
    ) {
        if self.pending.len() >= MAX_IN_FLIGHT || self.in_flight(&peer, circle) {
            return;
        }
        let request = self.membrane.request(circle);
        match encode_request(&request) {
            Ok(bytes) => {
                let id = rr.send_request(&peer, bytes);
                self.pending.insert(
                    id,
                    Pending {
                        peer,
                        circle: circle.to_string(),
                        round,
                    },
                );
            }
            Err(e) => warn!(error = %e, "cannot encode a records request"),
        }
    }

    /// Asks `peer` again after this node made a record of `circle`: the request
    /// offers it, so a peer that refused to serve a closed circle's records to a
    /// node it did not know as a member (a newcomer whose redemption had not reached
    /// it yet) takes the redemption first and then serves. An exchange in flight
    /// with the peer carries the old offer, so the new one follows when it ends.
    pub(crate) fn ask_again(
        &mut self,
        rr: &mut request_response::Behaviour<Codec>,
        peer: PeerId,
        circle: &str,
    ) {
        if self.in_flight(&peer, circle) {
            self.again.insert((peer, circle.to_string()));
        } else {
            self.ask(rr, peer, circle, 0);
        }
    }

    /// Whether an exchange with `peer` about `circle` is in flight.
    fn in_flight(&self, peer: &PeerId, circle: &str) -> bool {
        self.pending
            .values()
            .any(|p| p.peer == *peer && p.circle == circle)
    }

    /// Asks again what [`Records::ask_again`] held back until `pending` was answered.
    fn ended(&mut self, rr: &mut request_response::Behaviour<Codec>, pending: &Pending) {
        if self.again.remove(&(pending.peer, pending.circle.clone())) {
            self.ask(rr, pending.peer, &pending.circle, 0);
        }
    }

    /// Handles an event of the exchange. Records learned here are not published
    /// again: the peers that had them already do. Returns `(peer, circle)` when the
    /// records learned let more posts in, so the posts are reconciled again.
    pub(crate) fn on_event(
        &mut self,
        rr: &mut request_response::Behaviour<Codec>,
        joined: &std::collections::HashSet<String>,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) -> Option<(PeerId, String)> {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = match decode_request(&request) {
                    Ok(r) if joined.contains(&r.circle) => {
                        let author = crate::identity::peer_id_author(&peer);
                        match self.membrane.respond(author, r, now_ms()) {
                            Ok(r) => r,
                            Err(e) => {
                                warn!(error = %e, "cannot answer a records request");
                                circle::Response::Denied
                            }
                        }
                    }
                    Ok(_) => circle::Response::Denied,
                    Err(e) => {
                        debug!(%peer, error = %e, "malformed records request");
                        circle::Response::Denied
                    }
                };
                if let Ok(bytes) = encode_response(&response) {
                    let _ = rr.send_response(channel, bytes);
                }
                None
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let pending = self.pending.remove(&request_id)?;
                self.ended(rr, &pending);
                self.bytes_received += response.len() as u64;
                let (records, more) = match decode_response(&response) {
                    Ok(circle::Response::Records { records, more }) => (records, more),
                    Ok(circle::Response::Denied) => {
                        debug!(%peer, circle = pending.circle, "peer does not serve this circle's records");
                        return None;
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "malformed records response");
                        return None;
                    }
                };
                // Records of another circle than asked are not taken.
                let records: Vec<_> = records
                    .into_iter()
                    .filter(|r| {
                        r.decode_record()
                            .is_ok_and(|rec| rec.circle == pending.circle)
                    })
                    .collect();
                match self.membrane.ingest(records, now_ms()) {
                    Ok(ingested) => {
                        if !ingested.invalid.is_empty() {
                            debug!(%peer, invalid = ingested.invalid.len(), "invalid records in a catch-up");
                        }
                        if ingested.accepted.is_empty() {
                            return None;
                        }
                        if more && pending.round < MAX_ROUNDS {
                            self.ask(rr, peer, &pending.circle, pending.round + 1);
                            return None;
                        }
                        Some((peer, pending.circle))
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot store membership records");
                        None
                    }
                }
            }
            Event::OutboundFailure { request_id, .. } => {
                // A failed exchange is not repeated: the next sync asks again.
                if let Some(p) = self.pending.remove(&request_id) {
                    self.again.remove(&(p.peer, p.circle));
                }
                None
            }
            _ => None,
        }
    }
}
