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

/// An IPv6 UDP packet from 2001:db8::7:1000 to fd..fd:2000 behind a hop-by-hop header
/// of 2048 bytes of Pad1 options, 2100 bytes long: longer than an ICMPv6 error can quote
/// up to its transport header.
#[must_use]
pub fn sample_udp_v6_long_hop_by_hop() -> Vec<u8> {
    let mut p = vec![0u8; 40 + 2048 + 8 + 4];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(2048u16 + 12).to_be_bytes());
    p[6] = 0; // hop-by-hop
    p[7] = 64;
    p[8..24].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
    p[24..40].copy_from_slice(&[0xfd; 16]);
    p[40] = proto::UDP;
    p[41] = 255; // (255 + 1) * 8 bytes
    let u = 40 + 2048;
    p[u..u + 2].copy_from_slice(&1000u16.to_be_bytes());
    p[u + 2..u + 4].copy_from_slice(&2000u16.to_be_bytes());
    p[u + 4..u + 6].copy_from_slice(&12u16.to_be_bytes());
    p[u + 8..].copy_from_slice(b"data");
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    a.copy_from_slice(&p[8..24]);
    b.copy_from_slice(&p[24..40]);
    let acc = checksum::pseudo_v6(a.into(), b.into(), proto::UDP, 12);
    let c = checksum::finish(checksum::add(acc, &p[u..]));
    p[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
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

// ---------------------------------------------------------------------------------------
// Tunnel, decapsulation, direct routing, TTL and path-MTU rewrites.
//
// The rewrite bodies below read their parameters from a fixed-length prefix of the fuzz
// input and treat the rest as the packet. The `*_input` functions build such inputs
// from typed parameters (the seed corpora are made with them), and decoding an encoded
// input gives the same parameters back.

use crate::buf::PacketBuf;
use crate::error::Layer;
use crate::forward::pmtu::{self, MtuCheck};
use crate::forward::tunnel::{self, GueChecksum, Tunnel, TunnelKind};
use crate::forward::{dr, ttl as ttl_mod};
use crate::wire::{GrePacket, MacAddr};

/// Bytes of the tunnel parameter block: a kind byte, the GUE port (2), the GRE key (4),
/// the outer source and destination (16 each; an IPv4 address takes the first 4), and
/// the flow-hash key (16).
///
/// Kind byte: bits 0-1 pick IPIP (0), GUE (1) or GRE (2, 3); for GUE bits 2-3 pick the
/// checksum policy (0 none, 1 csum, 2 remcsum, 3 none); for GRE bit 2 adds the checksum
/// and bit 3 the key. Bit 4 makes the outer source IPv6, bit 6 gives the destination the
/// other family (a mismatched tunnel), bit 5 sets [`Tunnel::copy_df`].
pub const TUNNEL_PARAMS_LEN: usize = 55;

/// Bytes before the packet in an [`encap`] input: the tunnel block
/// ([`TUNNEL_PARAMS_LEN`]), the outer IPv4 identification (2), and the headroom (1).
pub const ENCAP_PARAMS_LEN: usize = TUNNEL_PARAMS_LEN + 3;

/// Bytes before the packet in a [`pmtu()`] input: the link MTU (4), a byte whose bit 0
/// says a tunnel follows, the IPv4 identification of the reply (2), and the tunnel
/// block ([`TUNNEL_PARAMS_LEN`], ignored when there is no tunnel).
pub const PMTU_PARAMS_LEN: usize = 7 + TUNNEL_PARAMS_LEN;

/// Bytes before the frame in a [`dr()`] input: the destination and source MAC.
pub const DR_PARAMS_LEN: usize = 12;

/// The GUE ports [`decap`] accepts.
pub const DECAP_GUE_PORTS: &[u16] = &[6080];

/// Headroom in front of the packet in [`decap`].
const DECAP_HEADROOM: usize = 16;

fn addr_from(slot: &[u8], v6: bool) -> IpAddr {
    if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&slot[..16]);
        IpAddr::from(a)
    } else {
        IpAddr::from([slot[0], slot[1], slot[2], slot[3]])
    }
}

