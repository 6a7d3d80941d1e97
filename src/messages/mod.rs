//! Private replies: a conversation between a post's author and one person about that
//! post, end-to-end encrypted, delivered while the other side is away.
//!
//! How it works (wire format and sealing: `proto/MESSAGES.md`):
//! - A message is signed by its sender, padded and sealed to the recipient's key. It is
//!   written to the sender's outbox (flushed) before the call that sent it returns.
//! - The network task runs a [`delivery::Driver`]: it pushes each envelope straight to
//!   the recipient over `/aidmesh/msg/1` when connected (dialling it if its address is
//!   known), and otherwise to up to [`delivery::HOLDERS`] connected peers of the post's
//!   circle, which hold the ciphertext ([`holding`]) until the recipient asks "anything
//!   for me?" on connecting, or the envelope expires.
//! - The recipient opens it, stores the plaintext, and answers with a signed receipt
//!   (`delivered`, later `read`), which travels the same way. The sender's message
//!   moves `queued → sent → delivered → read`.
//! - `promise`, `decline` and `done` drive the post's status (`promised`, `open`,
//!   `fulfilled`) on the author's node; a new asker of a promised post is told so.
//! - A first message from a stranger lands under requests; per-sender limits
//!   ([`limits`]) bound what a stranger, or a peer pushing envelopes to hold, can make
//!   this node spend; blocked authors' messages are dropped.
//!
//! This module is the state and the rules ([`Messages`]); [`delivery`] decides what to
//! send where, and the network task only carries requests and events.

pub mod delivery;
pub mod holding;
pub mod limits;
pub mod protocol;
pub mod store;

use std::sync::{Arc, Mutex};

use aidmesh_proto::message::{
    Body, ConversationId, Envelope, EnvelopeId, Message, MessageId, MessageKind, Notice, Opened,
    ReceiptState, Refusal, Response, MAX_LIFETIME_MS, MAX_TEXT_BYTES,
};
use aidmesh_proto::{AuthorKey, Post, PostId, Status};
use libp2p::PeerId;
use serde::Serialize;
use tracing::{debug, warn};

use crate::identity::{author_peer_id, peer_id_author};
use crate::store::{Inserted, Store};
use crate::Identity;
use holding::Holding;
use limits::Window;
pub use store::{Content, Conversation, MessageStore, Outgoing, State, StoredMessage};

/// What the user asked that cannot be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The post store failed.
    #[error(transparent)]
    Posts(#[from] crate::store::Error),
    /// No such post here.
    #[error("no post with id {0}")]
    NoPost(PostId),
    /// No such conversation.
    #[error("no conversation with id {0}")]
    NoConversation(String),
    /// A conversation id prefix matches several.
    #[error("{0} conversations start with {1}; give more characters")]
    Ambiguous(usize, String),
    /// A reply to one's own post.
    #[error("this is your own post; people reply to you, and you answer in their conversation")]
    OwnPost,
    /// The post is not live any more.
    #[error("the post is {0}; it cannot be replied to")]
    NotLive(Status),
    /// The text breaks a rule.
    #[error("text: {0}")]
    Text(String),
    /// Only the post's author can promise it.
    #[error("only the post's author can promise it")]
    NotAuthor,
    /// The other side is blocked here.
    #[error("you blocked this person; unblock them to write to them")]
    Blocked,
    /// Sealing failed.
    #[error("cannot seal the message: {0}")]
    Seal(#[from] aidmesh_proto::message::Error),
}

/// A message as the API, the CLI and events show it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MessageView {
    /// Message id (hex).
    pub id: String,
    /// The sender's peer id.
    pub from: String,
    /// Whether this node sent it.
    pub mine: bool,
    /// `reply`, `promise`, `decline`, `done`, or `promised` (the author's node saying
    /// the post is promised to someone else).
    pub kind: String,
    /// The words.
    pub text: String,
    /// When it was sent, ms since the epoch.
    pub at: u64,
    /// `queued`, `sent`, `delivered`, `read` or `expired` for this node's messages;
    /// `unread` or `seen` for the other side's.
    pub state: String,
}

