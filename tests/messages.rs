//! Private replies between real nodes over loopback: direct delivery, holding by a
//! third node while the author is away, what a holder and a fourth node can see, bad
//! envelopes, limits, and the handover.

mod common;

use aidmesh::messages::Thread;
use aidmesh::proto::message::{
    Body, ConversationId, Message, MessageId, MessageKind, Refusal, Response, MAX_LIFETIME_MS,
};
use aidmesh::proto::{Category, Kind, Status};
use aidmesh::{Draft, Event, NodeHandle};
use common::*;
use libp2p::PeerId;

fn draft(title: &str) -> Draft {
    Draft {
        kind: Kind::Offer,
        category: Category::Goods,
        title: title.into(),
        body: String::new(),
        tags: vec![],
        location: None,
        quantity: None,
        contact: None,
        circle: Some("commons".into()),
        expires_in_secs: None,
    }
}

fn now() -> u64 {
    aidmesh::clock::now_ms()
}

async fn wait_post(node: &NodeHandle, id: &aidmesh::proto::PostId, status: Status) {
    wait_until("the post arrives with the status", || async {
        node.get(id)
            .unwrap()
            .is_some_and(|p| p.post().status == status)
    })
    .await;
}

fn message_event(e: &Event, text: &str) -> Option<(String, String)> {
    match e {
        Event::Message {
            conversation,
            message,
        } if message.text == text && !message.mine => {
            Some((conversation.clone(), message.state.clone()))
        }
        _ => None,
    }
}

async fn state_of(node: &NodeHandle, conv: &ConversationId, text: &str) -> String {
    let t: Thread = node.thread(conv, false).await.unwrap();
    t.messages
        .iter()
        .find(|m| m.text == text)
        .map(|m| m.state.clone())
        .unwrap_or_default()
}

