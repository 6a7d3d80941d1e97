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

use std::path::Path;

use aidmesh_proto::rules::{check_slug, MAX_CIRCLE_CHARS};
use aidmesh_proto::Field;
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
}

/// Checks a circle name against the rules every post's circle follows.
pub fn check_name(name: &str) -> Result<(), Error> {
    check_slug(Field::Circle, name, MAX_CIRCLE_CHARS).map_err(|e| Error::Name {
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
