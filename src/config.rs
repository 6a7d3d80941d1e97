//! Node settings: embedded defaults, overridden by `<data-dir>/config.toml`, overridden
//! by command-line flags. A missing file means defaults; a file that does not parse,
//! has an unknown key or a bad value is an error that names the file and the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aidmesh_proto::rules::{check_circle, DEFAULT_CIRCLE};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// The default TCP and UDP (QUIC) port.
pub const DEFAULT_PORT: u16 = 7651;
/// How long a connection that no protocol needs stays open.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// How often expired posts are swept from the store.
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 60;
/// Smallest sled cache a node runs with (MiB).
pub const MIN_CACHE_MB: u64 = 4;
/// Largest sled cache a node runs with (MiB): 64 GiB.
pub const MAX_CACHE_MB: u64 = 65_536;

/// Problems with the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file exists but could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("bad config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (with line and key).
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write config {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value is out of range.
    #[error("bad config value {key}: {message}")]
    Invalid {
        /// The key, e.g. `network.circles`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Everything `config.toml` can set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Peer-to-peer settings.
    pub network: NetworkConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Circuit relay service for nodes behind NAT (`[relay]`).
    pub relay: RelayConfig,
    /// `[messages]`: what strangers and holding may cost this node.
    pub messages: crate::messages::limits::Config,
}

/// Peer-to-peer settings (`[network]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Addresses to listen on; default TCP and QUIC on all interfaces, port 7651.
    pub listen: Vec<Multiaddr>,
    /// Peers to join the network through.
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the local network by multicast DNS.
    pub mdns: bool,
    /// Circles to subscribe to.
    pub circles: Vec<String>,
    /// Discover peers through the Kademlia DHT. Off, the node only talks to its
    /// bootstrap peers, its address book, mDNS finds and whoever dials it.
    pub kademlia: bool,
    /// Answer Kademlia queries for others: `true` on a public node (VPS), `false` to
    /// never, unset to decide by confirmed reachability.
    pub kademlia_server: Option<bool>,
    /// Announce this node's circles in the DHT and look up their other members
    /// (needs `kademlia`). Off, circle members meet only through bootstrap peers,
    /// invites, mDNS and the address book.
    pub circle_discovery: bool,
    /// Seconds a connection no protocol needs stays open.
    pub idle_timeout_secs: u64,
    /// Addresses others can reach this node on, for a node that knows them (a VPS
    /// with a public IP, a port forward): announced at once, before AutoNAT confirms.
    pub external_addresses: Vec<Multiaddr>,
    /// AutoNAT only counts globally routable addresses. Set `false` on a community
    /// mesh or campus network whose members reach each other on private addresses
    /// (10.x, 192.168.x).
    pub autonat_only_global_ips: bool,
    /// `auto` (default): AutoNAT decides. `private`: always hold relay slots (for a
    /// NAT AutoNAT misjudges, e.g. some mobile networks). `public`: never (a node
    /// known to be reachable).
    pub reachability: ReachabilityMode,
    /// Keys whose hides and blocklists this node follows (`aidmesh follow-moderation`):
    /// their signed moderation applies to what it stores, relays and shows. Nobody
    /// else's does.
    pub follow_moderation: Vec<PeerId>,
}

/// Whether reachability is measured or fixed by the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReachabilityMode {
    /// AutoNAT decides.
    #[default]
    Auto,
    /// Treat the node as publicly reachable.
    Public,
    /// Treat the node as behind NAT: hold relay slots.
    Private,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            bootstrap: Vec::new(),
            mdns: true,
            kademlia: true,
            circles: vec![DEFAULT_CIRCLE.to_string()],
            kademlia_server: None,
            circle_discovery: true,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            external_addresses: Vec::new(),
            autonat_only_global_ips: true,
            reachability: ReachabilityMode::Auto,
            follow_moderation: Vec::new(),
        }
    }
}

/// Circuit relay v2 service (`[relay]`): a public node forwards connections to nodes
/// behind NAT, within these limits. The defaults are libp2p's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Serve as a relay (`aidmesh run --relay`). Needs a known external address.
    pub serve: bool,
    /// Reservations held at once, all peers.
    pub max_reservations: usize,
    /// Reservations one peer may hold.
    pub max_reservations_per_peer: usize,
    /// Seconds a reservation lasts before the client must renew it.
    pub reservation_duration_secs: u64,
    /// Relayed connections open at once, all peers.
    pub max_circuits: usize,
    /// Relayed connections one peer may have open.
    pub max_circuits_per_peer: usize,
    /// Seconds one relayed connection may last.
    pub max_circuit_duration_secs: u64,
    /// Bytes one relayed connection may carry, both directions.
    pub max_circuit_bytes: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            serve: false,
            max_reservations: 128,
            max_reservations_per_peer: 4,
            reservation_duration_secs: 3600,
            max_circuits: 16,
            max_circuits_per_peer: 4,
            max_circuit_duration_secs: 120,
            max_circuit_bytes: 128 * 1024,
        }
    }
}

