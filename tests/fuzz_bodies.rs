//! Runs every fuzz target's body on stable: over its committed corpus in `fuzz/corpus/`,
//! and over random and mutated packets from proptest.
//!
//! `LVS_WRITE_SEEDS=1 cargo test --test fuzz_bodies write_seeds` regenerates the seed
//! corpora from the packets below.

use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4, icmpv6};
use proptest::prelude::*;
use std::path::PathBuf;

type Body = fn(&[u8]);

/// Every target: name (as in fuzz/Cargo.toml), body, and whether its input starts with
/// the 19 parameter bytes the rewrite bodies take.
const TARGETS: &[(&str, Body, bool)] = &[
    ("summary_ip", lvs::fuzzing::summary_ip, false),
    ("summary_ethernet", lvs::fuzzing::summary_ethernet, false),
    ("views_ip", lvs::fuzzing::views_ip, false),
    ("views_l4", lvs::fuzzing::views_l4, false),
    ("nat_inbound", lvs::fuzzing::nat_inbound, true),
    ("nat_outbound", lvs::fuzzing::nat_outbound, true),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Valid packets of every shape the parsers and rewrites handle.
fn seed_packets() -> Vec<Vec<u8>> {
    let c4 = [198, 51, 100, 7];
    let v4 = [192, 0, 2, 1];
    let c6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let v6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut out = Vec::new();
    let mut w = |b: PacketBuilderWrite| out.push(b);
    type PacketBuilderWrite = Vec<u8>;
    let mut p = Vec::new();
    PacketBuilder::ipv4(c4, v4, 64)
        .tcp(40000, 80, 1, 1000)
        .syn()
        .write(&mut p, b"GET /")
        .unwrap();
    w(p);
    let mut p = Vec::new();
    PacketBuilder::ipv4(c4, v4, 64)
        .udp(5353, 53)
        .write(&mut p, b"query")
        .unwrap();
    w(p.clone());
    let mut reply = p.clone();
    reply[12..16].copy_from_slice(&v4);
    reply[16..20].copy_from_slice(&c4);
    let mut p = Vec::new();
    PacketBuilder::ipv4(c4, v4, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut p, &reply[..28])
        .unwrap();
    w(p);
    let mut p = Vec::new();
    PacketBuilder::ipv4(c4, v4, 64)
        .icmpv4_echo_request(1, 2)
        .write(&mut p, b"ping")
        .unwrap();
    w(p);
    let mut p = Vec::new();
    PacketBuilder::ipv6(c6, v6, 64)
        .tcp(40000, 443, 1, 1000)
        .syn()
        .write(&mut p, b"hello")
        .unwrap();
    w(p.clone());
    let mut q = Vec::new();
    PacketBuilder::ipv6(v6, c6, 64)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut q, &p)
        .unwrap();
    w(q);
    let mut q = Vec::new();
    PacketBuilder::ipv6(v6, c6, 64)
        .icmpv6(Icmpv6Type::DestinationUnreachable(
            icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut q, &p[..48])
        .unwrap();
    w(q);
    let mut p = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv6(c6, v6, 64)
        .udp(1, 2)
        .write(&mut p, b"x")
        .unwrap();
    w(p);
    let mut p = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(c4, v4, 64)
        .udp(1, 2)
        .write(&mut p, b"x")
        .unwrap();
    w(p);
    w(lvs::fuzzing::sample_tcp_v4().to_vec());
    out
}

fn with_params(pkt: &[u8], v6: bool) -> Vec<u8> {
    let _ = v6; // selector 0: the packet's own family
    let mut v = vec![
        0, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1f, 0x90,
    ];
    v.extend_from_slice(pkt);
    v
}

fn seeds_for(with_param: bool) -> Vec<Vec<u8>> {
    seed_packets()
        .into_iter()
        .flat_map(|p| {
            let mut v = vec![p.clone()];
            if p.len() > 14 && p[12..14] == [0x08, 0x00]
                || p.len() > 14 && p[12..14] == [0x86, 0xdd]
            {
                v.push(p[14..].to_vec()); // the IP packet inside the frame
            }
            v
        })
        .map(|p| {
            if with_param {
                with_params(&p, p.first().map(|b| b >> 4) == Some(6))
            } else {
                p
            }
        })
        .collect()
}

#[test]
fn write_seeds() {
    if std::env::var_os("LVS_WRITE_SEEDS").is_none() {
        return; // regenerating the committed corpus is a deliberate developer step
    }
    for (name, _, with_param) in TARGETS {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds_for(*with_param).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
        }
    }
}

#[test]
fn corpus_replays_clean() {
    let mut total = 0;
    for (name, body, _) in TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut n = 0;
        for e in entries {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            body(&data);
            n += 1;
        }
        assert!(n > 0, "{name} has an empty corpus");
        total += n;
    }
    eprintln!("replayed {total} corpus inputs");
}

#[test]
fn seeds_exercise_the_success_paths() {
    // Guards against seeds that only ever hit error paths: each valid seed is rewritten.
    for s in seeds_for(false) {
        let Ok(_) = lvs::PacketSummary::parse(&s) else {
            continue;
        };
        let mut b = s.clone();
        let addr: std::net::IpAddr = if s[0] >> 4 == 6 {
            "fd00::2".parse().unwrap()
        } else {
            "10.0.0.2".parse().unwrap()
        };
        lvs::forward::nat::inbound(&mut b, addr, 8080).expect("valid seed rewrites");
        assert_ne!(b, s);
    }
}

fn mutated() -> impl Strategy<Value = (bool, Vec<u8>)> {
    let seeds = seeds_for(false);
    (
        0..seeds.len(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
        any::<bool>(),
    )
        .prop_map(move |(i, flips, cut, params)| {
            let mut p = seeds[i].clone();
            for (at, x) in flips {
                let n = p.len();
                p[at % n] ^= x;
            }
            if cut % 4 == 0 {
                let n = p.len();
                p.truncate(cut % (n + 1));
            }
            (params, p)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn bodies_hold_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        for (_, body, _) in TARGETS {
            body(&data);
        }
    }

    #[test]
    fn bodies_hold_on_mutated_packets((_p, pkt) in mutated()) {
        for (_, body, with_param) in TARGETS {
            if *with_param {
                body(&with_params(&pkt, pkt.first().map(|b| b >> 4) == Some(6)));
            } else {
                body(&pkt);
            }
        }
    }
}
