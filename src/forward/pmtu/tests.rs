use super::*;
use crate::checksum;
use crate::forward::tunnel::{GueChecksum, TunnelKind};
use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

const CLIENT4: [u8; 4] = [198, 51, 100, 7];
const VIP4: [u8; 4] = [192, 0, 2, 1];
const CLIENT6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const VIP6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn fix_v4(p: &mut [u8]) {
    p[10..12].fill(0);
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// An IPv4 TCP packet of exactly `len` bytes.
fn v4(len: usize, df: bool, tos: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(CLIENT4, VIP4, 64)
        .tcp(40000, 80, 1, 1000)
        .write(&mut v, &vec![0x5a; len - 40])
        .unwrap();
    v[1] = tos;
    v[6] = if df { 0x40 } else { 0 };
    fix_v4(&mut v);
    v
}

/// An IPv6 UDP packet of exactly `len` bytes.
fn v6(len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, VIP6, 64)
        .udp(5000, 53)
        .write(&mut v, &vec![0x6b; len - 48])
        .unwrap();
    v
}

/// An IPv6 non-first fragment of `len` bytes.
fn v6_nonfirst(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[0] = 0x60;
    v[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    v[6] = 44;
    v[7] = 64;
    v[8..24].copy_from_slice(&CLIENT6);
    v[24..40].copy_from_slice(&VIP6);
    v[40] = 17;
    v[42..44].copy_from_slice(&(1448u16 | 1).to_be_bytes()); // offset 1448, M
    v
}

/// An ICMPv4 error (port unreachable) quoting a UDP packet, padded to `len` bytes.
fn v4_icmp_error(len: usize, df: bool) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(VIP4, CLIENT4, 64)
        .udp(53, 5000)
        .write(&mut quoted, &[])
        .unwrap();
    quoted.resize(len - 28, 0);
    let mut v = Vec::new();
    PacketBuilder::ipv4(CLIENT4, VIP4, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut v, &quoted)
        .unwrap();
    v[6] = if df { 0x40 } else { 0 };
    fix_v4(&mut v);
    v
}

fn v6_icmp_error(len: usize) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv6(VIP6, CLIENT6, 64)
        .udp(53, 5000)
        .write(&mut quoted, &[])
        .unwrap();
    quoted.resize(len - 48, 0);
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, VIP6, 64)
        .icmpv6_raw(1, 4, [0; 4])
        .write(&mut v, &quoted)
        .unwrap();
    v
}

fn sum(p: &[u8]) -> PacketSummary {
    PacketSummary::parse(p).unwrap()
}

fn tun(kind: TunnelKind, v6_outer: bool) -> Tunnel {
    if v6_outer {
        Tunnel::new(
            kind,
            "2001:db8::a".parse().unwrap(),
            "2001:db8::b".parse().unwrap(),
        )
    } else {
        Tunnel::new(
            kind,
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        )
    }
}

#[test]
fn ipv4_df_and_no_df() {
    assert_eq!(check(&sum(&v4(1500, true, 0)), 1500, None), MtuCheck::Fits);
    assert_eq!(
        check(&sum(&v4(1500, true, 0)), 1499, None),
        MtuCheck::TooBig { mtu: 1499 }
    );
    assert_eq!(
        check(&sum(&v4(1500, false, 0)), 1499, None),
        MtuCheck::Fragment
    );
    assert_eq!(check(&sum(&v4(1499, false, 0)), 1499, None), MtuCheck::Fits);
}

#[test]
fn ipv4_through_tunnels() {
    let ipip = tun(TunnelKind::Ipip, false);
    assert_eq!(
        check(&sum(&v4(1480, true, 0)), 1500, Some(&ipip)),
        MtuCheck::Fits
    );
    assert_eq!(
        check(&sum(&v4(1481, true, 0)), 1500, Some(&ipip)),
        MtuCheck::TooBig { mtu: 1480 }
    );
    assert_eq!(
        check(&sum(&v4(1481, false, 0)), 1500, Some(&ipip)),
        MtuCheck::Fragment
    );
    // pmtu_disc off: never a reply, even with DF.
    let nodf = Tunnel {
        copy_df: false,
        ..ipip
    };
    assert_eq!(
        check(&sum(&v4(1481, true, 0)), 1500, Some(&nodf)),
        MtuCheck::Fragment
    );
    assert_eq!(
        check(&sum(&v4(1480, true, 0)), 1500, Some(&nodf)),
        MtuCheck::Fits
    );
    // GUE over IPv6 outer: 40 + 8 + 4.
    let gue = tun(
        TunnelKind::Gue {
            port: 6080,
            checksum: GueChecksum::Csum,
        },
        true,
    );
    assert_eq!(
        check(&sum(&v4(1449, true, 0)), 1500, Some(&gue)),
        MtuCheck::TooBig { mtu: 1448 }
    );
    // GRE with checksum and key: 20 + 12.
    let gre = tun(
        TunnelKind::Gre {
            checksum: true,
            key: Some(1),
        },
        false,
    );
    assert_eq!(
        check(&sum(&v4(1469, true, 0)), 1500, Some(&gre)),
        MtuCheck::TooBig { mtu: 1468 }
    );
}

