//! Live matching: every post that arrives from elsewhere (gossip, sync, import) is
//! checked against the node's standing alerts and its own open posts, and each new
//! fit becomes an [`Event::Match`].
//!
//! [`Watcher::check`] is the whole decision, without I/O beyond the store; the node
//! runs [`Watcher::run`] as a task that listens to its own event broadcast, so the
//! network code needs to know nothing about matching.

use aidmesh_proto::{AuthorKey, Post, Status};
use tokio::sync::broadcast;

use super::{Probe, MATCH_THRESHOLD};
use crate::alerts::{self, Alerts, Target};
use crate::events::{Event, Origin};
use crate::store::{self, Store};

/// Live-matching failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The alert trees failed.
    #[error(transparent)]
    Alerts(#[from] alerts::Error),
}

/// Checks arriving posts against one node's alerts and own posts.
#[derive(Clone)]
pub struct Watcher {
    store: Store,
    alerts: Alerts,
    /// This node's author key: its own posts are the ones to find matches for, and
    /// its own posts never alert.
    me: AuthorKey,
}

impl Watcher {
    /// A watcher for the node whose author key is `me`.
    pub fn new(store: Store, alerts: Alerts, me: AuthorKey) -> Self {
        Self { store, alerts, me }
    }

    /// The match events `post` raises at `now`: one per alert it fits and per own
    /// open post it matches with at least [`MATCH_THRESHOLD`], each only the first
    /// time (recorded before this returns).
    pub fn check(&self, post: &Post, origin: Origin, now: u64) -> Result<Vec<Event>, Error> {
        let mut out = Vec::new();
        if post.author == self.me || post.status != Status::Open || post.is_expired(now) {
            return Ok(out);
        }
        let event = |target: Target, score: Option<f64>, reasons: Vec<String>| Event::Match {
            post: Box::new(post.clone()),
            origin,
            target,
            score,
            reasons,
        };
        for (id, reasons) in self.alerts.matching(post, now) {
            let target = Target::Alert { id };
            if self.alerts.first_time(&target, &post.id)? {
                out.push(event(target, None, reasons));
            }
        }
        for own in self.store.by_author(&self.me)? {
            let own = own.post();
            let probe = Probe::new(own);
            if !probe.eligible(post, now) || own.status != Status::Open || own.is_expired(now) {
                continue;
            }
            let Some(scored) = probe.score(post, now) else {
                continue;
            };
            if scored.score < MATCH_THRESHOLD {
                continue;
            }
            let target = Target::Post {
                id: own.id,
                title: own.title.clone(),
            };
            if self.alerts.first_time(&target, &post.id)? {
                let reasons = scored.reasons.iter().map(ToString::to_string).collect();
                out.push(event(target, Some(scored.score), reasons));
            }
        }
        Ok(out)
    }

    /// Checks every post that `events` reports as arriving from elsewhere and sends
    /// the match events to `out`, until `events` closes or `out` has no receiver left.
    pub async fn run(
        self,
        mut events: broadcast::Receiver<Event>,
        out: broadcast::WeakSender<Event>,
    ) {
        loop {
            let (post, origin) =
                match events.recv().await {
                    Ok(
                        Event::PostAdded { post, origin } | Event::PostUpdated { post, origin, .. },
                    ) if origin != Origin::Local => (post, origin),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "matcher fell behind; some posts were not checked"
                        );
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
            let found = match self.check(&post, origin, crate::clock::now_ms()) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, post = %post.id, "cannot match an arriving post");
                    continue;
                }
            };
            let Some(out) = out.upgrade() else { return };
            for e in found {
                if let Event::Match {
                    post,
                    target,
                    reasons,
                    score,
                    ..
                } = &e
                {
                    tracing::info!(post = %post.id, title = %post.title, ?target, ?score, ?reasons, ?origin, "match");
                }
                let _ = out.send(e);
            }
        }
    }
}
