//! Packet rewrites, packets per second, each beside its baseline in the same run.
//!
//! `cargo bench --bench rewrite` (add `-- --quick` for a short run). Figures live in
//! BENCHMARKS.md.

use core::hash::Hasher;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::{
    Ethernet2Header, IpEcn, IpNumber, Ipv4Header, Ipv4HeaderSlice, NetSlice, SlicedPacket,
    TransportSlice, UdpHeader,
};
use lvs::PacketBuf;
use lvs::forward::dr;
use lvs::forward::tunnel::{self, GueChecksum, Tunnel, TunnelKind};
use lvs::wire::MacAddr;
use siphasher::sip::SipHasher13;
use std::hint::black_box;
use std::net::IpAddr;

/// Packets per iteration: 64 KiB of 64-byte packets, resident in L2 like a NIC ring batch.
const BATCH: usize = 1024;

fn tcp_batch() -> Vec<[u8; 64]> {
    (0..BATCH)
        .map(|i| {
            let mut p = lvs::fuzzing::sample_tcp_v4();
            // Distinct clients, so nothing is constant across packets.
            let client = IpAddr::from([198, 51, (i >> 8) as u8, i as u8]);
            lvs::forward::nat::outbound(&mut p, client, 40000 + i as u16).unwrap();
            p
        })
        .collect()
}

/// What a user without this crate writes: parse with etherparse, set the fields, recompute
/// every checksum in full, write the headers back.
fn etherparse_dnat(pkt: &mut [u8], rip: [u8; 4], rport: u16) {
    let (mut ip, rest) = etherparse::Ipv4Header::from_slice(pkt).unwrap();
    let (mut tcp, payload) = etherparse::TcpHeader::from_slice(rest).unwrap();
    ip.destination = rip;
    tcp.destination_port = rport;
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
    let ip_len = ip.header_len();
    let tcp_len = tcp.header_len();
    let mut head = [0u8; 120];
    let mut cur = &mut head[..];
    ip.write(&mut cur).unwrap();
    tcp.write(&mut cur).unwrap();
    pkt[..ip_len + tcp_len].copy_from_slice(&head[..ip_len + tcp_len]);
}

fn nat(c: &mut Criterion) {
    let rips: [IpAddr; 2] = [IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 3])];
    let mut g = c.benchmark_group("nat_inbound_ipv4_tcp_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut pkts = tcp_batch();
    let mut flip = 0usize;
    g.bench_function("lvs", |b| {
        b.iter(|| {
            flip ^= 1;
            for p in pkts.iter_mut() {
                lvs::forward::nat::inbound(black_box(&mut p[..]), rips[flip], 8080 + flip as u16)
                    .unwrap();
            }
        })
    });
    let mut pkts = tcp_batch();
    g.bench_function("etherparse_full_recompute", |b| {
        b.iter(|| {
            flip ^= 1;
            for p in pkts.iter_mut() {
                etherparse_dnat(
                    black_box(&mut p[..]),
                    [10, 0, 0, 2 + flip as u8],
                    8080 + flip as u16,
                );
            }
        })
    });
    g.finish();
}

/// Outer source of the tunnel benches (the director) and real server.
const TUN_SRC: [u8; 4] = [192, 0, 2, 254];
const TUN_DST: [u8; 4] = [10, 0, 0, 2];
/// GUE destination port of the tunnel benches.
const GUE_PORT: u16 = 6080;
/// Headroom of each encapsulation buffer: room for the outer headers.
const HEADROOM: usize = 64;

fn encap_bufs() -> Vec<PacketBuf> {
    tcp_batch()
        .iter()
        .map(|p| PacketBuf::with_headroom(HEADROOM, p))
        .collect()
}

/// `INET_ECN_encapsulate`, as a user would write it with etherparse's types.
fn ecn_encap(e: IpEcn) -> IpEcn {
    if e == IpEcn::CongestionExperienced {
        IpEcn::Ect0
    } else {
        e
    }
}

/// The outer IPv4 header a user builds with etherparse from the inner header's TOS, TTL
/// and DF, checksum computed.
fn etherparse_outer(
    inner: &Ipv4HeaderSlice<'_>,
    payload: u16,
    protocol: IpNumber,
    id: u16,
) -> Ipv4Header {
    let mut o = Ipv4Header::new(payload, inner.ttl(), protocol, TUN_SRC, TUN_DST).unwrap();
    o.dscp = inner.dcp();
    o.ecn = ecn_encap(inner.ecn());
    o.dont_fragment = inner.dont_fragment();
    o.identification = if o.dont_fragment { 0 } else { id };
    o.header_checksum = o.calc_header_checksum();
    o
}

/// IPIP with etherparse: parse the inner IPv4 header, build the outer one, write both
/// into a fresh `Vec`.
fn etherparse_ipip(pkt: &[u8], id: u16) -> Vec<u8> {
    let h = Ipv4HeaderSlice::from_slice(pkt).unwrap();
    let inner = &pkt[..usize::from(h.total_len())];
    let o = etherparse_outer(&h, inner.len() as u16, IpNumber::IPV4, id);
    let mut out = Vec::with_capacity(Ipv4Header::MIN_LEN + inner.len());
    o.write_raw(&mut out).unwrap();
    out.extend_from_slice(inner);
    out
}

