//! Closed circles: what membership costs a node. Prints one JSON object per line, with
//! the goal beside each figure; a program that prints figures, not a timed test (not
//! run in CI).
//!
//! Run: `cargo bench --bench membrane`.
//!
//! 1. `membership_check`: the gate's answer for one received post (what every gossip,
//!    sync and import write asks first), in µs, for a closed circle of 10 and of 10,000
//!    members, for a member's and a stranger's post; and the same through
//!    `Store::would_change` (the whole relay decision) for a stranger's post.
//! 2. `fold` and `ingest_one`: folding a circle's records, and taking one new record
//!    (verify, fold again, write), at 10 and 10,000 members.
//! 3. `catch_up_bytes`: a member offline while 100 changes were made (50 admissions,
//!    50 removals) catches up through the records exchange (request, response, pages):
//!    bytes both ways and round trips, beside the 100 records' own size and beside
//!    sending the whole set.

use std::time::Instant;

use aidmesh::circles::membrane::Membrane;
use aidmesh::clock::now_ms;
use aidmesh::proto::circle::{
    self, closed_name, decode_response, encode_request, encode_response, Action, Membership,
    Record, SignedRecord,
};
use aidmesh::proto::{AuthorKey, Category, Kind, PostId};
use aidmesh::{Draft, Identity, Store};
use anyhow::Result;
use serde_json::json;

/// Goals: a membership check well under the cost of the signature check every post
/// pays anyway (~43 µs here), at any size; catch-up after 100 changes within twice the
/// changes' own bytes plus 4 KB.
const GOAL_CHECK_US: f64 = 1.0;
const GOAL_CATCH_UP_SLACK: usize = 4096;

fn print(bench: &str, metric: &str, value: f64, unit: &str, goal: Option<String>) {
    let mut v = json!({"bench": bench, "metric": metric, "value": value, "unit": unit});
    if let Some(g) = goal {
        v["goal"] = json!(g);
    }
    println!("{v}");
}

fn sign(circle: &str, who: &Identity, at: u64, action: Action) -> Result<SignedRecord> {
    Ok(Record {
        circle: circle.into(),
        signer: who.author(),
        at,
        action,
    }
    .sign(who.signing_key())?)
}

fn member_key(i: u32) -> AuthorKey {
    // Member keys only need to be valid points: derive each from a seed.
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xaa;
    Identity::from_secret(seed).author()
}

/// A founder's circle of `n` members (admission records), times starting at `t0`.
fn admissions(founder: &Identity, circle: &str, n: u32, t0: u64) -> Result<Vec<SignedRecord>> {
    let mut out = vec![sign(
        circle,
        founder,
        t0,
        Action::Admit {
            member: founder.author(),
        },
    )?];
    for i in 1..n {
        out.push(sign(
            circle,
            founder,
            t0 + u64::from(i),
            Action::Admit {
                member: member_key(i),
            },
        )?);
    }
    Ok(out)
}

fn open(dir: &std::path::Path, me: &Identity) -> Result<(Store, Membrane)> {
    let store = Store::open(&dir.join("db"))?;
    let membrane = Membrane::open(&store, me.author(), &[])?;
    Ok((store, membrane))
}

fn checks(n: u32) -> Result<()> {
    let founder = Identity::from_secret([1; 32]);
    let circle = closed_name("riverside", &founder.author());
    let dir = tempfile::tempdir()?;
    let (store, membrane) = open(dir.path(), &founder)?;
    let t0 = now_ms() - 3_600_000;
    let records = admissions(&founder, &circle, n, t0)?;
    let started = Instant::now();
    membrane.ingest(records.clone(), now_ms())?;
    let bulk = started.elapsed();
    print(
        "membrane",
        &format!("ingest_bulk_{n}_members"),
        bulk.as_secs_f64() * 1e3,
        "ms",
        None,
    );
    let gate = store.gate();
    let member = member_key(n / 2);
    let stranger = Identity::from_secret([9; 32]).author();
    let id = PostId([7; 32]);
    for (who, key) in [("member", member), ("stranger", stranger)] {
        let rounds = 1_000_000u32;
        let started = Instant::now();
        let mut passed = 0u32;
        for _ in 0..rounds {
            if gate.check(&circle, std::hint::black_box(&key), &id)
                == aidmesh::store::gate::Verdict::Pass
            {
                passed += 1;
            }
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        assert_eq!(passed > 0, who == "member");
        print(
            "membrane",
            &format!("membership_check_{n}_members_{who}"),
            us,
            "us",
            Some(format!("< {GOAL_CHECK_US} us")),
        );
    }
    // The whole relay decision for a stranger's (valid, signed) post.
    let post = Draft {
        circle: Some(circle.clone()),
        ..Draft::new(Kind::Offer, Category::Food, "Soup")
    }
    .into_post(stranger, now_ms())?;
    let stranger_id = Identity::from_secret([9; 32]);
    let verified = post.sign(stranger_id.signing_key())?.verify(now_ms())?;
    let rounds = 20_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(!store.would_change(&verified)?);
    }
    print(
        "membrane",
        &format!("would_change_{n}_members_stranger"),
        started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds),
        "us",
        None,
    );
    // Folding the circle, and one more record on top.
    let mut verified: Vec<_> = records
        .iter()
        .map(|r| r.verify(now_ms()))
        .collect::<Result<_, _>>()?;
    verified.sort_by_key(|v| v.key());
    let started = Instant::now();
    let m = Membership::fold(&circle, &verified);
    assert_eq!(m.members.len(), n as usize);
    print(
        "membrane",
        &format!("fold_{n}_members"),
        started.elapsed().as_secs_f64() * 1e3,
        "ms",
        None,
    );
    let one = sign(
        &circle,
        &founder,
        now_ms(),
        Action::Admit {
            member: member_key(n + 1),
        },
    )?;
    let started = Instant::now();
    let i = membrane.ingest(vec![one], now_ms())?;
    assert_eq!(i.accepted.len(), 1);
    print(
        "membrane",
        &format!("ingest_one_record_{n}_members"),
        started.elapsed().as_secs_f64() * 1e3,
        "ms",
        None,
    );
    Ok(())
}

