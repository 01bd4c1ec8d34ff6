use super::*;
use crate::wire::proto;
use core::net::{Ipv4Addr, Ipv6Addr};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

const V4_SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const V4_DST: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

/// Recomputes the IPv4 header checksum of a hand-patched header.
fn fix_v4(p: &mut [u8]) {
    p[10..12].fill(0);
    let hl = usize::from(p[0] & 0xf) * 4;
    let c = checksum::checksum(&p[..hl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// An IPv4 TCP packet with the given TOS, TTL and DF.
fn inner_v4(tos: u8, ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], ttl)
        .tcp(40000, 80, 7, 1000)
        .write(&mut v, payload)
        .unwrap();
    v[1] = tos;
    v[6] = if df { 0x40 } else { 0 };
    fix_v4(&mut v);
    v
}

/// An IPv6 UDP packet with the given traffic class and hop limit.
fn inner_v6(tc: u8, hl: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        hl,
    )
    .udp(5353, 53)
    .write(&mut v, payload)
    .unwrap();
    v[0] = 0x60 | (tc >> 4);
    v[1] = (tc << 4) | (v[1] & 0x0f);
    v
}

fn tunnel(kind: TunnelKind, v6_outer: bool) -> Tunnel {
    if v6_outer {
        Tunnel::new(kind, V6_SRC.into(), V6_DST.into())
    } else {
        Tunnel::new(kind, V4_SRC.into(), V4_DST.into())
    }
}

/// Checks the outer headers with etherparse: IPv4 header checksum, UDP checksum when
/// non-zero, lengths; returns the outer IP payload.
fn oracle(pkt: &[u8]) -> SlicedPacket<'_> {
    let sp = SlicedPacket::from_ip(pkt).expect("etherparse parses the outer packet");
    match sp.net.as_ref().unwrap() {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!(
                h.to_header().calc_header_checksum(),
                h.header_checksum(),
                "outer IPv4 checksum"
            );
            assert_eq!(usize::from(h.total_len()), pkt.len());
            if let Some(TransportSlice::Udp(u)) = &sp.transport
                && u.checksum() != 0
            {
                let c = u
                    .to_header()
                    .calc_checksum_ipv4_raw(h.source(), h.destination(), u.payload())
                    .unwrap();
                assert_eq!(c, u.checksum(), "outer UDP checksum");
            }
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            assert_eq!(usize::from(h.payload_length()) + 40, pkt.len());
            if let Some(TransportSlice::Udp(u)) = &sp.transport
                && u.checksum() != 0
            {
                let c = u
                    .to_header()
                    .calc_checksum_ipv6_raw(h.source(), h.destination(), u.payload())
                    .unwrap();
                assert_eq!(c, u.checksum(), "outer UDP checksum");
            }
        }
        NetSlice::Arp(_) => panic!("not IP"),
    }
    sp
}

fn encap(inner: &[u8], t: &Tunnel, id: u16) -> PacketBuf {
    let mut b = PacketBuf::with_headroom(crate::buf::DEFAULT_HEADROOM, inner);
    encapsulate(&mut b, t, id).unwrap();
    b
}

