//! Runs every fuzz target's body on stable: over its committed corpus in `fuzz/corpus/`,
//! and over random and mutated inputs from proptest.
//!
//! `LVS_WRITE_SEEDS=1 cargo test --test fuzz_bodies write_seeds` regenerates the seed
//! corpora from the packets below.

use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4, icmpv6};
use lvs::PacketBuf;
use lvs::forward::pmtu::{self, MtuCheck};
use lvs::forward::tunnel::{self, GueChecksum, Tunnel, TunnelKind};
use lvs::fuzzing::{DECAP_GUE_PORTS, director_input, dr_input, encap_input, pmtu_input};
use lvs::wire::MacAddr;
use proptest::prelude::*;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::LazyLock;

type Body = fn(&[u8]);

/// What a target's input looks like, and so which seeds it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// A bare IP packet or Ethernet frame.
    Packet,
    /// The 19 NAT parameter bytes, then an IP packet.
    Nat,
    /// [`encap_input`]: tunnel parameters, then an IP packet.
    Encap,
    /// A tunnel packet (or a plain one, which is not decapsulated).
    Decap,
    /// [`dr_input`]: two MACs, then an Ethernet frame.
    Dr,
    /// [`pmtu_input`]: link MTU and tunnel, then an IP packet.
    Pmtu,
    /// [`director_input`]: a sequence of packets for the Director.
    Director,
}

/// Every target: name (as in fuzz/Cargo.toml), body, and the shape of its input.
const TARGETS: &[(&str, Body, Input)] = &[
    ("summary_ip", lvs::fuzzing::summary_ip, Input::Packet),
    (
        "summary_ethernet",
        lvs::fuzzing::summary_ethernet,
        Input::Packet,
    ),
    ("views_ip", lvs::fuzzing::views_ip, Input::Packet),
    ("views_l4", lvs::fuzzing::views_l4, Input::Packet),
    ("nat_inbound", lvs::fuzzing::nat_inbound, Input::Nat),
    ("nat_outbound", lvs::fuzzing::nat_outbound, Input::Nat),
    ("encap", lvs::fuzzing::encap, Input::Encap),
    ("decap", lvs::fuzzing::decap, Input::Decap),
    ("dr", lvs::fuzzing::dr, Input::Dr),
    ("ttl", lvs::fuzzing::ttl, Input::Packet),
    ("pmtu", lvs::fuzzing::pmtu, Input::Pmtu),
    ("director", lvs::fuzzing::director, Input::Director),
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

fn with_params(pkt: &[u8]) -> Vec<u8> {
    // Selector 0: an address of the packet's own family (10.0.0.2, or :: for IPv6), 8080.
    let mut v = vec![
        0, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1f, 0x90,
    ];
    v.extend_from_slice(pkt);
    v
}

/// The seed packets, with the IP packet inside each Ethernet frame added as well.
fn packets() -> Vec<Vec<u8>> {
    seed_packets()
        .into_iter()
        .flat_map(|p| {
            let mut v = vec![p.clone()];
            if p.len() > 14 && (p[12..14] == [0x08, 0x00] || p[12..14] == [0x86, 0xdd]) {
                v.push(p[14..].to_vec()); // the IP packet inside the frame
            }
            v
        })
        .collect()
}

/// The seed packets that are valid IP packets (not frames).
fn ip_packets() -> Vec<Vec<u8>> {
    packets()
        .into_iter()
        .filter(|p| lvs::PacketSummary::parse(p).is_ok())
        .collect()
}

/// An IP packet of `len` bytes with DF set (IPv4 TCP or IPv6 UDP): too big for small
/// MTUs, and longer than an ICMP error can quote.
fn big_packet(v6: bool, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    if v6 {
        PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            [0xfd; 16],
            64,
        )
        .udp(40000, 443)
        .write(&mut p, &vec![0x5a; len - 48])
        .unwrap();
    } else {
        PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], 64)
            .tcp(40000, 80, 1, 1000)
            .write(&mut p, &vec![0x5a; len - 40])
            .unwrap();
        p[6] |= 0x40; // DF
        p[10..12].fill(0);
        let c = lvs::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    p
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Tunnels of every kind and outer family (the GUE ones on a [`DECAP_GUE_PORTS`] port).
fn tunnels() -> Vec<Tunnel> {
    let port = DECAP_GUE_PORTS[0];
    let kinds = [
        TunnelKind::Ipip,
        TunnelKind::Gue {
            port,
            checksum: GueChecksum::Csum,
        },
        TunnelKind::Gue {
            port,
            checksum: GueChecksum::None,
        },
        TunnelKind::Gre {
            checksum: true,
            key: Some(0x0102_0304),
        },
        TunnelKind::Gre {
            checksum: false,
            key: None,
        },
    ];
    let mut out = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        for v6 in [false, true] {
            let mut t = if v6 {
                Tunnel::new(kind, addr("2001:db8:1::1"), addr("2001:db8:2::2"))
            } else {
                Tunnel::new(kind, addr("10.1.0.1"), addr("10.2.0.2"))
            };
            t.copy_df = i % 2 == 0;
            t.flow_hash_key = [i as u8; 16];
            out.push(t);
        }
    }
    out
}

