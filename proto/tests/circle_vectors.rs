//! Golden vectors of closed circles: `proto/vectors/circles.json` holds a closed
//! circle's full name, membership records signed with fixed keys (every encoding, its
//! hash and place in the order), whether each takes effect in the fold, the
//! membership they fold into, a catch-up request, and invalid records with the error
//! each must give. If the format or the convergence rule drifts, this test fails.
//!
//! To rewrite the file after a deliberate change:
//! `AIDMESH_BLESS=1 cargo test -p aidmesh-proto --test circle_vectors`.

use aidmesh_proto::circle::{
    checkpoints, closed_name, encode_request, Action, Membership, OrderKey, Record, Request,
    SignedRecord, VerifiedRecord, VoucherId,
};
use aidmesh_proto::{AuthorKey, SigningKey};
use serde::{Deserialize, Serialize};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/circles.json");
/// 2026-01-02T00:00:00Z.
const NOW: u64 = 1_767_312_000_000;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vectors {
    about: String,
    now_ms: u64,
    founder_seed: String,
    founder: String,
    name: String,
    full_name: String,
    keys: Vec<Key>,
    records: Vec<Valid>,
    members: Vec<String>,
    moderators: Vec<String>,
    removed: Vec<String>,
    catch_up_request: String,
    invalid: Vec<Invalid>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Key {
    who: String,
    seed: String,
    key: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Valid {
    name: String,
    record: Record,
    record_bytes: String,
    signed_record: String,
    hash: String,
    rank: u8,
    /// Whether it takes effect, folding all records in order.
    effective: bool,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Invalid {
    name: String,
    signed_record: String,
    error: String,
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn author(k: &SigningKey) -> AuthorKey {
    AuthorKey(k.verifying_key().to_bytes())
}

fn sign(circle: &str, k: &SigningKey, at: u64, action: Action) -> SignedRecord {
    Record {
        circle: circle.into(),
        signer: author(k),
        at,
        action,
    }
    .sign(k)
    .unwrap()
}

fn generate() -> Vectors {
    let (f, b, c, d) = (key(1), key(2), key(3), key(4));
    let circle = closed_name("riverside", &author(&f));
    let t = |i: u64| NOW - 600_000 + i * 1000;
    let voucher = sign(
        &circle,
        &b,
        t(4),
        Action::Voucher {
            id: VoucherId([5; 16]),
            expires_at: t(100),
        },
    );
    let named: Vec<(&str, SignedRecord)> = vec![
        (
            "founder admits itself",
            sign(&circle, &f, t(1), Action::Admit { member: author(&f) }),
        ),
        (
            "founder admits B",
            sign(&circle, &f, t(2), Action::Admit { member: author(&b) }),
        ),
        (
            "founder makes B a moderator",
            sign(&circle, &f, t(3), Action::Moderator { member: author(&b) }),
        ),
        (
            "D redeems B's voucher",
            sign(
                &circle,
                &d,
                t(5),
                Action::Redeem {
                    voucher: voucher.clone(),
                },
            ),
        ),
        (
            "C redeems the same voucher (void: single use)",
            sign(
                &circle,
                &c,
                t(6),
                Action::Redeem {
                    voucher: voucher.clone(),
                },
            ),
        ),
        (
            "C admits itself (void: not a moderator)",
            sign(&circle, &c, t(7), Action::Admit { member: author(&c) }),
        ),
        (
            "founder removes B and its invitees",
            sign(
                &circle,
                &f,
                t(8),
                Action::Remove {
                    member: author(&b),
                    invitees_since: Some(0),
                },
            ),
        ),
        (
            "B admits C after its removal (void)",
            sign(&circle, &b, t(9), Action::Admit { member: author(&c) }),
        ),
        (
            "founder admits C",
            sign(&circle, &f, t(10), Action::Admit { member: author(&c) }),
        ),
        (
            "founder removes C at the same time (removal wins)",
            sign(
                &circle,
                &f,
                t(10),
                Action::Remove {
                    member: author(&c),
                    invitees_since: None,
                },
            ),
        ),
    ];
    let mut verified: Vec<(String, VerifiedRecord)> = named
        .iter()
        .map(|(n, s)| (n.to_string(), s.verify(NOW).unwrap()))
        .collect();
    verified.sort_by_key(|(_, v)| v.key());
    let mut m = Membership::new(&circle);
    let mut records = Vec::new();
    for (name, v) in &verified {
        let effective = m.apply(v);
        records.push(Valid {
            name: name.clone(),
            record: v.record().clone(),
            record_bytes: hex::encode(&v.signed().bytes),
            signed_record: hex::encode(v.signed().encode().unwrap()),
            hash: hex::encode(v.key().hash),
            rank: v.key().rank,
            effective,
        });
    }
    let keys: Vec<OrderKey> = verified.iter().map(|(_, v)| v.key()).collect();
    let request = Request {
        circle: circle.clone(),
        checkpoints: checkpoints(&keys),
        offer: vec![],
    };
    let other = closed_name("elsewhere", &author(&f));
    let other_voucher = sign(
        &other,
        &f,
        t(1),
        Action::Voucher {
            id: VoucherId([6; 16]),
            expires_at: t(100),
        },
    );
    let mut flipped = sign(&circle, &f, t(1), Action::Admit { member: author(&b) });
    flipped.signature.0[5] ^= 1;
    let mut trailing = sign(&circle, &f, t(1), Action::Admit { member: author(&b) })
        .encode()
        .unwrap();
    trailing.push(0);
    let invalid = vec![
        Invalid {
            name: "membership record of an open circle".into(),
            signed_record: hex::encode(
                sign("riverside", &f, t(1), Action::Admit { member: author(&b) })
                    .encode()
                    .unwrap(),
            ),
            error: "open_circle".into(),
        },
        Invalid {
            name: "signature by another key".into(),
            signed_record: hex::encode(flipped.encode().unwrap()),
            error: "signature".into(),
        },
        Invalid {
            name: "dated 10 minutes ahead".into(),
            signed_record: hex::encode(
                sign(
                    &circle,
                    &f,
                    NOW + 600_000,
                    Action::Admit { member: author(&b) },
                )
                .encode()
                .unwrap(),
            ),
            error: "in_future".into(),
        },
        Invalid {
            name: "a voucher on its own".into(),
            signed_record: hex::encode(voucher.encode().unwrap()),
            error: "voucher".into(),
        },
        Invalid {
            name: "redeeming another circle's voucher".into(),
            signed_record: hex::encode(
                sign(
                    &circle,
                    &c,
                    t(5),
                    Action::Redeem {
                        voucher: other_voucher,
                    },
                )
                .encode()
                .unwrap(),
            ),
            error: "voucher".into(),
        },
        Invalid {
            name: "redeemed after expiry".into(),
            signed_record: hex::encode(
                sign(
                    &circle,
                    &c,
                    t(101),
                    Action::Redeem {
                        voucher: voucher.clone(),
                    },
                )
                .encode()
                .unwrap(),
            ),
            error: "voucher".into(),
        },
        Invalid {
            name: "bad circle id".into(),
            signed_record: hex::encode(
                sign(
                    "riverside~zz",
                    &f,
                    t(1),
                    Action::Hide {
                        post: aidmesh_proto::PostId([1; 32]),
                    },
                )
                .encode()
                .unwrap(),
            ),
            error: "circle".into(),
        },
        Invalid {
            name: "a trailing byte".into(),
            signed_record: hex::encode(trailing),
            error: "codec.trailing_bytes".into(),
        },
    ];
    let ids = |keys: Vec<&AuthorKey>| keys.into_iter().map(|k| k.to_string()).collect();
    Vectors {
        about: "aidmesh circle records v1 (proto/CIRCLES.md): bincode 2 standard config; signature = ed25519(signer) over b\"aidmesh/circle-record/v1\" || record_bytes; full name = name ~ hex(blake3(b\"aidmesh/circle/v1\" || u64_le(len(name)) || name || founder)[..8]); records fold in (at, rank, hash) order".into(),
        now_ms: NOW,
        founder_seed: hex::encode([1u8; 32]),
        founder: author(&f).to_string(),
        name: "riverside".into(),
        full_name: circle.clone(),
        keys: [("B", 2u8), ("C", 3), ("D", 4)]
            .into_iter()
            .map(|(who, s)| Key {
                who: who.into(),
                seed: hex::encode([s; 32]),
                key: author(&key(s)).to_string(),
            })
            .collect(),
        records,
        members: ids(m.members.keys().collect()),
        moderators: ids(m.moderators.iter().collect()),
        removed: ids(m.removed.keys().collect()),
        catch_up_request: hex::encode(encode_request(&request).unwrap()),
        invalid,
    }
}

#[test]
fn vectors_match_the_file() {
    let fresh = generate();
    if std::env::var_os("AIDMESH_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(FILE, text).unwrap();
    }
    let stored: Vectors =
        serde_json::from_str(&std::fs::read_to_string(FILE).expect("vectors file")).unwrap();
    assert_eq!(
        stored, fresh,
        "the circle record format drifted from {FILE}"
    );
}

#[test]
fn stored_records_fold_to_the_stored_membership_in_any_order() {
    let v: Vectors = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let mut records: Vec<VerifiedRecord> = v
        .records
        .iter()
        .map(|r| {
            SignedRecord::decode(&hex::decode(&r.signed_record).unwrap())
                .unwrap()
                .verify(v.now_ms)
                .unwrap()
        })
        .collect();
    for shift in 0..records.len() {
        records.rotate_left(1);
        let mut sorted = records.clone();
        sorted.sort_by_key(|r| r.key());
        let m = Membership::fold(&v.full_name, &sorted);
        let members: Vec<String> = m.members.keys().map(|k| k.to_string()).collect();
        let removed: Vec<String> = m.removed.keys().map(|k| k.to_string()).collect();
        assert_eq!(members, v.members, "arrival shift {shift}");
        assert_eq!(removed, v.removed, "arrival shift {shift}");
    }
    for case in &v.invalid {
        let wire = hex::decode(&case.signed_record).unwrap();
        let code = match SignedRecord::decode(&wire) {
            Err(e) => e.code(),
            Ok(s) => match s.verify(v.now_ms) {
                Err(e) => e.code(),
                Ok(_) => "valid".into(),
            },
        };
        assert_eq!(code, case.error, "{}", case.name);
    }
}