#[test]
fn ipip_all_four_family_combinations() {
    for v6_inner in [false, true] {
        for v6_outer in [false, true] {
            let inner = if v6_inner {
                inner_v6(0x28, 33, b"dns query")
            } else {
                inner_v4(0x28, 33, true, b"GET /")
            };
            let t = tunnel(TunnelKind::Ipip, v6_outer);
            let b = encap(&inner, &t, 0x4242);
            let p = b.packet();
            let oh = if v6_outer { 40 } else { 20 };
            assert_eq!(t.overhead(), oh);
            assert_eq!(p.len(), inner.len() + oh);
            assert_eq!(&p[oh..], &inner[..], "inner untouched");
            let next = if v6_inner { proto::IPV6 } else { proto::IPIP };
            let sp = oracle(p);
            match sp.net.unwrap() {
                NetSlice::Ipv4(ip) => {
                    let h = ip.header();
                    assert_eq!(h.protocol().0, next);
                    assert_eq!(h.ttl(), 33);
                    assert_eq!(h.dcp().value() << 2 | h.ecn().value(), 0x28);
                    assert_eq!(h.source(), V4_SRC.octets());
                    assert_eq!(h.destination(), V4_DST.octets());
                    assert_eq!(h.fragments_offset().value(), 0);
                    assert!(!h.more_fragments());
                    // DF copied from an IPv4 inner packet only; ID 0 with DF, else the caller's.
                    assert_eq!(h.dont_fragment(), !v6_inner);
                    assert_eq!(h.identification(), if v6_inner { 0x4242 } else { 0 });
                }
                NetSlice::Ipv6(ip) => {
                    let h = ip.header();
                    assert_eq!(h.next_header().0, next);
                    assert_eq!(h.hop_limit(), 33);
                    assert_eq!(h.traffic_class(), 0x28);
                    assert_eq!(h.flow_label().value(), 0);
                    assert_eq!(h.source(), V6_SRC.octets());
                }
                NetSlice::Arp(_) => unreachable!(),
            }
            let mut d = b.clone();
            let r = decapsulate(&mut d, &[]).unwrap();
            assert_eq!(r.kind, TunnelKind::Ipip);
            assert_eq!(r.outer_src, t.src);
            assert_eq!(r.outer_dst, t.dst);
            assert_eq!(r.outer_ttl, 33);
            assert_eq!(d.packet(), &inner[..]);
            assert_eq!(d.headroom(), crate::buf::DEFAULT_HEADROOM);
            assert_eq!(r.inner, PacketSummary::parse(&inner).unwrap());
        }
    }
}

#[test]
fn df_and_ident_rules() {
    let t = tunnel(TunnelKind::Ipip, false);
    // DF clear inner: no DF, caller's ID.
    let b = encap(&inner_v4(0, 64, false, b"x"), &t, 77);
    assert_eq!(&b.packet()[4..8], &[0, 77, 0, 0]);
    // pmtu_disc off: DF never copied.
    let t2 = Tunnel {
        copy_df: false,
        ..t
    };
    let b = encap(&inner_v4(0, 64, true, b"x"), &t2, 78);
    assert_eq!(&b.packet()[4..8], &[0, 78, 0, 0]);
    // DF copied, ID 0.
    let b = encap(&inner_v4(0, 64, true, b"x"), &t, 79);
    assert_eq!(&b.packet()[4..8], &[0, 0, 0x40, 0]);
}

#[test]
fn ecn_encapsulation() {
    assert_eq!(ecn_encapsulate(0xb8), 0xb8);
    assert_eq!(ecn_encapsulate(0xb9), 0xb9);
    assert_eq!(ecn_encapsulate(0xba), 0xba);
    assert_eq!(ecn_encapsulate(0xbb), 0xba, "CE becomes ECT(0)");
    let b = encap(
        &inner_v4(0x03, 64, false, b""),
        &tunnel(TunnelKind::Ipip, false),
        0,
    );
    assert_eq!(b.packet()[1], 0x02);
    let b = encap(&inner_v6(0x03, 64, b""), &tunnel(TunnelKind::Ipip, true), 0);
    assert_eq!(
        Ipv6Packet::new_checked(b.packet()).unwrap().traffic_class(),
        0x02
    );
}

use crate::wire::Ipv6Packet;

#[test]
fn gue_source_port_mapping() {
    assert_eq!(udp_flow_src_port(0), 32768);
    assert_eq!(udp_flow_src_port(0xffff_ffff), 32768); // h ^ h << 16 = 0x0000ffff
    assert_eq!(udp_flow_src_port(0x8000_0000), 32768 + 14115);
    assert_eq!(
        udp_flow_src_port(0xffff_0000),
        32768 + ((0xffff_0000u64 * 28231) >> 32) as u16
    );
    for h in (0..=u32::MAX).step_by(65_537) {
        let p = udp_flow_src_port(h);
        assert!((32768..60999).contains(&p));
    }
}