#[test]
fn ipv6_rules() {
    assert_eq!(check(&sum(&v6(1280)), 1280, None), MtuCheck::Fits);
    assert_eq!(
        check(&sum(&v6(1281)), 1280, None),
        MtuCheck::TooBig { mtu: 1280 }
    );
    let ipip6 = tun(TunnelKind::Ipip, true);
    assert_eq!(
        check(&sum(&v6(1461)), 1500, Some(&ipip6)),
        MtuCheck::TooBig { mtu: 1460 }
    );
    // pmtu_disc does not apply to IPv6 packets.
    let nodf = Tunnel {
        copy_df: false,
        ..ipip6
    };
    assert_eq!(
        check(&sum(&v6(1461)), 1500, Some(&nodf)),
        MtuCheck::TooBig { mtu: 1460 }
    );
    // 6in4: the minimum is the outer family's (68), the rule the inner family's.
    let ipip4 = tun(TunnelKind::Ipip, false);
    assert_eq!(
        check(&sum(&v6(1281)), 1300, Some(&ipip4)),
        MtuCheck::TooBig { mtu: 1280 }
    );
}

#[test]
fn no_reply_for_icmp_errors_and_non_first_fragments() {
    // IPv4: ICMP errors are exempt from the check and fragmented despite DF.
    assert_eq!(
        check(&sum(&v4_icmp_error(1400, true)), 1300, None),
        MtuCheck::Fragment
    );
    // IPv4 non-first fragment with DF: icmp_send stays silent, the packet is dropped.
    let mut frag = v4(1400, true, 0);
    frag[7] = 185; // offset 1480
    fix_v4(&mut frag);
    assert_eq!(check(&sum(&frag), 1300, None), MtuCheck::Drop);
    assert_eq!(check(&sum(&frag), 1400, None), MtuCheck::Fits);
    assert_eq!(
        check(&sum(&v4_icmp_error(1400, false)), 1300, None),
        MtuCheck::Fragment
    );
    assert_eq!(
        check(&sum(&v6_icmp_error(1400)), 1300, None),
        MtuCheck::Drop
    );
    assert_eq!(check(&sum(&v6_nonfirst(1400)), 1300, None), MtuCheck::Drop);
    assert_eq!(check(&sum(&v6_nonfirst(1300)), 1300, None), MtuCheck::Fits);
    // ICMP echo is not an error: it gets a reply.
    let mut echo = Vec::new();
    PacketBuilder::ipv6(CLIENT6, VIP6, 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut echo, &[0; 1400])
        .unwrap();
    assert_eq!(
        check(&sum(&echo), 1300, None),
        MtuCheck::TooBig { mtu: 1300 }
    );
}

#[test]
fn tunnel_mtu_below_minimum_drops() {
    let small = v4(40, false, 0);
    let ipip = tun(TunnelKind::Ipip, false);
    assert_eq!(
        check(&sum(&small), 87, Some(&ipip)),
        MtuCheck::Drop,
        "87 - 20 < 68"
    );
    assert_eq!(check(&sum(&small), 88, Some(&ipip)), MtuCheck::Fits);
    assert_eq!(
        check(&sum(&small), 10, Some(&ipip)),
        MtuCheck::Drop,
        "underflow"
    );
    let ipip6 = tun(TunnelKind::Ipip, true);
    assert_eq!(
        check(&sum(&small), 1319, Some(&ipip6)),
        MtuCheck::Drop,
        "1319 - 40 < 1280"
    );
    assert_eq!(check(&sum(&small), 1320, Some(&ipip6)), MtuCheck::Fits);
    // Without a tunnel no minimum is applied (the route MTU is what it is).
    assert_eq!(check(&sum(&small), 40, None), MtuCheck::Fits);
}

