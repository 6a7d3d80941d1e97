//! What flags take beyond clap's own parsing: places (`--location`, `--near`), tags,
//! lifetimes and multiaddrs, each read the way a person types them, with a `note:`
//! when what was typed is read in a way worth knowing.

use aidmesh::api::json::parse_duration_secs;
use libp2p::Multiaddr;

use super::note;

/// What `--location` and `--near` say in `--help`.
pub const PLACE_HELP: &str = "A geohash (any case) or LAT,LON. A geohash names a box on the map, finer with each character: 5 characters are about 5 km across, 6 about 1 km (aidmesh keeps at most 6, for privacy). To find yours, give LAT,LON as any map app shows them for a point (e.g. 52.5219,13.4132) and aidmesh rounds it to the ~1 km cell around it.";

/// A place flag: the geohash it stands for, with a note when it was rounded, cut, or
/// looks like a word typed by mistake.
pub fn place(flag: &str, text: &str) -> anyhow::Result<String> {
    let p = aidmesh::places::parse(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    if let Some(n) = &p.note {
        note(&format!("--{flag}: {n}"));
    }
    Ok(p.geohash)
}

/// Tags as the rules want them, with a note for each one rewritten.
pub fn tags(typed: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for t in typed {
        let n = aidmesh::draft::normalise_tag(&t);
        if n.is_empty() {
            anyhow::bail!(
                "--tag {t:?}: nothing left of it as a tag (tags are lowercase letters a-z, digits and -)"
            );
        }
        if n != t {
            note(&format!(
                "tag {t:?} is saved as {n:?} (tags are lowercase letters a-z, digits and -)"
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// A lifetime flag (`3d`, `12h`), checked here so a mistake never reaches the node.
pub fn lifetime(flag: &str, text: &str) -> anyhow::Result<()> {
    parse_duration_secs(text)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// clap's parser for multiaddr flags: says the right form when given `IP:PORT`.
pub fn multiaddr(text: &str) -> Result<Multiaddr, String> {
    if let Ok(a) = text.parse::<Multiaddr>() {
        return Ok(a);
    }
    if let Ok(sa) = text.parse::<std::net::SocketAddr>() {
        let ip = match sa.ip() {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
        };
        let port = sa.port();
        return Err(format!(
            "this is an IP:port; aidmesh takes a multiaddr here: {ip}/tcp/{port} \
             (or {ip}/udp/{port}/quic-v1 for QUIC)"
        ));
    }
    Err("not a multiaddr; they look like /ip4/0.0.0.0/tcp/7651 or /dns4/example.org/tcp/7651/p2p/12D3KooW…".into())
}