fn addr_to(slot: &mut [u8], a: IpAddr) {
    match a {
        IpAddr::V4(a) => slot[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => slot[..16].copy_from_slice(&a.octets()),
    }
}

fn decode_tunnel(p: &[u8]) -> Tunnel {
    let k = p[0];
    let kind = match k & 3 {
        0 => TunnelKind::Ipip,
        1 => TunnelKind::Gue {
            port: u16::from_be_bytes([p[1], p[2]]),
            checksum: match (k >> 2) & 3 {
                1 => GueChecksum::Csum,
                2 => GueChecksum::RemCsum,
                _ => GueChecksum::None,
            },
        },
        _ => TunnelKind::Gre {
            checksum: k & 4 != 0,
            key: (k & 8 != 0).then(|| u32::from_be_bytes([p[3], p[4], p[5], p[6]])),
        },
    };
    let v6 = k & 0x10 != 0;
    let mut t = Tunnel::new(
        kind,
        addr_from(&p[7..23], v6),
        addr_from(&p[23..39], v6 ^ (k & 0x40 != 0)),
    );
    t.copy_df = k & 0x20 != 0;
    t.flow_hash_key.copy_from_slice(&p[39..55]);
    t
}

fn encode_tunnel(t: &Tunnel) -> [u8; TUNNEL_PARAMS_LEN] {
    let mut p = [0u8; TUNNEL_PARAMS_LEN];
    let mut k = match t.kind {
        TunnelKind::Ipip => 0,
        TunnelKind::Gue { port, checksum } => {
            p[1..3].copy_from_slice(&port.to_be_bytes());
            match checksum {
                GueChecksum::None => 1,
                GueChecksum::Csum => 1 | 4,
                GueChecksum::RemCsum => 1 | 8,
            }
        }
        TunnelKind::Gre { checksum, key } => {
            let mut k = 2 | if checksum { 4 } else { 0 };
            if let Some(key) = key {
                k |= 8;
                p[3..7].copy_from_slice(&key.to_be_bytes());
            }
            k
        }
    };
    if t.src.is_ipv6() {
        k |= 0x10;
    }
    if t.src.is_ipv6() != t.dst.is_ipv6() {
        k |= 0x40;
    }
    if t.copy_df {
        k |= 0x20;
    }
    p[0] = k;
    addr_to(&mut p[7..23], t.src);
    addr_to(&mut p[23..39], t.dst);
    p[39..55].copy_from_slice(&t.flow_hash_key);
    p
}

/// An [`encap`] input: encapsulate `pkt` for `t` with outer identification `ip_id`, in a
/// buffer with `headroom` free bytes.
#[must_use]
pub fn encap_input(t: &Tunnel, ip_id: u16, headroom: u8, pkt: &[u8]) -> Vec<u8> {
    let mut v = encode_tunnel(t).to_vec();
    v.extend_from_slice(&ip_id.to_be_bytes());
    v.push(headroom);
    v.extend_from_slice(pkt);
    v
}

fn encap_params(data: &[u8]) -> Option<(Tunnel, u16, usize, &[u8])> {
    let (p, pkt) = data.split_at_checked(ENCAP_PARAMS_LEN)?;
    let t = decode_tunnel(p);
    let ip_id = u16::from_be_bytes([p[TUNNEL_PARAMS_LEN], p[TUNNEL_PARAMS_LEN + 1]]);
    Some((t, ip_id, usize::from(p[TUNNEL_PARAMS_LEN + 2]), pkt))
}

/// A [`pmtu()`] input: check `pkt` against `link_mtu` through `tunnel`, and build the reply
/// with IPv4 identification `ident`.
#[must_use]
pub fn pmtu_input(link_mtu: u32, tunnel: Option<&Tunnel>, ident: u16, pkt: &[u8]) -> Vec<u8> {
    let mut v = link_mtu.to_be_bytes().to_vec();
    v.push(u8::from(tunnel.is_some()));
    v.extend_from_slice(&ident.to_be_bytes());
    v.extend_from_slice(&tunnel.map_or([0; TUNNEL_PARAMS_LEN], encode_tunnel));
    v.extend_from_slice(pkt);
    v
}

fn pmtu_params(data: &[u8]) -> Option<(u32, Option<Tunnel>, u16, &[u8])> {
    let (p, pkt) = data.split_at_checked(PMTU_PARAMS_LEN)?;
    let mtu = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    let t = (p[4] & 1 != 0).then(|| decode_tunnel(&p[7..]));
    Some((mtu, t, u16::from_be_bytes([p[5], p[6]]), pkt))
}

/// A [`dr()`] input: set `dst` and `src` as the MACs of `frame`.
#[must_use]
pub fn dr_input(dst: MacAddr, src: MacAddr, frame: &[u8]) -> Vec<u8> {
    let mut v = dst.0.to_vec();
    v.extend_from_slice(&src.0);
    v.extend_from_slice(frame);
    v
}

/// Fuzz body: [`tunnel::encapsulate`] either fails leaving the buffer (bytes and range)
/// unchanged, or builds an outer packet whose IPv4 header, UDP and GRE checksums verify
/// and which [`tunnel::decapsulate`] turns back into exactly the original packet (without
/// link-layer padding), at the original place in the buffer. Input: see
/// [`ENCAP_PARAMS_LEN`] and [`encap_input`].
pub fn encap(data: &[u8]) {
    let Some((t, ip_id, headroom, pkt)) = encap_params(data) else {
        return;
    };
    let mut buf = PacketBuf::with_headroom(headroom, pkt);
    let before = buf.clone();
    if tunnel::encapsulate(&mut buf, &t, ip_id).is_err() {
        assert_eq!(buf, before, "a failed encapsulation changed the buffer");
        return;
    }
    let s = PacketSummary::parse(pkt).expect("an encapsulated packet parses");
    let inner = &pkt[..s.l3_len];
    let outer = buf.packet();
    assert_eq!(outer.len(), t.overhead() + inner.len());
    let o = PacketSummary::parse(outer).expect("the outer packet parses");
    assert_eq!((o.src, o.dst, o.l3_len), (t.src, t.dst, outer.len()));
    assert_eq!(o.fragment, Fragment::Unfragmented);
    if o.family == Family::V4 {
        assert_eq!(
            checksum::checksum(&outer[..20]),
            0,
            "outer IPv4 header checksum"
        );
    }
    let port = match t.kind {
        TunnelKind::Gue { port, checksum: c } => {
            assert_eq!(o.protocol, proto::UDP);
            if c == GueChecksum::None {
                assert_eq!(wire::be16(outer, o.l4_offset + 6), 0);
            } else {
                assert_eq!(l4_checksum_ok(outer), Some(true), "outer UDP checksum");
            }
            port
        }
        TunnelKind::Gre { checksum: c, key } => {
            assert_eq!(o.protocol, proto::GRE);
            let g = GrePacket::new_checked(&outer[o.l4_offset..]).expect("GRE parses");
            assert_eq!((g.checksum().is_some(), g.key()), (c, key));
            assert!(g.verify_checksum(), "GRE checksum");
            0
        }
        _ => 0,
    };
    let d = tunnel::decapsulate(&mut buf, &[port]).expect("an encapsulated packet decapsulates");
    assert_eq!(buf.packet(), inner, "decapsulation gives back the original");
    assert_eq!((d.outer_src, d.outer_dst), (t.src, t.dst));
    assert_eq!(d.inner, s);
    let want = match t.kind {
        TunnelKind::Gue { port, checksum: c } => TunnelKind::Gue {
            port,
            checksum: if c == GueChecksum::None {
                GueChecksum::None
            } else {
                GueChecksum::Csum
            },
        },
        k => k,
    };
    assert_eq!(d.kind, want);
    let (_, range) = buf.into_parts();
    assert_eq!(range, headroom..headroom + inner.len());
}

/// Fuzz body: [`tunnel::decapsulate`] with the ports [`DECAP_GUE_PORTS`] either fails
/// leaving the buffer unchanged, or leaves a packet inside the original range that
/// parses to the reported inner summary.
pub fn decap(data: &[u8]) {
    let mut buf = PacketBuf::with_headroom(DECAP_HEADROOM, data);
    let before = buf.clone();
    match tunnel::decapsulate(&mut buf, DECAP_GUE_PORTS) {
        Err(_) => assert_eq!(buf, before, "a failed decapsulation changed the buffer"),
        Ok(d) => {
            let s = PacketSummary::parse(buf.packet()).expect("a decapsulated packet parses");
            assert_eq!(s, d.inner);
            assert_eq!(s.l3_len, buf.len());
            assert_eq!(
                buf.storage(),
                before.storage(),
                "decapsulation writes nothing"
            );
            let (_, range) = buf.into_parts();
            assert!(range.start > DECAP_HEADROOM && range.end <= DECAP_HEADROOM + data.len());
        }
    }
}

/// Fuzz body: [`dr::rewrite_macs`] either fails leaving the frame unchanged, or changes
/// only the two MACs, to the requested ones. Input: [`DR_PARAMS_LEN`] bytes of MACs, then
/// the frame.
pub fn dr(data: &[u8]) {
    let Some((macs, frame)) = data.split_at_checked(DR_PARAMS_LEN) else {
        return;
    };
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&macs[..6]);
    src.copy_from_slice(&macs[6..]);
    let mut f = frame.to_vec();
    match dr::rewrite_macs(&mut f, MacAddr(dst), MacAddr(src)) {
        Err(_) => assert_eq!(f, frame, "a failed rewrite changed the frame"),
        Ok(()) => {
            assert_eq!(&f[..12], macs);
            assert_eq!(&f[12..], &frame[12..], "only the MACs change");
        }
    }
}