fn catch_up(n: u32) -> Result<()> {
    let founder = Identity::from_secret([1; 32]);
    let offline = Identity::from_secret([2; 32]);
    let circle = closed_name("riverside", &founder.author());
    let (d1, d2) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (_s1, online) = open(d1.path(), &founder)?;
    let (_s2, behind) = open(d2.path(), &offline)?;
    let t0 = now_ms() - 3_600_000;
    let mut base = admissions(&founder, &circle, n, t0)?;
    base.push(sign(
        &circle,
        &founder,
        t0 + u64::from(n),
        Action::Admit {
            member: offline.author(),
        },
    )?);
    online.ingest(base.clone(), now_ms())?;
    behind.ingest(base, now_ms())?;
    // 100 changes while `behind` is offline: 50 admissions, 50 removals.
    let t1 = now_ms() - 600_000;
    let mut changes = Vec::new();
    for i in 0..50u32 {
        changes.push(sign(
            &circle,
            &founder,
            t1 + u64::from(i),
            Action::Admit {
                member: member_key(1_000_000 + i),
            },
        )?);
    }
    for i in 0..50u32 {
        let member = if i % 2 == 0 && i / 2 + 1 < n {
            member_key(i / 2 + 1)
        } else {
            member_key(1_000_000 + i)
        };
        changes.push(sign(
            &circle,
            &founder,
            t1 + 100 + u64::from(i),
            Action::Remove {
                member,
                invitees_since: None,
            },
        )?);
    }
    let change_bytes: usize = changes
        .iter()
        .map(|c| c.encode().map_or(0, |w| w.len()))
        .sum();
    let accepted = online.ingest(changes, now_ms())?.accepted.len();
    assert_eq!(accepted, 100, "every change takes effect");
    let mut bytes = 0usize;
    let mut rounds = 0u32;
    loop {
        rounds += 1;
        let request = behind.request(&circle);
        let wire = encode_request(&request)?;
        bytes += wire.len();
        let response = online.respond(Some(offline.author()), request, now_ms())?;
        let wire = encode_response(&response)?;
        bytes += wire.len();
        let circle::Response::Records { records, more } = decode_response(&wire)? else {
            anyhow::bail!("denied");
        };
        let got = behind.ingest(records, now_ms())?.accepted.len();
        if !more || got == 0 || rounds > 64 {
            break;
        }
    }
    let (a, b) = (
        online.membership(&circle).map(|m| m.members.len()),
        behind.membership(&circle).map(|m| m.members.len()),
    );
    assert_eq!(a, b, "the offline member's view is up to date");
    let whole: usize = n as usize * change_bytes / 100;
    print(
        "membrane",
        &format!("catch_up_bytes_100_changes_{n}_members"),
        bytes as f64,
        "bytes",
        Some(format!(
            "<= {} (2 x the changes' {change_bytes} bytes + {GOAL_CATCH_UP_SLACK}); whole set ~{whole}",
            2 * change_bytes + GOAL_CATCH_UP_SLACK
        )),
    );
    print(
        "membrane",
        &format!("catch_up_round_trips_100_changes_{n}_members"),
        f64::from(rounds),
        "round trips",
        None,
    );
    Ok(())
}

fn main() -> Result<()> {
    for n in [10, 10_000] {
        checks(n)?;
    }
    for n in [10, 10_000] {
        catch_up(n)?;
    }
    Ok(())
}
