//! Circle membership: which circles this node is in, kept in `config.toml`
//! (`network.circles`), and what a person sees of each one.
//!
//! A running node changes its membership through [`crate::NodeHandle::join_circle`]
//! and [`crate::NodeHandle::leave_circle`], which act at once (subscribe or
//! unsubscribe, announce or stop announcing in the DHT, drop a left circle's posts)
//! and write the file. With no node running, the CLI calls [`join`] and [`leave`] here,
//! which only write the file (and [`leave`]'s caller drops the posts from the store on
//! disk). Either way the file is changed through [`crate::config::update_network`], so
//! the rest of it, comments included, stays as it was.
//!
//! Finding the other members of a circle is the network's job
//! (`net::discovery`: Kademlia provider records per circle).
//!
//! Closed circles (`name~id`) and the moderation a node follows are in [`membrane`]:
//! signed records, folded into the membership every member's node enforces
//! (`proto/CIRCLES.md`).

pub mod membrane;

use std::path::Path;

use aidmesh_proto::rules::check_circle;
use serde::{Deserialize, Serialize};

use crate::config;

/// Membership changes that cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A circle name breaks the rules.
    #[error(
        "bad circle name {name:?}: {problem} (circle names are 1-48 characters a-z, 0-9 and -)"
    )]
    Name {
        /// What was given.
        name: String,
        /// What is wrong.
        problem: aidmesh_proto::Problem,
    },
    /// The node is not in this circle (posting, inviting, leaving).
    #[error(
        "this node is not in circle {circle:?}; join it first with `aidmesh circle join {circle}`"
    )]
    NotMember {
        /// The circle.
        circle: String,
    },
    /// A node must stay in at least one circle.
    #[error("circle {circle:?} is this node's only circle; join another one before leaving it")]
    LastCircle {
        /// The circle.
        circle: String,
    },
    /// `config.toml` could not be read or written.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// Only the founder or a moderator may do this.
    #[error("this node is not a moderator of circle {circle}; only its founder or a moderator the founder named can admit, remove or invite")]
    NotModerator {
        /// The circle.
        circle: String,
    },
    /// Only the founder names moderators.
    #[error("only the founder of circle {circle} can name moderators")]
    NotFounder {
        /// The circle.
        circle: String,
    },
    /// No circle of this node has this name.
    #[error("this node is in no circle called {name:?}; `aidmesh circle list` shows its circles")]
    UnknownCircle {
        /// What was given.
        name: String,
    },
    /// A short name that fits several circles.
    #[error("{name:?} could be any of {}; give the full name", matches.join(", "))]
    Ambiguous {
        /// What was given.
        name: String,
        /// The circles it fits.
        matches: Vec<String>,
    },
    /// A membership command for an open circle.
    #[error("circle {circle} is open: anyone can join it, so it has no members to admit or remove (make a closed one with `aidmesh circle create NAME --closed`)")]
    NotClosed {
        /// The circle.
        circle: String,
    },
    /// The change would do nothing (already a member, not a member, the founder).
    #[error("{0}")]
    NoEffect(String),
    /// A record this node made is refused by the rules.
    #[error("cannot make this record: {0}")]
    Record(#[from] aidmesh_proto::circle::RecordError),
    /// The membership records could not be read or written.
    #[error(transparent)]
    Membrane(#[from] membrane::Error),
}

/// The full name of the circle `name` stands for among `circles` (the node's): the
/// exact name, else the one closed circle `name~...` (a prefix of its id may follow
/// the `~`). Plain-sentence errors for none and for several.
pub fn resolve(circles: &[String], name: &str) -> Result<String, Error> {
    if circles.iter().any(|c| c == name) {
        return Ok(name.to_string());
    }
    let prefix = if name.contains(aidmesh_proto::circle::CLOSED_SEPARATOR) {
        name.to_string()
    } else {
        format!("{name}{}", aidmesh_proto::circle::CLOSED_SEPARATOR)
    };
    let matches: Vec<String> = circles
        .iter()
        .filter(|c| c.starts_with(&prefix))
        .cloned()
        .collect();
    match matches.len() {
        0 => Err(Error::UnknownCircle {
            name: name.to_string(),
        }),
        1 => Ok(matches[0].clone()),
        _ => Err(Error::Ambiguous {
            name: name.to_string(),
            matches,
        }),
    }
}

/// A closed circle's members as `circle members` shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member's peer id.
    pub peer_id: String,
    /// Who admitted it (its own id for the founder).
    pub admitted_by: String,
    /// When, ms since the epoch.
    pub admitted_at: u64,
    /// Founder or moderator.
    pub role: String,
}

/// A closed circle's membership as the API gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// The circle's full name.
    pub circle: String,
    /// The founder's peer id, once a record of the founder is known.
    pub founder: Option<String>,
    /// Current members.
    pub members: Vec<MemberInfo>,
    /// Peers removed.
    pub removed: Vec<String>,
    /// Records this node holds.
    pub records: usize,
}