/// Store settings (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Seconds between sweeps of expired posts.
    pub sweep_interval_secs: u64,
    /// MiB of sled's page cache: recently read posts kept in memory. Less makes the
    /// node smaller and queries that load many posts slower.
    pub cache_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            sweep_interval_secs: DEFAULT_SWEEP_INTERVAL_SECS,
            cache_mb: crate::store::CACHE_BYTES >> 20,
        }
    }
}

/// TCP and QUIC on every interface, port 7651.
pub fn default_listen() -> Vec<Multiaddr> {
    [
        format!("/ip4/0.0.0.0/tcp/{DEFAULT_PORT}"),
        format!("/ip4/0.0.0.0/udp/{DEFAULT_PORT}/quic-v1"),
    ]
    .iter()
    .filter_map(|a| a.parse().ok())
    .collect()
}

impl Config {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let config: Config = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), Error> {
        let n = &self.network;
        if n.circles.is_empty() {
            return Err(Error::Invalid {
                key: "network.circles",
                message: "at least one circle is needed".into(),
            });
        }
        for c in &n.circles {
            check_circle(c).map_err(|e| Error::Invalid {
                key: "network.circles",
                message: format!("{c:?}: {}", e.problem),
            })?;
        }
        if n.listen.is_empty() {
            return Err(Error::Invalid {
                key: "network.listen",
                message: "at least one listen address is needed".into(),
            });
        }
        if n.idle_timeout_secs == 0 {
            return Err(Error::Invalid {
                key: "network.idle_timeout_secs",
                message: "must be at least 1".into(),
            });
        }
        if !(MIN_CACHE_MB..=MAX_CACHE_MB).contains(&self.store.cache_mb) {
            return Err(Error::Invalid {
                key: "store.cache_mb",
                message: format!("must be between {MIN_CACHE_MB} and {MAX_CACHE_MB}"),
            });
        }
        for a in &n.external_addresses {
            use libp2p::multiaddr::Protocol;
            let bad = a.iter().find_map(|p| match p {
                Protocol::P2p(_) | Protocol::P2pCircuit => {
                    Some("give the address without /p2p/... or /p2p-circuit")
                }
                Protocol::Ip4(ip) if ip.is_unspecified() => {
                    Some("0.0.0.0 is not an address others can dial")
                }
                Protocol::Ip6(ip) if ip.is_unspecified() => {
                    Some(":: is not an address others can dial")
                }
                _ => None,
            });
            if let Some(problem) = bad {
                return Err(Error::Invalid {
                    key: "network.external_addresses",
                    message: format!("{a}: {problem}"),
                });
            }
        }
        let r = &self.relay;
        for (key, value) in [
            ("relay.max_reservations", r.max_reservations as u64),
            (
                "relay.max_reservations_per_peer",
                r.max_reservations_per_peer as u64,
            ),
            (
                "relay.reservation_duration_secs",
                r.reservation_duration_secs,
            ),
            ("relay.max_circuits", r.max_circuits as u64),
            (
                "relay.max_circuits_per_peer",
                r.max_circuits_per_peer as u64,
            ),
            (
                "relay.max_circuit_duration_secs",
                r.max_circuit_duration_secs,
            ),
            ("relay.max_circuit_bytes", r.max_circuit_bytes),
        ] {
            if value == 0 {
                return Err(Error::Invalid {
                    key,
                    message: "must be at least 1".into(),
                });
            }
        }
        // libp2p panics past these.
        for (key, secs) in [
            (
                "relay.reservation_duration_secs",
                r.reservation_duration_secs,
            ),
            (
                "relay.max_circuit_duration_secs",
                r.max_circuit_duration_secs,
            ),
        ] {
            if secs > u64::from(u32::MAX) {
                return Err(Error::Invalid {
                    key,
                    message: format!("at most {} seconds", u32::MAX),
                });
            }
        }
        if self.store.sweep_interval_secs == 0 {
            return Err(Error::Invalid {
                key: "store.sweep_interval_secs",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// How long idle connections stay open.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.network.idle_timeout_secs)
    }
}

/// The `[network]` lists a change to `config.toml` may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLists {
    /// `network.circles`.
    pub circles: Vec<String>,
    /// `network.bootstrap`.
    pub bootstrap: Vec<Multiaddr>,
    /// `network.follow_moderation`.
    pub follow_moderation: Vec<PeerId>,
}

/// Changes the circles and bootstrap peers in the config file at `path` with `change`
/// (which says whether it changed anything), keeping the rest of the file, comments
/// included, as it is. Only the lists that changed are rewritten. The file is replaced
/// atomically, and only if the result is a valid config; returns whether it was
/// written.
pub fn update_network(
    path: &Path,
    change: impl FnOnce(&mut NetworkLists) -> bool,
) -> Result<bool, Error> {
    let current = Config::load(path)?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let parse_err = |e: toml_edit::TomlError| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(parse_err)?;
    let before = NetworkLists {
        circles: current.network.circles.clone(),
        bootstrap: current.network.bootstrap.clone(),
        follow_moderation: current.network.follow_moderation.clone(),
    };
    let mut lists = before.clone();
    if !change(&mut lists) || lists == before {
        return Ok(false);
    }
    let network = doc
        .entry("network")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .ok_or_else(|| Error::Invalid {
            key: "network",
            message: "is not a table".into(),
        })?;
    if lists.circles != before.circles {
        network.insert(
            "circles",
            toml_edit::value(lists.circles.iter().collect::<toml_edit::Array>()),
        );
    }
    if lists.bootstrap != before.bootstrap {
        network.insert(
            "bootstrap",
            toml_edit::value(
                lists
                    .bootstrap
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<toml_edit::Array>(),
            ),
        );
    }
    if lists.follow_moderation != before.follow_moderation {
        network.insert(
            "follow_moderation",
            toml_edit::value(
                lists
                    .follow_moderation
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<toml_edit::Array>(),
            ),
        );
    }
    let out = doc.to_string();
    let written: Config = toml::from_str(&out).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    written.validate()?;
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let tmp = path.with_extension(format!("toml.tmp-{}", std::process::id()));
    std::fs::write(&tmp, out).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_network_keeps_comments_and_rewrites_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "# mine\n[network]\n# the peers\nbootstrap = [] # none yet\nmdns = false\n",
        )
        .unwrap();
        let wrote = update_network(&path, |l| {
            l.circles.push("riverside".into());
            true
        })
        .unwrap();
        assert!(wrote);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("# none yet"),
            "{text}"
        );
        let c = Config::load(&path).unwrap();
        assert_eq!(c.network.circles, ["commons", "riverside"]);
        assert!(!c.network.mdns);
        // No change, no write; an invalid result is refused and changes nothing.
        assert!(!update_network(&path, |_| true).unwrap());
        let e = update_network(&path, |l| {
            l.circles.clear();
            true
        })
        .unwrap_err();
        assert!(e.to_string().contains("network.circles"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    fn load(text: &str) -> Result<Config, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(&dir.path().join("config.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.network.listen.len(), 2);
        assert_eq!(c.network.circles, ["commons"]);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c =
            load("[network]\nbootstrap = [\"/ip4/10.0.0.1/tcp/7651\"]\nmdns = false\n").unwrap();
        assert_eq!(c.network.bootstrap.len(), 1);
        assert!(!c.network.mdns);
        assert_eq!(c.network.circles, ["commons"]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let e = load("[network]\nmdsn = true\n").unwrap_err().to_string();
        assert!(e.contains("mdsn"), "{e}");
        let e = load("[network]\nbootstrap = [\"not an addr\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bootstrap"), "{e}");
        let e = load("[network]\ncircles = [\"Bad Circle\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("network.circles"), "{e}");
        let e = load("[network]\nexternal_addresses = [\"/ip4/0.0.0.0/tcp/7651\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("network.external_addresses"), "{e}");
        let e = load("[relay]\nmax_circuits = 0\n").unwrap_err().to_string();
        assert!(e.contains("relay.max_circuits"), "{e}");
        let e = load("[relay]\nmax_circuit_duration_secs = 99999999999\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("relay.max_circuit_duration_secs"), "{e}");
        let e = load("[store]\ncache_mb = 0\n").unwrap_err().to_string();
        assert!(e.contains("store.cache_mb"), "{e}");
        assert_eq!(load("[store]\ncache_mb = 32\n").unwrap().store.cache_mb, 32);
        let e = load("this is = = not toml").unwrap_err().to_string();
        assert!(e.contains("bad config"), "{e}");
    }
}