#[test]
fn too_big_v4_field_by_field() {
    for (len, tos) in [(1500usize, 0xb9u8), (100, 0x1e), (548, 0), (549, 0xff)] {
        let orig = v4(len, true, tos);
        let mut out = [0xeeu8; 700];
        let n = build_too_big_with_ident(&orig, 1480, 0x1234, &mut out).unwrap();
        let quote = len.min(548);
        assert_eq!(n, 28 + quote);
        assert!(n <= 576);
        let p = &out[..n];
        assert_eq!(p[0], 0x45);
        assert_eq!(
            p[1],
            (tos & 0x1e) | 0xc0,
            "RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL"
        );
        assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, n);
        assert_eq!(&p[4..6], &[0x12, 0x34]);
        assert_eq!(&p[6..8], &[0, 0], "no DF, no fragment");
        assert_eq!(p[8], 64);
        assert_eq!(p[9], 1);
        assert_eq!(checksum::checksum(&p[..20]), 0);
        assert_eq!(&p[12..16], &VIP4, "from the VIP");
        assert_eq!(&p[16..20], &CLIENT4, "to the client");
        assert_eq!(&p[20..24], &[3, 4, p[22], p[23]]);
        assert_eq!(&p[24..28], &1480u32.to_be_bytes());
        assert_eq!(checksum::checksum(&p[20..]), 0);
        assert_eq!(&p[28..], &orig[..quote]);
        assert!(
            out[n..].iter().all(|&b| b == 0xee),
            "nothing written past the reply"
        );
        let sp = SlicedPacket::from_ip(p).unwrap();
        let Some(NetSlice::Ipv4(ip)) = sp.net else {
            panic!()
        };
        let h = ip.header();
        assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = sp.transport else {
            panic!()
        };
        assert_eq!(
            icmp.icmp_type(),
            Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1480
                }
            )
        );
        // The reply is itself a valid ICMP error quoting our packet.
        let s = sum(p);
        assert_eq!(s.quoted.unwrap().ports.unwrap().src, 40000);
    }
    // build_too_big uses identification 0.
    let mut out = [0u8; 600];
    let n = build_too_big(&v4(200, true, 0), 100, &mut out).unwrap();
    assert_eq!(&out[4..6], &[0, 0]);
    assert_eq!(n, 228);
}

#[test]
fn too_big_v6_field_by_field() {
    for len in [1500usize, 1280, 1232, 1233, 60] {
        let orig = v6(len);
        let mut out = [0xeeu8; 1400];
        let n = build_too_big(&orig, 1280, &mut out).unwrap();
        let quote = len.min(1232);
        assert_eq!(n, 48 + quote);
        assert!(n <= 1280);
        let p = &out[..n];
        assert_eq!(
            &p[0..4],
            &[0x60, 0, 0, 0],
            "version 6, traffic class 0, flow label 0"
        );
        assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, n - 40);
        assert_eq!(p[6], 58);
        assert_eq!(p[7], 64);
        assert_eq!(&p[8..24], &VIP6);
        assert_eq!(&p[24..40], &CLIENT6);
        assert_eq!(&p[40..42], &[2, 0]);
        assert_eq!(&p[44..48], &1280u32.to_be_bytes());
        assert_eq!(&p[48..], &orig[..quote]);
        let pseudo = checksum::pseudo_v6(VIP6.into(), CLIENT6.into(), 58, (n - 40) as u32);
        assert_eq!(checksum::finish(checksum::add(pseudo, &p[40..])), 0);
        let sp = SlicedPacket::from_ip(p).unwrap();
        let Some(TransportSlice::Icmpv6(icmp)) = sp.transport else {
            panic!()
        };
        assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1280 });
        assert!(icmp.is_checksum_valid(VIP6, CLIENT6));
        assert!(out[n..].iter().all(|&b| b == 0xee));
    }
}

#[test]
fn too_big_errors_write_nothing() {
    let orig = v4(1500, true, 0);
    let mut out = [0xeeu8; 575];
    assert_eq!(
        build_too_big(&orig, 1400, &mut out),
        Err(RewriteError::OutputTooSmall {
            needed: 576,
            available: 575
        })
    );
    assert!(out.iter().all(|&b| b == 0xee));
    let mut out = [0xeeu8; 1500];
    let mut bad = orig.clone();
    bad[10] ^= 1;
    assert!(matches!(
        build_too_big(&bad, 1400, &mut out),
        Err(RewriteError::Parse(_))
    ));
    assert_eq!(
        build_too_big(&v4_icmp_error(600, true), 500, &mut out),
        Err(RewriteError::UnsupportedProtocol(1))
    );
    assert_eq!(
        build_too_big(&v6_icmp_error(1400), 1280, &mut out),
        Err(RewriteError::UnsupportedProtocol(58))
    );
    assert_eq!(
        build_too_big(&v6_nonfirst(1400), 1280, &mut out),
        Err(RewriteError::UnsupportedProtocol(17))
    );
    assert!(out.iter().all(|&b| b == 0xee));
}