impl Members {
    /// From a fold.
    pub fn of(circle: &str, m: Option<&aidmesh_proto::circle::Membership>, records: usize) -> Self {
        let pid = crate::identity::author_text;
        let Some(m) = m else {
            return Self {
                circle: circle.to_string(),
                founder: None,
                members: Vec::new(),
                removed: Vec::new(),
                records,
            };
        };
        Self {
            circle: circle.to_string(),
            founder: m.founder.as_ref().map(pid),
            members: m
                .members
                .iter()
                .map(|(k, a)| MemberInfo {
                    peer_id: pid(k),
                    admitted_by: pid(&a.by),
                    admitted_at: a.at,
                    role: if Some(*k) == m.founder {
                        "founder".into()
                    } else if m.moderators.contains(k) {
                        "moderator".into()
                    } else {
                        "member".into()
                    },
                })
                .collect(),
            removed: m.removed.keys().map(pid).collect(),
            records,
        }
    }
}

/// Checks a circle name against the rules every post's circle follows.
pub fn check_name(name: &str) -> Result<(), Error> {
    check_circle(name).map_err(|e| Error::Name {
        name: name.to_string(),
        problem: e.problem,
    })
}

/// Adds `circle` to `network.circles` in the config file at `path`. Returns whether it
/// was new there.
pub fn join(path: &Path, circle: &str) -> Result<bool, Error> {
    check_name(circle)?;
    Ok(config::update_network(path, |lists| {
        if lists.circles.iter().any(|c| c == circle) {
            return false;
        }
        lists.circles.push(circle.to_string());
        true
    })?)
}

/// Removes `circle` from `network.circles` in the config file at `path`. Returns
/// whether it was there; leaving the only circle is refused.
pub fn leave(path: &Path, circle: &str) -> Result<bool, Error> {
    check_name(circle)?;
    let current = config::Config::load(path)?;
    if !current.network.circles.iter().any(|c| c == circle) {
        return Ok(false);
    }
    if current.network.circles.len() == 1 {
        return Err(Error::LastCircle {
            circle: circle.to_string(),
        });
    }
    Ok(config::update_network(path, |lists| {
        lists.circles.retain(|c| c != circle);
        true
    })?)
}

/// What the warning of a cut-off circle says.
pub fn cut_off_warning(circle: &str) -> String {
    format!(
        "circle {circle}: 0 members connected — invite someone or add a bootstrap peer in this circle"
    )
}

/// One circle as `circle list` and `GET /api/v1/circles` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircleInfo {
    /// Its name.
    pub circle: String,
    /// Connected peers subscribed to the circle (`None`: no node is running).
    pub members_connected: Option<u64>,
    /// Distinct peers seen in the circle since the node started: subscribed on a
    /// connection or announced in the DHT (`None`: no node is running).
    pub members_seen: Option<u64>,
    /// Distinct authors of the circle's stored posts.
    pub authors: u64,
    /// Stored posts of the circle, tombstones included.
    pub posts: u64,
    /// The newest post change stored, ms since the epoch.
    pub last_activity: Option<u64>,
    /// Whether the node is running and has no member of the circle connected.
    pub cut_off: bool,
}

impl CircleInfo {
    /// A circle as the store on disk knows it, with no node running.
    pub fn offline(circle: &str, store: Option<&crate::Store>) -> Self {
        let s = store.map(|s| s.circle_summary(circle)).unwrap_or_default();
        Self {
            circle: circle.to_string(),
            members_connected: None,
            members_seen: None,
            authors: s.authors,
            posts: s.posts,
            last_activity: s.last_activity,
            cut_off: false,
        }
    }
}

/// What leaving a circle did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The circle.
    pub circle: String,
    /// Whether the node was in it.
    pub was_member: bool,
    /// Posts of the circle deleted from the store.
    pub removed_posts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_leave_edit_the_file_and_refuse_what_cannot_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# keep me\n[network]\nmdns = false\n").unwrap();
        assert!(join(&path, "riverside").unwrap());
        assert!(!join(&path, "riverside").unwrap());
        assert!(matches!(join(&path, "Bad Name"), Err(Error::Name { .. })));
        let c = config::Config::load(&path).unwrap();
        assert_eq!(c.network.circles, ["commons", "riverside"]);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("# keep me"));
        assert!(leave(&path, "commons").unwrap());
        assert!(!leave(&path, "commons").unwrap());
        assert!(matches!(
            leave(&path, "riverside"),
            Err(Error::LastCircle { .. })
        ));
        let c = config::Config::load(&path).unwrap();
        assert_eq!(c.network.circles, ["riverside"]);
        assert!(!c.network.mdns);
    }
}
