//! The node: starts the store and the network task and hands out [`NodeHandle`]s, the
//! async API that the CLI, the local API, the examples and the tests all use.

use std::sync::{Arc, Mutex};

use aidmesh_proto::invite::Invite;
use aidmesh_proto::{Post, PostId, Status, VerifiedPost};
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::alerts::{self, Alert, AlertFilter, AlertId, Alerts};
use crate::circles::membrane::Membrane;
use crate::circles::{Error as CircleError, Members};
use crate::clock::now_ms;
use crate::config::Config;
use crate::draft::{self, Draft, Edit, EditError};
use crate::events::{Bus, Event, Origin};
use crate::matcher::{self, live::Watcher, Match};
use crate::messages::{self, ConversationView, Inbox, MessageView, Messages, Thread};
use crate::net::{self, Command, NetConfig, PeerInfo};
use crate::store::{self, Query, Store};
use crate::{data_dir, identity, DataDir, Identity};
use aidmesh_proto::circle::{self as records, Action, Record, SignedRecord};
use aidmesh_proto::message::{ConversationId, MessageKind};
use aidmesh_proto::AuthorKey;

/// Capacity of the event broadcast; a subscriber that falls further behind misses
/// events (and is told so by `RecvError::Lagged`).
const EVENT_CAPACITY: usize = 1024;
const COMMAND_CAPACITY: usize = 256;

