//! Entry points for fuzzers and property tests, and sample packets for examples.
//!
//! Each `fuzz_*` function takes arbitrary bytes, runs one parser or rewrite, and panics
//! only if an invariant of this crate is broken (a rewrite that fails but changed the
//! buffer, a checksum that no longer verifies, a parser that panics). The `fuzz/` crate
//! calls them under libFuzzer; the test suite calls them over the fuzz corpus on stable.

/// A valid IPv4 TCP SYN from 198.51.100.7:40000 to 192.0.2.1:80, 64 bytes long
/// (20-byte IPv4 header, 20-byte TCP header, 24 bytes of payload).
#[must_use]
pub fn sample_tcp_v4() -> [u8; 64] {
    let mut p = [0u8; 64];
    crate::wire::ipv4::emit_header(
        &mut p,
        0,
        64,
        0x1234,
        crate::wire::ipv4::FLAG_DF,
        64,
        crate::wire::proto::TCP,
        [198, 51, 100, 7].into(),
        [192, 0, 2, 1].into(),
    );
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = crate::wire::tcp::flags::SYN;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    for (i, b) in t[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let acc = crate::checksum::pseudo_v4([198, 51, 100, 7].into(), [192, 0, 2, 1].into(), 6, 44);
    let c = crate::checksum::finish(crate::checksum::add(acc, &p[20..]));
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

use crate::checksum;
use crate::forward::nat;
use crate::wire::{self, Family, Fragment, PacketSummary, proto};
use core::net::IpAddr;

/// Whether the transport checksum of a whole, parsed packet verifies by full
/// recomputation; `None` where it cannot be judged (fragments, IPv4 UDP without a
/// checksum, protocols without one, ICMPv4 errors are judged over the message).
#[must_use]
pub fn l4_checksum_ok(pkt: &[u8]) -> Option<bool> {
    let s = PacketSummary::parse(pkt).ok()?;
    if s.fragment != Fragment::Unfragmented {
        return None;
    }
    let l4 = &pkt[s.l4_offset..s.l3_offset + s.l3_len];
    let pseudo = |p: u8| match (s.src, s.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => checksum::pseudo_v4(a, b, p, l4.len() as u16),
        (IpAddr::V6(a), IpAddr::V6(b)) => checksum::pseudo_v6(a, b, p, l4.len() as u32),
        _ => 0,
    };
    match s.protocol {
        proto::TCP => Some(checksum::finish(checksum::add(pseudo(proto::TCP), l4)) == 0),
        proto::UDP => {
            let field = wire::be16(l4, 6);
            if field == 0 {
                return (s.family == Family::V6).then_some(false);
            }
            Some(checksum::finish(checksum::add(pseudo(proto::UDP), l4)) == 0)
        }
        proto::ICMP if s.family == Family::V4 => Some(checksum::checksum(l4) == 0),
        proto::ICMPV6 => Some(checksum::finish(checksum::add(pseudo(proto::ICMPV6), l4)) == 0),
        proto::SCTP => wire::SctpPacket::new_checked(l4)
            .ok()
            .map(|p| p.verify_checksum()),
        _ => None,
    }
}

/// Splits fuzz input into an address of the packet's family (or the other family when
/// the selector byte says so), a port, and the packet.
fn params(data: &[u8]) -> Option<(IpAddr, u16, &[u8])> {
    let (head, pkt) = data.split_at_checked(19)?;
    let v6 = match pkt.first().map(|b| b >> 4) {
        Some(6) => head[0] & 0x80 == 0,
        _ => head[0] & 0x80 != 0,
    };
    let addr = if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&head[1..17]);
        IpAddr::from(a)
    } else {
        IpAddr::from([head[1], head[2], head[3], head[4]])
    };
    Some((addr, u16::from_be_bytes([head[17], head[18]]), pkt))
}

/// Fuzz body: [`PacketSummary::parse`] never panics, and what it accepts is consistent.
pub fn summary_ip(data: &[u8]) {
    if let Ok(s) = PacketSummary::parse(data) {
        assert!(s.l3_offset + s.l3_len <= data.len());
        assert!(s.l4_offset <= s.l3_offset + s.l3_len);
        if let Some(q) = s.quoted {
            assert!(q.l4_offset + q.l4_len <= s.l3_offset + s.l3_len);
        }
    }
}

