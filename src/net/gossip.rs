//! Gossip: one gossipsub topic per circle, the gossipsub and peer-score settings, and
//! the validation that decides whether a received message is accepted (stored and
//! relayed), rejected (the sender is penalised) or ignored.

use std::time::Duration;

use aidmesh_proto::{rules::ValidationError, Field, Problem, SignedPost, VerifiedPost};
use libp2p::gossipsub::{
    self, IdentTopic, MessageId, PeerScoreParams, PeerScoreThresholds, TopicHash, TopicScoreParams,
    ValidationMode,
};

/// Topic name prefix: the topic of circle `x` is `aidmesh/1/circle/x`.
pub const TOPIC_PREFIX: &str = "aidmesh/1/circle/";
/// Largest gossipsub message. Posts are at most ~8.3 KB; gossipsub 0.50.1 compares a
/// whole read buffer against this limit, so it stays far above one post (see
/// LIBP2P-NOTES.md). Every node must use the same value.
pub const MAX_TRANSMIT_SIZE: usize = 65_536;
/// Mesh degree: target, low and high watermarks, and outbound minimum.
const MESH_N: usize = 6;
pub(crate) const MESH_N_LOW: usize = 4;
const MESH_N_HIGH: usize = 12;
const MESH_OUTBOUND_MIN: usize = 2;

/// Topic name prefix of a circle's membership and moderation records:
/// `aidmesh/1/records/x` (apart from the posts, so a node that does not know records
/// never sees one, and never penalises its sender for it).
pub const RECORDS_PREFIX: &str = "aidmesh/1/records/";

/// The records topic of a circle.
pub fn records_topic(circle: &str) -> IdentTopic {
    IdentTopic::new(format!("{RECORDS_PREFIX}{circle}"))
}

/// The circle a records topic belongs to.
pub fn records_circle_of(topic: &TopicHash) -> Option<&str> {
    topic.as_str().strip_prefix(RECORDS_PREFIX)
}

/// The topic of a circle.
pub fn topic(circle: &str) -> IdentTopic {
    IdentTopic::new(format!("{TOPIC_PREFIX}{circle}"))
}

/// The circle a topic belongs to.
pub fn circle_of(topic: &TopicHash) -> Option<&str> {
    topic.as_str().strip_prefix(TOPIC_PREFIX)
}

/// Message ids are the content hash of the message, so the same post revision is
/// one message however many peers publish or relay it.
fn message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::from(&blake3::hash(&message.data).as_bytes()[..20])
}

/// The gossipsub configuration every aidmesh node uses.
pub fn config(heartbeat: Duration) -> Result<gossipsub::Config, String> {
    // build() does not check the mesh parameters against each other; do it here.
    if !(MESH_OUTBOUND_MIN <= MESH_N_LOW
        && MESH_N_LOW <= MESH_N
        && MESH_N <= MESH_N_HIGH
        && 2 * MESH_OUTBOUND_MIN <= MESH_N)
    {
        return Err("inconsistent gossipsub mesh parameters".into());
    }
    gossipsub::ConfigBuilder::default()
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .mesh_n(MESH_N)
        .mesh_n_low(MESH_N_LOW)
        .mesh_n_high(MESH_N_HIGH)
        .mesh_outbound_min(MESH_OUTBOUND_MIN)
        .heartbeat_interval(heartbeat)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .build()
        .map_err(|e| e.to_string())
}

/// Peer scoring tuned for a quiet network: no penalty for topics with little
/// traffic, no colocation penalty (many honest nodes share a NAT or run on one
/// host), and a strong, slowly decaying penalty for invalid messages.
pub fn score_params() -> (PeerScoreParams, PeerScoreThresholds) {
    let params = PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        topic_score_cap: 10.0,
        ..PeerScoreParams::default()
    };
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 3.0,
    };
    (params, thresholds)
}

/// Score parameters for one circle's topic.
pub fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 10.0,
        // Quiet circles deliver few messages: never punish peers for that.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // Weighted by the square of the count: 1 invalid → -20, 2 → -80 (graylisted).
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    }
}

/// What to do with a received message.
#[derive(Debug)]
pub enum Verdict {
    /// A valid post for this circle: store it, then accept or ignore by what the store
    /// did.
    Valid(Box<VerifiedPost>),
    /// Malformed, badly signed, breaking a rule, or in the wrong circle: the sender
    /// relayed something no honest node would.
    Reject(String),
    /// Dated ahead of our clock by more than the rules allow, but valid otherwise as
    /// far as decoding goes: not the sender's fault; kept aside until its time.
    Ahead(Box<SignedPost>),
    /// Not the sender's fault (expired meanwhile): drop without penalty.
    Ignore(String),
}

/// Whether a refused post could come from an honest peer: expired meanwhile, or
/// ahead of our clock.
pub fn is_not_senders_fault(e: &aidmesh_proto::Error) -> bool {
    matches!(
        e,
        aidmesh_proto::Error::Invalid(ValidationError {
            field: Field::ExpiresAt | Field::CreatedAt | Field::UpdatedAt,
            problem: Problem::Expired | Problem::InFuture,
        })
    )
}

/// Whether a refused post is only ahead of our clock (it may become valid).
pub fn is_in_future(e: &aidmesh_proto::Error) -> bool {
    matches!(
        e,
        aidmesh_proto::Error::Invalid(ValidationError {
            field: Field::CreatedAt | Field::UpdatedAt,
            problem: Problem::InFuture,
        })
    )
}

/// Decides what to do with `data` received on `circle`'s topic at `now`.
pub fn judge(data: &[u8], circle: &str, now: u64) -> Verdict {
    let signed = match SignedPost::decode(data) {
        Ok(s) => s,
        Err(e) => return Verdict::Reject(e.to_string()),
    };
    match signed.clone().verify(now) {
        Ok(v) if v.post().circle == circle => Verdict::Valid(Box::new(v)),
        Ok(v) => Verdict::Reject(format!(
            "post for circle {:?} on the topic of {circle:?}",
            v.post().circle
        )),
        Err(e) if is_in_future(&e) => Verdict::Ahead(Box::new(signed)),
        Err(e) if is_not_senders_fault(&e) => Verdict::Ignore(e.to_string()),
        Err(e) => Verdict::Reject(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::Draft;
    use aidmesh_proto::{Category, Kind};

    const NOW: u64 = 1_780_000_000_000;

    #[test]
    fn judges_messages() {
        let me = crate::Identity::from_secret([4; 32]);
        let post = Draft::new(Kind::Offer, Category::Food, "Soup")
            .into_post(me.author(), NOW)
            .unwrap();
        let wire = post.sign(me.signing_key()).unwrap().encode().unwrap();
        assert!(matches!(judge(&wire, "commons", NOW), Verdict::Valid(_)));
        assert!(matches!(judge(&wire, "elsewhere", NOW), Verdict::Reject(_)));
        assert!(matches!(
            judge(b"garbage", "commons", NOW),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            judge(&wire, "commons", post.expires_at),
            Verdict::Ignore(_)
        ));
        let mut bad = wire.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(judge(&bad, "commons", NOW), Verdict::Reject(_)));
    }

    #[test]
    fn config_builds_and_scores_validate() {
        assert!(config(Duration::from_secs(1)).is_ok());
        let (p, t) = score_params();
        assert!(p.validate().is_ok());
        assert!(t.validate().is_ok());
        assert!(topic_score_params().validate().is_ok());
        assert_eq!(circle_of(&topic("x").hash()), Some("x"));
    }
}
