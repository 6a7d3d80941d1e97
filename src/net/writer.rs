//! Gossiped posts the swarm task accepted, written to the store in batches on a
//! thread of its own: a burst of writes (a flood's first few hundred posts, a busy
//! circle) never holds up the swarm task. Posts wait in one queue per sending peer
//! and each batch takes from the queues in turn, so one peer's burst delays another
//! peer's post by one batch at most, not by the whole burst. The queues together hold
//! at most [`QUEUE`] posts; the swarm task asks for room before it accepts a post and
//! ignores (does not relay) one it could not store.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use aidmesh_proto::VerifiedPost;
use libp2p::PeerId;
use tracing::warn;

use crate::events::{Bus, Origin};
use crate::store::Store;

/// Posts waiting to be written, at most (8 KiB each at most: 8 MiB).
pub(crate) const QUEUE: usize = 1_024;
/// Posts written in one store batch, at most: large enough to write efficiently,
/// small enough that a post waits little behind a batch.
const BATCH: usize = 64;

type Queued = (PeerId, Box<VerifiedPost>);

/// The sending end, owned by the swarm task.
pub(crate) struct Writer {
    tx: mpsc::Sender<Queued>,
    /// Posts sent and not yet written; the bound on everything queued.
    pending: Arc<AtomicUsize>,
    task: JoinHandle<()>,
    /// Posts ignored because the queue was full.
    pub full: u64,
}

impl Writer {
    /// Starts the writing thread. A thread of its own rather than a task that hands
    /// each batch to tokio's blocking pool: one wake-up per batch, not two.
    pub(crate) fn start(store: Store, events: Bus) -> Result<Self, std::io::Error> {
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = pending.clone();
        let task = std::thread::Builder::new()
            .name("aidmesh-gossip-writer".into())
            .spawn(move || run(&store, &events, &rx, &counter))?;
        Ok(Self {
            tx,
            task,
            pending,
            full: 0,
        })
    }

    /// Whether a post accepted now could be queued; counts a miss. The swarm task is
    /// the only sender, so room seen here is still there at [`Writer::write`].
    pub(crate) fn has_room(&mut self) -> bool {
        let room = self.pending.load(Ordering::Acquire) < QUEUE;
        if !room {
            self.full += 1;
        }
        room
    }

    /// Queues a post accepted from `from` for writing.
    pub(crate) fn write(&mut self, from: PeerId, post: Box<VerifiedPost>) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.send((from, post)).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.full += 1;
        }
    }

    /// Writes what is queued, then ends the thread.
    pub(crate) async fn finish(self) {
        drop(self.tx);
        let task = self.task;
        if !matches!(
            tokio::task::spawn_blocking(move || task.join()).await,
            Ok(Ok(()))
        ) {
            warn!("the gossip writer ended abnormally");
        }
    }
}

/// Queues per sending peer, taken from in turn.
#[derive(Default)]
struct Fair {
    queues: HashMap<PeerId, VecDeque<Box<VerifiedPost>>>,
    /// Peers with posts waiting, in the order they are served.
    turn: VecDeque<PeerId>,
}

impl Fair {
    fn push(&mut self, (peer, post): Queued) {
        let queue = self.queues.entry(peer).or_default();
        if queue.is_empty() {
            self.turn.push_back(peer);
        }
        queue.push_back(post);
    }

    fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }

    /// Up to `max` posts, one from each waiting peer in turn.
    fn batch(&mut self, max: usize) -> Vec<VerifiedPost> {
        let mut out = Vec::with_capacity(max.min(BATCH));
        while out.len() < max {
            let Some(peer) = self.turn.pop_front() else {
                break;
            };
            let Some(queue) = self.queues.get_mut(&peer) else {
                continue;
            };
            if let Some(post) = queue.pop_front() {
                out.push(*post);
            }
            if queue.is_empty() {
                self.queues.remove(&peer);
            } else {
                self.turn.push_back(peer);
            }
        }
        out
    }
}

fn run(store: &Store, events: &Bus, rx: &mpsc::Receiver<Queued>, pending: &AtomicUsize) {
    let mut fair = Fair::default();
    let mut open = true;
    loop {
        if fair.is_empty() {
            if !open {
                break;
            }
            match rx.recv() {
                Ok(q) => fair.push(q),
                Err(mpsc::RecvError) => break,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(q) => fair.push(q),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let posts = fair.batch(BATCH);
        let outcomes = store.insert_verified_batch(&posts);
        pending.fetch_sub(posts.len(), Ordering::AcqRel);
        match outcomes {
            Ok(outcomes) => {
                for (post, outcome) in posts.iter().zip(outcomes) {
                    match outcome {
                        Ok(o) => super::announce(events, post.post(), o, Origin::Gossip),
                        Err(r) if !r.is_senders_fault() => {}
                        Err(r) => warn!(reason = %r, "a gossiped post was refused at writing"),
                    }
                }
            }
            Err(e) => warn!(error = %e, posts = posts.len(), "cannot store gossiped posts"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::Draft;
    use aidmesh_proto::{Category, Kind};

    fn post(i: u8) -> Box<VerifiedPost> {
        let me = crate::Identity::from_secret([i; 32]);
        let now = crate::clock::now_ms();
        let post = Draft::new(Kind::Offer, Category::Food, format!("Soup {i}"))
            .into_post(me.author(), now)
            .expect("a valid draft");
        Box::new(
            post.sign(me.signing_key())
                .expect("signs")
                .verify(now)
                .expect("verifies"),
        )
    }

    #[test]
    fn a_burst_from_one_peer_does_not_hold_back_another_peers_post() {
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let mut fair = Fair::default();
        for i in 0..10 {
            fair.push((flooder, post(i)));
        }
        fair.push((honest, post(100)));
        let first = fair.batch(2);
        assert_eq!(first[1].post().title, "Soup 100");
        let rest = fair.batch(100);
        assert_eq!(rest.len(), 9);
        assert!(fair.is_empty());
        assert!(fair.batch(5).is_empty());
    }
}