#[test]
fn gue_checksum_modes_both_outer_families() {
    for v6_outer in [false, true] {
        for ck in [GueChecksum::None, GueChecksum::Csum, GueChecksum::RemCsum] {
            for v6_inner in [false, true] {
                let inner = if v6_inner {
                    inner_v6(0, 9, b"payload!")
                } else {
                    inner_v4(0, 9, false, b"payload")
                };
                let mut t = tunnel(
                    TunnelKind::Gue {
                        port: 6080,
                        checksum: ck,
                    },
                    v6_outer,
                );
                t.flow_hash_key = [7; 16];
                let b = encap(&inner, &t, 1);
                let p = b.packet();
                let ip = if v6_outer { 40 } else { 20 };
                assert_eq!(t.overhead(), ip + 12);
                let sp = oracle(p);
                let Some(TransportSlice::Udp(u)) = sp.transport else {
                    panic!("UDP expected")
                };
                assert_eq!(u.destination_port(), 6080);
                assert!((32768..=60999).contains(&u.source_port()));
                assert_eq!(usize::from(u.length()), 8 + 4 + inner.len());
                if ck == GueChecksum::None {
                    assert_eq!(
                        u.checksum(),
                        0,
                        "nocsum: 0 over IPv4 and IPv6 (udp6_set_csum nocheck)"
                    );
                } else {
                    assert_ne!(u.checksum(), 0);
                }
                let g = &p[ip + 8..ip + 12];
                assert_eq!(g, &[0, if v6_inner { 41 } else { 4 }, 0, 0]);
                assert_eq!(&p[ip + 12..], &inner[..]);
                // Same flow, same port; the port depends on the key.
                let b2 = encap(&inner, &t, 2);
                assert_eq!(&b2.packet()[ip..ip + 2], &p[ip..ip + 2]);
                let mut d = b.clone();
                let r = decapsulate(&mut d, &[1, 6080]).unwrap();
                let want = if ck == GueChecksum::None {
                    GueChecksum::None
                } else {
                    GueChecksum::Csum
                };
                assert_eq!(
                    r.kind,
                    TunnelKind::Gue {
                        port: 6080,
                        checksum: want
                    }
                );
                assert_eq!(d.packet(), &inner[..]);
                // Not a configured port: not ours.
                let mut d = b.clone();
                assert_eq!(
                    decapsulate(&mut d, &[6081]),
                    Err(RewriteError::NotEncapsulated)
                );
                assert_eq!(d, b);
            }
        }
    }
}

#[test]
fn gre_checksum_and_key_combinations() {
    for v6_outer in [false, true] {
        for csum in [false, true] {
            for key in [None, Some(0xdead_beef)] {
                for v6_inner in [false, true] {
                    let inner = if v6_inner {
                        inner_v6(0, 9, b"abc")
                    } else {
                        inner_v4(0, 9, true, b"abcd")
                    };
                    let t = tunnel(
                        TunnelKind::Gre {
                            checksum: csum,
                            key,
                        },
                        v6_outer,
                    );
                    let b = encap(&inner, &t, 5);
                    let p = b.packet();
                    let ip = if v6_outer { 40 } else { 20 };
                    let gl = 4 + if csum { 4 } else { 0 } + if key.is_some() { 4 } else { 0 };
                    assert_eq!(t.overhead(), ip + gl);
                    oracle(p);
                    assert_eq!(p[if v6_outer { 6 } else { 9 }], proto::GRE);
                    let g = GrePacket::new_checked(&p[ip..]).unwrap();
                    assert_eq!(g.header_len(), gl);
                    assert_eq!(g.protocol(), if v6_inner { 0x86dd } else { 0x0800 });
                    assert_eq!(g.key(), key);
                    assert_eq!(g.checksum().is_some(), csum);
                    assert_eq!(p[ip + 1], 0, "version 0");
                    assert!(g.verify_checksum());
                    if csum {
                        assert_eq!(checksum::checksum(&p[ip..]), 0);
                        assert_eq!(&p[ip + 6..ip + 8], &[0, 0], "reserved");
                    }
                    assert_eq!(&p[ip + gl..], &inner[..]);
                    let mut d = b.clone();
                    let r = decapsulate(&mut d, &[]).unwrap();
                    assert_eq!(
                        r.kind,
                        TunnelKind::Gre {
                            checksum: csum,
                            key
                        }
                    );
                    assert_eq!(d.packet(), &inner[..]);
                }
            }
        }
    }
}