/// Fuzz body: [`ttl_mod::decrement`] either fails leaving the packet unchanged, or lowers
/// the TTL / hop limit by exactly one, keeps the IPv4 header checksum valid and changes
/// nothing else. Input: the packet, no parameters.
pub fn ttl(data: &[u8]) {
    let mut p = data.to_vec();
    let Ok(new) = ttl_mod::decrement(&mut p) else {
        assert_eq!(p, data, "a failed decrement changed the packet");
        return;
    };
    let s = PacketSummary::parse(data).expect("a decremented packet parses");
    let (at, ck) = match s.family {
        Family::V4 => (8, 10..12),
        Family::V6 => (7, 0..0),
    };
    assert_eq!(p[at], new);
    assert_eq!(u16::from(new) + 1, u16::from(data[at]));
    for (i, (a, b)) in p.iter().zip(data).enumerate() {
        if i != at && !ck.contains(&i) {
            assert_eq!(a, b, "byte {i} changed");
        }
    }
    if s.family == Family::V4 {
        let hl = usize::from(p[0] & 0xf) * 4;
        assert_eq!(checksum::checksum(&p[..hl]), 0, "IPv4 header checksum");
    }
    let after = PacketSummary::parse(&p).expect("the decremented packet parses");
    assert_eq!(after.ttl, new);
}

