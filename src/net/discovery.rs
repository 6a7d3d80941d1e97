//! Finding the other members of this node's circles through the Kademlia DHT.
//!
//! gossipsub only forwards a circle's posts through peers subscribed to it, so two
//! members whose only common peer is outside the circle never hear each other. Each
//! node therefore announces each of its circles as a Kademlia *provider record* under
//! [`circle_key`] (blake3 of a domain-separated circle name), and looks up the
//! providers of its circles at start and again while it has fewer than
//! [`WANTED_MEMBERS`] members of a circle connected, dialling a few of them each time.
//! A provider record carries the addresses the announcing node has confirmed as
//! external: public ones (AutoNAT, the operator) and, for a node behind NAT, the
//! relayed ones of its relay slots — so private members are found and reached through
//! their relays. This node re-announces when those addresses change, and libp2p
//! republishes the records every [`PUBLICATION_INTERVAL`], well before their
//! [`RECORD_TTL`]; public nodes store and serve the records as DHT servers.
//!
//! This module is the state machine without I/O: [`Discovery::due`] says which
//! announcements and look-ups to start, [`Discovery::on_providers`] which found
//! members to dial. The network task (one task owns the swarm) does the rest.
//! Everything it remembers is bounded: [`MAX_PROVIDERS`] and [`MAX_SEEN`] per circle,
//! [`DIALS_PER_ROUND`] per look-up round. How it scales and what it reveals:
//! `proto/CIRCLES-DISCOVERY.md`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use libp2p::kad::{QueryId, RecordKey};
use libp2p::PeerId;
use tokio::time::Instant;

/// The domain separator hashed before a circle's name into its DHT key.
pub const KEY_DOMAIN: &[u8] = b"aidmesh/circle-members/v1\0";
/// Members of a circle this node wants connected: gossipsub's mesh low watermark.
pub const WANTED_MEMBERS: usize = super::gossip::MESH_N_LOW;
/// Found members dialled per circle per look-up round.
pub const DIALS_PER_ROUND: usize = 3;
/// Found members remembered per circle (the newest found are kept).
pub const MAX_PROVIDERS: usize = 64;
/// Members seen per circle (for `circle list`), counted up to this many.
pub const MAX_SEEN: usize = 1024;
/// First wait between look-ups of a circle short of members; it doubles up to
/// [`LOOKUP_MAX`].
pub const LOOKUP_MIN: Duration = Duration::from_secs(2);
/// Longest wait between look-ups of a circle short of members.
pub const LOOKUP_MAX: Duration = Duration::from_secs(300);
/// Wait between look-ups of a circle with enough members connected.
pub const LOOKUP_SATISFIED: Duration = Duration::from_secs(1800);
/// A found member is not dialled again sooner than this.
pub const REDIAL_AFTER: Duration = Duration::from_secs(60);
/// How long a provider record lives on the DHT servers that store it.
pub const RECORD_TTL: Duration = Duration::from_secs(48 * 3600);
/// How often libp2p republishes this node's provider records.
pub const PUBLICATION_INTERVAL: Duration = Duration::from_secs(12 * 3600);

/// The DHT key of a circle's member records.
pub fn circle_key(circle: &str) -> RecordKey {
    let mut h = blake3::Hasher::new();
    h.update(KEY_DOMAIN);
    h.update(circle.as_bytes());
    RecordKey::new(h.finalize().as_bytes())
}

/// Something for the network task to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Announce this node as a member of the circle (`start_providing`).
    Announce(String),
    /// Look up the circle's members (`get_providers`).
    Lookup(String),
}

/// What a query was for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    /// An announcement carrying these addresses.
    Announce(Vec<libp2p::Multiaddr>),
    Lookup,
}