#[test]
fn trailing_padding_is_dropped() {
    let inner = inner_v4(0, 64, false, b"");
    let mut padded = inner.clone();
    padded.extend_from_slice(&[0; 6]);
    let mut b = PacketBuf::with_headroom(64, &padded);
    encapsulate(&mut b, &tunnel(TunnelKind::Ipip, false), 0).unwrap();
    assert_eq!(b.len(), inner.len() + 20);
    assert_eq!(&b.packet()[20..], &inner[..]);
    // Decapsulation trims padding behind the outer packet and behind the inner one.
    let mut outer = b.packet().to_vec();
    outer.extend_from_slice(&[0xee; 5]);
    let mut d = PacketBuf::with_headroom(0, &outer);
    decapsulate(&mut d, &[]).unwrap();
    assert_eq!(d.packet(), &inner[..]);
}

fn assert_unchanged_err<F: FnOnce(&mut PacketBuf) -> Result<(), RewriteError>>(
    mut b: PacketBuf,
    f: F,
) -> RewriteError {
    let before = b.clone();
    let e = f(&mut b).unwrap_err();
    assert_eq!(b, before, "buffer and range unchanged after {e:?}");
    e
}

#[test]
fn encapsulate_errors_leave_buffer_unchanged() {
    let inner = inner_v4(0, 64, true, b"data");
    let ipip = tunnel(TunnelKind::Ipip, false);
    // Mixed outer families.
    let mixed = Tunnel::new(TunnelKind::Ipip, V4_SRC.into(), V6_DST.into());
    let e = assert_unchanged_err(PacketBuf::with_headroom(64, &inner), |b| {
        encapsulate(b, &mixed, 0)
    });
    assert_eq!(e, RewriteError::FamilyMismatch);
    // Headroom one short, for every kind.
    for t in [
        ipip,
        tunnel(
            TunnelKind::Gue {
                port: 1,
                checksum: GueChecksum::Csum,
            },
            true,
        ),
        tunnel(
            TunnelKind::Gre {
                checksum: true,
                key: Some(1),
            },
            true,
        ),
    ] {
        let n = t.overhead();
        let e = assert_unchanged_err(PacketBuf::with_headroom(n - 1, &inner), |b| {
            encapsulate(b, &t, 0)
        });
        assert_eq!(
            e,
            RewriteError::InsufficientHeadroom {
                needed: n,
                available: n - 1
            }
        );
    }
    // Malformed inner packet: bad IPv4 header checksum, truncated.
    let mut bad = inner.clone();
    bad[10] ^= 0xff;
    let e = assert_unchanged_err(PacketBuf::with_headroom(64, &bad), |b| {
        encapsulate(b, &ipip, 0)
    });
    assert!(matches!(e, RewriteError::Parse(_)));
    let e = assert_unchanged_err(
        PacketBuf::with_headroom(64, &inner[..inner.len() - 1]),
        |b| encapsulate(b, &ipip, 0),
    );
    assert!(matches!(e, RewriteError::Parse(_)));
    // Too long: a 65515-byte inner packet plus 20 bytes of IPv4 would exceed 65535.
    let big = inner_v4(0, 64, false, &vec![0u8; 65515 - 40]);
    assert_eq!(big.len(), 65515);
    let ok = encap(&big, &ipip, 0);
    assert_eq!(ok.len(), 65535);
    let gue = tunnel(
        TunnelKind::Gue {
            port: 1,
            checksum: GueChecksum::None,
        },
        false,
    );
    let e = assert_unchanged_err(PacketBuf::with_headroom(64, &big), |b| {
        encapsulate(b, &gue, 0)
    });
    assert_eq!(e, RewriteError::TooLong(65515 + 32));
    // IPv6 outer allows 65535 bytes of payload.
    let ok6 = encap(
        &big,
        &tunnel(
            TunnelKind::Gue {
                port: 1,
                checksum: GueChecksum::Csum,
            },
            true,
        ),
        0,
    );
    assert_eq!(ok6.len(), 40 + 65515 + 12);
    oracle(ok6.packet());
}