/// (tunnel, packet) pairs for the encapsulation seeds: every tunnel over every IP packet.
fn encap_cases() -> Vec<(Tunnel, Vec<u8>)> {
    let mut out = Vec::new();
    for t in tunnels() {
        for p in ip_packets() {
            out.push((t, p));
        }
    }
    out
}

/// Every IP seed packet encapsulated in every tunnel, by the library.
fn encapsulated() -> Vec<Vec<u8>> {
    encap_cases()
        .into_iter()
        .map(|(t, p)| {
            let mut b = PacketBuf::with_headroom(lvs::buf::DEFAULT_HEADROOM, &p);
            tunnel::encapsulate(&mut b, &t, 7).expect("seed encapsulates");
            b.packet().to_vec()
        })
        .collect()
}

/// Ethernet frames for DR: each IP packet in an untagged frame, one 802.1Q frame, and
/// the frames among the seed packets.
fn frames() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = ip_packets()
        .into_iter()
        .map(|p| {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            f.extend_from_slice(if p[0] >> 4 == 6 {
                &[0x86, 0xdd]
            } else {
                &[0x08, 0x00]
            });
            f.extend_from_slice(&p);
            f
        })
        .collect();
    let mut f = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(42.try_into().unwrap())
        .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
        .tcp(40000, 80, 1, 100)
        .write(&mut f, b"x")
        .unwrap();
    out.push(f);
    out.extend(
        seed_packets()
            .into_iter()
            .filter(|p| lvs::PacketSummary::parse_ethernet(p).is_ok()),
    );
    out
}

/// (link MTU, tunnel, packet) for the path-MTU seeds: every IP packet with a fitting and
/// a too-small MTU, with and without a tunnel, plus big packets of both families.
fn pmtu_cases() -> Vec<(u32, Option<Tunnel>, Vec<u8>)> {
    let ts = tunnels();
    let mut pkts = ip_packets();
    pkts.push(big_packet(false, 1400));
    pkts.push(big_packet(true, 1400));
    pkts.push(lvs::fuzzing::sample_udp_v6_long_hop_by_hop());
    let mut out = Vec::new();
    for (i, p) in pkts.into_iter().enumerate() {
        let t = ts[i % ts.len()];
        let len = p.len() as u32;
        out.push((1500, None, p.clone()));
        out.push((len - 1, None, p.clone()));
        out.push((len + t.overhead() as u32 - 1, Some(t), p));
    }
    out
}

/// A TCP packet `src` -> `dst` with `flags` ("S", "SA", "A", "FA", "R") and a payload.
fn tcp_packet(src: (IpAddr, u16), dst: (IpAddr, u16), flags: &str, payload: &[u8]) -> Vec<u8> {
    let b = match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => unreachable!("one family"),
    };
    let mut t = b.tcp(src.1, dst.1, 1, 1000);
    for f in flags.chars() {
        t = match f {
            'S' => t.syn(),
            'A' => t.ack(1),
            'F' => t.fin(),
            'R' => t.rst(),
            _ => t,
        };
    }
    let mut p = Vec::new();
    t.write(&mut p, payload).unwrap();
    p
}

fn udp_packet(src: (IpAddr, u16), dst: (IpAddr, u16)) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.0, dst.0) else {
        unreachable!("IPv4 seeds")
    };
    let mut p = Vec::new();
    PacketBuilder::ipv4(s.octets(), d.octets(), 64)
        .udp(src.1, dst.1)
        .write(&mut p, b"query")
        .unwrap();
    p
}