/// A conversation as the API and the CLI show it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConversationView {
    /// Conversation id (hex).
    pub id: String,
    /// The post's id.
    pub post: String,
    /// The post's title.
    pub title: String,
    /// The other party's peer id.
    pub peer: String,
    /// `author` when this node wrote the post, else `asker`.
    pub role: &'static str,
    /// Opened by a stranger and not answered yet.
    pub request: bool,
    /// Messages not yet shown.
    pub unread: u32,
    /// The last message.
    pub last: Option<MessageView>,
    /// The post is promised within this conversation.
    pub promised: bool,
    /// The author said the post is promised to someone else.
    pub promised_elsewhere: bool,
    /// The handover happened.
    pub done: bool,
}

/// The inbox: conversations, and requests from strangers apart.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Inbox {
    /// Conversations this node took part in.
    pub conversations: Vec<ConversationView>,
    /// Conversations opened by strangers, not answered yet.
    pub requests: Vec<ConversationView>,
}

/// A conversation and its messages.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Thread {
    /// The conversation.
    pub conversation: ConversationView,
    /// Its messages, oldest first.
    pub messages: Vec<MessageView>,
}

/// A post status change that receiving a message caused on this (the author's) node:
/// already signed and stored; the network task announces and gossips it.
pub struct PostChange {
    /// The new revision.
    pub post: Post,
    /// Its wire bytes (for gossip).
    pub data: Vec<u8>,
    /// How the store took it.
    pub outcome: Inserted,
}

/// What handling an incoming envelope led to, besides the response.
#[derive(Default)]
pub struct Effects {
    /// Messages to announce (new, or state changed): conversation id and view.
    pub messages: Vec<(String, MessageView)>,
    /// New outbox entries (receipts, notices) to deliver.
    pub queued: Vec<MessageId>,
    /// Post status changes to gossip.
    pub posts: Vec<PostChange>,
    /// Outbox entries that are done (delivered).
    pub delivered: Vec<MessageId>,
    /// An envelope was held for this recipient (handed over if it is connected).
    pub held_for: Option<AuthorKey>,
}

/// The messages side of a node: its identity, the posts (for status changes), the
/// conversations, the outbox and the envelopes held for others. Cheap to clone.
#[derive(Clone)]
pub struct Messages {
    identity: Identity,
    posts: Store,
    /// Conversations, messages, outbox.
    pub store: MessageStore,
    /// Envelopes held for others.
    pub holding: Holding,
    limits: Arc<Mutex<Counters>>,
}

struct Counters {
    messages: Window<AuthorKey>,
    conversations: Window<AuthorKey>,
    pushes: Window<PeerId>,
}

fn text_of(c: &Content) -> (String, String) {
    match c {
        Content::Text { kind, text } => (kind.as_str().to_string(), text.clone()),
        Content::PromisedElsewhere => (
            "promised".into(),
            "This item is promised to someone else.".into(),
        ),
    }
}

fn peer_string(k: &AuthorKey) -> String {
    author_peer_id(k)
        .map(|p| p.to_string())
        .unwrap_or_else(|| k.to_string())
}

impl Messages {
    /// Opens the message trees of the node's database.
    pub fn open(identity: Identity, posts: Store, config: &limits::Config) -> Result<Self, Error> {
        let store = MessageStore::open(posts.db())?;
        let holding = Holding::open(posts.db(), config.hold_per_recipient, config.hold_total)?;
        Ok(Self {
            identity,
            posts,
            store,
            holding,
            limits: Arc::new(Mutex::new(Counters {
                messages: Window::per_hour(config.messages_per_hour),
                conversations: Window::per_day(config.new_conversations_per_day),
                pushes: Window::per_hour(config.hold_pushes_per_hour),
            })),
        })
    }

    fn me(&self) -> AuthorKey {
        self.identity.author()
    }

    /// A message view.
    pub fn view(&self, conv: &Conversation, m: &StoredMessage) -> MessageView {
        let (kind, text) = text_of(&m.content);
        MessageView {
            id: m.id.to_string(),
            from: if m.mine {
                self.identity.peer_id().to_string()
            } else {
                peer_string(&conv.peer)
            },
            mine: m.mine,
            kind,
            text,
            at: m.at,
            state: m.state.as_str().into(),
        }
    }