/// Fuzz body: [`pmtu::check`] never panics and its verdict is consistent with the
/// packet's length; [`pmtu::build_too_big_with_ident`] into a 1500-byte buffer either
/// fails without writing, or builds a parsable ICMP(v6) "too big" error from the
/// original's destination to its source, no longer than Linux sends (576 / 1280 bytes),
/// with valid checksums, quoting as much of the original as fits. Input: see
/// [`PMTU_PARAMS_LEN`] and [`pmtu_input`].
pub fn pmtu(data: &[u8]) {
    let Some((link_mtu, tunnel, ident, pkt)) = pmtu_params(data) else {
        return;
    };
    let Ok(s) = PacketSummary::parse(pkt) else {
        return;
    };
    let verdict = pmtu::check(&s, link_mtu, tunnel.as_ref());
    let mtu = match verdict {
        MtuCheck::TooBig { mtu } => {
            assert!(s.l3_len as u64 > u64::from(mtu) && mtu <= link_mtu);
            mtu
        }
        MtuCheck::Fits => {
            assert!(s.l3_len as u64 <= u64::from(link_mtu));
            link_mtu
        }
        _ => link_mtu,
    };
    const FILL: u8 = 0xa5;
    let mut out = [FILL; 1500];
    let Ok(n) = pmtu::build_too_big_with_ident(pkt, mtu, ident, &mut out) else {
        assert!(out.iter().all(|&b| b == FILL), "a failed build wrote");
        return;
    };
    let reply = &out[..n];
    let orig = s.l3(pkt);
    let (hdr, max, icmp) = match s.family {
        Family::V4 => (28, pmtu::ICMPV4_ERROR_MAX, (proto::ICMP, 3, 4)),
        Family::V6 => (48, pmtu::ICMPV6_ERROR_MAX, (proto::ICMPV6, 2, 0)),
    };
    assert!(n <= max, "reply of {n} bytes");
    let quote = &reply[hdr..];
    assert_eq!(quote, &orig[..orig.len().min(max - hdr)], "quote");
    assert_eq!((reply[hdr - 8], reply[hdr - 7]), (icmp.1, icmp.2));
    assert_eq!(&reply[hdr - 4..hdr], &mtu.to_be_bytes());
    let r = match PacketSummary::parse(reply) {
        Ok(r) => r,
        // Linux quotes by length alone, so an IPv6 extension chain longer than the quote
        // is cut, and the parser rejects a quote that stops before 8 transport bytes.
        Err(e) if quote.len() < orig.len() && quote.len() < s.l4_offset + 8 => {
            assert!(
                matches!(e.layer, Layer::QuotedIp | Layer::QuotedTransport),
                "{e:?}"
            );
            let (IpAddr::V6(a), IpAddr::V6(b)) = (s.dst, s.src) else {
                panic!("an IPv4 quote of {} bytes is cut short", quote.len());
            };
            let m = &reply[40..];
            let acc = checksum::pseudo_v6(a, b, proto::ICMPV6, m.len() as u32);
            assert_eq!(
                checksum::finish(checksum::add(acc, m)),
                0,
                "ICMPv6 checksum"
            );
            return;
        }
        Err(e) => panic!("the reply does not parse: {e:?}"),
    };
    assert_eq!(
        (r.src, r.dst, r.l3_len, r.protocol),
        (s.dst, s.src, n, icmp.0)
    );
    if r.family == Family::V4 {
        assert_eq!(wire::be16(reply, 4), ident);
    }
    assert_eq!(l4_checksum_ok(reply), Some(true), "ICMP checksum");
}

