//! What a node tells its subscribers: posts arriving or changing, peers coming and
//! going, and arriving posts that match a standing alert or one of the node's own
//! posts.

use std::sync::Arc;

use aidmesh_proto::Post;
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::alerts::Target;

/// How a post reached this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Made by this node's user.
    Local,
    /// Received by gossip.
    Gossip,
    /// Fetched by catch-up sync.
    Sync,
    /// Read from an export file (`POST /api/v1/import`).
    Import,
}

/// A node event, delivered to every subscriber of [`crate::NodeHandle::subscribe`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A post this node did not have was stored.
    PostAdded {
        /// The post.
        post: Box<Post>,
        /// Where it came from.
        origin: Origin,
    },
    /// A newer revision of a stored post replaced the old one.
    PostUpdated {
        /// The new revision.
        post: Box<Post>,
        /// The revision it replaced.
        previous_revision: u32,
        /// Where it came from.
        origin: Origin,
    },
    /// The first connection to a peer opened.
    PeerConnected {
        /// The peer.
        peer_id: PeerId,
        /// Its address on that connection.
        address: Multiaddr,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer_id: PeerId,
    },
    /// A catch-up sync with a peer ended.
    SyncFinished {
        /// The peer.
        peer_id: PeerId,
        /// The circle reconciled.
        circle: String,
        /// Posts the peer had that this node lacked.
        missing: usize,
        /// Posts fetched from the peer.
        fetched: usize,
        /// Reconciliation round trips (fetches not counted).
        round_trips: u32,
        /// Why it failed, if it did.
        error: Option<String>,
    },
    /// An arriving post fits a standing alert or matches one of this node's own open
    /// posts (raised once per post and alert or own post).
    Match {
        /// The arriving post, shared by every match it raised.
        post: Arc<Post>,
        /// Where it came from.
        origin: Origin,
        /// The alert or own post it matched.
        target: Target,
        /// The match score against an own post (see [`crate::matcher`]); `None` for
        /// an alert, which either fits or does not.
        score: Option<f64>,
        /// Why, for people: `category food`, `2 tags`, `~3 km`, `tag bike`, ...
        reasons: Vec<String>,
    },
    /// A private message arrived, was sent, or moved on (`sent`, `delivered`, `read`).
    Message {
        /// The conversation (hex id).
        conversation: String,
        /// The message as it is now.
        message: crate::messages::MessageView,
    },
}

/// Where a node's events go: the broadcast every subscriber hears (a subscriber that
/// falls more than its capacity behind misses events), and, for the posts, a queue the
/// live matcher reads that never drops one — a large sync must not skip an alert. The
/// matcher checks a post in a fraction of the time storing it takes, so the queue
/// stays short.
#[derive(Clone)]
pub(crate) struct Bus {
    events: broadcast::Sender<Event>,
    posts: mpsc::UnboundedSender<Event>,
}

impl Bus {
    /// A bus whose broadcast holds `capacity` events per subscriber, and the receiving
    /// end of its post queue.
    pub(crate) fn new(capacity: usize) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, _) = broadcast::channel(capacity);
        let (posts, queue) = mpsc::unbounded_channel();
        (Self { events, posts }, queue)
    }

    /// Sends `event` to every subscriber (and, a post event, to the matcher).
    pub(crate) fn send(&self, event: Event) {
        if matches!(event, Event::PostAdded { .. } | Event::PostUpdated { .. }) {
            let _ = self.posts.send(event.clone());
        }
        let _ = self.events.send(event);
    }

    /// A new subscriber to the broadcast.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A handle that sends to the broadcast without keeping it open (for the matcher,
    /// which must not keep the node's events alive).
    pub(crate) fn downgrade(&self) -> broadcast::WeakSender<Event> {
        self.events.downgrade()
    }
}