#[test]
fn decapsulate_errors_leave_buffer_unchanged() {
    let inner = inner_v4(0, 64, false, b"data");
    // Not a tunnel packet.
    let e = assert_unchanged_err(PacketBuf::with_headroom(0, &inner), |b| {
        decapsulate(b, &[80]).map(|_| ())
    });
    assert_eq!(e, RewriteError::NotEncapsulated);
    let plain_udp = inner_v6(0, 64, b"x");
    let e = assert_unchanged_err(PacketBuf::with_headroom(0, &plain_udp), |b| {
        decapsulate(b, &[6080]).map(|_| ())
    });
    assert_eq!(e, RewriteError::NotEncapsulated);

    let gre = encap(
        &inner,
        &tunnel(
            TunnelKind::Gre {
                checksum: true,
                key: None,
            },
            false,
        ),
        0,
    );
    let mut bad = gre.clone();
    let at = bad.len() - 1;
    bad.packet_mut()[at] ^= 1; // payload byte: GRE checksum fails (and inner TCP is not checked)
    let e = assert_unchanged_err(bad, |b| decapsulate(b, &[]).map(|_| ()));
    assert!(matches!(
        e,
        RewriteError::Parse(ParseError {
            layer: Layer::Gre,
            kind: ParseErrorKind::BadChecksum,
            ..
        })
    ));

    for v6 in [false, true] {
        let gue = encap(
            &inner,
            &tunnel(
                TunnelKind::Gue {
                    port: 6080,
                    checksum: GueChecksum::Csum,
                },
                v6,
            ),
            0,
        );
        let mut bad = gue.clone();
        let at = bad.len() - 1;
        bad.packet_mut()[at] ^= 1;
        let e = assert_unchanged_err(bad, |b| decapsulate(b, &[6080]).map(|_| ()));
        assert!(matches!(
            e,
            RewriteError::Parse(ParseError {
                layer: Layer::Udp,
                kind: ParseErrorKind::BadChecksum,
                ..
            })
        ));
    }

    // Outer IPv4 header checksum.
    let ipip = encap(&inner, &tunnel(TunnelKind::Ipip, false), 0);
    let mut bad = ipip.clone();
    bad.packet_mut()[8] = 1; // TTL changed, checksum not
    let e = assert_unchanged_err(bad, |b| decapsulate(b, &[]).map(|_| ()));
    assert!(matches!(
        e,
        RewriteError::Parse(ParseError {
            kind: ParseErrorKind::BadChecksum,
            ..
        })
    ));

    // Inner packet malformed (inner IPv4 checksum broken, outer fixed up).
    let mut bad = ipip.clone();
    bad.packet_mut()[20 + 8] = 1;
    let e = assert_unchanged_err(bad, |b| decapsulate(b, &[]).map(|_| ()));
    assert!(
        matches!(e, RewriteError::Parse(ParseError { offset: 30, .. })),
        "{e:?}"
    );

    // IPIP protocol 4 carrying an IPv6 packet.
    let mut wrong = encap(&inner_v6(0, 1, b""), &tunnel(TunnelKind::Ipip, false), 0);
    wrong.packet_mut()[9] = proto::IPIP;
    fix_v4(wrong.packet_mut());
    let e = assert_unchanged_err(wrong, |b| decapsulate(b, &[]).map(|_| ()));
    assert!(matches!(
        e,
        RewriteError::Parse(_) | RewriteError::NotEncapsulated
    ));

    // GUE with a REMCSUM option is refused, not half-processed.
    let mut v = Vec::new();
    PacketBuilder::ipv4(V4_SRC.octets(), V4_DST.octets(), 5)
        .udp(40000, 6080)
        .write(&mut v, &{
            let mut g = vec![2u8, 4, 0, 1, 0x80, 0, 0, 0, 0, 20, 0, 36];
            g.extend_from_slice(&inner);
            g
        })
        .unwrap();
    let e = assert_unchanged_err(PacketBuf::with_headroom(0, &v), |b| {
        decapsulate(b, &[6080]).map(|_| ())
    });
    assert!(
        matches!(
            e,
            RewriteError::Parse(ParseError {
                layer: Layer::Gue,
                ..
            })
        ),
        "{e:?}"
    );
    // GUE carrying an unknown protocol.
    let mut v = Vec::new();
    PacketBuilder::ipv4(V4_SRC.octets(), V4_DST.octets(), 5)
        .udp(40000, 6080)
        .write(&mut v, &[0, 17, 0, 0, 1, 2])
        .unwrap();
    let e = assert_unchanged_err(PacketBuf::with_headroom(0, &v), |b| {
        decapsulate(b, &[6080]).map(|_| ())
    });
    assert_eq!(e, RewriteError::NotEncapsulated);
}

