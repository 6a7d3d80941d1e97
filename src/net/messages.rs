//! The network task's side of private messages: it only carries them. The protocol
//! lives in [`crate::messages::delivery`]; here its [`Ctx`] is built from the swarm and
//! its [`Output`] is applied (events, gossip of post changes, dials).

use libp2p::request_response;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::PeerId;
use tracing::debug;

use super::{announce, gossip, Network};
use crate::events::{Event, Origin};
use crate::messages::delivery::{Ctx, Driver, Output};

impl Network {
    fn drive_messages(&mut self, f: impl FnOnce(&mut Driver, &mut Ctx<'_>) -> Output) {
        let behaviour = self.swarm.behaviour_mut();
        let gossipsub = &behaviour.gossipsub;
        let connected = &self.connected;
        let is_connected = |p: &PeerId| connected.contains_key(p);
        let circle = |c: &str| -> Vec<PeerId> {
            let hash = gossip::topic(c).hash();
            gossipsub
                .all_peers()
                .filter(|(_, topics)| topics.contains(&&hash))
                .map(|(p, _)| *p)
                .collect()
        };
        let mut ctx = Ctx {
            rr: &mut behaviour.messages,
            connected: &is_connected,
            circle: &circle,
        };
        let output = f(&mut self.messages, &mut ctx);
        self.apply_messages(output);
    }

    fn apply_messages(&mut self, output: Output) {
        for (conversation, message) in output.messages {
            self.events.send(Event::Message {
                conversation,
                message,
            });
        }
        for change in output.posts {
            announce(&self.events, &change.post, change.outcome, Origin::Local);
            self.publish(&change.post.circle, change.data);
        }
        for peer in output.dial {
            let addrs = self.book.addrs_of(&peer);
            if addrs.is_empty() {
                continue;
            }
            debug!(%peer, "dialling a message recipient");
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = self.swarm.dial(opts);
        }
    }

    pub(super) fn poll_messages(&mut self) {
        self.drive_messages(|d, ctx| d.poll(ctx, crate::clock::now_ms()));
    }

    pub(super) fn message_queued(&mut self, id: aidmesh_proto::message::MessageId) {
        self.drive_messages(|d, ctx| d.kick(id, ctx));
    }

    pub(super) fn message_peer_connected(&mut self, peer: PeerId) {
        self.drive_messages(|d, ctx| d.on_connected(peer, ctx));
    }

    pub(super) fn on_message_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        self.drive_messages(|d, ctx| d.on_event(event, ctx));
    }
}