/// One circle's discovery state.
struct Circle {
    /// Its DHT key.
    key: RecordKey,
    /// The external addresses the last successful announcement carried; `None` until
    /// one succeeded.
    announced_with: Option<Vec<libp2p::Multiaddr>>,
    /// An announcement is running.
    announcing: bool,
    /// A look-up is running.
    looking: bool,
    /// This node's addresses changed and the new ones are announced: look again at
    /// once (members that found it unreachable before may have given up).
    relook: bool,
    /// When the next look-up may start.
    next_lookup: Instant,
    /// The wait after the next look-up while the circle is short of members.
    backoff: Duration,
    /// Members found in the DHT, newest last, at most [`MAX_PROVIDERS`].
    providers: VecDeque<PeerId>,
    /// When each found member was last dialled (pruned after [`REDIAL_AFTER`]).
    dialled: HashMap<PeerId, Instant>,
    /// Dials left in the current look-up round.
    dials_left: usize,
    /// Peers seen in the circle, at most [`MAX_SEEN`].
    seen: HashSet<PeerId>,
}

impl Circle {
    fn new(name: &str, now: Instant) -> Self {
        Self {
            key: circle_key(name),
            announced_with: None,
            announcing: false,
            looking: false,
            relook: false,
            next_lookup: now,
            backoff: LOOKUP_MIN,
            providers: VecDeque::new(),
            dialled: HashMap::new(),
            dials_left: 0,
            seen: HashSet::new(),
        }
    }

    fn see(&mut self, peer: PeerId) {
        if self.seen.len() < MAX_SEEN {
            self.seen.insert(peer);
        }
    }
}

/// What the network task tells [`Discovery::due`] about the moment.
pub(super) struct Now<'a> {
    /// The time.
    pub at: Instant,
    /// Whether the DHT routing table holds anyone (else queries reach no one).
    pub dht_peers: bool,
    /// This node's confirmed external addresses, sorted: what an announcement carries.
    pub external: &'a [libp2p::Multiaddr],
    /// Members connected, per circle.
    pub connected: &'a dyn Fn(&str) -> usize,
}

/// Counters for the benchmark and the logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Announcements started.
    pub announces: u64,
    /// Look-ups started.
    pub lookups: u64,
    /// Found members dialled.
    pub dials: u64,
}

/// Discovery for all of this node's circles.
pub(super) struct Discovery {
    /// Off: no announcement, no look-up (only membership bookkeeping).
    enabled: bool,
    circles: HashMap<String, Circle>,
    /// Running queries and what they are for.
    queries: HashMap<QueryId, (String, Purpose)>,
    pub(super) counters: Counters,
}

impl Discovery {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            circles: HashMap::new(),
            queries: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// Starts looking after a circle (announce and look up at the next round).
    pub(super) fn join(&mut self, circle: &str, now: Instant) {
        self.circles
            .entry(circle.to_string())
            .or_insert_with(|| Circle::new(circle, now));
    }

    /// Forgets a circle; returns its key, to stop providing it.
    pub(super) fn leave(&mut self, circle: &str) -> Option<RecordKey> {
        self.queries.retain(|_, (c, _)| c != circle);
        self.circles.remove(circle).map(|c| c.key)
    }

    /// A peer showed itself to be in `circle` (subscribed, or found in the DHT).
    pub(super) fn seen(&mut self, circle: &str, peer: PeerId) {
        if let Some(c) = self.circles.get_mut(circle) {
            c.see(peer);
        }
    }

    /// Peers seen in `circle`.
    pub(super) fn seen_count(&self, circle: &str) -> usize {
        self.circles.get(circle).map_or(0, |c| c.seen.len())
    }