#[test]
fn decapsulates_foreign_gue_and_gre_built_by_etherparse() {
    // A GUE packet built independently, with a zero UDP checksum over IPv6 (RFC 6936).
    let inner = inner_v4(0, 64, false, b"hi");
    let mut payload = vec![0u8, 4, 0, 0];
    payload.extend_from_slice(&inner);
    let mut v = Vec::new();
    PacketBuilder::ipv6(V6_SRC.octets(), V6_DST.octets(), 7)
        .udp(50000, 5555)
        .write(&mut v, &payload)
        .unwrap();
    let mut b = PacketBuf::with_headroom(0, &v);
    let r = decapsulate(&mut b, &[5555]).unwrap();
    assert_eq!(
        r.kind,
        TunnelKind::Gue {
            port: 5555,
            checksum: GueChecksum::Csum
        }
    );
    assert_eq!(b.packet(), &inner[..]);
    v[40 + 6..40 + 8].fill(0);
    let mut b = PacketBuf::with_headroom(0, &v);
    let r = decapsulate(&mut b, &[5555]).unwrap();
    assert_eq!(
        r.kind,
        TunnelKind::Gue {
            port: 5555,
            checksum: GueChecksum::None
        }
    );
    assert_eq!(b.packet(), &inner[..]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = TunnelKind> {
        prop_oneof![
            Just(TunnelKind::Ipip),
            (any::<u16>(), 0u8..3).prop_map(|(port, c)| TunnelKind::Gue {
                port,
                checksum: [GueChecksum::None, GueChecksum::Csum, GueChecksum::RemCsum]
                    [usize::from(c)],
            }),
            (any::<bool>(), proptest::option::of(any::<u32>()))
                .prop_map(|(checksum, key)| TunnelKind::Gre { checksum, key }),
        ]
    }

    proptest! {
        #[test]
        fn encapsulate_then_decapsulate_is_identity(
            k in kind(),
            v6_outer in any::<bool>(),
            v6_inner in any::<bool>(),
            tos in any::<u8>(),
            ttl in any::<u8>(),
            df in any::<bool>(),
            copy_df in any::<bool>(),
            id in any::<u16>(),
            key in any::<[u8; 16]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let inner = if v6_inner { inner_v6(tos, ttl, &payload) } else { inner_v4(tos, ttl, df, &payload) };
            let mut t = tunnel(k, v6_outer);
            t.copy_df = copy_df;
            t.flow_hash_key = key;
            let mut b = PacketBuf::with_headroom(crate::buf::DEFAULT_HEADROOM, &inner);
            let before = b.clone();
            encapsulate(&mut b, &t, id).unwrap();
            prop_assert_eq!(b.len(), inner.len() + t.overhead());
            {
                let sp = oracle(b.packet());
                if let Some(NetSlice::Ipv4(ip)) = &sp.net {
                    let want_df = copy_df && df && !v6_inner;
                    prop_assert_eq!(ip.header().dont_fragment(), want_df);
                    prop_assert_eq!(ip.header().identification(), if want_df { 0 } else { id });
                    prop_assert_eq!(ip.header().ttl(), ttl);
                }
            }
            let port = match k { TunnelKind::Gue { port, .. } => port, _ => 1 };
            let r = decapsulate(&mut b, &[port]).unwrap();
            prop_assert_eq!(r.outer_src, t.src);
            prop_assert_eq!(r.outer_tos, ecn_encapsulate(tos));
            // Same bytes and range; the headroom keeps the old outer header, as it may.
            prop_assert_eq!(b.packet(), before.packet());
            prop_assert_eq!(b.headroom(), before.headroom());
        }
    }
}

#[test]
fn cached_flow_hash_gives_the_same_bytes() {
    let pkt = crate::fuzzing::sample_tcp_v4();
    let key = [9u8; 16];
    let mut t = Tunnel::new(
        TunnelKind::Gue {
            port: 6080,
            checksum: GueChecksum::Csum,
        },
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
    );
    t.flow_hash_key = key;
    let mut a = crate::PacketBuf::with_headroom(64, &pkt);
    let mut b = a.clone();
    super::encapsulate(&mut a, &t, 5).unwrap();
    let h = super::flow_hash_of(&pkt, &key).unwrap();
    super::encapsulate_flow(&mut b, &t, 5, Some(h)).unwrap();
    assert_eq!(a.packet(), b.packet());
}