/// Fuzz body: [`PacketSummary::parse_ethernet`] never panics.
pub fn summary_ethernet(data: &[u8]) {
    if let Ok(s) = PacketSummary::parse_ethernet(data) {
        assert!(s.l3_offset >= 14 && s.l3_offset + s.l3_len <= data.len());
    }
}

/// Fuzz body: the IPv4 and IPv6 views and the extension-header walk never panic.
pub fn views_ip(data: &[u8]) {
    if let Ok(p) = wire::Ipv4Packet::new_checked(data) {
        let _ = (
            p.options(),
            p.payload(),
            p.verify_checksum(),
            p.frag_offset(),
            p.src(),
            p.dst(),
        );
    }
    if let Ok(p) = wire::Ipv4Packet::new_checked_header(data) {
        let _ = (p.options(), p.payload());
    }
    if let Ok(p) = wire::Ipv6Packet::new_checked(data) {
        let _ = (p.payload(), p.flow_label(), p.traffic_class());
        if let Ok(c) = p.extensions() {
            assert!(c.count <= wire::MAX_IPV6_EXTENSIONS);
            assert!(c.len <= p.payload().len());
        }
    }
    if let Some((&first, rest)) = data.split_first() {
        let _ = wire::ExtensionChain::walk(rest, first);
    }
}

/// Fuzz body: the transport, ICMP and tunnel header views never panic.
pub fn views_l4(data: &[u8]) {
    if let Ok(p) = wire::TcpPacket::new_checked(data) {
        let _ = (p.payload(), p.flags(), p.seq(), p.ack(), p.window());
    }
    if let Ok(p) = wire::UdpPacket::new_checked(data) {
        let _ = p.payload();
    }
    if let Ok(p) = wire::SctpPacket::new_checked(data) {
        let _ = (p.verify_checksum(), p.first_chunk_type());
    }
    if let Ok(p) = wire::Icmpv4Packet::new_checked(data) {
        let _ = (p.data(), p.verify_checksum(), p.next_hop_mtu());
    }
    if let Ok(p) = wire::Icmpv6Packet::new_checked(data) {
        let _ = (p.data(), p.mtu());
    }
    if let Ok(p) = wire::GrePacket::new_checked(data) {
        let _ = (p.payload(), p.key(), p.seq(), p.verify_checksum());
    }
    if let Ok(p) = wire::GuePacket::new_checked(data) {
        let _ = (p.payload(), p.remcsum(), p.protocol());
    }
    if let Ok(p) = wire::EthernetFrame::new_checked(data) {
        let _ = (p.payload(), p.vlan_tci(), p.ethertype());
    }
}

fn nat_body(data: &[u8], side: nat::Side) {
    let Some((addr, port, pkt)) = params(data) else {
        return;
    };
    let mut buf = pkt.to_vec();
    let before_ok = l4_checksum_ok(pkt);
    let r = match side {
        nat::Side::Dst => nat::inbound(&mut buf, addr, port),
        _ => nat::outbound(&mut buf, addr, port),
    };
    match r {
        Err(_) => assert_eq!(buf, pkt, "a failed rewrite changed the buffer"),
        Ok(()) => {
            let s = PacketSummary::parse(&buf).expect("a rewritten packet parses");
            let written = if side == nat::Side::Dst { s.dst } else { s.src };
            assert_eq!(written, addr);
            if before_ok == Some(true) {
                assert_eq!(
                    l4_checksum_ok(&buf),
                    Some(true),
                    "a valid checksum was broken"
                );
            }
            let ports = s
                .ports
                .filter(|_| s.quoted.is_none() && s.fragment.has_transport_header());
            if let Some(p) = ports {
                let got = if side == nat::Side::Dst { p.dst } else { p.src };
                assert_eq!(got, port);
            }
        }
    }
}

/// Fuzz body: inbound NAT either fails leaving the buffer unchanged, or writes the
/// requested destination and keeps every valid checksum valid.
pub fn nat_inbound(data: &[u8]) {
    nat_body(data, nat::Side::Dst);
}

/// Fuzz body: outbound NAT, as [`nat_inbound`] for the source side.
pub fn nat_outbound(data: &[u8]) {
    nat_body(data, nat::Side::Src);
}