    fn conversation_view(&self, c: &Conversation) -> Result<ConversationView, Error> {
        let last = self.store.messages(&c.id)?.last().map(|m| self.view(c, m));
        Ok(ConversationView {
            id: c.id.to_string(),
            post: c.post.to_string(),
            title: c.title.clone(),
            peer: peer_string(&c.peer),
            role: if c.author { "author" } else { "asker" },
            request: c.request,
            unread: c.unread,
            last,
            promised: c.promised,
            promised_elsewhere: c.promised_elsewhere,
            done: c.done,
        })
    }

    /// Conversations and requests, most recent first.
    pub fn inbox(&self) -> Result<Inbox, Error> {
        let mut inbox = Inbox {
            conversations: vec![],
            requests: vec![],
        };
        for c in self.store.conversations()? {
            let v = self.conversation_view(&c)?;
            if c.request {
                inbox.requests.push(v);
            } else {
                inbox.conversations.push(v);
            }
        }
        Ok(inbox)
    }

    /// The conversation whose id starts with `prefix` (at least 8 hex characters).
    pub fn resolve(&self, prefix: &str) -> Result<ConversationId, Error> {
        if prefix.len() < 8 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::NoConversation(prefix.into()));
        }
        match self.store.resolve(prefix)? {
            Ok(id) => Ok(id),
            Err(0) => Err(Error::NoConversation(prefix.into())),
            Err(n) => Err(Error::Ambiguous(n, prefix.into())),
        }
    }

    /// A conversation's messages. With `read`, marks the other side's messages seen
    /// and queues read receipts (returned, for the network to deliver).
    pub fn thread(
        &self,
        id: &ConversationId,
        read: bool,
        now: u64,
    ) -> Result<(Thread, Vec<MessageId>), Error> {
        let conv = self
            .store
            .conversation(id)?
            .ok_or_else(|| Error::NoConversation(id.to_string()))?;
        let mut queued = Vec::new();
        if read {
            for of in self.store.mark_read(id)? {
                let body = Body::Receipt {
                    of,
                    state: ReceiptState::Read,
                };
                let (_, out) = self.seal(&conv, body, now, true)?;
                self.store.queue(&out)?;
                queued.push(out.id);
            }
        }
        let conv = self.store.conversation(id)?.unwrap_or(conv);
        let messages = self
            .store
            .messages(id)?
            .iter()
            .map(|m| self.view(&conv, m))
            .collect();
        Ok((
            Thread {
                conversation: self.conversation_view(&conv)?,
                messages,
            },
            queued,
        ))
    }

    /// Seals `body` to the other party of `conv`.
    fn seal(
        &self,
        conv: &Conversation,
        body: Body,
        now: u64,
        fire_and_forget: bool,
    ) -> Result<(Message, Outgoing), Error> {
        let message = Message {
            id: MessageId(rand::random()),
            sender: self.me(),
            recipient: conv.peer,
            post: conv.post,
            conversation: conv.id,
            sent_at: now,
            expires_at: now + MAX_LIFETIME_MS,
            body,
        };
        message.validate(now)?;
        let envelope = message.seal(self.identity.signing_key())?;
        let out = Outgoing {
            id: message.id,
            conversation: conv.id,
            recipient: conv.peer,
            circle: conv.circle.clone(),
            envelope: envelope.encode()?,
            expires_at: message.expires_at,
            fire_and_forget,
        };
        Ok((message, out))
    }

    fn check_text(kind: MessageKind, text: &str) -> Result<(), Error> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::Text(format!(
                "{} bytes; a message holds at most {MAX_TEXT_BYTES}",
                text.len()
            )));
        }
        if kind == MessageKind::Reply && text.trim().is_empty() {
            return Err(Error::Text("a reply needs some words".into()));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(Error::Text("control characters are not allowed".into()));
        }
        Ok(())
    }

    /// Starts (or continues) this node's conversation about someone else's post.
    /// Stored and flushed before it returns; the network delivers it from the outbox.
    pub fn reply(
        &self,
        post: &PostId,
        text: &str,
        now: u64,
    ) -> Result<(Conversation, MessageView, MessageId), Error> {
        let stored = self.posts.get(post)?.ok_or(Error::NoPost(*post))?;
        let p = stored.post();
        if p.author == self.me() {
            return Err(Error::OwnPost);
        }
        if !p.status.is_live() || p.is_expired(now) {
            return Err(Error::NotLive(if p.status.is_live() {
                Status::Withdrawn
            } else {
                p.status
            }));
        }
        if self.posts.is_blocked(&p.author)? {
            return Err(Error::Blocked);
        }
        let conv = Conversation {
            id: ConversationId::derive(post, &self.me()),
            post: *post,
            peer: p.author,
            circle: p.circle.clone(),
            title: p.title.clone(),
            author: false,
            request: false,
            unread: 0,
            last_at: now,
            next_seq: 0,
            promised: false,
            promised_elsewhere: p.status == Status::Promised,
            done: false,
        };
        self.write(conv, MessageKind::Reply, text, now)
    }

    /// Writes in an existing conversation. Post status changes that the kind implies on
    /// the author's side are the caller's (see [`Messages::status_change`]), made
    /// before this is called.
    pub fn send(
        &self,
        id: &ConversationId,
        kind: MessageKind,
        text: &str,
        now: u64,
    ) -> Result<(Conversation, MessageView, MessageId), Error> {
        let conv = self
            .store
            .conversation(id)?
            .ok_or_else(|| Error::NoConversation(id.to_string()))?;
        if kind == MessageKind::Promise && !conv.author {
            return Err(Error::NotAuthor);
        }
        if self.posts.is_blocked(&conv.peer)? {
            return Err(Error::Blocked);
        }
        self.write(conv, kind, text, now)
    }

    /// What sending `kind` in conversation `id` does to the post on this node: the new
    /// status, if the post is this node's and it changes.
    pub fn status_change(
        &self,
        id: &ConversationId,
        kind: MessageKind,
    ) -> Result<Option<(PostId, Status)>, Error> {
        let conv = self
            .store
            .conversation(id)?
            .ok_or_else(|| Error::NoConversation(id.to_string()))?;
        if !conv.author {
            return Ok(None);
        }
        let Some(post) = self.posts.get(&conv.post)? else {
            return Ok(None);
        };
        let status = post.post().status;
        Ok(match kind {
            MessageKind::Promise if status == Status::Open => Some((conv.post, Status::Promised)),
            MessageKind::Decline if status == Status::Promised && conv.promised => {
                Some((conv.post, Status::Open))
            }
            MessageKind::Done if status.is_live() => Some((conv.post, Status::Fulfilled)),
            _ => None,
        })
    }

    fn write(
        &self,
        conv: Conversation,
        kind: MessageKind,
        text: &str,
        now: u64,
    ) -> Result<(Conversation, MessageView, MessageId), Error> {
        Self::check_text(kind, text)?;
        let (message, out) = self.seal(
            &conv,
            Body::Text {
                kind,
                text: text.to_string(),
            },
            now,
            false,
        )?;
        let stored = StoredMessage {
            id: message.id,
            mine: true,
            content: Content::Text {
                kind,
                text: text.to_string(),
            },
            at: now,
            state: State::Queued,
        };
        let conv = self.store.append(
            conv,
            |c| {
                c.request = false;
                match kind {
                    MessageKind::Promise => {
                        c.promised = true;
                        c.done = false;
                    }
                    MessageKind::Decline => c.promised = false,
                    MessageKind::Done => c.done = true,
                    MessageKind::Reply => {}
                }
            },
            stored.clone(),
            Some(out),
            None,
        )?;
        self.store.flush()?;
        let view = self.view(&conv, &stored);
        Ok((conv, view, stored.id))
    }

    // ---- incoming ------------------------------------------------------------------

    /// Handles a pushed envelope from `from`: opens it when it is for this node, holds
    /// it for its recipient otherwise. Never panics on any input; a refused envelope
    /// changes nothing.
    pub fn on_push(&self, bytes: &[u8], from: &PeerId, now: u64) -> (Response, Effects) {
        let mut effects = Effects::default();
        let envelope = match Envelope::decode(bytes, now) {
            Ok(e) => e,
            Err(e) => {
                debug!(peer = %from, error = %e, "refused an envelope");
                return (Response::Refused(Refusal::Invalid), effects);
            }
        };
        if envelope.recipient == self.me() {
            let r = self.on_envelope(&envelope, now, &mut effects);
            return (r, effects);
        }
        // For someone else: hold it, within limits.
        if peer_id_author(from) == Some(envelope.recipient) {
            return (Response::Refused(Refusal::Invalid), effects);
        }
        if !self.counters().pushes.take(from, now) {
            return (Response::Refused(Refusal::RateLimited), effects);
        }
        match self.holding.hold(&envelope, bytes) {
            Ok(Ok(())) => {
                effects.held_for = Some(envelope.recipient);
                (Response::Held, effects)
            }
            Ok(Err(_)) => (Response::Refused(Refusal::Full), effects),
            Err(e) => {
                warn!(error = %e, "cannot hold an envelope");
                (Response::Refused(Refusal::Full), effects)
            }
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens and applies an envelope sealed to this node (pushed directly or fetched
    /// from a holder).
    pub fn on_envelope(&self, envelope: &Envelope, now: u64, effects: &mut Effects) -> Response {
        let opened = match envelope.open(self.identity.signing_key(), now) {
            Ok(o) => o,
            Err(e) => {
                debug!(error = %e, "refused an envelope sealed to us");
                return Response::Refused(Refusal::Unopenable);
            }
        };
        match self.apply(opened, now, effects) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot store an incoming message");
                Response::Refused(Refusal::Full)
            }
        }
    }

    fn apply(&self, opened: Opened, now: u64, fx: &mut Effects) -> Result<Response, Error> {
        let m = opened.message;
        if self.store.seen(&m.id)? {
            return Ok(Response::Accepted);
        }
        if self.posts.is_blocked(&m.sender)? {
            // Taken and dropped: a blocked sender learns nothing.
            self.store.mark_seen(&m.id, m.expires_at)?;
            return Ok(Response::Accepted);
        }
        let asker_is_sender = m.conversation == ConversationId::derive(&m.post, &m.sender);
        let existing = self.store.conversation(&m.conversation)?;
        if let Body::Receipt { of, state } = &m.body {
            self.store.mark_seen(&m.id, m.expires_at)?;
            let Some((conv, true)) = self.store.message_home(of)? else {
                return Ok(Response::Accepted);
            };
            let Some(c) = existing.filter(|c| c.id == conv && c.peer == m.sender) else {
                return Ok(Response::Accepted);
            };
            let state = match state {
                ReceiptState::Delivered => State::Delivered,
                ReceiptState::Read => State::Read,
            };
            if let Some((_, stored)) = self.store.advance(of, state)? {
                fx.messages.push((c.id.to_string(), self.view(&c, &stored)));
            }
            self.store.unqueue(of)?;
            fx.delivered.push(*of);
            return Ok(Response::Accepted);
        }
        {
            let mut counters = self.counters();
            if !counters.messages.allows(&m.sender, now) {
                return Ok(Response::Refused(Refusal::RateLimited));
            }
            if existing.is_none() && !counters.conversations.take(&m.sender, now) {
                return Ok(Response::Refused(Refusal::RateLimited));
            }
            counters.messages.take(&m.sender, now);
        }
        let post = self.posts.get(&m.post)?;
        let my_post = post.as_ref().is_some_and(|p| p.post().author == self.me());
        if asker_is_sender && !my_post {
            // Someone asks about a post that is not ours (or that we no longer have).
            if existing.is_none() {
                return Ok(Response::Refused(Refusal::Unopenable));
            }
        }
        if !asker_is_sender {
            // The sender claims to be the post's author.
            if let Some(p) = &post {
                if p.post().author != m.sender {
                    return Ok(Response::Refused(Refusal::Unopenable));
                }
            }
        }
        let (content, kind) = match &m.body {
            Body::Text { kind, text } => (
                Content::Text {
                    kind: *kind,
                    text: text.clone(),
                },
                Some(*kind),
            ),
            Body::Notice(Notice::Promised) => (Content::PromisedElsewhere, None),
            // Handled above.
            Body::Receipt { .. } => return Ok(Response::Accepted),
        };
        if asker_is_sender && kind == Some(MessageKind::Promise) {
            return Ok(Response::Refused(Refusal::Unopenable));
        }
        let (circle, title) = post
            .as_ref()
            .map(|p| (p.post().circle.clone(), p.post().title.clone()))
            .unwrap_or_else(|| (aidmesh_proto::rules::DEFAULT_CIRCLE.into(), String::new()));
        let stranger = !self.store.is_contact(&m.sender)?;
        let fresh = Conversation {
            id: m.conversation,
            post: m.post,
            peer: m.sender,
            circle,
            title,
            author: asker_is_sender,
            request: stranger,
            unread: 0,
            last_at: m.sent_at,
            next_seq: 0,
            promised: false,
            promised_elsewhere: false,
            done: false,
        };
        let was_promised = existing.as_ref().is_some_and(|c| c.promised);
        let stored = StoredMessage {
            id: m.id,
            mine: false,
            content,
            at: m.sent_at,
            state: State::Unread,
        };
        let post_status = post.as_ref().map(|p| p.post().status);
        // A new asker of a post promised to someone else is told so, once.
        let tell_promised = asker_is_sender
            && my_post
            && post_status == Some(Status::Promised)
            && !was_promised
            && !existing.as_ref().is_some_and(|c| c.promised_elsewhere);
        let conv = self.store.append(
            fresh,
            |c| match (kind, asker_is_sender) {
                (Some(MessageKind::Promise), false) => {
                    c.promised = true;
                    c.promised_elsewhere = false;
                }
                (Some(MessageKind::Decline), _) => c.promised = false,
                (Some(MessageKind::Done), _) => c.done = true,
                (None, false) => c.promised_elsewhere = true,
                _ => {
                    if tell_promised {
                        c.promised_elsewhere = true;
                    }
                }
            },
            stored.clone(),
            None,
            Some(m.expires_at),
        )?;
        fx.messages
            .push((conv.id.to_string(), self.view(&conv, &stored)));
        // Delivered receipt, and the notice.
        let (_, receipt) = self.seal(
            &conv,
            Body::Receipt {
                of: m.id,
                state: ReceiptState::Delivered,
            },
            now,
            true,
        )?;
        self.store.queue(&receipt)?;
        fx.queued.push(receipt.id);
        if tell_promised {
            let (_, notice) = self.seal(&conv, Body::Notice(Notice::Promised), now, true)?;
            self.store.queue(&notice)?;
            fx.queued.push(notice.id);
        }
        // The handover, on the author's node.
        if asker_is_sender && my_post && was_promised {
            let change = match kind {
                Some(MessageKind::Done) if post_status.is_some_and(Status::is_live) => {
                    Some(Status::Fulfilled)
                }
                Some(MessageKind::Decline) if post_status == Some(Status::Promised) => {
                    Some(Status::Open)
                }
                _ => None,
            };
            if let (Some(status), Some(p)) = (change, &post) {
                match self.change_status(p.post(), status, now) {
                    Ok(c) => fx.posts.push(c),
                    Err(e) => warn!(error = %e, "cannot change the post's status"),
                }
            }
        }
        // Accepted means stored: the holder may drop its copy.
        self.store.flush()?;
        Ok(Response::Accepted)
    }

    /// Signs and stores a new status of one of this node's posts.
    fn change_status(&self, old: &Post, status: Status, now: u64) -> Result<PostChange, Error> {
        let post =
            crate::draft::set_status(old, status, now).map_err(|e| Error::Text(e.to_string()))?;
        let signed = post
            .sign(self.identity.signing_key())
            .map_err(|e| Error::Text(e.to_string()))?;
        let data = signed.encode().map_err(|e| Error::Text(e.to_string()))?;
        let verified = signed.verify(now).map_err(|e| Error::Text(e.to_string()))?;
        let outcome = self.posts.insert_local(&verified)?;
        Ok(PostChange {
            post,
            data,
            outcome,
        })
    }

    /// Handles a fetch ("anything for me?") from `from`: drops what it says it stored
    /// and returns the next batch sealed to its key.
    pub fn on_fetch(&self, from: &PeerId, release: &[EnvelopeId], now: u64) -> Response {
        let Some(recipient) = peer_id_author(from) else {
            return Response::Envelopes {
                envelopes: vec![],
                more: false,
            };
        };
        match self.holding.fetch(&recipient, release, now) {
            Ok((envelopes, more)) => Response::Envelopes {
                envelopes: envelopes
                    .into_iter()
                    .map(serde_bytes::ByteBuf::from)
                    .collect(),
                more,
            },
            Err(e) => {
                warn!(error = %e, "cannot read held envelopes");
                Response::Envelopes {
                    envelopes: vec![],
                    more: false,
                }
            }
        }
    }

    /// Drops expired envelopes held for others and forgotten replay ids.
    pub fn sweep(&self, now: u64) {
        if let Err(e) = self.holding.sweep(now).and_then(|_| self.store.sweep(now)) {
            warn!(error = %e, "message sweep failed");
        }
    }
}
