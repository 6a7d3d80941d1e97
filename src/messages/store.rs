//! The two parties' side of private messages on sled: conversations, their messages
//! (plaintext — only ever on the sender's and the recipient's node), the outbox of
//! sealed envelopes not yet delivered, and the ids of messages already received (so a
//! replay changes nothing).
//!
//! Tree names and key layouts live here and nowhere else. Records are encoded by the
//! `proto` codec. Changes that touch several trees are one sled transaction, so a
//! crash leaves either all of a change or none of it.

use std::sync::{Arc, Mutex};

use aidmesh_proto::codec;
use aidmesh_proto::message::{ConversationId, MessageId, MessageKind};
use aidmesh_proto::{AuthorKey, PostId};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

/// Largest stored record.
const MAX_RECORD: usize = 16 * 1024;

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// sled failed.
    #[error("message store: {0}")]
    Db(#[from] sled::Error),
    /// A record does not decode (disk corruption or a format change).
    #[error("message store record is corrupt: {0}")]
    Corrupt(String),
}

impl From<TransactionError<Error>> for Error {
    fn from(e: TransactionError<Error>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => Error::Db(e),
        }
    }
}

/// Where one of this node's messages is, or whether an incoming one was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Stored here; not yet handed to the recipient or a holding peer.
    Queued,
    /// Handed to the recipient's node or to a peer holding it for the recipient.
    Sent,
    /// The recipient's node said (signed) that it has it.
    Delivered,
    /// The recipient's node said (signed) that it was shown.
    Read,
    /// Expired before any receipt came.
    Expired,
    /// Received, not yet shown here.
    Unread,
    /// Received and shown here.
    Seen,
}

impl State {
    /// The lowercase name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Sent => "sent",
            State::Delivered => "delivered",
            State::Read => "read",
            State::Expired => "expired",
            State::Unread => "unread",
            State::Seen => "seen",
        }
    }

    /// Outgoing states only move forward.
    fn rank(self) -> u8 {
        match self {
            State::Queued => 0,
            State::Sent => 1,
            State::Delivered => 2,
            State::Read => 3,
            State::Expired => 1,
            State::Unread => 0,
            State::Seen => 1,
        }
    }
}

/// What a stored message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// Words with their role in the handover.
    Text {
        /// Reply, promise, decline or done.
        kind: MessageKind,
        /// The words.
        text: String,
    },
    /// The other node's notice that the post is promised to someone else.
    PromisedElsewhere,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The message id (receipts refer to it).
    pub id: MessageId,
    /// Whether this node sent it.
    pub mine: bool,
    /// What it says.
    pub content: Content,
    /// When it was sent (the sender's clock), ms since the epoch.
    pub at: u64,
    /// Delivery state (outgoing) or read state (incoming).
    pub state: State,
}

/// One conversation: this node and one peer about one post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// `ConversationId::derive(post, asker)`.
    pub id: ConversationId,
    /// The post.
    pub post: PostId,
    /// The other party.
    pub peer: AuthorKey,
    /// The post's circle (holding peers are chosen among its members).
    pub circle: String,
    /// The post's title when the conversation began (the post may expire first).
    pub title: String,
    /// Whether this node wrote the post (the other party is the asker).
    pub author: bool,
    /// Opened by a stranger and not answered yet: shown apart, under requests.
    pub request: bool,
    /// Incoming messages not yet shown.
    pub unread: u32,
    /// When the last message was sent, ms since the epoch.
    pub last_at: u64,
    /// Sequence number of the next message.
    pub next_seq: u32,
    /// The post is promised within this conversation (to the asker).
    pub promised: bool,
    /// The author's node said the post is promised to someone else.
    pub promised_elsewhere: bool,
    /// The handover happened (a `done` went either way).
    pub done: bool,
}

/// An envelope waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The message inside.
    pub id: MessageId,
    /// Its conversation (receipts belong to the conversation of their message).
    pub conversation: ConversationId,
    /// Whom it is sealed to.
    pub recipient: AuthorKey,
    /// The post's circle: holding peers are chosen among its members.
    pub circle: String,
    /// The encoded envelope.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// When it expires.
    pub expires_at: u64,
    /// A receipt or notice: done once handed over, no receipt expected.
    pub fire_and_forget: bool,
}