/// Packet sequences for the Director target (its rules: `lvs::fuzzing::DIRECTOR_RULES`):
/// a NAT flow with replies through FIN, DR and one-packet UDP, a persistent tunnel
/// service, an IPv6 NAT flow, time passing with the timers run, and all of them at once
/// (a burst).
fn director_sequences() -> Vec<Vec<u8>> {
    let c = (addr("198.51.100.7"), 40000);
    let vip80 = (addr("192.0.2.1"), 80);
    let rs = (addr("10.0.0.2"), 8080);
    let nat = [
        tcp_packet(c, vip80, "S", b""),
        tcp_packet(rs, c, "SA", b""),
        tcp_packet(c, vip80, "A", b""),
        tcp_packet(c, vip80, "A", b"GET /"),
        tcp_packet(rs, c, "A", b"200 OK"),
        tcp_packet(c, vip80, "FA", b""),
        tcp_packet(rs, c, "FA", b""),
        tcp_packet(c, vip80, "A", b""),
    ];
    let udp = [
        udp_packet(c, (addr("192.0.2.1"), 53)),
        udp_packet(c, (addr("192.0.2.1"), 53)),
        udp_packet(c, (addr("192.0.2.1"), 514)),
        udp_packet(c, (addr("192.0.2.1"), 514)),
    ];
    let vip443 = (addr("192.0.2.1"), 443);
    let persistent = [
        tcp_packet(c, vip443, "S", b""),
        tcp_packet(c, vip443, "A", b"hello"),
        tcp_packet((addr("198.51.100.7"), 40001), vip443, "S", b""),
        tcp_packet(c, vip443, "R", b""),
    ];
    let c6 = (addr("2001:db8:9::7"), 40000);
    let vip6 = (addr("2001:db8::1"), 80);
    let rs6 = (addr("2001:db8:1::2"), 8080);
    let v6 = [
        tcp_packet(c6, vip6, "S", b""),
        tcp_packet(rs6, c6, "SA", b""),
        tcp_packet(c6, vip6, "A", b"GET /"),
    ];
    let seq = |ps: &[Vec<u8>], step: u8| {
        let v: Vec<(u8, &[u8])> = ps.iter().map(|p| (step, p.as_slice())).collect();
        director_input(&v)
    };
    let mut out = vec![seq(&nat, 1), seq(&udp, 2), seq(&persistent, 3), seq(&v6, 1)];
    // The NAT flow with the timers run between its packets.
    out.push(seq(&nat, 255));
    // Every flow with no time between packets: one burst of them all for the director
    // that takes bursts.
    let all: Vec<Vec<u8>> = [&nat[..], &udp, &persistent, &v6].concat();
    out.push(seq(&all, 0));
    out
}

fn seeds_for(input: Input) -> Vec<Vec<u8>> {
    match input {
        Input::Packet => packets(),
        Input::Nat => packets().iter().map(|p| with_params(p)).collect(),
        Input::Encap => {
            let mut v: Vec<_> = encap_cases()
                .iter()
                .map(|(t, p)| encap_input(t, 0x4242, 64, p))
                .collect();
            // Too little headroom and a mismatched tunnel: the error paths.
            let (t, p) = &encap_cases()[0];
            v.push(encap_input(t, 1, 8, p));
            let mixed = Tunnel::new(TunnelKind::Ipip, addr("10.1.0.1"), addr("2001:db8::2"));
            v.push(encap_input(&mixed, 1, 64, p));
            v
        }
        Input::Decap => {
            let mut v = encapsulated();
            v.extend(ip_packets()); // not tunnel packets
            v
        }
        Input::Dr => frames()
            .iter()
            .map(|f| {
                dr_input(
                    MacAddr([0x02, 0, 0, 0, 0, 0x10]),
                    MacAddr([0x02, 0, 0, 0, 0, 0x20]),
                    f,
                )
            })
            .collect(),
        Input::Pmtu => pmtu_cases()
            .iter()
            .map(|(m, t, p)| pmtu_input(*m, t.as_ref(), 0x1234, p))
            .collect(),
        Input::Director => director_sequences(),
    }
}

/// Seeds per target, in `TARGETS` order, built once.
static SEEDS: LazyLock<Vec<Vec<Vec<u8>>>> =
    LazyLock::new(|| TARGETS.iter().map(|(_, _, i)| seeds_for(*i)).collect());

