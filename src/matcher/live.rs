//! Live matching: every post that arrives from elsewhere (gossip, sync, import) is
//! checked against the node's standing alerts and its own open posts, and each new
//! fit becomes an [`Event::Match`].
//!
//! [`Watcher::check`] is the whole decision, without I/O beyond the store; the node
//! runs [`Watcher::run`] as a task that listens to its own event broadcast, so the
//! network code needs to know nothing about matching.

use std::sync::{Arc, Mutex};

use aidmesh_proto::{AuthorKey, Post, Status};
use tokio::sync::{broadcast, mpsc};

use super::Probe;
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
    /// This node's own posts, read from the store and prepared for matching when
    /// first needed after one of them changed (see [`Watcher::own_changed`]), so a
    /// check decodes and analyses none of them. Their word weights are those of the
    /// store at that moment.
    own: Arc<Mutex<Option<Arc<Vec<Probe>>>>>,
}

impl Watcher {
    /// A watcher for the node whose author key is `me`.
    pub fn new(store: Store, alerts: Alerts, me: AuthorKey) -> Self {
        Self {
            store,
            alerts,
            me,
            own: Arc::default(),
        }
    }

    /// Forgets the cached own posts: one of them was made, changed or withdrawn.
    pub fn own_changed(&self) {
        *self.own.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn own_posts(&self) -> Result<Arc<Vec<Probe>>, Error> {
        let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(posts) = own.as_ref() {
            return Ok(posts.clone());
        }
        let posts: Arc<Vec<Probe>> = Arc::new(
            self.store
                .by_author(&self.me)?
                .into_iter()
                .map(|p| Probe::with_store(p.post(), &self.store))
                .collect(),
        );
        *own = Some(posts.clone());
        Ok(posts)
    }

    /// The match events `post` raises at `now`: one per alert it fits and per own
    /// open post it is a match for ([`super::Scored::is_match`]), each only the
    /// first time (recorded in memory before this returns; on disk in batches, see
    /// [`Alerts::commit`], which [`Watcher::run`] calls whenever no further post
    /// waits).
    pub fn check(&self, post: &Post, origin: Origin, now: u64) -> Result<Vec<Event>, Error> {
        let mut out = Vec::new();
        if post.author == self.me {
            // One of ours, arriving from elsewhere (an import, a sync after a reset).
            self.own_changed();
            return Ok(out);
        }
        if post.status != Status::Open || post.is_expired(now) {
            return Ok(out);
        }
        // One copy of the post, shared by all the matches it raises.
        let shared = std::cell::OnceCell::new();
        let event = |target: Target, score: Option<f64>, reasons: Vec<String>| Event::Match {
            post: Arc::clone(shared.get_or_init(|| Arc::new(post.clone()))),
            origin,
            target,
            score,
            reasons,
        };
        for (id, reasons) in self.alerts.matching(post, now, &self.store) {
            let target = Target::Alert { id };
            if self.alerts.first_time(&target, post) {
                out.push(event(target, None, reasons));
            }
        }
        // The arriving post's words, taken once from the store's text index (it was
        // stored before it is checked) and only if an own post may match it.
        let mut words = None;
        for probe in self.own_posts()?.iter() {
            let own = probe.post();
            // The cheap tests first: most own posts are not about this post at all.
            if own.kind != post.kind.opposite()
                || own.circle != post.circle
                || own.status != Status::Open
                || own.is_expired(now)
            {
                continue;
            }
            let words = words.get_or_insert_with(|| match self.store.indexed_stems(post) {
                Some((lang, (stems, title))) => super::PostWords { lang, stems, title },
                None => super::PostWords::of(post),
            });
            let Some(scored) = probe.score_stemmed(post, words, now) else {
                continue;
            };
            if !scored.is_match() {
                continue;
            }
            let target = Target::Post {
                id: own.id,
                title: own.title.clone(),
            };
            if self.alerts.first_time(&target, post) {
                let reasons = scored.reasons.iter().map(ToString::to_string).collect();
                out.push(event(target, Some(scored.score), reasons));
            }
        }
        if let Err(e) = self.alerts.commit_if_due(now) {
            // The events stand; only their memory waits for the next commit.
            tracing::warn!(error = %e, "cannot save which posts were alerted; retrying later");
        }
        Ok(out)
    }

    /// Checks every post that `events` reports as arriving from elsewhere and sends
    /// the match events to `out`, until `events` closes or `out` has no receiver left.
    /// `events` must not drop posts (the node feeds it from a queue that never does).
    pub async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<Event>,
        out: broadcast::WeakSender<Event>,
    ) {
        while let Some(event) = events.recv().await {
            let (post, origin) = match event {
                Event::PostAdded { post, origin } | Event::PostUpdated { post, origin, .. }
                    if origin != Origin::Local =>
                {
                    (post, origin)
                }
                // This node's own post changed.
                Event::PostAdded { .. } | Event::PostUpdated { .. } => {
                    self.own_changed();
                    continue;
                }
                _ => continue,
            };
            let found = match self.check(&post, origin, crate::clock::now_ms()) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, post = %post.id, "cannot match an arriving post");
                    continue;
                }
            };
            if events.is_empty() {
                // Nothing else waiting: a moment to write which posts alerted,
                // before the events go out.
                if let Err(e) = self.alerts.commit(crate::clock::now_ms()) {
                    tracing::warn!(error = %e, "cannot save which posts were alerted; retrying later");
                }
            }
            let Some(out) = out.upgrade() else { break };
            for e in found {
                if let Event::Match {
                    post,
                    target,
                    reasons,
                    score,
                    ..
                } = &e
                {
                    let against = match target {
                        Target::Alert { id } => format!("your alert {id}"),
                        Target::Post { title, .. } => format!("your post \"{title}\""),
                    };
                    let how = match score {
                        Some(s) => format!("score {s:.1}: {}", reasons.join(", ")),
                        None => reasons.join(", "),
                    };
                    tracing::info!(
                        post = %post.id,
                        "\"{}\" matches {against} ({how})",
                        post.title
                    );
                }
                let _ = out.send(e);
            }
        }
        let _ = self.alerts.commit(crate::clock::now_ms());
    }
}