    /// The announcements and look-ups to start now.
    pub(super) fn due(&mut self, now: &Now<'_>) -> Vec<Action> {
        if !self.enabled || !now.dht_peers {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (name, c) in &mut self.circles {
            if !c.announcing && c.announced_with.as_deref() != Some(now.external) {
                c.announcing = true;
                out.push(Action::Announce(name.clone()));
            }
            let connected = (now.connected)(name);
            if c.relook && !c.looking {
                c.relook = false;
                c.next_lookup = now.at;
                c.backoff = LOOKUP_MIN;
            }
            if !c.looking && c.next_lookup <= now.at {
                c.looking = true;
                c.dials_left = DIALS_PER_ROUND;
                c.dialled
                    .retain(|_, at| now.at.saturating_duration_since(*at) < REDIAL_AFTER);
                let wait = if connected >= WANTED_MEMBERS {
                    c.backoff = LOOKUP_MIN;
                    LOOKUP_SATISFIED
                } else {
                    let w = c.backoff;
                    c.backoff = (c.backoff * 2).min(LOOKUP_MAX);
                    w
                };
                c.next_lookup = now.at + wait;
                out.push(Action::Lookup(name.clone()));
            } else if connected < WANTED_MEMBERS && c.next_lookup > now.at + LOOKUP_MAX {
                // Was satisfied, lost members: look again soon.
                c.next_lookup = now.at + LOOKUP_MIN;
            }
        }
        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out
    }

    /// The DHT key of a circle this node is in.
    pub(super) fn key(&self, circle: &str) -> Option<RecordKey> {
        self.circles.get(circle).map(|c| c.key.clone())
    }

    /// The query the network task started for an [`Action`] (`None`: it could not
    /// start; the action is retried at a later round). `external` are this node's
    /// external addresses now, which an announcement carries.
    pub(super) fn started(
        &mut self,
        action: &Action,
        query: Option<QueryId>,
        external: &[libp2p::Multiaddr],
    ) {
        let (name, purpose) = match action {
            Action::Announce(n) => (n, Purpose::Announce(external.to_vec())),
            Action::Lookup(n) => (n, Purpose::Lookup),
        };
        match query {
            Some(id) => {
                match purpose {
                    Purpose::Announce(_) => self.counters.announces += 1,
                    Purpose::Lookup => self.counters.lookups += 1,
                }
                self.queries.insert(id, (name.clone(), purpose));
            }
            None => {
                if let Some(c) = self.circles.get_mut(name) {
                    match purpose {
                        Purpose::Announce(_) => c.announcing = false,
                        Purpose::Lookup => c.looking = false,
                    }
                }
            }
        }
    }

    /// An announcement ended (stored on the closest DHT servers, or not).
    pub(super) fn announced(&mut self, query: QueryId, ok: bool) {
        let Some((name, Purpose::Announce(carried))) = self.queries.remove(&query) else {
            return;
        };
        if let Some(c) = self.circles.get_mut(&name) {
            c.announcing = false;
            if ok {
                c.relook = c.announced_with.is_some();
                c.announced_with = Some(carried);
            }
        }
    }

    /// Whether `query` is one of ours, and for which circle.
    pub(super) fn circle_of(&self, query: &QueryId) -> Option<&str> {
        self.queries.get(query).map(|(c, _)| c.as_str())
    }

    /// Members found by a running look-up: returns those to dial now (not this node,
    /// not connected, not dialled lately, within the round's dials).
    pub(super) fn on_providers(
        &mut self,
        query: QueryId,
        found: impl IntoIterator<Item = PeerId>,
        me: &PeerId,
        is_connected: impl Fn(&PeerId) -> bool,
        at: Instant,
    ) -> Vec<PeerId> {
        let Some((name, Purpose::Lookup)) = self.queries.get(&query) else {
            return Vec::new();
        };
        let Some(c) = self.circles.get_mut(name) else {
            return Vec::new();
        };
        let mut dial = Vec::new();
        let mut found: Vec<PeerId> = found.into_iter().filter(|p| p != me).collect();
        found.sort();
        for peer in found {
            c.see(peer);
            if !c.providers.contains(&peer) {
                if c.providers.len() == MAX_PROVIDERS {
                    c.providers.pop_front();
                }
                c.providers.push_back(peer);
            }
            if c.dials_left > 0 && !is_connected(&peer) && !c.dialled.contains_key(&peer) {
                c.dials_left -= 1;
                c.dialled.insert(peer, at);
                dial.push(peer);
            }
        }
        self.counters.dials += dial.len() as u64;
        if !dial.is_empty() {
            // New members to meet: the next look-up may find more soon.
            c.backoff = LOOKUP_MIN;
        }
        dial
    }

    /// A look-up ended.
    pub(super) fn lookup_done(&mut self, query: QueryId) {
        let Some((name, Purpose::Lookup)) = self.queries.remove(&query) else {
            return;
        };
        if let Some(c) = self.circles.get_mut(&name) {
            c.looking = false;
        }
    }

    /// Members found in the DHT for `circle`, oldest first.
    #[cfg(test)]
    fn providers(&self, circle: &str) -> Vec<PeerId> {
        self.circles
            .get(circle)
            .map(|c| c.providers.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Kad = libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>;

    thread_local! {
        // QueryIds cannot be made outside libp2p; borrow real ones from a behaviour.
        static KAD_IDS: std::cell::RefCell<Kad> = {
            let id = PeerId::random();
            std::cell::RefCell::new(Kad::with_config(
                id,
                libp2p::kad::store::MemoryStore::new(id),
                libp2p::kad::Config::new(crate::net::KAD_PROTOCOL),
            ))
        };
    }

    fn qid(d: &mut Discovery, action: &Action) -> QueryId {
        let id = KAD_IDS.with(|k| k.borrow_mut().get_closest_peers(PeerId::random()));
        d.started(action, Some(id), &[]);
        id
    }

    fn now<'a>(
        at: Instant,
        external: &'a [libp2p::Multiaddr],
        connected: &'a dyn Fn(&str) -> usize,
    ) -> Now<'a> {
        Now {
            at,
            dht_peers: true,
            external,
            connected,
        }
    }

    #[test]
    fn keys_are_domain_separated_and_stable() {
        assert_eq!(circle_key("riverside"), circle_key("riverside"));
        assert_ne!(circle_key("riverside"), circle_key("commons"));
        let plain = blake3::hash(b"riverside");
        assert_ne!(circle_key("riverside").as_ref(), plain.as_bytes());
        assert_eq!(circle_key("x").as_ref().len(), 32);
        // Pinned (proto/CIRCLES-DISCOVERY.md): every node must derive the same key.
        assert_eq!(
            hex::encode(circle_key("riverside").as_ref()),
            "c7da9627dacab2684c6cc81a4b758e5ff33edfb235e060fc41678a2847062470"
        );
        assert_eq!(
            hex::encode(circle_key("commons").as_ref()),
            "a428e2466774d556b2b7fa9dad49a5e3774d4e6727fcde91698021b199dd5008"
        );
    }

    #[test]
    fn announces_once_per_address_set_and_backs_off_lookups_while_short() {
        let t0 = Instant::now();
        let mut d = Discovery::new(true);
        d.join("riverside", t0);
        let none = |_: &str| 0;
        let no_addrs: Vec<libp2p::Multiaddr> = vec![];
        // No DHT peers yet: nothing to do.
        let mut idle = now(t0, &no_addrs, &none);
        idle.dht_peers = false;
        assert!(d.due(&idle).is_empty());

        let actions = d.due(&now(t0, &no_addrs, &none));
        assert_eq!(
            actions,
            [
                Action::Announce("riverside".into()),
                Action::Lookup("riverside".into())
            ]
        );
        let announce = qid(&mut d, &actions[0]);
        let lookup = qid(&mut d, &actions[1]);
        // Running: nothing new.
        assert!(d.due(&now(t0 + LOOKUP_MAX, &no_addrs, &none)).is_empty());
        d.announced(announce, true);
        d.lookup_done(lookup);
        // Same addresses: no new announcement; the look-up waits LOOKUP_MIN.
        assert!(d
            .due(&now(t0 + LOOKUP_MIN / 2, &no_addrs, &none))
            .is_empty());
        let a = d.due(&now(t0 + LOOKUP_MIN, &no_addrs, &none));
        assert_eq!(a, [Action::Lookup("riverside".into())]);
        let lookup = qid(&mut d, &a[0]);
        d.lookup_done(lookup);
        // The wait doubled.
        assert!(d
            .due(&now(t0 + LOOKUP_MIN * 2, &no_addrs, &none))
            .is_empty());
        // A relay slot gives a new address: announce again.
        let relayed: Vec<libp2p::Multiaddr> =
            vec!["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit".parse().unwrap()];
        let a = d.due(&now(t0 + LOOKUP_MIN * 2, &relayed, &none));
        assert_eq!(a, [Action::Announce("riverside".into())]);
        // A failed start is retried.
        d.started(&a[0], None, &relayed);
        let a = d.due(&now(t0 + LOOKUP_MIN * 2, &relayed, &none));
        assert_eq!(a, [Action::Announce("riverside".into())]);
        let id = KAD_IDS.with(|k| k.borrow_mut().get_closest_peers(PeerId::random()));
        d.started(&a[0], Some(id), &relayed);
        d.announced(id, true);
        // Announced with new addresses: look again at once.
        let a = d.due(&now(t0 + LOOKUP_MIN * 2, &relayed, &none));
        assert_eq!(a, [Action::Lookup("riverside".into())]);
        let lookup = qid(&mut d, &a[0]);
        d.lookup_done(lookup);
        // Enough members: the next look-up is far away.
        let plenty = |_: &str| WANTED_MEMBERS;
        let a = d.due(&now(t0 + LOOKUP_MAX, &relayed, &plenty));
        assert_eq!(a, [Action::Lookup("riverside".into())]);
        let lookup = qid(&mut d, &a[0]);
        d.lookup_done(lookup);
        assert!(d
            .due(&now(t0 + LOOKUP_MAX * 2, &relayed, &plenty))
            .is_empty());
        // Lost them: soon again.
        assert!(d.due(&now(t0 + LOOKUP_MAX * 2, &relayed, &none)).is_empty());
        let a = d.due(&now(t0 + LOOKUP_MAX * 2 + LOOKUP_MIN, &relayed, &none));
        assert_eq!(a, [Action::Lookup("riverside".into())]);

        assert!(d.leave("riverside").is_some());
        assert!(d.due(&now(t0 + LOOKUP_MAX * 9, &relayed, &none)).is_empty());
    }

    #[test]
    fn dials_a_few_new_members_per_round_and_remembers_a_bounded_number() {
        let t0 = Instant::now();
        let me = PeerId::random();
        let mut d = Discovery::new(true);
        d.join("riverside", t0);
        let none = |_: &str| 0;
        let a = d.due(&now(t0, &[], &none));
        let lookup = qid(&mut d, &a[1]);
        let many: Vec<PeerId> = (0..MAX_PROVIDERS + 10).map(|_| PeerId::random()).collect();
        let connected = many[0];
        let dial = d.on_providers(
            lookup,
            many.iter().copied().chain([me]),
            &me,
            |p| *p == connected,
            t0,
        );
        assert_eq!(dial.len(), DIALS_PER_ROUND);
        assert!(!dial.contains(&me) && !dial.contains(&connected));
        assert_eq!(d.providers("riverside").len(), MAX_PROVIDERS);
        assert_eq!(d.seen_count("riverside"), many.len());
        // The same round dials no more.
        assert!(d
            .on_providers(lookup, many.iter().copied(), &me, |_| false, t0)
            .is_empty());
        d.lookup_done(lookup);
        // The next round does not redial the same members soon.
        let a = d.due(&now(t0 + LOOKUP_MIN, &[], &none));
        let lookup = qid(&mut d, &a[0]);
        let again = d.on_providers(
            lookup,
            dial.iter().copied(),
            &me,
            |_| false,
            t0 + LOOKUP_MIN,
        );
        assert!(again.is_empty());
        // An unknown query finds nothing to dial.
        let stray = qid(&mut Discovery::new(true), &Action::Lookup("x".into()));
        assert!(d
            .on_providers(stray, many.iter().copied(), &me, |_| false, t0)
            .is_empty());
    }

    #[test]
    fn disabled_does_nothing() {
        let t0 = Instant::now();
        let mut d = Discovery::new(false);
        d.join("riverside", t0);
        assert!(d.due(&now(t0, &[], &|_: &str| 0)).is_empty());
        d.seen("riverside", PeerId::random());
        assert_eq!(d.seen_count("riverside"), 1);
    }
}