/// The messages side of the sled database.
#[derive(Clone)]
pub struct MessageStore {
    db: sled::Db,
    conversations: sled::Tree,
    messages: sled::Tree,
    ids: sled::Tree,
    outbox: sled::Tree,
    seen: sled::Tree,
    contacts: sled::Tree,
    /// Read-modify-write of conversation records happens from the API and the network
    /// task; one at a time.
    lock: Arc<Mutex<()>>,
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    codec::encode::<MAX_RECORD, _>(v).map_err(|e| Error::Corrupt(e.to_string()))
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Error> {
    codec::decode::<MAX_RECORD, T>(b).map_err(|e| Error::Corrupt(e.to_string()))
}

fn msg_key(conv: &ConversationId, seq: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&conv.0);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn abort(e: Error) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(e)
}

impl MessageStore {
    /// Opens (creating) the message trees of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        Ok(Self {
            db: db.clone(),
            conversations: db.open_tree("msg_conversations")?,
            messages: db.open_tree("msg_messages")?,
            ids: db.open_tree("msg_ids")?,
            outbox: db.open_tree("msg_outbox")?,
            seen: db.open_tree("msg_seen")?,
            contacts: db.open_tree("msg_contacts")?,
            lock: Arc::new(Mutex::new(())),
        })
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flushes to disk (sled's flush is `sync_file_range`, not `fsync`).
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }

    /// One conversation.
    pub fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>, Error> {
        self.conversations.get(id.0)?.map(|v| dec(&v)).transpose()
    }

    /// Every conversation, most recent first.
    pub fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        let mut all = self
            .conversations
            .iter()
            .map(|r| dec::<Conversation>(&r?.1))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| b.last_at.cmp(&a.last_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// The conversation whose hex id starts with `prefix` (at least 8 characters), if
    /// exactly one does. `Err(n)` with the number of matches otherwise.
    pub fn resolve(&self, prefix: &str) -> Result<Result<ConversationId, usize>, Error> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let mut found = Vec::new();
        for r in self.conversations.iter().keys() {
            let k = r?;
            let hex = hex::encode(&k);
            if hex.starts_with(&prefix) {
                found.push(k);
                if found.len() > 1 {
                    break;
                }
            }
        }
        Ok(match found.as_slice() {
            [one] if one.len() == 32 => {
                let mut id = [0u8; 32];
                id.copy_from_slice(one);
                Ok(ConversationId(id))
            }
            other => Err(other.len()),
        })
    }

    /// A conversation's messages, oldest first.
    pub fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, Error> {
        self.messages
            .scan_prefix(id.0)
            .map(|r| dec::<StoredMessage>(&r?.1))
            .collect()
    }

    /// Whether this node ever wrote to `peer` (else a new conversation from it is a
    /// request).
    pub fn is_contact(&self, peer: &AuthorKey) -> Result<bool, Error> {
        Ok(self.contacts.contains_key(peer.0)?)
    }

    /// Whether a message with this id was received already.
    pub fn seen(&self, id: &MessageId) -> Result<bool, Error> {
        Ok(self.seen.contains_key(id.0)?)
    }

    /// Adds (or updates, through `update`) a conversation and appends `message` to it,
    /// with its outgoing envelope when it is this node's, in one transaction. Returns
    /// the conversation as stored.
    pub fn append(
        &self,
        fresh: Conversation,
        update: impl Fn(&mut Conversation),
        message: StoredMessage,
        outgoing: Option<Outgoing>,
        received_expires_at: Option<u64>,
    ) -> Result<Conversation, Error> {
        let _g = self.guard();
        let trees = (
            &self.conversations,
            &self.messages,
            &self.ids,
            &self.outbox,
            &self.seen,
            &self.contacts,
        );
        let conv = trees.transaction(|(convs, msgs, ids, outbox, seen, contacts)| {
            let mut conv = match convs.get(fresh.id.0)? {
                Some(v) => dec::<Conversation>(&v).map_err(abort)?,
                None => fresh.clone(),
            };
            update(&mut conv);
            let seq = conv.next_seq;
            conv.next_seq += 1;
            conv.last_at = conv.last_at.max(message.at);
            if message.mine {
                contacts.insert(&conv.peer.0, &[])?;
            } else if message.state == State::Unread {
                conv.unread += 1;
            }
            let key = msg_key(&conv.id, seq);
            msgs.insert(&key[..], enc(&message).map_err(abort)?)?;
            ids.insert(&message.id.0, &key[..])?;
            if let Some(out) = &outgoing {
                outbox.insert(&out.id.0, enc(out).map_err(abort)?)?;
            }
            if let Some(exp) = received_expires_at {
                seen.insert(&message.id.0, &exp.to_be_bytes())?;
            }
            convs.insert(&conv.id.0, enc(&conv).map_err(abort)?)?;
            Ok(conv)
        })?;
        Ok(conv)
    }

    /// Changes a conversation record.
    pub fn update_conversation(
        &self,
        id: &ConversationId,
        update: impl FnOnce(&mut Conversation),
    ) -> Result<Option<Conversation>, Error> {
        let _g = self.guard();
        let Some(mut conv) = self.conversation(id)? else {
            return Ok(None);
        };
        update(&mut conv);
        self.conversations.insert(id.0, enc(&conv)?)?;
        Ok(Some(conv))
    }

    /// Remembers a received message id that is not stored as a message (a receipt), so
    /// a replay changes nothing.
    pub fn mark_seen(&self, id: &MessageId, expires_at: u64) -> Result<(), Error> {
        self.seen.insert(id.0, &expires_at.to_be_bytes())?;
        Ok(())
    }

    /// Puts an envelope in the outbox on its own (receipts and notices).
    pub fn queue(&self, out: &Outgoing) -> Result<(), Error> {
        self.outbox.insert(out.id.0, enc(out)?)?;
        Ok(())
    }

    /// One outbox entry.
    pub fn outgoing(&self, id: &MessageId) -> Result<Option<Outgoing>, Error> {
        self.outbox.get(id.0)?.map(|v| dec(&v)).transpose()
    }

    /// The whole outbox (read at start; bounded by what this node's user sent within
    /// 14 days).
    pub fn outbox(&self) -> Result<Vec<Outgoing>, Error> {
        self.outbox.iter().map(|r| dec(&r?.1)).collect()
    }

    /// Drops an outbox entry (delivered, handed over or expired).
    pub fn unqueue(&self, id: &MessageId) -> Result<(), Error> {
        self.outbox.remove(id.0)?;
        Ok(())
    }

    /// Moves one of this node's messages forward to `state` (never back). Returns the
    /// conversation and the message when it changed.
    pub fn advance(
        &self,
        id: &MessageId,
        state: State,
    ) -> Result<Option<(ConversationId, StoredMessage)>, Error> {
        let _g = self.guard();
        let Some(key) = self.ids.get(id.0)? else {
            return Ok(None);
        };
        let Some(raw) = self.messages.get(&key)? else {
            return Ok(None);
        };
        let mut m: StoredMessage = dec(&raw)?;
        if !m.mine || state.rank() <= m.state.rank() || m.state == State::Expired {
            return Ok(None);
        }
        m.state = state;
        self.messages.insert(&key, enc(&m)?)?;
        let mut conv = [0u8; 32];
        conv.copy_from_slice(&key[..32]);
        Ok(Some((ConversationId(conv), m)))
    }

    /// The conversation a message belongs to, and whether this node sent it.
    pub fn message_home(&self, id: &MessageId) -> Result<Option<(ConversationId, bool)>, Error> {
        let Some(key) = self.ids.get(id.0)? else {
            return Ok(None);
        };
        let Some(raw) = self.messages.get(&key)? else {
            return Ok(None);
        };
        let m: StoredMessage = dec(&raw)?;
        let mut conv = [0u8; 32];
        conv.copy_from_slice(&key[..32]);
        Ok(Some((ConversationId(conv), m.mine)))
    }

    /// Marks every unread message of a conversation seen; returns their ids (for read
    /// receipts).
    pub fn mark_read(&self, id: &ConversationId) -> Result<Vec<MessageId>, Error> {
        let _g = self.guard();
        let mut read = Vec::new();
        for r in self.messages.scan_prefix(id.0) {
            let (k, v) = r?;
            let mut m: StoredMessage = dec(&v)?;
            if !m.mine && m.state == State::Unread {
                m.state = State::Seen;
                self.messages.insert(k, enc(&m)?)?;
                read.push(m.id);
            }
        }
        if let Some(raw) = self.conversations.get(id.0)? {
            let mut conv: Conversation = dec(&raw)?;
            if conv.unread != 0 {
                conv.unread = 0;
                self.conversations.insert(id.0, enc(&conv)?)?;
            }
        }
        Ok(read)
    }

    /// Forgets received ids past their expiry (an expired envelope is refused anyway).
    pub fn sweep(&self, now: u64) -> Result<usize, Error> {
        let mut removed = 0;
        for r in self.seen.iter() {
            let (k, v) = r?;
            let exp = v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            if exp <= now {
                self.seen.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