/// The rules of the [`director`] target: NAT, DR and tunnel services, IPv4 and IPv6, a
/// persistent one and a one-packet one.
pub const DIRECTOR_RULES: &str = "\
-A -t 192.0.2.1:80 -s rr
-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 1
-A -u 192.0.2.1:53 -s wlc
-a -u 192.0.2.1:53 -r 10.0.0.3:53 -g -w 1
-A -t 192.0.2.1:443 -s sh -p 30
-a -t 192.0.2.1:443 -r 10.0.0.4:443 -i -w 1
-A -u 192.0.2.1:514 -s rr -o
-a -u 192.0.2.1:514 -r 10.0.0.2:514 -m -w 1
-A -t [2001:db8::1]:80 -s wlc
-a -t [2001:db8::1]:80 -r [2001:db8:1::2]:8080 -m -w 1
";

/// Packs a packet sequence for the [`director`] target: per packet a little-endian
/// length, the time step before it in 100 ms units (255: also run the timers), then the
/// packet.
#[must_use]
pub fn director_input(packets: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (step, p) in packets {
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.push(*step);
        out.extend_from_slice(&p[..usize::from(len)]);
    }
    out
}

/// Fuzz body: a packet sequence (see [`director_input`]) through three directors built
/// from [`DIRECTOR_RULES`]: one with the fast path off, one with it on, and one that takes
/// the packets in bursts (each run of packets with no time step between them) through
/// [`Director::handle_burst`](crate::Director::handle_burst). Never a panic, and the same
/// verdicts, bytes, events and timers from all three: whatever the packets, neither the
/// fast path nor bursts change anything observable.
pub fn director(data: &[u8]) {
    use crate::director::{Config, Director, Event, PacketMeta, Verdict};
    use crate::time::Instant;
    /// What one packet at a time gave, for the burst to match.
    #[derive(Default)]
    struct Pending {
        packets: Vec<(Vec<u8>, Verdict, Vec<u8>)>,
        events: Vec<Event>,
    }
    fn flush(d: &mut Director, now: Instant, p: &mut Pending) {
        let mut ring: Vec<_> = p
            .packets
            .iter()
            .map(|(b, _, _)| PacketBuf::with_headroom(crate::buf::DEFAULT_HEADROOM, b))
            .collect();
        let metas = vec![PacketMeta::default(); ring.len()];
        let mut verdicts = vec![Verdict::Pass; ring.len()];
        assert_eq!(
            d.handle_burst(now, &mut ring, &metas, &mut verdicts),
            Ok(())
        );
        for ((b, v), (_, want, bytes)) in ring.iter().zip(&verdicts).zip(&p.packets) {
            assert_eq!(v, want, "a burst's verdict differs");
            assert_eq!(b.packet(), &bytes[..], "a burst's bytes differ");
        }
        let events: Vec<Event> = core::iter::from_fn(|| d.poll_event()).collect();
        assert_eq!(
            events,
            core::mem::take(&mut p.events),
            "a burst's events differ"
        );
        p.packets.clear();
    }
    let cfg = Config {
        conn_capacity: 64,
        tunnel_source_v4: Some(core::net::Ipv4Addr::new(192, 0, 2, 254)),
        ..Config::default()
    };
    let (Ok(mut fast), Ok(mut slow), Ok(mut burst)) = (
        Director::from_rules(cfg.clone(), [5; 32], DIRECTOR_RULES),
        Director::from_rules(cfg.clone(), [5; 32], DIRECTOR_RULES),
        Director::from_rules(cfg, [5; 32], DIRECTOR_RULES),
    ) else {
        panic!("the target's rules are valid");
    };
    slow.set_fast_path(false);
    let mut pending = Pending::default();
    let mut now = Instant::from_secs(1);
    let mut rest = data;
    while let [lo, hi, step, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        rest = next;
        if *step != 0 {
            flush(&mut burst, now, &mut pending);
        }
        now += core::time::Duration::from_millis(u64::from(*step) * 100);
        if *step == 255 {
            fast.handle_timeout(now);
            slow.handle_timeout(now);
            burst.handle_timeout(now);
        }
        let mut a = PacketBuf::with_headroom(crate::buf::DEFAULT_HEADROOM, pkt);
        let mut b = PacketBuf::with_headroom(crate::buf::DEFAULT_HEADROOM, pkt);
        let va = fast.handle_packet(now, &mut a, PacketMeta::default());
        let vb = slow.handle_packet(now, &mut b, PacketMeta::default());
        assert_eq!(va, vb, "verdicts differ");
        assert_eq!(a.packet(), b.packet(), "bytes differ");
        loop {
            let (ea, eb) = (fast.poll_event(), slow.poll_event());
            assert_eq!(ea, eb, "events differ");
            let Some(e) = ea else { break };
            pending.events.push(e);
        }
        assert_eq!(fast.poll_timeout(), slow.poll_timeout(), "timers differ");
        pending
            .packets
            .push((pkt.to_vec(), va, a.packet().to_vec()));
    }
    flush(&mut burst, now, &mut pending);
    assert_eq!(
        fast.poll_timeout(),
        burst.poll_timeout(),
        "a burst's timers differ"
    );
    assert_eq!(fast.conns().len(), slow.conns().len());
    assert_eq!(fast.conns().len(), burst.conns().len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_params_round_trip() {
        let a4: IpAddr = [10, 0, 0, 1].into();
        let b4: IpAddr = [10, 0, 0, 2].into();
        let a6: IpAddr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1].into();
        let kinds = [
            TunnelKind::Ipip,
            TunnelKind::Gue {
                port: 6080,
                checksum: GueChecksum::None,
            },
            TunnelKind::Gue {
                port: 1,
                checksum: GueChecksum::Csum,
            },
            TunnelKind::Gue {
                port: 65535,
                checksum: GueChecksum::RemCsum,
            },
            TunnelKind::Gre {
                checksum: false,
                key: None,
            },
            TunnelKind::Gre {
                checksum: true,
                key: Some(0xdead_beef),
            },
        ];
        for kind in kinds {
            for (src, dst) in [(a4, b4), (a6, a6), (a4, a6), (a6, b4)] {
                for copy_df in [false, true] {
                    let mut t = Tunnel::new(kind, src, dst);
                    t.copy_df = copy_df;
                    t.flow_hash_key = [7; 16];
                    let v = encap_input(&t, 0x1234, 99, b"pkt");
                    assert_eq!(encap_params(&v), Some((t, 0x1234, 99, &b"pkt"[..])));
                    let v = pmtu_input(1400, Some(&t), 5, b"pkt");
                    assert_eq!(pmtu_params(&v), Some((1400, Some(t), 5, &b"pkt"[..])));
                }
            }
        }
        let v = pmtu_input(9000, None, 0, b"");
        assert_eq!(pmtu_params(&v), Some((9000, None, 0, &b""[..])));
    }

    #[test]
    fn pmtu_reply_quoting_part_of_an_extension_chain() {
        let p = sample_udp_v6_long_hop_by_hop();
        let s = PacketSummary::parse(&p).unwrap();
        assert_eq!(s.l4_offset, 40 + 2048);
        assert_eq!(pmtu::check(&s, 1500, None), MtuCheck::TooBig { mtu: 1500 });
        let mut out = [0u8; 1500];
        let n = pmtu::build_too_big(&p, 1500, &mut out).unwrap();
        assert_eq!(n, pmtu::ICMPV6_ERROR_MAX);
        // Linux sends this; the parser rejects the quote, cut inside the chain.
        let e = PacketSummary::parse(&out[..n]).unwrap_err();
        assert_eq!(e.layer, Layer::QuotedIp);
        pmtu(&pmtu_input(1500, None, 0, &p));
    }
}