/// GUE with etherparse: slice the inner packet for its 5-tuple, SipHash-1-3 it for the
/// source port, build outer IPv4 + UDP (checksum 0) + the 4-byte GUE header into a fresh
/// `Vec`.
fn etherparse_gue(pkt: &[u8], key: &[u8; 16], id: u16) -> Vec<u8> {
    let s = SlicedPacket::from_ip(pkt).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("IPv4 expected")
    };
    let h = ip.header();
    let mut hasher = SipHasher13::new_with_key(key);
    hasher.write(&h.source());
    hasher.write(&h.destination());
    hasher.write_u8(h.protocol().0);
    if let Some(TransportSlice::Tcp(t)) = &s.transport {
        hasher.write(&t.source_port().to_be_bytes());
        hasher.write(&t.destination_port().to_be_bytes());
    }
    let sport = tunnel::udp_flow_src_port(hasher.finish() as u32);
    let inner = &pkt[..usize::from(h.total_len())];
    let udp_len = (UdpHeader::LEN + 4 + inner.len()) as u16;
    let o = etherparse_outer(&h, udp_len, IpNumber::UDP, id);
    let u = UdpHeader {
        source_port: sport,
        destination_port: GUE_PORT,
        length: udp_len,
        checksum: 0,
    };
    let mut out = Vec::with_capacity(Ipv4Header::MIN_LEN + usize::from(udp_len));
    o.write_raw(&mut out).unwrap();
    u.write(&mut out).unwrap();
    out.extend_from_slice(&[0, 4, 0, 0]);
    out.extend_from_slice(inner);
    out
}

fn encap(c: &mut Criterion) {
    let key = [7u8; 16];
    let kinds = [
        ("ipip_encap_ipv4_64B", TunnelKind::Ipip),
        (
            "gue_encap_ipv4_64B",
            TunnelKind::Gue {
                port: GUE_PORT,
                checksum: GueChecksum::None,
            },
        ),
    ];
    for (name, kind) in kinds {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut t = Tunnel::new(kind, IpAddr::from(TUN_SRC), IpAddr::from(TUN_DST));
        t.flow_hash_key = key;
        let mut bufs = encap_bufs();
        let range = (HEADROOM, HEADROOM + 64);
        let gue = matches!(kind, TunnelKind::Gue { .. });
        // Both ways produce the same bytes.
        for (i, buf) in bufs.iter().enumerate().take(4) {
            let mut mine = buf.clone();
            tunnel::encapsulate(&mut mine, &t, i as u16).unwrap();
            let pkt = &buf.storage()[range.0..range.1];
            let theirs = if gue {
                etherparse_gue(pkt, &key, i as u16)
            } else {
                etherparse_ipip(pkt, i as u16)
            };
            assert_eq!(mine.packet(), &theirs[..]);
        }
        g.bench_function("lvs", |b| {
            b.iter(|| {
                for (i, buf) in bufs.iter_mut().enumerate() {
                    // A fresh inner packet each time: undo the previous encapsulation.
                    buf.set_range(range.0, range.1).unwrap();
                    tunnel::encapsulate(black_box(buf), &t, i as u16).unwrap();
                }
            })
        });
        if gue {
            // What an engine does per packet of an established flow: the flow hash was
            // computed once when the connection was created.
            let hashes: Vec<u32> = bufs
                .iter()
                .map(|b| tunnel::flow_hash_of(&b.storage()[range.0..range.1], &key).unwrap())
                .collect();
            g.bench_function("lvs_flow_hash_per_connection", |b| {
                b.iter(|| {
                    for (i, buf) in bufs.iter_mut().enumerate() {
                        buf.set_range(range.0, range.1).unwrap();
                        tunnel::encapsulate_flow(black_box(buf), &t, i as u16, Some(hashes[i]))
                            .unwrap();
                    }
                })
            });
        }
        let bufs = encap_bufs();
        g.bench_function("etherparse_new_vec", |b| {
            b.iter(|| {
                for (i, buf) in bufs.iter().enumerate() {
                    let pkt = black_box(&buf.storage()[range.0..range.1]);
                    let out = if gue {
                        etherparse_gue(pkt, &key, i as u16)
                    } else {
                        etherparse_ipip(pkt, i as u16)
                    };
                    black_box(out);
                }
            })
        });
        g.finish();
    }
}

fn frame_batch() -> Vec<[u8; 78]> {
    tcp_batch()
        .iter()
        .map(|p| {
            let mut f = [0u8; 78];
            f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14..].copy_from_slice(p);
            f
        })
        .collect()
}

/// DR with etherparse: a full `SlicedPacket` parse to validate the frame, then the
/// Ethernet header decoded, its MACs set, and written back.
fn etherparse_dr(f: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    black_box(SlicedPacket::from_ethernet(f).unwrap());
    let (mut eth, _) = Ethernet2Header::from_slice(f).unwrap();
    eth.destination = dst;
    eth.source = src;
    f[..Ethernet2Header::LEN].copy_from_slice(&eth.to_bytes());
}

fn dr(c: &mut Criterion) {
    let mut g = c.benchmark_group("dr_mac_rewrite_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let macs = [[0x52, 0x54, 0, 0, 0, 1], [0x52, 0x54, 0, 0, 0, 2]];
    let src = [0x52, 0x54, 0, 0, 0, 0xfe];
    let mut frames = frame_batch();
    let mut flip = 0usize;
    g.bench_function("lvs", |b| {
        b.iter(|| {
            flip ^= 1;
            for f in frames.iter_mut() {
                dr::rewrite_macs(black_box(&mut f[..]), MacAddr(macs[flip]), MacAddr(src)).unwrap();
            }
        })
    });
    let mut frames = frame_batch();
    g.bench_function("etherparse_sliced_validate", |b| {
        b.iter(|| {
            flip ^= 1;
            for f in frames.iter_mut() {
                etherparse_dr(black_box(&mut f[..]), macs[flip], src);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, nat, encap, dr);
criterion_main!(benches);