/// Node failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data dir is unusable.
    #[error(transparent)]
    DataDir(#[from] data_dir::Error),
    /// The identity key is unusable.
    #[error(transparent)]
    Identity(#[from] identity::Error),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Networking could not start.
    #[error(transparent)]
    Network(#[from] net::Error),
    /// A draft or edit breaks a rule (names the field).
    #[error("invalid post: {0}")]
    Invalid(#[from] aidmesh_proto::ValidationError),
    /// The change is not possible.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// Signing or verifying failed.
    #[error(transparent)]
    Proto(#[from] aidmesh_proto::Error),
    /// No post with this id.
    #[error("no post with id {0}")]
    NotFound(PostId),
    /// Only a post's author's node may change it.
    #[error("post {0} was made by another node; only its author can change it")]
    NotAuthor(PostId),
    /// A circle name breaks the rules.
    #[error("bad circle name: {0}")]
    Circle(aidmesh_proto::ValidationError),
    /// A dial could not start.
    #[error("cannot dial: {0}")]
    Dial(String),
    /// The node has shut down.
    #[error("the node has shut down")]
    Closed,
    /// An alert could not be saved, read or removed.
    #[error(transparent)]
    Alerts(#[from] alerts::Error),
    /// Ranking matches failed.
    #[error(transparent)]
    Matcher(#[from] matcher::Error),
    /// A private message could not be sent, or a conversation is unknown.
    #[error(transparent)]
    Messages(#[from] messages::Error),
    /// A membership change or a use of a circle the node is not in.
    #[error(transparent)]
    Membership(#[from] crate::circles::Error),
}

impl Error {
    fn from_edit(e: EditError) -> Self {
        match e {
            EditError::Invalid(v) => Error::Invalid(v),
            other => Error::Edit(other),
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where its files are.
    pub data_dir: DataDir,
    /// Its settings (defaults, `config.toml` and flags already merged).
    pub config: Config,
}

impl NodeConfig {
    /// Settings from `<data-dir>/config.toml` (or the defaults when there is none).
    pub fn load(data_dir: DataDir) -> Result<Self, Error> {
        let config = Config::load(&data_dir.config_file())?;
        Ok(Self { data_dir, config })
    }
}

/// The whole node status.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// This node's peer id.
    pub peer_id: PeerId,
    /// Listen addresses ending in `/p2p/<peer id>`: give one to others as a bootstrap.
    pub listen_addrs: Vec<Multiaddr>,
    /// Connected peers.
    pub connected_peers: usize,
    /// Stored posts, tombstones included.
    pub posts: u64,
    /// Circles this node is in, in the order joined.
    pub circles: Vec<String>,
    /// Per circle, members connected and seen (a circle with none connected is cut
    /// off: nothing posted there reaches anyone).
    pub circle_peers: Vec<net::CirclePeers>,
    /// aidmesh version.
    pub version: &'static str,
    /// Bytes sent since start, all connections.
    pub bytes_sent: u64,
    /// Bytes received since start, all connections.
    pub bytes_received: u64,
    /// The last catch-up sync with each peer.
    pub syncs: Vec<net::SyncStatus>,
    /// Whether and how others can reach this node, and whether they see its posts.
    pub reachability: net::Reachability,
    /// Limits at work, repairs, and the clock as peers see it.
    pub health: net::NetHealth,
}

/// Raises the soft limit on open files to the hard limit (often 1,024 soft against
/// far more hard): every connection, the store and the local API each need
/// descriptors, and the connection limits are sized for the raised limit.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 4096 => tracing::warn!(
            limit = n,
            "the open-file limit is low; raise it (e.g. LimitNOFILE in the systemd unit) for a busy node"
        ),
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Starts nodes.
pub struct Node;

impl Node {
    /// Opens the data dir (creating the identity if needed), the store, starts the
    /// network and waits until every listener has an address. A port in use, a bad
    /// address or a store already opened by another node is an error here.
    pub async fn start(config: NodeConfig) -> Result<NodeHandle, Error> {
        config.config.validate()?;
        raise_fd_limit();
        let dir = config.data_dir;
        dir.create()?;
        let identity = Identity::load_or_create(&dir.identity_key())?;
        let store = {
            let path = dir.db();
            let limits = crate::store::Limits {
                cache_bytes: config.config.store.cache_mb.saturating_mul(1 << 20),
                ..Default::default()
            };
            tokio::task::spawn_blocking(move || Store::open_with(&path, limits))
                .await
                .map_err(|_| Error::Closed)??
        };
        let (events, arriving) = Bus::new(EVENT_CAPACITY);
        let (alerts, matcher) = start_matcher(&store, &identity, &events, arriving)?;
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
        let messages = Messages::open(identity.clone(), store.clone(), &config.config.messages)?;
        let n = &config.config.network;
        let follow: Vec<aidmesh_proto::AuthorKey> = n
            .follow_moderation
            .iter()
            .filter_map(identity::peer_id_author)
            .collect();
        let membrane = {
            let (store, me) = (store.clone(), identity.author());
            tokio::task::spawn_blocking(move || Membrane::open(&store, me, &follow))
                .await
                .map_err(|_| Error::Closed)?
                .map_err(crate::circles::Error::from)?
        };
        let net_config = NetConfig {
            keypair: identity.keypair().clone(),
            listen: n.listen.clone(),
            bootstrap: n.bootstrap.clone(),
            circles: n.circles.clone(),
            mdns: n.mdns,
            kademlia: n.kademlia,
            kademlia_server: n.kademlia_server,
            circle_discovery: n.circle_discovery,
            idle_timeout: config.config.idle_timeout(),
            sweep_interval: std::time::Duration::from_secs(config.config.store.sweep_interval_secs),
            external_addresses: n.external_addresses.clone(),
            autonat_only_global_ips: n.autonat_only_global_ips,
            reachability: n.reachability,
            relay: config
                .config
                .relay
                .serve
                .then(|| config.config.relay.clone()),
            messages: messages.clone(),
            membrane: membrane.clone(),
        };
        let mut circles: Vec<String> = Vec::new();
        for c in &n.circles {
            if !circles.contains(c) {
                circles.push(c.clone());
            }
        }
        let network =
            net::Network::start(net_config, store.clone(), events.clone(), commands_rx).await?;
        tracing::info!(peer_id = %identity.peer_id(), data_dir = %dir.path().display(), "node started");
        let task = tokio::spawn(network.run());
        Ok(NodeHandle {
            inner: Arc::new(Inner {
                identity,
                store,
                commands: commands_tx,
                events,
                task: Mutex::new(Some(task)),
                alerts,
                matcher: Mutex::new(Some(matcher)),
                messages,
                config_file: dir.config_file(),
                circles: Mutex::new(circles),
                membrane,
            }),
        })
    }
}

/// A cheap-to-clone handle on a running node.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

struct Inner {
    identity: Identity,
    store: Store,
    commands: mpsc::Sender<Command>,
    events: Bus,
    /// The network task, awaited by `shutdown`.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Standing alerts.
    alerts: Alerts,
    /// The live-matching task, stopped by `shutdown` (it holds the store open).
    matcher: Mutex<Option<JoinHandle<()>>>,
    /// Conversations, outbox, envelopes held for others.
    messages: Messages,
    /// `config.toml`, where joined circles are kept.
    config_file: std::path::PathBuf,
    /// The circles this node is in, in the order joined: posting and inviting check
    /// it; only `join_circle` and `leave_circle` change it.
    circles: Mutex<Vec<String>>,
    /// Closed circles' membership and followed moderation.
    membrane: Membrane,
}

/// Opens the alerts and starts the task that matches arriving posts; it reads the
/// bus's lossless post queue, so it sees every post.
fn start_matcher(
    store: &Store,
    identity: &Identity,
    events: &Bus,
    arriving: mpsc::UnboundedReceiver<Event>,
) -> Result<(Alerts, JoinHandle<()>), Error> {
    let alerts = Alerts::open(store.db())?;
    let watcher = Watcher::new(store.clone(), alerts.clone(), identity.author());
    let task = tokio::spawn(watcher.run(arriving, events.downgrade()));
    Ok((alerts, task))
}

impl NodeHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.identity.peer_id()
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The node's store, for reads.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Publishes a new offer or request: fills in id, author and times, signs, stores
    /// durably (flushed before this returns) and gossips it. With no peers yet, the post
    /// goes out when the first peer of its circle appears.
    pub async fn publish(&self, draft: Draft) -> Result<Post, Error> {
        let post = draft.into_post(self.inner.identity.author(), now_ms())?;
        self.commit(post).await
    }

    /// Publishes a new revision of one of this node's posts.
    pub async fn edit(&self, id: &PostId, edit: Edit) -> Result<Post, Error> {
        let old = self.own(id)?;
        let post = draft::edit(&old, edit, now_ms()).map_err(Error::from_edit)?;
        if draft::same_content(&old, &post) {
            // Nothing changed: no revision for peers to fetch and store.
            return Ok(old);
        }
        self.commit(post).await
    }

    /// Withdraws one of this node's posts: a tombstone revision without body or
    /// contact replaces it everywhere.
    pub async fn withdraw(&self, id: &PostId) -> Result<Post, Error> {
        self.set_status(id, Status::Withdrawn).await
    }

    /// Marks one of this node's posts fulfilled.
    pub async fn fulfil(&self, id: &PostId) -> Result<Post, Error> {
        self.set_status(id, Status::Fulfilled).await
    }

    /// Opens one of this node's fulfilled posts again.
    pub async fn reopen(&self, id: &PostId) -> Result<Post, Error> {
        self.set_status(id, Status::Open).await
    }

    async fn set_status(&self, id: &PostId, status: Status) -> Result<Post, Error> {
        let old = self.own(id)?;
        if old.status == status {
            // Already so (fulfilling twice): no new revision.
            return Ok(old);
        }
        let post = draft::set_status(&old, status, now_ms()).map_err(Error::from_edit)?;
        self.commit(post).await
    }

    fn own(&self, id: &PostId) -> Result<Post, Error> {
        let stored = self.inner.store.get(id)?.ok_or(Error::NotFound(*id))?;
        if stored.post().author != self.inner.identity.author() {
            return Err(Error::NotAuthor(*id));
        }
        Ok(stored.post().clone())
    }

    async fn commit(&self, post: Post) -> Result<Post, Error> {
        self.require_member(&post.circle)?;
        let signed = post.sign(self.inner.identity.signing_key())?;
        let data = signed.encode()?;
        let verified = signed.verify(now_ms())?;
        let store = self.inner.store.clone();
        let stored = verified.clone();
        let outcome = tokio::task::spawn_blocking(move || store.insert_local(&stored))
            .await
            .map_err(|_| Error::Closed)??;
        net::announce(&self.inner.events, &post, outcome, Origin::Local);
        self.inner
            .commands
            .send(Command::Publish {
                circle: post.circle.clone(),
                data,
            })
            .await
            .map_err(|_| Error::Closed)?;
        Ok(post)
    }

    /// A stored post (any status; `None` if unknown, swept or blocked).
    pub fn get(&self, id: &PostId) -> Result<Option<VerifiedPost>, Error> {
        Ok(self.inner.store.get(id)?)
    }

    /// Posts matching `query`, newest first.
    pub fn query(&self, query: &Query) -> Result<Vec<VerifiedPost>, Error> {
        Ok(self.inner.store.query(query, now_ms())?)
    }

    /// Deletes an author's posts and refuses them from now on.
    pub fn block(&self, author: &aidmesh_proto::AuthorKey) -> Result<usize, Error> {
        Ok(self.inner.store.block(author)?)
    }

    /// Accepts an author's posts again.
    pub fn unblock(&self, author: &aidmesh_proto::AuthorKey) -> Result<bool, Error> {
        Ok(self.inner.store.unblock(author)?)
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.request(Command::Peers).await
    }

    /// Peer id, addresses, peers, posts and circles.
    pub async fn status(&self) -> Result<NodeStatus, Error> {
        let net = self.request(Command::Status).await?;
        Ok(NodeStatus {
            peer_id: self.peer_id(),
            listen_addrs: net.listen_addrs,
            connected_peers: net.connected_peers,
            posts: self.inner.store.len(),
            circles: self.circles(),
            circle_peers: net.circle_peers,
            version: env!("CARGO_PKG_VERSION"),
            bytes_sent: net.bytes_sent,
            bytes_received: net.bytes_received,
            syncs: net.syncs,
            reachability: net.reachability,
            health: net.health,
        })
    }

    /// An invite to `circle`: the addresses others can reach this node on — public
    /// ones, else relayed ones, else its listen addresses (same network or machine).
    pub async fn invite(&self, circle: &str) -> Result<Invite, Error> {
        // A closed circle's short name stands for its full name.
        let full = crate::circles::resolve(&self.circles(), circle);
        let circle = full.as_deref().unwrap_or(circle);
        check_circle(circle)?;
        self.require_member(circle)?;
        let status = self.status().await?;
        let r = &status.reachability;
        let mut addrs: Vec<Multiaddr> = r
            .direct_addrs
            .iter()
            .chain(&r.relayed_addrs)
            .cloned()
            .collect();
        let (loopback, other): (Vec<Multiaddr>, Vec<Multiaddr>) =
            status.listen_addrs.into_iter().partition(net::is_loopback);
        addrs.extend(other);
        if addrs.is_empty() {
            addrs = loopback;
        }
        addrs.truncate(aidmesh_proto::invite::MAX_ADDRS);
        let invite = Invite::new(circle, addrs.into_iter().map(|a| a.to_vec()));
        if !records::is_closed(circle) {
            return Ok(invite);
        }
        self.require_moderator(circle)?;
        let now = now_ms();
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        let voucher = Record {
            circle: circle.to_string(),
            signer: self.inner.identity.author(),
            at: now,
            action: Action::Voucher {
                id: records::VoucherId(id),
                expires_at: now + INVITE_LIFETIME_MS,
            },
        }
        .sign(self.inner.identity.signing_key())
        .map_err(CircleError::from)?;
        Ok(invite.with_voucher(voucher))
    }

    /// The circles this node is in, in the order joined.
    pub fn circles(&self) -> Vec<String> {
        self.inner
            .circles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether this node is in `circle`.
    pub fn is_member(&self, circle: &str) -> bool {
        self.inner
            .circles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|c| c == circle)
    }

    fn require_member(&self, circle: &str) -> Result<(), Error> {
        if self.is_member(circle) {
            Ok(())
        } else {
            Err(crate::circles::Error::NotMember {
                circle: circle.to_string(),
            }
            .into())
        }
    }

    /// Joins a circle: subscribes to its posts, catches up with its members, announces
    /// this node as a member in the DHT and looks for others, and adds it to
    /// `config.toml` so the next run is in it too. Returns whether it was new.
    pub async fn join_circle(&self, circle: &str) -> Result<bool, Error> {
        crate::circles::check_name(circle)?;
        let path = self.inner.config_file.clone();
        let name = circle.to_string();
        tokio::task::spawn_blocking(move || crate::circles::join(&path, &name))
            .await
            .map_err(|_| Error::Closed)??;
        self.inner.store.gate().join(circle);
        let name = circle.to_string();
        self.request(|reply| Command::Join {
            circle: name,
            reply,
        })
        .await?;
        let mut circles = self.inner.circles.lock().unwrap_or_else(|p| p.into_inner());
        if circles.iter().any(|c| c == circle) {
            return Ok(false);
        }
        circles.push(circle.to_string());
        Ok(true)
    }

    /// Leaves a circle: unsubscribes (so its posts are neither received nor relayed
    /// any more), stops announcing it, deletes its posts from the store — this node's
    /// own included — and removes it from `config.toml`. Leaving the only circle, or
    /// a circle the node is not in, is refused.
    pub async fn leave_circle(&self, circle: &str) -> Result<crate::circles::Left, Error> {
        crate::circles::check_name(circle)?;
        {
            let circles = self.inner.circles.lock().unwrap_or_else(|p| p.into_inner());
            if !circles.iter().any(|c| c == circle) {
                return Err(crate::circles::Error::NotMember {
                    circle: circle.to_string(),
                }
                .into());
            }
            if circles.len() == 1 {
                return Err(crate::circles::Error::LastCircle {
                    circle: circle.to_string(),
                }
                .into());
            }
        }
        // From here on no write path stores a post of the circle; writes already
        // under way finish first, and the removal below, which waits for them, takes
        // their posts too.
        self.inner.store.gate().leave(circle);
        let name = circle.to_string();
        let was_member = self
            .request(|reply| Command::Leave {
                circle: name,
                reply,
            })
            .await?;
        self.inner
            .circles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|c| c != circle);
        let (path, store, name) = (
            self.inner.config_file.clone(),
            self.inner.store.clone(),
            circle.to_string(),
        );
        let removed = tokio::task::spawn_blocking(move || {
            // A circle given only by `run --circle` is not in the file: nothing to do.
            match crate::circles::leave(&path, &name) {
                Ok(_) | Err(crate::circles::Error::LastCircle { .. }) => {}
                Err(e) => return Err(Error::from(e)),
            }
            Ok(store.remove_circle(&name)?)
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(crate::circles::Left {
            circle: circle.to_string(),
            was_member,
            removed_posts: removed as u64,
        })
    }

    /// Each circle this node is in: members connected and seen, stored posts, last
    /// activity.
    pub async fn circle_infos(&self) -> Result<Vec<crate::circles::CircleInfo>, Error> {
        let peers = self.request(Command::CirclePeers).await?;
        Ok(self
            .circles()
            .iter()
            .map(|c| {
                let (connected, seen) = peers
                    .iter()
                    .find(|p| &p.circle == c)
                    .map_or((0, 0), |p| (p.connected, p.seen));
                let s = self.inner.store.circle_summary(c);
                crate::circles::CircleInfo {
                    circle: c.clone(),
                    members_connected: Some(connected),
                    members_seen: Some(seen),
                    authors: s.authors,
                    posts: s.posts,
                    last_activity: s.last_activity,
                    cut_off: connected == 0,
                }
            })
            .collect())
    }

    /// Reconciles `circle` with a connected peer now (it also happens on connection
    /// and every minute); the outcome arrives as [`Event::SyncFinished`].
    pub async fn sync_with(&self, peer: PeerId, circle: &str) -> Result<(), Error> {
        check_circle(circle)?;
        self.inner
            .commands
            .send(Command::Sync {
                peer,
                circle: circle.to_string(),
            })
            .await
            .map_err(|_| Error::Closed)
    }

    /// Connects to a peer at `addr`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.request(|reply| Command::Dial { addr, reply })
            .await?
            .map_err(Error::Dial)
    }

    /// Joins an invite's circle (as [`Self::join_circle`], so it is saved) and dials its
    /// peers now (saving them for later runs is [`crate::invite::save`]'s job). Returns
    /// how many dials started.
    pub async fn join_invite(&self, joining: &crate::invite::Joining) -> Result<usize, Error> {
        if let Some(voucher) = &joining.voucher {
            voucher
                .verify_voucher(now_ms())
                .map_err(CircleError::from)?;
        }
        self.join_circle(&joining.circle).await?;
        if let Some(voucher) = &joining.voucher {
            // Redeem it: a record of our own, in effect once the voucher's signer is
            // known as a moderator here (at once for the founder's).
            self.make_record(
                &joining.circle,
                Action::Redeem {
                    voucher: voucher.clone(),
                },
                true,
            )
            .await?;
        }
        let mut dialled = 0;
        for addr in &joining.bootstrap {
            match self.dial(addr.clone()).await {
                Ok(()) => dialled += 1,
                Err(Error::Dial(e)) => {
                    tracing::warn!(%addr, error = %e, "cannot dial invite address")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(dialled)
    }

    /// Stops the network and flushes the store. Other handles get [`Error::Closed`]
    /// from then on; the database is released once every handle is dropped.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let _ = self.request(Command::Shutdown).await;
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.stop_matcher().await;
        self.inner.store.flush_async().await?;
        Ok(())
    }
}

/// How long an invite to a closed circle can be used.
pub const INVITE_LIFETIME_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Closed circles and moderation.
impl NodeHandle {
    /// The membrane: closed circles' records and followed moderation.
    pub fn membrane(&self) -> &Membrane {
        &self.inner.membrane
    }

    /// The full name of one of this node's circles, from its full or short name.
    pub fn resolve_circle(&self, name: &str) -> Result<String, Error> {
        Ok(crate::circles::resolve(&self.circles(), name)?)
    }

    fn require_closed(&self, circle: &str) -> Result<(), Error> {
        if records::is_closed(circle) {
            Ok(())
        } else {
            Err(CircleError::NotClosed {
                circle: circle.to_string(),
            }
            .into())
        }
    }

    fn require_moderator(&self, circle: &str) -> Result<(), Error> {
        self.require_closed(circle)?;
        let me = self.inner.identity.author();
        let ok = records::is_founder(circle, &me)
            || self
                .inner
                .membrane
                .membership(circle)
                .is_some_and(|m| m.is_moderator(&me));
        if ok {
            Ok(())
        } else {
            Err(CircleError::NotModerator {
                circle: circle.to_string(),
            }
            .into())
        }
    }

    /// Signs a record of this node, takes it in and publishes it. Unless `pending_ok`,
    /// a record that does not take effect is an error (and is not kept).
    async fn make_record(
        &self,
        circle: &str,
        action: Action,
        pending_ok: bool,
    ) -> Result<SignedRecord, Error> {
        let signed = Record {
            circle: circle.to_string(),
            signer: self.inner.identity.author(),
            at: now_ms(),
            action,
        }
        .sign(self.inner.identity.signing_key())
        .map_err(CircleError::from)?;
        let in_effect = if pending_ok {
            let membrane = self.inner.membrane.clone();
            let s = signed.clone();
            tokio::task::spawn_blocking(move || membrane.ingest_own(s, now_ms()))
                .await
                .map_err(|_| Error::Closed)?
                .map_err(CircleError::from)?
                .map_err(CircleError::from)?
        } else {
            let membrane = self.inner.membrane.clone();
            let s = signed.clone();
            let i = tokio::task::spawn_blocking(move || membrane.ingest(vec![s], now_ms()))
                .await
                .map_err(|_| Error::Closed)?
                .map_err(CircleError::from)?;
            if let Some(e) = i.invalid.into_iter().next() {
                return Err(CircleError::from(e).into());
            }
            if i.accepted.is_empty() {
                return Err(CircleError::NoEffect(
                    "that changes nothing in the circle's membership".into(),
                )
                .into());
            }
            true
        };
        tracing::debug!(circle, in_effect, "made a membership record");
        let data = signed.encode().map_err(CircleError::from)?;
        self.inner
            .commands
            .send(Command::PublishRecord {
                circle: circle.to_string(),
                data,
            })
            .await
            .map_err(|_| Error::Closed)?;
        Ok(signed)
    }

    /// Founds closed circle `name` (1-48 characters a-z, 0-9 and -) and joins it.
    /// Returns its full name, `name~id`.
    pub async fn create_closed_circle(&self, name: &str) -> Result<String, Error> {
        crate::circles::check_name(name)?;
        if records::is_closed(name) {
            return Err(CircleError::Name {
                name: name.to_string(),
                problem: aidmesh_proto::Problem::BadCharacter(records::CLOSED_SEPARATOR),
            }
            .into());
        }
        let me = self.inner.identity.author();
        let full = records::closed_name(name, &me);
        self.join_circle(&full).await?;
        if self.inner.membrane.membership(&full).is_none() {
            self.make_record(&full, Action::Admit { member: me }, false)
                .await?;
        }
        Ok(full)
    }

    /// Admits `peer` to closed circle `circle` (this node must be a moderator).
    pub async fn circle_admit(&self, circle: &str, peer: &PeerId) -> Result<(), Error> {
        let member = peer_author(peer)?;
        self.require_member(circle)?;
        self.require_moderator(circle)?;
        if self.is_circle_member(circle, &member) {
            return Err(
                CircleError::NoEffect(format!("{peer} is already a member of {circle}")).into(),
            );
        }
        self.make_record(circle, Action::Admit { member }, false)
            .await?;
        Ok(())
    }

    /// Makes member `peer` a moderator of `circle` (the founder only).
    pub async fn circle_grant_moderator(&self, circle: &str, peer: &PeerId) -> Result<(), Error> {
        let member = peer_author(peer)?;
        self.require_member(circle)?;
        self.require_closed(circle)?;
        if !records::is_founder(circle, &self.inner.identity.author()) {
            return Err(CircleError::NotFounder {
                circle: circle.to_string(),
            }
            .into());
        }
        if !self.is_circle_member(circle, &member) {
            return Err(CircleError::NoEffect(format!(
                "{peer} is not a member of {circle}; admit it first"
            ))
            .into());
        }
        self.make_record(circle, Action::Moderator { member }, false)
            .await?;
        Ok(())
    }

    /// Removes `peer` from `circle` and, with `invitees_since`, everyone it admitted
    /// from then on. Their posts are deleted here, and on every member's node that
    /// receives the record. Returns the members removed.
    pub async fn circle_remove(
        &self,
        circle: &str,
        peer: &PeerId,
        invitees_since: Option<u64>,
    ) -> Result<Vec<String>, Error> {
        let member = peer_author(peer)?;
        self.require_member(circle)?;
        self.require_moderator(circle)?;
        if records::is_founder(circle, &member) {
            return Err(CircleError::NoEffect(format!(
                "{peer} founded {circle} and cannot be removed"
            ))
            .into());
        }
        if !self.is_circle_member(circle, &member) {
            return Err(
                CircleError::NoEffect(format!("{peer} is not a member of {circle}")).into(),
            );
        }
        let before = self.circle_members(circle)?;
        self.make_record(
            circle,
            Action::Remove {
                member,
                invitees_since,
            },
            false,
        )
        .await?;
        let after = self.circle_members(circle)?;
        Ok(before
            .members
            .into_iter()
            .filter(|m| !after.members.iter().any(|a| a.peer_id == m.peer_id))
            .map(|m| m.peer_id)
            .collect())
    }

    fn is_circle_member(&self, circle: &str, key: &AuthorKey) -> bool {
        self.inner.store.gate().is_member(circle, key)
    }

    /// The members of closed circle `circle` as this node knows them.
    pub fn circle_members(&self, circle: &str) -> Result<Members, Error> {
        self.require_closed(circle)?;
        let m = self.inner.membrane.membership(circle);
        Ok(Members::of(
            circle,
            m.as_ref(),
            self.inner.membrane.record_count(circle),
        ))
    }

    /// Hides post `id` for whoever follows this node's moderation (a signed record on
    /// the post's circle). The post must be stored here.
    pub async fn hide(&self, id: &PostId) -> Result<SignedRecord, Error> {
        let post = self.inner.store.get(id)?.ok_or(Error::NotFound(*id))?;
        let circle = post.post().circle.clone();
        self.require_member(&circle)?;
        self.make_record(&circle, Action::Hide { post: *id }, true)
            .await
    }

    /// Adds `peer` to this node's signed blocklist in `circle`, for whoever follows
    /// its moderation.
    pub async fn moderation_block(
        &self,
        circle: &str,
        peer: &PeerId,
    ) -> Result<SignedRecord, Error> {
        let author = peer_author(peer)?;
        self.require_member(circle)?;
        self.make_record(circle, Action::Block { author }, true)
            .await
    }

    /// Follows (or stops following) `peer`'s hides and blocklists, here and in
    /// `config.toml`. Returns whether it changed.
    pub async fn follow_moderation(&self, peer: &PeerId, follow: bool) -> Result<bool, Error> {
        let key = peer_author(peer)?;
        let path = self.inner.config_file.clone();
        let p = *peer;
        tokio::task::spawn_blocking(move || {
            crate::config::update_network(&path, |lists| {
                let has = lists.follow_moderation.contains(&p);
                if follow && !has {
                    lists.follow_moderation.push(p);
                } else if !follow && has {
                    lists.follow_moderation.retain(|x| x != &p);
                }
                true
            })
        })
        .await
        .map_err(|_| Error::Closed)?
        .map_err(CircleError::from)?;
        let membrane = self.inner.membrane.clone();
        let changed = tokio::task::spawn_blocking(move || membrane.set_follow(key, follow))
            .await
            .map_err(|_| Error::Closed)?
            .map_err(CircleError::from)?;
        if changed {
            // Records of a newly followed key come with the next catch-up.
            for c in self.circles() {
                for p in self.peers().await? {
                    let _ = self
                        .inner
                        .commands
                        .send(Command::Sync {
                            peer: p.peer_id,
                            circle: c.clone(),
                        })
                        .await;
                }
            }
        }
        Ok(changed)
    }

    /// The peers whose moderation this node follows.
    pub fn followed_moderation(&self) -> Vec<PeerId> {
        self.inner
            .membrane
            .followed()
            .iter()
            .filter_map(identity::author_peer_id)
            .collect()
    }
}

fn peer_author(peer: &PeerId) -> Result<AuthorKey, Error> {
    identity::peer_id_author(peer).ok_or_else(|| {
        CircleError::NoEffect(format!(
            "{peer} is not an ed25519 peer id (aidmesh peer ids start with 12D3KooW)"
        ))
        .into()
    })
}

/// Matches and alerts.
impl NodeHandle {
    /// The best `limit` matches for a stored post (any author).
    pub fn matches_for(&self, id: &PostId, limit: usize) -> Result<Vec<Match>, Error> {
        let post = self.inner.store.get(id)?.ok_or(Error::NotFound(*id))?;
        Ok(matcher::rank(
            &self.inner.store,
            post.post(),
            now_ms(),
            limit,
        )?)
    }

    /// For each of this node's open posts (newest first), its best `limit` matches.
    pub fn my_matches(&self, limit: usize) -> Result<Vec<(Post, Vec<Match>)>, Error> {
        let now = now_ms();
        let store = &self.inner.store;
        let mut own: Vec<Post> = store
            .by_author(&self.inner.identity.author())?
            .into_iter()
            .map(|p| p.into_parts().0)
            .filter(|p| p.status == Status::Open && !p.is_expired(now))
            .collect();
        own.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        own.into_iter()
            .map(|p| {
                let found = matcher::rank(store, &p, now, limit)?;
                Ok((p, found))
            })
            .collect()
    }

    /// The node's standing alerts.
    pub fn alerts(&self) -> &Alerts {
        &self.inner.alerts
    }

    /// Saves a standing alert; a bad filter is an error naming it.
    pub fn add_alert(&self, filter: AlertFilter) -> Result<Alert, Error> {
        Ok(self.inner.alerts.add(filter, now_ms())?)
    }

    /// Deletes a standing alert.
    pub fn remove_alert(&self, id: AlertId) -> Result<Alert, Error> {
        Ok(self.inner.alerts.remove(id)?)
    }

    /// Stores posts read from an export (verified like posts from the network) and
    /// announces the new ones with [`Origin::Import`], so they are matched like any
    /// arriving post. One outcome per input, in order.
    pub async fn import(
        &self,
        posts: Vec<aidmesh_proto::SignedPost>,
    ) -> Result<Vec<Result<store::Inserted, store::Refused>>, Error> {
        let decoded: Vec<Option<Post>> = posts.iter().map(|s| s.decode_post().ok()).collect();
        let store = self.inner.store.clone();
        let results = tokio::task::spawn_blocking(move || {
            let r = store.insert_batch(posts, now_ms())?;
            store.flush()?;
            Ok::<_, store::Error>(r)
        })
        .await
        .map_err(|_| Error::Closed)??;
        for (r, post) in results.iter().zip(&decoded) {
            if let (Ok(outcome), Some(post)) = (r, post) {
                net::announce(&self.inner.events, post, *outcome, Origin::Import);
            }
        }
        Ok(results)
    }

    async fn stop_matcher(&self) {
        let task = self
            .inner
            .matcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

/// A message this node just wrote, and its conversation.
#[derive(Clone, Debug, Serialize)]
pub struct Sent {
    /// The conversation as it is now.
    pub conversation: ConversationView,
    /// The message (state `queued`: stored here, on its way).
    pub message: MessageView,
}

/// Private replies.
impl NodeHandle {
    /// The messages side of the node (conversations, outbox, held envelopes).
    pub fn messages(&self) -> &Messages {
        &self.inner.messages
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Messages) -> Result<T, messages::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let m = self.inner.messages.clone();
        Ok(tokio::task::spawn_blocking(move || f(m))
            .await
            .map_err(|_| Error::Closed)??)
    }

    async fn deliver(&self, ids: Vec<aidmesh_proto::message::MessageId>) -> Result<(), Error> {
        for id in ids {
            self.inner
                .commands
                .send(Command::MessageQueued(id))
                .await
                .map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    async fn sent(
        &self,
        (conv, message, id): (
            messages::Conversation,
            MessageView,
            aidmesh_proto::message::MessageId,
        ),
    ) -> Result<Sent, Error> {
        let conversation = self
            .blocking(move |m| m.thread(&conv.id, false, now_ms()))
            .await?
            .0
            .conversation;
        self.inner.events.send(Event::Message {
            conversation: conversation.id.clone(),
            message: message.clone(),
        });
        self.deliver(vec![id]).await?;
        Ok(Sent {
            conversation,
            message,
        })
    }

    /// Answers someone else's post privately: starts (or continues) the conversation
    /// with its author. The message is stored and flushed before this returns, and
    /// delivered directly or through peers of the post's circle.
    pub async fn reply(&self, post: &PostId, text: &str) -> Result<Sent, Error> {
        let (post, text) = (*post, text.to_string());
        let written = self
            .blocking(move |m| m.reply(&post, &text, now_ms()))
            .await?;
        self.sent(written).await
    }

    /// Writes in a conversation. On the post author's node, `promise` marks the post
    /// promised, `decline` (of the promised person) opens it again and `done` marks it
    /// fulfilled — the new revision is gossiped before the message goes out.
    pub async fn send_message(
        &self,
        conversation: &ConversationId,
        kind: MessageKind,
        text: &str,
    ) -> Result<Sent, Error> {
        let (id, text) = (*conversation, text.to_string());
        if let Some((post, status)) = self.blocking(move |m| m.status_change(&id, kind)).await? {
            self.set_status(&post, status).await?;
        }
        let written = self
            .blocking(move |m| m.send(&id, kind, &text, now_ms()))
            .await?;
        self.sent(written).await
    }

    /// Conversations, and requests from strangers apart.
    pub async fn inbox(&self) -> Result<Inbox, Error> {
        self.blocking(|m| m.inbox()).await
    }

    /// The conversation whose id starts with `prefix` (at least 8 hex characters).
    pub async fn resolve_conversation(&self, prefix: &str) -> Result<ConversationId, Error> {
        let prefix = prefix.to_string();
        self.blocking(move |m| m.resolve(&prefix)).await
    }

    /// A conversation's messages, oldest first. With `read`, the other side's messages
    /// are marked seen and read receipts go out.
    pub async fn thread(&self, conversation: &ConversationId, read: bool) -> Result<Thread, Error> {
        let id = *conversation;
        let (thread, receipts) = self
            .blocking(move |m| m.thread(&id, read, now_ms()))
            .await?;
        self.deliver(receipts).await?;
        Ok(thread)
    }
}

fn check_circle(circle: &str) -> Result<(), Error> {
    aidmesh_proto::rules::check_circle(circle).map_err(Error::Circle)
}
