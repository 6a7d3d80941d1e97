//! Joining through an invite code: reading it into a circle and bootstrap addresses,
//! and recording those in `config.toml` so the node keeps them across restarts.

use std::path::Path;

use aidmesh_proto::invite::{Invite, InviteError};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use crate::config;
#[cfg(test)]
use crate::config::Config;

/// Why an invite could not be used. Nothing has been changed when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The code itself is bad (foreign, truncated, mistyped, another version).
    #[error(transparent)]
    Code(#[from] InviteError),
    /// An address in the code is not a multiaddr ending in `/p2p/<peer id>`.
    #[error("invite code holds a bad address: {0}")]
    Address(String),
    /// The existing config is unreadable or invalid, or could not be written.
    #[error(transparent)]
    Config(#[from] config::Error),
}

/// What an invite asks of the node: join a circle through some peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joining {
    /// The circle.
    pub circle: String,
    /// Addresses of the inviting node, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// For a closed circle: the moderator's single-use voucher the node redeems.
    pub voucher: Option<aidmesh_proto::circle::SignedRecord>,
}

/// Reads and checks a code.
pub fn read(code: &str) -> Result<Joining, Error> {
    let invite = Invite::decode(code)?;
    let mut bootstrap = Vec::with_capacity(invite.addrs.len());
    for bytes in invite.addrs {
        let addr =
            Multiaddr::try_from(bytes.into_vec()).map_err(|e| Error::Address(e.to_string()))?;
        if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
            return Err(Error::Address(format!(
                "{addr} does not end in /p2p/<peer id>"
            )));
        }
        bootstrap.push(addr);
    }
    Ok(Joining {
        circle: invite.circle,
        bootstrap,
        voucher: invite.voucher,
    })
}

/// Adds the circle and bootstrap peers to the config file at `path`, keeping the rest
/// of the file (comments included) as it is. Returns whether anything was new. The
/// file is replaced atomically, and only if the result is a valid config.
pub fn save(path: &Path, joining: &Joining) -> Result<bool, Error> {
    Ok(config::update_network(path, |lists| {
        if !lists.circles.contains(&joining.circle) {
            lists.circles.push(joining.circle.clone());
        }
        for addr in &joining.bootstrap {
            if !lists.bootstrap.contains(addr) {
                lists.bootstrap.push(addr.clone());
            }
        }
        true
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(circle: &str, addrs: &[&str]) -> String {
        Invite::new(
            circle,
            addrs
                .iter()
                .map(|a| a.parse::<Multiaddr>().unwrap().to_vec()),
        )
        .encode()
        .unwrap()
    }

    const PEER: &str =
        "/ip4/10.0.0.1/tcp/7651/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn save_adds_circle_and_peers_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# my settings\n[network]\nmdns = false\n").unwrap();
        let joining = read(&code("riverside", &[PEER])).unwrap();
        assert!(save(&path, &joining).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# my settings"), "{text}");
        let c = Config::load(&path).unwrap();
        assert!(!c.network.mdns);
        assert_eq!(c.network.circles, ["commons", "riverside"]);
        assert_eq!(c.network.bootstrap, [PEER.parse::<Multiaddr>().unwrap()]);
        // Joining again changes nothing.
        assert!(!save(&path, &joining).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn bad_codes_and_bad_configs_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert!(matches!(read("nonsense"), Err(Error::Code(_))));
        let no_peer = code("riverside", &["/ip4/10.0.0.1/tcp/7651"]);
        assert!(matches!(read(&no_peer), Err(Error::Address(_))));
        assert!(!path.exists());

        std::fs::write(&path, "[network]\nmdsn = true\n").unwrap();
        let joining = read(&code("riverside", &[PEER])).unwrap();
        assert!(matches!(save(&path, &joining), Err(Error::Config(_))));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[network]\nmdsn = true\n"
        );
    }
}