async fn wait_state(node: &NodeHandle, conv: &ConversationId, text: &str, want: &str) {
    wait_until(&format!("message {text:?} is {want}"), || async {
        state_of(node, conv, text).await == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reply_answer_and_receipts() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = spawn_node(da.path(), &[], &["commons"]).await;
    let b = spawn_node(db.path(), &[addr_of(&a).await], &["commons"]).await;
    wait_connected(&b, a.peer_id()).await;
    let post = a.publish(draft("A bike for a kid")).await.unwrap();
    wait_post(&b, &post.id, Status::Open).await;

    let mut a_events = a.subscribe();
    let sent = b.reply(&post.id, "Is the bike still there?").await.unwrap();
    assert_eq!(sent.message.state, "queued");
    let conv: ConversationId = sent.conversation.id.parse().unwrap();
    assert_eq!(
        conv,
        ConversationId::derive(&post.id, &b.identity().author())
    );
    let (on_a, _) = wait_for(&mut a_events, "the reply on the author's node", |e| {
        message_event(e, "Is the bike still there?")
    })
    .await;
    assert_eq!(on_a, sent.conversation.id);
    wait_state(&b, &conv, "Is the bike still there?", "delivered").await;

    // A stranger's first message is a request until answered.
    let inbox = a.inbox().await.unwrap();
    assert_eq!(inbox.requests.len(), 1);
    assert_eq!(inbox.requests[0].unread, 1);
    assert_eq!(inbox.requests[0].peer, b.peer_id().to_string());
    assert!(inbox.conversations.is_empty());

    // Reading sends a read receipt; answering makes it a conversation.
    let t = a.thread(&conv, true).await.unwrap();
    assert_eq!(t.messages[0].state, "seen");
    wait_state(&b, &conv, "Is the bike still there?", "read").await;
    let mut b_events = b.subscribe();
    a.send_message(&conv, MessageKind::Reply, "Yes, come by Tuesday")
        .await
        .unwrap();
    wait_for(&mut b_events, "the answer", |e| {
        message_event(e, "Yes, come by Tuesday")
    })
    .await;
    let inbox = a.inbox().await.unwrap();
    assert!(inbox.requests.is_empty());
    assert_eq!(inbox.conversations.len(), 1);
    let b_inbox = b.inbox().await.unwrap();
    assert_eq!(
        b_inbox.conversations.len(),
        1,
        "the asker wrote first: not a request"
    );
    assert_eq!(b_inbox.conversations[0].unread, 1);
    wait_state(&a, &conv, "Yes, come by Tuesday", "delivered").await;

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_by_a_third_node_while_the_author_is_away() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let c = spawn_node(dc.path(), &[], &["commons"]).await;
    let c_addr = addr_of(&c).await;
    let a = spawn_node(da.path(), std::slice::from_ref(&c_addr), &["commons"]).await;
    let b = spawn_node(db.path(), std::slice::from_ref(&c_addr), &["commons"]).await;
    wait_connected(&a, c.peer_id()).await;
    wait_connected(&b, c.peer_id()).await;
    let post = a.publish(draft("Winter coat, size M")).await.unwrap();
    wait_post(&b, &post.id, Status::Open).await;
    let a_peer = a.peer_id();
    a.shutdown().await.unwrap();
    drop(a);
    wait_until("the author is gone", || async {
        !b.peers().await.unwrap().iter().any(|p| p.peer_id == a_peer)
            && !c.peers().await.unwrap().iter().any(|p| p.peer_id == a_peer)
    })
    .await;

    let secret = "my flat is at 12 Quiet Lane, ring twice";
    let sent = b.reply(&post.id, secret).await.unwrap();
    let conv: ConversationId = sent.conversation.id.parse().unwrap();
    wait_state(&b, &conv, secret, "sent").await;
    wait_until("the third node holds it", || async {
        c.messages().holding.len() == 1
    })
    .await;

    // The holder has ciphertext only.
    c.store().flush().unwrap();
    assert!(!files_contain(dc.path(), secret.as_bytes()));
    assert!(!files_contain(dc.path(), b"Quiet Lane"));
    // A fourth key cannot open what is held.
    let held = c
        .messages()
        .holding
        .fetch(&a_peer_author(&a_peer), &[], now())
        .unwrap()
        .0;
    assert_eq!(held.len(), 1);
    let envelope = aidmesh::proto::message::Envelope::decode(&held[0], now()).unwrap();
    let d = identity(44);
    assert!(envelope.open(d.signing_key(), now()).is_err());
    assert!(envelope.open(c.identity().signing_key(), now()).is_err());

    // The author comes back and asks for what is waiting.
    let a = spawn_node(da.path(), &[c_addr], &["commons"]).await;
    wait_until("the author has the reply", || async {
        a.inbox()
            .await
            .unwrap()
            .requests
            .iter()
            .any(|c| c.last.as_ref().is_some_and(|m| m.text == secret))
    })
    .await;
    wait_state(&b, &conv, secret, "delivered").await;
    wait_until("the holder dropped it", || async {
        c.messages().holding.is_empty()
    })
    .await;
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

fn a_peer_author(p: &PeerId) -> aidmesh::proto::AuthorKey {
    aidmesh::identity::peer_id_author(p).unwrap()
}

/// A message from `who` to `node` about `post`, sealed.
fn sealed(
    who: &aidmesh::Identity,
    to: &NodeHandle,
    post: &aidmesh::proto::PostId,
    text: &str,
    at: u64,
) -> Vec<u8> {
    let m = Message {
        id: MessageId(rand::random()),
        sender: who.author(),
        recipient: to.identity().author(),
        post: *post,
        conversation: ConversationId::derive(post, &who.author()),
        sent_at: at,
        expires_at: at + MAX_LIFETIME_MS,
        body: Body::Text {
            kind: MessageKind::Reply,
            text: text.into(),
        },
    };
    m.seal(who.signing_key()).unwrap().encode().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_are_refused_and_change_nothing() {
    let da = tempfile::tempdir().unwrap();
    let a = spawn_node(da.path(), &[], &["commons"]).await;
    let post = a.publish(draft("Sofa")).await.unwrap();
    let m = a.messages();
    let sender = identity(7);
    let from = sender.peer_id();
    let t = now();

    let good = sealed(&sender, &a, &post.id, "hello", t);
    // Forged: a byte of the sealed box flipped.
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        m.on_push(&forged, &from, t).0,
        Response::Refused(Refusal::Unopenable)
    );
    // Signed by someone else than the sender it names.
    let impostor = identity(8);
    let mut msg = Message {
        id: MessageId([9; 16]),
        sender: sender.author(),
        recipient: a.identity().author(),
        post: post.id,
        conversation: ConversationId::derive(&post.id, &sender.author()),
        sent_at: t,
        expires_at: t + MAX_LIFETIME_MS,
        body: Body::Text {
            kind: MessageKind::Reply,
            text: "forged".into(),
        },
    };
    assert!(msg.seal(impostor.signing_key()).is_err());
    // Oversized: not a padded size, and over the envelope limit.
    assert_eq!(
        m.on_push(&vec![0u8; 10_000], &from, t).0,
        Response::Refused(Refusal::Invalid)
    );
    // Expired.
    let old = sealed(&sender, &a, &post.id, "old", t - MAX_LIFETIME_MS - 1);
    assert_eq!(
        m.on_push(&old, &from, t).0,
        Response::Refused(Refusal::Invalid)
    );
    // Wrong recipient: sealed to another key but addressed to this node.
    let other = identity(9);
    msg.recipient = other.author();
    let mut env = {
        msg.sender = sender.author();
        msg.seal(sender.signing_key()).unwrap()
    };
    env.recipient = a.identity().author();
    assert_eq!(
        m.on_push(&env.encode().unwrap(), &from, t).0,
        Response::Refused(Refusal::Unopenable)
    );
    assert!(a.inbox().await.unwrap().requests.is_empty());

    // The good one, then its replay.
    assert_eq!(m.on_push(&good, &from, t).0, Response::Accepted);
    let before = a.inbox().await.unwrap();
    assert_eq!(before.requests.len(), 1);
    assert_eq!(m.on_push(&good, &from, t).0, Response::Accepted);
    assert_eq!(a.inbox().await.unwrap(), before, "a replay changes nothing");
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_for_strangers_and_holders() {
    let da = tempfile::tempdir().unwrap();
    let a = spawn_node_with(da.path(), &[], &["commons"], |c| {
        c.messages.new_conversations_per_day = 2;
        c.messages.messages_per_hour = 3;
        c.messages.hold_per_recipient = 2;
        c.messages.hold_pushes_per_hour = 100;
    })
    .await;
    let t = now();
    let posts: Vec<_> = futures_posts(&a, 3).await;
    let m = a.messages();
    let spammer = identity(20);
    let from = spammer.peer_id();
    // New conversations per day.
    for (i, p) in posts.iter().enumerate() {
        let r = m.on_push(&sealed(&spammer, &a, &p.id, "hi", t), &from, t).0;
        if i < 2 {
            assert_eq!(r, Response::Accepted);
        } else {
            assert_eq!(r, Response::Refused(Refusal::RateLimited));
        }
    }
    // Messages per hour (two counted already).
    let r = m
        .on_push(&sealed(&spammer, &a, &posts[0].id, "again", t), &from, t)
        .0;
    assert_eq!(r, Response::Accepted);
    let r = m
        .on_push(&sealed(&spammer, &a, &posts[0].id, "more", t), &from, t)
        .0;
    assert_eq!(r, Response::Refused(Refusal::RateLimited));
    assert_eq!(a.inbox().await.unwrap().requests.len(), 2);

    // Blocked senders are dropped silently.
    let blocked = identity(21);
    a.block(&blocked.author()).unwrap();
    let r = m
        .on_push(
            &sealed(&blocked, &a, &posts[0].id, "let me in", t),
            &blocked.peer_id(),
            t,
        )
        .0;
    assert_eq!(r, Response::Accepted);
    assert_eq!(a.inbox().await.unwrap().requests.len(), 2);

    // Holding for someone else: at most 2 per recipient.
    let absent = identity(22);
    let (x, y) = (identity(23), identity(24));
    let for_absent = |who: &aidmesh::Identity, n: u8| {
        let post = aidmesh::proto::PostId([n; 32]);
        Message {
            id: MessageId([n; 16]),
            sender: who.author(),
            recipient: absent.author(),
            post,
            conversation: ConversationId::derive(&post, &who.author()),
            sent_at: t,
            expires_at: t + 1000 * 60,
            body: Body::Text {
                kind: MessageKind::Reply,
                text: "held".into(),
            },
        }
        .seal(who.signing_key())
        .unwrap()
        .encode()
        .unwrap()
    };
    assert_eq!(
        m.on_push(&for_absent(&x, 1), &x.peer_id(), t).0,
        Response::Held
    );
    assert_eq!(
        m.on_push(&for_absent(&y, 2), &y.peer_id(), t).0,
        Response::Held
    );
    assert_eq!(
        m.on_push(&for_absent(&x, 3), &x.peer_id(), t).0,
        Response::Refused(Refusal::Full)
    );
    assert_eq!(m.holding.len(), 2);
    // Dropped at expiry.
    m.sweep(t + 1000 * 61);
    assert!(m.holding.is_empty());
    a.shutdown().await.unwrap();
}

async fn futures_posts(a: &NodeHandle, n: usize) -> Vec<aidmesh::proto::Post> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(a.publish(draft(&format!("Thing {i}"))).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_done_fulfilled_and_a_second_asker_is_told() {
    let (da, db, dd) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = spawn_node(da.path(), &[], &["commons"]).await;
    let a_addr = addr_of(&a).await;
    let b = spawn_node(db.path(), std::slice::from_ref(&a_addr), &["commons"]).await;
    let d = spawn_node(dd.path(), &[a_addr], &["commons"]).await;
    wait_connected(&b, a.peer_id()).await;
    wait_connected(&d, a.peer_id()).await;
    let post = a.publish(draft("Pram, good condition")).await.unwrap();
    wait_post(&b, &post.id, Status::Open).await;
    wait_post(&d, &post.id, Status::Open).await;

    let mut a_events = a.subscribe();
    let sent = b.reply(&post.id, "I'd love the pram").await.unwrap();
    let conv_b: ConversationId = sent.conversation.id.parse().unwrap();
    wait_for(&mut a_events, "B's reply", |e| {
        message_event(e, "I'd love the pram")
    })
    .await;
    a.send_message(&conv_b, MessageKind::Promise, "It's yours")
        .await
        .unwrap();
    assert_eq!(
        a.get(&post.id).unwrap().unwrap().post().status,
        Status::Promised
    );
    wait_post(&b, &post.id, Status::Promised).await;
    wait_until("B sees the promise", || async {
        b.inbox().await.unwrap().conversations[0].promised
    })
    .await;

    // A second asker whose node has not heard yet (or has) is told it is promised.
    let sent_d = d.reply(&post.id, "Is the pram free?").await.unwrap();
    let conv_d: ConversationId = sent_d.conversation.id.parse().unwrap();
    wait_until("D is told the pram is promised", || async {
        let t = d.thread(&conv_d, false).await.unwrap();
        t.conversation.promised_elsewhere && t.messages.iter().any(|m| m.kind == "promised")
    })
    .await;

    // The asker says the handover happened: the author's node marks it fulfilled.
    b.send_message(&conv_b, MessageKind::Done, "Picked up, thanks!")
        .await
        .unwrap();
    wait_post(&a, &post.id, Status::Fulfilled).await;
    wait_post(&b, &post.id, Status::Fulfilled).await;
    wait_post(&d, &post.id, Status::Fulfilled).await;

    // Only the author can promise.
    assert!(b
        .send_message(&conv_b, MessageKind::Promise, "")
        .await
        .is_err());
    for n in [a, b, d] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_frees_a_promise() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = spawn_node(da.path(), &[], &["commons"]).await;
    let b = spawn_node(db.path(), &[addr_of(&a).await], &["commons"]).await;
    wait_connected(&b, a.peer_id()).await;
    let post = a.publish(draft("Desk lamp")).await.unwrap();
    wait_post(&b, &post.id, Status::Open).await;
    let mut a_events = a.subscribe();
    let conv: ConversationId = b
        .reply(&post.id, "Lamp please")
        .await
        .unwrap()
        .conversation
        .id
        .parse()
        .unwrap();
    wait_for(&mut a_events, "the reply", |e| {
        message_event(e, "Lamp please")
    })
    .await;
    a.send_message(&conv, MessageKind::Promise, "")
        .await
        .unwrap();
    wait_post(&b, &post.id, Status::Promised).await;
    wait_until("B sees the promise", || async {
        b.inbox().await.unwrap().conversations[0].promised
    })
    .await;
    b.send_message(&conv, MessageKind::Decline, "Found one, sorry")
        .await
        .unwrap();
    wait_post(&a, &post.id, Status::Open).await;
    wait_post(&b, &post.id, Status::Open).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