#[test]
fn write_seeds() {
    if std::env::var_os("LVS_WRITE_SEEDS").is_none() {
        return; // regenerating the committed corpus is a deliberate developer step
    }
    for ((name, _, _), seeds) in TARGETS.iter().zip(SEEDS.iter()) {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (i, s) in seeds.iter().enumerate() {
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
fn committed_corpus_holds_the_current_seeds() {
    // A changed seed generator without `LVS_WRITE_SEEDS=1` would leave stale seeds behind.
    for ((name, _, _), seeds) in TARGETS.iter().zip(SEEDS.iter()) {
        for (i, s) in seeds.iter().enumerate() {
            let path = corpus_dir(name).join(format!("seed-{i:02}"));
            let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                &got,
                s,
                "{} is stale: rerun with LVS_WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}

#[test]
fn seeds_exercise_the_success_paths() {
    // Guards against seeds that only ever hit error paths.
    for s in ip_packets() {
        let mut b = s.clone();
        let addr: IpAddr = if s[0] >> 4 == 6 {
            addr("fd00::2")
        } else {
            addr("10.0.0.2")
        };
        lvs::forward::nat::inbound(&mut b, addr, 8080).expect("valid seed rewrites");
        assert_ne!(b, s);
        let mut b = s.clone();
        lvs::forward::ttl::decrement(&mut b).expect("valid seed decrements");
    }
    // encapsulated() itself asserts that every encapsulation case succeeds.
    for p in encapsulated() {
        let mut b = PacketBuf::with_headroom(0, &p);
        tunnel::decapsulate(&mut b, DECAP_GUE_PORTS).expect("tunnel seed decapsulates");
    }
    for f in frames() {
        let mut f = f;
        lvs::forward::dr::rewrite_macs(&mut f, MacAddr([1; 6]), MacAddr([2; 6]))
            .expect("frame seed rewrites");
    }
    let mut too_big = [0usize; 2];
    for (mtu, t, p) in pmtu_cases() {
        let s = lvs::PacketSummary::parse(&p).unwrap();
        if let MtuCheck::TooBig { mtu } = pmtu::check(&s, mtu, t.as_ref()) {
            let mut out = [0u8; 1500];
            pmtu::build_too_big(&p, mtu, &mut out).expect("a too-big reply");
            too_big[usize::from(p[0] >> 4 == 6)] += 1;
        }
    }
    assert!(
        too_big.iter().all(|&n| n > 0),
        "too-big replies per family: {too_big:?}"
    );
    // The Director sequences are forwarded, replies included, not merely passed.
    for s in director_sequences() {
        let mut d = lvs::Director::from_rules(
            lvs::Config {
                tunnel_source_v4: Some("192.0.2.254".parse().unwrap()),
                ..lvs::Config::default()
            },
            [5; 32],
            lvs::fuzzing::DIRECTOR_RULES,
        )
        .unwrap();
        let mut rest = &s[..];
        let mut forwarded = 0;
        while let [lo, hi, _, tail @ ..] = rest {
            let len = usize::from(u16::from_le_bytes([*lo, *hi]));
            let (p, next) = tail.split_at(len);
            rest = next;
            let mut b = PacketBuf::with_headroom(lvs::buf::DEFAULT_HEADROOM, p);
            let v = d.handle_packet(
                lvs::Instant::from_secs(1),
                &mut b,
                lvs::PacketMeta::default(),
            );
            forwarded += usize::from(matches!(v, lvs::Verdict::Forward { .. }));
        }
        assert!(forwarded >= 2, "a director seed forwards ({forwarded})");
    }
}

/// A seed index, byte flips and an optional truncation, applied to each target's own
/// seeds (parameter bytes included).
fn mutation() -> impl Strategy<Value = (usize, Vec<(usize, u8)>, usize)> {
    (
        any::<usize>(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
    )
}

fn mutate(seed: &[u8], flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut p = seed.to_vec();
    for &(at, x) in flips {
        let n = p.len();
        p[at % n] ^= x;
    }
    if cut.is_multiple_of(4) {
        let n = p.len();
        p.truncate(cut % (n + 1));
    }
    p
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
    fn bodies_hold_on_mutated_seeds((i, flips, cut) in mutation()) {
        for ((_, body, _), seeds) in TARGETS.iter().zip(SEEDS.iter()) {
            body(&mutate(&seeds[i % seeds.len()], &flips, cut));
        }
    }
}
